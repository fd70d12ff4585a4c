//! The wire format of `SPEC.md` §3: attribute keys, and the conversion between
//! [`JourneyEvent`]s and the attributes of a `journey.<KIND>` span event.
//!
//! This module knows the keys and their types, not OpenTelemetry itself: attribute values are
//! given as [`WireValue`]s, which the emitter turns into OpenTelemetry values and the trace
//! reader makes from OTLP JSON. Encoding and decoding share the [`keys`], so the two cannot
//! drift apart.
//!
//! ```
//! use journey_spec::model::*;
//! use journey_spec::wire;
//!
//! let ev = JourneyEvent::new(Label::Queued, Step(0), Progress::new(10, 5), 0).at(3.5).wall(1_000);
//! let attrs: Vec<_> = wire::encode(&ev).collect();
//! let back = wire::decode(ev.name(), ev.time_unix_nano, attrs.iter().copied()).unwrap();
//! assert_eq!(back, ev);
//! ```

pub mod steps;

use crate::model::{
    Detail, EventKind, FinishStatus, JourneyChecker, JourneyEvent, Phase, Progress, RuleId, ScheduleKind, Step,
    Violation,
};

/// Attribute keys and names of the wire format (`SPEC.md` §3), shared by the emitter and the
/// decoder.
pub mod keys {
    /// The core span's name.
    pub const SPAN_NAME: &str = "llm_core";
    /// The instrumentation scope of the fork's scheduler tracer.
    pub const SCOPE_NAME: &str = "vllm.scheduler";
    /// Span attribute: the request id.
    pub const REQUEST_ID: &str = "gen_ai.request.id";
    /// Prefix of every journey event name.
    pub const EVENT_PREFIX: &str = "journey.";
    /// The event kind, equal to the name's suffix (string).
    pub const EVENT_TYPE: &str = "event.type";
    /// Monotonic clock in seconds (double).
    pub const TS_MONOTONIC: &str = "ts.monotonic";
    /// Monotonic clock in nanoseconds (int), written by later versions of the fork; optional.
    pub const TS_MONOTONIC_NS: &str = "ts.monotonic_ns";
    /// The scheduler step (int).
    pub const SCHEDULER_STEP: &str = "scheduler.step";
    /// `WAITING`, `PREFILL` or `DECODE` (string).
    pub const PHASE: &str = "phase";
    /// Prompt tokens processed, a high-water mark (int).
    pub const PREFILL_DONE: &str = "prefill.done_tokens";
    /// Prompt length (int).
    pub const PREFILL_TOTAL: &str = "prefill.total_tokens";
    /// Output tokens so far (int).
    pub const DECODE_DONE: &str = "decode.done_tokens";
    /// Generation cap (int).
    pub const DECODE_MAX: &str = "decode.max_tokens";
    /// Preemptions so far (int).
    pub const NUM_PREEMPTIONS: &str = "num_preemptions";
    /// `FIRST` or `RESUME`, on SCHEDULED only (string).
    pub const SCHEDULE_KIND: &str = "schedule.kind";
    /// The finish status, on FINISHED only (string).
    pub const FINISH_STATUS: &str = "finish.status";

    /// The nine attributes every journey event carries.
    pub const MANDATORY: [&str; 9] = [
        EVENT_TYPE,
        TS_MONOTONIC,
        SCHEDULER_STEP,
        PHASE,
        PREFILL_DONE,
        PREFILL_TOTAL,
        DECODE_DONE,
        DECODE_MAX,
        NUM_PREEMPTIONS,
    ];
}

/// An attribute value as the wire carries it, borrowed from wherever it was read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WireValue<'a> {
    /// A string.
    Str(&'a str),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// Any other type (array, bytes, map, empty), named for error messages.
    Other(&'static str),
}

impl WireValue<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            WireValue::Str(_) => "string",
            WireValue::Int(_) => "int",
            WireValue::Double(_) => "double",
            WireValue::Bool(_) => "bool",
            WireValue::Other(t) => t,
        }
    }
}

/// Why an event could not be decoded: the rule it breaks (R5, or R4 for a qualifier outside its
/// set), what was wrong as data ([`problem`](Self::problem)) and as the sentence the reports
/// print ([`message`](Self::message), derived from the problem).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}: {message}")]
pub struct DecodeError {
    /// [`RuleId::WellFormed`] or [`RuleId::Qualifiers`].
    pub rule: RuleId,
    /// What was wrong, naming the attribute.
    pub message: String,
    /// What was wrong, as data.
    pub problem: DecodeProblem,
}

/// What was wrong with an event, field by field (see [`DecodeError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeProblem {
    /// The name does not start with `journey.`.
    NotJourneyName {
        /// The span event's name.
        name: String,
    },
    /// The name starts with `journey.` but names no kind.
    UnknownName {
        /// The span event's name.
        name: String,
    },
    /// An attribute appears twice.
    Duplicate {
        /// The attribute key.
        key: String,
    },
    /// A mandatory attribute is missing.
    Missing {
        /// The attribute key.
        key: &'static str,
    },
    /// An attribute has the wrong type.
    WrongType {
        /// The attribute key.
        key: String,
        /// The type the format gives it.
        expected: &'static str,
        /// The type it has.
        found: &'static str,
    },
    /// `event.type` differs from the kind the name gives.
    TypeDiffers {
        /// The value of `event.type`.
        event_type: String,
        /// The span event's name.
        name: String,
    },
    /// `ts.monotonic` is NaN or infinite.
    NotFinite {
        /// The attribute key.
        key: &'static str,
        /// The value as printed (`NaN`, `inf`).
        value: String,
    },
    /// A counter is negative.
    Negative {
        /// The attribute key.
        key: String,
        /// The value.
        value: i64,
    },
    /// A string attribute's value is outside its set (`phase`; R4 for the qualifiers).
    UnknownValue {
        /// The attribute key.
        key: String,
        /// What the value names (`phase`, `schedule kind`, ...).
        what: &'static str,
        /// The value found.
        value: String,
        /// The values allowed.
        expected: &'static [&'static str],
    },
}

impl DecodeError {
    /// The finding as the model reports it: a missing or mistyped attribute as such, anything
    /// else in the words of [`message`](Self::message).
    pub fn detail(&self) -> Detail {
        match &self.problem {
            DecodeProblem::Missing { key } => Detail::MissingAttribute { key: (*key).to_owned() },
            DecodeProblem::WrongType { key, expected, found } => {
                Detail::WrongType { key: key.clone(), expected: (*expected).to_owned(), found: (*found).to_owned() }
            }
            DecodeProblem::NotJourneyName { .. }
            | DecodeProblem::UnknownName { .. }
            | DecodeProblem::Duplicate { .. }
            | DecodeProblem::TypeDiffers { .. }
            | DecodeProblem::NotFinite { .. }
            | DecodeProblem::Negative { .. }
            | DecodeProblem::UnknownValue { .. } => Detail::other(self.message.clone()),
        }
    }
}

impl DecodeProblem {
    /// The rule the problem breaks: R4 for a qualifier outside its set, R5 otherwise.
    pub fn rule(&self) -> RuleId {
        match self {
            DecodeProblem::UnknownValue { key, .. } if key == keys::SCHEDULE_KIND || key == keys::FINISH_STATUS => {
                RuleId::Qualifiers
            }
            DecodeProblem::NotJourneyName { .. }
            | DecodeProblem::UnknownName { .. }
            | DecodeProblem::Duplicate { .. }
            | DecodeProblem::Missing { .. }
            | DecodeProblem::WrongType { .. }
            | DecodeProblem::TypeDiffers { .. }
            | DecodeProblem::NotFinite { .. }
            | DecodeProblem::Negative { .. }
            | DecodeProblem::UnknownValue { .. } => RuleId::WellFormed,
        }
    }
}

impl std::fmt::Display for DecodeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeProblem::NotJourneyName { name } => write!(f, "{name:?} is not a journey event name"),
            DecodeProblem::UnknownName { name } => write!(f, "unknown journey event name {name:?}"),
            DecodeProblem::Duplicate { key } => write!(f, "attribute {key} appears twice"),
            DecodeProblem::Missing { key } => write!(f, "mandatory attribute {key} is missing"),
            DecodeProblem::WrongType { key, expected, found } => {
                write!(f, "attribute {key} has type {found}, expected {expected}")
            }
            DecodeProblem::TypeDiffers { event_type, name } => {
                write!(f, "event.type {event_type:?} differs from the name {name:?}")
            }
            DecodeProblem::NotFinite { key, value } => write!(f, "{key} is {value}"),
            DecodeProblem::Negative { key, value } => write!(f, "attribute {key} is negative ({value})"),
            DecodeProblem::UnknownValue { key, value, expected, .. } if key == keys::PHASE => {
                let alternatives = match expected.split_last() {
                    Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                    Some((last, _)) => (*last).to_owned(),
                    None => String::new(),
                };
                write!(f, "phase {value:?} is not {alternatives}")
            }
            DecodeProblem::UnknownValue { key, what, value, expected } => {
                write!(f, "{key}: unknown {what} {value:?}: expected one of {}", expected.join(", "))
            }
        }
    }
}

impl From<DecodeProblem> for DecodeError {
    fn from(problem: DecodeProblem) -> DecodeError {
        DecodeError { rule: problem.rule(), message: problem.to_string(), problem }
    }
}

fn malformed(problem: DecodeProblem) -> DecodeError {
    DecodeError::from(problem)
}

/// The kind named by a span event name, `None` when the name is not a journey event at all
/// (does not start with `journey.`).
///
/// A name such as `journey.DEPARTED` is a journey event of an unknown kind: `Some(Err(..))`.
pub fn kind_of_name(name: &str) -> Option<Result<EventKind, DecodeError>> {
    let suffix = name.strip_prefix(keys::EVENT_PREFIX)?;
    Some(suffix.parse().map_err(|_| malformed(DecodeProblem::UnknownName { name: name.to_owned() })))
}

/// At most how many attributes [`encode`] gives: the nine mandatory ones and the two
/// qualifiers.
pub const MAX_ATTRIBUTES: usize = keys::MANDATORY.len() + 2;

/// The attributes of `event`, in the fork's order: the nine mandatory ones, then
/// `schedule.kind` and `finish.status` when present.
pub fn encode(event: &JourneyEvent) -> impl Iterator<Item = (&'static str, WireValue<'static>)> + use<> {
    let mut out = [("", WireValue::Int(0)); MAX_ATTRIBUTES];
    let mut n = 0;
    encode_each(event, |key, value| {
        out[n] = (key, value);
        n += 1;
    });
    out.into_iter().take(n)
}

/// [`encode`] as calls of `f`, one per attribute and in the same order: what an emitter uses to
/// build its attribute list in place, with no iterator in between.
#[inline]
pub fn encode_each(event: &JourneyEvent, mut f: impl FnMut(&'static str, WireValue<'static>)) {
    let p = event.progress;
    let int = |v: u64| WireValue::Int(i64::try_from(v).unwrap_or(i64::MAX));
    f(keys::EVENT_TYPE, WireValue::Str(event.kind.as_str()));
    f(keys::TS_MONOTONIC, WireValue::Double(event.ts_monotonic));
    f(keys::SCHEDULER_STEP, int(event.step.0));
    f(keys::PHASE, WireValue::Str(event.phase.as_str()));
    f(keys::PREFILL_DONE, int(p.prefill_done));
    f(keys::PREFILL_TOTAL, int(p.prefill_total));
    f(keys::DECODE_DONE, int(p.decode_done));
    f(keys::DECODE_MAX, int(p.decode_max));
    f(keys::NUM_PREEMPTIONS, int(event.num_preemptions));
    if let Some(k) = event.schedule_kind {
        f(keys::SCHEDULE_KIND, WireValue::Str(k.as_str()));
    }
    if let Some(s) = event.finish_status {
        f(keys::FINISH_STATUS, WireValue::Str(s.as_str()));
    }
}

/// Decodes a `journey.<KIND>` span event.
///
/// Unknown attributes are ignored (later versions of the format add some). `ts.monotonic_ns`
/// (int) stands in for `ts.monotonic` when only it is present. Errors name the first problem:
/// a wrong name, a missing or mistyped mandatory attribute, a negative counter, an
/// `event.type` that differs from the name, or (R4) a qualifier outside its set.
pub fn decode<'a>(
    name: &str,
    time_unix_nano: Option<u64>,
    attributes: impl IntoIterator<Item = (&'a str, WireValue<'a>)>,
) -> Result<JourneyEvent, DecodeError> {
    let kind = match kind_of_name(name) {
        Some(k) => k?,
        None => return Err(malformed(DecodeProblem::NotJourneyName { name: name.to_owned() })),
    };
    let mut slots: [Option<WireValue<'a>>; 12] = [None; 12];
    const KEYS: [&str; 12] = [
        keys::EVENT_TYPE,
        keys::TS_MONOTONIC,
        keys::SCHEDULER_STEP,
        keys::PHASE,
        keys::PREFILL_DONE,
        keys::PREFILL_TOTAL,
        keys::DECODE_DONE,
        keys::DECODE_MAX,
        keys::NUM_PREEMPTIONS,
        keys::SCHEDULE_KIND,
        keys::FINISH_STATUS,
        keys::TS_MONOTONIC_NS,
    ];
    for (key, value) in attributes {
        if let Some(i) = KEYS.iter().position(|k| *k == key) {
            if slots[i].is_some() {
                return Err(malformed(DecodeProblem::Duplicate { key: key.to_owned() }));
            }
            slots[i] = Some(value);
        }
    }
    let [event_type, ts, step, phase, pd, pt, dd, dm, np, sk, fs, ts_ns] = slots;

    let event_type = string(keys::EVENT_TYPE, event_type)?;
    if event_type != kind.as_str() {
        return Err(malformed(DecodeProblem::TypeDiffers { event_type: event_type.to_owned(), name: name.to_owned() }));
    }
    let ts_monotonic = match (ts, ts_ns) {
        (Some(WireValue::Double(t)), _) if t.is_finite() => t,
        (Some(WireValue::Double(t)), _) => {
            return Err(malformed(DecodeProblem::NotFinite { key: keys::TS_MONOTONIC, value: t.to_string() }));
        }
        (Some(other), _) => return Err(wrong_type(keys::TS_MONOTONIC, "double", &other)),
        (None, Some(WireValue::Int(ns))) if ns >= 0 => ns as f64 / 1e9,
        (None, Some(other)) => return Err(wrong_type(keys::TS_MONOTONIC_NS, "non-negative int", &other)),
        (None, None) => return Err(missing(keys::TS_MONOTONIC)),
    };
    let phase_str = string(keys::PHASE, phase)?;
    let phase: Phase = phase_str.parse().map_err(|_| {
        malformed(DecodeProblem::UnknownValue {
            key: keys::PHASE.to_owned(),
            what: "phase",
            value: phase_str.to_owned(),
            expected: Phase::WIRE,
        })
    })?;
    let progress = Progress {
        prefill_done: count(keys::PREFILL_DONE, pd)?,
        prefill_total: count(keys::PREFILL_TOTAL, pt)?,
        decode_done: count(keys::DECODE_DONE, dd)?,
        decode_max: count(keys::DECODE_MAX, dm)?,
    };
    let step = Step(count(keys::SCHEDULER_STEP, step)?);
    let num_preemptions = count(keys::NUM_PREEMPTIONS, np)?;
    let schedule_kind = qualifier::<ScheduleKind>(keys::SCHEDULE_KIND, sk)?;
    let finish_status = qualifier::<FinishStatus>(keys::FINISH_STATUS, fs)?;
    Ok(JourneyEvent {
        kind,
        step,
        ts_monotonic,
        phase,
        progress,
        num_preemptions,
        schedule_kind,
        finish_status,
        time_unix_nano,
    })
}

/// Decodes one span event and feeds it to `checker`: the decoded event, or the violation — of
/// the decoder (R5, R4) or of the checker.
pub fn push<'a>(
    checker: &mut JourneyChecker,
    name: &str,
    time_unix_nano: Option<u64>,
    attributes: impl IntoIterator<Item = (&'a str, WireValue<'a>)>,
) -> Result<JourneyEvent, Violation> {
    let decoded = decode(name, time_unix_nano, attributes);
    push_decoded(checker, decoded.as_ref()).cloned()
}

/// A wall-clock time as OTLP carries it: nanoseconds since the Unix epoch (0 before it,
/// `u64::MAX` past the year 2554). The emitter stamps events with it and the SDK span reader
/// converts span times with it, so both sides agree on the conversion.
pub fn unix_nanos(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Feeds one event as decoded (or why it could not be) to `checker`: the one place that turns
/// a decoding error into the checker's R5/R4 finding, for every reader of journeys.
pub fn push_decoded<'e>(
    checker: &mut JourneyChecker,
    decoded: Result<&'e JourneyEvent, &DecodeError>,
) -> Result<&'e JourneyEvent, Violation> {
    match decoded {
        Ok(event) => checker.push(event).map(|()| event),
        Err(e) => Err(checker.push_unreadable(e.rule, e.detail())),
    }
}

fn missing(key: &'static str) -> DecodeError {
    malformed(DecodeProblem::Missing { key })
}

fn wrong_type(key: &str, expected: &'static str, found: &WireValue<'_>) -> DecodeError {
    malformed(DecodeProblem::WrongType { key: key.to_owned(), expected, found: found.type_name() })
}

fn string<'a>(key: &'static str, v: Option<WireValue<'a>>) -> Result<&'a str, DecodeError> {
    match v {
        Some(WireValue::Str(s)) => Ok(s),
        Some(other) => Err(wrong_type(key, "string", &other)),
        None => Err(missing(key)),
    }
}

fn count(key: &'static str, v: Option<WireValue<'_>>) -> Result<u64, DecodeError> {
    match v {
        Some(WireValue::Int(i)) => {
            u64::try_from(i).map_err(|_| malformed(DecodeProblem::Negative { key: key.to_owned(), value: i }))
        }
        Some(other) => Err(wrong_type(key, "int", &other)),
        None => Err(missing(key)),
    }
}

/// An optional qualifier: absent is fine (the checker decides whether it should be there), a
/// value outside the set breaks R4, a wrong type R5.
fn qualifier<T: std::str::FromStr<Err = crate::model::UnknownValue>>(
    key: &str,
    v: Option<WireValue<'_>>,
) -> Result<Option<T>, DecodeError> {
    match v {
        None => Ok(None),
        Some(WireValue::Str(s)) => s.parse().map(Some).map_err(|e: crate::model::UnknownValue| {
            malformed(DecodeProblem::UnknownValue {
                key: key.to_owned(),
                what: e.what,
                value: e.found,
                expected: e.expected,
            })
        }),
        Some(other) => Err(wrong_type(key, "string", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Label, ScheduleKind};

    fn sample() -> JourneyEvent {
        JourneyEvent::new(Label::Scheduled(ScheduleKind::Resume), Step(7), Progress::new(100, 10), 2).at(1.25)
    }

    #[test]
    fn round_trip() {
        let ev = sample();
        let attrs: Vec<_> = encode(&ev).collect();
        assert_eq!(attrs.len(), 10);
        assert_eq!(decode(ev.name(), None, attrs).unwrap(), ev);
    }

    #[test]
    fn each_mandatory_attribute_is_required() {
        let ev = sample();
        for key in keys::MANDATORY {
            let attrs = encode(&ev).filter(|(k, _)| *k != key);
            let err = decode(ev.name(), None, attrs).unwrap_err();
            assert_eq!(err.rule, RuleId::WellFormed, "{key}");
            assert!(err.message.contains(key), "{err}");
        }
    }

    #[test]
    fn monotonic_ns_stands_in_for_seconds() {
        let ev = sample();
        let attrs = encode(&ev)
            .filter(|(k, _)| *k != keys::TS_MONOTONIC)
            .chain([(keys::TS_MONOTONIC_NS, WireValue::Int(2_500_000_000))]);
        assert_eq!(decode(ev.name(), None, attrs).unwrap().ts_monotonic, 2.5);
    }

    #[test]
    fn wrong_types_negative_counts_and_unknown_values() {
        let ev = sample();
        let with = |key: &'static str, v: WireValue<'static>| {
            let attrs = encode(&ev).map(move |(k, old)| (k, if k == key { v } else { old }));
            decode(ev.name(), None, attrs)
        };
        assert_eq!(with(keys::SCHEDULER_STEP, WireValue::Str("7")).unwrap_err().rule, RuleId::WellFormed);
        assert_eq!(with(keys::SCHEDULER_STEP, WireValue::Int(-1)).unwrap_err().rule, RuleId::WellFormed);
        assert_eq!(with(keys::TS_MONOTONIC, WireValue::Int(1)).unwrap_err().rule, RuleId::WellFormed);
        assert_eq!(with(keys::TS_MONOTONIC, WireValue::Double(f64::NAN)).unwrap_err().rule, RuleId::WellFormed);
        assert_eq!(with(keys::PHASE, WireValue::Str("prefill")).unwrap_err().rule, RuleId::WellFormed);
        assert_eq!(with(keys::EVENT_TYPE, WireValue::Str("QUEUED")).unwrap_err().rule, RuleId::WellFormed);
        assert_eq!(with(keys::SCHEDULE_KIND, WireValue::Str("LATER")).unwrap_err().rule, RuleId::Qualifiers);
        assert!(decode("journey.DEPARTED", None, encode(&ev)).is_err());
        assert!(decode("exception", None, encode(&ev)).is_err());
        assert_eq!(kind_of_name("exception"), None);
    }

    #[test]
    fn errors_carry_the_problem_as_data_and_display_it() {
        let ev = sample();
        let err = decode(ev.name(), None, encode(&ev).filter(|(k, _)| *k != keys::PHASE)).unwrap_err();
        assert_eq!(err.problem, DecodeProblem::Missing { key: keys::PHASE });
        assert_eq!(err.message, err.problem.to_string());
        let attrs = encode(&ev).map(|(k, v)| (k, if k == keys::SCHEDULE_KIND { WireValue::Str("LATER") } else { v }));
        let err = decode(ev.name(), None, attrs).unwrap_err();
        assert_eq!(err.rule, RuleId::Qualifiers);
        assert!(matches!(&err.problem, DecodeProblem::UnknownValue { value, .. } if value == "LATER"), "{err:?}");
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert!(boxed.to_string().starts_with("R4: schedule.kind: unknown"), "{boxed}");
    }

    #[test]
    fn duplicate_attribute_is_malformed() {
        let ev = sample();
        let attrs = encode(&ev).chain([(keys::PHASE, WireValue::Str("PREFILL"))]);
        assert_eq!(decode(ev.name(), None, attrs).unwrap_err().rule, RuleId::WellFormed);
    }

    #[test]
    fn unknown_attributes_are_ignored() {
        let ev = sample();
        let attrs = encode(&ev).chain([("step.batch_size", WireValue::Int(3))]);
        assert_eq!(decode(ev.name(), None, attrs).unwrap(), ev);
    }
}
