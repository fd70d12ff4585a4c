//! Recorded fixture traffic for the `serve` benches: every line of seven real fixtures
//! (`tests/data/vllm*/`) as one export request, copied with fresh span ids and one resource per
//! copy of a file, so each copy is its own scheduler instance and every journey conforms.

use std::path::Path;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};

/// The fixtures of the traffic, under `tests/data/`.
const FIXTURES: &[&str] = &[
    "vllm/basic.otlp.jsonl",
    "vllm/kv_pressure.otlp.jsonl",
    "vllm-random/w1.otlp.jsonl",
    "vllm-random/w2.otlp.jsonl",
    "vllm-random/w3.otlp.jsonl",
    "vllm-random/w4.otlp.jsonl",
    "vllm-random/w5.otlp.jsonl",
];

/// The fixtures' export requests in file and line order, each with the index of its file.
pub fn fixture_requests() -> Vec<(usize, ExportTraceServiceRequest)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut requests = Vec::new();
    for (f, name) in FIXTURES.iter().enumerate() {
        let text = std::fs::read_to_string(dir.join(name)).expect("fixture");
        for line in text.lines() {
            requests.push((f, serde_json::from_str(line).expect("fixture line")));
        }
    }
    requests
}

/// Copy number `copy` of the fixtures' requests: the resource `copy-<file>-<copy>`, and span
/// ids counted on from `next_id`.
pub fn copy(
    requests: &[(usize, ExportTraceServiceRequest)],
    copy: u64,
    next_id: &mut u64,
) -> Vec<ExportTraceServiceRequest> {
    requests
        .iter()
        .map(|(f, r)| {
            let mut r = r.clone();
            for rs in &mut r.resource_spans {
                if let Some(res) = rs.resource.as_mut() {
                    for kv in &mut res.attributes {
                        if kv.key == "service.name" {
                            let name = format!("copy-{f}-{copy}");
                            kv.value = Some(AnyValue { value: Some(any_value::Value::StringValue(name)) });
                        }
                    }
                }
                for ss in &mut rs.scope_spans {
                    for s in &mut ss.spans {
                        *next_id += 1;
                        s.span_id = next_id.to_be_bytes().to_vec();
                    }
                }
            }
            r
        })
        .collect()
}
