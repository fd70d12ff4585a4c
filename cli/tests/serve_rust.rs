//! The Rust `opentelemetry-otlp` exporter (gRPC/tonic and HTTP/protobuf), driven by the
//! reference scheduler with the journey emitter, sends to `journey serve`; the same spans go to
//! an OTLP JSON Lines file through a second span processor. The final report equals `journey
//! check` on that file. And the shedding bound: 100 concurrent journeys into `--max-pending 10`.

mod serve_support;

use std::fs::File;
use std::io::BufWriter;

use journey_spec::otel::write::{OtlpJsonWriter, SeededIds};
use journey_spec::synth::{SynthParams, generate};
use journey_spec::wire::keys;
use journey_spec::{Emitter, Engine, Iterated, Scheduler, SchedulerConfig, SimClock, Workload};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serve_support::*;

enum Via {
    Grpc,
    HttpProtobuf,
}

/// Runs `workload` through the scheduler with the emitter on a provider that exports over OTLP
/// to `serve` and writes the same spans to `file`.
fn run_scheduler(workload: &Workload, serve: &Serve, via: Via, file: &std::path::Path) {
    // The tonic exporter needs a Tokio runtime for its connection; the batch processor runs the
    // exports on its own thread.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _guard = runtime.enter();
    let exporter = match via {
        Via::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(format!("http://{}", serve.grpc))
            .with_protocol(Protocol::Grpc)
            .build()
            .unwrap(),
        Via::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("http://{}/v1/traces", serve.http))
            .with_protocol(Protocol::HttpBinary)
            .build()
            .unwrap(),
    };
    let writer = OtlpJsonWriter::new(BufWriter::new(File::create(file).unwrap()), 4);
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_simple_exporter(writer.clone())
        .with_max_events_per_span(1_000_000)
        .with_id_generator(SeededIds::new(7))
        .with_resource(Resource::builder_empty().with_service_name("journey-serve-test").build())
        .build();
    let clock = SimClock::new(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600));
    let mut scheduler = Scheduler::new(workload.config).unwrap();
    scheduler.set_emitter(Some(
        Emitter::new(provider.tracer(keys::SCOPE_NAME)).with_clock(clock.clone()).with_legacy_buffer(false),
    ));
    let mut engine = Engine::new(scheduler);
    engine
        .run(workload, |_, done, _| {
            if done == Iterated::Stepped {
                clock.advance(std::time::Duration::from_millis(8));
            }
        })
        .unwrap();
    drop(engine);
    // Flushes the batch processor (the OTLP export) and the file writer.
    provider.shutdown().unwrap();
    writer.finish().unwrap();
}

fn report_equals_check(via: Via, name: &str) {
    let dir = TempDir::new(name);
    let file = dir.path("spans.otlp.jsonl");
    let serve = Serve::start(&["--pending-timeout", "600"]);
    let workload = generate(&SynthParams { requests: 300, ..SynthParams::default() }).unwrap();
    run_scheduler(&workload, &serve, via, &file);
    let exited = serve.shutdown();
    let report = exited.report();
    let (code, expected) = check(&[&file]);
    assert_eq!(expected["journeys"], 300, "{expected}");
    assert!(expected["stats"]["preemptions"].as_array().unwrap().len() > 1, "the workload preempts");
    assert_eq!(comparable(&report), comparable(&expected));
    assert_eq!(exited.code, code);
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    assert_eq!(report["serve"]["outcome"], "conforming");
}

#[test]
fn rust_otlp_grpc_report_equals_check() {
    report_equals_check(Via::Grpc, "rust-grpc");
}

#[test]
fn rust_otlp_http_protobuf_report_equals_check() {
    report_equals_check(Via::HttpProtobuf, "rust-http");
}

#[test]
fn shedding_is_counted_and_never_a_pass() {
    let dir = TempDir::new("shed");
    let file = dir.path("spans.otlp.jsonl");
    let findings = dir.path("findings.jsonl");
    let serve =
        Serve::start(&["--pending-timeout", "600", "--max-pending", "10", "--findings", findings.to_str().unwrap()]);
    // 100 requests arrive at once and all run together: 100 concurrent journeys.
    let config = SchedulerConfig {
        max_num_seqs: 128,
        num_blocks: 4096,
        max_num_batched_tokens: 8192,
        ..SynthParams::default().config
    };
    let workload = generate(&SynthParams {
        requests: 100,
        arrival_rate: 1000.0,
        abort_share: 0.0,
        config,
        ..SynthParams::default()
    })
    .unwrap();
    run_scheduler(&workload, &serve, Via::Grpc, &file);
    let running = get_json(serve.http, "/report");
    assert_eq!(running["serve"]["pending"], 10, "{running}");
    let (status, body) = http(serve.http, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let metrics = String::from_utf8(body).unwrap();
    assert!(metrics.lines().any(|l| l == "journey_records_shed_total 90"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "journey_pending_spans 10"), "{metrics}");

    let exited = serve.shutdown();
    let report = exited.report();
    let (_, expected) = check(&[&file]);
    assert_eq!(expected["journeys"], 100);
    assert_eq!(expected["conforming"], 100, "every journey conforms when nothing is lost");
    // What was kept is checked; what was shed is counted and makes the run incomplete.
    assert_eq!(report["journeys"], 10, "{report}");
    assert_eq!(report["serve"]["shed_records"], 90);
    assert_eq!(report["serve"]["shed_spans"], 90);
    assert!(report["serve"]["shed_journey_events"].as_u64().unwrap() >= 90 * 4);
    assert_eq!(report["serve"]["outcome"], "incomplete");
    assert_eq!(exited.code, Some(2), "shedding is never a pass");
    assert!(exited.stderr.contains("90 span records shed (--max-pending)"), "{}", exited.stderr);
    // No journey was violating or incomplete by itself: no finding lines.
    assert_eq!(std::fs::read_to_string(&findings).unwrap(), "");
}
