//! One state of the explored system and its transitions: the traced and the untraced
//! scheduler side by side, a projection of the events each request must have, and one journey
//! checker per live request. Every transition checks every property before it returns.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;

use crate::r#impl::emitter::TickClock;
use crate::r#impl::{
    AddOp, Emitter, FinishOp, FinishReason, Finished, Handle, InFlight, Iteration, NewRequest, Op, Policy, Scheduler,
    Status, StepOutput,
};
use crate::model::{
    EventKind, InstanceChecker, JourneyChecker, JourneyEvent, Label, Phase, Profile, Progress, RequestId, SpanInfo,
    State, Step, TRANSITIONS, Verdict,
};

use super::{Action, Coverage, ExploreConfig, Failure, Shape};

/// The id of the request added `n`-th along a path.
pub(crate) fn request_id(n: usize) -> String {
    format!("r{n}")
}

/// The id that no request ever has (finishing it must do nothing).
pub(crate) const UNKNOWN_ID: &str = "ghost";

/// The batch queue's capacity under async scheduling (vLLM's `batch_queue_size`, `SPEC.md` §8.1).
const BATCH_QUEUE: usize = 2;

/// The request an in-flight abort with `pick` aborts: the `pick`-th request the last
/// `schedule()` scheduled, then (async picks only) the ones it preempted.
fn in_flight_pick(s: &Scheduler, pick: u8) -> Option<Handle> {
    let out = s.last_step();
    let k = pick as usize;
    out.scheduled.get(k).map(|x| x.handle).or_else(|| out.preempted.get(k.checked_sub(out.scheduled.len())?).copied())
}

/// The requests of a batch in flight that get a token when it is applied, in batch order:
/// those it computed a token for that are still live and not marked by a reset to have it
/// thrown away.
fn producers(s: &Scheduler, sampled: impl Iterator<Item = Handle>) -> Vec<Handle> {
    sampled.filter(|h| s.request(*h).is_some_and(|r| !r.discard_latest_async_tokens)).collect()
}

/// One request as the projection sees it: what the scheduler's own outputs imply.
#[derive(Debug, Clone)]
struct Req {
    shape: u8,
    handle: Handle,
    live: bool,
    /// Tokens scheduled since the last preemption.
    computed: u64,
    /// Prompt tokens processed before the first output (survives preemption).
    hiwater: u64,
    outputs: u64,
    preemptions: u64,
    first_token_step: Option<Step>,
    /// Async scheduling: tokens scheduled and not yet produced (stale ones after a reset
    /// included, as the scheduler counts them).
    placeholders: u64,
    /// Async scheduling: a reset marked the request's next token to be thrown away.
    discard: bool,
    /// The model, fed the emitted events; `None` once the journey finished conforming. Shared
    /// between a state and its copies until an event is pushed into it (copy on write): most
    /// transitions emit events for few of the requests, and a copy of a state is made per
    /// transition.
    checker: Option<Rc<JourneyChecker>>,
}

/// Async scheduling: a batch in flight as the projection sees it.
#[derive(Debug, Clone)]
struct Batch {
    /// The step that scheduled it (its outputs carry it).
    step: Step,
    items: Vec<Item>,
}

/// One request of a batch in flight.
#[derive(Debug, Clone, Copy)]
struct Item {
    /// Index into the requests.
    req: usize,
    handle: Handle,
    /// The output position of the token the batch produces for it, `None` for a prefill chunk.
    position: Option<u64>,
    /// Its preemptions and blocks when the batch was scheduled: a request preempted since may
    /// have lost the blocks, one still running may not.
    preemptions: u64,
    blocks: usize,
}

/// A state of the explored system.
pub(crate) struct World {
    traced: Scheduler,
    plain: Scheduler,
    reqs: Vec<Req>,
    /// Events the scheduler's outputs imply in the current transition, by request.
    expected: Vec<(usize, JourneyEvent)>,
    /// Whether the current transition's `schedule()` preempted (for [`Coverage`]).
    preempted_by_schedule: bool,
    /// Async scheduling: the batches in flight, oldest first (empty otherwise).
    batches: VecDeque<Batch>,
    /// Whether the scheduler runs async (`SPEC.md` §8.1).
    asynchronous: bool,
    /// Scratch, empty between transitions: the events emitted in one, by request.
    got: Vec<(usize, JourneyEvent)>,
    /// Scratch, empty between transitions: the requests one finish or update finished.
    done: Vec<Finished>,
    /// Scratch, empty between transitions: the ids that get EOS in an update.
    eos_ids: Vec<Arc<str>>,
    /// Scratch, empty between transitions: the tokens a batch in flight implies.
    want: Vec<(Handle, bool)>,
    /// Item lists of applied batches, empty, kept for the next batch.
    spare_items: Vec<Vec<Item>>,
}

/// Where a transition is cut for branching: after `schedule()`, after the in-flight finish.
pub(crate) struct Scheduled {
    /// How many requests an in-flight abort may pick: those the step scheduled (under async
    /// scheduling also those it preempted, whose token may still be in flight).
    pub(crate) scheduled: usize,
    /// Whether the step goes on to apply an output (always, synchronously; under async
    /// scheduling when the batch queue is full or the new batch is empty).
    pub(crate) applies: bool,
}

/// States the search dropped (already visited, or expanded), kept to be forked into so that
/// a copy reuses their vectors instead of allocating its own. At most [`Pool::CAP`] are kept.
#[derive(Default)]
pub(crate) struct Pool {
    // Boxed: a state moves between the pool, the search's children and its frontier by its
    // pointer, not by a copy of its fields.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<World>>,
}

impl Pool {
    /// States kept at most: enough for the copies of one state's transitions.
    const CAP: usize = 64;

    /// A copy of `w` (forked on `clock`, as every state of the search is), into a dropped
    /// state when there is one.
    pub(crate) fn fork(&mut self, w: &World, clock: &TickClock) -> Result<Box<World>, Failure> {
        match self.spare.pop() {
            Some(mut d) => {
                w.fork_into(&mut d, clock)?;
                Ok(d)
            }
            None => Ok(Box::new(w.fork(clock)?)),
        }
    }

    /// Keeps a dropped state for a later copy.
    pub(crate) fn give(&mut self, w: Box<World>) {
        if self.spare.len() < Pool::CAP {
            self.spare.push(w);
        }
    }
}

fn diverged(what: &str) -> Failure {
    Failure::Diverged { what: what.to_owned() }
}

fn progress_of(r: &Req, shape: &Shape) -> Progress {
    Progress {
        prefill_done: r.hiwater.min(shape.prompt_len),
        prefill_total: shape.prompt_len,
        decode_done: r.outputs,
        decode_max: shape.max_tokens,
    }
}

/// The fields the projection fixes: all but the clocks.
fn essence(e: &JourneyEvent) -> JourneyEvent {
    JourneyEvent { ts_monotonic: 0.0, time_unix_nano: None, ..e.clone() }
}

/// Runs `f`, turning a panic of the system under test into a failure.
pub(crate) fn contained<R>(f: impl FnOnce() -> Result<R, Failure>) -> Result<R, Failure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(Failure::Panicked(msg))
        }
    }
}

impl World {
    /// The initial state: two empty schedulers, the traced one with a buffer-only emitter on
    /// `clock` (shared by every state, so that events keep their order along any path).
    pub(crate) fn new(config: &ExploreConfig, clock: &TickClock) -> Result<World, Failure> {
        let make = || Scheduler::new(config.scheduler).map_err(|e| Failure::Config(e.to_string()));
        let mut traced = make()?;
        traced.set_emitter(Some(Emitter::without_tracer().with_clock(clock.clone())));
        #[cfg(feature = "faults")]
        traced.inject_faults(config.faults);
        let plain = make()?;
        #[cfg(feature = "faults")]
        let plain = {
            let mut plain = plain;
            plain.inject_faults(config.faults);
            plain
        };
        Ok(World {
            traced,
            plain,
            reqs: Vec::new(),
            expected: Vec::new(),
            preempted_by_schedule: false,
            batches: VecDeque::new(),
            asynchronous: config.scheduler.async_scheduling,
            got: Vec::new(),
            done: Vec::new(),
            eos_ids: Vec::new(),
            want: Vec::new(),
            spare_items: Vec::new(),
        })
    }

    /// A copy that branches on its own.
    pub(crate) fn fork(&self, clock: &TickClock) -> Result<World, Failure> {
        let no_copy = || Failure::Config("the scheduler cannot be copied".to_owned());
        Ok(World {
            traced: self.traced.fork(clock).ok_or_else(no_copy)?,
            plain: self.plain.fork(clock).ok_or_else(no_copy)?,
            reqs: self.reqs.clone(),
            expected: Vec::new(),
            preempted_by_schedule: self.preempted_by_schedule,
            batches: self.batches.clone(),
            asynchronous: self.asynchronous,
            got: Vec::new(),
            done: Vec::new(),
            eos_ids: Vec::new(),
            want: Vec::new(),
            spare_items: Vec::new(),
        })
    }

    /// [`fork`](Self::fork) into `dst`, a state dropped by the search (forked on `clock`),
    /// reusing its vectors: no allocation when `dst` had as much as `self` holds.
    pub(crate) fn fork_into(&self, dst: &mut World, clock: &TickClock) -> Result<(), Failure> {
        // Every field by name, so that a new one cannot be forgotten here.
        let World {
            traced,
            plain,
            reqs,
            expected: _,
            preempted_by_schedule,
            batches,
            asynchronous,
            got: _,
            done: _,
            eos_ids: _,
            want: _,
            spare_items: _,
        } = self;
        if !traced.fork_into(&mut dst.traced, clock) || !plain.fork_into(&mut dst.plain, clock) {
            return Err(Failure::Config("the scheduler cannot be copied".to_owned()));
        }
        dst.reqs.clone_from(reqs);
        dst.expected.clear();
        dst.preempted_by_schedule = *preempted_by_schedule;
        while dst.batches.len() > batches.len() {
            if let Some(mut b) = dst.batches.pop_back() {
                b.items.clear();
                dst.spare_items.push(b.items);
            }
        }
        for (d, b) in dst.batches.iter_mut().zip(batches) {
            d.step = b.step;
            d.items.clone_from(&b.items);
        }
        for b in batches.iter().skip(dst.batches.len()) {
            let mut items = dst.spare_items.pop().unwrap_or_default();
            items.clone_from(&b.items);
            dst.batches.push_back(Batch { step: b.step, items });
        }
        dst.asynchronous = *asynchronous;
        dst.got.clear();
        dst.done.clear();
        Ok(())
    }

    /// Frees the scratch vectors (empty between transitions, but with their capacity): for a
    /// state kept in the frontier, whose memory is what an exploration holds.
    pub(crate) fn trim(&mut self) {
        self.expected = Vec::new();
        self.got = Vec::new();
        self.done = Vec::new();
        self.eos_ids = Vec::new();
        self.want = Vec::new();
        self.spare_items = Vec::new();
    }

    /// Requests added so far.
    pub(crate) fn added(&self) -> usize {
        self.reqs.len()
    }

    /// Whether an engine iteration does something now: `schedule()` (a request is live or
    /// finished since the last one), or under async scheduling also applying a batch in flight.
    pub(crate) fn has_requests(&self) -> bool {
        self.traced.has_requests() || !self.batches.is_empty()
    }

    /// The profile the journeys are held to.
    pub(crate) fn profile(&self) -> Profile {
        if self.asynchronous { Profile::Async } else { Profile::Sync }
    }

    /// Whether any request is running (a reset then preempts).
    pub(crate) fn any_running(&self) -> bool {
        !self.traced.running().is_empty()
    }

    /// Live requests, running ones first in running order, then the waiting queue in order:
    /// the order in which [`Action::Finish`] picks.
    pub(crate) fn live_order(&self) -> impl Iterator<Item = Handle> + '_ {
        self.traced.running().iter().copied().chain(self.traced.waiting())
    }

    /// How many requests are live.
    pub(crate) fn num_live(&self) -> usize {
        self.traced.num_live()
    }

    /// The live request behind `h` (also one that finished in the current transition, whose
    /// handle the scheduler no longer knows).
    fn index_of(&self, h: Handle) -> Option<usize> {
        self.reqs.iter().position(|r| r.live && r.handle == h)
    }

    fn req(&mut self, h: Handle) -> Result<&mut Req, Failure> {
        let i = self.index_of(h).ok_or_else(|| diverged("an output names a request that is not live"))?;
        self.reqs.get_mut(i).ok_or_else(|| diverged("an output names an unknown request"))
    }

    fn expect(&mut self, i: usize, label: Label, step: Step, shapes: &[Shape]) {
        let (Some(r), Some(shape)) = (self.reqs.get(i), shapes.get(self.reqs.get(i).map_or(0, |r| r.shape as usize)))
        else {
            return;
        };
        let e = JourneyEvent::new(label, step, progress_of(r, shape), r.preemptions);
        self.expected.push((i, e));
    }

    // ---- The transitions ---------------------------------------------------------------------

    /// Adds a request of shape `shape` with the next id.
    pub(crate) fn add(&mut self, shape: u8, shapes: &[Shape]) -> Result<(), Failure> {
        let s = *shapes.get(shape as usize).ok_or_else(|| Failure::Config(format!("no shape {shape}")))?;
        let i = self.reqs.len();
        let new = NewRequest::new(request_id(i), s.prompt_len, s.max_tokens).priority(s.priority);
        let step = self.traced.step();
        let h = self.traced.add_request(new.clone()).map_err(Failure::Rejected)?;
        if self.plain.add_request(new).ok() != Some(h) {
            return Err(diverged("add_request"));
        }
        self.reqs.push(Req {
            shape,
            handle: h,
            live: true,
            computed: 0,
            hiwater: 0,
            outputs: 0,
            preemptions: 0,
            first_token_step: None,
            placeholders: 0,
            discard: false,
            // Without its id: a checker is copied with every state, and an empty id costs no
            // allocation; the id is put into a violation when one is reported.
            checker: Some(Rc::new(JourneyChecker::new(String::new()).with_profile(self.profile()))),
        });
        self.expect(i, Label::Queued, step, shapes);
        Ok(())
    }

    /// Finishes `id` from outside with `reason`.
    pub(crate) fn finish(&mut self, id: &str, reason: FinishReason, shapes: &[Shape]) -> Result<usize, Failure> {
        let mut done = std::mem::take(&mut self.done);
        done.extend_from_slice(self.traced.finish_requests([id], reason, None));
        if done != self.plain.finish_requests([id], reason, None) {
            return Err(diverged("finish_requests"));
        }
        self.finished(&done, shapes)?;
        let n = done.len();
        done.clear();
        self.done = done;
        Ok(n)
    }

    fn preempted(&mut self, h: Handle, step: Step, shapes: &[Shape]) -> Result<(), Failure> {
        let r = self.req(h)?;
        r.preemptions += 1;
        r.computed = 0;
        let i = self.index_of(h).unwrap_or(usize::MAX);
        self.expect(i, Label::Preempted, step, shapes);
        Ok(())
    }

    fn finished(&mut self, done: &[Finished], shapes: &[Shape]) -> Result<(), Failure> {
        for f in done {
            let i = f.id.strip_prefix('r').and_then(|n| n.parse::<usize>().ok());
            let Some(i) = i.filter(|&i| self.reqs.get(i).is_some_and(|r| r.live && r.handle == f.handle)) else {
                return Err(diverged("a finish names a request that is not live"));
            };
            self.expect(i, Label::Finished(f.status), f.step, shapes);
            if let Some(r) = self.reqs.get_mut(i) {
                r.live = false;
            }
        }
        Ok(())
    }

    /// Preempts every running request.
    pub(crate) fn reset(&mut self, shapes: &[Shape]) -> Result<(), Failure> {
        let step = self.traced.step();
        let preempted = self.traced.reset().to_vec();
        if preempted != self.plain.reset() {
            return Err(diverged("reset"));
        }
        for h in preempted {
            self.preempted(h, step, shapes)?;
            if self.asynchronous {
                // The token in flight would repeat one the resumed request computes again: it
                // is thrown away when its batch lands, also when nothing is in flight (then
                // the next one is, and its placeholder stays: `Scheduler::reset`).
                let r = self.req(h)?;
                r.placeholders = 0;
                r.discard = true;
            }
        }
        Ok(())
    }

    /// The first part of a step: `schedule()` on both schedulers, and under async scheduling
    /// whether the step then applies the oldest batch in flight (`SPEC.md` §8.1 (2)–(4)).
    pub(crate) fn schedule(&mut self, shapes: &[Shape]) -> Result<Scheduled, Failure> {
        if self.asynchronous && !self.traced.has_requests() {
            // Nothing live: the step applies the batch in flight and schedules nothing.
            return Ok(Scheduled { scheduled: 0, applies: true });
        }
        if self.traced.schedule() != self.plain.schedule() {
            return Err(diverged("schedule"));
        }
        // The output is read in place rather than copied: this runs for every step.
        fn out(w: &World) -> &StepOutput {
            w.traced.last_step()
        }
        let (step, total_tokens) = (out(self).step, out(self).total_tokens);
        let (num_scheduled, num_preempted) = (out(self).scheduled.len(), out(self).preempted.len());
        for k in 0..num_preempted {
            let Some(&h) = out(self).preempted.get(k) else { break };
            self.preempted(h, step, shapes)?;
        }
        self.preempted_by_schedule |= num_preempted > 0;
        for k in 0..num_scheduled {
            let Some(&s) = out(self).scheduled.get(k) else { break };
            if let Some(kind) = s.admitted {
                let i = self.index_of(s.handle).unwrap_or(usize::MAX);
                self.expect(i, Label::Scheduled(kind), step, shapes);
            }
        }
        let mut batch = Batch { step, items: self.spare_items.pop().unwrap_or_default() };
        for k in 0..num_scheduled {
            let Some(&s) = out(self).scheduled.get(k) else { break };
            let req = self.index_of(s.handle).unwrap_or(usize::MAX);
            let asynchronous = self.asynchronous;
            let r = self.req(s.handle)?;
            r.computed += s.tokens;
            let prompt = shapes.get(r.shape as usize).map_or(0, |s| s.prompt_len);
            if r.outputs == 0 {
                r.hiwater = r.hiwater.max(r.computed.min(prompt));
            }
            if asynchronous {
                // The token rule (§8.1): a token is in flight when the scheduled work reaches
                // the known tokens plus the placeholders.
                let p = r.placeholders;
                let position = (r.computed == prompt + r.outputs + p).then_some(r.outputs + p);
                r.placeholders += u64::from(position.is_some());
                let (preemptions, blocks) =
                    self.traced.request(s.handle).map_or((0, 0), |r| (r.num_preemptions(), r.blocks().len()));
                batch.items.push(Item { req, handle: s.handle, position, preemptions, blocks });
            }
        }
        if !self.asynchronous {
            return Ok(Scheduled { scheduled: num_scheduled, applies: true });
        }
        let sampled = batch.items.iter().filter(|i| i.position.is_some()).map(|i| i.handle);
        if !sampled.eq(self.traced.sampling()) {
            return Err(Failure::Projection {
                request: String::new(),
                what: format!("the batch of step {} samples other requests than the token rule implies", step.0),
            });
        }
        self.batches.push_back(batch);
        let queued = self.traced.in_flight();
        if queued != self.plain.in_flight() || queued != self.batches.len() {
            return Err(diverged("batches in flight"));
        }
        let applies = total_tokens == 0 || queued >= BATCH_QUEUE;
        let scheduled = num_scheduled + num_preempted;
        Ok(Scheduled { scheduled, applies })
    }

    /// The in-flight part of a step: the `pick`-th scheduled request is aborted (under async
    /// scheduling, the picks past the scheduled ones are the step's preempted requests).
    fn in_flight(&mut self, pick: u8, shapes: &[Shape]) -> Result<(), Failure> {
        let h = in_flight_pick(&self.traced, pick);
        let id = h.and_then(|h| self.traced.request(h)).map(|r| Arc::clone(r.shared_id()));
        let id = id.ok_or_else(|| diverged("in-flight pick out of range"))?;
        self.finish(&id, FinishReason::Aborted, shapes)?;
        Ok(())
    }

    /// How many requests get a token in this step (EOS choices): those the step's
    /// `schedule()` left with a token to compute, or under async scheduling those of the
    /// oldest batch in flight that are still live and whose token no reset throws away.
    pub(crate) fn sampling(&self) -> usize {
        if self.asynchronous {
            let items = self.batches.front().map(|b| b.items.as_slice()).unwrap_or(&[]);
            let s = &self.traced;
            return items
                .iter()
                .filter(|i| i.position.is_some())
                .filter(|i| s.request(i.handle).is_some_and(|r| !r.discard_latest_async_tokens))
                .count();
        }
        self.traced.sampling().count()
    }

    /// The last part of a step: the tokens, EOS for the sampled requests whose bit is set.
    /// Returns the ids that got EOS.
    fn update(&mut self, eos: u32, shapes: &[Shape]) -> Result<(), Failure> {
        if self.asynchronous {
            return self.update_async(eos, shapes);
        }
        // Read in place rather than copied: this runs for most transitions.
        let mut ids = std::mem::take(&mut self.eos_ids);
        if eos != 0 {
            let s = &self.traced;
            ids.extend(
                s.sampling()
                    .enumerate()
                    .filter(|(k, _)| *k < 32 && eos & (1 << k) != 0)
                    .filter_map(|(_, h)| s.request(h).map(|r| Arc::clone(r.shared_id()))),
            );
        }
        let is_eos = |id: &str| ids.iter().any(|e| **e == *id);
        if self.traced.update_from_output(is_eos) != self.plain.update_from_output(is_eos) {
            return Err(diverged("update_from_output"));
        }
        ids.clear();
        self.eos_ids = ids;
        let step = self.traced.last_update().step;
        for k in 0.. {
            let Some(&(h, first)) = self.traced.last_update().sampled.get(k) else { break };
            let i = self.index_of(h).unwrap_or(usize::MAX);
            let r = self.req(h)?;
            r.outputs += 1;
            if first != (r.outputs == 1) {
                return Err(Failure::Projection {
                    request: request_id(i),
                    what: format!("first-token flag {first} on output {}", r.outputs),
                });
            }
            if first {
                r.first_token_step = Some(step);
                self.expect(i, Label::FirstToken, step, shapes);
            }
        }
        self.finished_by_update(shapes)
    }

    /// The requests the last update finished, through [`World::finished`].
    fn finished_by_update(&mut self, shapes: &[Shape]) -> Result<(), Failure> {
        let mut done = std::mem::take(&mut self.done);
        done.extend_from_slice(&self.traced.last_update().finished);
        self.finished(&done, shapes)?;
        done.clear();
        self.done = done;
        Ok(())
    }

    /// [`World::update`] under async scheduling: the oldest batch in flight is applied.
    fn update_async(&mut self, eos: u32, shapes: &[Shape]) -> Result<(), Failure> {
        // The requests that get a token ([`World::sampling`]), the EOS ones by their bit.
        let mut ids = std::mem::take(&mut self.eos_ids);
        if eos != 0 {
            let s = &self.traced;
            let items = self.batches.front().map(|b| b.items.as_slice()).unwrap_or(&[]);
            ids.extend(
                items
                    .iter()
                    .filter(|i| i.position.is_some())
                    .filter_map(|i| s.request(i.handle).filter(|r| !r.discard_latest_async_tokens))
                    .enumerate()
                    .filter(|(k, _)| *k < 32 && eos & (1 << k) != 0)
                    .map(|(_, r)| Arc::clone(r.shared_id())),
            );
        }
        let is_eos = |id: &str| ids.iter().any(|e| **e == *id);
        self.traced.update_from_output(is_eos);
        if self.traced.last_update() != self.plain.update_from_output(is_eos) {
            return Err(diverged("update_from_output"));
        }
        ids.clear();
        self.eos_ids = ids;
        let batch = self.batches.pop_front().ok_or_else(|| diverged("an output applied with no batch in flight"))?;
        let applied = self.traced.last_update().step;
        if applied != batch.step {
            return Err(Failure::Projection {
                request: String::new(),
                what: format!(
                    "the output of step {} applied where the oldest batch is step {}",
                    applied.0, batch.step.0
                ),
            });
        }
        // What the batch implies: a token for each live request it computed one for, unless a
        // reset marked that token to be thrown away.
        let mut want = std::mem::take(&mut self.want);
        for item in &batch.items {
            if item.position.is_none() {
                continue;
            }
            let Some(r) = self.reqs.get_mut(item.req).filter(|r| r.live && r.handle == item.handle) else { continue };
            if std::mem::take(&mut r.discard) {
                continue;
            }
            r.outputs += 1;
            r.placeholders = r.placeholders.saturating_sub(1);
            want.push((item.handle, r.outputs == 1));
            if r.outputs == 1 {
                r.first_token_step = Some(batch.step);
                self.expect(item.req, Label::FirstToken, batch.step, shapes);
            }
        }
        if self.traced.last_update().sampled != want {
            return Err(Failure::Projection {
                request: String::new(),
                what: format!(
                    "the output of step {} gave tokens (handle, first) {:?}, the batch implies {want:?}",
                    batch.step.0,
                    self.traced.last_update().sampled
                ),
            });
        }
        want.clear();
        self.want = want;
        let mut items = batch.items;
        items.clear();
        self.spare_items.push(items);
        self.finished_by_update(shapes)
    }

    /// Applies `action` whole (the replay of a path, and every action but steps in the
    /// search) and checks the result.
    pub(crate) fn apply(
        mut self,
        action: Action,
        config: &ExploreConfig,
        coverage: &mut Coverage,
    ) -> Result<World, Failure> {
        self.apply_mut(action, config, coverage)?;
        Ok(self)
    }

    /// [`apply`](Self::apply) in place.
    pub(crate) fn apply_mut(
        &mut self,
        action: Action,
        config: &ExploreConfig,
        coverage: &mut Coverage,
    ) -> Result<(), Failure> {
        let shapes = &config.shapes;
        let w = self;
        match action {
            Action::Add { shape } => w.add(shape, shapes)?,
            Action::Step { eos, in_flight } => {
                let mid = w.schedule(shapes)?;
                if let Some(pick) = in_flight {
                    w.in_flight(pick, shapes)?;
                }
                if mid.applies {
                    w.update(eos, shapes)?;
                } else if eos != 0 {
                    return Err(Failure::Config("EOS choices for a step that applies no output".to_owned()));
                }
            }
            Action::Finish { pick, reason } => {
                let id = w.live_id(pick).ok_or_else(|| diverged("finish pick out of range"))?;
                if w.finish(&id, reason, shapes)? != 1 {
                    return Err(diverged("finishing a live request did nothing"));
                }
            }
            Action::FinishFinished => {
                let id = w.first_finished().ok_or_else(|| diverged("no finished request"))?;
                if w.finish(&id, FinishReason::Aborted, shapes)? != 0 {
                    return Err(diverged("finishing a finished request did something"));
                }
            }
            Action::FinishUnknown => {
                if w.finish(UNKNOWN_ID, FinishReason::Aborted, shapes)? != 0 {
                    return Err(diverged("finishing an unknown id did something"));
                }
            }
            Action::Reset => w.reset(shapes)?,
        }
        w.check(coverage)
    }

    /// [`Action::FinishFinished`] or [`Action::FinishUnknown`] on the state itself: the finish
    /// must return nothing on both schedulers, leave the fingerprint as it was and pass every
    /// check (the state's child is then the state itself).
    pub(crate) fn finish_nothing(
        &mut self,
        action: Action,
        config: &ExploreConfig,
        words: &mut Vec<u64>,
        coverage: &mut Coverage,
    ) -> Result<(), Failure> {
        let id = match action {
            Action::FinishFinished => self.first_finished().ok_or_else(|| diverged("no finished request"))?,
            Action::FinishUnknown => UNKNOWN_ID.to_owned(),
            Action::Add { .. } | Action::Step { .. } | Action::Finish { .. } | Action::Reset => {
                return Err(Failure::Config(format!("{action:?} is not a finish that must do nothing")));
            }
        };
        self.canonical(words);
        let before = super::fingerprint(words);
        if self.finish(&id, FinishReason::Aborted, &config.shapes)? != 0 {
            return Err(diverged(&format!("finishing {id}, not live, did something")));
        }
        self.check(coverage)?;
        self.canonical(words);
        if super::fingerprint(words) != before {
            return Err(diverged(&format!("finishing {id}, not live, changed the state")));
        }
        Ok(())
    }

    /// The id of the first request that finished, in add order.
    fn first_finished(&self) -> Option<String> {
        self.reqs.iter().position(|r| !r.live).map(request_id)
    }

    /// What `action` does in this state, with concrete ids, as a workload fragment and one
    /// line of text. Computed on a copy of the traced scheduler alone, unchecked, so that it
    /// is known even for the action that breaks a property.
    pub(crate) fn concrete(&self, action: Action, config: &ExploreConfig, clock: &TickClock) -> (Applied, String) {
        let priority = config.scheduler.policy == Policy::Priority;
        match action {
            Action::Add { shape } => {
                let id = request_id(self.reqs.len());
                let s = config.shapes.get(shape as usize).copied().unwrap_or(Shape {
                    prompt_len: 0,
                    max_tokens: 0,
                    priority: 0,
                });
                let mut line = format!("add {id}: prompt {}, max_tokens {}", s.prompt_len, s.max_tokens);
                if priority {
                    line.push_str(&format!(", priority {}", s.priority));
                }
                (Applied::Op(Op::Add(add_op(&id, &s))), line)
            }
            Action::Step { eos, in_flight } => {
                let probe = catch_unwind(AssertUnwindSafe(|| {
                    let mut s = self.traced.fork(clock)?;
                    // Which step is scheduled, and which is applied (async: the oldest in flight).
                    let schedules = (!self.asynchronous || s.has_requests()).then(|| s.schedule().step);
                    let applies = match schedules {
                        Some(_) if self.asynchronous => {
                            let out = s.last_step();
                            (out.total_tokens == 0 || s.in_flight() >= BATCH_QUEUE)
                                .then(|| self.batches.front().map_or(out.step, |b| b.step))
                        }
                        Some(step) => Some(step),
                        None => self.batches.front().map(|b| b.step),
                    };
                    let aborted = in_flight.and_then(|k| s.request(in_flight_pick(&s, k)?).map(|r| r.id().to_owned()));
                    if let Some(id) = &aborted {
                        s.finish_requests([id.as_str()], FinishReason::Aborted, None);
                    }
                    let sampled: Vec<Handle> = match (self.asynchronous, applies, self.batches.front()) {
                        (false, _, _) => s.sampling().collect(),
                        (true, None, _) => Vec::new(),
                        (true, Some(_), Some(b)) => {
                            producers(&s, b.items.iter().filter(|i| i.position.is_some()).map(|i| i.handle))
                        }
                        (true, Some(_), None) => producers(&s, s.sampling()),
                    };
                    let ids: Vec<String> = sampled
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| *k < 32 && eos & (1 << k) != 0)
                        .filter_map(|(_, h)| s.request(*h).map(|r| r.id().to_owned()))
                        .collect();
                    Some((aborted, ids, schedules, applies))
                }));
                let (aborted, ids, schedules, applies) = probe.ok().flatten().unwrap_or_default();
                let mut line = "step".to_owned();
                if self.asynchronous {
                    let what: Vec<String> =
                        [schedules.map(|s| format!("schedule {}", s.0)), applies.map(|s| format!("apply {}", s.0))]
                            .into_iter()
                            .flatten()
                            .collect();
                    line.push_str(&format!(": {}", what.join(", ")));
                }
                if let Some(id) = &aborted {
                    line.push_str(&format!(", {id} aborted in flight"));
                }
                if !ids.is_empty() {
                    line.push_str(&format!(", EOS for {}", ids.join(" ")));
                }
                let step = Applied::Step {
                    in_flight: aborted,
                    eos: ids,
                    schedules: schedules.is_some(),
                    applies: applies.is_some(),
                };
                (step, line)
            }
            Action::Finish { pick, reason } => {
                let (id, status) = self.live_at(pick).unwrap_or_else(|| (format!("live#{pick}"), Status::Waiting));
                let line = format!("finish {id} ({}): {reason}", format!("{status:?}").to_lowercase());
                (Applied::Op(Op::Finish(FinishOp { id, status: reason })), line)
            }
            Action::FinishFinished => {
                let id = self.first_finished().unwrap_or_default();
                let line = format!("finish {id} (finished): aborted");
                (Applied::Op(Op::Finish(FinishOp { id, status: FinishReason::Aborted })), line)
            }
            Action::FinishUnknown => {
                let line = format!("finish {UNKNOWN_ID} (never added): aborted");
                let op = Op::Finish(FinishOp { id: UNKNOWN_ID.to_owned(), status: FinishReason::Aborted });
                (Applied::Op(op), line)
            }
            Action::Reset => (Applied::Op(Op::Reset), "reset".to_owned()),
        }
    }

    /// The children of a step, for every in-flight choice and every EOS choice, in the order
    /// of [`Action::Step`]'s enumeration, each checked; the list ends at the first failure.
    /// The copies are forked into states from `pool`.
    pub(crate) fn step_children(
        &self,
        config: &ExploreConfig,
        clock: &TickClock,
        coverage: &mut Coverage,
        pool: &mut Pool,
    ) -> Vec<(Action, Result<Box<World>, Failure>)> {
        let shapes = &config.shapes;
        // Room for the usual number of children from the start (one list per expanded state).
        let mut out = Vec::with_capacity(16);
        let first = contained(|| {
            let mut w = pool.fork(self, clock)?;
            let mid = w.schedule(shapes)?;
            Ok((w, mid))
        });
        let (mid, Scheduled { scheduled, applies }) = match first {
            Ok(first) => first,
            Err(e) => {
                out.push((Action::Step { eos: 0, in_flight: None }, Err(e)));
                return out;
            }
        };
        let mut mid = Some(mid);
        let picks = std::iter::once(None).chain((0..scheduled).map(|k| Some(k as u8)));
        for in_flight in picks {
            let after = contained(|| {
                // The last choice takes the state itself instead of a copy.
                let mut w = match mid.take_if(|_| in_flight.map_or(scheduled == 0, |k| k as usize + 1 == scheduled)) {
                    Some(w) => w,
                    None => {
                        let base = mid.as_ref().ok_or_else(|| diverged("no state to step"))?;
                        let mut w = pool.fork(base, clock)?;
                        w.expected.clone_from(&base.expected);
                        w
                    }
                };
                if let Some(pick) = in_flight {
                    w.in_flight(pick, shapes)?;
                }
                Ok(w)
            });
            let mut after = match after {
                Ok(w) => Some(w),
                Err(e) => {
                    out.push((Action::Step { eos: 0, in_flight }, Err(e)));
                    return out;
                }
            };
            let k = if applies { after.as_ref().map_or(0, |w| w.sampling().min(31)) } else { 0 };
            let last = (1u32 << k) - 1;
            for eos in 0..=last {
                let child = contained(|| {
                    // The last choice takes the state itself instead of a copy.
                    let mut w = match after.take_if(|_| eos == last) {
                        Some(w) => w,
                        None => {
                            let base = after.as_ref().ok_or_else(|| diverged("no state to step"))?;
                            let mut w = pool.fork(base, clock)?;
                            w.expected.clone_from(&base.expected);
                            w
                        }
                    };
                    if applies {
                        w.update(eos, shapes)?;
                    }
                    w.check(coverage)?;
                    Ok(w)
                });
                let failed = child.is_err();
                out.push((Action::Step { eos, in_flight }, child));
                if failed {
                    return out;
                }
            }
        }
        out
    }

    // ---- The properties ----------------------------------------------------------------------

    /// Every property of a state, after a transition: the scheduler invariants of both
    /// schedulers; the bookkeeping the outputs imply; the emitted events equal to those the
    /// outputs imply; every journey accepted by the model, event by event and whole once
    /// finished; no admission after a preemption in a step (R13).
    fn check(&mut self, coverage: &mut Coverage) -> Result<(), Failure> {
        for s in [&self.traced, &self.plain] {
            s.check_invariants().map_err(Failure::Invariant)?;
        }
        let live = self.traced.num_live();
        if self.plain.num_live() != live || self.traced.has_requests() != self.plain.has_requests() {
            return Err(diverged("live requests"));
        }
        if self.traced.emitter().map(|e| e.live()) != Some(live) {
            return Err(Failure::Projection {
                request: String::new(),
                what: format!("tracing state for {:?} requests, {live} live", self.traced.emitter().map(|e| e.live())),
            });
        }
        for (i, r) in self.reqs.iter().enumerate() {
            if !r.live {
                continue;
            }
            let Some(s) = self.traced.request(r.handle) else {
                return Err(Failure::Projection { request: request_id(i), what: "not live in the scheduler".into() });
            };
            let got = (s.num_computed(), s.num_output(), s.num_preemptions());
            let want = (r.computed, r.outputs, r.preemptions);
            if got != want {
                return Err(Failure::Projection {
                    request: request_id(i),
                    what: format!(
                        "the scheduler holds (computed, outputs, preemptions) = {got:?}, its outputs imply {want:?}"
                    ),
                });
            }
            let (got, want) = ((s.num_output_placeholders, s.discard_latest_async_tokens), (r.placeholders, r.discard));
            if self.asynchronous && got != want {
                return Err(Failure::Projection {
                    request: request_id(i),
                    what: format!(
                        "the scheduler holds (placeholders, discard the next token) = {got:?}, its outputs imply {want:?}"
                    ),
                });
            }
        }
        // The emitted events, by request, against the projection's.
        let mut got = std::mem::take(&mut self.got);
        if let Some(e) = self.traced.emitter_mut() {
            for b in e.drain() {
                let i = b.request_id.strip_prefix('r').and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
                got.push((i, b.event));
            }
        }
        coverage.preempted_by_schedule |= std::mem::take(&mut self.preempted_by_schedule);
        let mut expected = std::mem::take(&mut self.expected);
        expected.sort_by_key(|(i, _)| *i);
        got.sort_by_key(|(i, _)| *i);
        let same = got.len() == expected.len()
            && got.iter().zip(&expected).all(|((gi, ge), (ei, ee))| gi == ei && essence(ge) == *ee);
        if !same {
            let i = got.iter().zip(&expected).position(|(g, e)| g.0 != e.0 || essence(&g.1) != e.1);
            let at = i.unwrap_or(got.len().min(expected.len()));
            let show = |v: &[(usize, JourneyEvent)]| {
                v.get(at).map_or("nothing".to_owned(), |(i, e)| format!("{}: {}", request_id(*i), essence(e)))
            };
            return Err(Failure::Projection {
                request: String::new(),
                what: format!("emitted {}, the outputs imply {}", show(&got), show(&expected)),
            });
        }
        // Kept for the next transition, with its capacity.
        expected.clear();
        self.expected = expected;
        // The model, event by event.
        let (mut preempted_at, mut scheduled_at) = (None, None);
        for (i, e) in &got {
            let Some(r) = self.reqs.get_mut(*i) else { continue };
            let Some(checker) = r.checker.as_mut() else {
                return Err(Failure::Journey(format!("{}: an event after FINISHED: {e}", request_id(*i))));
            };
            let from = checker.state();
            Rc::make_mut(checker).push(e).map_err(|mut v| {
                v.request_id = RequestId(request_id(*i));
                Failure::Journey(v.to_string())
            })?;
            coverage.saw(from, e, r.first_token_step);
            match e.kind {
                EventKind::Preempted => preempted_at = Some(e.step),
                EventKind::Scheduled => scheduled_at = Some(e.step),
                EventKind::Queued | EventKind::FirstToken | EventKind::Finished => {}
            }
            if e.kind == EventKind::Finished
                && let Some(checker) = r.checker.take()
            {
                // Shared with other states: judged in place, not copied to be consumed.
                let mut verdict = checker.verdict();
                if let Verdict::Violating(vs) = &mut verdict {
                    for v in vs {
                        v.request_id = RequestId(request_id(*i));
                    }
                }
                if verdict != Verdict::Conforming {
                    return Err(Failure::Journey(format!("{}: {verdict:?}", request_id(*i))));
                }
            }
        }
        // R13 needs a PREEMPTED and a SCHEDULED of one step, which only one transition emits.
        if preempted_at.is_some() && preempted_at == scheduled_at {
            let mut instance = InstanceChecker::new();
            let mut k = 0;
            while k < got.len() {
                let i = got[k].0;
                let n = got[k..].iter().take_while(|(j, _)| *j == i).count();
                let events: Vec<JourneyEvent> = got[k..k + n].iter().map(|(_, e)| e.clone()).collect();
                instance.add_journey(request_id(i), SpanInfo::default(), &events);
                k += n;
            }
            if let Some(v) = instance.finish().into_iter().next() {
                return Err(Failure::Journey(v.to_string()));
            }
        }
        got.clear();
        self.got = got;
        Ok(())
    }

    /// After a drain: nothing live, nothing held, every journey finished and accepted.
    pub(crate) fn check_drained(&self) -> Result<(), Failure> {
        let drained = |what: String| Err(Failure::Drain { what });
        if self.traced.has_requests() || self.traced.num_live() != 0 {
            return drained(format!("{} requests still live", self.traced.num_live()));
        }
        if self.traced.in_flight() != 0 {
            return drained(format!("{} batches still in flight", self.traced.in_flight()));
        }
        if self.traced.blocks().used() != 0 {
            return drained(format!("{} KV blocks still held", self.traced.blocks().used()));
        }
        if self.traced.emitter().map(|e| e.live()) != Some(0) {
            return drained("tracing state outlived its requests".to_owned());
        }
        if let Some(i) = self.reqs.iter().position(|r| r.live || r.checker.is_some()) {
            return drained(format!("{} never finished", request_id(i)));
        }
        Ok(())
    }

    /// A generous bound on the steps a drain needs (the engine's).
    pub(crate) fn drain_bound(&self) -> u64 {
        crate::r#impl::drain_bound(
            self.live_order().filter_map(|h| self.traced.request(h)).map(|r| (r.prompt_len(), r.max_tokens())),
            self.traced.config().max_model_len,
        )
    }

    // ---- The fingerprint ---------------------------------------------------------------------

    /// The canonical description of the state, as words: requests by their place (the running
    /// list in order, then the waiting queue in order), without ids, slots, blocks' names or the
    /// step counter, so requests of the same shape in the same condition are interchangeable
    /// and states that differ only in time are one. What it keeps decides everything that can
    /// happen next: per request its shape, status, computed tokens, outputs, preemptions,
    /// blocks held, prefill mark and lifecycle state in the model; under the priority policy
    /// also the arrival order (the victim is the latest arrival of the worst priority).
    pub(crate) fn canonical(&self, words: &mut Vec<u64>) {
        words.clear();
        let s = &self.traced;
        words.push(self.reqs.len() as u64 | (u64::from(s.has_requests()) << 32));
        let priority = s.config().policy == Policy::Priority;
        // The rank of an arrival among the live requests' (arrivals are unique): how many
        // arrived before it.
        let rank_of = |arrival: u64| {
            self.live_order().filter_map(|h| s.request(h)).filter(|r| r.arrival() < arrival).count() as u64
        };
        let push = |h: Handle, words: &mut Vec<u64>| {
            let Some(r) = s.request(h) else { return words.push(u64::MAX) };
            let i = r.id().strip_prefix('r').and_then(|n| n.parse::<usize>().ok());
            let p = i.and_then(|i| self.reqs.get(i));
            let (shape, hiwater, state) = p.map_or((0xff, 0, 0xff), |p| {
                (u64::from(p.shape), p.hiwater, p.checker.as_ref().map_or(0xfe, |c| state_code(c.state())))
            });
            let status = r.status() as u64;
            let rank = if priority { rank_of(r.arrival()) } else { 0 };
            words.push(shape | status << 8 | state << 12 | rank << 20 | (r.blocks().len() as u64) << 32);
            words.push(r.num_computed() | r.num_output() << 16 | r.num_preemptions() << 32 | hiwater << 48);
            if self.asynchronous {
                words.push(r.num_output_placeholders() | u64::from(r.discard_latest_async_tokens) << 32);
            }
        };
        for &h in s.running() {
            push(h, words);
        }
        words.push(u64::MAX - 1);
        for h in s.waiting() {
            push(h, words);
        }
        // The batches in flight, oldest first: each request by its place above (running list,
        // then waiting queue), or as gone; the age of the batch in steps.
        for b in &self.batches {
            words.push(u64::MAX - 2 - (s.step().0 - b.step.0.min(s.step().0)));
            for item in &b.items {
                let place = s
                    .running()
                    .iter()
                    .position(|h| *h == item.handle)
                    .or_else(|| s.waiting().position(|h| h == item.handle).map(|k| k + s.running().len() + 1));
                let since = s
                    .request(item.handle)
                    .map_or(0, |r| r.num_preemptions() - item.preemptions.min(r.num_preemptions()));
                words.push(
                    place.map_or(0xffff, |p| p as u64)
                        | item.position.map_or(0xffff, |p| p.min(0xfffe)) << 16
                        | since << 32
                        | (item.blocks as u64) << 40,
                );
            }
        }
    }

    /// Async scheduling: the running requests with a stale output placeholder (one no batch
    /// in flight fills, left by a reset of a request with nothing in flight, as vLLM does),
    /// each as a pick of [`Action::Finish`] with its (computed, outputs). Such a request may
    /// never be scheduled again (its skip check sees `max_tokens` reached in flight).
    pub(crate) fn stale(&self) -> Vec<(u8, Handle, (u64, u64))> {
        let s = &self.traced;
        s.running()
            .iter()
            .enumerate()
            .filter_map(|(k, &h)| {
                let r = s.request(h).filter(|r| r.num_output_placeholders() > s.tokens_in_flight(h))?;
                Some((u8::try_from(k).ok()?, h, (r.num_computed(), r.num_output())))
            })
            .collect()
    }

    /// The id of the request [`Action::Finish`] with `pick` finishes, shared.
    fn live_id(&self, pick: u8) -> Option<Arc<str>> {
        let h = self.live_order().nth(pick as usize)?;
        self.traced.request(h).map(|r| Arc::clone(r.shared_id()))
    }

    /// The id of the request [`Action::Finish`] with `pick` finishes, and its status.
    pub(crate) fn live_at(&self, pick: u8) -> Option<(String, Status)> {
        let h = self.live_order().nth(pick as usize)?;
        self.traced.request(h).map(|r| (r.id().to_owned(), r.status()))
    }
}

fn state_code(s: State) -> u64 {
    match s {
        State::New => 0,
        State::Waiting => 1,
        State::Running => 2,
        State::Preempted => 3,
        State::Finished(_) => 4,
    }
}

/// What one applied action contributes to a workload file.
#[derive(Debug, Clone)]
pub(crate) enum Applied {
    /// An operation before the next `schedule()`.
    Op(Op),
    /// A whole engine iteration.
    Step {
        /// The request aborted in flight.
        in_flight: Option<String>,
        /// The requests whose token was EOS.
        eos: Vec<String>,
        /// Whether it ran `schedule()` (always, synchronously).
        schedules: bool,
        /// Whether it applied an output (always, synchronously).
        applies: bool,
    },
}

/// A workload file being built from applied actions.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    /// The entries so far.
    pub(crate) steps: Vec<Iteration>,
    /// Operations waiting for the next entry.
    pub(crate) pending: Vec<Op>,
    /// The entries that scheduled the batches in flight, oldest first: a batch's EOS ids
    /// belong to the entry that scheduled it (`SPEC.md` §8.1).
    scheduled_in: VecDeque<usize>,
}

impl Applied {
    /// Appends this to a workload being built: operations wait for the next step.
    pub(crate) fn append(self, b: &mut Builder) {
        match self {
            Applied::Op(op) => b.pending.push(op),
            Applied::Step { in_flight, eos, schedules, applies } => {
                let k = b.steps.len();
                b.steps.push(Iteration {
                    ops: std::mem::take(&mut b.pending),
                    in_flight: in_flight
                        .into_iter()
                        .map(|id| InFlight::Finish(FinishOp { id, status: FinishReason::Aborted }))
                        .collect(),
                    eos: Vec::new(),
                });
                if schedules {
                    b.scheduled_in.push_back(k);
                }
                if applies && let Some(entry) = b.scheduled_in.pop_front().and_then(|j| b.steps.get_mut(j)) {
                    entry.eos.extend(eos);
                }
            }
        }
    }

    /// Whether this is a step.
    pub(crate) fn is_step(&self) -> bool {
        matches!(self, Applied::Step { .. })
    }
}

pub(crate) fn add_op(id: &str, s: &Shape) -> AddOp {
    AddOp {
        id: id.to_owned(),
        prompt_len: s.prompt_len,
        max_tokens: s.max_tokens,
        priority: s.priority,
        traceparent: None,
        tracestate: None,
        ignore_eos: false,
        ..AddOp::default()
    }
}

impl Coverage {
    /// Records an emitted event: the transition-table row it took, preemption phases, and a
    /// FINISHED in the step of the request's first token.
    fn saw(&mut self, from: State, e: &JourneyEvent, first_token_step: Option<Step>) {
        if let Some(label) = e.label() {
            if let Some(k) = TRANSITIONS.iter().position(|r| r.from == from && r.label == label)
                && let Some(seen) = self.rows.get_mut(k)
            {
                *seen = true;
            }
            let late = Profile::Async.late_output_rows();
            if let Some(k) = late.iter().position(|r| r.from == from && r.label == label)
                && let Some(seen) = self.late.get_mut(k)
            {
                *seen = true;
            }
        }
        match (e.kind, e.phase) {
            (EventKind::Preempted, Phase::Prefill) => self.preempted_in_prefill = true,
            (EventKind::Preempted, Phase::Decode) => self.preempted_in_decode = true,
            (EventKind::Preempted, Phase::Waiting)
            | (EventKind::Queued | EventKind::Scheduled | EventKind::FirstToken | EventKind::Finished, _) => {}
        }
        if e.kind == EventKind::Finished && first_token_step == Some(e.step) {
            self.first_token_and_finished_in_one_step = true;
        }
    }
}
