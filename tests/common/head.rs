//! The fork's HEAD fixtures (`../shared/fixtures/vllm-head/`, beside this checkout) and a
//! reduction of OTLP JSON Lines spans to what a replay must reproduce (test code).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The fixture directory, if it is beside this checkout.
pub fn head_fixtures() -> Option<PathBuf> {
    let dir = {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        // From the root package or the CLI package (`cli/`).
        let root = if manifest.join("tests/data").is_dir() { manifest.to_owned() } else { manifest.join("..") };
        root.join("../shared/fixtures/vllm-head")
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: ../shared/fixtures/vllm-head is not beside this checkout");
        None
    }
}

pub const RUNS: [&str; 7] = ["api_basic", "api_r41", "api_r42", "api_r43", "api_r45", "api_atomicity2", "r28"];

/// A span reduced to what a replay must reproduce (`SPEC.md` §8.1): timestamps, trace and span
/// ids and the random 8-hex suffix of core ids aside.
#[derive(Debug, Clone, PartialEq)]
pub struct Reduced {
    pub scope: String,
    pub kind: i64,
    /// Attributes in order, the core id's suffix replaced by `<hex>`.
    pub attributes: Vec<(String, serde_json::Value)>,
    /// Events in order: name and attributes, clock readings replaced by their type.
    pub events: Vec<(String, Vec<(String, serde_json::Value)>)>,
    /// `root`, `remote <span id>` (the client's span) or `span <request id>` (a span of the
    /// same trace in the file).
    pub parent: String,
    /// Status code and message (an empty message is none).
    pub status: (i64, Option<String>),
}

fn strip_suffix(id: &str) -> String {
    match id.rsplit_once('-') {
        Some((head, hex))
            if hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
        {
            format!("{head}-<hex>")
        }
        _ => id.to_owned(),
    }
}

fn attrs(list: Option<&serde_json::Value>) -> Vec<(String, serde_json::Value)> {
    let empty = Vec::new();
    let list = list.and_then(|l| l.as_array()).unwrap_or(&empty);
    list.iter().map(|a| (a["key"].as_str().unwrap().to_owned(), a["value"].clone())).collect()
}

/// The spans of an OTLP JSON Lines file by `(name, request id without suffix)`. Checks on the
/// way that `ts.monotonic == ts.monotonic_ns / 1e9` on every journey event that has both.
pub fn reduce(text: &str) -> BTreeMap<(String, String), Reduced> {
    let mut raw = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        for rs in doc["resourceSpans"].as_array().unwrap() {
            for ss in rs["scopeSpans"].as_array().unwrap() {
                let scope = ss["scope"]["name"].as_str().unwrap().to_owned();
                for sp in ss["spans"].as_array().unwrap() {
                    raw.push((scope.clone(), sp.clone()));
                }
            }
        }
    }
    let id_of = |sp: &serde_json::Value| {
        attrs(sp.get("attributes")).into_iter().find(|(k, _)| k == "gen_ai.request.id").unwrap().1["stringValue"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let by_span: HashMap<(String, String), String> = raw
        .iter()
        .map(|(_, sp)| {
            ((sp["traceId"].as_str().unwrap().to_owned(), sp["spanId"].as_str().unwrap().to_owned()), id_of(sp))
        })
        .collect();
    let mut out = BTreeMap::new();
    for (scope, sp) in raw {
        let id = strip_suffix(&id_of(&sp));
        let attributes = attrs(sp.get("attributes"))
            .into_iter()
            .map(|(k, v)| if k == "gen_ai.request.id" { (k, serde_json::json!({ "stringValue": id })) } else { (k, v) })
            .collect();
        let mut events = Vec::new();
        for e in sp.get("events").and_then(|e| e.as_array()).into_iter().flatten() {
            let list = attrs(e.get("attributes"));
            let get = |key: &str| list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            if let (Some(s), Some(ns)) = (get("ts.monotonic"), get("ts.monotonic_ns")) {
                let ns: i64 = ns["intValue"].as_str().unwrap().parse().unwrap();
                assert_eq!(s["doubleValue"].as_f64().unwrap(), ns as f64 / 1e9, "{id}: C2");
            }
            let list = list
                .into_iter()
                .map(|(k, v)| match k.as_str() {
                    // Clock readings differ; their types must not.
                    "ts.monotonic" | "ts.monotonic_ns" | "event.ts.monotonic" => {
                        let ty = v.as_object().unwrap().keys().next().unwrap().clone();
                        (k, serde_json::Value::String(ty))
                    }
                    _ => (k, v),
                })
                .collect();
            events.push((e["name"].as_str().unwrap().to_owned(), list));
        }
        let trace = sp["traceId"].as_str().unwrap().to_owned();
        let parent = match sp.get("parentSpanId").and_then(|p| p.as_str()).filter(|p| !p.is_empty()) {
            None => "root".to_owned(),
            Some(p) => match by_span.get(&(trace, p.to_owned())) {
                Some(owner) => format!("span {}", strip_suffix(owner)),
                None => format!("remote {p}"),
            },
        };
        let status = sp.get("status").cloned().unwrap_or_default();
        let status = (
            status.get("code").and_then(|c| c.as_i64()).unwrap_or(0),
            status.get("message").and_then(|m| m.as_str()).filter(|m| !m.is_empty()).map(str::to_owned),
        );
        let name = sp["name"].as_str().unwrap().to_owned();
        let kind = sp["kind"].as_i64().unwrap();
        let reduced = Reduced { scope, kind, attributes, events, parent, status };
        assert!(out.insert((name, id.clone()), reduced).is_none(), "{id}: two spans");
    }
    out
}

/// The first difference between the fixture's spans and ours, if any.
pub fn first_difference(
    theirs: &BTreeMap<(String, String), Reduced>,
    ours: &BTreeMap<(String, String), Reduced>,
) -> Option<String> {
    for (key, t) in theirs {
        let Some(o) = ours.get(key) else { return Some(format!("{key:?}: missing from ours")) };
        if t.events.len() != o.events.len() {
            return Some(format!("{key:?}: {} events in the fixture, {} in ours", t.events.len(), o.events.len()));
        }
        for (k, (te, oe)) in t.events.iter().zip(&o.events).enumerate() {
            if te != oe {
                return Some(format!("{key:?}: event {k}: fixture {te:?}, ours {oe:?}"));
            }
        }
        if t != o {
            return Some(format!("{key:?}: fixture {t:?}\n ours {o:?}"));
        }
    }
    ours.keys().find(|k| !theirs.contains_key(*k)).map(|k| format!("{k:?}: only in ours"))
}
