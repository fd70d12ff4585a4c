//! What `journey serve` keeps per journey (`BENCHMARKS.md`, "serve ingest"): the receiver's
//! core (`Ingest`, no sockets) fed a long stream of recorded fixture traffic, with the heap read
//! from a counting allocator after each copy has been let go.
//!
//! The traffic: every line of seven real fixtures (`tests/data/vllm*/`) as one export request,
//! copied with fresh span ids and one resource per copy of a file, until `SERVE_MEMORY_JOURNEYS`
//! spans (default 10⁶) have been sent. Each copy is let go (`--pending-timeout 0`) before the
//! next arrives, as a steady stream of finished requests would be, so what the heap holds
//! between copies is what `serve` keeps of journeys already checked, not what is pending. Each
//! copy comes later in trace time than the one before (by the fixtures' duration and a second),
//! as a long run's traffic does, and the receiver decides relations behind `serve`'s default
//! horizon (`--horizon 600`); `SERVE_MEMORY_HORIZON=none` keeps everything until the end, as
//! before the horizon.
//!
//! ```sh
//! cargo bench --bench serve_memory
//! SERVE_MEMORY_JOURNEYS=100000 cargo bench --bench serve_memory
//! ```

use std::time::{Duration, Instant};

use journey_spec::otel::CheckOptions;
use journey_spec::serve::{Ingest, IngestOptions, Transport};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

#[path = "support/counting.rs"]
mod counting;
#[path = "support/traffic.rs"]
mod traffic;

fn spans(requests: &[ExportTraceServiceRequest]) -> u64 {
    requests.iter().flat_map(|r| &r.resource_spans).flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len() as u64).sum()
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let target: u64 = std::env::var("SERVE_MEMORY_JOURNEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let fixtures = traffic::fixture_requests();
    let horizon = match std::env::var("SERVE_MEMORY_HORIZON").ok().as_deref() {
        Some("none") => None,
        Some(s) => Some((s.parse::<f64>().expect("SERVE_MEMORY_HORIZON: seconds or none") * 1e9) as u64),
        None => Some(CheckOptions::DEFAULT_HORIZON_NS),
    };
    let check = CheckOptions { horizon, ..CheckOptions::default() };
    let options = IngestOptions { check, pending_timeout: Duration::ZERO, ..IngestOptions::default() };
    let shift = traffic::duration_ns(&fixtures).saturating_add(1_000_000_000);
    let mut ingest = Ingest::new(options, None);
    let base = counting::reset_peak();
    let started = Instant::now();
    let (mut next_id, mut sent, mut n) = (0u64, 0u64, 0u64);
    let mut checkpoint = 1u64;
    eprintln!("{:>10} {:>12} {:>14} {:>10}", "spans", "heap MiB", "heap/span B", "pending");
    while sent < target {
        let requests = traffic::copy_at(&fixtures, n, &mut next_id, n.saturating_mul(shift));
        sent += spans(&requests);
        for r in requests {
            let bytes = r.encoded_len();
            ingest.ingest(r, bytes, Transport::Grpc, Instant::now());
        }
        ingest.poll(Instant::now()).expect("no findings output");
        n += 1;
        if n == checkpoint || sent >= target {
            let heap = counting::live().saturating_sub(base);
            eprintln!("{sent:>10} {:>12.1} {:>14.0} {:>10}", mib(heap), heap as f64 / sent as f64, ingest.pending());
            checkpoint *= 2;
        }
    }
    ingest.flush().expect("no findings output");
    let mut out = Vec::new();
    ingest.report().write(&mut out).expect("report");
    let report: serde_json::Value = serde_json::from_slice(&out).expect("the report is JSON");
    let heap = counting::live().saturating_sub(base);
    let peak = counting::peak().saturating_sub(base);
    eprintln!(
        "{sent} spans in {n} copies ({:.1} s): heap after the final report {:.1} MiB ({:.0} B per span), peak {:.1} MiB; journeys {}, violating {}, behind the horizon {}",
        started.elapsed().as_secs_f64(),
        mib(heap),
        heap as f64 / sent as f64,
        mib(peak),
        report["journeys"],
        report["violating"],
        report.get("behind_horizon").unwrap_or(&serde_json::Value::from(0)),
    );
}
