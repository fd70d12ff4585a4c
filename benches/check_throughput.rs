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
//! The second group reads the same requests as length-framed protobuf records (`journey check`
//! streaming, as the command runs it) against `prost` decoding the records alone, in journey
//! events per second.
//!
//! `BENCHMARKS.md` (sections "check throughput" and "check on protobuf") has the figures.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use journey_spec::otel::read::{ReadOptions, read_into};
use journey_spec::otel::{CheckOptions, Summary, TraceStream, check_trace, read_trace};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

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

/// The same requests as length-framed protobuf records (the Collector's `format: proto`).
fn framed_proto(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines(data) {
        let bytes = serde_json::from_slice::<ExportTraceServiceRequest>(line).expect("otlp").encode_to_vec();
        out.extend_from_slice(&u32::try_from(bytes.len()).expect("small").to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

/// The records of a framed file.
fn records(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let (record, tail) = tail.split_at(u32::from_be_bytes(*len) as usize);
        rest = tail;
        Some(record)
    })
}

/// `journey check` as the command runs it: streaming, protobuf records detected from the bytes.
fn check_stream(data: &[u8]) -> Summary {
    let mut stream = TraceStream::new("bench", CheckOptions::default());
    let mut errors = 0;
    read_into("bench", data, &ReadOptions::default(), &mut stream, &mut |_| errors += 1);
    let mut summary = Summary::new();
    summary.add(stream.finish(), errors);
    summary
}

fn protobuf(c: &mut Criterion) {
    let proto = framed_proto(&input());
    let s = check_stream(&proto);
    assert_eq!((s.input_errors, s.violating, s.incomplete), (0, 0, COPIES as u64));
    eprintln!(
        "protobuf input: {:.1} MB, {} journeys, {} journey events",
        proto.len() as f64 / 1e6,
        s.journeys,
        s.events
    );

    let mut group = c.benchmark_group("check_protobuf");
    // Journey events per second: the unit of the goal.
    group.throughput(Throughput::Elements(s.events)).sample_size(10).sampling_mode(SamplingMode::Flat);
    group.bench_function("prost_decode", |b| {
        b.iter(|| {
            for record in records(&proto) {
                black_box(ExportTraceServiceRequest::decode(record).expect("protobuf"));
            }
        })
    });
    group.bench_function("journey_check", |b| b.iter(|| black_box(check_stream(&proto))));
    group.finish();
}

criterion_group!(benches, throughput, protobuf);
criterion_main!(benches);
