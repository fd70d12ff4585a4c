//! Ingest throughput of `journey serve` on recorded fixture traffic, in journey events per
//! second, checking included, against `prost` decoding the same bytes alone, in the same run.
//!
//! The traffic: every line of the real fixtures (`tests/data/vllm*/`) as one export request,
//! `COPIES` times with fresh span ids and one resource per copy of a file (so every journey
//! conforms, as in the fixtures). Each iteration sends every request, then decides everything
//! pending (the shutdown flush), so the checks are inside the measurement.
//!
//! - `prost_decode`: `ExportTraceServiceRequest::decode` over the protobuf bytes alone.
//! - `core_protobuf`: decode plus the receiver's core (pending set, assembly, checks, summary),
//!   no sockets.
//! - `grpc_protobuf`: a tonic client sends the requests over loopback to the server, which runs
//!   on a single-threaded runtime (one core); the client is on the bench thread, one request at
//!   a time.
//! - `grpc_protobuf_10_in_flight`: the same with ten exports in flight on the one connection,
//!   as the Collector's exporter queue and batching SDKs send.
//! - `grpc_protobuf_batched_100`: the same spans, 100 lines per request, one at a time, as the
//!   Collector's batch processor sends.
//!
//! After the criterion groups, `per core:` lines on stderr give journey events per second of
//! the receiver's own CPU time (its server thread's `schedstat`, plus the flush): the per-core
//! figure, which on a shared machine the wall-clock medians are not.
//! - `http_json`: the same requests as OTLP JSON bodies over an HTTP/1.1 keep-alive connection.
//!
//! ```sh
//! cargo bench --bench serve_ingest
//! ```

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use journey_spec::serve::{Ingest, IngestOptions, ServeConfig, Server, Shared, Transport};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message as _;

#[path = "support/traffic.rs"]
mod traffic;

/// Copies of every fixture in the traffic.
const COPIES: u64 = 4;

/// Exports in flight at once in `grpc_protobuf_<n>_in_flight`.
const IN_FLIGHT: usize = 10;

/// Lines of the traffic per request in `grpc_protobuf_batched_<n>` (about 2,300 journey events
/// and 670 KB per request; the Collector's batch processor sends up to 8,192 spans).
const BATCH: usize = 100;

struct Traffic {
    requests: Vec<ExportTraceServiceRequest>,
    protobuf: Vec<Vec<u8>>,
    json: Vec<Vec<u8>>,
    events: u64,
}

fn traffic() -> Traffic {
    let fixtures = traffic::fixture_requests();
    let mut requests = Vec::new();
    let mut next_id = 0u64;
    for copy in 0..COPIES {
        requests.extend(traffic::copy(&fixtures, copy, &mut next_id));
    }
    let events = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| s.events.len() as u64)
        .sum();
    let protobuf = requests.iter().map(|r| r.encode_to_vec()).collect();
    let json = requests.iter().map(|r| serde_json::to_vec(r).expect("JSON")).collect();
    Traffic { requests, protobuf, json, events }
}

fn options() -> IngestOptions {
    IngestOptions { pending_timeout: Duration::from_secs(3600), max_pending: 10_000_000, ..IngestOptions::default() }
}

/// A server on a single-threaded runtime of its own thread: one core for the receiver. Also
/// returns the thread's schedstat path, for its CPU time.
fn start_server() -> (Arc<Shared>, std::net::SocketAddr, std::net::SocketAddr, PathBuf) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // "<pid>/task/<tid>": the thread's own entry, read from the bench thread.
        let me = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
        let schedstat = Path::new("/proc").join(me).join("schedstat");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let config = ServeConfig {
                grpc: "127.0.0.1:0".parse().expect("addr"),
                http: "127.0.0.1:0".parse().expect("addr"),
                ingest: options(),
                ..ServeConfig::default()
            };
            let server = Server::bind(config, None).await.expect("bind");
            let addrs =
                (server.shared(), server.grpc_addr().expect("addr"), server.http_addr().expect("addr"), schedstat);
            tx.send(addrs).expect("send");
            // Runs for the rest of the process.
            let _ = server.run(std::future::pending()).await;
        });
    });
    rx.recv().expect("server started")
}

/// Decides everything pending, checks that every journey arrived and conforms, and starts
/// afresh (the next iteration sends the same spans again, which would be late records).
fn flush(shared: &Shared, events: u64) {
    shared.with(|i| {
        i.flush().expect("flush");
        assert_eq!(i.summary().violating, 0);
        assert_eq!(i.summary().events, events);
        *i = Ingest::new(options(), None);
    });
}

/// CPU time a thread has run, from its `schedstat` (nanoseconds on the CPU, first field).
fn cpu(schedstat: &Path) -> Duration {
    let text = std::fs::read_to_string(schedstat).expect("schedstat");
    Duration::from_nanos(text.split_whitespace().next().and_then(|n| n.parse().ok()).expect("schedstat field"))
}

/// Journey events per second of CPU time spent by the receiver: its server thread while `send`
/// runs, plus the flush (on this thread). On a shared machine the wall-clock figures include
/// the client and other processes; this is the per-core figure.
fn per_core(label: &str, server: &Path, events: u64, shared: &Shared, mut send: impl FnMut()) {
    const ROUNDS: u32 = 10;
    let me = Path::new("/proc/thread-self/schedstat");
    let mut used = Duration::ZERO;
    let start = Instant::now();
    for _ in 0..ROUNDS {
        let s0 = cpu(server);
        send();
        let s1 = cpu(server);
        let f0 = cpu(me);
        flush(shared, events);
        used += (s1 - s0) + (cpu(me) - f0);
    }
    let wall = start.elapsed();
    let rate = f64::from(ROUNDS) * events as f64 / used.as_secs_f64();
    eprintln!(
        "per core: {label}: receiver CPU {:.1} ms per round ({:.1} ms wall) = {:.0} K journey events/s per core",
        used.as_secs_f64() * 1e3 / f64::from(ROUNDS),
        wall.as_secs_f64() * 1e3 / f64::from(ROUNDS),
        rate / 1e3
    );
}

/// Journey events per second of this thread's CPU time over ten rounds of `round`.
fn own_cpu(label: &str, events: u64, mut round: impl FnMut()) {
    const ROUNDS: u32 = 10;
    let me = Path::new("/proc/thread-self/schedstat");
    let c0 = cpu(me);
    for _ in 0..ROUNDS {
        round();
    }
    let used = cpu(me) - c0;
    eprintln!(
        "per core: {label}: CPU {:.1} ms per round = {:.0} K journey events/s per core",
        used.as_secs_f64() * 1e3 / f64::from(ROUNDS),
        f64::from(ROUNDS) * events as f64 / used.as_secs_f64() / 1e3
    );
}

/// One blocking HTTP/1.1 POST on a keep-alive connection; returns the status.
fn post(conn: &mut BufReader<TcpStream>, body: &[u8]) -> u16 {
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // One write: a head and a body in two small writes meet Nagle's algorithm and the peer's
    // delayed ACK (a 40 ms stall per request).
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    conn.get_mut().write_all(&request).expect("write");
    let mut line = String::new();
    conn.read_line(&mut line).expect("status line");
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut length = 0usize;
    loop {
        line.clear();
        conn.read_line(&mut line).expect("header");
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).expect("body");
    status
}

fn bench(c: &mut Criterion) {
    let t = traffic();
    let spans: u64 = t
        .requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len() as u64)
        .sum();
    let bytes: usize = t.protobuf.iter().map(Vec::len).sum();
    let json_bytes: usize = t.json.iter().map(Vec::len).sum();
    eprintln!(
        "traffic: {} requests, {spans} spans, {} journey events, {bytes} protobuf bytes, {json_bytes} JSON bytes",
        t.requests.len(),
        t.events
    );

    let mut g = c.benchmark_group("serve_ingest");
    g.sampling_mode(SamplingMode::Flat).sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(t.events));

    g.bench_function("prost_decode", |b| {
        b.iter(|| {
            for body in &t.protobuf {
                black_box(ExportTraceServiceRequest::decode(&body[..]).expect("decode"));
            }
        })
    });

    g.bench_function("core_protobuf", |b| {
        b.iter(|| {
            let mut ingest = Ingest::new(options(), None);
            let now = Instant::now();
            for body in &t.protobuf {
                let r = ExportTraceServiceRequest::decode(&body[..]).expect("decode");
                ingest.ingest(r, body.len(), Transport::Grpc, now);
            }
            ingest.flush().expect("flush");
            assert_eq!(ingest.summary().events, t.events);
            black_box(ingest.summary().journeys)
        })
    });

    let (shared, grpc, http, server) = start_server();
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client = client_rt.block_on(TraceServiceClient::connect(format!("http://{grpc}"))).expect("connect");
    let requests = Arc::new(t.requests.clone());
    let send_one = || {
        client_rt.block_on(async {
            let mut client = client.clone();
            for r in requests.iter() {
                client.export(r.clone()).await.expect("export");
            }
        })
    };
    // As the Collector's exporter (`sending_queue.num_consumers`, 10 by default) and batching
    // SDKs do: several exports in flight on one HTTP/2 connection.
    let send_in_flight = || {
        client_rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for k in 0..IN_FLIGHT {
                let mut client = client.clone();
                let requests = Arc::clone(&requests);
                tasks.spawn(async move {
                    for r in requests.iter().skip(k).step_by(IN_FLIGHT) {
                        client.export(r.clone()).await.expect("export");
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("export task");
            }
        })
    };
    // As the Collector's batch processor sends: many spans per request (here every BATCH lines
    // of the traffic in one request; the same spans).
    let batched: Arc<Vec<ExportTraceServiceRequest>> = Arc::new(
        t.requests
            .chunks(BATCH)
            .map(|c| ExportTraceServiceRequest {
                resource_spans: c.iter().flat_map(|r| r.resource_spans.iter().cloned()).collect(),
            })
            .collect(),
    );
    let send_batched = || {
        client_rt.block_on(async {
            let mut client = client.clone();
            for r in batched.iter() {
                client.export(r.clone()).await.expect("export");
            }
        })
    };
    g.bench_function("grpc_protobuf", |b| {
        b.iter(|| {
            send_one();
            flush(&shared, t.events);
        })
    });
    g.bench_function(format!("grpc_protobuf_{IN_FLIGHT}_in_flight"), |b| {
        b.iter(|| {
            send_in_flight();
            flush(&shared, t.events);
        })
    });

    g.bench_function(format!("grpc_protobuf_batched_{BATCH}"), |b| {
        b.iter(|| {
            send_batched();
            flush(&shared, t.events);
        })
    });

    let stream = TcpStream::connect(http).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut conn = BufReader::new(stream);
    g.bench_function("http_json", |b| {
        b.iter(|| {
            for body in &t.json {
                assert_eq!(post(&mut conn, body), 200);
            }
            flush(&shared, t.events);
        })
    });
    g.finish();

    own_cpu("prost_decode", t.events, || {
        for body in &t.protobuf {
            black_box(ExportTraceServiceRequest::decode(&body[..]).expect("decode"));
        }
    });
    own_cpu("core_protobuf", t.events, || {
        let mut ingest = Ingest::new(options(), None);
        let now = Instant::now();
        for body in &t.protobuf {
            let r = ExportTraceServiceRequest::decode(&body[..]).expect("decode");
            ingest.ingest(r, body.len(), Transport::Grpc, now);
        }
        ingest.flush().expect("flush");
        black_box(ingest.summary().journeys);
    });
    per_core("grpc_protobuf (one at a time)", &server, t.events, &shared, send_one);
    per_core(&format!("grpc_protobuf_{IN_FLIGHT}_in_flight"), &server, t.events, &shared, send_in_flight);
    per_core(&format!("grpc_protobuf_batched_{BATCH}"), &server, t.events, &shared, send_batched);
}

criterion_group!(benches, bench);
criterion_main!(benches);
