//! A real client, not our code: the OpenTelemetry Python SDK with its OTLP exporters (gRPC with
//! gzip, HTTP/protobuf) sends recorded journeys to `journey serve`, and the final report equals
//! `journey check` on the same spans written to a file.
//!
//! Skipped (with a message) only when `python3` is absent; when Python is there but the
//! OpenTelemetry packages are not, the tests fail: `.ci/run` installs them.

mod serve_support;

use std::path::{Path, PathBuf};

use serve_support::*;

fn inputs(first: &str) -> Vec<PathBuf> {
    let mut files = vec![data(first)];
    files.extend(corrupted());
    files
}

fn report_equals_check(protocol: &str, gzip: bool, first: &str, name: &str) {
    if !python() {
        eprintln!("SKIPPED {name}: python3 is not installed, so the Python OpenTelemetry client cannot run");
        return;
    }
    let dir = TempDir::new(name);
    let written = dir.path("replayed.otlp.jsonl");
    let findings = dir.path("findings.jsonl");
    // A long timeout: every journey is decided at shutdown, in one batch, as `check` sees a file.
    let serve = Serve::start(&["--pending-timeout", "600", "--findings", findings.to_str().unwrap()]);
    let endpoint = match protocol {
        "grpc" => format!("http://{}", serve.grpc),
        _ => format!("http://{}", serve.http),
    };
    let files = inputs(first);
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    replay_with_python(protocol, &endpoint, gzip, &written, &paths);

    // Everything arrived and waits: nothing is decided before its timeout.
    let running = get_json(serve.http, "/report");
    let (_, expected) = check(&[&written]);
    let spans = expected["spans"].as_u64().unwrap();
    assert_eq!(running["serve"]["pending"].as_u64(), Some(spans), "{running}");
    assert_eq!(running["journeys"], 0);
    let transport = if protocol == "grpc" { "grpc" } else { "http/protobuf" };
    assert!(running["serve"]["export_requests"][transport].as_u64().unwrap() > 0, "{running}");

    let exited = serve.shutdown();
    let report = exited.report();
    let (check_code, expected) = check(&[&written]);
    assert_eq!(comparable(&report), comparable(&expected), "serve's report differs from check's");
    assert_eq!(exited.code, check_code, "exit status; stderr:\n{}", exited.stderr);
    // The corrupted fixtures make it fail, one rule each at least.
    assert_eq!(exited.code, Some(1));
    assert!(report["violating"].as_u64().unwrap() >= 17, "{report}");
    assert_eq!(report["serve"]["outcome"], "violating");
    assert_eq!(report["serve"]["shed_records"], 0);

    // One finding per violating journey, with its violations.
    let text = std::fs::read_to_string(&findings).expect("findings written");
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len() as u64, report["violating"].as_u64().unwrap() + report["incomplete"].as_u64().unwrap());
    let violations: usize = lines.iter().map(|l| l["violations"].as_array().unwrap().len()).sum();
    assert_eq!(violations, report["violations"].as_array().unwrap().len());
}

#[test]
fn python_grpc_gzip_report_equals_check() {
    report_equals_check("grpc", true, "vllm/basic.otlp.jsonl", "python-grpc");
}

#[test]
fn python_http_protobuf_report_equals_check() {
    report_equals_check("http", false, "vllm/kv_pressure.otlp.jsonl", "python-http");
}

#[test]
fn python_http_gzip_metrics_count_what_arrived() {
    if !python() {
        eprintln!("SKIPPED python_http_gzip_metrics_count_what_arrived: python3 is not installed");
        return;
    }
    let dir = TempDir::new("python-metrics");
    let written = dir.path("replayed.otlp.jsonl");
    // A short timeout: journeys are decided while the server runs.
    let serve = Serve::start(&["--pending-timeout", "0.05"]);
    replay_with_python("http", &format!("http://{}", serve.http), true, &written, &[&data("vllm/basic.otlp.jsonl")]);
    let start = std::time::Instant::now();
    let report = loop {
        let r = get_json(serve.http, "/report");
        if r["journeys"] == 200 || start.elapsed() > DEADLINE {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(report["journeys"], 200, "{report}");
    assert_eq!(report["conforming"], 200);
    let (status, body) = http(serve.http, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let metrics = String::from_utf8(body).unwrap();
    for line in [
        "journey_journeys_total{verdict=\"conforming\"} 200",
        "journey_journeys_total{verdict=\"violating\"} 0",
        "journey_span_records_received_total 200",
        "journey_records_shed_total 0",
        "journey_e2e_latency_seconds_count 200",
        "journey_time_to_first_token_seconds_count 200",
        "journey_queue_time_seconds_bucket{le=\"+Inf\"} 200",
        "journey_events_checked_total 800",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line:?} not in /metrics:\n{metrics}");
    }
    let bytes = metrics
        .lines()
        .find_map(|l| l.strip_prefix("journey_received_bytes_total{transport=\"http/protobuf\"} "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(bytes > 10_000, "{bytes} bytes");
    let exited = serve.shutdown();
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    let (_, expected) = check(&[&written]);
    assert_eq!(comparable(&exited.report()), comparable(&expected));
}
