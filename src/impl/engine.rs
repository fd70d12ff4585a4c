//! The engine loop, synchronous (`SPEC.md` §8) or with a batch queue (async scheduling,
//! `SPEC.md` §8.1: vLLM's `EngineCore.step_with_batch_queue`), and the workload runner.

use super::config::ConfigError;
use super::scheduler::{AddError, Scheduler};
use super::workload::{InFlight, Iteration, Op, Workload};

/// Why a run stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The workload's configuration is rejected.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// An `add` operation was rejected.
    #[error("iteration {iteration}, operation {op}: {source}")]
    Add {
        /// Index of the iteration in the workload.
        iteration: usize,
        /// Index of the operation in the iteration.
        op: usize,
        /// Why.
        source: AddError,
    },
    /// Requests were still live after the drain bound.
    #[error("the run did not drain: {live} request(s) still live after {iterations} extra iterations")]
    CannotDrain {
        /// Requests still live.
        live: usize,
        /// Empty iterations run after the workload.
        iterations: u64,
    },
}

/// What one engine iteration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iterated {
    /// No request was live: the engine idled and the step counter did not move.
    Idle,
    /// `schedule()` ran (and, synchronously, the model's tokens were applied).
    Stepped,
    /// Async scheduling, nothing left to schedule: no `schedule()`, but the oldest batch in
    /// flight was applied.
    Applied,
}

/// Counts of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunSummary {
    /// Engine iterations, the drain included.
    pub iterations: u64,
    /// `schedule()` calls.
    pub steps: u64,
    /// Empty iterations after the workload's last entry.
    pub drain_iterations: u64,
}

/// The engine: one scheduler stepped through workload iterations.
#[derive(Debug)]
pub struct Engine {
    scheduler: Scheduler,
    /// Async scheduling: the `eos` ids of the entry that scheduled each batch in flight,
    /// oldest first, in `eos[..eos_queued]` (a batch's tokens are fixed when it is scheduled).
    /// The lists are kept and copied into with `clone_from`, which reuses their allocations
    /// (for the usual empty list it is a `clear`): queueing a batch's ids allocates nothing
    /// once the lists have grown.
    eos: Vec<Vec<String>>,
    eos_queued: usize,
}

/// The batch queue's capacity under async scheduling (vLLM's `batch_queue_size` 2).
const BATCH_QUEUE: usize = 2;

impl Engine {
    /// An engine around `scheduler`.
    pub fn new(scheduler: Scheduler) -> Engine {
        Engine { scheduler, eos: Vec::new(), eos_queued: 0 }
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// The scheduler, mutably.
    pub fn scheduler_mut(&mut self) -> &mut Scheduler {
        &mut self.scheduler
    }

    /// Gives the scheduler back.
    pub fn into_scheduler(self) -> Scheduler {
        self.scheduler
    }

    /// One engine iteration, in the order of `SPEC.md` §8: (1) the operations; (2) `schedule()`
    /// if any request is live or finished since the last `schedule()` (vLLM's `has_requests()`,
    /// see [`Scheduler::has_requests`]); (3) the in-flight finishes; (4) one token for every request
    /// whose scheduled work reached the end of its known tokens, EOS for the ids in `eos`;
    /// (5) `update_from_output`. `index` names the iteration in errors.
    ///
    /// Under async scheduling one iteration is one call of `step_with_batch_queue` (`SPEC.md`
    /// §8.1): the operations; `schedule()` if the scheduler has requests, its batch queued
    /// with this iteration's `eos`; if that batch has tokens and the queue is not full, the
    /// in-flight finishes end the iteration; otherwise (or with nothing to schedule and a batch
    /// in flight) the oldest batch is popped, the in-flight finishes land, and its output is
    /// applied with the `eos` of the iteration that scheduled it.
    pub fn iterate(&mut self, index: usize, it: &Iteration) -> Result<Iterated, EngineError> {
        Engine::ops(&mut self.scheduler, index, it)?;
        if self.scheduler.config().async_scheduling {
            return Ok(self.iterate_async(it));
        }
        Ok(self.iterate_sync(it))
    }

    /// Step (1) of an iteration: its operations, in order.
    fn ops(s: &mut Scheduler, index: usize, it: &Iteration) -> Result<(), EngineError> {
        for (op, o) in it.ops.iter().enumerate() {
            match o {
                Op::Add(add) => {
                    s.add_request(add.to_request()).map_err(|source| EngineError::Add {
                        iteration: index,
                        op,
                        source,
                    })?;
                }
                Op::Finish(f) => {
                    s.finish_requests([f.id.as_str()], f.status, None);
                }
                Op::Reset => {
                    s.reset();
                }
            }
        }
        Ok(())
    }

    /// An async iteration after its operations (`SPEC.md` §8.1 steps 2–4).
    fn iterate_async(&mut self, it: &Iteration) -> Iterated {
        let s = &mut self.scheduler;
        let done = if s.has_requests() {
            let tokens = s.schedule().total_tokens;
            match self.eos.get_mut(self.eos_queued) {
                // Most entries have no EOS: then the copy is a `clear`.
                Some(spare) if it.eos.is_empty() => spare.clear(),
                Some(spare) => spare.clone_from(&it.eos),
                None => self.eos.push(it.eos.clone()),
            }
            self.eos_queued += 1;
            if tokens > 0 && s.in_flight() < BATCH_QUEUE {
                Engine::in_flight_finishes(s, it);
                return Iterated::Stepped;
            }
            Iterated::Stepped
        } else if s.in_flight() == 0 {
            Engine::in_flight_finishes(s, it);
            return Iterated::Idle;
        } else {
            Iterated::Applied
        };
        Engine::in_flight_finishes(s, it);
        // The oldest batch's ids; none when the scheduler was stepped from outside the engine.
        let queued = self.eos.get_mut(..self.eos_queued).unwrap_or_default();
        if let Some(oldest) = queued.first() {
            s.update_from_output(|id| oldest.iter().any(|e| e == id));
            // The applied list becomes the spare room behind the others (at most two queued:
            // one swap).
            for k in 1..queued.len() {
                queued.swap(k - 1, k);
            }
            self.eos_queued -= 1;
        } else {
            s.update_from_output(|_| false);
        }
        done
    }

    /// The iteration's in-flight finishes (vLLM `_process_aborts_queue`).
    fn in_flight_finishes(s: &mut Scheduler, it: &Iteration) {
        for InFlight::Finish(f) in &it.in_flight {
            s.finish_requests([f.id.as_str()], f.status, None);
        }
    }

    /// A synchronous iteration after its operations (`SPEC.md` §8 steps 2–5).
    fn iterate_sync(&mut self, it: &Iteration) -> Iterated {
        let s = &mut self.scheduler;
        if !s.has_requests() {
            return Iterated::Idle;
        }
        s.schedule();
        Engine::in_flight_finishes(s, it);
        s.update_from_output(|id| it.eos.iter().any(|e| e == id));
        Iterated::Stepped
    }

    /// Replays `workload` from its first iteration, then runs empty iterations until no request
    /// is live. `on_iteration` sees the scheduler after every iteration (outputs, progress).
    ///
    /// The drain is bounded by `drain_limit` iterations (see [`Engine::drain_limit`]).
    pub fn run(
        &mut self,
        workload: &Workload,
        on_iteration: impl FnMut(usize, Iterated, &mut Scheduler),
    ) -> Result<RunSummary, EngineError> {
        run_to_drain(self, workload, on_iteration)
    }

    /// A generous bound on the iterations needed to finish every live request: in a healthy
    /// run the first running request (under fcfs; the best one under priority) gains a token in
    /// every step and is never preempted while others run, so each request finishes within
    /// `min(prompt + max_tokens, max_model_len)` steps of reaching the head; the bound allows 16
    /// full recomputes. It saturates at `u64::MAX` rather than overflow.
    pub fn drain_limit(&self) -> u64 {
        drain_limit(&self.scheduler)
    }
}

/// [`Engine::drain_limit`] for the requests live in `s`.
pub(crate) fn drain_limit(s: &Scheduler) -> u64 {
    drain_bound(
        s.waiting()
            .chain(s.running().iter().copied())
            .filter_map(|h| s.request(h))
            .map(|r| (r.prompt_len(), r.max_tokens())),
        s.config().max_model_len,
    )
}

/// What [`run_to_drain`] drives: the engine, or the API front end above it.
pub(crate) trait Drive {
    /// The driver's error; a run that does not drain is an [`EngineError::CannotDrain`].
    type Error: From<EngineError>;
    /// Runs entry `index` of a workload.
    fn iterate(&mut self, index: usize, it: &Iteration) -> Result<Iterated, Self::Error>;
    /// Whether work remains after the workload's last entry.
    fn busy(&self) -> bool;
    /// The scheduler driven.
    fn scheduler_mut(&mut self) -> &mut Scheduler;
}

impl Drive for Engine {
    type Error = EngineError;
    fn iterate(&mut self, index: usize, it: &Iteration) -> Result<Iterated, EngineError> {
        Engine::iterate(self, index, it)
    }
    fn busy(&self) -> bool {
        self.scheduler.has_requests() || self.scheduler.in_flight() > 0
    }
    fn scheduler_mut(&mut self) -> &mut Scheduler {
        &mut self.scheduler
    }
}

/// Replays `workload` from its first iteration, then runs empty iterations while the driver
/// is busy, at most [`drain_limit`] of them (taken after the last entry). `on_iteration` sees
/// the scheduler after every iteration.
pub(crate) fn run_to_drain<D: Drive>(
    d: &mut D,
    workload: &Workload,
    mut on_iteration: impl FnMut(usize, Iterated, &mut Scheduler),
) -> Result<RunSummary, D::Error> {
    let mut summary = RunSummary::default();
    for (k, it) in workload.steps.iter().enumerate() {
        let done = d.iterate(k, it)?;
        summary.iterations += 1;
        summary.steps += u64::from(done == Iterated::Stepped);
        on_iteration(k, done, d.scheduler_mut());
    }
    let limit = drain_limit(d.scheduler_mut());
    let empty = Iteration::default();
    while d.busy() {
        if summary.drain_iterations >= limit {
            let live = d.scheduler_mut().num_live();
            return Err(EngineError::CannotDrain { live, iterations: summary.drain_iterations }.into());
        }
        let k = workload.steps.len().saturating_add(usize::try_from(summary.drain_iterations).unwrap_or(usize::MAX));
        let done = d.iterate(k, &empty)?;
        summary.iterations += 1;
        summary.drain_iterations += 1;
        summary.steps += u64::from(done == Iterated::Stepped);
        on_iteration(k, done, d.scheduler_mut());
    }
    Ok(summary)
}

/// The drain bound of [`Engine::drain_limit`] for requests of `(prompt_len, max_tokens)`.
pub(crate) fn drain_bound(requests: impl Iterator<Item = (u64, u64)>, max_model_len: u64) -> u64 {
    // Saturating: `max_tokens` may be anything up to u64::MAX, and so may the sum.
    let work =
        requests.fold(0u64, |work, (prompt, max)| work.saturating_add(prompt.saturating_add(max).min(max_model_len)));
    work.saturating_mul(16).saturating_add(1024)
}

/// Replays a workload file's content on a fresh scheduler, returning the scheduler after the
/// drain (tracing off).
pub fn replay(workload: &Workload) -> Result<(Scheduler, RunSummary), EngineError> {
    let mut engine = Engine::new(Scheduler::new(workload.config)?);
    let summary = engine.run(workload, |_, _, _| {})?;
    Ok((engine.into_scheduler(), summary))
}
