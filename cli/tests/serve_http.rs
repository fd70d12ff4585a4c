//! `journey serve`'s HTTP side over real loopback sockets: the OTLP/HTTP error responses, the
//! body limit before and after decompression, `--expect-journeys`, SIGTERM, `--report`.

mod serve_support;

use std::io::Write as _;
use std::process::Command;

use serve_support::*;

/// One recorded export request (one line of a fixture) as OTLP JSON.
fn fixture_line() -> Vec<u8> {
    let text = std::fs::read_to_string(data("vllm/basic.otlp.jsonl")).unwrap();
    text.lines().next().unwrap().as_bytes().to_vec()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const PROTO: (&str, &str) = ("Content-Type", "application/x-protobuf");

#[test]
fn error_responses_follow_otlp_http() {
    let serve = Serve::start(&["--pending-timeout", "0"]);
    let line = fixture_line();

    // JSON, plain and gzip: accepted, answered in JSON.
    let (status, body) = http(serve.http, "POST", "/v1/traces", &[JSON], &line);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _) = http(serve.http, "POST", "/v1/traces", &[JSON, ("Content-Encoding", "gzip")], &gzip(&line));
    assert_eq!(status, 200);

    // Another content type: 415, with a Status saying what is expected.
    let (status, body) = http(serve.http, "POST", "/v1/traces", &[("Content-Type", "text/plain")], &line);
    assert_eq!(status, 415);
    let s: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(s["message"].as_str().unwrap().contains("application/x-protobuf"), "{s}");
    // Another content encoding: 415.
    let (status, _) = http(serve.http, "POST", "/v1/traces", &[JSON, ("Content-Encoding", "br")], &line);
    assert_eq!(status, 415);

    // Broken bodies: 400 with a google.rpc.Status in the request's encoding.
    let (status, body) = http(serve.http, "POST", "/v1/traces", &[JSON], b"{\"resourceSpans\": 7}");
    assert_eq!(status, 400);
    let s: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(s["code"], 3, "{s}");
    let (status, body) = http(serve.http, "POST", "/v1/traces", &[PROTO], &[0x0a, 0xff, 0xff, 0xff]);
    assert_eq!(status, 400);
    // Field 1 (code), varint 3: INVALID_ARGUMENT; then field 2, the message.
    assert_eq!(&body[..3], &[0x08, 0x03, 0x12], "{body:?}");
    let (status, _) = http(serve.http, "POST", "/v1/traces", &[PROTO, ("Content-Encoding", "gzip")], b"not gzip");
    assert_eq!(status, 400);

    // Over the 20 MiB limit: 413, sent as is or as a small gzip that inflates past it.
    let big = vec![b' '; (20 << 20) + 1];
    let (status, _) = http(serve.http, "POST", "/v1/traces", &[JSON], &big);
    assert_eq!(status, 413);
    let bomb = gzip(&big);
    assert!(bomb.len() < 1 << 20);
    let (status, body) = http(serve.http, "POST", "/v1/traces", &[JSON, ("Content-Encoding", "gzip")], &bomb);
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("once decompressed"));

    let (status, _) = http(serve.http, "GET", "/v1/traces", &[], b"");
    assert_eq!(status, 405);

    let exited = serve.shutdown();
    let report = exited.report();
    // The refused bodies are input errors, as malformed lines are for check: exit status 2.
    assert_eq!(report["serve"]["rejected_requests"], 7, "{report}");
    assert_eq!(report["input_errors"], 7);
    assert_eq!(report["journeys"], 1);
    assert_eq!(report["serve"]["outcome"], "incomplete");
    assert_eq!(exited.code, Some(2));
    assert!(exited.stderr.contains("POST /v1/traces refused: unsupported content type"), "{}", exited.stderr);
}

#[test]
fn no_journey_is_a_finding() {
    let serve = Serve::start(&["--expect-journeys", "3"]);
    let exited = serve.shutdown();
    let report = exited.report();
    assert_eq!(report["journeys"], 0);
    assert_eq!(report["serve"]["outcome"], "no_journeys");
    assert_eq!(report["serve"]["expect_journeys"], 3);
    assert_eq!(exited.code, Some(2), "fewer journeys than expected fails");
    assert!(exited.stderr.contains("no journey was received"), "{}", exited.stderr);
    assert!(exited.stderr.contains("0 journeys received, fewer than the 3 expected"), "{}", exited.stderr);

    // Without --expect-journeys an empty run passes, but says so.
    let exited = Serve::start(&[]).shutdown();
    assert_eq!(exited.code, Some(0));
    assert!(exited.stderr.contains("no journey was received"));
}

#[test]
fn sigterm_flushes_the_report_to_a_file() {
    let dir = TempDir::new("sigterm");
    let report_path = dir.path("report.json");
    let serve = Serve::start(&[
        "--pending-timeout",
        "600",
        "--expect-journeys",
        "1",
        "--report",
        report_path.to_str().unwrap(),
    ]);
    let (status, _) = http(serve.http, "POST", "/v1/traces", &[JSON], &fixture_line());
    assert_eq!(status, 200);
    let kill = Command::new("kill").args(["-TERM", &serve.pid().to_string()]).status().expect("kill runs");
    assert!(kill.success());
    let exited = serve.wait();
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    assert_eq!(exited.stdout, "", "the report goes to --report");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    // Pending at SIGTERM, decided by the flush.
    assert_eq!(report["journeys"], 1);
    assert_eq!(report["conforming"], 1);
    assert_eq!(report["serve"]["outcome"], "conforming");
    assert_eq!(report["serve"]["pending"], 0);
}

#[test]
fn a_taken_port_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let out = Command::new(JOURNEY).args(["serve", "--grpc", "127.0.0.1:0", "--http", &addr]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen for OTLP/HTTP on {addr}")), "{stderr}");
}

/// The receiver's core, without sockets: pending, deciding, shedding, late records.
mod core {
    use std::time::{Duration, Instant};

    use journey_spec::serve::{Accepted, Ingest, IngestOptions, Outcome, Transport};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};

    use super::fixture_line;

    /// The fixture's first request with its span copied `n` times under fresh span and request
    /// ids (one request id twice over the same time would break R14).
    fn request(n: u64) -> ExportTraceServiceRequest {
        let mut r: ExportTraceServiceRequest = serde_json::from_slice(&fixture_line()).unwrap();
        let ss = &mut r.resource_spans[0].scope_spans[0];
        let span = ss.spans[0].clone();
        ss.spans = (0..n)
            .map(|i| {
                let mut s = span.clone();
                s.span_id = (i + 1).to_be_bytes().to_vec();
                for kv in &mut s.attributes {
                    if kv.key == "gen_ai.request.id" {
                        kv.value = Some(AnyValue { value: Some(any_value::Value::StringValue(format!("r{i}"))) });
                    }
                }
                s
            })
            .collect();
        r
    }

    fn options(max_pending: usize, timeout_ms: u64) -> IngestOptions {
        IngestOptions { max_pending, pending_timeout: Duration::from_millis(timeout_ms), ..IngestOptions::default() }
    }

    #[test]
    fn a_span_waits_for_its_timeout_after_its_last_record() {
        let mut ingest = Ingest::new(options(100, 1000), None);
        let t0 = Instant::now();
        // The span's events split over two records, the second 600 ms later.
        let mut first = request(1);
        let mut second = request(1);
        first.resource_spans[0].scope_spans[0].spans[0].events.truncate(2);
        second.resource_spans[0].scope_spans[0].spans[0].events.drain(..2);
        ingest.ingest(first, 0, Transport::Grpc, t0);
        ingest.poll(t0 + Duration::from_millis(600)).unwrap();
        ingest.ingest(second, 0, Transport::Grpc, t0 + Duration::from_millis(600));
        ingest.poll(t0 + Duration::from_millis(1500)).unwrap();
        assert_eq!(
            (ingest.pending(), ingest.summary().journeys),
            (1, 0),
            "1000 ms after the last record, not the first"
        );
        ingest.poll(t0 + Duration::from_millis(1600)).unwrap();
        assert_eq!((ingest.pending(), ingest.summary().journeys), (0, 1));
        // Both halves make one conforming journey of four events.
        assert_eq!((ingest.summary().conforming, ingest.summary().events), (1, 4));
        assert_eq!(ingest.outcome(), Outcome::Conforming);
        assert_eq!(ingest.exit_status(), 0);
    }

    /// Every span of `file` in a request of its own, each let go before the next arrives: the
    /// relations (R13, R14, the API/core pairs and X rules) are still decided as `check` decides
    /// them on the file, because they are decided over everything let go.
    fn one_span_per_release(file: &str) {
        use journey_spec::otel::{CheckOptions, Summary, check_trace, read_trace};
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

        let text = std::fs::read_to_string(super::data(file)).unwrap();
        let mut ingest = Ingest::new(options(1_000_000, 1000), None);
        let t0 = Instant::now();
        let mut n = 0u32;
        for line in text.lines() {
            let r: ExportTraceServiceRequest = serde_json::from_str(line).unwrap();
            for rs in &r.resource_spans {
                for ss in &rs.scope_spans {
                    for span in &ss.spans {
                        let one = ExportTraceServiceRequest {
                            resource_spans: vec![ResourceSpans {
                                resource: rs.resource.clone(),
                                scope_spans: vec![ScopeSpans {
                                    scope: ss.scope.clone(),
                                    spans: vec![span.clone()],
                                    ..ScopeSpans::default()
                                }],
                                ..ResourceSpans::default()
                            }],
                        };
                        let at = t0 + Duration::from_secs(2) * n;
                        ingest.ingest(one, 0, Transport::Grpc, at);
                        ingest.poll(at + Duration::from_millis(1500)).unwrap();
                        assert_eq!(ingest.pending(), 0, "{file}: span {n} was let go on its own");
                        n += 1;
                    }
                }
            }
        }
        assert!(n > 1, "{file}");
        ingest.flush().unwrap();
        let mut want = Summary::new();
        want.add(check_trace(read_trace(file, text.as_bytes(), |e| panic!("{e}")), &CheckOptions::default()), 0);
        let got = ingest.summary();
        let key = |s: &Summary| {
            (
                (s.journeys, s.events, s.conforming, s.incomplete, s.violating),
                (s.api_spans, s.api_violating, s.pairs, s.unpaired_api, s.unpaired_core),
                s.violations_by_rule(),
            )
        };
        assert_eq!(key(got), key(&want), "{file}");
    }

    #[test]
    fn relations_are_decided_across_spans_let_go_apart() {
        for file in [
            "vllm-head/api_r42.otlp.jsonl",
            "vllm-head/api_atomicity2.otlp.jsonl",
            "corrupted/R13.admitted-after-a-preemption-in-the-same-step.otlp.jsonl",
            "corrupted/R14.request-id-reused-while-live.otlp.jsonl",
            "corrupted/X3.handoff-after-the-core-span-start.otlp.jsonl",
            "corrupted/X4.disconnect-after-the-core-finished.otlp.jsonl",
        ] {
            one_span_per_release(file);
        }
    }

    #[test]
    fn the_cap_sheds_new_spans_and_counts_them() {
        let mut ingest = Ingest::new(options(10, 0), None);
        let now = Instant::now();
        let accepted = ingest.ingest(request(100), 0, Transport::HttpJson, now);
        assert_eq!(accepted, Accepted { records: 10, rejected: 90 });
        assert!(accepted.message(10).contains("90 of 100 spans left out"), "{}", accepted.message(10));
        assert_eq!(ingest.pending(), 10);
        let r = *ingest.received();
        assert_eq!((r.shed_records, r.shed_spans, r.shed_journey_events), (90, 90, 360));
        // A later record of a shed span is shed too, even with room again: a journey cut in
        // two would be checked as broken.
        ingest.flush().unwrap();
        let again = ingest.ingest(request(100), 0, Transport::HttpJson, now);
        assert_eq!(again, Accepted { records: 0, rejected: 100 }, "10 late, 90 of shed spans");
        let r = *ingest.received();
        assert_eq!((r.shed_records, r.shed_spans, r.late_records), (180, 90, 10));
        assert_eq!(ingest.summary().journeys, 10);
        assert_eq!(ingest.summary().conforming, 10);
        assert_eq!(ingest.outcome(), Outcome::Incomplete, "what was kept conforms; the run is not a pass");
        assert_eq!(ingest.exit_status(), 2);
        let metrics = ingest.prometheus();
        assert!(metrics.contains("\njourney_records_shed_total 180\n"), "{metrics}");
        assert!(metrics.contains("\njourney_late_records_total 10\n"), "{metrics}");
    }
}
