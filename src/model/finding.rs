//! Findings as data: a [`Violation`] names its rule, the request and the event, and carries a
//! structured [`Detail`] — an illegal transition its `from`, `got` and `allowed`; a counter rule
//! its `expected` and `found` — whose `Display` is the human message.

use std::fmt;

use super::event::RequestId;
use super::lifecycle::Rule;
use super::rules::RuleId;

/// Where an earlier event of a once-only kind was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    /// At this event index of the journey.
    At(usize),
    /// Before the events that were kept: the span dropped its oldest events, and what the
    /// first kept event reports implies this one happened among them.
    BeforeKept,
}

/// What exactly was wrong: the structured part of a [`Violation`]. Its `Display` is the
/// message the text and JSON reports print.
///
/// Values are given as they appear on the wire (state and label names as strings, counters as
/// integers), so that every lifecycle, the crate's and a user's, reports through one type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Detail {
    /// An event that the table does not allow in the current state. `allowed` is empty when
    /// `from` is terminal: nothing follows the end.
    IllegalTransition {
        /// The state before the event.
        from: String,
        /// The event's label (or its kind, when its qualifiers are unreadable).
        got: String,
        /// The labels the table allows in `from`.
        allowed: Vec<String>,
    },
    /// The journey does not start the way its lifecycle starts.
    BadStart {
        /// The first event.
        got: String,
        /// What a journey starts with.
        expected: Vec<String>,
    },
    /// The journey's span ended in a state where the lifecycle may not end.
    Unfinished {
        /// The state at the end.
        state: String,
        /// How many events the journey had.
        events: usize,
        /// The event kinds that end a journey.
        expected: Vec<String>,
    },
    /// A once-only event happened again.
    Repeated {
        /// The event's label.
        event: String,
        /// Where it happened first.
        first: Seen,
    },
    /// A counter differs from what the journey's history implies.
    Counter {
        /// The attribute.
        field: String,
        /// What the history implies.
        expected: u64,
        /// What the event reports.
        found: u64,
        /// What the counter counts (`PREEMPTED event(s)`).
        counts: String,
    },
    /// A value that must stay the same over a journey changed.
    Changed {
        /// The attribute.
        field: String,
        /// Its value on the previous event.
        from: String,
        /// Its value on this one.
        to: String,
    },
    /// A value that never decreases went back.
    WentBack {
        /// The attribute.
        field: String,
        /// Its value on the previous event.
        from: String,
        /// Its value on this one.
        to: String,
    },
    /// A value exceeds the bound another attribute sets.
    Exceeds {
        /// The attribute.
        field: String,
        /// Its value.
        value: u64,
        /// The attribute that bounds it.
        bound_field: String,
        /// The bound.
        bound: u64,
    },
    /// An event's wall-clock time lies outside its span.
    OutsideSpan {
        /// The event's time, ns since the Unix epoch.
        time_unix_nano: u64,
        /// `start` or `end`.
        edge: SpanEdge,
        /// The span's start or end, ns since the Unix epoch.
        span_unix_nano: u64,
    },
    /// A mandatory attribute is absent.
    MissingAttribute {
        /// The attribute.
        key: String,
    },
    /// An attribute has the wrong type.
    WrongType {
        /// The attribute.
        key: String,
        /// The type it must have.
        expected: String,
        /// The type it has.
        found: String,
    },
    /// Anything else, in words.
    Other {
        /// What was wrong, naming the values involved.
        message: String,
    },
}

/// Which end of a span an event lies beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanEdge {
    /// Before the span's start.
    Start,
    /// After the span's end.
    End,
}

impl Detail {
    /// A detail said in words.
    pub fn other(message: impl Into<String>) -> Detail {
        Detail::Other { message: message.into() }
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::IllegalTransition { from, got, allowed } if allowed.is_empty() => {
                write!(f, "{got} after the journey ended in {from}")
            }
            Detail::IllegalTransition { from, got, allowed } => {
                write!(f, "{got} is not allowed in state {from} (allowed: {})", allowed.join(", "))
            }
            Detail::BadStart { got, expected } => {
                write!(f, "the journey starts with {got}, not {}", expected.join(" or "))
            }
            Detail::Unfinished { events: 0, .. } => f.write_str("the span ended without any journey event"),
            Detail::Unfinished { state, expected, .. } => {
                write!(f, "the span ended in state {state} without {}", expected.join(" or "))
            }
            Detail::Repeated { event, first: Seen::At(i) } => write!(f, "a second {event} (the first was event #{i})"),
            Detail::Repeated { event, first: Seen::BeforeKept } => {
                write!(f, "a second {event} (the first was an earlier, dropped event, before the kept events)")
            }
            Detail::Counter { field, expected, found, counts } => {
                write!(f, "{field} is {found}, but {expected} {counts} happened so far")
            }
            Detail::Changed { field, from, to } => write!(f, "{field} changed from {from} to {to}"),
            Detail::WentBack { field, from, to } => write!(f, "{field} went from {from} back to {to}"),
            Detail::Exceeds { field, value, bound_field, bound } => {
                write!(f, "{field} {value} exceeds {bound_field} {bound}")
            }
            Detail::OutsideSpan { time_unix_nano, edge: SpanEdge::Start, span_unix_nano } => {
                write!(f, "event time {time_unix_nano} ns is before the span's start {span_unix_nano} ns")
            }
            Detail::OutsideSpan { time_unix_nano, edge: SpanEdge::End, span_unix_nano } => {
                write!(f, "event time {time_unix_nano} ns is after the span's end {span_unix_nano} ns")
            }
            Detail::MissingAttribute { key } => write!(f, "mandatory attribute {key} is missing"),
            Detail::WrongType { key, expected, found } => {
                write!(f, "attribute {key} has type {found}, expected {expected}")
            }
            Detail::Other { message } => f.write_str(message),
        }
    }
}

/// A broken rule: which, where, and what exactly.
///
/// Generic over the rule type so that a user's lifecycle reports with its own ids; the crate's
/// checkers report [`RuleId`]s. Serialized (in the `journey check` JSON report) as `rule`,
/// `request_id`, `event_index`, `message` (the detail's `Display`) and `detail` (structured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation<R = RuleId> {
    /// The rule that was broken.
    pub rule: R,
    /// The request whose journey broke it.
    pub request_id: RequestId,
    /// The index of the offending event in the journey (the number of events for a rule that
    /// concerns the end of the journey, such as a missing FINISHED).
    pub event_index: usize,
    /// What exactly was wrong.
    pub detail: Detail,
}

impl<R> Violation<R> {
    /// The human message: the detail's `Display`.
    pub fn message(&self) -> String {
        self.detail.to_string()
    }
}

impl<R: Rule> fmt::Display for Violation<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: request {:?}, event #{}: {}",
            self.rule,
            self.rule.name(),
            self.request_id.as_str(),
            self.event_index,
            self.detail
        )
    }
}

impl<R: Rule> std::error::Error for Violation<R> {}

impl<R: Rule + serde::Serialize> serde::Serialize for Violation<R> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Violation", 5)?;
        st.serialize_field("rule", &self.rule)?;
        st.serialize_field("request_id", &self.request_id)?;
        st.serialize_field("event_index", &self.event_index)?;
        st.serialize_field("message", &self.message())?;
        st.serialize_field("detail", &self.detail)?;
        st.end()
    }
}

/// The outcome of checking one journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<R = RuleId> {
    /// Every rule holds and the journey is complete.
    Conforming,
    /// No kept event breaks a rule, but the span dropped events, so the journey cannot be
    /// judged complete.
    Incomplete {
        /// Events the span reported as dropped.
        dropped_events: u32,
    },
    /// At least one rule is broken; every violation found, in event order.
    Violating(Vec<Violation<R>>),
}

impl<R> Verdict<R> {
    /// The verdict for what a checker found: violating when anything was, otherwise incomplete
    /// when the span dropped events, otherwise conforming. The one place this decision is made.
    pub fn from_violations(violations: Vec<Violation<R>>, dropped_events: u32) -> Verdict<R> {
        if !violations.is_empty() {
            Verdict::Violating(violations)
        } else if dropped_events > 0 {
            Verdict::Incomplete { dropped_events }
        } else {
            Verdict::Conforming
        }
    }

    /// Whether the verdict is [`Verdict::Conforming`].
    pub fn is_conforming(&self) -> bool {
        matches!(self, Verdict::Conforming)
    }

    /// The violations (empty unless [`Verdict::Violating`]).
    pub fn violations(&self) -> &[Violation<R>] {
        match self {
            Verdict::Violating(v) => v,
            Verdict::Conforming | Verdict::Incomplete { .. } => &[],
        }
    }
}
