//! Rules across the journeys of one scheduler instance (R13, R14).
//!
//! A trace file may hold the journeys of several scheduler instances; the caller decides which
//! journeys belong together (the `journey` command groups them by resource) and feeds each
//! instance to its own [`InstanceChecker`].

use std::collections::{BTreeMap, HashMap};

use super::checker::SpanInfo;
use super::event::{EventKind, JourneyEvent, RequestId, Step};
use super::finding::{Detail, Violation};
use super::rules::RuleId;

/// Where an event is: journey (index into the checker's journeys) and event index.
#[derive(Debug, Clone, Copy)]
struct At {
    journey: usize,
    event: usize,
    ts: f64,
}

/// A violation of an instance rule with the journeys involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceViolation {
    /// The journey that breaks the rule: the index of its `add_journey` call.
    pub journey: usize,
    /// The journey and event it conflicts with: the PREEMPTED before the admission (R13), the
    /// other live span with the same id (R14, event 0).
    pub related: Option<(usize, usize)>,
    /// The violation.
    pub violation: Violation,
}

/// Checks rules R13 and R14 over all journeys of one scheduler instance.
///
/// ```
/// use journey_spec::model::*;
/// let p = Progress::new(8, 4);
/// let mut instance = InstanceChecker::new();
/// // r1 is preempted in step 3, then r2 is admitted later in the same step: R13.
/// instance.add_journey("r1", SpanInfo::default(), &[
///     JourneyEvent::new(Label::Preempted, Step(3), p, 1).at(1.0),
/// ]);
/// instance.add_journey("r2", SpanInfo::default(), &[
///     JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(3), p, 0).at(2.0),
/// ]);
/// let violations = instance.finish();
/// assert_eq!(violations[0].rule, RuleId::NoAdmissionAfterPreemption);
/// assert_eq!(violations[0].request_id.as_str(), "r2");
/// ```
#[derive(Debug, Clone, Default)]
pub struct InstanceChecker {
    journeys: Vec<(RequestId, SpanInfo)>,
    /// Every PREEMPTED event, in the order added.
    preempted: Vec<(Step, At)>,
    /// Every SCHEDULED event, in the order added.
    scheduled: Vec<(Step, At)>,
}

impl InstanceChecker {
    /// An empty instance.
    pub fn new() -> InstanceChecker {
        InstanceChecker::default()
    }

    /// Adds one journey of this instance.
    pub fn add_journey(&mut self, request_id: impl Into<RequestId>, span: SpanInfo, events: &[JourneyEvent]) {
        let journey = self.journeys.len();
        self.journeys.push((request_id.into(), span));
        for (event, e) in events.iter().enumerate() {
            let at = At { journey, event, ts: e.ts_monotonic };
            match e.kind {
                EventKind::Preempted => self.preempted.push((e.step, at)),
                EventKind::Scheduled => self.scheduled.push((e.step, at)),
                EventKind::Queued | EventKind::FirstToken | EventKind::Finished => {}
            }
        }
    }

    /// Moves the journeys whose index (the order of their [`add_journey`](Self::add_journey)
    /// calls) `take` says into a checker of their own, keeping the order; the journeys left are
    /// numbered on from 0 in their order. What a streaming check does with journeys whose
    /// relations are decided: checks them apart and lets go of them.
    pub fn split_off(&mut self, mut take: impl FnMut(usize) -> bool) -> InstanceChecker {
        // Each journey's new index, and whether it goes.
        let mut moves = Vec::with_capacity(self.journeys.len());
        let (mut taken, mut kept) = (Vec::new(), Vec::new());
        for (i, journey) in std::mem::take(&mut self.journeys).into_iter().enumerate() {
            if take(i) {
                moves.push((true, taken.len()));
                taken.push(journey);
            } else {
                moves.push((false, kept.len()));
                kept.push(journey);
            }
        }
        self.journeys = kept;
        let mut part = InstanceChecker { journeys: taken, ..InstanceChecker::default() };
        let split = |events: &mut Vec<(Step, At)>, into: &mut Vec<(Step, At)>| {
            let mut left = Vec::new();
            for (step, mut at) in std::mem::take(events) {
                let (goes, index) = moves.get(at.journey).copied().unwrap_or((false, at.journey));
                at.journey = index;
                if goes { into.push((step, at)) } else { left.push((step, at)) }
            }
            *events = left;
        };
        split(&mut self.preempted, &mut part.preempted);
        split(&mut self.scheduled, &mut part.scheduled);
        part
    }

    /// A copy of the journeys `pick` says (by index), numbered from 0 in their order: context
    /// for deciding other journeys apart (see [`split_off`](Self::split_off)).
    pub fn extract(&self, pick: impl Fn(usize) -> bool) -> InstanceChecker {
        let mut index = vec![None; self.journeys.len()];
        let mut out = InstanceChecker::default();
        for (i, journey) in self.journeys.iter().enumerate() {
            if pick(i) {
                index[i] = Some(out.journeys.len());
                out.journeys.push(journey.clone());
            }
        }
        let copy = |events: &[(Step, At)], into: &mut Vec<(Step, At)>| {
            for &(step, at) in events {
                if let Some(Some(j)) = index.get(at.journey) {
                    into.push((step, At { journey: *j, ..at }));
                }
            }
        };
        copy(&self.preempted, &mut out.preempted);
        copy(&self.scheduled, &mut out.scheduled);
        out
    }

    /// Adds the journeys of `other` after these (numbered on from [`len`](Self::len)).
    pub fn append(&mut self, other: InstanceChecker) {
        let offset = self.journeys.len();
        self.journeys.extend(other.journeys);
        let shift = |(step, at): (Step, At)| (step, At { journey: at.journey + offset, ..at });
        self.preempted.extend(other.preempted.into_iter().map(shift));
        self.scheduled.extend(other.scheduled.into_iter().map(shift));
    }

    /// Each journey's request id and span, in the order added.
    pub fn journeys(&self) -> impl Iterator<Item = (&RequestId, &SpanInfo)> {
        self.journeys.iter().map(|(id, span)| (id, span))
    }

    /// Every PREEMPTED event as (step, journey, event index, time), in the order added: what
    /// R13 compares across journeys (by time within a step; among equal times, the first added).
    pub fn preempted(&self) -> impl Iterator<Item = (Step, usize, usize, f64)> + '_ {
        self.preempted.iter().map(|(step, at)| (*step, at.journey, at.event, at.ts))
    }

    /// Every SCHEDULED event as (step, journey, event index, time), in the order added.
    pub fn scheduled(&self) -> impl Iterator<Item = (Step, usize, usize, f64)> + '_ {
        self.scheduled.iter().map(|(step, at)| (*step, at.journey, at.event, at.ts))
    }

    /// How many journeys were added.
    pub fn len(&self) -> usize {
        self.journeys.len()
    }

    /// Whether no journey was added.
    pub fn is_empty(&self) -> bool {
        self.journeys.is_empty()
    }

    /// Checks R13 and R14 and returns every violation, ordered by rule, then journey, then event.
    pub fn finish(self) -> Vec<Violation> {
        self.finish_by_journey().into_iter().map(|v| v.violation).collect()
    }

    /// Like [`finish`](Self::finish), with the journey each violation belongs to and the one it
    /// conflicts with, as indices of the [`add_journey`](Self::add_journey) calls (request ids
    /// alone are ambiguous when an id is reused).
    pub fn finish_by_journey(self) -> Vec<InstanceViolation> {
        // The earliest PREEMPTED of each step (the first added among equal times).
        let mut first_preempted: BTreeMap<Step, At> = BTreeMap::new();
        for &(step, at) in &self.preempted {
            let slot = first_preempted.entry(step).or_insert(at);
            if at.ts < slot.ts {
                *slot = at;
            }
        }
        let mut late = Vec::new();
        for (step, at) in &self.scheduled {
            if let Some(p) = first_preempted.get(step)
                && at.ts > p.ts
            {
                let (pid, _) = &self.journeys[p.journey];
                late.push(InstanceViolation {
                    journey: at.journey,
                    related: Some((p.journey, p.event)),
                    violation: Violation {
                        rule: RuleId::NoAdmissionAfterPreemption,
                        request_id: self.journeys[at.journey].0.clone(),
                        event_index: at.event,
                        detail: Detail::other(format!(
                            "SCHEDULED at step {step}, t={}, after request {:?} was PREEMPTED in the same step (event #{}, t={})",
                            at.ts,
                            pid.as_str(),
                            p.event,
                            p.ts
                        )),
                    },
                });
            }
        }
        late.sort_by_key(|v| (v.journey, v.violation.event_index));
        late.extend(self.overlapping_ids());
        late
    }

    /// R14: spans with the same request id whose lifetimes overlap. Journeys with an empty
    /// request id (unknown) are not compared.
    fn overlapping_ids(&self) -> Vec<InstanceViolation> {
        let mut by_id: HashMap<&RequestId, Vec<(u64, u64, usize)>> = HashMap::new();
        for (i, (id, span)) in self.journeys.iter().enumerate() {
            if id.as_str().is_empty() {
                continue;
            }
            if let (Some(start), Some(end)) = (span.start_unix_nano, span.end_unix_nano) {
                by_id.entry(id).or_default().push((start, end, i));
            }
        }
        let mut out = Vec::new();
        for (id, mut spans) in by_id {
            if spans.len() < 2 {
                continue;
            }
            spans.sort_unstable();
            let mut latest_end = spans[0];
            for &(start, end, i) in &spans[1..] {
                if start < latest_end.1 {
                    out.push(InstanceViolation {
                        journey: i,
                        related: Some((latest_end.2, 0)),
                        violation: Violation {
                            rule: RuleId::UniqueLiveIds,
                            request_id: id.clone(),
                            event_index: 0,
                            detail: Detail::other(format!(
                                "a span for request {:?} starts at {start} ns while another span for it, started at {} ns, is live until {} ns",
                                id.as_str(), latest_end.0, latest_end.1
                            )),
                        },
                    });
                }
                if end > latest_end.1 {
                    latest_end = (start, end, i);
                }
            }
        }
        out.sort_by_key(|v| v.journey);
        out
    }
}
