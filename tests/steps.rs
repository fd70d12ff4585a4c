//! Step windows (`SPEC.md` §12) against real HEAD runs (`../shared/fixtures/vllm-step/`, when
//! present beside the repository): replaying each run's workload reproduces its step windows —
//! names, ranges, attributes, every event with its attributes — and its journeys, with
//! timestamps (`ts.*`, `step.ts_*`, `step.duration_us`) ignored: they are not reproducible, and the
//! fixtures' journeys carry HEAD's `ts.monotonic_ns`, which this emitter's profile does not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use journey_spec::Workload;
use journey_spec::otel::simulate::{SimulateOptions, simulate};
use serde_json::Value;

const RUNS: [&str; 3] = ["r46_c100_steps", "r47_steps", "r49_steps"];

fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/vllm-step");
    if dir.is_dir() {
        return Some(dir);
    }
    // The shared fixtures sit beside the repository in the development layout and in CI.
    assert!(std::env::var_os("CI").is_none(), "the vllm-step fixtures are missing on CI");
    eprintln!("SKIPPED: ../shared/fixtures/vllm-step is not beside this checkout");
    None
}

/// An OTLP JSON attribute value as a comparable string (int64 as a decimal number).
fn value(v: &Value) -> String {
    let (k, x) = v.as_object().and_then(|o| o.iter().next()).map(|(k, x)| (k.as_str(), x)).unwrap_or(("", v));
    match (k, x) {
        ("intValue", Value::String(s)) => format!("int:{s}"),
        ("intValue", n) => format!("int:{n}"),
        ("doubleValue", n) => format!("double:{n}"),
        (k, x) => format!("{k}:{x}"),
    }
}

/// Attributes without the unreproducible ones, in their order.
fn attributes(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            let key = kv["key"].as_str()?.to_owned();
            let ignored = key.starts_with("ts.") || key.starts_with("step.ts_") || key == "step.duration_us";
            (!ignored).then(|| (key, value(&kv["value"])))
        })
        .collect()
}

type Events = Vec<(String, Vec<(String, String)>)>;

/// A span's comparable content: kind, parent, attributes, events.
#[derive(Debug, PartialEq)]
struct Content {
    kind: i64,
    root: bool,
    attributes: Vec<(String, String)>,
    events: Events,
    dropped: i64,
}

/// Step windows by name and journeys by request id.
fn spans(text: &str) -> (BTreeMap<String, Content>, BTreeMap<String, Content>) {
    let mut windows = BTreeMap::new();
    let mut journeys = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        for rs in v["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                let scope = ss["scope"]["name"].as_str().unwrap_or("");
                for span in ss["spans"].as_array().into_iter().flatten() {
                    let mut attrs = attributes(&span["attributes"]);
                    let events = span["events"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| (e["name"].as_str().unwrap_or("").to_owned(), attributes(&e["attributes"])))
                        .collect();
                    let parent = span["parentSpanId"].as_str().unwrap_or("");
                    let name = span["name"].as_str().unwrap_or("").to_owned();
                    let content = |attributes| Content {
                        kind: span["kind"].as_i64().unwrap_or(-1),
                        root: parent.is_empty(),
                        attributes,
                        events,
                        dropped: span["droppedEventsCount"].as_i64().unwrap_or(0),
                    };
                    if scope == "vllm.scheduler.step" {
                        attrs.sort();
                        assert!(windows.insert(name, content(attrs)).is_none(), "a window twice");
                    } else if name == "llm_core" {
                        let id = attrs.iter().find(|(k, _)| k == "gen_ai.request.id").unwrap().1.clone();
                        assert!(journeys.insert(id, content(attrs)).is_none(), "a request id twice");
                    }
                }
            }
        }
    }
    (windows, journeys)
}

#[test]
fn replaying_a_step_run_reproduces_its_windows_and_journeys() {
    let Some(dir) = fixtures() else { return };
    for run in RUNS {
        let workload = Workload::from_file(dir.join(format!("{run}.workload.json"))).unwrap();
        let settings = workload.step_tracing.as_ref().expect("step tracing in the workload");
        assert!(!settings.summary_steps.is_empty());
        // The fork's default limit: none of these windows reaches it, so nothing is dropped.
        let options = SimulateOptions { event_limit: 128, ..SimulateOptions::default() };
        let (bytes, _) = simulate(&workload, Vec::new(), &options, |_| {}).unwrap();
        let ours = String::from_utf8(bytes).unwrap();
        let theirs = std::fs::read_to_string(dir.join(format!("{run}.otlp.jsonl"))).unwrap();
        let (our_windows, our_journeys) = spans(&ours);
        let (their_windows, their_journeys) = spans(&theirs);
        assert!(!their_windows.is_empty() && !their_journeys.is_empty(), "{run}");
        assert_eq!(our_windows.len(), their_windows.len(), "{run}: windows");
        for (name, theirs) in &their_windows {
            let ours = our_windows.get(name).unwrap_or_else(|| panic!("{run}: no {name}"));
            assert_eq!(
                (ours.kind, ours.root, &ours.attributes),
                (theirs.kind, theirs.root, &theirs.attributes),
                "{run}: {name}"
            );
            assert_eq!(ours.events.len(), theirs.events.len(), "{run}: {name}: events");
            for (k, (o, t)) in ours.events.iter().zip(&theirs.events).enumerate() {
                assert_eq!(o, t, "{run}: {name}: event {k}");
            }
            assert_eq!(ours.dropped, theirs.dropped, "{run}: {name}");
        }
        assert_eq!(our_journeys.len(), their_journeys.len(), "{run}: journeys");
        for (id, theirs) in &their_journeys {
            let ours = our_journeys.get(id).unwrap_or_else(|| panic!("{run}: no journey {id}"));
            assert_eq!(ours.events, theirs.events, "{run}: journey {id}");
        }
    }
}

#[test]
fn the_step_workloads_round_trip_through_json() {
    let Some(dir) = fixtures() else { return };
    for run in RUNS {
        let w = Workload::from_file(dir.join(format!("{run}.workload.json"))).unwrap();
        let back = Workload::from_json(&w.to_json()).unwrap();
        assert_eq!(back, w, "{run}");
        let settings = w.step_tracing.as_ref().unwrap();
        assert!(settings.rich_steps.iter().all(|s| settings.summarized(*s)), "{run}: rich ⊆ summary");
    }
}

#[test]
fn a_workload_without_step_tracing_still_reads_and_an_unknown_config_key_is_rejected() {
    let base = r#"{"config": {"max_num_seqs": 2, "max_num_batched_tokens": 64, "block_size": 16,
        "num_blocks": 8, "max_model_len": 128}, "steps": []}"#;
    let w = Workload::from_json(base).unwrap();
    assert_eq!(w.step_tracing, None);
    assert!(!w.to_json().contains("step_tracing"));
    let unknown = base.replace("\"max_model_len\": 128", "\"max_model_len\": 128, \"stepp_tracing\": {}");
    assert!(Workload::from_json(&unknown).unwrap_err().to_string().contains("stepp_tracing"));
    let zero = base.replace(
        "\"max_model_len\": 128",
        r#""max_model_len": 128, "step_tracing": {"sample_rate": 1.0, "rich_subsample_rate": 0.0, "closure_interval": 0}"#,
    );
    assert!(Workload::from_json(&zero).unwrap_err().to_string().contains("closure_interval"));
}
