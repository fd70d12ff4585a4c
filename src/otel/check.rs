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

use std::collections::BTreeSet;

use crate::model::{InstanceChecker, JourneyChecker, JourneyEvent, RuleId, SpanInfo, State, Verdict, Violation};

use crate::wire;

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
        for (j, v) in instance_rules(&journeys, &members) {
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
        // The checker keeps every violation for `finish`.
        let _ = wire::push_decoded(&mut checker, e.decoded.as_ref().map_err(|u| &u.error));
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

/// R13 and R14 over the journeys `members` of one instance, with each violation's journey.
///
/// Event indices are mapped back from the decoded events the model saw to the journey's
/// events, and R14's message names the other span.
fn instance_rules(journeys: &[JourneyReport], members: &[usize]) -> Vec<(usize, Violation)> {
    if members.is_empty() {
        return Vec::new();
    }
    let mut instance = InstanceChecker::new();
    // Indices of the decoded events in each member, to map the checker's indices back.
    let mut positions: Vec<Vec<usize>> = Vec::with_capacity(members.len());
    for &j in members {
        let r = &journeys[j];
        let (decoded, at): (Vec<JourneyEvent>, Vec<usize>) =
            r.events.iter().enumerate().filter_map(|(i, e)| e.decoded.as_ref().ok().map(|d| (d.clone(), i))).unzip();
        instance.add_journey(r.request_id.clone().unwrap_or_default(), r.span, &decoded);
        positions.push(at);
    }
    instance
        .finish_by_journey()
        .into_iter()
        .map(|iv| {
            let mut v = iv.violation;
            if v.rule == RuleId::UniqueLiveIds {
                if let Some((other, _)) = iv.related {
                    let o = &journeys[members[other]];
                    v.message =
                        format!("{}; the other span is {}/{} (line {})", v.message, o.trace_id, o.span_id, o.line);
                }
            } else if let Some(&i) = positions[iv.journey].get(v.event_index) {
                v.event_index = i;
            }
            (members[iv.journey], v)
        })
        .collect()
}
