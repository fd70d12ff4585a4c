//! The vLLM fork's fixtures (`tests/data/`): workload files and the journeys its own scheduler
//! produced for them, read with a minimal OTLP JSON walker (test code; the product reader is
//! `journey_spec::otel`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use journey_spec::model::JourneyEvent;
use journey_spec::wire::{self, WireValue};

/// `tests/data` of the repository, from the root package or the CLI package (`cli/`).
pub fn data_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let here = manifest.join("tests/data");
    if here.is_dir() { here } else { manifest.join("../tests/data") }
}

/// The eight fixture runs: (name, workload file, OTLP JSON Lines file).
pub fn all() -> Vec<(String, PathBuf, PathBuf)> {
    let root = data_dir();
    let mut out = Vec::new();
    for (dir, names) in
        [("vllm", &["basic", "kv_pressure"][..]), ("vllm-random", &["w1", "w2", "w3", "w4", "w5", "w6"][..])]
    {
        for n in names {
            let d = root.join(dir);
            out.push((n.to_string(), d.join(format!("{n}.workload.json")), d.join(format!("{n}.otlp.jsonl"))));
        }
    }
    out
}

/// The six real `AsyncScheduler` runs of the fork (`../shared/fixtures/vllm-async/`, beside the
/// repository): (name, workload file, OTLP JSON Lines file), or `None` when the directory is not
/// there (CI has it: a caller must fail there rather than skip).
pub fn async_all() -> Option<Vec<(String, PathBuf, PathBuf)>> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = [manifest.join("../shared/fixtures/vllm-async"), manifest.join("../../shared/fixtures/vllm-async")]
        .into_iter()
        .find(|d| d.is_dir())?;
    let names = ["r30_async", "r30_late_async", "r31_async", "r33_async", "r35_async", "r36_async"];
    Some(
        names
            .iter()
            .map(|n| (n.to_string(), dir.join(format!("{n}.workload.json")), dir.join(format!("{n}.otlp.jsonl"))))
            .collect(),
    )
}

/// A journey read from a fixture span.
#[derive(Debug, Clone)]
pub struct FixtureJourney {
    pub events: Vec<JourneyEvent>,
    pub dropped: u32,
    pub trace_id: String,
    pub parent_span_id: String,
}

fn value(v: &serde_json::Value) -> WireValue<'_> {
    if let Some(s) = v.get("stringValue").and_then(|s| s.as_str()) {
        WireValue::Str(s)
    } else if let Some(i) = v.get("intValue") {
        let i = i.as_str().and_then(|s| s.parse().ok()).or_else(|| i.as_i64()).unwrap_or(i64::MIN);
        WireValue::Int(i)
    } else if let Some(d) = v.get("doubleValue").and_then(|d| d.as_f64()) {
        WireValue::Double(d)
    } else {
        WireValue::Other("other")
    }
}

/// Journeys of a fixture file by request id.
pub fn journeys(path: &Path) -> BTreeMap<String, FixtureJourney> {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let doc: serde_json::Value = serde_json::from_str(line).expect("fixture line is JSON");
        for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for span in ss["spans"].as_array().into_iter().flatten() {
                    let id = span["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|a| a["key"] == "gen_ai.request.id")
                        .and_then(|a| a["value"]["stringValue"].as_str())
                        .expect("request id")
                        .to_owned();
                    let mut events = Vec::new();
                    for e in span["events"].as_array().into_iter().flatten() {
                        let name = e["name"].as_str().expect("event name");
                        let attrs = e["attributes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|a| (a["key"].as_str().expect("key"), value(&a["value"])));
                        events.push(wire::decode(name, None, attrs).expect("fixture event decodes"));
                    }
                    let dropped = span["droppedEventsCount"].as_u64().unwrap_or(0) as u32;
                    let trace_id = span["traceId"].as_str().unwrap_or("").to_owned();
                    let parent_span_id = span["parentSpanId"].as_str().unwrap_or("").to_owned();
                    let prev = out.insert(id.clone(), FixtureJourney { events, dropped, trace_id, parent_span_id });
                    assert!(prev.is_none(), "request id {id} appears twice");
                }
            }
        }
    }
    out
}

/// The fields of an event that the fixtures fix (everything but the clocks).
pub fn essence(e: &JourneyEvent) -> String {
    let p = &e.progress;
    format!(
        "{}{}{} step={} phase={} prefill={}/{} decode={}/{} preemptions={}",
        e.kind,
        e.schedule_kind.map(|k| format!("({k})")).unwrap_or_default(),
        e.finish_status.map(|s| format!("({s})")).unwrap_or_default(),
        e.step,
        e.phase,
        p.prefill_done,
        p.prefill_total,
        p.decode_done,
        p.decode_max,
        e.num_preemptions
    )
}

/// The first difference between our journeys and a fixture's, or `None` when they agree
/// (for spans that lost their oldest events, ours must end with the fixture's).
pub fn first_difference(
    ours: &BTreeMap<String, Vec<JourneyEvent>>,
    theirs: &BTreeMap<String, FixtureJourney>,
) -> Option<String> {
    for id in theirs.keys() {
        if !ours.contains_key(id) {
            return Some(format!("request {id}: in the fixture, not in our run"));
        }
    }
    for (id, mine) in ours {
        let Some(fx) = theirs.get(id) else { return Some(format!("request {id}: in our run, not in the fixture")) };
        let mine: Vec<String> = mine.iter().map(essence).collect();
        let want: Vec<String> = fx.events.iter().map(essence).collect();
        let offset = if fx.dropped > 0 { mine.len().saturating_sub(want.len()) } else { 0 };
        if fx.dropped > 0 && mine.len() != want.len() + fx.dropped as usize {
            return Some(format!(
                "request {id}: fixture kept {} events and dropped {}, we have {}",
                want.len(),
                fx.dropped,
                mine.len()
            ));
        }
        for (i, w) in want.iter().enumerate() {
            match mine.get(offset + i) {
                Some(m) if m == w => {}
                Some(m) => {
                    let context: Vec<String> = mine[..offset + i].iter().rev().take(3).rev().cloned().collect();
                    return Some(format!(
                        "request {id}, event #{}:\n  ours:    {m}\n  fixture: {w}\n  before: {context:#?}",
                        offset + i
                    ));
                }
                None => {
                    return Some(format!("request {id}: we have {} events, the fixture {}", mine.len(), want.len()));
                }
            }
        }
        if mine.len() > offset + want.len() {
            return Some(format!("request {id}: extra event #{}: {}", offset + want.len(), mine[offset + want.len()]));
        }
    }
    None
}
