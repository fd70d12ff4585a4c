//! Exhaustive bounded exploration of the reference system (cargo feature `explore`): every
//! sequence of operations up to a depth, breadth first, with the shortest counterexample when
//! a property breaks.
//!
//! # What is explored
//!
//! A state is the traced scheduler (its emitter on the legacy buffer, no spans: spans cannot be
//! copied when a state branches), an untraced scheduler run in lockstep, a projection of the
//! events each request must have, and one [`JourneyChecker`](crate::model::JourneyChecker) per
//! live request. The actions are the model-checking harness's operations ([`Action`]): add a
//! request of one of a few [`Shape`]s, one engine iteration with every choice of EOS tokens and
//! of an in-flight abort, finishing a live request with each external reason, finishing a
//! finished or unknown id (which must do nothing), and a reset.
//!
//! States are deduplicated by a 128-bit fingerprint of a canonical description that leaves out
//! request ids, slots, block names and the step counter, and lists requests by their place in
//! the running list and the waiting queue. Requests of the same shape in the same condition
//! are thus interchangeable (symmetry reduction by canonical ordering), and states that differ
//! only in time are one.
//!
//! # Properties
//!
//! After every transition, in every state: both schedulers' invariants
//! ([`Scheduler::check_invariants`](crate::Scheduler::check_invariants)); the traced and the
//! untraced scheduler made the same decisions; the scheduler's bookkeeping (computed tokens,
//! outputs, preemptions) is what its own outputs imply; the emitted events are, attribute for
//! attribute, those its outputs imply; the model accepts every event, every finished journey,
//! and R13 across the journeys of the step; a panic of the system is a failure too. From every
//! explored state, draining (steps without EOS) finishes every request, frees every block and
//! every piece of tracing state, with every property checked on the way (safety on the drained
//! run, not liveness). Reachability is measured ([`Coverage`]): every row of the transition
//! table, preemption in prefill and in decode, FIRST_TOKEN and FINISHED in one step.
//!
//! # Async scheduling
//!
//! With `async_scheduling` on (`SPEC.md` §8.1, §11) the state also holds the batches in
//! flight, and [`Action::Step`] is one call of the engine's `step_with_batch_queue`, exactly
//! as a workload entry replays it: `schedule()` when a request is live, its batch queued; when
//! that batch has tokens and the queue is not full the step ends there (after its in-flight
//! abort); otherwise the oldest batch is applied, with every EOS choice over the requests it
//! gives a token to. An in-flight abort may also pick a request the step preempted, whose
//! token may still be in flight. The projection follows the token rule (output placeholders,
//! the output position of each token, a reset's mark that throws the token in flight away) and
//! is compared with the scheduler's counts after every transition; the journey checkers run
//! the async profile, which allows late outputs; the async invariants (placeholders, duplicate
//! tokens, blocks under a batch in flight) are among the scheduler's. The fingerprint adds
//! each request's placeholders and mark, and the batches in flight with their requests by
//! place. A batch's EOS ids belong, in the workload file, to the entry that scheduled it.
//!
//! The drain has one more rule: a running request with a stale placeholder (vLLM's after a
//! reset of a request with nothing in flight) may never be scheduled again, so when it has
//! not moved for 8 steps the drain aborts it, as the model-checking harness does; a drain
//! that comes back to a state it passed without such a request is a failure.
//!
//! # Why not `stateright`
//!
//! stateright's `Model` wants a `State: Clone + Hash + Eq` that is the whole state and hashes it
//! as it is. The scheduler holds an emitter (no `Hash`, and spans that cannot be copied), a step
//! counter that grows forever and clocks, so the state would have to be a copy in another shape
//! with a hand-written `Hash` anyway; its BFS has no symmetry reduction, and its properties see
//! a state, not the transition that produced it, where most of these checks live. The BFS here
//! is about 200 lines, keeps only fingerprints and parent links for visited states, and
//! rebuilds the path of a counterexample by replaying it.
//!
//! ```
//! use journey_spec::explore::{ExploreConfig, explore};
//! let mut config = ExploreConfig::tiny_kv();
//! config.depth = 4;
//! let report = explore(&config, &mut |_| {})?;
//! assert!(report.counterexample.is_none());
//! assert!(report.unique_states > 10);
//! # Ok::<(), journey_spec::explore::ExploreError>(())
//! ```

mod world;

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use crate::r#impl::emitter::TickClock;
use crate::r#impl::{
    AddError, ConfigError, FinishReason, Handle, InvariantError, Iteration, Policy, Scheduler, SchedulerConfig,
    Workload,
};
use crate::model::{Profile, TRANSITIONS};

use world::{Applied, Builder, Pool, World, contained};

/// A request shape of the pool the explorer adds from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    /// Prompt length.
    pub prompt_len: u64,
    /// Generation cap.
    pub max_tokens: u64,
    /// Priority (lower first under the priority policy).
    #[serde(default)]
    pub priority: i64,
}

/// What to explore: a scheduler configuration, the request shapes, how many requests may be
/// added along a path and how deep to go. As a file (`journey explore --config`), JSON:
/// `{"name": "...", "scheduler": {workload config, SPEC.md §8}, "shapes": [{"prompt_len": 3,
/// "max_tokens": 2}], "max_requests": 3, "depth": 10}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExploreConfig {
    /// A name for reports.
    #[serde(default)]
    pub name: String,
    /// The scheduler configuration.
    pub scheduler: SchedulerConfig,
    /// The request shapes to add from (at most 255).
    pub shapes: Vec<Shape>,
    /// Most requests added along one path (at most 16).
    #[serde(default = "default_requests")]
    pub max_requests: usize,
    /// Most actions along one path.
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// Whether every explored state is also drained (steps without EOS until nothing is
    /// live), with every property checked on the way and at the end.
    #[serde(default = "yes")]
    pub drain: bool,
    /// Deliberate scheduler bugs (test-only feature `faults`).
    #[cfg(feature = "faults")]
    #[doc(hidden)]
    #[serde(skip)]
    pub faults: crate::r#impl::Faults,
}

fn default_requests() -> usize {
    3
}

fn default_depth() -> usize {
    8
}

fn yes() -> bool {
    true
}

impl ExploreConfig {
    /// A configuration with no fault injected.
    pub fn new(name: &str, scheduler: SchedulerConfig, shapes: Vec<Shape>, max_requests: usize, depth: usize) -> Self {
        ExploreConfig {
            name: name.to_owned(),
            scheduler,
            shapes,
            max_requests,
            depth,
            drain: true,
            #[cfg(feature = "faults")]
            faults: crate::r#impl::Faults::NONE,
        }
    }

    /// A KV cache of 3 blocks of 2 tokens, at most 2 tokens per request and step: two requests
    /// already preempt each other, in prefill and in decode.
    pub fn tiny_kv() -> ExploreConfig {
        let scheduler = SchedulerConfig {
            max_num_seqs: 2,
            max_num_batched_tokens: 8,
            block_size: 2,
            num_blocks: 3,
            max_model_len: 8,
            long_prefill_token_threshold: 2,
            enable_chunked_prefill: true,
            policy: Policy::Fcfs,
            async_scheduling: false,
        };
        let shapes = vec![
            Shape { prompt_len: 3, max_tokens: 2, priority: 0 },
            Shape { prompt_len: 1, max_tokens: 3, priority: 0 },
        ];
        ExploreConfig::new("tiny-kv", scheduler, shapes, 5, 30)
    }

    /// [`tiny_kv`](Self::tiny_kv) under async scheduling (`SPEC.md` §8.1, §11): the next
    /// batch is scheduled while one is in flight, so a request preempted meanwhile gets its
    /// token late, and a reset throws the token in flight away.
    pub fn tiny_kv_async() -> ExploreConfig {
        let mut c = ExploreConfig::tiny_kv();
        c.name = "tiny-kv-async".to_owned();
        c.scheduler.async_scheduling = true;
        c.max_requests = 3;
        c.depth = 14;
        c
    }

    /// [`priority`](Self::priority) under async scheduling: the victim may be a request
    /// admitted before the one that needs its blocks, so also a request whose last token is in
    /// flight is preempted, and finishes late on `max_tokens`.
    pub fn priority_async() -> ExploreConfig {
        let mut c = ExploreConfig::priority();
        c.name = "priority-async".to_owned();
        c.scheduler.async_scheduling = true;
        c.max_requests = 3;
        c.depth = 14;
        c
    }

    /// Chunked prefill off: a prompt is admitted whole or not at all.
    pub fn no_chunking() -> ExploreConfig {
        let scheduler = SchedulerConfig {
            max_num_seqs: 3,
            max_num_batched_tokens: 8,
            block_size: 2,
            num_blocks: 5,
            max_model_len: 8,
            long_prefill_token_threshold: 0,
            enable_chunked_prefill: false,
            policy: Policy::Fcfs,
            async_scheduling: false,
        };
        let shapes = vec![
            Shape { prompt_len: 5, max_tokens: 2, priority: 0 },
            Shape { prompt_len: 1, max_tokens: 3, priority: 0 },
            Shape { prompt_len: 3, max_tokens: 4, priority: 0 },
        ];
        ExploreConfig::new("no-chunking", scheduler, shapes, 5, 30)
    }

    /// The priority policy: the victim is the worst `(priority, arrival)`, which may already
    /// have been scheduled in the step.
    pub fn priority() -> ExploreConfig {
        let scheduler = SchedulerConfig { policy: Policy::Priority, ..ExploreConfig::tiny_kv().scheduler };
        let shapes = vec![
            Shape { prompt_len: 3, max_tokens: 2, priority: 1 },
            Shape { prompt_len: 1, max_tokens: 3, priority: 0 },
        ];
        ExploreConfig::new("priority", scheduler, shapes, 4, 30)
    }

    /// Reads a configuration file (the JSON of [`ExploreConfig`]) and validates it.
    pub fn from_json(text: &str) -> Result<ExploreConfig, ExploreError> {
        let c: ExploreConfig = serde_json::from_str(text).map_err(|e| ExploreError::Json(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Checks that the scheduler configuration is valid, that there are 1 to 255 shapes, each
    /// one a request the scheduler accepts, and that `max_requests` is at most 16.
    pub fn validate(&self) -> Result<(), ExploreError> {
        let mut s = Scheduler::new(self.scheduler)?;
        if self.shapes.is_empty() || self.shapes.len() > 255 {
            return Err(ExploreError::Shapes { count: self.shapes.len() });
        }
        for (index, shape) in self.shapes.iter().enumerate() {
            let new = crate::r#impl::NewRequest::new(format!("shape{index}"), shape.prompt_len, shape.max_tokens);
            s.add_request(new).map_err(|source| ExploreError::Shape { index, source })?;
        }
        if self.max_requests > MAX_REQUESTS {
            return Err(ExploreError::TooManyRequests { max_requests: self.max_requests });
        }
        Ok(())
    }
}

/// The most requests along one path: EOS choices are bit masks over the sampled requests.
const MAX_REQUESTS: usize = 16;

/// One operation of the explored system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Add a request of `shapes[shape]`, with the next id (`r0`, `r1`, … along the path).
    Add {
        /// Index into the shapes.
        shape: u8,
    },
    /// One engine iteration: `schedule()`, then the in-flight abort of the `in_flight`-th
    /// scheduled request, then the tokens, EOS for the sampled requests (in running order)
    /// whose bit is set in `eos`.
    Step {
        /// EOS bits over the sampled requests.
        eos: u32,
        /// The scheduled request aborted while the model runs.
        in_flight: Option<u8>,
    },
    /// Finish the `pick`-th live request (running list, then waiting queue) with `reason`.
    Finish {
        /// Index into the live requests.
        pick: u8,
        /// Why.
        reason: FinishReason,
    },
    /// Abort the first finished request again (must do nothing).
    FinishFinished,
    /// Abort an id that was never added (must do nothing).
    FinishUnknown,
    /// Preempt every running request.
    Reset,
}

/// A broken property.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The model rejects an emitted event or journey.
    #[error("journey: {0}")]
    Journey(String),
    /// A scheduler invariant is broken.
    #[error("{0}")]
    Invariant(InvariantError),
    /// The traced and the untraced scheduler decided differently.
    #[error("the traced and the untraced scheduler diverged: {what}")]
    Diverged {
        /// Which call, or what differed.
        what: String,
    },
    /// The scheduler's bookkeeping or its emitted events differ from what its outputs imply.
    #[error("projection{}: {what}", if request.is_empty() { String::new() } else { format!(" of {request}") })]
    Projection {
        /// The request, when one is concerned.
        request: String,
        /// What differed.
        what: String,
    },
    /// A request of a configured shape was rejected.
    #[error("a valid request was rejected: {0}")]
    Rejected(AddError),
    /// The system panicked.
    #[error("panic: {0}")]
    Panicked(String),
    /// The drain did not end with every request finished. The drain is deterministic: when
    /// it comes back to a state it passed, it would cycle forever. Under async scheduling the
    /// request stalled by a stale output placeholder (vLLM's behaviour after a reset of a
    /// request with nothing in flight) is then aborted, as a client gives up; a cycle without
    /// such a request is this failure.
    #[error("after the drain: {what}")]
    Drain {
        /// What was left.
        what: String,
    },
    /// The configuration could not be used.
    #[error("configuration: {0}")]
    Config(String),
}

/// Why an exploration could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExploreError {
    /// The configuration file is not the schema's JSON.
    #[error("invalid explore configuration: {0}")]
    Json(String),
    /// The scheduler configuration is rejected.
    #[error("invalid scheduler configuration: {0}")]
    Config(#[from] ConfigError),
    /// No shapes, or more than 255.
    #[error("{count} request shapes: between 1 and 255 are needed")]
    Shapes {
        /// How many were given.
        count: usize,
    },
    /// A shape the scheduler rejects.
    #[error("shape #{index}: {source}")]
    Shape {
        /// Index of the shape.
        index: usize,
        /// Why the scheduler rejects it.
        source: AddError,
    },
    /// `max_requests` above 16.
    #[error("max_requests is {max_requests}, at most {MAX_REQUESTS} are supported")]
    TooManyRequests {
        /// The value given.
        max_requests: usize,
    },
}

/// Which outcomes the exploration reached ("sometimes" properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// Per row of [`TRANSITIONS`]: taken by some emitted event.
    pub rows: Vec<bool>,
    /// A PREEMPTED in the prefill phase.
    pub preempted_in_prefill: bool,
    /// A PREEMPTED in the decode phase.
    pub preempted_in_decode: bool,
    /// A request's FIRST_TOKEN and FINISHED in one step.
    pub first_token_and_finished_in_one_step: bool,
    /// A preemption inside `schedule()` (out of KV blocks), not by a reset.
    pub preempted_by_schedule: bool,
    /// Per late-output row of the profile ([`Profile::late_output_rows`]; none for the sync
    /// profile): taken by some emitted event.
    pub late: Vec<bool>,
}

impl Default for Coverage {
    fn default() -> Self {
        Coverage::for_profile(Profile::Sync)
    }
}

impl Coverage {
    /// Nothing reached yet, for journeys of `profile`.
    pub fn for_profile(profile: Profile) -> Coverage {
        Coverage {
            rows: vec![false; TRANSITIONS.len()],
            preempted_in_prefill: false,
            preempted_in_decode: false,
            first_token_and_finished_in_one_step: false,
            preempted_by_schedule: false,
            late: vec![false; profile.late_output_rows().len()],
        }
    }

    /// The outcomes never reached, named.
    pub fn missing(&self) -> Vec<String> {
        let late = Profile::Async.late_output_rows().iter().zip(&self.late);
        let mut out: Vec<String> = TRANSITIONS
            .iter()
            .zip(&self.rows)
            .filter(|(_, seen)| !**seen)
            .map(|(r, _)| format!("{} in state {}", r.label, r.from))
            .chain(late.filter(|(_, seen)| !**seen).map(|(r, _)| format!("late {} in state {}", r.label, r.from)))
            .collect();
        for (seen, name) in [
            (self.preempted_in_prefill, "PREEMPTED in prefill"),
            (self.preempted_in_decode, "PREEMPTED in decode"),
            (self.first_token_and_finished_in_one_step, "FIRST_TOKEN and FINISHED in one step"),
            (self.preempted_by_schedule, "a preemption by schedule()"),
        ] {
            if !seen {
                out.push(name.to_owned());
            }
        }
        out
    }
}

/// The shortest sequence of actions that breaks a property.
#[derive(Debug, Clone)]
pub struct Counterexample {
    /// The actions, from the initial state.
    pub actions: Vec<Action>,
    /// The actions as concrete operations, one per line.
    pub lines: Vec<String>,
    /// How many of the last actions are the drain's of the state the search reached: steps
    /// without EOS, and under async scheduling aborts of requests stalled by a stale
    /// placeholder ([`Failure::Drain`] explains).
    pub drain_steps: usize,
    /// What broke.
    pub failure: Failure,
    /// The path as a workload file (`SPEC.md` §8) that `journey simulate --workload` replays.
    pub workload: Workload,
}

impl fmt::Display for Counterexample {
    /// ```text
    /// counterexample, 3 operations:
    ///   1. add r0: prompt 3, max_tokens 2
    ///   2. step
    ///   3. reset
    /// broken: projection of r0: the scheduler holds (computed, outputs, preemptions) = (2, 0, 1), its outputs imply (0, 0, 1)
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "counterexample, {} operations:", self.lines.len())?;
        for (k, line) in self.lines.iter().enumerate() {
            writeln!(f, "  {}. {line}", k + 1)?;
        }
        let aborts = self.actions.iter().rev().take(self.drain_steps).any(|a| matches!(a, Action::Finish { .. }));
        let stalled = if aborts { ", and aborts of requests stalled by a stale placeholder" } else { "" };
        match self.drain_steps {
            0 => {}
            1 => writeln!(f, "  (the last is the drain's: a step without EOS{stalled})")?,
            n => writeln!(f, "  (the last {n} are the drain's: steps without EOS{stalled})")?,
        }
        write!(f, "broken: {}", self.failure)
    }
}

/// Where an exploration is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Unique states so far.
    pub states: usize,
    /// The depth being explored.
    pub depth: usize,
    /// Transitions taken so far.
    pub transitions: u64,
    /// Time since the start.
    pub elapsed: Duration,
}

/// What an exploration found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The configuration's name.
    pub name: String,
    /// Unique states (up to symmetry), the initial one included.
    pub unique_states: usize,
    /// The deepest level at which a new state was found.
    pub max_depth: usize,
    /// Transitions taken (each checked).
    pub transitions: u64,
    /// Whether the deepest level found no new state: the whole state space (within
    /// `max_requests`) is explored, and a deeper bound would find nothing more.
    pub exhausted: bool,
    /// The outcomes reached.
    pub coverage: Coverage,
    /// The shortest path to a broken property, if any.
    pub counterexample: Option<Counterexample>,
    /// Wall time.
    pub elapsed: Duration,
}

impl Report {
    /// Unique states per second of wall time.
    pub fn states_per_second(&self) -> f64 {
        self.unique_states as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Transitions (each checked, most to a state already seen) per second of wall time: what
    /// stateright's checker counts as `states` (every successor generated, before
    /// deduplication), as against its `unique`.
    pub fn transitions_per_second(&self) -> f64 {
        self.transitions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A fingerprint is already uniformly distributed: the set uses its low bits as they are.
#[derive(Default, Clone, Copy)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

type Fingerprints = HashSet<u128, BuildHasherDefault<Identity>>;

/// splitmix64's finaliser: a bijection with full avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 128 bits over the canonical words, in two independent lanes.
pub(crate) fn fingerprint(words: &[u64]) -> u128 {
    let (mut a, mut b): (u64, u64) = (0x9e37_79b9_7f4a_7c15 ^ words.len() as u64, 0xc2b2_ae3d_27d4_eb4f);
    for &w in words {
        a = mix(a ^ w);
        b = mix(b.wrapping_add(w.rotate_left(29)) ^ 0x1656_67b1_9e37_79f9);
    }
    (u128::from(a) << 64) | u128::from(b)
}

/// A visited state: how it was first reached.
#[derive(Clone, Copy)]
struct Node {
    parent: u32,
    action: Action,
}

/// The BFS.
struct Search<'a> {
    config: &'a ExploreConfig,
    clock: TickClock,
    visited: Fingerprints,
    drained: Fingerprints,
    nodes: Vec<Node>,
    words: Vec<u64>,
    coverage: Coverage,
    transitions: u64,
    /// Dropped states, forked into instead of allocating new ones.
    pool: Pool,
}

impl Search<'_> {
    fn fp(&mut self, w: &World) -> u128 {
        w.canonical(&mut self.words);
        fingerprint(&self.words)
    }

    /// Drains a copy of `w` (whose fingerprint is `fp`): `Err` with the drain's actions when
    /// a property breaks on the way or at the end. States already known to drain stop the walk.
    fn drain(&mut self, w: &World, fp: u128) -> Result<(), (Vec<Action>, Failure)> {
        if !self.config.drain || self.drained.contains(&fp) {
            return Ok(());
        }
        // Room for a drain of a few steps from the start (one per new state).
        let mut walked = Vec::with_capacity(16);
        walked.push(fp);
        let mut w = contained(|| self.pool.fork(w, &self.clock)).map_err(|f| (Vec::new(), f))?;
        let mut taken = Vec::with_capacity(16);
        let drained = &self.drained;
        let walk = drain_walk(
            &mut w,
            self.config,
            &mut self.coverage,
            &mut self.words,
            &mut |_, a| taken.push(a),
            &mut |fp| {
                let known = drained.contains(&fp);
                if !known {
                    walked.push(fp);
                }
                known
            },
        );
        match walk {
            Ok(()) => {
                self.drained.extend(walked);
                self.pool.give(w);
                Ok(())
            }
            Err(f) => Err((taken, f)),
        }
    }

    /// The actions of `w` other than steps, in their fixed order.
    fn plain_actions(&self, w: &World) -> Vec<Action> {
        // At its size from the start: this runs once per expanded state.
        let mut out = Vec::with_capacity(self.config.shapes.len() + 3 * w.num_live() + 3);
        if w.added() < self.config.max_requests {
            out.extend((0..self.config.shapes.len()).map(|s| Action::Add { shape: s as u8 }));
        }
        for pick in 0..w.num_live() {
            for reason in FinishReason::ALL {
                out.push(Action::Finish { pick: pick as u8, reason });
            }
        }
        if w.added() > w.num_live() {
            out.push(Action::FinishFinished);
        }
        out.push(Action::FinishUnknown);
        if w.any_running() {
            out.push(Action::Reset);
        }
        out
    }
}

/// Explores `config` breadth first to `config.depth` actions; `progress` is called after every
/// level and every 4,096 new states. Stops at the first broken property, whose path is then
/// a shortest one.
pub fn explore(config: &ExploreConfig, progress: &mut dyn FnMut(&Progress)) -> Result<Report, ExploreError> {
    config.validate()?;
    let start = Instant::now();
    let mut search = Search {
        config,
        clock: TickClock::default(),
        visited: Fingerprints::default(),
        drained: Fingerprints::default(),
        nodes: Vec::new(),
        words: Vec::new(),
        coverage: Coverage::for_profile(profile_of(config)),
        transitions: 0,
        pool: Pool::default(),
    };
    let root = World::new(config, &search.clock).map_err(|e| ExploreError::Json(e.to_string()))?;
    let fp = search.fp(&root);
    search.visited.insert(fp);
    search.drained.insert(fp);
    search.nodes.push(Node { parent: u32::MAX, action: Action::FinishUnknown });
    let mut frontier: Vec<(u32, Box<World>)> = vec![(0, Box::new(root))];
    let mut max_depth = 0;
    // The shortest failure so far: (length, state, actions after it, failure). An action that
    // breaks a property at depth d is a shortest one; a drain that breaks one after k steps
    // from a state at depth d is a candidate of length d + k, which shallower levels may beat.
    let mut best: Option<(usize, u32, Vec<Action>, usize, Failure)> = None;
    let mut depth = 0;
    while depth < config.depth && !frontier.is_empty() && best.as_ref().is_none_or(|b| depth + 1 < b.0) {
        let mut next: Vec<(u32, Box<World>)> = Vec::new();
        let keep = depth + 1 < config.depth;
        'states: for (node, mut w) in frontier.drain(..) {
            // One child: deduplicate, drain-check, queue. `false` ends the level.
            let mut visit = |search: &mut Search, action: Action, child: Result<Box<World>, Failure>| -> bool {
                search.transitions += 1;
                let child = match child {
                    Ok(c) => c,
                    Err(f) => {
                        best = Some((depth + 1, node, vec![action], 0, f));
                        return false;
                    }
                };
                let fp = search.fp(&child);
                if !search.visited.insert(fp) {
                    search.pool.give(child);
                    return true;
                }
                // Parent links are 32-bit: past 2^32 - 1 states the level ends early.
                let Ok(idx) = u32::try_from(search.nodes.len()) else { return false };
                search.nodes.push(Node { parent: node, action });
                max_depth = depth + 1;
                if let Err((tail, f)) = search.drain(&child, fp) {
                    let (k, len) = (tail.len(), depth + 1 + tail.len());
                    if best.as_ref().is_none_or(|b| len < b.0) {
                        best = Some((len, idx, tail, k, f));
                    }
                }
                if keep {
                    let mut child = child;
                    child.trim();
                    next.push((idx, child));
                } else {
                    search.pool.give(child);
                }
                if search.nodes.len().is_multiple_of(4_096) {
                    progress(&Progress {
                        states: search.nodes.len(),
                        depth: depth + 1,
                        transitions: search.transitions,
                        elapsed: start.elapsed(),
                    });
                }
                true
            };
            for action in search.plain_actions(&w) {
                if matches!(action, Action::FinishFinished | Action::FinishUnknown) {
                    // Must do nothing: checked on the state itself, without a copy; its child
                    // is the state, which is already visited.
                    search.transitions += 1;
                    let (words, cov) = (&mut search.words, &mut search.coverage);
                    if let Err(f) = contained(|| w.finish_nothing(action, config, words, cov)) {
                        search.transitions -= 1;
                        visit(&mut search, action, Err(f));
                        break 'states;
                    }
                    continue;
                }
                let mut cov = std::mem::take(&mut search.coverage);
                let child = contained(|| {
                    let mut child = search.pool.fork(&w, &search.clock)?;
                    child.apply_mut(action, config, &mut cov)?;
                    Ok(child)
                });
                search.coverage = cov;
                if !visit(&mut search, action, child) {
                    break 'states;
                }
            }
            if w.has_requests() {
                let mut cov = std::mem::take(&mut search.coverage);
                let children = w.step_children(config, &search.clock, &mut cov, &mut search.pool);
                search.coverage = cov;
                for (action, child) in children {
                    if !visit(&mut search, action, child) {
                        break 'states;
                    }
                }
            }
            search.pool.give(w);
        }
        frontier = next;
        depth += 1;
        progress(&Progress {
            states: search.nodes.len(),
            depth,
            transitions: search.transitions,
            elapsed: start.elapsed(),
        });
    }
    let counterexample = best.map(|(_, node, tail, k, f)| counterexample(config, &search.nodes, node, (tail, k), f));
    Ok(Report {
        name: config.name.clone(),
        unique_states: search.nodes.len(),
        max_depth,
        transitions: search.transitions,
        exhausted: max_depth < config.depth && counterexample.is_none(),
        coverage: search.coverage,
        counterexample,
        elapsed: start.elapsed(),
    })
}

/// Rebuilds the path to `node`, then `tail` (the action that broke a property, or the drain's
/// steps), and replays it for its concrete operations and workload file.
fn counterexample(
    config: &ExploreConfig,
    nodes: &[Node],
    node: u32,
    (tail, drain_steps): (Vec<Action>, usize),
    failure: Failure,
) -> Counterexample {
    let mut actions = Vec::new();
    let mut k = node;
    while let Some(n) = nodes.get(k as usize).filter(|n| n.parent != u32::MAX) {
        actions.push(n.action);
        k = n.parent;
    }
    actions.reverse();
    actions.extend(tail);
    let (lines, workload, replayed) = replay(config, &actions);
    // The replay breaks the same property, with the same words; keep the search's otherwise.
    let failure = replayed.unwrap_or(failure);
    Counterexample { actions, lines, drain_steps, failure, workload }
}

/// Replays `actions` from the initial state, then drains: the operations one per line, the
/// workload file, and the first broken property.
pub fn replay(config: &ExploreConfig, actions: &[Action]) -> (Vec<String>, Workload, Option<Failure>) {
    let clock = TickClock::default();
    let mut lines = Vec::new();
    let mut b = Builder::default();
    let mut coverage = Coverage::for_profile(profile_of(config));
    let mut broken = None;
    let mut w = match World::new(config, &clock) {
        Ok(w) => Some(w),
        Err(f) => {
            broken = Some(f);
            None
        }
    };
    for &action in actions {
        let Some(cur) = w.take() else { break };
        let (applied, line) = cur.concrete(action, config, &clock);
        lines.push(line);
        applied.append(&mut b);
        match contained(|| cur.apply(action, config, &mut coverage)) {
            Ok(next) => w = Some(next),
            Err(f) => {
                broken = Some(f);
                break;
            }
        }
    }
    // The drain, which the engine repeats after the workload's last entry; when it had to
    // abort a stalled request (which the engine does not), the workload carries the drain.
    let mut drain: Vec<Applied> = Vec::new();
    if let Some(cur) = w {
        let mut words = Vec::new();
        let mut cur = cur;
        let walk = drain_walk(
            &mut cur,
            config,
            &mut coverage,
            &mut words,
            &mut |w, a| drain.push(w.concrete(a, config, &clock).0),
            &mut |_| false,
        );
        broken = walk.err();
    }
    if drain.iter().any(|a| !a.is_step()) {
        for a in drain {
            a.append(&mut b);
        }
    }
    let mut steps = b.steps;
    if !b.pending.is_empty() {
        steps.push(Iteration { ops: b.pending, ..Iteration::default() });
    }
    (lines, Workload::new(config.scheduler, steps), broken)
}

/// Drain steps a running request with a stale placeholder may stay unmoved before the drain
/// aborts it (the harness's bound, `tests/harness`).
const STILL: usize = 8;

/// The profile an exploration holds journeys to.
fn profile_of(config: &ExploreConfig) -> Profile {
    if config.scheduler.async_scheduling { Profile::Async } else { Profile::Sync }
}

/// Drains `w`: steps without EOS, until no request is live and nothing is in flight. Under
/// async scheduling a running request with a stale placeholder ([`World::stale`]) that has
/// not moved for [`STILL`] steps is aborted, as the harness does; the drain is deterministic,
/// so a state it reached before (by fingerprint) means a cycle that never drains, also
/// aborted when it holds such a request and a failure otherwise. Every
/// transition is checked, and the end ([`World::check_drained`]). `before` sees each action
/// before it is taken; `known` may end the walk early at a state known to drain.
fn drain_walk(
    w: &mut World,
    config: &ExploreConfig,
    coverage: &mut Coverage,
    words: &mut Vec<u64>,
    before: &mut dyn FnMut(&World, Action),
    known: &mut dyn FnMut(u128) -> bool,
) -> Result<(), Failure> {
    let bound = w.drain_bound();
    w.canonical(words);
    // The states of the walk since the last abort, and how long each running request with a
    // stale placeholder has not moved: (request, (computed, outputs), steps).
    let mut seen = vec![fingerprint(words)];
    let mut still: Vec<(Handle, (u64, u64), usize)> = Vec::new();
    let mut stalled: Option<u8> = None;
    let mut stuck = false;
    let mut taken = 0u64;
    while w.has_requests() {
        if taken >= bound {
            return Err(Failure::Drain { what: format!("{} requests still live after {taken} steps", w.num_live()) });
        }
        let action = if stuck || stalled.is_some() {
            let Some(pick) = stalled.or_else(|| w.stale().first().map(|s| s.0)) else {
                let what = format!("a cycle with {} requests live, none stalled by a stale placeholder", w.num_live());
                return Err(Failure::Drain { what });
            };
            Action::Finish { pick, reason: FinishReason::Aborted }
        } else {
            Action::Step { eos: 0, in_flight: None }
        };
        before(w, action);
        taken += 1;
        contained(|| w.apply_mut(action, config, coverage))?;
        w.canonical(words);
        let fp = fingerprint(words);
        if !matches!(action, Action::Step { .. }) {
            seen.clear();
            still.clear();
        }
        stuck = seen.contains(&fp);
        let stale = w.stale();
        still.retain(|(h, _, _)| stale.iter().any(|s| s.1 == *h));
        stalled = None;
        for (pick, h, now) in stale {
            let k = match still.iter().position(|s| s.0 == h) {
                Some(k) => k,
                None => {
                    still.push((h, now, 0));
                    still.len() - 1
                }
            };
            if let Some(e) = still.get_mut(k) {
                *e = if e.1 == now { (h, now, e.2 + 1) } else { (h, now, 0) };
                if e.2 >= STILL && stalled.is_none() {
                    stalled = Some(pick);
                }
            }
        }
        if known(fp) {
            return Ok(());
        }
        seen.push(fp);
    }
    w.check_drained()
}
