//! The `journey` command line, run as a user runs it: every real fixture checks clean, the JSON
//! report decodes into this file's own mirror of the documented format (unknown fields are
//! errors, so any drift of the format fails here), malformed input is reported line by line
//! while good lines are still checked, exit statuses follow the contract.

// The mirror types decode every field; not every field is asserted.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;

// ---- mirror of the JSON report (journey_spec::otel::json) ----
// Every field is decoded (which proves it is there, with its type); not every one is asserted.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    version: u32,
    profile: String,
    inputs: Vec<Input>,
    spans: u64,
    journeys: u64,
    events: u64,
    conforming: u64,
    incomplete: u64,
    violating: u64,
    input_errors: u64,
    allowed: Vec<String>,
    violations: Vec<Violation>,
    incomplete_journeys: Vec<Incomplete>,
    stats: Stats,
    violations_by_rule: std::collections::BTreeMap<String, u64>,
    problems: Vec<Problem>,
    complete: bool,
    api_spans: u64,
    api_violating: u64,
    pairs: u64,
    unpaired_api: u64,
    unpaired_core: u64,
    absent_requests: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Problem {
    input: String,
    path: String,
    line: Option<u64>,
    record: Option<u64>,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    path: String,
    lines: u64,
    spans: u64,
    journeys: u64,
    errors: u64,
    format: Option<String>,
    compression: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Violation {
    path: String,
    line: u64,
    request_id: Option<String>,
    trace_id: String,
    span_id: String,
    rule: String,
    rule_name: String,
    layer: String,
    event_index: usize,
    event: Option<String>,
    message: String,
    detail: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Incomplete {
    path: String,
    request_id: Option<String>,
    trace_id: String,
    span_id: String,
    dropped_events: u32,
    events: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stats {
    queue_time_s: Option<Distribution>,
    time_to_first_token_s: Option<Distribution>,
    end_to_end_s: Option<Distribution>,
    preemptions: Vec<PreemptionBin>,
    finish_status: FinishStatus,
    unfinished: u64,
    other_events: u64,
    duplicate_events: u64,
    without_request_id: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Distribution {
    count: usize,
    min: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreemptionBin {
    preemptions: u64,
    journeys: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishStatus {
    stopped: u64,
    length: u64,
    aborted: u64,
    error: u64,
    ignored: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    id: String,
    name: String,
    scope: String,
    layer: String,
    statement: String,
    doc: String,
}

// ---- helpers ----

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data").join(path)
}

fn journey(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_journey")).args(args).args(paths).output().unwrap()
}

fn stdout(o: &Output) -> &str {
    std::str::from_utf8(&o.stdout).unwrap()
}

fn stderr(o: &Output) -> &str {
    std::str::from_utf8(&o.stderr).unwrap()
}

fn report(o: &Output) -> Report {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// A scratch file for one test.
fn scratch(name: &str, content: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Every fixture with its journey count and how many of them are incomplete (README tables).
const FIXTURES: &[(&str, u64, u64)] = &[
    ("vllm/basic.otlp.jsonl", 200, 0),
    ("vllm/kv_pressure.otlp.jsonl", 150, 0),
    ("vllm-random/w1.otlp.jsonl", 32, 0),
    ("vllm-random/w2.otlp.jsonl", 67, 0),
    ("vllm-random/w3.otlp.jsonl", 48, 0),
    ("vllm-random/w4.otlp.jsonl", 55, 0),
    ("vllm-random/w5.otlp.jsonl", 54, 0),
    ("vllm-random/w6.otlp.jsonl", 25, 1),
];

// ---- tests ----

#[test]
fn every_fixture_checks_clean() {
    for &(name, journeys, incomplete) in FIXTURES {
        let o = journey(&["check", "--format", "json"], &[&data(name)]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "{name}: {}", stderr(&o));
        let r = report(&o);
        assert_eq!(r.version, 1);
        assert_eq!((r.journeys, r.spans, r.violating), (journeys, journeys, 0), "{name}");
        assert_eq!((r.incomplete, r.conforming), (incomplete, journeys - incomplete), "{name}");
        assert!(r.violations.is_empty(), "{name}: {:?}", r.violations);
        assert_eq!(r.incomplete_journeys.len() as u64, incomplete, "{name}");
        assert_eq!(r.input_errors, 0);
        assert_eq!(r.inputs.len(), 1);
        assert_eq!(r.inputs[0].journeys, journeys);
        let st = &r.stats;
        let f = &st.finish_status;
        assert_eq!(f.stopped + f.length + f.aborted + f.error + f.ignored + st.unfinished, journeys, "{name}");
        assert_eq!(st.preemptions.iter().map(|b| b.journeys).sum::<u64>(), journeys, "{name}");
        let e2e = st.end_to_end_s.as_ref().unwrap();
        assert!(e2e.min <= e2e.p50 && e2e.p50 <= e2e.p90 && e2e.p90 <= e2e.p99 && e2e.p99 <= e2e.max, "{e2e:?}");
    }
}

#[test]
fn all_fixtures_at_once_and_the_incomplete_journey_of_w6() {
    let paths: Vec<PathBuf> = FIXTURES.iter().map(|f| data(f.0)).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let o = journey(&["check", "--format", "json"], &refs);
    assert_eq!(o.status.code(), Some(0));
    let r = report(&o);
    assert_eq!(r.journeys, FIXTURES.iter().map(|f| f.1).sum::<u64>());
    assert_eq!(r.events, 800 + 2180 + 138 + 1234 + 198 + 1034 + 234 + 624, "the event counts of the READMEs");
    let w6 = &r.incomplete_journeys[0];
    assert!(w6.path.ends_with("w6.otlp.jsonl"));
    assert_eq!((w6.request_id.as_deref(), w6.dropped_events, w6.events), (Some("w6-018"), 42, 128));
    assert_eq!((w6.trace_id.len(), w6.span_id.len()), (32, 16));
    // kv_pressure: 790 preemptions in 93 requests (its README).
    let kv = journey(&["check", "--format", "json"], &[&data("vllm/kv_pressure.otlp.jsonl")]);
    let bins = report(&kv).stats.preemptions;
    assert_eq!(bins.iter().filter(|b| b.preemptions > 0).map(|b| b.journeys).sum::<u64>(), 93);
    assert_eq!(bins.iter().map(|b| b.preemptions * b.journeys).sum::<u64>(), 790);
}

#[test]
fn text_report_shows_summary_and_statistics() {
    let o = journey(&["check"], &[&data("vllm/kv_pressure.otlp.jsonl")]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for needle in [
        "150 journeys",
        "conforming 150, incomplete 0, violating 0",
        "queue time",
        "time to first token",
        "end-to-end latency",
        "p99",
        "preemptions per request",
        "finish status",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn violations_in_json_name_journey_rule_and_event() {
    let path = data("corrupted/R9.preemption-count-off-by-one.otlp.jsonl");
    let o = journey(&["check", "--format", "json"], &[&path]);
    assert_eq!(o.status.code(), Some(1));
    let r = report(&o);
    assert_eq!((r.violating, r.conforming), (1, 0));
    let [v] = &r.violations[..] else { panic!("{:?}", r.violations) };
    assert_eq!(
        (v.rule.as_str(), v.rule_name.as_str(), v.event.as_deref()),
        ("R9", "preemption-count", Some("FINISHED"))
    );
    assert_eq!(v.layer, "core");
    assert!(!r.complete && (r.api_spans, r.api_violating, r.pairs, r.absent_requests) == (0, 0, 0, 0));
    assert_eq!((r.unpaired_api, r.unpaired_core), (0, 0));
    assert!(v.request_id.as_deref().is_some_and(|id| id.starts_with("kv_pressure-")));
    assert_eq!((v.trace_id.len(), v.span_id.len(), v.line), (32, 16, 1));
    assert!(v.message.contains("num_preemptions"), "{}", v.message);
    // The same finding as data: a counter with what the history implies and what was found.
    assert_eq!(
        v.detail,
        serde_json::json!({"kind": "counter", "field": "num_preemptions", "expected": 1, "found": 2,
                           "counts": "PREEMPTED event(s)"})
    );
    assert_eq!(v.path, path.display().to_string());
    // A missing FINISHED points past the last event, at no event.
    let o = journey(&["check", "--format", "json"], &[&data("corrupted/R3.finished-dropped.otlp.jsonl")]);
    let r = report(&o);
    assert_eq!((r.violations[0].event_index, r.violations[0].event.as_deref()), (3, None));
    // The text report shows the violating journey's timeline with the broken rule.
    let text = journey(&["check"], &[&path]);
    assert!(stdout(&text).contains("R9 preemption-count at event #"), "{}", stdout(&text));
    assert!(stdout(&text).contains("← R9"), "{}", stdout(&text));
}

#[test]
fn allow_drops_a_rule_by_id_or_name() {
    let path = data("corrupted/R9.preemption-count-off-by-one.otlp.jsonl");
    for allow in ["R9", "r9", "preemption-count"] {
        let o = journey(&["check", "--format", "json", "--allow", allow], &[&path]);
        assert_eq!(o.status.code(), Some(0), "--allow {allow}");
        let r = report(&o);
        assert_eq!((r.violating, r.conforming, r.allowed), (0, 1, vec!["R9".to_owned()]));
    }
    // Another rule allowed: still violating.
    let o = journey(&["check", "--allow", "R7", "--allow", "R1"], &[&path]);
    assert_eq!(o.status.code(), Some(1));
    // An unknown rule is a usage error.
    let o = journey(&["check", "--allow", "R99"], &[&path]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown rule \"R99\""), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn malformed_lines_are_reported_and_the_rest_is_checked() {
    let good = std::fs::read_to_string(data("vllm-random/w1.otlp.jsonl")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let mut input = String::new();
    input += lines[0];
    input += "\nnot json\n\n"; // line 2 broken, line 3 blank
    input += &lines[1][..lines[1].len() / 2]; // line 4 truncated
    input += "\n{\"resourceSpans\": 7}\n"; // line 5: wrong type
    for l in &lines[2..] {
        input += l;
        input += "\n";
    }
    let mut bytes = input.into_bytes();
    bytes.extend_from_slice(b"\xff\xfe{\n"); // invalid UTF-8, last line
    let path = scratch("malformed.jsonl", &bytes);
    let o = journey(&["check", "--format", "json"], &[&path]);
    assert_eq!(o.status.code(), Some(2));
    let p = path.display().to_string();
    let reported: Vec<u64> = stderr(&o)
        .lines()
        .map(|l| {
            let rest = l.strip_prefix(&p).and_then(|r| r.strip_prefix(':')).unwrap_or_else(|| panic!("{l}"));
            rest.split(':').next().unwrap().parse().unwrap()
        })
        .collect();
    let last = lines.len() as u64 + 4;
    assert_eq!(reported, [2, 4, 5, last], "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r.input_errors, 4);
    assert_eq!(r.inputs[0].errors, 4);
    assert_eq!(r.inputs[0].lines, last);
    let lost = {
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        v["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap().len() as u64
    };
    assert_eq!(r.journeys, 32 - lost, "every good line is checked");
    assert_eq!(r.violating, 0);
}

#[test]
fn unreadable_inputs_are_errors_and_the_others_are_checked() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("does-not-exist.jsonl");
    // A directory is read as its files (rotated files); one that cannot be opened is an error.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("unreadable-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let dangling = dir.join("a.jsonl");
    if std::fs::symlink_metadata(&dangling).is_err() {
        std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
    }
    let good = data("vllm-random/w1.otlp.jsonl");
    let o = journey(&["check", "--format", "json"], &[&missing, &dir, &good]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 2, "{}", stderr(&o));
    assert!(stderr(&o).starts_with(&format!("{}: cannot read", missing.display())), "{}", stderr(&o));
    assert_eq!(report(&o).journeys, 32);
}

#[test]
fn pretty_printed_document_and_stdin() {
    // One JSON document over many lines, as `jq .` writes it.
    let text = std::fs::read_to_string(data("vllm-random/w3.otlp.jsonl")).unwrap();
    let mut all = Vec::new();
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        all.extend(v["resourceSpans"].as_array().unwrap().iter().cloned());
    }
    let doc = serde_json::to_string_pretty(&serde_json::json!({ "resourceSpans": all })).unwrap();
    let path = scratch("pretty.json", doc.as_bytes());
    let o = journey(&["check", "--format", "json"], &[&path]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(report(&o).journeys, 48);

    // The same through standard input, cut short: an error naming the line it starts on.
    let mut child = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(["check", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&doc.as_bytes()[..doc.len() / 2]).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), "-:1: the JSON value starting here is unfinished at the end of the input (truncated?)\n");
}

#[test]
fn a_span_over_several_lines_is_one_journey() {
    // Every event of every span of w2 on its own line, lines reversed, each line twice.
    let text = std::fs::read_to_string(data("vllm-random/w2.otlp.jsonl")).unwrap();
    let mut lines = Vec::new();
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        for rs in v["resourceSpans"].as_array().unwrap() {
            for ss in rs["scopeSpans"].as_array().unwrap() {
                for span in ss["spans"].as_array().unwrap() {
                    for event in span["events"].as_array().unwrap() {
                        let mut part = span.clone();
                        part["events"] = serde_json::json!([event]);
                        let mut r = rs.clone();
                        r["scopeSpans"] = serde_json::json!([{ "scope": ss["scope"], "spans": [part] }]);
                        let line = serde_json::to_string(&serde_json::json!({ "resourceSpans": [r] })).unwrap();
                        lines.push(line.clone());
                        lines.push(line);
                    }
                }
            }
        }
    }
    lines.reverse();
    let path = scratch("scattered.jsonl", (lines.join("\n") + "\n").as_bytes());
    let o = journey(&["check", "--format", "json"], &[&path]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!((r.journeys, r.events, r.conforming), (67, 1234, 67));
    assert_eq!(r.stats.duplicate_events, 1234);
}

#[test]
fn a_contradicting_record_is_an_input_error() {
    let text = std::fs::read_to_string(data("corrupted/R14.request-id-reused-while-live.otlp.jsonl")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Same span ids, another request id: not the same span.
    let spans = v["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array_mut().unwrap();
    let first = spans[0].clone();
    spans[1] = first;
    spans[1]["attributes"][0]["value"]["stringValue"] = "someone-else".into();
    let path = scratch("conflict.jsonl", serde_json::to_string(&v).unwrap().as_bytes());
    let o = journey(&["check", "--format", "json"], &[&path]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(":1: span ") && stderr(&o).contains("\"someone-else\""), "{}", stderr(&o));
    assert_eq!((report(&o).journeys, report(&o).conforming), (1, 1));
}

#[test]
fn rules_lists_the_catalogue() {
    let o = journey(&["rules", "--format", "json"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let c: Catalogue = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = c.rules.iter().map(|r| r.id.as_str()).collect();
    let mut expected: Vec<String> = (1..=14).map(|i| format!("R{i}")).collect();
    expected.extend(["C2", "C3", "W1"].map(String::from));
    expected.extend((1..=4).map(|i| format!("A{i}")));
    expected.extend((1..=6).map(|i| format!("X{i}")));
    assert_eq!(ids, expected);
    assert!(c.rules.iter().all(|r| !r.name.is_empty() && !r.statement.is_empty() && !r.doc.is_empty()));
    assert_eq!(c.rules[12].scope, "instance");
    for r in &c.rules {
        let layer = match &r.id[..1] {
            "A" => "api",
            "X" => "cross",
            _ => "core",
        };
        assert_eq!(r.layer, layer, "{r:?}");
    }
    let text = journey(&["rules"], &[]);
    assert_eq!(stdout(&text).lines().count(), expected.len());
    assert!(stdout(&text).starts_with("R1   queued-first"));
    assert!(
        stdout(&text).lines().any(|l| l.starts_with("X5   sampling-atomicity             cross  pair")),
        "{}",
        stdout(&text)
    );
}

#[test]
fn timeline_shows_preemptions_and_the_first_token() {
    let path = data("vllm/kv_pressure.otlp.jsonl");
    let o = journey(&["timeline", "--request", "kv_pressure-0042"], &[&path]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("request \"kv_pressure-0042\""), "{text}");
    assert!(text.contains("5 preemptions"), "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("PREEMPTED ▼")).count(), 5, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("SCHEDULED(RESUME)")).count(), 5, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("FIRST_TOKEN ★")).count(), 1, "{text}");
    assert!(text.contains("verdict: conforming"), "{text}");
    let lane = text.lines().find(|l| l.contains("time lane")).unwrap();
    assert!(lane.contains('★') && lane.contains('▼') && lane.contains('┃'), "{lane}");
}

#[test]
fn timeline_of_a_violating_journey_and_of_an_unknown_request() {
    let path = data("corrupted/R11.first-token-twice.otlp.jsonl");
    let o = journey(&["timeline", "--request", "basic-0004"], &[&path]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("✗ R11 first-token at event #3"), "{}", stdout(&o));
    let o = journey(&["timeline", "--request", "basic-0004", "--allow", "R11"], &[&path]);
    assert_eq!(o.status.code(), Some(0));
    let o = journey(&["timeline", "--request", "nobody"], &[&path]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no journey has request id \"nobody\""), "{}", stderr(&o));
}

#[test]
fn usage_errors_and_help() {
    for (args, code) in [
        (&["check"][..], 2),
        (&["frobnicate"], 2),
        (&["check", "--format", "xml", "x"], 2),
        (&["timeline", "x"], 2),
        (&["--help"], 0),
        (&["--version"], 0),
    ] {
        let o = journey(args, &[]);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
    }
    let help = journey(&["check", "--help"], &[]);
    assert!(stdout(&help).contains("EXIT STATUS"), "{}", stdout(&help));
}

#[test]
fn broken_pipe_exits_quietly() {
    let path = data("corrupted/R13.admitted-after-a-preemption-in-the-same-step.otlp.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_journey"))
        .arg("check")
        .args(std::iter::repeat_n(&path, 200))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}
