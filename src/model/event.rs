//! The vocabulary of a journey: event kinds, their qualifiers, progress and the event record.
//!
//! Every enum here has exactly one wire spelling (`SPEC.md` §3), produced by `as_str`, accepted
//! by [`FromStr`](std::str::FromStr) and used by serde, so the three can never disagree. Any other
//! string is an [`UnknownValue`] error, never a panic.

use std::fmt;

/// A string that is not one of the wire spellings of an enum of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {found:?}: expected one of {}", expected.join(", "))]
pub struct UnknownValue {
    /// What was being parsed, for instance `"event kind"`.
    pub what: &'static str,
    /// The string that was found.
    pub found: String,
    /// Every accepted spelling.
    pub expected: &'static [&'static str],
}

/// Declares an enum whose variants each have one wire spelling, with `ALL`, `as_str`, `FromStr`,
/// `Display` and serde all derived from the same list.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal, names $prefix:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        wire_enum! {
            $(#[$meta])*
            $vis enum $name ($what) {
                $( $(#[$vmeta])* $variant => $wire, )+
            }
        }

        impl $name {
            /// The span event name: the wire spelling after its prefix.
            pub const fn event_name(self) -> &'static str {
                match self {
                    $($name::$variant => concat!($prefix, $wire),)+
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every wire spelling, in declaration order.
            pub const WIRE: &'static [&'static str] = &[$($wire),+];

            /// The wire spelling (`SPEC.md` §3).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(UnknownValue { what: $what, found: s.to_owned(), expected: Self::WIRE }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

wire_enum! {
    /// What happened to a request: the suffix of a `journey.<KIND>` span event.
    pub enum EventKind ("event kind", names "journey.") {
        /// The request was added to the scheduler's waiting queue.
        Queued => "QUEUED",
        /// The request moved into `Running`: admitted for the first time or resumed after a
        /// preemption. Not emitted for later chunks or decode steps of a running request.
        Scheduled => "SCHEDULED",
        /// The request was evicted from `Running` (KV cache exhausted, or an explicit reset);
        /// its computed tokens are dropped and it waits at the front of the queue.
        Preempted => "PREEMPTED",
        /// The request's output went from zero tokens to at least one. Once per request.
        FirstToken => "FIRST_TOKEN",
        /// The request left the scheduler, with a [`FinishStatus`]. Nothing follows it.
        Finished => "FINISHED",
    }
}

wire_enum! {
    /// Why a request entered `Running`: carried by `SCHEDULED` as `schedule.kind`.
    pub enum ScheduleKind ("schedule kind") {
        /// Admitted from the waiting queue for the first time (`Waiting → Running`).
        First => "FIRST",
        /// Re-admitted after a preemption (`Preempted → Running`); it recomputes prompt and outputs.
        Resume => "RESUME",
    }
}

wire_enum! {
    /// How a request ended: carried by `FINISHED` as `finish.status`.
    pub enum FinishStatus ("finish status") {
        /// EOS or a stop token was generated.
        Stopped => "stopped",
        /// `max_tokens` or the model length cap was reached.
        Length => "length",
        /// The client aborted (also how a frontend-detected stop string arrives in vLLM).
        Aborted => "aborted",
        /// The engine failed the request (in vLLM: a KV load failure).
        Error => "error",
        /// The request was ignored (never produced by vLLM's v1 scheduler itself).
        Ignored => "ignored",
    }
}

impl FinishStatus {
    /// Natural statuses (`stopped`, `length`) come from the model's tokens and the caps, so a
    /// request can only reach them while `Running` (rule R4).
    pub const fn is_natural(self) -> bool {
        match self {
            FinishStatus::Stopped | FinishStatus::Length => true,
            FinishStatus::Aborted | FinishStatus::Error | FinishStatus::Ignored => false,
        }
    }
}

wire_enum! {
    /// Where a request is in its work, as reported by the `phase` attribute.
    pub enum Phase ("phase") {
        /// Reported on `QUEUED` only.
        Waiting => "WAITING",
        /// No output token yet (`decode.done_tokens == 0`), including a request aborted before it ran.
        Prefill => "PREFILL",
        /// At least one output token (`decode.done_tokens >= 1`).
        Decode => "DECODE",
    }
}

impl Phase {
    /// The phase an event of `kind` must report when the request has `decode_done` output
    /// tokens (`SPEC.md` §3, rule R10).
    pub const fn expected(kind: EventKind, decode_done: u64) -> Phase {
        match kind {
            EventKind::Queued => Phase::Waiting,
            EventKind::Scheduled | EventKind::Preempted | EventKind::FirstToken | EventKind::Finished => {
                if decode_done == 0 { Phase::Prefill } else { Phase::Decode }
            }
        }
    }
}

/// A scheduler step: the number of `schedule()` calls made so far. The first step is 1; 0 means
/// "before the first step" (a `QUEUED` event at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Step(pub u64);

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A request identifier (`gen_ai.request.id`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub String);

impl RequestId {
    /// The identifier as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        RequestId(s.to_owned())
    }
}

impl From<String> for RequestId {
    fn from(s: String) -> Self {
        RequestId(s)
    }
}

/// The progress snapshot every event carries (`SPEC.md` §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// `prefill.done_tokens`: prompt tokens processed, a high-water mark that survives
    /// preemption and freezes once the first output token exists.
    pub prefill_done: u64,
    /// `prefill.total_tokens`: the prompt length.
    pub prefill_total: u64,
    /// `decode.done_tokens`: output tokens so far (kept across preemption).
    pub decode_done: u64,
    /// `decode.max_tokens`: the generation cap.
    pub decode_max: u64,
}

impl Progress {
    /// Progress of a request that has not run yet.
    pub const fn new(prefill_total: u64, decode_max: u64) -> Progress {
        Progress { prefill_done: 0, prefill_total, decode_done: 0, decode_max }
    }
}

/// The lifecycle-relevant part of an event: its kind with the qualifier that the transition
/// table reads (`SCHEDULED`'s schedule kind, `FINISHED`'s status).
///
/// A [`JourneyEvent`] read from a trace may lack a qualifier or carry one on the wrong kind;
/// [`JourneyEvent::label`] then returns `None` and the checker reports rule R4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    /// `QUEUED`.
    Queued,
    /// `SCHEDULED` with its `schedule.kind`.
    Scheduled(ScheduleKind),
    /// `PREEMPTED`.
    Preempted,
    /// `FIRST_TOKEN`.
    FirstToken,
    /// `FINISHED` with its `finish.status`.
    Finished(FinishStatus),
}

impl Label {
    /// The event kind of this label.
    pub const fn kind(self) -> EventKind {
        match self {
            Label::Queued => EventKind::Queued,
            Label::Scheduled(_) => EventKind::Scheduled,
            Label::Preempted => EventKind::Preempted,
            Label::FirstToken => EventKind::FirstToken,
            Label::Finished(_) => EventKind::Finished,
        }
    }

    /// The schedule kind, on `SCHEDULED` only.
    pub const fn schedule_kind(self) -> Option<ScheduleKind> {
        match self {
            Label::Scheduled(k) => Some(k),
            Label::Queued | Label::Preempted | Label::FirstToken | Label::Finished(_) => None,
        }
    }

    /// The finish status, on `FINISHED` only.
    pub const fn finish_status(self) -> Option<FinishStatus> {
        match self {
            Label::Finished(s) => Some(s),
            Label::Queued | Label::Scheduled(_) | Label::Preempted | Label::FirstToken => None,
        }
    }
}

impl Label {
    /// The qualifier's wire spelling (`FIRST`, `stopped`), on `SCHEDULED` and `FINISHED`.
    pub const fn qualifier(self) -> Option<&'static str> {
        match (self.schedule_kind(), self.finish_status()) {
            (Some(k), _) => Some(k.as_str()),
            (None, Some(s)) => Some(s.as_str()),
            (None, None) => None,
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::lifecycle::qualified(f, self.kind().as_str(), self.qualifier())
    }
}

/// One journey event, as emitted on a core span or read back from a trace.
///
/// The record keeps every attribute of the wire format separately (`phase`, the optional
/// qualifiers) because a trace can get any of them wrong; the checker decides whether they are
/// consistent. [`JourneyEvent::new`] builds a consistent one.
///
/// ```
/// use journey_spec::model::{JourneyEvent, Label, Progress, Step, ScheduleKind};
///
/// let ev = JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(1), Progress::new(100, 10), 0)
///     .at(12.5);
/// assert_eq!(ev.to_string(), "SCHEDULED(FIRST) step=1 phase=PREFILL prefill=0/100 decode=0/10 preemptions=0 t=12.500000");
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JourneyEvent {
    /// `event.type` (and the suffix of the event name).
    pub kind: EventKind,
    /// `scheduler.step` (`SPEC.md` §4).
    pub step: Step,
    /// `ts.monotonic`: a monotonic clock, in seconds.
    pub ts_monotonic: f64,
    /// `phase`.
    pub phase: Phase,
    /// The four progress counters.
    #[serde(flatten)]
    pub progress: Progress,
    /// `num_preemptions`: preemptions so far, this one included on `PREEMPTED`.
    pub num_preemptions: u64,
    /// `schedule.kind`: present on `SCHEDULED` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_kind: Option<ScheduleKind>,
    /// `finish.status`: present on `FINISHED` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_status: Option<FinishStatus>,
    /// The event's wall-clock timestamp in nanoseconds since the Unix epoch, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_unix_nano: Option<u64>,
}

impl JourneyEvent {
    /// A consistent event: kind and qualifiers from `label`, `phase` as `SPEC.md` §3 defines it,
    /// `ts_monotonic` 0 and no wall-clock time (set them with [`at`](Self::at) and
    /// [`wall`](Self::wall)).
    pub fn new(label: Label, step: Step, progress: Progress, num_preemptions: u64) -> JourneyEvent {
        let kind = label.kind();
        JourneyEvent {
            kind,
            step,
            ts_monotonic: 0.0,
            phase: Phase::expected(kind, progress.decode_done),
            progress,
            num_preemptions,
            schedule_kind: label.schedule_kind(),
            finish_status: label.finish_status(),
            time_unix_nano: None,
        }
    }

    /// Sets `ts.monotonic` (seconds).
    pub fn at(mut self, ts_monotonic: f64) -> JourneyEvent {
        self.ts_monotonic = ts_monotonic;
        self
    }

    /// Sets the wall-clock timestamp (nanoseconds since the Unix epoch).
    pub fn wall(mut self, time_unix_nano: u64) -> JourneyEvent {
        self.time_unix_nano = Some(time_unix_nano);
        self
    }

    /// The label the transition table reads, or `None` when the qualifiers do not match the
    /// kind (a `SCHEDULED` without `schedule.kind`, a `schedule.kind` on `PREEMPTED`, ...).
    pub fn label(&self) -> Option<Label> {
        match (self.kind, self.schedule_kind, self.finish_status) {
            (EventKind::Queued, None, None) => Some(Label::Queued),
            (EventKind::Scheduled, Some(k), None) => Some(Label::Scheduled(k)),
            (EventKind::Preempted, None, None) => Some(Label::Preempted),
            (EventKind::FirstToken, None, None) => Some(Label::FirstToken),
            (EventKind::Finished, None, Some(s)) => Some(Label::Finished(s)),
            (EventKind::Queued, _, _)
            | (EventKind::Scheduled, _, _)
            | (EventKind::Preempted, _, _)
            | (EventKind::FirstToken, _, _)
            | (EventKind::Finished, _, _) => None,
        }
    }

    /// The span event name, `journey.<KIND>`.
    pub fn name(&self) -> &'static str {
        event_name(self.kind)
    }
}

/// The span event name of a kind: `journey.QUEUED`, `journey.SCHEDULED`, ...
pub const fn event_name(kind: EventKind) -> &'static str {
    kind.event_name()
}

impl fmt::Display for JourneyEvent {
    /// One line: `SCHEDULED(RESUME) step=7 phase=DECODE prefill=100/100 decode=3/10 preemptions=1 t=…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.schedule_kind, self.finish_status) {
            (Some(k), Some(s)) => write!(f, "{}({k},{s})", self.kind)?,
            (k, s) => super::lifecycle::qualified(
                f,
                self.kind.as_str(),
                k.map(ScheduleKind::as_str).or(s.map(FinishStatus::as_str)),
            )?,
        }
        let p = &self.progress;
        write!(
            f,
            " step={} phase={} prefill={}/{} decode={}/{} preemptions={} t={:.6}",
            self.step,
            self.phase,
            p.prefill_done,
            p.prefill_total,
            p.decode_done,
            p.decode_max,
            self.num_preemptions,
            self.ts_monotonic
        )
    }
}
