//! The synthetic workload generator: its workloads have the shapes their parameters ask for,
//! fit the cache, and are pinned for a fixed seed (a change to the generator shows here, as
//! stateright's examples pin their state counts).

use journey_spec::synth::{LengthDist, MAX_ARRIVAL, SynthError, SynthParams, generate};
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

/// The field and value of a parameter error (NaN compares unequal, so tests match on these).
fn param_error(e: &SynthError) -> Option<(&'static str, f64)> {
    match e {
        SynthError::Param { field, value, .. } => Some((field, *value)),
        SynthError::EmptyLengths { .. }
        | SynthError::Config(_)
        | SynthError::TooSparse { .. }
        | SynthError::Engine(_) => None,
    }
}

#[test]
fn every_invalid_parameter_is_a_typed_error_naming_it_before_any_iteration() {
    // `arrival_rate` 0, NaN or -1 ran 1.4 M iterations and then reported "did not drain";
    // `abort_share` 1.5 and `priorities` 0 were accepted (the latter silently as 1).
    type Set = fn(&mut SynthParams, f64);
    let cases: [(&str, Set, &[f64]); 12] = [
        ("arrival_rate", |p, x| p.arrival_rate = x, &[0.0, -1.0, f64::NAN, f64::INFINITY]),
        ("abort_share", |p, x| p.abort_share = x, &[1.5, -0.1, f64::NAN]),
        ("capped_share", |p, x| p.capped_share = x, &[2.0, f64::NAN]),
        ("in_flight_share", |p, x| p.in_flight_share = x, &[f64::NAN]),
        ("error_share", |p, x| p.error_share = x, &[-1.0]),
        ("ignored_share", |p, x| p.ignored_share = x, &[1.0001]),
        ("traceparent_share", |p, x| p.traceparent_share = x, &[f64::INFINITY]),
        ("priorities", |p, x| p.priorities = x as u32, &[0.0]),
        ("prompt_len.median", |p, x| p.prompt_len.median = x, &[0.0, f64::NAN, -5.0]),
        ("prompt_len.sigma", |p, x| p.prompt_len.sigma = x, &[-1.0, f64::NAN]),
        ("output_len.median", |p, x| p.output_len.median = x, &[f64::INFINITY]),
        ("output_len.sigma", |p, x| p.output_len.sigma = x, &[f64::NEG_INFINITY]),
    ];
    for (field, set, values) in cases {
        for &value in values {
            let mut p = SynthParams::default();
            set(&mut p, value);
            let e = p.validate().expect_err(field);
            let (f, v) = param_error(&e).unwrap_or_else(|| panic!("{field} {value}: {e}"));
            assert_eq!(f, field, "{e}");
            assert!(v == value || (v.is_nan() && value.is_nan()), "{field}: {v} for {value}");
            assert!(e.to_string().starts_with(&format!("{field} is ")), "{e}");
            // The generator checks first: the same error, with no iteration run.
            let g = generate(&p).expect_err(field);
            assert_eq!(g.to_string(), e.to_string());
        }
    }
    let lengths = SynthParams {
        output_len: LengthDist { min: 10, max: 5, ..SynthParams::default().output_len },
        ..SynthParams::default()
    };
    assert_eq!(lengths.validate(), Err(SynthError::EmptyLengths { field: "output_len", min: 10, max: 5 }));
    assert_eq!(SynthParams::default().validate(), Ok(()));
    let e = generate(&SynthParams { priorities: 0, ..SynthParams::default() }).unwrap_err();
    assert_eq!(e.to_string(), "priorities is 0, must be at least 1");
    assert_eq!(
        SynthParams { abort_share: 1.5, ..SynthParams::default() }.validate().unwrap_err().to_string(),
        "abort_share is 1.5, must be between 0 and 1"
    );
}

#[test]
fn arrivals_too_sparse_for_a_workload_are_an_error_not_a_hang() {
    // A positive rate so small that the first arrival lands past MAX_ARRIVAL (or at infinity):
    // the workload would be one empty entry per iteration until then.
    for rate in [1e-300, f64::MIN_POSITIVE, 1e-12] {
        let p = SynthParams { arrival_rate: rate, requests: 3, ..SynthParams::default() };
        assert_eq!(p.validate(), Ok(()), "{rate} is a valid rate");
        match generate(&p) {
            Err(SynthError::TooSparse { rate: r, request, at }) => {
                assert_eq!((r, request), (rate, 0), "{rate}");
                assert!(at > MAX_ARRIVAL as f64, "{rate}: {at}");
            }
            other => panic!("{rate}: {other:?}"),
        }
    }
    // Sparse but within the limit: a few requests over some 10^5 iterations is fine.
    let w = generate(&SynthParams { arrival_rate: 1e-4, requests: 3, ..SynthParams::default() }).expect("generates");
    assert!(w.steps.len() > 1000, "{}", w.steps.len());
}

#[test]
fn output_lengths_near_u64_max_do_not_overflow_the_generator() {
    // `output + 64`, `2 · (prompt / budget + output)` and `hi - lo + 1` in the draw overflowed.
    let p = SynthParams {
        requests: 30,
        output_len: LengthDist { median: 1e30, sigma: 0.0, min: 1, max: u64::MAX },
        abort_share: 1.0,
        capped_share: 0.5,
        ..SynthParams::default()
    };
    let w = generate(&p).expect("generates and drains");
    let adds = adds(&w);
    assert_eq!(adds.len(), 30);
    // Every request is clamped to fit the cache (159 blocks of 16 tokens) at its longest.
    assert!(adds.iter().all(|a| a.prompt_len + a.max_tokens <= 159 * 16), "clamped");
    let w2 = generate(&SynthParams { prompt_len: LengthDist { min: 5000, max: 9000, ..p.prompt_len }, ..p.clone() })
        .expect("a prompt minimum above max_model_len is clamped below it, not rejected by the scheduler");
    assert!(self::adds(&w2).iter().all(|a| a.prompt_len < 2048));
}
