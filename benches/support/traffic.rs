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

/// How long the fixtures' requests last together in trace time (first span start to last span
/// end, ns): shifting copy `n` by `n` times this much (and a second) lays the copies end to
/// end, as a long run's traffic would be.
#[allow(dead_code)]
pub fn duration_ns(requests: &[(usize, ExportTraceServiceRequest)]) -> u64 {
    let spans =
        || requests.iter().flat_map(|(_, r)| &r.resource_spans).flat_map(|rs| &rs.scope_spans).flat_map(|ss| &ss.spans);
    let first = spans().map(|s| s.start_time_unix_nano).min().unwrap_or(0);
    let last = spans().map(|s| s.end_time_unix_nano).max().unwrap_or(0);
    last.saturating_sub(first)
}

/// Copy number `copy` of the fixtures' requests: the resource `copy-<file>-<copy>`, and span
/// ids counted on from `next_id`.
#[allow(dead_code)]
pub fn copy(
    requests: &[(usize, ExportTraceServiceRequest)],
    copy: u64,
    next_id: &mut u64,
) -> Vec<ExportTraceServiceRequest> {
    copy_at(requests, copy, next_id, 0)
}

/// [`copy`], `shift_ns` later in trace time (span and event times).
pub fn copy_at(
    requests: &[(usize, ExportTraceServiceRequest)],
    copy: u64,
    next_id: &mut u64,
    shift_ns: u64,
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
                        if shift_ns > 0 {
                            s.start_time_unix_nano = s.start_time_unix_nano.saturating_add(shift_ns);
                            s.end_time_unix_nano = s.end_time_unix_nano.saturating_add(shift_ns);
                            for e in &mut s.events {
                                e.time_unix_nano = e.time_unix_nano.saturating_add(shift_ns);
                            }
                        }
                    }
                }
            }
            r
        })
        .collect()
}
