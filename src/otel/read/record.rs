//! Journey events as read from span records, and how the records of one span are merged: the
//! identity of an event, and the multiset union of records.

use std::collections::HashMap;

use opentelemetry_proto::tonic::trace::v1::span::Event as ProtoEvent;

use crate::model::ns::NsReading;
use crate::model::{EventKind, FinishStatus, JourneyEvent, Phase, Progress, RuleId, ScheduleKind, Step};
use crate::wire::{self, DecodeError, keys};

use super::trace::{attr_value, wire_value};
use crate::model::api::AttrValue;

/// One `journey.*` span event as read: its timestamp, and the decoded event or why it could not
/// be decoded (rule R5 or R4, see [`wire::decode`]).
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    /// The event's timestamp, nanoseconds since the Unix epoch; 0 when the input has none.
    pub time_unix_nano: u64,
    /// The decoded event, or the event's name and the decoding error.
    pub decoded: Result<JourneyEvent, Unreadable>,
    /// The raw `ts.monotonic_ns`, when the event has one (rule C2).
    pub ts_monotonic_ns: Option<NsReading>,
    /// Which record of the span carried it (0 for the first), for merging.
    part: u32,
    /// Where it sorts: its timestamp, or for an event without one the timestamp of the event
    /// before it in its record, so that it stays where the record had it.
    order: u64,
}

/// A journey event that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The span event's name (`journey.<something>`).
    pub name: Box<str>,
    /// Why it could not be decoded.
    pub error: DecodeError,
}

/// Events are equal when their timestamps and contents are, whichever record carried them.
impl PartialEq for RecordedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.time_unix_nano == other.time_unix_nano && self.decoded == other.decoded
    }
}

impl RecordedEvent {
    /// A decoded event at `time_unix_nano` (0 when unknown): what a user builds to draw the
    /// timeline of a journey of their own ([`crate::otel::text`]).
    pub fn new(time_unix_nano: u64, event: JourneyEvent) -> RecordedEvent {
        RecordedEvent { time_unix_nano, decoded: Ok(event), ts_monotonic_ns: None, part: 0, order: time_unix_nano }
    }

    /// An event that could not be decoded.
    pub fn unreadable(time_unix_nano: u64, unreadable: Unreadable) -> RecordedEvent {
        RecordedEvent {
            time_unix_nano,
            decoded: Err(unreadable),
            ts_monotonic_ns: None,
            part: 0,
            order: time_unix_nano,
        }
    }

    /// The event's kind, when its name names one.
    pub fn kind(&self) -> Option<EventKind> {
        match &self.decoded {
            Ok(e) => Some(e.kind),
            Err(u) => wire::kind_of_name(&u.name).and_then(Result::ok),
        }
    }

    /// The event with its raw `ts.monotonic_ns` (rule C2).
    pub fn with_ns(mut self, ns: NsReading) -> RecordedEvent {
        self.ts_monotonic_ns = Some(ns);
        self
    }

    /// Everything that makes two events the same event, for the multiset union of records.
    fn identity(&self) -> Identity<'_> {
        match &self.decoded {
            Ok(e) => Identity::Decoded {
                time: self.time_unix_nano,
                kind: e.kind,
                step: e.step,
                ts_bits: e.ts_monotonic.to_bits(),
                phase: e.phase,
                progress: e.progress,
                num_preemptions: e.num_preemptions,
                schedule_kind: e.schedule_kind,
                finish_status: e.finish_status,
            },
            Err(u) => Identity::Unreadable {
                time: self.time_unix_nano,
                name: &u.name,
                rule: u.error.rule,
                message: &u.error.message,
            },
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum Identity<'a> {
    Decoded {
        time: u64,
        kind: EventKind,
        step: Step,
        ts_bits: u64,
        phase: Phase,
        progress: Progress,
        num_preemptions: u64,
        schedule_kind: Option<ScheduleKind>,
        finish_status: Option<FinishStatus>,
    },
    Unreadable {
        time: u64,
        name: &'a str,
        rule: RuleId,
        message: &'a str,
    },
}

/// Decodes a span event, `None` when it is not a journey event. `previous` is the sort
/// position of the journey event before it in its record (0 for the first).
///
/// An event without a timestamp keeps its place in its record (the checker must not take it
/// for an event at the epoch, which would sort it first and report a misleading R1); the
/// caller reports it as an input error ([`InputErrorKind::NoTimestamp`](super::InputErrorKind)).
pub(super) fn record_event(event: &ProtoEvent, part: u32, previous: u64) -> Option<RecordedEvent> {
    if !event.name.starts_with(keys::EVENT_PREFIX) {
        return None;
    }
    let time = (event.time_unix_nano != 0).then_some(event.time_unix_nano);
    let attributes = event.attributes.iter().map(|kv| (kv.key.as_str(), wire_value(kv.value.as_ref())));
    let decoded = wire::decode(&event.name, time, attributes)
        .map_err(|error| Unreadable { name: event.name.clone().into_boxed_str(), error });
    let ts_monotonic_ns =
        event.attributes.iter().find(|kv| kv.key == keys::TS_MONOTONIC_NS).map(|kv| {
            match attr_value(kv.value.as_ref()) {
                AttrValue::Int(i) => u64::try_from(i).map_or(NsReading::Wrong("negative int"), NsReading::Int),
                other => NsReading::Wrong(other.type_name()),
            }
        });
    Some(RecordedEvent {
        time_unix_nano: event.time_unix_nano,
        decoded,
        ts_monotonic_ns,
        part,
        order: time.unwrap_or(previous),
    })
}

impl RecordedEvent {
    /// Where the event sorts (see [`record_event`]).
    pub(super) fn order(&self) -> u64 {
        self.order
    }
}

/// The multiset union of a span's records, over events sorted by time: among events with the
/// same timestamp, each distinct event is kept as many times as the record that carries it
/// most often has it. Returns how many events were left out.
pub(super) fn merge_records(events: &mut Vec<RecordedEvent>) -> u64 {
    let mut keep = vec![true; events.len()];
    let mut start = 0;
    while start < events.len() {
        let time = events[start].order;
        let end = start + events[start..].iter().take_while(|e| e.order == time).count();
        if end - start > 1 {
            // For each distinct event: how often each record has it, and how many were kept.
            let mut seen: HashMap<Identity<'_>, (HashMap<u32, u32>, u32)> = HashMap::new();
            for e in &events[start..end] {
                *seen.entry(e.identity()).or_default().0.entry(e.part).or_default() += 1;
            }
            for (i, e) in events[start..end].iter().enumerate() {
                if let Some((per_record, kept)) = seen.get_mut(&e.identity()) {
                    let wanted = per_record.values().copied().max().unwrap_or(0);
                    if *kept < wanted {
                        *kept += 1;
                    } else {
                        keep[start + i] = false;
                    }
                }
            }
        }
        start = end;
    }
    let before = events.len();
    let mut flags = keep.into_iter();
    events.retain(|_| flags.next().unwrap_or(true));
    (before - events.len()) as u64
}
