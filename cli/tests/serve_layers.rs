//! `journey serve` applies everything `journey check` applies: the two layers at HEAD (API and
//! core spans paired across export requests, X1–X6, C3, W1 with `--complete` and `--workload`),
//! the async profile (`--profile async`) and the step windows (S1–S3). The recorded export
//! requests of the real fixtures go over real loopback sockets (gRPC, HTTP/JSON,
//! HTTP/protobuf), each as it was recorded (scope, status and flags included), and the final
//! `/report` equals `journey check --format json` with the same options on the same file.
//!
//! `--pending-timeout 0` decides each span as soon as its request is in, so an API span and its
//! core child, which the fixtures export in different requests, are decided apart: the pairing
//! must not depend on them being decided together.

mod serve_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message as _;
use serde_json::Value;
use serve_support::*;

#[derive(Debug, Clone, Copy)]
enum Via {
    Grpc,
    HttpJson,
    HttpProtobuf,
}

/// The fixtures of `../shared/fixtures/<dir>`, or `None` when that is not beside the checkout.
fn shared(dir: &str) -> Option<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".otlp.jsonl"))
        .collect();
    files.sort();
    Some(files)
}

fn workload_of(trace: &Path) -> Option<String> {
    let w = PathBuf::from(trace.to_string_lossy().replace(".otlp.jsonl", ".workload.json"));
    w.exists().then(|| w.display().to_string())
}

/// Sends every line of `trace` as one export request, in order.
fn send(trace: &Path, serve: &Serve, via: Via) {
    let text = std::fs::read_to_string(trace).expect("fixture");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    match via {
        Via::Grpc => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let mut client = TraceServiceClient::connect(format!("http://{}", serve.grpc)).await.expect("connect");
                for line in &lines {
                    let request: ExportTraceServiceRequest = serde_json::from_str(line).expect("fixture line");
                    let response = client.export(request).await.expect("export").into_inner();
                    assert!(response.partial_success.is_none_or(|p| p.rejected_spans == 0), "{trace:?}");
                }
            });
        }
        Via::HttpJson => {
            for line in &lines {
                let (status, body) =
                    http(serve.http, "POST", "/v1/traces", &[("Content-Type", "application/json")], line.as_bytes());
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            }
        }
        Via::HttpProtobuf => {
            for line in &lines {
                let request: ExportTraceServiceRequest = serde_json::from_str(line).expect("fixture line");
                let (status, body) = http(
                    serve.http,
                    "POST",
                    "/v1/traces",
                    &[("Content-Type", "application/x-protobuf")],
                    &request.encode_to_vec(),
                );
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            }
        }
    }
}

/// `journey check --format json ARGS trace`: exit code and report.
fn check_with(args: &[&str], trace: &Path) -> (Option<i32>, Value) {
    let out = Command::new(JOURNEY)
        .args(["check", "--format", "json"])
        .args(args)
        .arg(trace)
        .output()
        .expect("journey check runs");
    (out.status.code(), serde_json::from_slice(&out.stdout).expect("check prints JSON"))
}

/// Serves `trace` sent `via`, with `args` for both serve and check; asserts the final reports
/// and exit statuses agree, and returns serve's report.
fn serve_equals_check(trace: &Path, args: &[&str], via: Via) -> Value {
    let mut serve_args = vec!["--pending-timeout", "0"];
    serve_args.extend_from_slice(args);
    let serve = Serve::start(&serve_args);
    send(trace, &serve, via);
    let exited = serve.shutdown();
    let served = exited.report();
    let (code, checked) = check_with(args, trace);
    let name = trace.file_name().unwrap().to_string_lossy();
    assert_eq!(comparable(&served), comparable(&checked), "{name} {args:?} via {via:?}");
    assert_eq!(exited.code, code, "{name} {args:?}: exit status; stderr:\n{}", exited.stderr);
    assert_eq!(served["serve"]["pending"], 0);
    assert_eq!(served["serve"]["late_records"], 0, "{name}");
    served
}

#[test]
fn two_layer_runs_at_head_report_as_check_does() {
    let files = shared("vllm-head").unwrap_or_else(|| {
        eprintln!(
            "SKIPPED (shared fixtures): ../shared/fixtures/vllm-head is not beside this checkout; using the copies"
        );
        vec![data("vllm-head/api_atomicity2.otlp.jsonl"), data("vllm-head/api_r42.otlp.jsonl")]
    });
    assert!(!files.is_empty());
    for trace in &files {
        let w = workload_of(trace).expect("every head run has its workload");
        for args in [&[][..], &["--complete", "--workload", w.as_str()]] {
            let r = serve_equals_check(trace, args, Via::Grpc);
            assert!(r["journeys"].as_u64().unwrap() > 0, "{trace:?}");
            assert_eq!(r["violating"], 0, "{trace:?} {args:?}: the real runs conform");
            assert_eq!(r["complete"], Value::Bool(!args.is_empty()));
            // Every API span with a core child is paired although they were decided apart.
            let name = trace.file_name().unwrap().to_string_lossy();
            if name.starts_with("api_") {
                assert!(r["pairs"].as_u64().unwrap() > 0, "{name}: {r}");
                assert_eq!(r["unpaired_core"], 0, "{name}");
            }
        }
    }
}

#[test]
fn http_json_and_protobuf_carry_the_two_layers_too() {
    let trace = data("vllm-head/api_r42.otlp.jsonl");
    let w = data("vllm-head/api_r42.workload.json").display().to_string();
    for via in [Via::HttpJson, Via::HttpProtobuf] {
        let r = serve_equals_check(&trace, &["--complete", "--workload", &w], via);
        assert!(r["pairs"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["violating"], 0);
    }
}

#[test]
fn async_runs_report_as_check_does_in_both_profiles() {
    let Some(files) = shared("vllm-async") else {
        eprintln!("SKIPPED: ../shared/fixtures/vllm-async is not beside this checkout");
        return;
    };
    assert!(!files.is_empty());
    let mut flagged_in_sync = 0;
    for trace in &files {
        let r = serve_equals_check(trace, &["--profile", "async"], Via::Grpc);
        assert_eq!(r["profile"], "async");
        assert_eq!(r["violating"], 0, "{trace:?}: the async profile accepts the real runs");
        let r = serve_equals_check(trace, &[], Via::Grpc);
        assert_eq!(r["profile"], "sync");
        flagged_in_sync += r["violating"].as_u64().unwrap();
    }
    assert!(flagged_in_sync > 0, "the sync profile flags the late outputs, in serve as in check");
}

#[test]
fn step_windows_report_as_check_does() {
    let Some(files) = shared("vllm-step") else {
        eprintln!("SKIPPED: ../shared/fixtures/vllm-step is not beside this checkout");
        return;
    };
    assert!(!files.is_empty());
    for trace in &files {
        for args in [&[][..], &["--complete"]] {
            let r = serve_equals_check(trace, args, Via::Grpc);
            assert!(r["steps"]["windows"].as_u64().unwrap_or(0) > 0, "{trace:?}: {r}");
        }
    }
}

/// The corruptions of the two-layer, clock and workload rules: serve finds each rule, as check.
#[test]
fn two_layer_corruptions_are_caught_as_check_catches_them() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data("corrupted"))
        .expect("tests/data/corrupted")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".otlp.jsonl"))
        .filter(|p| p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('R')))
        .collect();
    files.sort();
    assert!(files.len() >= 18, "{files:?}");
    for trace in &files {
        let name = trace.file_name().unwrap().to_string_lossy().into_owned();
        let rule = name.split('.').next().unwrap();
        let mut args: Vec<String> = Vec::new();
        if name.contains("complete") {
            args.push("--complete".into());
        }
        if let Some(w) = workload_of(trace) {
            args.extend(["--workload".into(), w]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = serve_equals_check(trace, &args, Via::Grpc);
        assert!(r["violations_by_rule"].get(rule).is_some(), "{name}: serve finds {rule}: {}", r["violations_by_rule"]);
    }
}

/// `--findings` names a violation a relation found (X5 about an API span whose core child is not
/// there), written at shutdown, beside the journeys found violating on their own.
#[test]
fn findings_carry_the_relation_rules() {
    let dir = TempDir::new("layers-findings");
    let findings = dir.path("findings.jsonl");
    let trace = data("corrupted/X5.parent-link-broken-in-a-complete-input.otlp.jsonl");
    let f = findings.display().to_string();
    let serve = Serve::start(&["--pending-timeout", "0", "--complete", "--findings", &f]);
    send(&trace, &serve, Via::Grpc);
    let exited = serve.shutdown();
    assert_eq!(exited.code, Some(1));
    let text = std::fs::read_to_string(&findings).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|l| l["violations"].as_array().unwrap().iter().any(|v| v["rule"] == "X5")), "{text}");
    assert!(lines.iter().all(|l| l["layer"] == "core" || l["layer"] == "api"), "{text}");
}
