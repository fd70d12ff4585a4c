//! A steady-state load for the performance measurements (`BENCHMARKS.md`): a fixed number of
//! live requests, every finished request replaced by a new one, so that the live count never
//! changes.
//!
//! - Configuration ([`config`]): `max_num_seqs` = the live count, a token budget and a KV cache
//!   large enough that admission never waits for either (`16 × live + 2048` tokens per step; KV
//!   room for every live request at its longest). So every request is admitted the step after
//!   it arrives, prefills its whole prompt in that step and then decodes one token per step:
//!   no request waits once the load is warm, and none is ever preempted.
//! - Requests: prompt and output lengths from the synthetic generator's default log-normal
//!   distributions (`SynthParams::default()`: prompts of median 300 tokens, outputs of median
//!   60, both clamped), drawn once from a seeded generator into a ring that the load cycles
//!   through. A request ends by its `max_tokens` (the model never emits EOS here), so the
//!   per-step churn is about `live / 80` arrivals and as many finishes.
//! - One iteration is one engine iteration (`SPEC.md` §8, without in-flight aborts): the
//!   replacements for the requests that finished in the previous iteration are added, then
//!   `schedule()`, then `update_from_output`.
//!
//! Included by the benches, the examples and `tests/alloc.rs` through `#[path]`.
#![allow(dead_code)]

use journey_spec::synth::{Rng, SynthParams};
use journey_spec::{NewRequest, Policy, Scheduler, SchedulerConfig};

/// How many `(prompt_len, max_tokens)` pairs the ring holds.
const RING: usize = 1 << 14;

/// Iterations that bring a fresh load to its steady state: longer than the longest request's
/// life (one prefill step and at most 600 decode steps), so that every initial request has been
/// replaced and request ages are mixed.
pub const WARM_UP: usize = 1_500;

/// The configuration of a steady load of `live` requests (see the module docs).
pub fn config(live: usize) -> SchedulerConfig {
    let d = SynthParams::default();
    let longest = d.prompt_len.max + d.output_len.max;
    let mut c = SchedulerConfig {
        max_num_seqs: live,
        max_num_batched_tokens: 16 * live as u64 + 2048,
        block_size: 16,
        num_blocks: 0,
        max_model_len: 4096,
        long_prefill_token_threshold: 0,
        enable_chunked_prefill: true,
        policy: Policy::Fcfs,
        async_scheduling: false,
    };
    c.num_blocks = live * c.blocks_for(longest);
    c
}

/// A steady load on a scheduler (which may carry an emitter).
pub struct Steady {
    scheduler: Scheduler,
    ring: Vec<(u64, u64)>,
    /// Requests added so far: the next id and ring position.
    added: u64,
    /// Requests that finished in the last iteration, replaced at the start of the next.
    due: usize,
}

impl Steady {
    /// Fills `scheduler` (made from [`config`]) with `max_num_seqs` requests. Not warmed up:
    /// see [`Steady::warm_up`].
    pub fn new(scheduler: Scheduler, seed: u64) -> Steady {
        let d = SynthParams::default();
        let mut rng = Rng::new(seed);
        let ring = (0..RING).map(|_| (rng.length(&d.prompt_len), rng.length(&d.output_len))).collect();
        let live = scheduler.config().max_num_seqs;
        let mut load = Steady { scheduler, ring, added: 0, due: live };
        load.arrive();
        load
    }

    /// A warmed-up load of `live` requests without tracing.
    pub fn warm(live: usize, seed: u64) -> Steady {
        let mut load = Steady::new(Scheduler::new(config(live)).expect("valid config"), seed);
        load.warm_up();
        load
    }

    /// Runs [`WARM_UP`] iterations.
    pub fn warm_up(&mut self) {
        for _ in 0..WARM_UP {
            self.iterate();
        }
    }

    /// The arrivals of an iteration: adds the requests that are due.
    pub fn arrive(&mut self) {
        for _ in 0..std::mem::take(&mut self.due) {
            let (prompt_len, max_tokens) = self.ring[self.added as usize % RING];
            let request = NewRequest::new(format!("s{}", self.added), prompt_len, max_tokens);
            self.scheduler.add_request(request).expect("the steady configuration fits every request");
            self.added += 1;
        }
    }

    /// The scheduler's part of an iteration: `schedule()` and `update_from_output`. Returns
    /// how many requests finished (they are replaced by the next [`Steady::arrive`]).
    #[inline]
    pub fn step(&mut self) -> usize {
        self.scheduler.schedule();
        self.due = self.scheduler.update_from_output(|_| false).finished.len();
        self.due
    }

    /// One engine iteration: [`Steady::arrive`], then [`Steady::step`].
    #[inline]
    pub fn iterate(&mut self) -> usize {
        self.arrive();
        self.step()
    }

    /// Requests that finished in the last iteration, to be replaced by the next arrivals: the
    /// live count plus this is always the configured one.
    pub fn due(&self) -> usize {
        self.due
    }

    /// Requests added so far.
    pub fn added(&self) -> u64 {
        self.added
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// The scheduler, mutably.
    pub fn scheduler_mut(&mut self) -> &mut Scheduler {
        &mut self.scheduler
    }
}
