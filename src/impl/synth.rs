//! A seeded synthetic workload generator.
//!
//! Requests arrive as a Poisson process; prompt and output lengths are log-normal; a share of
//! requests is aborted (between steps or in flight), failed with `error` or `ignored`; priorities
//! are drawn from a few levels. The generator runs the reference scheduler while it generates,
//! so that it can put EOS on the step in which a request reaches its drawn output length; the
//! [`Workload`] it returns replays that run exactly (`Engine::run` on it gives the same outputs),
//! and can be written to a file with [`Workload::to_json`].
//!
//! ```
//! use journey_spec::synth::{SynthParams, generate};
//! let params = SynthParams { requests: 20, ..SynthParams::default() };
//! let w = generate(&params)?;
//! assert_eq!(w, generate(&params)?, "same seed, same workload");
//! # Ok::<(), journey_spec::synth::SynthError>(())
//! ```

use std::collections::BTreeMap;

use super::config::{ConfigError, Policy, SchedulerConfig};
use super::engine::EngineError;
use super::request::FinishReason;
pub use super::rng::Rng;
use super::scheduler::Scheduler;
use super::workload::{AddOp, FinishOp, InFlight, Iteration, Op, Share, Workload};

/// A log-normal length distribution, clamped to `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LengthDist {
    /// The median length.
    pub median: f64,
    /// The standard deviation of the length's logarithm (0 = always the median).
    pub sigma: f64,
    /// Smallest length.
    pub min: u64,
    /// Largest length.
    pub max: u64,
}

/// Parameters of a synthetic workload.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SynthParams {
    /// Seed of the random stream: same seed and parameters, same workload.
    pub seed: u64,
    /// How many requests arrive.
    pub requests: usize,
    /// Mean arrivals per engine iteration.
    pub arrival_rate: f64,
    /// Prompt lengths (further clamped below `max_model_len`).
    pub prompt_len: LengthDist,
    /// Output lengths at which a request emits EOS.
    pub output_len: LengthDist,
    /// Share of requests whose `max_tokens` is below their output length (they end with `length`).
    pub capped_share: f64,
    /// Share of requests ended from outside (abort, error or ignored).
    pub abort_share: f64,
    /// Of those, the share that lands in flight (while the model runs).
    pub in_flight_share: f64,
    /// Of those, the share ended with `error`, and with `ignored` (the rest: `aborted`).
    pub error_share: f64,
    /// See `error_share`.
    pub ignored_share: f64,
    /// Priority levels `0..priorities` (1 = every request at priority 0).
    pub priorities: u32,
    /// Share of requests that carry a W3C `traceparent`.
    pub traceparent_share: f64,
    /// The scheduler configuration.
    pub config: SchedulerConfig,
    /// A two-layer run (`SPEC.md` §8.1): the API front end above the engine, with the sampling
    /// decision and the client's `stream` flag drawn per request and recorded in the workload.
    /// `None`: requests go to the scheduler directly.
    pub api: Option<ApiSampling>,
}

/// How a two-layer workload's API decisions are drawn (`journey simulate --api-sample-rate`).
///
/// In a two-layer run a request also fits the model (`prompt_len + max_tokens ≤ max_model_len`,
/// or the front end would reject it before any span), and an external end is a client
/// disconnect (`aborted`): the front end has no way to end a request with `error` or `ignored`.
/// The draws come from a stream of their own, so the rest of the workload is what the same seed
/// gives without them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ApiSampling {
    /// The chance that a request is sampled (`config.api_sample_rate`).
    pub sample_rate: f64,
    /// The chance that a client streams (`config.stream_fraction`).
    pub stream_fraction: f64,
}

impl Default for SynthParams {
    /// A busy cache: `kv_pressure`'s configuration (159 blocks of 16, a 256-token budget), 200
    /// requests, enough arrivals to force preemptions, 8% ended from outside.
    fn default() -> Self {
        SynthParams {
            seed: 1,
            requests: 200,
            arrival_rate: 0.25,
            prompt_len: LengthDist { median: 300.0, sigma: 0.7, min: 4, max: 1500 },
            output_len: LengthDist { median: 60.0, sigma: 0.9, min: 1, max: 600 },
            capped_share: 0.2,
            abort_share: 0.08,
            in_flight_share: 0.3,
            error_share: 0.15,
            ignored_share: 0.1,
            priorities: 1,
            traceparent_share: 0.25,
            api: None,
            config: SchedulerConfig {
                max_num_seqs: 32,
                max_num_batched_tokens: 256,
                block_size: 16,
                num_blocks: 159,
                max_model_len: 2048,
                long_prefill_token_threshold: 0,
                enable_chunked_prefill: true,
                policy: Policy::Fcfs,
                async_scheduling: false,
            },
        }
    }
}

/// The last engine iteration a request may arrive in: 2^24. Arrivals are drawn per iteration
/// and every iteration is one entry of the workload, so a rate that spreads a few requests over
/// billions of iterations would build a workload of empty entries; it is rejected instead.
pub const MAX_ARRIVAL: usize = 1 << 24;

/// Why a synthetic workload could not be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SynthError {
    /// A parameter is outside the values that make sense.
    #[error("{field} is {value}, must be {expected}")]
    Param {
        /// The parameter's name, as in [`SynthParams`] (`prompt_len.median` for a nested one).
        field: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },
    /// A length distribution's smallest length is above its largest.
    #[error("{field}.min is {min}, above {field}.max ({max})")]
    EmptyLengths {
        /// `prompt_len` or `output_len`.
        field: &'static str,
        /// Its `min`.
        min: u64,
        /// Its `max`.
        max: u64,
    },
    /// The scheduler configuration is rejected.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// At this arrival rate a request would arrive after [`MAX_ARRIVAL`].
    #[error(
        "arrival_rate is {rate:e}: request {request} would arrive at iteration {at:.3e}, past the last allowed ({MAX_ARRIVAL})"
    )]
    TooSparse {
        /// `arrival_rate`.
        rate: f64,
        /// Index of the request.
        request: usize,
        /// The iteration it would arrive in.
        at: f64,
    },
    /// The generated run failed: a request was rejected or the run did not drain.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl SynthParams {
    /// Checks every parameter and the configuration; the first problem found is returned.
    ///
    /// ```
    /// use journey_spec::synth::{SynthError, SynthParams};
    /// let params = SynthParams { abort_share: 1.5, ..SynthParams::default() };
    /// assert_eq!(
    ///     params.validate(),
    ///     Err(SynthError::Param { field: "abort_share", value: 1.5, expected: "between 0 and 1" })
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), SynthError> {
        const POSITIVE: &str = "a positive, finite number";
        const SHARE: &str = "between 0 and 1";
        let positive = |x: f64| x.is_finite() && x > 0.0;
        let share = |x: f64| (0.0..=1.0).contains(&x);
        let non_negative = |x: f64| x.is_finite() && x >= 0.0;
        let api = self.api.unwrap_or(ApiSampling { sample_rate: 1.0, stream_fraction: 0.0 });
        let checks: [(&'static str, f64, bool, &'static str); 14] = [
            ("arrival_rate", self.arrival_rate, positive(self.arrival_rate), POSITIVE),
            ("prompt_len.median", self.prompt_len.median, positive(self.prompt_len.median), POSITIVE),
            (
                "prompt_len.sigma",
                self.prompt_len.sigma,
                non_negative(self.prompt_len.sigma),
                "a finite number, at least 0",
            ),
            ("output_len.median", self.output_len.median, positive(self.output_len.median), POSITIVE),
            (
                "output_len.sigma",
                self.output_len.sigma,
                non_negative(self.output_len.sigma),
                "a finite number, at least 0",
            ),
            ("capped_share", self.capped_share, share(self.capped_share), SHARE),
            ("abort_share", self.abort_share, share(self.abort_share), SHARE),
            ("in_flight_share", self.in_flight_share, share(self.in_flight_share), SHARE),
            ("error_share", self.error_share, share(self.error_share), SHARE),
            ("ignored_share", self.ignored_share, share(self.ignored_share), SHARE),
            ("traceparent_share", self.traceparent_share, share(self.traceparent_share), SHARE),
            ("priorities", f64::from(self.priorities), self.priorities >= 1, "at least 1"),
            ("api.sample_rate", api.sample_rate, share(api.sample_rate), SHARE),
            ("api.stream_fraction", api.stream_fraction, share(api.stream_fraction), SHARE),
        ];
        if let Some(&(field, value, _, expected)) = checks.iter().find(|c| !c.2) {
            return Err(SynthError::Param { field, value, expected });
        }
        for (field, d) in [("prompt_len", &self.prompt_len), ("output_len", &self.output_len)] {
            if d.min > d.max {
                return Err(SynthError::EmptyLengths { field, min: d.min, max: d.max });
            }
        }
        Ok(self.config.validate()?)
    }
}

/// What the generator decided for one request.
#[derive(Debug, Clone)]
struct Plan {
    add: AddOp,
    /// Output length at which the model emits EOS.
    eos_at: u64,
    /// Ended from outside: (iteration, in flight, reason).
    end: Option<(usize, bool, FinishReason)>,
}

/// Generates a workload (see the module docs). Fails when a parameter is invalid (see
/// [`SynthParams::validate`]), when arrivals would land past [`MAX_ARRIVAL`], or when the
/// generated run does not drain.
pub fn generate(params: &SynthParams) -> Result<Workload, SynthError> {
    params.validate()?;
    let config = params.config;
    let mut scheduler = Scheduler::new(config)?;
    let mut rng = Rng::new(params.seed);
    // The API layer's draws, on a stream of their own (see `ApiSampling`).
    let mut api_rng = Rng::new(params.seed ^ 0x4150_495f_4c41_5945);
    let width = params.requests.max(1).to_string().len().max(4);
    // Requests are clamped to fit the whole cache at their longest (a request that cannot is
    // rejected by the scheduler).
    let capacity = (config.num_blocks as u64).saturating_mul(config.block_size);
    let prompt_max = (config.max_model_len - 1).min(params.prompt_len.max.max(1));

    // Arrival iterations and per-request plans.
    let mut arrivals: BTreeMap<usize, Vec<Plan>> = BTreeMap::new();
    let mut t = 0.0;
    for k in 0..params.requests {
        t += rng.exponential(params.arrival_rate);
        // Also true for an infinite `t`: past this test the cast to usize is exact.
        if t.is_nan() || t > MAX_ARRIVAL as f64 {
            return Err(SynthError::TooSparse { rate: params.arrival_rate, request: k, at: t });
        }
        let at = t as usize;
        let prompt_len = rng.length(&LengthDist { max: prompt_max, ..params.prompt_len }).min(prompt_max);
        let output = rng.length(&params.output_len);
        let max_tokens = if rng.chance(params.capped_share) {
            rng.range(1, output)
        } else {
            output.saturating_add(rng.range(0, 64))
        };
        let prompt_len = prompt_len.min(capacity.saturating_sub(1).max(1));
        let max_tokens = max_tokens.min(capacity.saturating_sub(prompt_len).max(1));
        // The front end rejects a request that does not fit the model before any span exists.
        let max_tokens = match params.api {
            Some(_) => max_tokens.min(config.max_model_len.saturating_sub(prompt_len).max(1)),
            None => max_tokens,
        };
        let priority = i64::from(rng.range(0, u64::from(params.priorities).saturating_sub(1)) as u32);
        let traceparent = rng
            .chance(params.traceparent_share)
            .then(|| format!("00-{:016x}{:016x}-{:016x}-01", rng.next_u64() | 1, rng.next_u64(), rng.next_u64() | 1));
        let end = rng.chance(params.abort_share).then(|| {
            let work = (prompt_len / config.max_num_batched_tokens.max(1)).saturating_add(output);
            let after = rng.range(0, work.saturating_mul(2));
            let reason = if rng.chance(params.error_share) {
                FinishReason::Error
            } else if rng.chance(params.ignored_share) {
                FinishReason::Ignored
            } else {
                FinishReason::Aborted
            };
            // Only a client disconnect ends a request from outside in a two-layer run.
            let reason = if params.api.is_some() { FinishReason::Aborted } else { reason };
            // An end past the run's last iteration never happens: the request finished before.
            (
                at.saturating_add(usize::try_from(after).unwrap_or(usize::MAX)),
                rng.chance(params.in_flight_share),
                reason,
            )
        });
        let add = AddOp {
            id: format!("syn-{k:0width$}"),
            prompt_len,
            max_tokens,
            priority,
            traceparent,
            tracestate: None,
            ignore_eos: false,
            sampled: params.api.map(|a| api_rng.chance(a.sample_rate)),
            stream: params.api.map(|a| api_rng.chance(a.stream_fraction)),
            ..AddOp::default()
        };
        arrivals.entry(at).or_default().push(Plan { add, eos_at: output, end });
    }

    let mut ends: BTreeMap<usize, Vec<(String, bool, FinishReason)>> = BTreeMap::new();
    let mut eos_at: BTreeMap<String, u64> = BTreeMap::new();
    let mut steps = Vec::new();
    let last_arrival = arrivals.keys().next_back().copied().unwrap_or(0);
    // The engine's drain bound over all requests, after the last arrival.
    let limit = (last_arrival as u64).saturating_add(super::engine::drain_bound(
        arrivals.values().flatten().map(|p| (p.add.prompt_len, p.add.max_tokens)),
        config.max_model_len,
    ));
    let mut i = 0usize;
    while i <= last_arrival || scheduler.has_requests() {
        if i as u64 > limit {
            return Err(EngineError::CannotDrain { live: scheduler.num_live(), iterations: i as u64 }.into());
        }
        let mut it = Iteration::default();
        for plan in arrivals.remove(&i).unwrap_or_default() {
            if let Some((at, in_flight, reason)) = plan.end {
                ends.entry(at).or_default().push((plan.add.id.clone(), in_flight, reason));
            }
            eos_at.insert(plan.add.id.clone(), plan.eos_at);
            scheduler.add_request(plan.add.to_request()).map_err(|source| EngineError::Add {
                iteration: i,
                op: it.ops.len(),
                source,
            })?;
            it.ops.push(Op::Add(plan.add));
        }
        let due = ends.remove(&i).unwrap_or_default();
        for (id, in_flight, reason) in &due {
            if !in_flight {
                scheduler.finish_requests([id.as_str()], *reason, None);
                it.ops.push(Op::Finish(FinishOp { id: id.clone(), status: *reason }));
            }
        }
        if scheduler.has_requests() {
            scheduler.schedule();
            for (id, in_flight, reason) in &due {
                if *in_flight {
                    scheduler.finish_requests([id.as_str()], *reason, None);
                    it.in_flight.push(InFlight::Finish(FinishOp { id: id.clone(), status: *reason }));
                }
            }
            let eos: Vec<String> = scheduler
                .sampling()
                .filter_map(|h| scheduler.request(h))
                .filter(|r| eos_at.get(r.id()).is_some_and(|&n| r.num_output() + 1 >= n))
                .map(|r| r.id().to_owned())
                .collect();
            scheduler.update_from_output(|id| eos.iter().any(|e| e == id));
            it.eos = eos;
        }
        steps.push(it);
        i += 1;
    }
    while steps.last().is_some_and(|s: &Iteration| s.ops.is_empty() && s.in_flight.is_empty() && s.eos.is_empty()) {
        steps.pop();
    }
    let mut workload = Workload::new(config, steps);
    if let Some(a) = params.api {
        workload.api.api_sample_rate = Share::new(a.sample_rate);
        workload.api.stream_fraction = Share::new(a.stream_fraction);
    }
    Ok(workload)
}

/// How `journey simulate` draws step tracing for a generated workload (HEAD's three settings).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepSampling {
    /// Chance that a step is summarized (`--step-tracing-sample-rate`).
    pub sample_rate: f64,
    /// Chance that a summarized step also has snapshots (`--step-tracing-rich-subsample-rate`).
    pub rich_subsample_rate: f64,
    /// Steps per window before a closure is considered (`--step-tracing-closure-interval`).
    pub closure_interval: u64,
}

/// `workload` with step tracing on: the summary and rich steps drawn once, from a generator
/// seeded with `seed`, for every step the workload runs (as the fork's samplers would, with
/// `random() < rate`), and recorded in `config.step_tracing` so that replays are exact.
///
/// ```
/// use journey_spec::synth::{StepSampling, SynthParams, generate, with_step_tracing};
/// let w = generate(&SynthParams { requests: 20, ..SynthParams::default() })?;
/// let sampling = StepSampling { sample_rate: 0.5, rich_subsample_rate: 0.5, closure_interval: 10 };
/// let traced = with_step_tracing(w.clone(), 7, &sampling)?;
/// let t = traced.step_tracing.as_ref().unwrap();
/// assert!(!t.summary_steps.is_empty() && t.rich_steps.iter().all(|s| t.summarized(*s)));
/// assert_eq!(traced, with_step_tracing(w, 7, &sampling)?, "same seed, same steps");
/// # Ok::<(), journey_spec::synth::SynthError>(())
/// ```
pub fn with_step_tracing(mut workload: Workload, seed: u64, sampling: &StepSampling) -> Result<Workload, SynthError> {
    let share = |field: &'static str, value: f64| {
        super::workload::Share::new(value).ok_or(SynthError::Param { field, value, expected: "within [0, 1]" })
    };
    let sample_rate = share("step_tracing.sample_rate", sampling.sample_rate)?;
    let rich_subsample_rate = share("step_tracing.rich_subsample_rate", sampling.rich_subsample_rate)?;
    if sampling.closure_interval == 0 {
        return Err(SynthError::Config(ConfigError::TooSmall {
            field: "step_tracing.closure_interval",
            value: 0,
            min: 1,
        }));
    }
    workload.step_tracing = None;
    let (_, run) = super::engine::replay(&workload)?;
    // A stream of its own: the workload's other draws stay as they were.
    let mut rng = Rng::new(seed ^ 0x5354_4550_5452_4143);
    let mut summary_steps = Vec::new();
    let mut rich_steps = Vec::new();
    for step in 1..=run.steps {
        if rng.unit() < sampling.sample_rate {
            summary_steps.push(step);
            if rng.unit() < sampling.rich_subsample_rate {
                rich_steps.push(step);
            }
        }
    }
    workload.step_tracing = Some(super::workload::StepTracing {
        sample_rate,
        rich_subsample_rate,
        closure_interval: sampling.closure_interval,
        summary_steps,
        rich_steps,
    });
    Ok(workload)
}
