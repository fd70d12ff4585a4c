//! The continuous-batching scheduler with vLLM v1 semantics (`SPEC.md` §6).

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{FinishStatus, RequestId, ScheduleKind, Step};

use super::config::{ConfigError, Policy, SchedulerConfig};
use super::hooks::{Hooks, Off};
use super::kv::{BlockId, BlockPool};
use super::queue::WaitingQueue;
use super::request::{FinishReason, Handle, NewRequest, Request, Status};

/// Why a request was not added. The scheduler is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// A live request already has this id.
    #[error("request {:?} is already live", .id.as_str())]
    DuplicateId {
        /// The id.
        id: RequestId,
    },
    /// `prompt_len` is 0.
    #[error("request {:?} has an empty prompt", .id.as_str())]
    EmptyPrompt {
        /// The id.
        id: RequestId,
    },
    /// `prompt_len` is not below `max_model_len`.
    #[error("request {:?} has a prompt of {prompt_len} tokens; max_model_len is {max_model_len}", .id.as_str())]
    PromptTooLong {
        /// The id.
        id: RequestId,
        /// Its prompt length.
        prompt_len: u64,
        /// The configured limit.
        max_model_len: u64,
    },
    /// `max_tokens` is 0.
    #[error("request {:?} has max_tokens 0", .id.as_str())]
    ZeroMaxTokens {
        /// The id.
        id: RequestId,
    },
    /// The request at its longest would need more KV blocks than the cache has, so it could
    /// never finish.
    #[error("request {:?} needs up to {needed} KV blocks; the cache has {available}", .id.as_str())]
    CannotFit {
        /// The id.
        id: RequestId,
        /// Blocks needed for `min(prompt_len + max_tokens, max_model_len)` tokens.
        needed: usize,
        /// Blocks in the cache.
        available: usize,
    },
}

/// A request that got tokens in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// The request.
    pub handle: Handle,
    /// Tokens scheduled for it in this step.
    pub tokens: u64,
    /// Set when the request was admitted in this step: `First` from the queue, `Resume` after a
    /// preemption. `None` for a request that was already running.
    pub admitted: Option<ScheduleKind>,
}

/// What one `schedule()` call decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOutput {
    /// The step (the counter after its increment).
    pub step: Step,
    /// Requests given tokens, in vLLM's order: running requests in running order, then
    /// admissions in queue order.
    pub scheduled: Vec<Scheduled>,
    /// Requests preempted in this step, in preemption order.
    pub preempted: Vec<Handle>,
    /// Sum of `scheduled[..].tokens`.
    pub total_tokens: u64,
}

/// A request that left the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Its handle (stale from now on).
    pub handle: Handle,
    /// Its id.
    pub id: Arc<str>,
    /// How it finished.
    pub status: FinishStatus,
    /// The step its FINISHED event carries.
    pub step: Step,
}

/// What `update_from_output` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateOutput {
    /// The step whose tokens these are.
    pub step: Step,
    /// Requests that received a token, in scheduled order, with `true` for their first token.
    pub sampled: Vec<(Handle, bool)>,
    /// Requests that stopped (EOS, `max_tokens`, `max_model_len`).
    pub finished: Vec<Finished>,
}

/// A broken scheduler invariant (a bug in the scheduler, reported by
/// [`Scheduler::check_invariants`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scheduler invariant broken at step {step}: {what}")]
pub struct InvariantError {
    /// The step counter when the check ran.
    pub step: u64,
    /// Which invariant broke.
    pub invariant: Invariant,
    /// What was wrong, naming the values involved.
    pub what: String,
}

/// The scheduler's invariants (`SPEC.md` §7), one per kind of finding of
/// [`Scheduler::check_invariants`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Invariant {
    /// A step's tokens stay within `max_num_batched_tokens` and add up.
    TokenBudget,
    /// At most `max_num_seqs` requests run.
    MaxNumSeqs,
    /// Every free block exists and is free once.
    FreeList,
    /// The running list holds live, running requests.
    RunningList,
    /// The waiting queue holds live requests that are not running.
    WaitingQueue,
    /// A live request is in exactly one place.
    OnePlace,
    /// The id index and the live requests agree.
    IdIndex,
    /// A request holds the blocks its computed tokens need.
    BlockCount,
    /// No live request is past its caps.
    Caps,
    /// Every block is free or held by exactly one request.
    BlockOwnership,
    /// Async scheduling: a request's output placeholders never go below zero (vLLM asserts
    /// this in `AsyncScheduler._update_request_with_output`; upstream #48245, #30142, #57562).
    Placeholders,
    /// Async scheduling: no batch delivers a token for an output position that already holds
    /// one, also across a preemption and resume (upstream #38624).
    DuplicateToken,
    /// Async scheduling: while a batch is in flight, the KV blocks it reads for a request that
    /// still runs (not preempted or finished since) stay that request's (vllm-ascend #14055).
    KvInFlight,
}

/// A batch scheduled but not yet applied (async scheduling), oldest first in the queue.
#[derive(Debug, Clone, Default)]
struct Batch {
    /// The step that scheduled it.
    step: Step,
    /// Its requests, in scheduled order.
    items: Vec<BatchItem>,
}

/// One request of a batch in flight, as `schedule()` left it. 32 bytes, written once per
/// scheduled request and step: the narrow fields keep `computed_async` cheap (`BENCHMARKS.md`,
/// "Async scheduling").
#[derive(Debug, Clone, Copy)]
struct BatchItem {
    handle: Handle,
    /// Whether the batch produces a token for it (its scheduled work reached the end of its
    /// known tokens plus placeholders); `false` for a chunk of prefill.
    token: bool,
    /// With `token`: the output position whose token the batch produces.
    position: u64,
    /// The low 32 bits of the request's preemptions then: a later preemption releases the
    /// blocks legitimately (a batch is applied within a few steps, so the low bits differ
    /// exactly when the count does).
    preemptions: u32,
    /// Its blocks then: how many (the pool's ids are `u32`, so a count fits), and the last
    /// one (the block the batch writes into; meaningless when `num_blocks` is 0).
    num_blocks: u32,
    last_block: BlockId,
}

/// The batches in flight (async scheduling), oldest first, in `batches[..len]`; the slots
/// after them are applied batches', kept with their item lists for the next ones (no
/// allocation per step). A list rather than a deque: the engine keeps two in flight, so taking
/// the oldest off is one swap.
#[derive(Debug, Clone, Default)]
struct BatchQueue {
    batches: Vec<Batch>,
    len: usize,
}

impl BatchQueue {
    /// The item list for the next batch: that of the slot it will take, emptied.
    #[inline]
    fn spare_items(&mut self) -> Vec<BatchItem> {
        let mut items = self.batches.get_mut(self.len).map(|b| std::mem::take(&mut b.items)).unwrap_or_default();
        items.clear();
        items
    }

    /// A batch joins the queue, after the others.
    #[inline]
    fn push(&mut self, batch: Batch) {
        match self.batches.get_mut(self.len) {
            Some(slot) => *slot = batch,
            None => self.batches.push(batch),
        }
        self.len += 1;
    }

    /// The oldest batch in flight.
    #[inline]
    fn front_mut(&mut self) -> Option<&mut Batch> {
        self.batches.first_mut().filter(|_| self.len > 0)
    }

    /// The oldest batch leaves the queue; its slot goes behind the others.
    #[inline]
    fn pop(&mut self) {
        for k in 1..self.len {
            self.batches.swap(k - 1, k);
        }
        self.len = self.len.saturating_sub(1);
    }

    /// The batches in flight, oldest first.
    fn as_slice(&self) -> &[Batch] {
        self.batches.get(..self.len).unwrap_or_default()
    }

    /// A copy of the batches in flight (without the spare slots).
    #[cfg(feature = "explore")]
    fn copy(&self) -> BatchQueue {
        BatchQueue { batches: self.as_slice().to_vec(), len: self.len }
    }

    /// Makes `self` hold `source`'s batches in flight, reusing its slots' item lists (the
    /// explorer's copies of a state); its spare slots stay spare.
    #[cfg(feature = "explore")]
    fn clone_live_from(&mut self, source: &BatchQueue) {
        let live = source.as_slice();
        for (k, b) in live.iter().enumerate() {
            match self.batches.get_mut(k) {
                Some(d) => {
                    d.step = b.step;
                    d.items.clone_from(&b.items);
                }
                None => self.batches.push(b.clone()),
            }
        }
        self.len = live.len();
    }
}

/// The reference scheduler: vLLM v1's `schedule()` / `update_from_output()` / `finish_requests()`
/// on a synchronous engine, with recompute preemption and fcfs or priority policy.
///
/// The scheduler has no clock and no randomness: the same calls give the same outputs. Time
/// enters only through the optional emitter's clocks.
///
/// ```
/// use journey_spec::{NewRequest, Scheduler, SchedulerConfig};
///
/// let mut s = Scheduler::new(SchedulerConfig::default())?;
/// s.add_request(NewRequest::new("r1", 20, 2))?;
/// let out = s.schedule();
/// assert_eq!((out.step.0, out.total_tokens), (1, 20));
/// s.update_from_output(|_| false); // first token
/// s.schedule();
/// let upd = s.update_from_output(|_| false); // second token: max_tokens reached
/// assert_eq!(upd.finished[0].status.as_str(), "length");
/// assert_eq!(s.num_live(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    /// `schedule()` calls so far.
    step: u64,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    /// Live requests by id. The ids come from outside, so the hasher is keyed at random per
    /// process against hash flooding: aHash (`Cargo.toml` says why), not std's SipHash, which
    /// cost a tenth of the explorer's instructions.
    by_id: HashMap<Arc<str>, Handle, ahash::RandomState>,
    waiting: WaitingQueue,
    running: Vec<Handle>,
    pool: BlockPool,
    next_arrival: u64,
    /// Requests finished since the last `schedule()` (vLLM's `finished_req_ids`, which the next
    /// `schedule()` reports to the workers and clears).
    unreported_finishes: usize,
    out: StepOutput,
    update: UpdateOutput,
    finished: Vec<Finished>,
    reset_preempted: Vec<Handle>,
    /// Async scheduling: the batches scheduled and not yet applied.
    in_flight: BatchQueue,
    /// The first invariant an `update_from_output` saw broken (it cannot stop midway; the next
    /// `check_invariants` reports it).
    broken: Option<InvariantError>,
    #[cfg(feature = "tracing")]
    emitter: Option<Box<super::emitter::Emitter>>,
    #[cfg(feature = "tracing")]
    step_tracer: Option<Box<super::steps::StepTracer>>,
    #[cfg(feature = "faults")]
    faults: super::faults::Faults,
}

/// Calls `$s.$method($args.., hooks)`, a method generic over [`Hooks`], with the attached
/// emitter as `hooks`, or with [`Off`] when there is none: the untraced copy of the method is
/// then the code of a build without the `tracing` feature (see `hooks`), and tracing that is
/// off costs this one branch per call. The generic methods are `#[inline(never)]`, so that each
/// copy is compiled as a function of its own, the untraced one as in a build without the
/// feature, rather than both inlined into the caller where they would share registers.
#[cfg(feature = "tracing")]
macro_rules! with_hooks {
    ($s:ident . $method:ident ( $($arg:expr),* )) => {
        // Tested before it is taken: the untraced path then writes nothing back.
        match if $s.emitter.is_some() { $s.emitter.take() } else { None } {
            None => $s.$method($($arg,)* &mut Off),
            Some(emitter) => $s.traced(emitter, |s, hooks| s.$method($($arg,)* hooks)),
        }
    };
}

/// Without the `tracing` feature there is only the untraced copy.
#[cfg(not(feature = "tracing"))]
macro_rules! with_hooks {
    ($s:ident . $method:ident ( $($arg:expr),* )) => {
        $s.$method($($arg,)* &mut Off)
    };
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    request: Option<Request>,
}

// By hand for `clone_from`, which reuses the request's block list (the explorer's copies).
impl Clone for Slot {
    fn clone(&self) -> Slot {
        Slot { generation: self.generation, request: self.request.clone() }
    }

    fn clone_from(&mut self, source: &Slot) {
        self.generation = source.generation;
        self.request.clone_from(&source.request);
    }
}

/// The live request behind `h` in `slots` (a free function, so that callers can borrow other
/// fields of the scheduler at the same time).
#[inline]
fn live_mut(slots: &mut [Slot], h: Handle) -> Option<&mut Request> {
    slots.get_mut(h.slot()).filter(|s| s.generation == h.generation).and_then(|s| s.request.as_mut())
}

/// Blocks reserved for a request when it is added, at most (see `add_request`): 4 KiB, enough
/// for 16,384 tokens in blocks of 16.
const RESERVED_BLOCKS: usize = 1024;

/// Tokens a request wants in this step, before the budget, whether it runs or waits: the rest
/// of its known tokens, at most `long_prefill_token_threshold` (when set) and never reaching
/// `max_model_len` (vLLM's cap for speculative tokens; a live request's known tokens are
/// already below it).
#[inline]
fn wanted(c: &SchedulerConfig, r: &Request) -> u64 {
    let mut n = r.num_tokens() - r.num_computed;
    if c.long_prefill_token_threshold > 0 && c.long_prefill_token_threshold < n {
        n = c.long_prefill_token_threshold;
    }
    n.min((c.max_model_len - 1).saturating_sub(r.num_computed))
}

/// [`wanted`] for a running request under async scheduling (vLLM `AsyncScheduler`): its known
/// tokens include the output placeholders, and a request whose tokens in flight already reach
/// `max_tokens` gets nothing (vLLM: "avoid scheduling an extra step"): 0, it is skipped.
#[inline]
fn wanted_async(c: &SchedulerConfig, r: &Request) -> u64 {
    let p = r.num_output_placeholders;
    // vLLM's `num_computed + 2 - p >= prompt + max_tokens`: false when the left side would be
    // negative; `max_total` is the right side, saturated (then never reached).
    if p > 0 && (r.num_computed + 2).checked_sub(p).is_some_and(|left| left >= r.max_total) {
        return 0;
    }
    let mut n = (r.num_tokens() + p).saturating_sub(r.num_computed);
    if c.long_prefill_token_threshold > 0 && c.long_prefill_token_threshold < n {
        n = c.long_prefill_token_threshold;
    }
    n.min((c.max_model_len - 1).saturating_sub(r.num_computed))
}

/// `AsyncScheduler._update_after_schedule` for a request scheduled `n` tokens: they are
/// computed, and when its work reaches its known tokens plus placeholders it gets one more
/// placeholder (its token is in flight). Returns its item of the step's batch.
#[inline]
fn computed_async(h: Handle, r: &mut Request, n: u64) -> BatchItem {
    r.num_computed += n;
    let p = r.num_output_placeholders;
    let token = r.num_computed == r.num_tokens() + p;
    r.num_output_placeholders = p + u64::from(token);
    BatchItem {
        handle: h,
        token,
        position: r.num_output + p,
        preemptions: r.num_preemptions as u32,
        num_blocks: r.blocks.len() as u32,
        last_block: r.blocks.last().copied().unwrap_or(BlockId(0)),
    }
}

/// Blocks `r` holds once `n` more of its tokens are computed.
#[inline]
fn blocks_after(c: &SchedulerConfig, r: &Request, n: u64) -> usize {
    c.blocks_for((r.num_computed + n).min(c.max_model_len))
}

impl Scheduler {
    /// A scheduler with a validated configuration and no tracing. It takes memory for what
    /// runs, not for what is configured: neither `max_num_seqs` nor `num_blocks` is allocated
    /// up front.
    pub fn new(config: SchedulerConfig) -> Result<Scheduler, ConfigError> {
        config.validate()?;
        let num_blocks = u32::try_from(config.num_blocks).map_err(|_| ConfigError::TooLarge {
            field: "num_blocks",
            value: config.num_blocks as u64,
            max: u32::MAX.into(),
        })?;
        Ok(Scheduler {
            config,
            step: 0,
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_id: HashMap::default(),
            waiting: WaitingQueue::new(config.policy),
            running: Vec::new(),
            pool: BlockPool::new(num_blocks),
            next_arrival: 0,
            unreported_finishes: 0,
            out: StepOutput::default(),
            update: UpdateOutput::default(),
            finished: Vec::new(),
            reset_preempted: Vec::new(),
            in_flight: BatchQueue::default(),
            broken: None,
            #[cfg(feature = "tracing")]
            emitter: None,
            #[cfg(feature = "tracing")]
            step_tracer: None,
            #[cfg(feature = "faults")]
            faults: super::faults::Faults::NONE,
        })
    }

    /// Injects deliberate bugs (test-only feature `faults`), to show that checks find them.
    #[cfg(feature = "faults")]
    #[doc(hidden)]
    pub fn inject_faults(&mut self, faults: super::faults::Faults) {
        self.faults = faults;
    }

    /// A copy of the scheduler for the explorer, whose states branch. The emitter is copied
    /// only when it has no tracer (spans cannot be copied; `None` then), onto `clock`.
    #[cfg(feature = "explore")]
    pub(crate) fn fork(&self, clock: &super::emitter::TickClock) -> Option<Scheduler> {
        let emitter = match &self.emitter {
            None => None,
            Some(e) => Some(Box::new(e.fork(clock.clone())?)),
        };
        Some(Scheduler {
            config: self.config,
            step: self.step,
            slots: self.slots.clone(),
            free_slots: self.free_slots.clone(),
            by_id: self.by_id.clone(),
            waiting: self.waiting.clone(),
            running: self.running.clone(),
            pool: self.pool.clone(),
            next_arrival: self.next_arrival,
            unreported_finishes: self.unreported_finishes,
            out: self.out.clone(),
            update: self.update.clone(),
            finished: self.finished.clone(),
            reset_preempted: self.reset_preempted.clone(),
            in_flight: self.in_flight.copy(),
            broken: self.broken.clone(),
            emitter,
            // Spans cannot be copied: the explorer's branches have no step windows.
            step_tracer: None,
            #[cfg(feature = "faults")]
            faults: self.faults,
        })
    }

    /// [`fork`](Self::fork) into `dst`, reusing its vectors (the explorer recycles the states
    /// it drops): afterwards `dst` behaves as a fork of `self`. `dst`'s emitter keeps its clock,
    /// so `dst` must come from a fork on `clock` (a new emitter is put on `clock`). `false`,
    /// with `dst` unusable, when the emitter cannot be copied (it has a tracer).
    #[cfg(feature = "explore")]
    pub(crate) fn fork_into(&self, dst: &mut Scheduler, clock: &super::emitter::TickClock) -> bool {
        // Every field by name, so that a new one cannot be forgotten here.
        let Scheduler {
            config,
            step,
            slots,
            free_slots,
            by_id,
            waiting,
            running,
            pool,
            next_arrival,
            unreported_finishes,
            out,
            update,
            finished,
            reset_preempted,
            in_flight,
            broken,
            emitter,
            step_tracer: _,
            #[cfg(feature = "faults")]
            faults,
        } = self;
        match (&mut dst.emitter, emitter) {
            (Some(d), Some(e)) => {
                if !e.fork_into(d) {
                    return false;
                }
            }
            (d, Some(e)) => match e.fork(clock.clone()) {
                Some(e) => *d = Some(Box::new(e)),
                None => return false,
            },
            (d, None) => *d = None,
        }
        dst.config = *config;
        dst.step = *step;
        dst.slots.clone_from(slots);
        dst.free_slots.clone_from(free_slots);
        // Unchanged (the same entries in the same order: the same map) when `dst` was a sibling
        // copy: then no reference count is touched (clearing and cloning the table would take
        // two atomic operations per live request).
        let same_index = dst.by_id.len() == by_id.len()
            && dst.by_id.iter().zip(by_id).all(|((dk, dh), (k, h))| Arc::ptr_eq(dk, k) && dh == h);
        if !same_index {
            dst.by_id.clone_from(by_id);
        }
        dst.waiting.clone_from(waiting);
        dst.running.clone_from(running);
        dst.pool.clone_from(pool);
        dst.next_arrival = *next_arrival;
        dst.unreported_finishes = *unreported_finishes;
        let StepOutput { step, scheduled, preempted, total_tokens } = out;
        dst.out.step = *step;
        dst.out.scheduled.clone_from(scheduled);
        dst.out.preempted.clone_from(preempted);
        dst.out.total_tokens = *total_tokens;
        let UpdateOutput { step, sampled, finished: update_finished } = update;
        dst.update.step = *step;
        dst.update.sampled.clone_from(sampled);
        dst.update.finished.clone_from(update_finished);
        dst.finished.clone_from(finished);
        dst.reset_preempted.clone_from(reset_preempted);
        dst.in_flight.clone_live_from(in_flight);
        dst.broken.clone_from(broken);
        // Spans cannot be copied: the explorer's branches have no step windows.
        dst.step_tracer = None;
        #[cfg(feature = "faults")]
        {
            dst.faults = *faults;
        }
        true
    }

    /// The configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The step counter: `schedule()` calls so far.
    pub fn step(&self) -> Step {
        Step(self.step)
    }

    /// The live request behind `h`, if it is still live.
    pub fn request(&self, h: Handle) -> Option<&Request> {
        self.slots.get(h.slot()).filter(|s| s.generation == h.generation).and_then(|s| s.request.as_ref())
    }

    /// The handle of the live request `id`.
    pub fn handle(&self, id: &str) -> Option<Handle> {
        self.by_id.get(id).copied()
    }

    /// Live requests: waiting, running or preempted.
    pub fn num_live(&self) -> usize {
        self.by_id.len()
    }

    /// Whether any request is live.
    pub fn has_live(&self) -> bool {
        !self.by_id.is_empty()
    }

    /// Whether the engine must call `schedule()` (vLLM `has_requests()`): a request is live, or
    /// requests finished since the last `schedule()` and that step must report them. So after
    /// the last live request finishes, one more (empty) step runs; then the engine idles and
    /// the step counter stops.
    pub fn has_requests(&self) -> bool {
        self.has_live() || self.unreported_finishes > 0
    }

    /// The running list, in admission order.
    pub fn running(&self) -> &[Handle] {
        &self.running
    }

    /// The waiting queue, in admission order.
    pub fn waiting(&self) -> impl Iterator<Item = Handle> + '_ {
        self.waiting.iter()
    }

    /// How many requests wait (new or preempted).
    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The KV block pool.
    pub fn blocks(&self) -> &BlockPool {
        &self.pool
    }

    /// The last `schedule()`'s decisions.
    pub fn last_step(&self) -> &StepOutput {
        &self.out
    }

    /// The last `update_from_output`'s results.
    pub fn last_update(&self) -> &UpdateOutput {
        &self.update
    }

    /// Attaches (or, with `None`, detaches) the journey emitter. Returns the previous one.
    #[cfg(feature = "tracing")]
    pub fn set_emitter(&mut self, emitter: Option<super::emitter::Emitter>) -> Option<super::emitter::Emitter> {
        let mut emitter = emitter.map(Box::new);
        if let Some(e) = emitter.as_mut() {
            e.set_check_profile(if self.config.async_scheduling {
                crate::model::Profile::Async
            } else {
                crate::model::Profile::Sync
            });
        }
        std::mem::replace(&mut self.emitter, emitter).map(|b| *b)
    }

    /// The journey emitter, if attached.
    #[cfg(feature = "tracing")]
    pub fn emitter(&self) -> Option<&super::emitter::Emitter> {
        self.emitter.as_deref()
    }

    /// Attaches (or, with `None`, detaches) the step-window tracer (`SPEC.md` §12). Returns the
    /// previous one (whose open window is still open).
    #[cfg(feature = "tracing")]
    pub fn set_step_tracer(&mut self, tracer: Option<super::steps::StepTracer>) -> Option<super::steps::StepTracer> {
        std::mem::replace(&mut self.step_tracer, tracer.map(Box::new)).map(|b| *b)
    }

    /// The step-window tracer, if attached.
    #[cfg(feature = "tracing")]
    pub fn step_tracer(&self) -> Option<&super::steps::StepTracer> {
        self.step_tracer.as_deref()
    }

    /// vLLM's `Scheduler.shutdown()`: the open step window is closed at the current step.
    /// Nothing else changes (live requests stay live).
    pub fn shutdown(&mut self) {
        #[cfg(feature = "tracing")]
        if let Some(t) = self.step_tracer.as_mut() {
            t.shutdown();
        }
    }

    /// The journey emitter, mutably (to drain its buffer).
    #[cfg(feature = "tracing")]
    pub fn emitter_mut(&mut self) -> Option<&mut super::emitter::Emitter> {
        self.emitter.as_deref_mut()
    }

    /// Adds a request to the back of the waiting queue. Rejected, with no change, when its id
    /// is live, its prompt is empty or not below `max_model_len`, its `max_tokens` is 0, or it
    /// could not fit the whole KV cache at its longest.
    pub fn add_request(&mut self, new: NewRequest) -> Result<Handle, AddError> {
        let c = &self.config;
        if self.by_id.contains_key(new.id.as_str()) {
            return Err(AddError::DuplicateId { id: new.id });
        }
        if new.prompt_len == 0 {
            return Err(AddError::EmptyPrompt { id: new.id });
        }
        if new.prompt_len >= c.max_model_len {
            return Err(AddError::PromptTooLong {
                id: new.id,
                prompt_len: new.prompt_len,
                max_model_len: c.max_model_len,
            });
        }
        if new.max_tokens == 0 {
            return Err(AddError::ZeroMaxTokens { id: new.id });
        }
        let longest = new.prompt_len.saturating_add(new.max_tokens).min(c.max_model_len);
        let needed = c.blocks_for(longest);
        if needed > c.num_blocks {
            return Err(AddError::CannotFit { id: new.id, needed, available: c.num_blocks });
        }

        let id: Arc<str> = Arc::from(new.id.0);
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        let request = Request {
            id: Arc::clone(&id),
            prompt_len: new.prompt_len,
            max_tokens: new.max_tokens,
            max_total: new.prompt_len.saturating_add(new.max_tokens),
            priority: new.priority,
            arrival,
            ignore_eos: new.ignore_eos,
            status: Status::Waiting,
            num_computed: 0,
            num_output: 0,
            num_preemptions: 0,
            num_output_placeholders: 0,
            discard_latest_async_tokens: false,
            // The most blocks it can ever hold, so that growing it in `schedule()` never
            // allocates (a preemption empties it but keeps the room); at most
            // `RESERVED_BLOCKS`, so that a request that may grow to billions of blocks takes
            // memory as it grows.
            blocks: Vec::with_capacity(needed.min(RESERVED_BLOCKS)),
            trace: new.trace,
        };
        let h = match self.free_slots.pop() {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                s.request = Some(request);
                Handle { slot, generation: s.generation }
            }
            None => {
                let slot = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Slot { generation: 0, request: Some(request) });
                Handle { slot, generation: 0 }
            }
        };
        self.by_id.insert(id, h);
        self.waiting.push_back(h, new.priority, arrival);
        with_hooks!(self.queued_with(h));
        Ok(h)
    }

    fn queued_with(&mut self, h: Handle, hooks: &mut impl Hooks) {
        if let Some(r) = self.slots[h.slot()].request.as_ref() {
            hooks.queued(h, r, self.step);
        }
    }

    /// Runs a scheduler method with the emitter, which is moved out of the scheduler for the
    /// call and put back after it, also when the call unwinds (a panicking `is_eos` or `ids`
    /// of the caller's): the emitter stays attached, as if it had never moved. Out of line, so
    /// that the untraced path stays small.
    #[cfg(feature = "tracing")]
    #[inline(never)]
    fn traced<R>(
        &mut self,
        mut emitter: Box<super::emitter::Emitter>,
        f: impl FnOnce(&mut Scheduler, &mut super::emitter::Emitter) -> R,
    ) -> R {
        // The unwind is resumed right after the emitter is back: nothing observes the state
        // between, so asserting unwind safety adds no risk of its own.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self, &mut emitter)));
        self.emitter = Some(emitter);
        out.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// One scheduling step (vLLM v1 `schedule()`): the step counter is incremented first; the
    /// running requests get tokens in order, preempting victims when KV blocks run out; then,
    /// only if nothing was preempted, waiting requests are admitted in queue order.
    pub fn schedule(&mut self) -> &StepOutput {
        // With neither an emitter nor a step tracer, one test and the untraced copy: the code of
        // a build without the `tracing` feature (no step-window state kept across the call).
        #[cfg(feature = "tracing")]
        if self.emitter.is_some() || self.step_tracer.is_some() {
            self.schedule_traced();
            return &self.out;
        }
        self.schedule_with(&mut Off);
        &self.out
    }

    /// `schedule()` with an emitter or a step tracer attached, out of line.
    #[cfg(feature = "tracing")]
    #[inline(never)]
    fn schedule_traced(&mut self) {
        let step_start = self
            .step_tracer
            .as_ref()
            .map(|t| super::steps::StepStart { ts_start_ns: t.now_ns(), num_finished: self.unreported_finishes });
        with_hooks!(self.schedule_with());
        if let Some(start) = step_start {
            self.trace_step(start);
        }
    }

    /// The step tracer's part of `schedule()`, out of line (the untraced path stays small).
    #[cfg(feature = "tracing")]
    #[inline(never)]
    fn trace_step(&mut self, start: super::steps::StepStart) {
        if let Some(mut t) = self.step_tracer.take() {
            t.after_schedule(self, start);
            self.step_tracer = Some(t);
        }
    }

    /// The untraced or traced `schedule()`, in the configured mode: one test per call picks the
    /// copy compiled for that mode, so that neither mode's loops carry the other's work.
    #[inline]
    fn schedule_with(&mut self, hooks: &mut impl Hooks) {
        if self.config.async_scheduling {
            self.schedule_in::<true>(hooks);
        } else {
            self.schedule_in::<false>(hooks);
        }
    }

    /// `schedule()` with `ASYNC` for `config.async_scheduling`.
    #[inline(never)]
    fn schedule_in<const ASYNC: bool>(&mut self, hooks: &mut impl Hooks) {
        self.step += 1;
        self.unreported_finishes = 0;
        let step = self.step;
        let c = self.config;
        self.out.step = Step(step);
        self.out.scheduled.clear();
        self.out.preempted.clear();
        let mut budget = c.max_num_batched_tokens;

        // Async scheduling: the step's batch, written as the requests are scheduled (the item
        // list of an applied batch, reused: no allocation per step).
        let mut items = if ASYNC { self.in_flight.spare_items() } else { Vec::new() };
        if ASYNC {
            // Room for every request that could be scheduled (all of them run or wait): no
            // growth path in the loops.
            items.reserve(self.running.len() + self.waiting.len());
        }

        // Running requests, in running order.
        let mut i = 0;
        while i < self.running.len() && budget > 0 {
            let h = self.running[i];
            let Some(r) = self.request(h) else {
                i += 1;
                continue;
            };
            let n = if ASYNC { wanted_async(&c, r) } else { wanted(&c, r) };
            let n = n.min(budget);
            if n == 0 {
                i += 1;
                continue;
            }
            let needed = blocks_after(&c, r, n);
            let mut allocated = false;
            while let Some(r) = live_mut(&mut self.slots, h) {
                if self.pool.grow_to(&mut r.blocks, needed) {
                    if ASYNC {
                        items.push(computed_async(h, r, n));
                    }
                    allocated = true;
                    break;
                }
                // Out of blocks: preempt a victim and retry, until the victim is `h` itself.
                let pos = self.victim();
                let victim = self.running.remove(pos);
                // Only under the priority policy can the victim have been scheduled already in
                // this step (under fcfs it is the last running request, not reached yet): then
                // its tokens are given back.
                let scheduled = match c.policy {
                    Policy::Fcfs => None,
                    Policy::Priority => self.out.scheduled.iter().position(|s| s.handle == victim),
                };
                if let Some(k) = scheduled {
                    let s = self.out.scheduled.remove(k);
                    budget += s.tokens;
                    i -= 1;
                    // Under async scheduling its batch item goes too, and what `computed_async`
                    // did is undone: as if it had never been scheduled.
                    if ASYNC && k < items.len() {
                        let item = items.remove(k);
                        if let Some(r) = live_mut(&mut self.slots, victim) {
                            r.num_computed = r.num_computed.saturating_sub(s.tokens);
                            r.num_output_placeholders = r.num_output_placeholders.saturating_sub(u64::from(item.token));
                        }
                    }
                }
                self.preempt(victim, step, hooks);
                self.out.preempted.push(victim);
                if victim == h {
                    break;
                }
            }
            if !allocated {
                break;
            }
            self.out.scheduled.push(Scheduled { handle: h, tokens: n, admitted: None });
            budget -= n;
            i += 1;
        }

        // Waiting requests, only when this step preempted nothing.
        #[cfg(feature = "faults")]
        let admit = self.out.preempted.is_empty() || self.faults.admit_after_preemption;
        #[cfg(not(feature = "faults"))]
        let admit = self.out.preempted.is_empty();
        if admit {
            while budget > 0 && self.running.len() < c.max_num_seqs {
                let Some(h) = self.waiting.peek() else { break };
                let Some(r) = live_mut(&mut self.slots, h) else { break };
                let n = wanted(&c, r);
                if !c.enable_chunked_prefill && n > budget {
                    break;
                }
                let n = n.min(budget);
                let needed = blocks_after(&c, r, n);
                if !self.pool.grow_to(&mut r.blocks, needed) {
                    break;
                }
                let kind = match r.status {
                    Status::Preempted => ScheduleKind::Resume,
                    Status::Waiting | Status::Running => ScheduleKind::First,
                };
                r.status = Status::Running;
                self.waiting.pop();
                self.running.push(h);
                self.out.scheduled.push(Scheduled { handle: h, tokens: n, admitted: Some(kind) });
                budget -= n;
                #[cfg(feature = "faults")]
                let kind = if kind == ScheduleKind::Resume && self.faults.resume_as_first {
                    ScheduleKind::First
                } else {
                    kind
                };
                hooks.scheduled(h, r, step, kind);
                // After the hook: SCHEDULED carries the mark from before this step's work.
                if ASYNC {
                    items.push(computed_async(h, r, n));
                }
            }
        }

        // `_update_after_schedule`: the scheduled tokens are now computed.
        if ASYNC {
            // `computed_async` did it as each request was scheduled; the hooks see the same
            // states in the same order as they would from a loop of its own here (a request
            // scheduled in this step changes no more in it), and with no emitter this loop is
            // empty and compiled away.
            for s in &self.out.scheduled {
                if let Some(r) = live_mut(&mut self.slots, s.handle) {
                    hooks.computed(s.handle, r);
                }
            }
            // The budget left is what the scheduled tokens did not use.
            self.out.total_tokens = c.max_num_batched_tokens.saturating_sub(budget);
            self.in_flight.push(Batch { step: self.out.step, items });
            return;
        }
        let mut total = 0;
        for s in &self.out.scheduled {
            total += s.tokens;
            if let Some(r) = live_mut(&mut self.slots, s.handle) {
                r.num_computed += s.tokens;
                hooks.computed(s.handle, r);
            }
        }
        self.out.total_tokens = total;
    }

    /// Batches scheduled and not yet applied (async scheduling; always 0 otherwise).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len
    }

    /// Tokens of `h` in the batches in flight (async scheduling): with no reset since they were
    /// scheduled, its output placeholders. More placeholders than this are *stale*: a reset of
    /// a request with nothing in flight marks its next real token to be thrown away, as vLLM
    /// does, and the placeholder of that token is never filled.
    pub fn tokens_in_flight(&self, h: Handle) -> u64 {
        let items = self.in_flight.as_slice().iter().flat_map(|b| b.items.iter());
        items.filter(|i| i.handle == h && i.token).count() as u64
    }

    /// Position in the running list of the next victim: the last request under fcfs, the
    /// worst `(priority, arrival)` under priority (the first such in running order).
    ///
    /// Out of line, like [`Scheduler::preempt`]: preemption is the rare path of the per-request
    /// loop in `schedule()`, which keeps its registers when the rare path is a plain call.
    #[inline(never)]
    fn victim(&self) -> usize {
        match self.config.policy {
            Policy::Fcfs => self.running.len() - 1,
            Policy::Priority => {
                let key = |h: &Handle| self.request(*h).map(|r| (r.priority, r.arrival));
                let mut best = 0;
                for (k, h) in self.running.iter().enumerate() {
                    if key(h) > key(&self.running[best]) {
                        best = k;
                    }
                }
                best
            }
        }
    }

    /// Recompute preemption of a request that the caller already took out of the running
    /// list: its blocks are freed, its computed tokens dropped (outputs kept), its count
    /// incremented, and it rejoins the front of the waiting queue.
    #[inline(never)]
    fn preempt(&mut self, h: Handle, step: u64, hooks: &mut impl Hooks) {
        let Some(r) = live_mut(&mut self.slots, h) else { return };
        self.pool.release(&mut r.blocks);
        r.status = Status::Preempted;
        #[cfg(feature = "faults")]
        let keep = self.faults.keep_computed_on_preemption;
        #[cfg(not(feature = "faults"))]
        let keep = false;
        if !keep {
            r.num_computed = 0;
        }
        r.num_preemptions += 1;
        #[cfg(feature = "faults")]
        if self.faults.preempt_clears_placeholders {
            r.num_output_placeholders = 0;
        }
        hooks.preempted(h, r, step);
        self.waiting.push_front(h, r.priority, r.arrival);
    }

    /// Requests whose scheduled work reached the end of their known tokens: the model
    /// produces one token for each of them in this step. In running order, which is the order
    /// in which the step scheduled them (admissions join the running list in queue order).
    /// Under async scheduling: the requests that get a token from the batch scheduled last
    /// (those `schedule()` gave a placeholder), in scheduled order.
    pub fn sampling(&self) -> impl Iterator<Item = Handle> + '_ {
        let sync = (!self.config.async_scheduling).then(|| {
            self.running.iter().copied().filter(|h| self.request(*h).is_some_and(|r| r.num_computed >= r.num_tokens()))
        });
        let batch = self.in_flight.as_slice().last().filter(|_| self.config.async_scheduling);
        let batch = batch.map(|b| b.items.iter().filter(|i| i.token).map(|i| i.handle));
        sync.into_iter().flatten().chain(batch.into_iter().flatten())
    }

    /// Applies the model's output for the last step (vLLM `update_from_output`): every running
    /// request whose computed tokens reached the end of its known tokens receives one token;
    /// `is_eos` says whether that token is EOS. Stop conditions, in vLLM's order: EOS (unless
    /// the request ignores it) → `stopped`; `max_model_len` or `max_tokens` reached → `length`.
    /// Stopped requests leave the running list and free their blocks. Requests finished since
    /// the step was scheduled (in-flight aborts) are gone and get nothing.
    ///
    /// Call it once after every `schedule()`. (A request whose token was not applied before the
    /// next `schedule()` is scheduled nothing and gets its token from the next update.)
    ///
    /// Under async scheduling it applies the oldest batch in flight instead (nothing when none
    /// is): a request gets a token exactly when that batch's `schedule()` gave it a
    /// placeholder; requests finished since get nothing; a request reset since has the token
    /// thrown away; a preempted request still gets its token, and may stop on it (vLLM's
    /// `stopped_preempted_reqs`: it leaves the waiting queue).
    pub fn update_from_output(&mut self, is_eos: impl FnMut(&str) -> bool) -> &UpdateOutput {
        if self.config.async_scheduling {
            with_hooks!(self.update_async_with(is_eos));
        } else {
            with_hooks!(self.update_with(is_eos));
        }
        &self.update
    }

    /// `update_from_output` of `AsyncScheduler` on the oldest batch in flight.
    #[inline(never)]
    fn update_async_with(&mut self, mut is_eos: impl FnMut(&str) -> bool, hooks: &mut impl Hooks) {
        self.update.sampled.clear();
        self.update.finished.clear();
        let Some(oldest) = self.in_flight.front_mut() else {
            self.update.step = Step(self.step);
            return;
        };
        // Taken out for the loop (which retires requests) and put back after it.
        let items = std::mem::take(&mut oldest.items);
        let step = oldest.step;
        let max_model_len = self.config.max_model_len;
        self.update.step = step;
        let mut stopped_running = false;
        #[cfg(feature = "faults")]
        let trim = self.faults.trim_blocks_to_output;
        for item in &items {
            if !item.token {
                continue;
            }
            let (h, position) = (item.handle, item.position);
            // Finished since (an in-flight abort, a stop): the token is dropped.
            let Some(r) = live_mut(&mut self.slots, h) else { continue };
            if r.discard_latest_async_tokens {
                r.discard_latest_async_tokens = false;
                continue;
            }
            if position < r.num_output && self.broken.is_none() {
                self.broken = Some(InvariantError {
                    step: self.step,
                    invariant: Invariant::DuplicateToken,
                    what: format!(
                        "{}: the batch of step {} delivers a token for output position {position}, which already holds one ({} outputs)",
                        r.id, step.0, r.num_output
                    ),
                });
            }
            let was_running = r.status == Status::Running;
            let eos = is_eos(&r.id);
            r.num_output += 1;
            let first = r.num_output == 1;
            self.update.sampled.push((h, first));
            if first {
                hooks.first_token(h, r, step.0);
            }
            match r.num_output_placeholders.checked_sub(1) {
                Some(p) => r.num_output_placeholders = p,
                None if self.broken.is_none() => {
                    self.broken = Some(InvariantError {
                        step: self.step,
                        invariant: Invariant::Placeholders,
                        what: format!(
                            "{}: the batch of step {} delivers a token with no output placeholder left",
                            r.id, step.0
                        ),
                    });
                }
                None => {}
            }
            #[cfg(feature = "faults")]
            if trim && was_running {
                let settled = r.num_computed.saturating_sub(r.num_output_placeholders);
                let keep = self.config.blocks_for(settled.min(max_model_len));
                if r.blocks.len() > keep {
                    let mut freed = r.blocks.split_off(keep);
                    self.pool.release(&mut freed);
                }
            }
            if let Some(status) = r.stop_status(eos, max_model_len) {
                hooks.finished(h, r, step.0, status);
                if was_running {
                    stopped_running = true;
                } else {
                    let (priority, arrival) = (r.priority, r.arrival);
                    self.waiting.remove(h, priority, arrival);
                }
                if let Some(id) = self.retire(h) {
                    self.update.finished.push(Finished { handle: h, id, status, step });
                }
            }
        }
        if stopped_running {
            let slots = &self.slots;
            self.running.retain(|h| slots.get(h.slot()).is_some_and(|s| s.generation == h.generation));
        }
        // The applied batch's slot is kept, with its item list, for a later batch.
        if let Some(oldest) = self.in_flight.front_mut() {
            oldest.items = items;
        }
        self.in_flight.pop();
    }

    #[inline(never)]
    fn update_with(&mut self, mut is_eos: impl FnMut(&str) -> bool, hooks: &mut impl Hooks) {
        let step = self.out.step;
        let max_model_len = self.config.max_model_len;
        self.update.step = step;
        self.update.sampled.clear();
        self.update.finished.clear();
        let mut any_stopped = false;
        for k in 0..self.running.len() {
            let h = self.running[k];
            let Some(r) = live_mut(&mut self.slots, h) else { continue };
            if r.num_computed < r.num_tokens() {
                continue; // nothing scheduled, or a chunk of prefill: no token
            }
            let eos = is_eos(&r.id);
            r.num_output += 1;
            let first = r.num_output == 1;
            self.update.sampled.push((h, first));
            if first {
                hooks.first_token(h, r, step.0);
            }
            if let Some(status) = r.stop_status(eos, max_model_len) {
                any_stopped = true;
                hooks.finished(h, r, step.0, status);
                if let Some(id) = self.retire(h) {
                    self.update.finished.push(Finished { handle: h, id, status, step });
                }
            }
        }
        if any_stopped {
            let slots = &self.slots;
            // A slot's generation changes exactly when its request leaves.
            self.running.retain(|h| slots.get(h.slot()).is_some_and(|s| s.generation == h.generation));
        }
    }

    /// Frees a finished request's blocks and slot; returns its id (`None` for a stale handle).
    /// The caller removes it from the running list or the waiting queue.
    fn retire(&mut self, h: Handle) -> Option<Arc<str>> {
        self.retire_indexed(h, true)
    }

    /// [`retire`](Self::retire), taking the request's id out of the index only when `indexed`
    /// (`false`: the caller took it out already).
    #[inline]
    fn retire_indexed(&mut self, h: Handle, indexed: bool) -> Option<Arc<str>> {
        let slot = self.slots.get_mut(h.slot()).filter(|s| s.generation == h.generation)?;
        let mut r = slot.request.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free_slots.push(h.slot);
        self.unreported_finishes += 1;
        self.pool.release(&mut r.blocks);
        if indexed {
            self.by_id.remove(&r.id);
        }
        Some(r.id)
    }

    /// Ends requests from outside the model (vLLM `finish_requests`): aborts, errors, ignores,
    /// from any live state. Unknown and finished ids are skipped silently. FINISHED carries
    /// `step` when given (an error found while processing a step's output), else the counter.
    pub fn finish_requests<'a>(
        &mut self,
        ids: impl IntoIterator<Item = &'a str>,
        reason: FinishReason,
        step: Option<Step>,
    ) -> &[Finished] {
        with_hooks!(self.finish_with(ids, reason, step));
        &self.finished
    }

    #[inline(never)]
    fn finish_with<'a>(
        &mut self,
        ids: impl IntoIterator<Item = &'a str>,
        reason: FinishReason,
        step: Option<Step>,
        hooks: &mut impl Hooks,
    ) {
        let step = step.unwrap_or(Step(self.step));
        let status = FinishStatus::from(reason);
        self.finished.clear();
        for id in ids {
            // One lookup: the entry is taken out of the index here rather than looked up here
            // and removed by `retire`. Put back when it does not name a live request of its id
            // (only in a corrupted state), so that everything then happens as it did before.
            let Some((key, h)) = self.by_id.remove_entry(id) else { continue };
            let Some(r) = self.request(h) else {
                self.by_id.insert(key, h);
                continue;
            };
            let unindexed = Arc::ptr_eq(&key, &r.id) || *key == *r.id;
            let (running, priority, arrival) = (r.status == Status::Running, r.priority, r.arrival);
            if !unindexed {
                self.by_id.insert(key, h);
            }
            if running {
                self.running.retain(|x| *x != h);
            } else {
                self.waiting.remove(h, priority, arrival);
            }
            if let Some(r) = self.slots[h.slot()].request.as_ref() {
                hooks.finished(h, r, step.0, status);
            }
            if let Some(id) = self.retire_indexed(h, !unindexed) {
                self.finished.push(Finished { handle: h, id, status, step });
            }
        }
    }

    /// Preempts every running request, last first, so that they rejoin the waiting queue in
    /// their running order (vLLM `reset_prefix_cache(reset_running_requests=True)`). PREEMPTED
    /// carries the step counter.
    pub fn reset(&mut self) -> &[Handle] {
        with_hooks!(self.reset_with());
        &self.reset_preempted
    }

    #[inline(never)]
    fn reset_with(&mut self, hooks: &mut impl Hooks) {
        self.reset_preempted.clear();
        let step = self.step;
        let discard = self.config.async_scheduling;
        #[cfg(feature = "faults")]
        let discard = discard && !self.faults.reset_keeps_latest_token;
        while let Some(h) = self.running.pop() {
            self.preempt(h, step, hooks);
            // The token in flight would repeat one the resumed request computes again, so it is
            // thrown away when its batch lands. As in vLLM, every reset request is marked, also
            // one with nothing in flight (a prefill chunk): that one loses its next real token
            // instead, and keeps a placeholder no batch fills (the fixture `r35_async` shows it:
            // `w35-015`'s first token comes one step late).
            if self.config.async_scheduling
                && let Some(r) = live_mut(&mut self.slots, h)
            {
                r.num_output_placeholders = 0;
                r.discard_latest_async_tokens = discard;
            }
            self.reset_preempted.push(h);
        }
    }

    /// Checks the scheduler's invariants: the last step kept its budget and `max_num_seqs`;
    /// every block is either free or held by exactly one live request; every live request is
    /// in exactly one place (running list or waiting queue) matching its status, and holds
    /// exactly the blocks its computed tokens need (none while waiting or preempted); the id
    /// index matches the slots.
    pub fn check_invariants(&self) -> Result<(), InvariantError> {
        let fail = |invariant: Invariant, what: String| Err(InvariantError { step: self.step, invariant, what });
        let c = &self.config;
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        for batch in self.in_flight.as_slice() {
            for item in &batch.items {
                let Some(r) = self.request(item.handle) else { continue };
                if r.status != Status::Running || r.num_preemptions as u32 != item.preemptions || item.num_blocks == 0 {
                    continue; // it left the running list since: its blocks went with it
                }
                let num_blocks = item.num_blocks as usize;
                let held = r.blocks.get(num_blocks - 1).copied();
                if r.blocks.len() < num_blocks || held != Some(item.last_block) {
                    return fail(
                        Invariant::KvInFlight,
                        format!(
                            "{} still runs, but block {} that the batch of step {} in flight reads for it is no longer its (it holds {} blocks, the batch read {})",
                            r.id,
                            item.last_block.0,
                            batch.step.0,
                            r.blocks.len(),
                            item.num_blocks
                        ),
                    );
                }
            }
        }
        if self.out.total_tokens > c.max_num_batched_tokens {
            return fail(
                Invariant::TokenBudget,
                format!("step used {} tokens, budget {}", self.out.total_tokens, c.max_num_batched_tokens),
            );
        }
        if self.out.total_tokens != self.out.scheduled.iter().map(|s| s.tokens).sum::<u64>() {
            return fail(Invariant::TokenBudget, "total_tokens is not the sum of scheduled tokens".into());
        }
        if self.running.len() > c.max_num_seqs {
            return fail(
                Invariant::MaxNumSeqs,
                format!("{} running requests, max_num_seqs {}", self.running.len(), c.max_num_seqs),
            );
        }
        // Who has each block ever handed out: nobody yet, the free list, or a request. Blocks
        // never handed out are free without being listed (and take no memory here either).
        // As one word each (small to clear and to scan): `NOBODY`, `FREE_LIST`, or the holder's
        // slot plus `HELD`.
        const NOBODY: u32 = 0;
        const FREE_LIST: u32 = 1;
        const HELD: u32 = 2;
        let holder = |o: u32| {
            let slot = o.checked_sub(HELD).map(|k| k as usize);
            slot.and_then(|k| self.slots.get(k)).and_then(|s| s.request.as_ref()).map_or("?", |r| &*r.id)
        };
        let (issued, total) = (self.pool.issued(), self.pool.total());
        // On the stack when small (the explorer checks tiny schedulers per transition).
        const SMALL: usize = 32;
        let (mut owner_small, mut owner_heap) = ([NOBODY; SMALL], Vec::new());
        let owner: &mut [u32] = if issued <= SMALL {
            &mut owner_small[..issued]
        } else {
            owner_heap.resize(issued, NOBODY);
            &mut owner_heap
        };
        for b in self.pool.recycled() {
            match owner.get_mut(b.0 as usize) {
                Some(o @ &mut NOBODY) => *o = FREE_LIST,
                Some(_) => return fail(Invariant::FreeList, format!("block {} is free twice", b.0)),
                None if (b.0 as usize) < total => {
                    return fail(Invariant::FreeList, format!("block {} is free twice (never used)", b.0));
                }
                None => return fail(Invariant::FreeList, format!("free block {} does not exist", b.0)),
            }
        }
        let (mut place_small, mut place_heap) = ([0u8; SMALL], Vec::new());
        let place: &mut [u8] = if self.slots.len() <= SMALL {
            &mut place_small[..self.slots.len()]
        } else {
            place_heap.resize(self.slots.len(), 0u8);
            &mut place_heap
        };
        for h in &self.running {
            let Some(r) = self.request(*h) else {
                return fail(Invariant::RunningList, format!("running list holds a dead handle {h:?}"));
            };
            if r.status != Status::Running {
                return fail(
                    Invariant::RunningList,
                    format!("{} is in the running list with status {:?}", r.id, r.status),
                );
            }
            place[h.slot()] += 1;
        }
        for h in self.waiting.iter() {
            let Some(r) = self.request(h) else {
                return fail(Invariant::WaitingQueue, format!("waiting queue holds a dead handle {h:?}"));
            };
            if r.status == Status::Running {
                return fail(Invariant::WaitingQueue, format!("{} is waiting with status Running", r.id));
            }
            place[h.slot()] += 1;
        }
        let mut live = 0;
        for (slot, s) in self.slots.iter().enumerate() {
            let Some(r) = &s.request else { continue };
            live += 1;
            if place[slot] != 1 {
                return fail(Invariant::OnePlace, format!("{} is in {} places", r.id, place[slot]));
            }
            let expected = match r.status {
                Status::Running => c.blocks_for(r.num_computed.min(c.max_model_len)),
                Status::Waiting | Status::Preempted => 0,
            };
            if r.blocks.len() != expected {
                return fail(
                    Invariant::BlockCount,
                    format!(
                        "{} ({:?}, {} computed) holds {} blocks, expected {expected}",
                        r.id,
                        r.status,
                        r.num_computed,
                        r.blocks.len()
                    ),
                );
            }
            if r.num_output >= r.max_tokens || r.num_tokens() >= c.max_model_len {
                return fail(Invariant::Caps, format!("{} is live past its caps", r.id));
            }
            for b in &r.blocks {
                match owner.get_mut(b.0 as usize) {
                    Some(o @ &mut NOBODY) => *o = HELD.saturating_add(slot as u32),
                    Some(&mut FREE_LIST) => {
                        return fail(Invariant::BlockOwnership, format!("block {} is free and held by {}", b.0, r.id));
                    }
                    Some(&mut other) => {
                        return fail(
                            Invariant::BlockOwnership,
                            format!("block {} is held by {} and by {}", b.0, r.id, holder(other)),
                        );
                    }
                    None if (b.0 as usize) < total => {
                        return fail(
                            Invariant::BlockOwnership,
                            format!("block {} is free and held by {} (never used)", b.0, r.id),
                        );
                    }
                    None => {
                        return fail(
                            Invariant::BlockOwnership,
                            format!("{} holds block {} that does not exist", r.id, b.0),
                        );
                    }
                }
            }
        }
        if let Some(b) = owner.iter().position(|o| *o == NOBODY) {
            return fail(Invariant::BlockOwnership, format!("block {b} is neither free nor held"));
        }
        if live != self.by_id.len() {
            return fail(Invariant::IdIndex, format!("{live} live slots, {} ids", self.by_id.len()));
        }
        // Every live request is indexed under its id at its handle: walked from the index, which
        // hashes nothing. The same condition as looking each live id up: with as many entries
        // as live slots, every entry naming a distinct live request by its id (distinct keys
        // cannot name one request, whose id is one of them) is every live request named once.
        for (id, &h) in &self.by_id {
            // The index shares each request's id, so the pointers match; the text is compared
            // when they do not.
            if self.request(h).is_none_or(|r| !Arc::ptr_eq(&r.id, id) && *r.id != **id) {
                return fail(Invariant::IdIndex, format!("id index does not point {id} at a live request of that id"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::r#impl::kv::BlockId;

    /// Two running requests (a, b) and one waiting (w), with blocks held.
    fn busy() -> Scheduler {
        let config = SchedulerConfig {
            max_num_seqs: 2,
            max_num_batched_tokens: 64,
            block_size: 4,
            num_blocks: 16,
            max_model_len: 64,
            ..SchedulerConfig::default()
        };
        let mut s = Scheduler::new(config).expect("valid");
        for id in ["a", "b", "w"] {
            s.add_request(NewRequest::new(id, 6, 8)).expect("valid");
        }
        s.schedule();
        s.update_from_output(|_| false);
        assert_eq!(s.check_invariants(), Ok(()));
        s
    }

    fn slot<'a>(s: &'a mut Scheduler, id: &str) -> &'a mut Request {
        let h = s.by_id[id];
        s.slots[h.slot()].request.as_mut().expect("live")
    }

    /// Each corruption of the state is reported, with a message naming it.
    #[test]
    fn every_invariant_is_checked() {
        type Corrupt = fn(&mut Scheduler);
        let cases: [(&str, Corrupt); 12] = [
            ("budget", |s| s.out.total_tokens = 65),
            ("sum of scheduled", |s| s.out.total_tokens += 1),
            ("max_num_seqs", |s| s.config.max_num_seqs = 1),
            ("free and held", |s| {
                let b = slot(s, "a").blocks[0];
                s.pool.release(&mut vec![b]);
            }),
            ("free twice", |s| {
                let b = s.pool.free_blocks().next_back().expect("a free block");
                s.pool.release(&mut vec![b]);
            }),
            ("does not exist", |s| s.pool.release(&mut vec![BlockId(99)])),
            ("status", |s| slot(s, "a").status = Status::Waiting),
            ("places", |s| {
                let h = s.by_id["w"];
                s.waiting.push_back(h, 0, 99);
            }),
            ("blocks, expected", |s| {
                slot(s, "b").blocks.pop();
            }),
            ("past its caps", |s| slot(s, "w").num_output = 8),
            ("free and held by a (never used)", |s| slot(s, "a").blocks[0] = BlockId(10)),
            ("held by b and by a", |s| {
                let b = slot(s, "a").blocks[0];
                slot(s, "b").blocks[0] = b;
            }),
        ];
        for (what, corrupt) in cases {
            let mut s = busy();
            corrupt(&mut s);
            let err = s.check_invariants().expect_err(what);
            assert!(err.what.contains(what), "{what}: {err}");
        }
        let mut s = busy();
        s.by_id.remove("w");
        assert!(s.check_invariants().is_err(), "id index");
    }
}
