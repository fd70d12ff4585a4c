//! The wire format of step windows (`SPEC.md` §12): span and attribute names of HEAD's
//! `a0d1f6fa4`, and the conversion between [`StepEvent`]s and span event attributes, in the
//! fork's attribute order.

use crate::model::Phase;
use crate::model::steps::{BadStepEvent, BatchSummary, RequestSnapshot, StepEvent};

use super::WireValue;

/// The instrumentation scope of the fork's step tracer.
pub const SCOPE_NAME: &str = "vllm.scheduler.step";
/// Prefix of a window's name: `scheduler_steps_<sequence>`.
pub const SPAN_PREFIX: &str = "scheduler_steps_";
/// Window attribute: the sequence number (1, 2, …).
pub const SPAN_SEQUENCE: &str = "scheduler.span_sequence";
/// Window attribute: the first step of the window.
pub const RANGE_START: &str = "scheduler.step_range_start";
/// Window attribute: the closure interval.
pub const CLOSURE_INTERVAL: &str = "scheduler.closure_interval";
/// Window attribute, set at close: the last step of the window.
pub const RANGE_END: &str = "scheduler.step_range_end";
/// The batch summary event's name.
pub const BATCH_SUMMARY: &str = "step.BATCH_SUMMARY";
/// The request snapshot event's name.
pub const REQUEST_SNAPSHOT: &str = "step.REQUEST_SNAPSHOT";

/// A summary's keys, in the fork's order (`_emit_step_batch_summary`).
pub const SUMMARY_KEYS: [&str; 16] = [
    "step.id",
    "step.ts_start_ns",
    "step.ts_end_ns",
    "step.duration_us",
    "queue.running_depth",
    "queue.waiting_depth",
    "batch.num_prefill_reqs",
    "batch.num_decode_reqs",
    "batch.scheduled_tokens",
    "batch.prefill_tokens",
    "batch.decode_tokens",
    "batch.num_finished",
    "batch.num_preempted",
    "kv.usage_gpu_ratio",
    "kv.blocks_total_gpu",
    "kv.blocks_free_gpu",
];

/// A snapshot's keys, in the fork's order (`_emit_rich_request_snapshots`); the last is
/// optional.
pub const SNAPSHOT_KEYS: [&str; 11] = [
    "step.id",
    "request.id",
    "request.phase",
    "request.num_prompt_tokens",
    "request.num_computed_tokens",
    "request.num_output_tokens",
    "request.num_preemptions",
    "request.scheduled_tokens_this_step",
    "kv.blocks_allocated_gpu",
    "kv.blocks_cached_gpu",
    "request.effective_prompt_len",
];

fn int(v: u64) -> WireValue<'static> {
    WireValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// Calls `f` with each attribute of `event`, in the fork's order.
pub fn encode_each<'a>(event: &'a StepEvent, mut f: impl FnMut(&'static str, WireValue<'a>)) {
    match event {
        StepEvent::Summary(s) => {
            let values = [
                int(s.step),
                WireValue::Int(s.ts_start_ns),
                WireValue::Int(s.ts_end_ns),
                WireValue::Int(s.duration_us),
                int(s.running_depth),
                int(s.waiting_depth),
                int(s.num_prefill_reqs),
                int(s.num_decode_reqs),
                int(s.scheduled_tokens),
                int(s.prefill_tokens),
                int(s.decode_tokens),
                int(s.num_finished),
                int(s.num_preempted),
                WireValue::Double(s.kv_usage_gpu_ratio),
                int(s.kv_blocks_total_gpu),
                int(s.kv_blocks_free_gpu),
            ];
            for (k, v) in SUMMARY_KEYS.into_iter().zip(values) {
                f(k, v);
            }
        }
        StepEvent::Snapshot(s) => {
            let phase = WireValue::Str(s.phase.map_or("", |p| p.as_str()));
            let values = [
                int(s.step),
                WireValue::Str(&s.request_id),
                phase,
                int(s.num_prompt_tokens),
                int(s.num_computed_tokens),
                int(s.num_output_tokens),
                int(s.num_preemptions),
                int(s.scheduled_tokens_this_step),
                int(s.kv_blocks_allocated_gpu),
                int(s.kv_blocks_cached_gpu),
            ];
            for (k, v) in SNAPSHOT_KEYS.into_iter().zip(values) {
                f(k, v);
            }
            if let Some(e) = s.effective_prompt_len {
                f(SNAPSHOT_KEYS[10], int(e));
            }
        }
    }
}

/// The event's name on the wire.
pub fn event_name(event: &StepEvent) -> &'static str {
    match event {
        StepEvent::Summary(_) => BATCH_SUMMARY,
        StepEvent::Snapshot(_) => REQUEST_SNAPSHOT,
    }
}

/// Whether a span is a step window: its scope is the step tracer's, or its name has the prefix.
pub fn is_window(scope: &str, name: &str) -> bool {
    scope == SCOPE_NAME || name.starts_with(SPAN_PREFIX)
}

/// A non-negative int attribute of a window, when present with that type.
pub fn window_attribute(v: WireValue<'_>) -> Option<u64> {
    match v {
        WireValue::Int(i) => u64::try_from(i).ok(),
        WireValue::Str(_) | WireValue::Double(_) | WireValue::Bool(_) | WireValue::Other(_) => None,
    }
}

/// Decodes a step event from its name and attributes.
pub fn decode<'a>(
    name: &str,
    attributes: impl IntoIterator<Item = (&'a str, WireValue<'a>)>,
) -> Result<StepEvent, BadStepEvent> {
    let bad = |problem: String| BadStepEvent { name: name.to_owned(), problem };
    let attrs: Vec<(&str, WireValue<'_>)> = attributes.into_iter().collect();
    let get = |key: &str| attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let uint = |key: &str| -> Result<u64, BadStepEvent> {
        match get(key) {
            Some(WireValue::Int(i)) => u64::try_from(i).map_err(|_| bad(format!("{key} is negative ({i})"))),
            Some(other) => Err(bad(format!("{key} is a {}, not an int", other.type_name()))),
            None => Err(bad(format!("{key} is missing"))),
        }
    };
    let sint = |key: &str| -> Result<i64, BadStepEvent> {
        match get(key) {
            Some(WireValue::Int(i)) => Ok(i),
            Some(other) => Err(bad(format!("{key} is a {}, not an int", other.type_name()))),
            None => Err(bad(format!("{key} is missing"))),
        }
    };
    match name {
        BATCH_SUMMARY => {
            let ratio = match get("kv.usage_gpu_ratio") {
                Some(WireValue::Double(d)) => d,
                Some(other) => return Err(bad(format!("kv.usage_gpu_ratio is a {}, not a double", other.type_name()))),
                None => return Err(bad("kv.usage_gpu_ratio is missing".into())),
            };
            Ok(StepEvent::Summary(BatchSummary {
                step: uint("step.id")?,
                ts_start_ns: sint("step.ts_start_ns")?,
                ts_end_ns: sint("step.ts_end_ns")?,
                duration_us: sint("step.duration_us")?,
                running_depth: uint("queue.running_depth")?,
                waiting_depth: uint("queue.waiting_depth")?,
                num_prefill_reqs: uint("batch.num_prefill_reqs")?,
                num_decode_reqs: uint("batch.num_decode_reqs")?,
                scheduled_tokens: uint("batch.scheduled_tokens")?,
                prefill_tokens: uint("batch.prefill_tokens")?,
                decode_tokens: uint("batch.decode_tokens")?,
                num_finished: uint("batch.num_finished")?,
                num_preempted: uint("batch.num_preempted")?,
                kv_usage_gpu_ratio: ratio,
                kv_blocks_total_gpu: uint("kv.blocks_total_gpu")?,
                kv_blocks_free_gpu: uint("kv.blocks_free_gpu")?,
            }))
        }
        REQUEST_SNAPSHOT => {
            let request_id = match get("request.id") {
                Some(WireValue::Str(s)) => s.to_owned(),
                Some(other) => return Err(bad(format!("request.id is a {}, not a string", other.type_name()))),
                None => return Err(bad("request.id is missing".into())),
            };
            let phase = match get("request.phase") {
                Some(WireValue::Str(s)) => s.parse::<Phase>().ok(),
                Some(other) => return Err(bad(format!("request.phase is a {}, not a string", other.type_name()))),
                None => return Err(bad("request.phase is missing".into())),
            };
            let effective_prompt_len = match get("request.effective_prompt_len") {
                None => None,
                Some(_) => Some(uint("request.effective_prompt_len")?),
            };
            Ok(StepEvent::Snapshot(RequestSnapshot {
                step: uint("step.id")?,
                request_id,
                phase,
                num_prompt_tokens: uint("request.num_prompt_tokens")?,
                num_computed_tokens: uint("request.num_computed_tokens")?,
                num_output_tokens: uint("request.num_output_tokens")?,
                num_preemptions: uint("request.num_preemptions")?,
                scheduled_tokens_this_step: uint("request.scheduled_tokens_this_step")?,
                kv_blocks_allocated_gpu: uint("kv.blocks_allocated_gpu")?,
                kv_blocks_cached_gpu: uint("kv.blocks_cached_gpu")?,
                effective_prompt_len,
            }))
        }
        _ => Err(bad("not a step event (step.BATCH_SUMMARY or step.REQUEST_SNAPSHOT)".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_attributes() {
        let events = [
            StepEvent::Summary(BatchSummary {
                step: 7,
                kv_usage_gpu_ratio: 0.25,
                ts_end_ns: -1,
                ..BatchSummary::default()
            }),
            StepEvent::Snapshot(RequestSnapshot {
                step: 7,
                request_id: "r1".into(),
                phase: Some(Phase::Decode),
                effective_prompt_len: Some(3),
                ..RequestSnapshot::default()
            }),
        ];
        for e in &events {
            let mut attrs = Vec::new();
            encode_each(e, |k, v| attrs.push((k, v)));
            assert_eq!(decode(event_name(e), attrs).as_ref(), Ok(e));
        }
    }

    #[test]
    fn a_missing_or_mistyped_attribute_is_named() {
        let e = StepEvent::Summary(BatchSummary::default());
        let mut attrs = Vec::new();
        encode_each(&e, |k, v| attrs.push((k, v)));
        attrs.retain(|(k, _)| *k != "batch.num_preempted");
        assert_eq!(decode(BATCH_SUMMARY, attrs.clone()).unwrap_err().problem, "batch.num_preempted is missing");
        attrs.push(("batch.num_preempted", WireValue::Double(1.0)));
        assert!(decode(BATCH_SUMMARY, attrs).unwrap_err().problem.contains("not an int"));
    }
}
