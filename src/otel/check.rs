//! Checking the journeys of a [`Trace`]: every journey on its own (rules R1–R12, with the span's
//! times and dropped events), then the journeys of each scheduler instance together (R13, R14).
//!
//! A scheduler instance is the set of journeys of one input that share a resource (the same
//! resource attributes): a Collector file may hold the spans of several servers, told apart by
//! their resources, and separate inputs are separate runs.
//!
//! ```
//! use journey_spec::otel::{CheckOptions, check_trace, read_trace};
//!
//! let trace = read_trace("empty", &b""[..], |e| panic!("{e}"));
//! let checked = check_trace(trace, &CheckOptions::default());
//! assert!(checked.journeys.is_empty());
//! ```

use std::collections::{BTreeSet, HashMap};

use crate::model::{InstanceChecker, JourneyChecker, JourneyEvent, RuleId, SpanInfo, State, Verdict, Violation};

use super::read::{ReadCounts, RecordedEvent, Resource, Span, Trace, hex};

/// What to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Rules whose violations are dropped from every verdict (`journey check --allow`).
    pub allow: BTreeSet<RuleId>,
}

/// One journey with its verdict.
#[derive(Debug, Clone)]
pub struct JourneyReport {
    /// The `gen_ai.request.id` of the span, when it has one.
    pub request_id: Option<String>,
    /// The trace id, lowercase hex.
    pub trace_id: String,
    /// The span id, lowercase hex.
    pub span_id: String,
    /// The line of the span's first record.
    pub line: u64,
    /// Index of the span's resource in [`CheckedTrace::resources`].
    pub resource: usize,
    /// Start, end and dropped events of the span.
    pub span: SpanInfo,
    /// The journey's events, in the order they were checked.
    pub events: Vec<RecordedEvent>,
    /// The lifecycle state after each event, as the checker followed it.
    pub states: Vec<State>,
    /// The verdict, without the violations of allowed rules. Instance rules (R13, R14) are
    /// included: a journey that breaks one is violating.
    pub verdict: Verdict,
}

impl JourneyReport {
    /// The request id, or `?` when the span has none.
    pub fn display_id(&self) -> &str {
        self.request_id.as_deref().unwrap_or("?")
    }

    /// The kind of the event a violation points at, as the `event` field of the JSON report
    /// gives it: `None` for a violation that concerns the whole journey (a missing FINISHED at
    /// the end, R14's overlapping spans) or an event whose name names no kind.
    pub fn event_of(&self, violation: &Violation) -> Option<&'static str> {
        if violation.rule == RuleId::UniqueLiveIds {
            return None;
        }
        self.events.get(violation.event_index).and_then(RecordedEvent::kind).map(|k| k.as_str())
    }
}

/// Every journey of one input, checked.
#[derive(Debug, Clone, Default)]
pub struct CheckedTrace {
    /// The input's name.
    pub source_name: String,
    /// How many distinct spans the input had (journeys or not).
    pub spans: usize,
    /// The journeys, in order of their spans' first appearance.
    pub journeys: Vec<JourneyReport>,
    /// The input's distinct resources.
    pub resources: Vec<Resource>,
    /// What else was read.
    pub counts: ReadCounts,
}

/// Checks every journey of `trace`.
pub fn check_trace(trace: Trace, options: &CheckOptions) -> CheckedTrace {
    let Trace { source_name, spans, resources, counts } = trace;
    let span_count = spans.len();
    let mut journeys: Vec<JourneyReport> = spans.into_iter().filter(Span::is_journey).map(check_span).collect();

    let mut extra: Vec<Vec<Violation>> = vec![Vec::new(); journeys.len()];
    for resource in 0..resources.len() {
        let members: Vec<usize> = (0..journeys.len()).filter(|&j| journeys[j].resource == resource).collect();
        if members.is_empty() {
            continue;
        }
        for (j, v) in no_admission_after_preemption(&journeys, &members) {
            extra[j].push(v);
        }
        for (j, v) in unique_live_ids(&journeys, &members) {
            extra[j].push(v);
        }
    }

    for (journey, more) in journeys.iter_mut().zip(extra) {
        let verdict = std::mem::replace(&mut journey.verdict, Verdict::Conforming);
        let mut violations = match verdict {
            Verdict::Violating(v) => v,
            Verdict::Conforming | Verdict::Incomplete { .. } => Vec::new(),
        };
        violations.extend(more);
        violations.retain(|v| !options.allow.contains(&v.rule));
        journey.verdict = if !violations.is_empty() {
            Verdict::Violating(violations)
        } else if journey.span.dropped_events > 0 {
            Verdict::Incomplete { dropped_events: journey.span.dropped_events }
        } else {
            Verdict::Conforming
        };
    }
    CheckedTrace { source_name, spans: span_count, journeys, resources, counts }
}

/// Rules R1–R12 on one span's journey, event by event, as [`crate::wire::push`] does it.
fn check_span(span: Span) -> JourneyReport {
    let mut checker = JourneyChecker::new(span.request_id.clone().unwrap_or_default()).with_span(span.info);
    let mut states = Vec::with_capacity(span.events.len());
    for e in &span.events {
        match &e.decoded {
            Ok(event) => {
                // The checker keeps every violation for `finish`.
                let _ = checker.push(event);
            }
            Err(u) => {
                checker.push_unreadable(u.error.rule, u.error.message.clone());
            }
        }
        states.push(checker.state());
    }
    JourneyReport {
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        request_id: span.request_id,
        line: span.line,
        resource: span.resource,
        span: span.info,
        events: span.events,
        states,
        verdict: checker.finish(),
    }
}

/// R13 over the journeys `members` of one instance, with each violation's journey.
///
/// The model's [`InstanceChecker`] names journeys by request id only, so every journey is given
/// a name that is unique in the instance: its request id when no other journey has it (the
/// normal case, so messages show real ids), otherwise the id with the span's ids.
fn no_admission_after_preemption(journeys: &[JourneyReport], members: &[usize]) -> Vec<(usize, Violation)> {
    let mut id_count: HashMap<&str, usize> = HashMap::new();
    for &j in members {
        if let Some(id) = &journeys[j].request_id {
            *id_count.entry(id).or_default() += 1;
        }
    }
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut instance = InstanceChecker::new();
    // Indices of the decoded events in each journey, to map the checker's indices back.
    let mut positions: HashMap<usize, Vec<usize>> = HashMap::new();
    for &j in members {
        let r = &journeys[j];
        let mut name = match &r.request_id {
            Some(id) if id_count.get(id.as_str()) == Some(&1) => id.clone(),
            Some(id) => format!("{id} [span {}/{}]", r.trace_id, r.span_id),
            None => format!("[span {}/{}]", r.trace_id, r.span_id),
        };
        if by_name.contains_key(&name) {
            name = format!("{name} #{j}");
        }
        let (decoded, at): (Vec<JourneyEvent>, Vec<usize>) =
            r.events.iter().enumerate().filter_map(|(i, e)| e.decoded.as_ref().ok().map(|d| (d.clone(), i))).unzip();
        instance.add_journey(name.as_str(), SpanInfo::default(), &decoded);
        positions.insert(j, at);
        by_name.insert(name, j);
    }
    instance
        .finish()
        .into_iter()
        .filter_map(|mut v| {
            let j = *by_name.get(v.request_id.as_str())?;
            v.event_index = positions.get(&j).and_then(|p| p.get(v.event_index)).copied().unwrap_or(v.event_index);
            v.request_id = journeys[j].request_id.clone().unwrap_or_default().into();
            Some((j, v))
        })
        .collect()
}

/// R14 over the journeys `members` of one instance, with each violation's journey.
///
/// The model reports an overlap on the journey whose span starts later (spans ordered by start,
/// end, then input order), once per such journey, in input order. Its violations carry the
/// request id, not the journey, so the journeys are found again with the same ordering.
fn unique_live_ids(journeys: &[JourneyReport], members: &[usize]) -> Vec<(usize, Violation)> {
    let mut instance = InstanceChecker::new();
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for &j in members {
        if let Some(id) = &journeys[j].request_id {
            instance.add_journey(id.as_str(), journeys[j].span, &[]);
            groups.entry(id).or_default().push(j);
        }
    }
    let violations = instance.finish();
    if violations.is_empty() {
        return Vec::new();
    }
    // For each id, the journeys the model flags, in input order.
    let mut flagged: HashMap<&str, std::vec::IntoIter<(usize, usize)>> = HashMap::new();
    for (id, group) in &groups {
        let mut spans: Vec<(u64, u64, usize)> = group
            .iter()
            .filter_map(|&j| Some((journeys[j].span.start_unix_nano?, journeys[j].span.end_unix_nano?, j)))
            .collect();
        spans.sort_unstable();
        let mut hits = Vec::new();
        if let Some(&first) = spans.first() {
            let mut latest = first;
            for &(start, end, j) in &spans[1..] {
                if start < latest.1 {
                    hits.push((j, latest.2));
                }
                if end > latest.1 {
                    latest = (start, end, j);
                }
            }
        }
        hits.sort_unstable();
        flagged.insert(id, hits.into_iter());
    }
    violations
        .into_iter()
        .filter_map(|mut v| {
            let (j, other) = flagged.get_mut(v.request_id.as_str())?.next()?;
            let o = &journeys[other];
            v.message = format!("{}; the other span is {}/{} (line {})", v.message, o.trace_id, o.span_id, o.line);
            Some((j, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn journey(id: Option<&str>, start: u64, end: u64, n: usize) -> JourneyReport {
        JourneyReport {
            request_id: id.map(str::to_owned),
            trace_id: "t".into(),
            span_id: format!("{n:016x}"),
            line: n as u64 + 1,
            resource: 0,
            span: SpanInfo { start_unix_nano: Some(start), end_unix_nano: Some(end), dropped_events: 0 },
            events: Vec::new(),
            states: Vec::new(),
            verdict: Verdict::Conforming,
        }
    }

    proptest! {
        /// R14 is attributed to one journey per violation of the model, each of which overlaps
        /// a journey with the same id that starts no later.
        #[test]
        fn r14_attribution_agrees_with_the_model(
            spans in proptest::collection::vec((prop::option::of(0..3u8), 0..20u64, 1..10u64), 0..12),
        ) {
            let journeys: Vec<JourneyReport> = spans
                .iter()
                .enumerate()
                .map(|(n, &(id, start, len))| {
                    let id = id.map(|i| format!("r{i}"));
                    journey(id.as_deref(), start, start + len, n)
                })
                .collect();
            let members: Vec<usize> = (0..journeys.len()).collect();
            let mut model = InstanceChecker::new();
            for j in &journeys {
                if let Some(id) = &j.request_id {
                    model.add_journey(id.as_str(), j.span, &[]);
                }
            }
            let expected = model.finish().len();
            let found = unique_live_ids(&journeys, &members);
            prop_assert_eq!(found.len(), expected);
            for (j, v) in &found {
                prop_assert_eq!(v.rule, RuleId::UniqueLiveIds);
                prop_assert_eq!(journeys[*j].request_id.as_deref(), Some(v.request_id.as_str()));
                let (s, e) = (journeys[*j].span.start_unix_nano, journeys[*j].span.end_unix_nano);
                prop_assert!(journeys.iter().enumerate().any(|(k, o)| k != *j
                    && o.request_id == journeys[*j].request_id
                    && o.span.start_unix_nano <= s
                    && o.span.end_unix_nano > s
                    && (o.span.start_unix_nano, o.span.end_unix_nano, k) < (s, e, *j)));
            }
        }
    }
}
