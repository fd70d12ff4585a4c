//! The rule catalogue (`SPEC.md` §5): what the oracle checks, one stable id per rule.
//!
//! Ids (`R1` … `R14`) follow the numbering of `SPEC.md` and are never renumbered or reused; a new
//! rule gets the next free number. Every rule has a targeted corruption in the test suite that
//! makes the checker report exactly that id (`tests/model_rules.rs`).

use std::fmt;

/// Which part of the crate checks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One journey, event by event ([`JourneyChecker`](super::JourneyChecker)).
    Journey,
    /// One journey, when its attributes are decoded from the wire ([`crate::wire`]).
    Wire,
    /// All journeys of one scheduler instance ([`InstanceChecker`](super::InstanceChecker)).
    Instance,
    /// The step windows of one scheduler instance, against its journeys
    /// ([`StepChecker`](super::StepChecker)).
    Steps,
}

/// Which layer of a request a rule (or a lane of `journey report`) is about: the namespace of a
/// rule id (`R`/`C` core, `A` API, `X` across the layers, `S` step windows; `SPEC.md` §5, §9,
/// §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Layer {
    /// The `llm_core` span: the request in the scheduler.
    Core,
    /// The `scheduler_steps_<n>` spans: the scheduler's own step windows (`SPEC.md` §12).
    Step,
}

impl Layer {
    /// The layer's name in reports: `core`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Layer::Core => "core",
            Layer::Step => "step",
        }
    }
}

/// A rule of the oracle. The variant docs are the one-line statements of `SPEC.md` §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RuleId {
    /// R1: the first event is QUEUED, and there is exactly one QUEUED.
    QueuedFirst,
    /// R2: each event is legal in the current state; nothing follows FINISHED.
    LegalTransition,
    /// R3: a journey whose span has ended finishes with exactly one FINISHED, unless the span
    /// reports dropped events (then it is incomplete).
    EndsFinished,
    /// R4: `schedule.kind` exactly on SCHEDULED (FIRST from Waiting, RESUME from Preempted);
    /// `finish.status` exactly on FINISHED, from the set; natural statuses only from Running.
    Qualifiers,
    /// R5: `event.type` equals the name's suffix; every mandatory attribute is present with its type.
    WellFormed,
    /// R6: `scheduler.step` never decreases; SCHEDULED/PREEMPTED steps are ≥ 1; RESUME's step is
    /// after the PREEMPTED before it.
    StepOrder,
    /// R7: `ts.monotonic` never decreases; event timestamps lie within the span.
    TimeOrder,
    /// R8: totals never change; done counters never decrease and never exceed their totals.
    ProgressBounds,
    /// R9: `num_preemptions` equals the number of PREEMPTED events so far.
    PreemptionCount,
    /// R10: `phase` follows `SPEC.md` §3; QUEUED reports zero progress and zero preemptions;
    /// SCHEDULED(FIRST) reports `prefill.done_tokens == 0`.
    PhaseAndSnapshot,
    /// R11: FIRST_TOKEN at most once, in Running, with output ≥ 1 and the whole prompt done, and
    /// no output before it.
    FirstToken,
    /// R12: `stopped` and `length` imply `decode.done_tokens ≥ 1`.
    NaturalFinishHasOutput,
    /// R13: within one step, no SCHEDULED event comes after a PREEMPTED event.
    NoAdmissionAfterPreemption,
    /// R14: request ids are unique among live requests (no two spans with the same id overlap).
    UniqueLiveIds,
    /// S1: step windows are roots, INTERNAL, named by their sequence, with contiguous ranges;
    /// a window closed at an interval boundary ends on a multiple of the interval and has events.
    StepWindows,
    /// S2: at most one BATCH_SUMMARY per step, in increasing steps within the window's range;
    /// REQUEST_SNAPSHOTs only after their step's summary, one per running request.
    StepEvents,
    /// S3: a summary agrees with itself and with the journeys of the same run.
    StepAgreement,
}

/// Everything the catalogue says about one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RuleInfo {
    /// The rule.
    pub id: RuleId,
    /// A short kebab-case name, accepted wherever an id is.
    pub name: &'static str,
    /// Who checks it.
    pub scope: Scope,
    /// The layer it is about (the namespace of its id).
    pub layer: Layer,
    /// The one-line statement.
    pub statement: &'static str,
    /// Why the rule holds and what it means in practice.
    pub doc: &'static str,
}

impl serde::Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl RuleId {
    /// Every rule, in catalogue order.
    pub const ALL: &'static [RuleId] = &[
        RuleId::QueuedFirst,
        RuleId::LegalTransition,
        RuleId::EndsFinished,
        RuleId::Qualifiers,
        RuleId::WellFormed,
        RuleId::StepOrder,
        RuleId::TimeOrder,
        RuleId::ProgressBounds,
        RuleId::PreemptionCount,
        RuleId::PhaseAndSnapshot,
        RuleId::FirstToken,
        RuleId::NaturalFinishHasOutput,
        RuleId::NoAdmissionAfterPreemption,
        RuleId::UniqueLiveIds,
        RuleId::StepWindows,
        RuleId::StepEvents,
        RuleId::StepAgreement,
    ];

    /// The stable id: `R1` … `R14`.
    pub const fn as_str(self) -> &'static str {
        self.entry().id_str
    }

    /// The rule's number in `SPEC.md` §5.
    pub const fn number(self) -> u8 {
        self.entry().number
    }

    /// The layer the rule is about.
    pub const fn layer(self) -> Layer {
        self.entry().info.layer
    }

    /// The catalogue entry.
    pub const fn info(self) -> RuleInfo {
        self.entry().info
    }

    const fn entry(self) -> Entry {
        match self {
            RuleId::QueuedFirst => Entry::new(
                1,
                "R1",
                "queued-first",
                Scope::Journey,
                self,
                "The first event is QUEUED, and there is exactly one QUEUED.",
                "A request enters the scheduler once, through `add_request`, which emits QUEUED before anything else can happen to it. A second QUEUED means two requests were merged into one span or an id was reused while live.",
            ),
            RuleId::LegalTransition => Entry::new(
                2,
                "R2",
                "legal-transition",
                Scope::Journey,
                self,
                "Each event is legal in the current state (SPEC §2); nothing follows FINISHED.",
                "The transition table is the lifecycle: SCHEDULED only from Waiting or Preempted, PREEMPTED and FIRST_TOKEN only in Running, FINISHED from any live state, and no event after FINISHED because the request and its span are gone.",
            ),
            RuleId::EndsFinished => Entry::new(
                3,
                "R3",
                "ends-finished",
                Scope::Journey,
                self,
                "A journey whose span has ended finishes with exactly one FINISHED, unless the span reports dropped events.",
                "Every termination path emits FINISHED right before it ends the span. A span that reports dropped events (SDK event limits: Python drops the oldest, Rust the newest) is incomplete, not violating; the checker still checks what is left.",
            ),
            RuleId::Qualifiers => Entry::new(
                4,
                "R4",
                "qualifiers",
                Scope::Journey,
                self,
                "`schedule.kind` is present exactly on SCHEDULED, FIRST from Waiting and RESUME from Preempted; `finish.status` exactly on FINISHED, with a value from the set; natural statuses only from Running.",
                "RESUME is decided by the previous status alone, so a RESUME without a PREEMPTED (or a FIRST after one) is mislabelled. `stopped` and `length` come from the model's tokens, which only a running request receives.",
            ),
            RuleId::WellFormed => Entry::new(
                5,
                "R5",
                "well-formed",
                Scope::Wire,
                self,
                "`event.type` equals the name's suffix; every mandatory attribute is present with its type.",
                "The nine mandatory attributes (`event.type`, `ts.monotonic`, `scheduler.step`, `phase`, the four progress counters, `num_preemptions`) are on every event with the types of SPEC §3; an event that lacks one cannot be checked further.",
            ),
            RuleId::StepOrder => Entry::new(
                6,
                "R6",
                "step-order",
                Scope::Journey,
                self,
                "`scheduler.step` never decreases; SCHEDULED/PREEMPTED steps are ≥ 1; RESUME's step is strictly greater than the step of the PREEMPTED before it.",
                "The step counter is incremented at the start of every `schedule()` and never reset. A request preempted in a step is not re-admitted in the same step, because the waiting phase runs only when nothing was preempted.",
            ),
            RuleId::TimeOrder => Entry::new(
                7,
                "R7",
                "time-order",
                Scope::Journey,
                self,
                "`ts.monotonic` never decreases; event timestamps lie within the span's start and end.",
                "Events of one request are emitted in program order from a single-threaded scheduler, and the span starts before QUEUED and ends right after FINISHED.",
            ),
            RuleId::ProgressBounds => Entry::new(
                8,
                "R8",
                "progress-bounds",
                Scope::Journey,
                self,
                "`prefill.total_tokens` and `decode.max_tokens` never change; `prefill.done_tokens` never decreases and never exceeds the total; `decode.done_tokens` never decreases and never exceeds the max.",
                "The prefill mark is a high-water mark that survives preemption, and output tokens are kept across preemption (recompute policy).",
            ),
            RuleId::PreemptionCount => Entry::new(
                9,
                "R9",
                "preemption-count",
                Scope::Journey,
                self,
                "`num_preemptions` equals the number of PREEMPTED events so far.",
                "The count is incremented before PREEMPTED is emitted, so PREEMPTED carries its own preemption and every event carries the running total.",
            ),
            RuleId::PhaseAndSnapshot => Entry::new(
                10,
                "R10",
                "phase-and-snapshot",
                Scope::Journey,
                self,
                "`phase` follows SPEC §3; QUEUED reports zero progress and zero preemptions; SCHEDULED(FIRST) reports `prefill.done_tokens == 0`.",
                "`phase` is WAITING on QUEUED only, otherwise PREFILL without output and DECODE with output. SCHEDULED reports the prefill mark from before the step's work, which is 0 on first admission. A QUEUED with preemptions is reported as R9, which every event's count must satisfy and which is checked first.",
            ),
            RuleId::FirstToken => Entry::new(
                11,
                "R11",
                "first-token",
                Scope::Journey,
                self,
                "FIRST_TOKEN happens at most once, in Running, with `decode.done_tokens ≥ 1`, `prefill.done_tokens == prefill.total_tokens`, and every earlier event at `decode.done_tokens == 0`.",
                "FIRST_TOKEN marks the 0→N transition of the output and is deduplicated per request; the first token needs the whole prompt computed.",
            ),
            RuleId::NaturalFinishHasOutput => Entry::new(
                12,
                "R12",
                "natural-finish-has-output",
                Scope::Journey,
                self,
                "`stopped` and `length` imply `decode.done_tokens ≥ 1`.",
                "Stop conditions are checked on appended output tokens, so a natural finish always follows at least one token.",
            ),
            RuleId::NoAdmissionAfterPreemption => Entry::new(
                13,
                "R13",
                "no-admission-after-preemption",
                Scope::Instance,
                self,
                "Within one step, no SCHEDULED event comes (by `ts.monotonic`) after a PREEMPTED event.",
                "vLLM admits waiting requests only when the same `schedule()` preempted nothing, and a reset's preemptions come after that step's admissions. Checked across the journeys of one scheduler instance.",
            ),
            RuleId::UniqueLiveIds => Entry::new(
                14,
                "R14",
                "unique-live-ids",
                Scope::Instance,
                self,
                "Request ids are unique among live requests (no two spans with the same id overlap in time).",
                "Adding a request whose id is live is rejected; an id may be reused only after its request finished.",
            ),
            RuleId::StepWindows => Entry::step(
                1,
                "S1",
                "step-windows",
                self,
                "Step windows are roots, INTERNAL, named `scheduler_steps_<sequence>`; sequences run 1, 2, …; ranges are contiguous (start 1, each start one past the previous end) with end ≥ start; a window closed at an interval boundary ends on a multiple of the interval and has events.",
                "HEAD (`a0d1f6fa4`) opens window 1 at construction; after each `schedule()` it counts towards the closure interval and, when the count reaches it, closes the window at the current step and opens the next one at the following step only if the window received an event since the last closure. Shutdown closes the open window, so only the last one may end elsewhere.",
            ),
            RuleId::StepEvents => Entry::step(
                2,
                "S2",
                "step-events",
                self,
                "At most one `step.BATCH_SUMMARY` per step, `step.id` increasing and within the window's range; `step.REQUEST_SNAPSHOT`s only in a summarized step, after its summary, one per request, as many as `queue.running_depth`, each with the phase its output count implies.",
                "The summary is emitted once per sampled `schedule()` call, and the rich snapshots follow it, one per request of the running list. The SDK's 128-event limit drops the oldest events: leading snapshots whose summary was dropped are tolerated when the window reports dropped events.",
            ),
            RuleId::StepAgreement => Entry::step(
                3,
                "S3",
                "step-agreement",
                self,
                "A summary agrees with itself (`prefill_tokens + decode_tokens = scheduled_tokens`, `duration_us = (ts_end_ns − ts_start_ns) // 1000`) and with the journeys of the same run: at most `batch.num_preempted` PREEMPTED of its step within `[ts_start_ns, ts_end_ns]` (exactly that with `--complete`), every SCHEDULED of its step within that window, and a snapshot's request Running with the same prompt length and preemption count.",
                "Two views of one run: `schedule()` emits the SCHEDULED and PREEMPTED events of its step between the two clock reads of the summary, on the same monotonic clock. A request without a journey (sampled out) is not a violation unless the input is declared complete.",
            ),
        }
    }

    /// Looks a rule up by id (`R7`, case-insensitive) or name (`time-order`).
    ///
    /// ```
    /// use journey_spec::model::RuleId;
    /// assert_eq!(RuleId::lookup("r7"), Some(RuleId::TimeOrder));
    /// assert_eq!(RuleId::lookup("time-order"), Some(RuleId::TimeOrder));
    /// assert_eq!(RuleId::lookup("R99"), None);
    /// ```
    pub fn lookup(s: &str) -> Option<RuleId> {
        RuleId::ALL.iter().copied().find(|r| r.as_str().eq_ignore_ascii_case(s) || r.info().name == s)
    }
}

/// A catalogue entry: the public [`RuleInfo`] plus the id string and number.
#[derive(Clone, Copy)]
struct Entry {
    number: u8,
    id_str: &'static str,
    info: RuleInfo,
}

impl Entry {
    const fn new(
        number: u8,
        id_str: &'static str,
        name: &'static str,
        scope: Scope,
        id: RuleId,
        statement: &'static str,
        doc: &'static str,
    ) -> Entry {
        Entry { number, id_str, info: RuleInfo { id, name, scope, layer: Layer::Core, statement, doc } }
    }

    /// A step-window rule (`S<n>`, `SPEC.md` §12).
    const fn step(
        number: u8,
        id_str: &'static str,
        name: &'static str,
        id: RuleId,
        statement: &'static str,
        doc: &'static str,
    ) -> Entry {
        Entry { number, id_str, info: RuleInfo { id, name, scope: Scope::Steps, layer: Layer::Step, statement, doc } }
    }
}

impl super::lifecycle::Rule for RuleId {
    fn name(self) -> &'static str {
        self.info().name
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole catalogue, in order: what `journey rules` prints.
pub fn catalogue() -> impl Iterator<Item = RuleInfo> {
    RuleId::ALL.iter().map(|r| r.info())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_numbered_in_order_and_unique() {
        for (i, r) in RuleId::ALL.iter().filter(|r| r.layer() == Layer::Core).enumerate() {
            assert_eq!(usize::from(r.number()), i + 1);
            assert_eq!(r.as_str(), format!("R{}", i + 1));
            assert_eq!(r.info().id, *r);
            assert_eq!(RuleId::lookup(r.as_str()), Some(*r));
            assert_eq!(RuleId::lookup(r.info().name), Some(*r));
        }
    }

    #[test]
    fn step_rules_are_s1_to_s3_in_layer_step() {
        let steps: Vec<&str> = RuleId::ALL.iter().filter(|r| r.layer() == Layer::Step).map(|r| r.as_str()).collect();
        assert_eq!(steps, ["S1", "S2", "S3"]);
        for r in RuleId::ALL.iter().filter(|r| r.layer() == Layer::Step) {
            assert_eq!(r.as_str(), format!("S{}", r.number()));
            assert_eq!(r.info().scope, Scope::Steps);
            assert_eq!(RuleId::lookup(&r.as_str().to_lowercase()), Some(*r));
            assert_eq!(RuleId::lookup(r.info().name), Some(*r));
        }
    }

    #[test]
    fn the_catalogue_lists_every_rule_in_order_and_ids_print_as_themselves() {
        let listed: Vec<RuleId> = catalogue().map(|r| r.id).collect();
        assert_eq!(listed, RuleId::ALL);
        for r in RuleId::ALL {
            assert_eq!(r.to_string(), r.as_str());
        }
    }
}
