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
//! # Ok::<(), journey_spec::EngineError>(())
//! ```

use std::collections::BTreeMap;

use super::config::{Policy, SchedulerConfig};
use super::engine::EngineError;
use super::request::FinishReason;
use super::scheduler::Scheduler;
use super::workload::{AddOp, FinishOp, InFlight, Iteration, Op, Workload};

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
            config: SchedulerConfig {
                max_num_seqs: 32,
                max_num_batched_tokens: 256,
                block_size: 16,
                num_blocks: 159,
                max_model_len: 2048,
                long_prefill_token_threshold: 0,
                enable_chunked_prefill: true,
                policy: Policy::Fcfs,
            },
        }
    }
}

/// SplitMix64: a small, well-studied generator; plenty for workloads and fully reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo + 1;
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as u64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponentially distributed with the given rate.
    pub fn exponential(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate.max(f64::MIN_POSITIVE)
    }

    /// A standard normal deviate (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A length from `d`.
    pub fn length(&mut self, d: &LengthDist) -> u64 {
        let x = (d.median.max(1.0).ln() + d.sigma * self.normal()).exp();
        (x.round() as u64).clamp(d.min.max(1), d.max.max(d.min.max(1)))
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

/// Generates a workload (see the module docs). Fails only when `params.config` is invalid or
/// the generated run does not drain.
pub fn generate(params: &SynthParams) -> Result<Workload, EngineError> {
    let config = params.config;
    let mut scheduler = Scheduler::new(config)?;
    let mut rng = Rng::new(params.seed);
    let width = params.requests.max(1).to_string().len().max(4);

    // Arrival iterations and per-request plans.
    let mut arrivals: BTreeMap<usize, Vec<Plan>> = BTreeMap::new();
    let mut t = 0.0;
    for k in 0..params.requests {
        t += rng.exponential(params.arrival_rate);
        let at = t as usize;
        let prompt_max = (config.max_model_len - 1).min(params.prompt_len.max.max(1));
        let prompt_len = rng.length(&LengthDist { max: prompt_max, ..params.prompt_len });
        let output = rng.length(&params.output_len);
        let max_tokens = if rng.chance(params.capped_share) { rng.range(1, output) } else { output + rng.range(0, 64) };
        // Fit the whole cache at the longest (a request that cannot is rejected by the scheduler).
        let capacity = config.num_blocks as u64 * config.block_size;
        let prompt_len = prompt_len.min(capacity.saturating_sub(1).max(1));
        let max_tokens = max_tokens.min(capacity.saturating_sub(prompt_len).max(1));
        let priority = i64::from(rng.range(0, u64::from(params.priorities.max(1)) - 1) as u32);
        let traceparent = rng
            .chance(params.traceparent_share)
            .then(|| format!("00-{:016x}{:016x}-{:016x}-01", rng.next_u64() | 1, rng.next_u64(), rng.next_u64() | 1));
        let end = rng.chance(params.abort_share).then(|| {
            let after = rng.range(0, 2 * (prompt_len / config.max_num_batched_tokens.max(1) + output));
            let reason = if rng.chance(params.error_share) {
                FinishReason::Error
            } else if rng.chance(params.ignored_share) {
                FinishReason::Ignored
            } else {
                FinishReason::Aborted
            };
            (at + after as usize, rng.chance(params.in_flight_share), reason)
        });
        let add = AddOp {
            id: format!("syn-{k:0width$}"),
            prompt_len,
            max_tokens,
            priority,
            traceparent,
            tracestate: None,
            ignore_eos: false,
        };
        arrivals.entry(at).or_default().push(Plan { add, eos_at: output, end });
    }

    let mut ends: BTreeMap<usize, Vec<(String, bool, FinishReason)>> = BTreeMap::new();
    let mut eos_at: BTreeMap<String, u64> = BTreeMap::new();
    let mut steps = Vec::new();
    let last_arrival = arrivals.keys().next_back().copied().unwrap_or(0);
    // The engine's drain bound over all requests, after the last arrival.
    let limit = last_arrival as u64
        + super::engine::drain_bound(arrivals.values().flatten().map(|p| (p.add.prompt_len, p.add.max_tokens)));
    let mut i = 0usize;
    while i <= last_arrival || scheduler.has_requests() {
        if i as u64 > limit {
            return Err(EngineError::CannotDrain { live: scheduler.num_live(), iterations: i as u64 });
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
    Ok(Workload { config, steps })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws<T>(n: usize, mut f: impl FnMut() -> T) -> Vec<T> {
        (0..n).map(|_| f()).collect()
    }

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }

    #[test]
    fn splitmix64_matches_the_reference_outputs() {
        // Reference values of SplitMix64 (Steele, Lea, Flood 2014): seed 0 starts 0xe220a8397b1dcdaf.
        let mut r = Rng::new(0);
        assert_eq!((r.next_u64(), r.next_u64()), (0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4));
        let mut r = Rng::new(1);
        assert_eq!(
            [r.next_u64(), r.next_u64(), r.next_u64()],
            [0x910a_2dec_8902_5cc1, 0xbeeb_8da1_658e_ec67, 0xf893_a2ee_fb32_555e]
        );
    }

    #[test]
    fn unit_is_uniform_on_zero_to_one() {
        let mut r = Rng::new(7);
        let v = draws(20_000, || r.unit());
        assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
        assert!((mean(&v) - 0.5).abs() < 0.01, "{}", mean(&v));
        assert!(v.iter().any(|x| *x < 0.001) && v.iter().any(|x| *x > 0.999));
    }

    #[test]
    fn range_covers_both_ends_and_nothing_else() {
        let mut r = Rng::new(7);
        let v = draws(10_000, || r.range(3, 9));
        assert!(v.iter().all(|x| (3..=9).contains(x)));
        for x in 3..=9 {
            let share = v.iter().filter(|y| **y == x).count() as f64 / v.len() as f64;
            assert!((share - 1.0 / 7.0).abs() < 0.02, "{x}: {share}");
        }
        assert_eq!((r.range(5, 5), r.range(7, 3)), (5, 7));
    }

    #[test]
    fn chance_has_its_probability() {
        let mut r = Rng::new(7);
        assert!(draws(1000, || r.chance(0.0)).iter().all(|c| !c));
        assert!(draws(1000, || r.chance(1.0)).iter().all(|c| *c));
        let hits = draws(20_000, || r.chance(0.3)).iter().filter(|c| **c).count() as f64 / 20_000.0;
        assert!((hits - 0.3).abs() < 0.015, "{hits}");
    }

    #[test]
    fn exponential_and_normal_have_their_moments() {
        let mut r = Rng::new(7);
        let e = draws(40_000, || r.exponential(4.0));
        assert!(e.iter().all(|x| *x >= 0.0));
        assert!((mean(&e) - 0.25).abs() < 0.01, "{}", mean(&e));
        let n = draws(40_000, || r.normal());
        let m = mean(&n);
        let var = n.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n.len() as f64;
        assert!(m.abs() < 0.02 && (var - 1.0).abs() < 0.03, "mean {m}, variance {var}");
        assert!(n.iter().filter(|x| **x < -1.0).count() > 5_000, "both tails");
    }

    #[test]
    fn lengths_have_their_median_and_stay_in_bounds() {
        let mut r = Rng::new(7);
        let d = LengthDist { median: 100.0, sigma: 0.8, min: 5, max: 400 };
        let mut v = draws(20_001, || r.length(&d));
        v.sort_unstable();
        assert!((95..=105).contains(&v[10_000]), "median {}", v[10_000]);
        assert_eq!((v[0], v[20_000]), (5, 400), "clamped at both ends");
        let fixed = LengthDist { median: 42.0, sigma: 0.0, min: 1, max: 1000 };
        assert!(draws(100, || r.length(&fixed)).iter().all(|x| *x == 42));
    }
}
