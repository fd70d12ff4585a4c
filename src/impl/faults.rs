//! Deliberate scheduler bugs, for showing that the explorer (`crate::explore`) finds real ones.
//! Compiled only with the test-only cargo feature `faults`; every fault sits on a rare path
//! (a preemption, a resume, the admission check of a step that preempted), so a build with the
//! feature but no fault injected runs the hot loop of `schedule()` unchanged.

/// Which bugs to inject into a scheduler ([`Scheduler::inject_faults`]). All off by default.
///
/// [`Scheduler::inject_faults`]: super::Scheduler::inject_faults
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Faults {
    /// Admit waiting requests in a step that preempted (vLLM admits only when nothing was).
    pub admit_after_preemption: bool,
    /// Keep a preempted request's computed tokens instead of dropping them (recompute
    /// preemption must start over).
    pub keep_computed_on_preemption: bool,
    /// Emit SCHEDULED(FIRST) where the scheduler resumes a preempted request (its own output
    /// still says RESUME).
    pub resume_as_first: bool,
    /// Async scheduling: a preemption clears the request's output placeholders although its
    /// token is still in flight (as a literal backport of upstream #38624 did), so applying
    /// that token takes the count below zero (upstream #48245).
    pub preempt_clears_placeholders: bool,
    /// Async scheduling: a reset clears the placeholders but does not mark the token in flight
    /// to be discarded, so the resumed request gets a second token for one position (#38624).
    pub reset_keeps_latest_token: bool,
    /// Async scheduling: when an output lands, a running request's blocks are cut to its
    /// processed tokens (computed minus placeholders), freeing the block the batch in flight
    /// writes into (the settled/optimistic confusion of upstream #47728, vllm-ascend #14055).
    pub trim_blocks_to_output: bool,
}

impl Faults {
    /// No fault.
    pub const NONE: Faults = Faults {
        admit_after_preemption: false,
        keep_computed_on_preemption: false,
        resume_as_first: false,
        preempt_clears_placeholders: false,
        reset_keeps_latest_token: false,
        trim_blocks_to_output: false,
    };
}
