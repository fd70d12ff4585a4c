//! The synthetic workload generator: its workloads have the shapes their parameters ask for,
//! fit the cache, and are pinned for a fixed seed (a change to the generator shows here, as
//! stateright's examples pin their state counts).

use journey_spec::synth::{LengthDist, SynthParams, generate};
use journey_spec::{FinishReason, InFlight, Op, SchedulerConfig, Workload};

/// Counts that describe a workload.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    iterations: usize,
    last_add: usize,
    adds: usize,
    prompt_tokens: u64,
    max_tokens: u64,
    finishes: [usize; 3],
    in_flight: usize,
    eos: usize,
    traced: usize,
    priority_sum: i64,
}

fn shape(w: &Workload) -> Shape {
    let mut s = Shape {
        iterations: w.steps.len(),
        last_add: 0,
        adds: 0,
        prompt_tokens: 0,
        max_tokens: 0,
        finishes: [0; 3],
        in_flight: 0,
        eos: 0,
        traced: 0,
        priority_sum: 0,
    };
    let reason = |r: FinishReason| FinishReason::ALL.iter().position(|x| *x == r).unwrap_or(0);
    for (k, it) in w.steps.iter().enumerate() {
        for op in &it.ops {
            match op {
                Op::Add(a) => {
                    s.last_add = k;
                    s.adds += 1;
                    s.prompt_tokens += a.prompt_len;
                    s.max_tokens += a.max_tokens;
                    s.traced += usize::from(a.traceparent.is_some());
                    s.priority_sum += a.priority;
                }
                Op::Finish(f) => s.finishes[reason(f.status)] += 1,
                Op::Reset => {}
            }
        }
        for InFlight::Finish(f) in &it.in_flight {
            s.in_flight += 1;
            s.finishes[reason(f.status)] += 1;
        }
        s.eos += it.eos.len();
    }
    s
}

fn adds(w: &Workload) -> Vec<&journey_spec::AddOp> {
    w.steps.iter().flat_map(|it| &it.ops).filter_map(|op| if let Op::Add(a) = op { Some(a) } else { None }).collect()
}

#[test]
fn the_default_workload_is_pinned() {
    let w = generate(&SynthParams::default()).expect("generates");
    let expected = Shape {
        iterations: 2738,
        last_add: 769,
        adds: 200,
        prompt_tokens: 72407,
        max_tokens: 19520,
        finishes: [12, 5, 2],
        in_flight: 4,
        eos: 143,
        traced: 44,
        priority_sum: 0,
    };
    assert_eq!(shape(&w), expected, "the generator changed: same seed, different workload");
    let with_priorities = generate(&SynthParams { seed: 3, requests: 50, priorities: 4, ..SynthParams::default() });
    assert_eq!(shape(&with_priorities.expect("generates")).priority_sum, 78);
}

#[test]
fn workloads_have_the_shapes_their_parameters_ask_for() {
    let p = SynthParams { requests: 2000, arrival_rate: 0.5, priorities: 3, ..SynthParams::default() };
    let w = generate(&p).expect("generates");
    let s = shape(&w);
    let share = |n: usize, of: usize| n as f64 / of as f64;
    // Poisson arrivals at 0.5 per iteration: the last of 2000 arrives near iteration 4000.
    assert!((3700..=4300).contains(&s.last_add), "{s:?}");
    let mut prompts: Vec<u64> = adds(&w).iter().map(|a| a.prompt_len).collect();
    prompts.sort_unstable();
    assert!((270..=330).contains(&prompts[1000]), "prompt median {}", prompts[1000]);
    let finishes: usize = s.finishes.iter().sum();
    assert!((share(finishes, 2000) - p.abort_share).abs() < 0.02, "{s:?}");
    assert!((share(s.in_flight, finishes) - p.in_flight_share).abs() < 0.1, "{s:?}");
    assert!((share(s.finishes[1], finishes) - p.error_share).abs() < 0.07, "{s:?}");
    assert!((share(s.traced, 2000) - p.traceparent_share).abs() < 0.03, "{s:?}");
    assert!(adds(&w).iter().all(|a| (0..3).contains(&a.priority)));
    assert!(adds(&w).iter().any(|a| a.priority == 2));
    // Every add sits at its own arrival: ids in order, one per request.
    let ids: Vec<&str> = adds(&w).iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.first().copied(), Some("syn-0000"));
    assert_eq!(ids.last().copied(), Some("syn-1999"));
}

#[test]
fn requests_are_clamped_to_fit_a_tiny_cache() {
    let config =
        SchedulerConfig { num_blocks: 4, block_size: 4, max_num_batched_tokens: 8, ..SynthParams::default().config };
    let p = SynthParams {
        requests: 300,
        prompt_len: LengthDist { median: 100.0, sigma: 1.0, min: 1, max: 1000 },
        config,
        ..SynthParams::default()
    };
    let w = generate(&p).expect("every request fits the 16-token cache");
    let adds = adds(&w);
    assert!(adds.iter().all(|a| a.prompt_len <= 15 && a.prompt_len + a.max_tokens <= 16), "clamped");
    assert_eq!(adds.iter().map(|a| a.prompt_len).max(), Some(15), "the clamp binds");
    assert!(adds.iter().all(|a| a.max_tokens >= 1));
}

#[test]
fn an_invalid_configuration_is_an_error_not_a_panic() {
    let config = SchedulerConfig { max_num_seqs: 0, ..SynthParams::default().config };
    assert!(generate(&SynthParams { config, ..SynthParams::default() }).is_err());
}
