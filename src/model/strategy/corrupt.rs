//! The corruption catalogue: single-point defects of a valid core journey, each with the rule
//! and event index the checker must report (cargo feature `proptest`).
//!
//! Oracle users mutation-test their own emitters and checkers with it: take a valid journey
//! (from [`journey`](super::journey) or your own), apply a [`Corruption`], and expect your
//! checker to report [`Corruption::rule`] at the index it returns. The crate's own rule tests
//! (`tests/model_rules.rs`) run every entry against [`JourneyChecker`](crate::model::JourneyChecker)
//! directly and through the wire format; wire-level defects (R5: missing or mistyped
//! attributes) live beside the wire format's tests, since they cannot be expressed as
//! [`JourneyEvent`]s.
//!
//! *One defect, one finding*: an entry with [`Corruption::once`] set is reported exactly once.
//! The others are reported first at their index and may cause more findings later, for a
//! stated reason: a swap of two events breaks the order at both; a changed total (R8) differs
//! from the events before and after it; a prefill mark beyond the prompt is also a mark that
//! goes back on the next event; QUEUED with progress makes every later event's progress a
//! change from it.
//!
//! ```
//! use journey_spec::model::{check_journey, strategy::{corrupt::CORRUPTIONS, journey}};
//! use proptest::prelude::*;
//!
//! proptest!(|(j in journey(), k in any::<usize>())| {
//!     for c in CORRUPTIONS {
//!         if let Some((events, index)) = (c.apply)(&j, k) {
//!             let verdict = check_journey(j.request_id.clone(), j.span, &events);
//!             let first = &verdict.violations()[0];
//!             prop_assert_eq!((first.rule, first.event_index), (c.rule, index), "{}", c.name);
//!         }
//!     }
//! });
//! ```

use super::GeneratedJourney;
use crate::model::{EventKind, FinishStatus, JourneyEvent, Phase, RuleId, ScheduleKind, State, Step};

/// A corrupted journey and the index of the event where the corruption's rule must be reported.
pub type Corrupted = (Vec<JourneyEvent>, usize);

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Corruption {
    /// What it does, in words.
    pub name: &'static str,
    /// The rule the checker must report first.
    pub rule: RuleId,
    /// Whether the defect is reported exactly once (the checker re-synchronises after it).
    pub once: bool,
    /// Applies the corruption to a valid journey, with a number to pick positions with; `None`
    /// when the journey has no place for it.
    pub apply: fn(&GeneratedJourney, usize) -> Option<Corrupted>,
}

fn positions(j: &GeneratedJourney, pred: impl Fn(usize, &JourneyEvent) -> bool) -> Vec<usize> {
    j.events.iter().enumerate().filter(|(i, e)| pred(*i, e)).map(|(i, _)| i).collect()
}

fn pick(candidates: &[usize], k: usize) -> Option<usize> {
    candidates.get(k % candidates.len().max(1)).copied()
}

/// Changes one event of the journey.
fn edit(j: &GeneratedJourney, i: usize, f: impl FnOnce(&mut JourneyEvent)) -> Option<Corrupted> {
    let mut events = j.events.clone();
    f(events.get_mut(i)?);
    Some((events, i))
}

fn is_resume(e: &JourneyEvent) -> bool {
    e.schedule_kind == Some(ScheduleKind::Resume)
}

/// The catalogue: every model-level corruption, grouped by the rule it breaks.
pub const CORRUPTIONS: &[Corruption] = &[
    // R1
    Corruption {
        name: "drop QUEUED",
        rule: RuleId::QueuedFirst,
        once: true,

        apply: |j, _| Some((j.events[1..].to_vec(), 0)),
    },
    Corruption {
        name: "duplicate QUEUED",
        rule: RuleId::QueuedFirst,
        once: true,

        apply: |j, _| {
            let mut e = j.events.clone();
            e.insert(1, e[0].clone());
            Some((e, 1))
        },
    },
    Corruption {
        name: "QUEUED again while running",
        rule: RuleId::QueuedFirst,
        once: true,
        apply: |j, k| {
            // After a SCHEDULED that more events follow: the checker must stay in Running.
            let i = pick(&positions(j, |i, e| e.kind == EventKind::Scheduled && i + 2 < j.events.len()), k)?;
            let mut e = j.events.clone();
            let mut again = e[0].clone();
            again.step = e[i].step;
            again.ts_monotonic = e[i].ts_monotonic;
            again.time_unix_nano = e[i].time_unix_nano;
            again.progress = e[i].progress;
            again.phase = Phase::Waiting;
            again.num_preemptions = e[i].num_preemptions;
            e.insert(i + 1, again);
            Some((e, i + 1))
        },
    },
    Corruption {
        name: "swap QUEUED with the next event",
        rule: RuleId::QueuedFirst,
        once: false,

        apply: |j, _| {
            let mut e = j.events.clone();
            e.swap(0, 1);
            e[0].ts_monotonic = e[1].ts_monotonic;
            Some((e, 0))
        },
    },
    // R2
    Corruption {
        name: "event after FINISHED",
        rule: RuleId::LegalTransition,
        once: true,

        apply: |j, _| {
            let mut e = j.events.clone();
            e.push(e[e.len() - 1].clone());
            Some((e, j.events.len()))
        },
    },
    Corruption {
        name: "drop the SCHEDULED before work",
        rule: RuleId::LegalTransition,
        once: true,

        apply: |j, k| {
            let i = pick(
                &positions(j, |i, e| {
                    e.kind == EventKind::Scheduled
                        && matches!(j.events[i + 1].kind, EventKind::FirstToken | EventKind::Preempted)
                }),
                k,
            )?;
            let mut e = j.events.clone();
            e.remove(i);
            Some((e, i))
        },
    },
    Corruption {
        name: "duplicate PREEMPTED",
        rule: RuleId::LegalTransition,
        once: true,

        apply: |j, k| {
            let i = pick(&positions(j, |_, e| e.kind == EventKind::Preempted), k)?;
            let mut e = j.events.clone();
            e.insert(i + 1, e[i].clone());
            Some((e, i + 1))
        },
    },
    Corruption {
        name: "swap PREEMPTED with its RESUME",
        rule: RuleId::LegalTransition,
        once: false,

        apply: |j, k| {
            let i = pick(&positions(j, |i, e| e.kind == EventKind::Preempted && is_resume(&j.events[i + 1])), k)?;
            let mut e = j.events.clone();
            e.swap(i, i + 1);
            // Keep clocks and counters in order so that only the order of kinds is wrong.
            let (a, b) = (e[i + 1].clone(), e[i].clone());
            e[i].step = a.step;
            e[i].ts_monotonic = a.ts_monotonic;
            e[i].time_unix_nano = a.time_unix_nano;
            e[i + 1].step = b.step;
            e[i + 1].ts_monotonic = b.ts_monotonic;
            e[i + 1].time_unix_nano = b.time_unix_nano;
            Some((e, i))
        },
    },
    // R3
    Corruption {
        name: "drop FINISHED",
        rule: RuleId::EndsFinished,
        once: true,

        apply: |j, _| Some((j.events[..j.events.len() - 1].to_vec(), j.events.len() - 1)),
    },
    // R4
    Corruption {
        name: "RESUME instead of FIRST",
        rule: RuleId::Qualifiers,
        once: true,

        apply: |j, k| {
            let i = pick(&positions(j, |_, e| e.schedule_kind == Some(ScheduleKind::First)), k)?;
            edit(j, i, |e| e.schedule_kind = Some(ScheduleKind::Resume))
        },
    },
    Corruption {
        name: "FIRST instead of RESUME",
        rule: RuleId::Qualifiers,
        once: true,

        apply: |j, k| {
            let i = pick(&positions(j, |_, e| is_resume(e)), k)?;
            edit(j, i, |e| e.schedule_kind = Some(ScheduleKind::First))
        },
    },
    Corruption {
        name: "SCHEDULED without schedule.kind",
        rule: RuleId::Qualifiers,
        once: true,

        apply: |j, k| {
            let i = pick(&positions(j, |_, e| e.kind == EventKind::Scheduled), k)?;
            edit(j, i, |e| e.schedule_kind = None)
        },
    },
    Corruption {
        name: "finish.status on a live event",
        rule: RuleId::Qualifiers,
        once: true,

        apply: |j, k| {
            let i = pick(&positions(j, |_, e| e.kind != EventKind::Finished), k)?;
            edit(j, i, |e| e.finish_status = Some(FinishStatus::Aborted))
        },
    },
    Corruption {
        name: "natural status from a state that is not Running",
        rule: RuleId::Qualifiers,
        once: true,

        apply: |j, _| {
            if j.finished_from == State::Running {
                return None;
            }
            edit(j, j.events.len() - 1, |e| e.finish_status = Some(FinishStatus::Length))
        },
    },
    // R6
    Corruption {
        name: "step goes back",
        rule: RuleId::StepOrder,
        once: true,
        apply: |j, k| {
            let i = pick(&positions(j, |i, _| i > 0 && j.events[i - 1].step.0 >= 1), k)?;
            let back = j.events[i - 1].step.0 - 1;
            edit(j, i, |e| e.step = Step(back))
        },
    },
    Corruption {
        name: "SCHEDULED at step 0",
        rule: RuleId::StepOrder,
        once: true,
        apply: |j, _| {
            (j.events[0].step == Step(0) && j.events[1].kind == EventKind::Scheduled).then_some(())?;
            edit(j, 1, |e| e.step = Step(0))
        },
    },
    Corruption {
        name: "RESUME in the step of its PREEMPTED",
        rule: RuleId::StepOrder,
        once: true,
        apply: |j, k| {
            let i = pick(&positions(j, |_, e| is_resume(e)), k)?;
            let preempted = j.events[i - 1].step;
            edit(j, i, |e| e.step = preempted)
        },
    },
    // R7
    Corruption {
        name: "monotonic clock goes back",
        rule: RuleId::TimeOrder,
        once: true,
        apply: |j, k| {
            let i = 1 + k % (j.events.len() - 1);
            let back = j.events[i - 1].ts_monotonic - 0.5;
            edit(j, i, |e| e.ts_monotonic = back)
        },
    },
    Corruption {
        name: "event after the span's end",
        rule: RuleId::TimeOrder,
        once: true,
        apply: |j, _| {
            let end = j.span.end_unix_nano?;
            edit(j, j.events.len() - 1, |e| e.time_unix_nano = Some(end + 1))
        },
    },
    Corruption {
        name: "event before the span's start",
        rule: RuleId::TimeOrder,
        once: true,
        apply: |j, _| {
            let start = j.span.start_unix_nano?;
            edit(j, 0, |e| e.time_unix_nano = Some(start - 1))
        },
    },
    // R8
    Corruption {
        name: "prompt length changes",
        rule: RuleId::ProgressBounds,
        once: false,
        apply: |j, k| {
            let i = 1 + k % (j.events.len() - 1);
            edit(j, i, |e| e.progress.prefill_total += 1)
        },
    },
    Corruption {
        name: "generation cap changes",
        rule: RuleId::ProgressBounds,
        once: false,
        apply: |j, k| {
            let i = 1 + k % (j.events.len() - 1);
            edit(j, i, |e| e.progress.decode_max += 1)
        },
    },
    Corruption {
        name: "prefill mark goes back",
        rule: RuleId::ProgressBounds,
        once: true,
        apply: |j, k| {
            let i = pick(&positions(j, |i, _| i > 0 && j.events[i - 1].progress.prefill_done >= 1), k)?;
            let back = j.events[i - 1].progress.prefill_done - 1;
            edit(j, i, |e| e.progress.prefill_done = back)
        },
    },
    Corruption {
        name: "output count goes back",
        rule: RuleId::ProgressBounds,
        once: true,
        apply: |j, k| {
            let i = pick(&positions(j, |i, _| i > 0 && j.events[i - 1].progress.decode_done >= 1), k)?;
            let back = j.events[i - 1].progress.decode_done - 1;
            edit(j, i, |e| e.progress.decode_done = back)
        },
    },
    Corruption {
        name: "prefill mark beyond the prompt",
        rule: RuleId::ProgressBounds,
        once: false,
        apply: |j, k| {
            let i = k % j.events.len();
            edit(j, i, |e| e.progress.prefill_done = e.progress.prefill_total + 1)
        },
    },
    Corruption {
        name: "output beyond the cap",
        rule: RuleId::ProgressBounds,
        once: true,
        apply: |j, _| {
            let i = j.events.len() - 1;
            edit(j, i, |e| e.progress.decode_done = e.progress.decode_max + 1)
        },
    },
    // R9
    Corruption {
        name: "preemption count off by one",
        rule: RuleId::PreemptionCount,
        once: true,
        apply: |j, k| {
            let i = k % j.events.len();
            edit(j, i, |e| e.num_preemptions += 1)
        },
    },
    Corruption {
        name: "drop PREEMPTED",
        rule: RuleId::LegalTransition,
        once: true,
        apply: |j, k| {
            // The next event (RESUME or FINISHED) is then seen in Running: RESUME is illegal
            // there; FINISHED is legal, so only drops followed by RESUME are taken.
            let i = pick(&positions(j, |i, e| e.kind == EventKind::Preempted && is_resume(&j.events[i + 1])), k)?;
            let mut e = j.events.clone();
            e.remove(i);
            Some((e, i))
        },
    },
    // R10
    Corruption {
        name: "wrong phase",
        rule: RuleId::PhaseAndSnapshot,
        once: true,
        apply: |j, k| {
            let i = k % j.events.len();
            let expected = j.events[i].phase;
            let wrong = *Phase::ALL.iter().filter(|p| **p != expected).nth(k % 2)?;
            edit(j, i, |e| e.phase = wrong)
        },
    },
    Corruption {
        name: "QUEUED reports prefill progress",
        rule: RuleId::PhaseAndSnapshot,
        once: false,
        apply: |j, _| edit(j, 0, |e| e.progress.prefill_done = 1),
    },
    Corruption {
        name: "QUEUED reports output",
        rule: RuleId::PhaseAndSnapshot,
        once: false,
        apply: |j, _| edit(j, 0, |e| e.progress.decode_done = 1),
    },
    Corruption {
        name: "SCHEDULED(FIRST) reports this step's work",
        rule: RuleId::PhaseAndSnapshot,
        once: true,
        apply: |j, k| {
            let i = pick(&positions(j, |_, e| e.schedule_kind == Some(ScheduleKind::First)), k)?;
            edit(j, i, |e| e.progress.prefill_done = 1)
        },
    },
    // R11
    Corruption {
        name: "duplicate FIRST_TOKEN",
        rule: RuleId::FirstToken,
        once: true,
        apply: |j, k| {
            let i = pick(&positions(j, |_, e| e.kind == EventKind::FirstToken), k)?;
            let mut e = j.events.clone();
            e.insert(i + 1, e[i].clone());
            Some((e, i + 1))
        },
    },
    Corruption {
        name: "drop FIRST_TOKEN",
        rule: RuleId::FirstToken,
        once: true,
        apply: |j, k| {
            let i = pick(&positions(j, |_, e| e.kind == EventKind::FirstToken), k)?;
            let mut e = j.events.clone();
            e.remove(i);
            Some((e, i))
        },
    },
    Corruption {
        name: "FIRST_TOKEN before the prompt is done",
        rule: RuleId::FirstToken,
        once: true,
        apply: |j, k| {
            let i = pick(
                &positions(j, |i, e| {
                    e.kind == EventKind::FirstToken
                        && e.progress.prefill_total >= 2
                        && j.events[i - 1].progress.prefill_done < e.progress.prefill_total
                }),
                k,
            )?;
            edit(j, i, |e| e.progress.prefill_done = e.progress.prefill_total - 1)
        },
    },
    // R12
    Corruption {
        name: "stopped without output",
        rule: RuleId::NaturalFinishHasOutput,
        once: true,
        apply: |j, _| {
            let last = j.events.last()?;
            (j.finished_from == State::Running && last.progress.decode_done == 0).then_some(())?;
            edit(j, j.events.len() - 1, |e| e.finish_status = Some(FinishStatus::Stopped))
        },
    },
];
