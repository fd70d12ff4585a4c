//! The six journey call sites, as seen from the scheduler.
//!
//! With the `tracing` feature the scheduler optionally owns an [`Emitter`]; every hook is one
//! predictable branch on `Option` when it has none. Without the feature the hooks are empty
//! inline functions and the scheduler carries no tracing code or state at all.

use crate::model::{FinishStatus, ScheduleKind};

#[cfg(feature = "tracing")]
use super::emitter::Emitter;
use super::request::{Handle, Request};

#[derive(Default)]
pub(crate) struct Hooks {
    #[cfg(feature = "tracing")]
    pub(crate) emitter: Option<Box<Emitter>>,
}

macro_rules! hook {
    ($(#[$meta:meta])* $name:ident ( $($arg:ident : $ty:ty),* )) => {
        $(#[$meta])*
        #[inline(always)]
        pub(crate) fn $name(&mut self, h: Handle, r: &Request $(, $arg: $ty)*) {
            #[cfg(feature = "tracing")]
            if let Some(e) = self.emitter.as_deref_mut() {
                e.$name(h, r $(, $arg)*);
            }
            #[cfg(not(feature = "tracing"))]
            let _ = (h, r $(, $arg)*);
        }
    };
}

impl Hooks {
    hook!(
        /// (1) `add_request`: the core span starts, then QUEUED.
        queued(step: u64)
    );
    hook!(
        /// (2) Admission in `schedule()`: SCHEDULED with the mark from before this step's work.
        scheduled(step: u64, kind: ScheduleKind)
    );
    hook!(
        /// (3) A preemption, inside `schedule()` or by a reset: PREEMPTED.
        preempted(step: u64)
    );
    hook!(
        /// After `schedule()` added a step's tokens to `num_computed`: the prefill mark moves.
        computed()
    );
    hook!(
        /// (4) The output went from 0 tokens to 1: FIRST_TOKEN.
        first_token(step: u64)
    );
    hook!(
        /// (5, 6) A natural stop, or `finish_requests`: FINISHED, then the span ends.
        finished(step: u64, status: FinishStatus)
    );
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(feature = "tracing")]
        return f.debug_struct("Hooks").field("emitter", &self.emitter.is_some()).finish();
        #[cfg(not(feature = "tracing"))]
        return f.write_str("Hooks(compiled out)");
    }
}
