//! Throughput of `journey check` through the library API (read, check, summarise), against
//! `serde_json` alone parsing the same lines, in the same run.
//!
//! The input is every real fixture line (`tests/data/vllm*/`) replicated with fresh span ids,
//! each copy of a file under its own resource (so each copy is its own scheduler instance and
//! every journey conforms, as in the fixtures), about 64 MB of OTLP JSON Lines.
//!
//! ```sh
//! cargo bench --bench check_throughput
//! ```
//!
//! `BENCHMARKS.md` (section "check throughput") has the figures and how they were taken.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use journey_spec::otel::{CheckOptions, Summary, check_trace, read_trace};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

const FIXTURES: &[&str] = &[
    "vllm/basic.otlp.jsonl",
    "vllm/kv_pressure.otlp.jsonl",
    "vllm-random/w1.otlp.jsonl",
    "vllm-random/w2.otlp.jsonl",
    "vllm-random/w3.otlp.jsonl",
    "vllm-random/w4.otlp.jsonl",
    "vllm-random/w5.otlp.jsonl",
    "vllm-random/w6.otlp.jsonl",
];

/// Copies of every fixture in the input.
const COPIES: usize = 16;

/// `line` with every `"spanId"` replaced by the next id of `counter` and the resource's service
/// name made unique to `copy`.
fn rewrite(line: &str, copy: &str, counter: &mut u64) -> String {
    const KEY: &str = "\"spanId\":\"";
    let mut out = String::with_capacity(line.len() + 64);
    let mut rest = line;
    while let Some(at) = rest.find(KEY) {
        let (head, tail) = rest.split_at(at + KEY.len());
        out.push_str(head);
        *counter += 1;
        out.push_str(&format!("{:016x}", *counter));
        rest = &tail[16.min(tail.len())..];
    }
    out.push_str(rest);
    out.replace("\"unknown_service\"", &format!("\"unknown_service-{copy}\""))
}

fn input() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut counter = 0;
    let mut out = String::new();
    for copy in 0..COPIES {
        for (f, name) in FIXTURES.iter().enumerate() {
            let text = std::fs::read_to_string(dir.join(name)).expect("fixture");
            for line in text.lines() {
                out.push_str(&rewrite(line, &format!("{f}-{copy}"), &mut counter));
                out.push('\n');
            }
        }
    }
    out.into_bytes()
}

fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

fn check(data: &[u8]) -> Summary {
    let mut errors = 0;
    let trace = read_trace("bench", data, |_| errors += 1);
    let mut summary = Summary::new();
    summary.add(check_trace(trace, &CheckOptions::default()), errors);
    summary
}

fn throughput(c: &mut Criterion) {
    let data = input();
    // The input is what it claims to be: every journey conforms, nothing is malformed.
    let s = check(&data);
    assert_eq!((s.input_errors, s.violating, s.incomplete), (0, 0, COPIES as u64));
    assert_eq!(s.journeys, 631 * COPIES as u64);
    eprintln!("input: {:.1} MB, {} lines, {} journeys", data.len() as f64 / 1e6, lines(&data).count(), s.journeys);

    let mut group = c.benchmark_group("check_throughput");
    group.throughput(Throughput::Bytes(data.len() as u64)).sample_size(10).sampling_mode(SamplingMode::Flat);
    group.bench_function("serde_json_ignored_any", |b| {
        b.iter(|| {
            for line in lines(&data) {
                black_box(serde_json::from_slice::<serde::de::IgnoredAny>(line).expect("json"));
            }
        })
    });
    group.bench_function("serde_json_value", |b| {
        b.iter(|| {
            for line in lines(&data) {
                black_box(serde_json::from_slice::<serde_json::Value>(line).expect("json"));
            }
        })
    });
    // What the reader is required to use, alone: OTLP's serde types (not a goal, a reference).
    group.bench_function("opentelemetry_proto_parse", |b| {
        b.iter(|| {
            for line in lines(&data) {
                black_box(serde_json::from_slice::<ExportTraceServiceRequest>(line).expect("otlp"));
            }
        })
    });
    group.bench_function("journey_check", |b| b.iter(|| black_box(check(&data))));
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
