//! What `journey serve` keeps per journey (`BENCHMARKS.md`, "serve ingest"): the receiver's
//! core (`Ingest`, no sockets) fed a long stream of recorded fixture traffic, with the heap read
//! from a counting allocator after each copy has been let go.
//!
//! The traffic: every line of seven real fixtures (`tests/data/vllm*/`) as one export request,
//! copied with fresh span ids and one resource per copy of a file, until `SERVE_MEMORY_JOURNEYS`
//! spans (default 10⁶) have been sent. Each copy is let go (`--pending-timeout 0`) before the
//! next arrives, as a steady stream of finished requests would be, so what the heap holds
//! between copies is what `serve` keeps of journeys already checked, not what is pending.
//!
//! ```sh
//! cargo bench --bench serve_memory
//! SERVE_MEMORY_JOURNEYS=100000 cargo bench --bench serve_memory
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use journey_spec::serve::{Ingest, IngestOptions, Transport};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use prost::Message as _;

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on as it is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const FIXTURES: &[&str] = &[
    "vllm/basic.otlp.jsonl",
    "vllm/kv_pressure.otlp.jsonl",
    "vllm-random/w1.otlp.jsonl",
    "vllm-random/w2.otlp.jsonl",
    "vllm-random/w3.otlp.jsonl",
    "vllm-random/w4.otlp.jsonl",
    "vllm-random/w5.otlp.jsonl",
];

/// The fixtures' export requests, each with the index of its file.
fn fixture_requests() -> Vec<(usize, ExportTraceServiceRequest)> {
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

/// One copy of the traffic: a resource per file and copy, fresh span ids from `next_id`.
fn copy(
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

fn spans(requests: &[ExportTraceServiceRequest]) -> u64 {
    requests.iter().flat_map(|r| &r.resource_spans).flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len() as u64).sum()
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let target: u64 = std::env::var("SERVE_MEMORY_JOURNEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let fixtures = fixture_requests();
    let options = IngestOptions { pending_timeout: Duration::ZERO, ..IngestOptions::default() };
    let mut ingest = Ingest::new(options, None);
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let started = Instant::now();
    let (mut next_id, mut sent, mut n) = (0u64, 0u64, 0u64);
    let mut checkpoint = 1u64;
    eprintln!("{:>10} {:>12} {:>14} {:>10}", "spans", "heap MiB", "heap/span B", "pending");
    while sent < target {
        let requests = copy(&fixtures, n, &mut next_id);
        sent += spans(&requests);
        for r in requests {
            let bytes = r.encoded_len();
            ingest.ingest(r, bytes, Transport::Grpc, Instant::now());
        }
        ingest.poll(Instant::now()).expect("no findings output");
        n += 1;
        if n == checkpoint || sent >= target {
            let heap = LIVE.load(Ordering::Relaxed).saturating_sub(base);
            eprintln!("{sent:>10} {:>12.1} {:>14.0} {:>10}", mib(heap), heap as f64 / sent as f64, ingest.pending());
            checkpoint *= 2;
        }
    }
    ingest.flush().expect("no findings output");
    let mut out = Vec::new();
    ingest.report().write(&mut out).expect("report");
    let report: serde_json::Value = serde_json::from_slice(&out).expect("the report is JSON");
    let heap = LIVE.load(Ordering::Relaxed).saturating_sub(base);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    eprintln!(
        "{sent} spans in {n} copies ({:.1} s): heap after the final report {:.1} MiB ({:.0} B per span), peak {:.1} MiB; journeys {}, violating {}",
        started.elapsed().as_secs_f64(),
        mib(heap),
        heap as f64 / sent as f64,
        mib(peak),
        report["journeys"],
        report["violating"],
    );
}
