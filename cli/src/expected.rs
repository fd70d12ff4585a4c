//! `journey check --workload FILE`: what the checks need of the workload that produced a trace
//! (`SPEC.md` §8, §8.1, §10), read leniently: only the fields the checks use, so a workload with
//! fields this build does not know (a later extension) is still usable here.

use std::path::Path;

use journey_spec::model::api::Endpoint;
use journey_spec::model::cross::{Expected, ExpectedRequest};
use serde_json::Value;

/// Why a workload file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The file could not be read.
    #[error("cannot read workload {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("workload {path} is not JSON: {source}")]
    Json {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A field has the wrong shape.
    #[error("workload {path}: steps[{step}].ops[{op}]: {message}")]
    Field {
        /// The file.
        path: String,
        /// The entry.
        step: usize,
        /// The operation in it.
        op: usize,
        /// What is wrong.
        message: String,
    },
}

/// The keys only a two-layer workload has on its `add` operations.
const TWO_LAYER_KEYS: [&str; 4] = ["stream", "endpoint", "n", "prompts"];

/// Reads the workload at `path`.
pub fn read(path: &Path) -> Result<Expected, WorkloadError> {
    let name = path.display().to_string();
    let text = std::fs::read(path).map_err(|source| WorkloadError::Io { path: name.clone(), source })?;
    let doc: Value =
        serde_json::from_slice(&text).map_err(|source| WorkloadError::Json { path: name.clone(), source })?;
    of_value(&doc, &name)
}

/// The expected requests of a parsed workload document.
pub fn of_value(doc: &Value, name: &str) -> Result<Expected, WorkloadError> {
    let max_model_len = doc.pointer("/config/max_model_len").and_then(Value::as_u64).unwrap_or(2048);
    let mut adds = Vec::new();
    let steps = doc.get("steps").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for (step, entry) in steps.iter().enumerate() {
        let ops = entry.get("ops").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        for (op, o) in ops.iter().enumerate() {
            if o.get("op").and_then(Value::as_str) == Some("add") {
                adds.push((step, op, o));
            }
        }
    }
    let two_layers = adds.iter().any(|(_, _, o)| TWO_LAYER_KEYS.iter().any(|k| o.get(k).is_some()));
    let mut requests = Vec::with_capacity(adds.len());
    for (step, op, o) in adds {
        let field = |message: String| WorkloadError::Field { path: name.to_owned(), step, op, message };
        let id = o.get("id").and_then(Value::as_str).ok_or_else(|| field("add without a string id".to_owned()))?;
        let count = |key: &str| {
            o.get(key).and_then(Value::as_u64).ok_or_else(|| field(format!("add {id:?}: {key} is not a count")))
        };
        let prompt_len = count("prompt_len")?;
        let max_tokens = count("max_tokens")?;
        let endpoint = match o.get("endpoint").and_then(Value::as_str) {
            None | Some("chat") => Endpoint::Chat,
            Some("completions") => Endpoint::Completions,
            Some(other) => return Err(field(format!("add {id:?}: unknown endpoint {other:?}"))),
        };
        let prompts = match o.get("prompts") {
            None => vec![prompt_len],
            Some(v) => v
                .as_array()
                .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
                .ok_or_else(|| field(format!("add {id:?}: prompts is not a list of counts")))?,
        };
        let traceparent = match o.get("traceparent").and_then(Value::as_str) {
            None => None,
            Some(tp) => {
                let parts: Vec<&str> = tp.split('-').collect();
                match parts.as_slice() {
                    [_, trace, span, _] if trace.len() == 32 && span.len() == 16 => {
                        Some((trace.to_ascii_lowercase(), span.to_ascii_lowercase()))
                    }
                    _ => return Err(field(format!("add {id:?}: traceparent {tp:?} is not version-trace-span-flags"))),
                }
            }
        };
        let longest = prompts.iter().copied().max().unwrap_or(prompt_len);
        // The serving layer refuses prompt + cap beyond the model length before any span; the
        // scheduler alone refuses a prompt that does not leave room for one token (SPEC §6, §8.1).
        let rejected = if two_layers {
            longest.saturating_add(max_tokens) > max_model_len
        } else {
            prompt_len == 0 || max_tokens == 0 || prompt_len >= max_model_len
        };
        requests.push(ExpectedRequest {
            id: id.to_owned(),
            sampled: o.get("sampled").and_then(Value::as_bool).unwrap_or(true),
            stream: o.get("stream").and_then(Value::as_bool),
            endpoint,
            n: o.get("n").and_then(Value::as_u64).unwrap_or(1),
            prompts,
            max_tokens,
            traceparent,
            rejected,
        });
    }
    Ok(Expected { requests, two_layers })
}
