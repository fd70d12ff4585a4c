//! The six journey call sites, as seen from the scheduler.
//!
//! The scheduler code that reaches a call site is written once, generic over [`Hooks`], and
//! compiled twice: with [`Off`], whose hooks are empty, it is the code of a build without the
//! `tracing` feature; with the [`Emitter`] every hook emits. Each public scheduler method picks
//! one of the two once per call (`with_hooks!` in the scheduler), so tracing that is compiled
//! in but off costs one branch per call, not one per request touched. (A call site in a loop
//! costs even when it is never taken: the values that must survive a possible call take
//! registers and reloads on every iteration, about 4% of a steady-state step at 256 live
//! requests when the hooks were `Option` checks at each site; `BENCHMARKS.md`.)
//!
//! [`Emitter`]: super::emitter::Emitter

use crate::model::{FinishStatus, ScheduleKind};

#[cfg(feature = "tracing")]
use super::emitter::Emitter;
use super::request::{Handle, Request};

/// What the scheduler tells the journey emitter, at the six call sites of the vLLM fork.
pub(crate) trait Hooks {
    /// (1) `add_request`: the core span starts, then QUEUED.
    fn queued(&mut self, h: Handle, r: &Request, step: u64);
    /// (2) Admission in `schedule()`: SCHEDULED with the mark from before this step's work.
    fn scheduled(&mut self, h: Handle, r: &Request, step: u64, kind: ScheduleKind);
    /// (3) A preemption, inside `schedule()` or by a reset: PREEMPTED.
    fn preempted(&mut self, h: Handle, r: &Request, step: u64);
    /// After `schedule()` added a step's tokens to `num_computed`: the prefill mark moves.
    fn computed(&mut self, h: Handle, r: &Request);
    /// (4) The output went from 0 tokens to 1: FIRST_TOKEN.
    fn first_token(&mut self, h: Handle, r: &Request, step: u64);
    /// (5, 6) A natural stop, or `finish_requests`: FINISHED, then the span ends.
    fn finished(&mut self, h: Handle, r: &Request, step: u64, status: FinishStatus);
}

/// No tracing: every hook is empty and compiles to nothing.
pub(crate) struct Off;

impl Hooks for Off {
    #[inline(always)]
    fn queued(&mut self, _: Handle, _: &Request, _: u64) {}
    #[inline(always)]
    fn scheduled(&mut self, _: Handle, _: &Request, _: u64, _: ScheduleKind) {}
    #[inline(always)]
    fn preempted(&mut self, _: Handle, _: &Request, _: u64) {}
    #[inline(always)]
    fn computed(&mut self, _: Handle, _: &Request) {}
    #[inline(always)]
    fn first_token(&mut self, _: Handle, _: &Request, _: u64) {}
    #[inline(always)]
    fn finished(&mut self, _: Handle, _: &Request, _: u64, _: FinishStatus) {}
}

#[cfg(feature = "tracing")]
impl Hooks for Emitter {
    #[inline]
    fn queued(&mut self, h: Handle, r: &Request, step: u64) {
        Emitter::queued(self, h, r, step);
    }
    #[inline]
    fn scheduled(&mut self, h: Handle, r: &Request, step: u64, kind: ScheduleKind) {
        Emitter::scheduled(self, h, r, step, kind);
    }
    #[inline]
    fn preempted(&mut self, h: Handle, r: &Request, step: u64) {
        Emitter::preempted(self, h, r, step);
    }
    #[inline]
    fn computed(&mut self, h: Handle, r: &Request) {
        Emitter::computed(self, h, r);
    }
    #[inline]
    fn first_token(&mut self, h: Handle, r: &Request, step: u64) {
        Emitter::first_token(self, h, r, step);
    }
    #[inline]
    fn finished(&mut self, h: Handle, r: &Request, step: u64, status: FinishStatus) {
        Emitter::finished(self, h, r, step, status);
    }
}
