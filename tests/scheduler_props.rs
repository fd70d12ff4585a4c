//! Property tests of the reference scheduler: random workloads over random configurations never
//! break the invariants, always drain, replay deterministically, and the journeys they produce
//! pass the model (the emitter checks every event against it in debug builds).

mod common;

use journey_spec::model::{FinishStatus, JourneyChecker, Verdict};
use journey_spec::synth::{LengthDist, SynthParams, generate};
use journey_spec::{Emitter, Engine, Iterated, Policy, Scheduler, SchedulerConfig, TickClock, Workload};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn configs() -> impl Strategy<Value = SchedulerConfig> {
    (
        1usize..8,
        prop::sample::select(vec![4u64, 8, 16]),
        4usize..64,
        prop::sample::select(vec![64u64, 128, 512]),
        any::<bool>(),
        prop_oneof![3 => Just(0u64), 1 => 1u64..64],
        8u64..256,
        prop::sample::select(vec![Policy::Fcfs, Policy::Priority]),
    )
        .prop_map(|(seqs, block_size, num_blocks, max_model_len, chunked, threshold, budget, policy)| {
            SchedulerConfig {
                max_num_seqs: seqs,
                max_num_batched_tokens: if chunked { budget } else { max_model_len + budget },
                block_size,
                num_blocks,
                max_model_len,
                long_prefill_token_threshold: threshold,
                enable_chunked_prefill: chunked,
                policy,
                async_scheduling: false,
            }
        })
}

fn params() -> impl Strategy<Value = SynthParams> {
    (any::<u64>(), 1usize..40, 0.05f64..2.0, configs(), 1.0f64..200.0, 1.0f64..60.0, 0.0f64..0.3, 1u32..4).prop_map(
        |(seed, requests, arrival_rate, config, prompt, output, abort_share, priorities)| SynthParams {
            seed,
            requests,
            arrival_rate,
            prompt_len: LengthDist { median: prompt, sigma: 0.8, min: 1, max: 1000 },
            output_len: LengthDist { median: output, sigma: 0.8, min: 1, max: 200 },
            abort_share,
            priorities,
            config,
            ..SynthParams::default()
        },
    )
}

/// Replays with the emitter's buffer on; invariants after every iteration; journeys by id.
fn replay(w: &Workload) -> Result<(BTreeMap<String, Vec<journey_spec::model::JourneyEvent>>, u64), TestCaseError> {
    let mut s = Scheduler::new(w.config).map_err(|e| TestCaseError::fail(e.to_string()))?;
    s.set_emitter(Some(Emitter::without_tracer().with_clock(TickClock::default())));
    let mut journeys: BTreeMap<String, Vec<_>> = BTreeMap::new();
    let mut broken = None;
    let mut engine = Engine::new(s);
    let summary = engine
        .run(w, |k, done, s| {
            if let Err(e) = s.check_invariants() {
                broken.get_or_insert(format!("iteration {k}: {e}"));
            }
            if done == Iterated::Stepped && k < w.steps.len() {
                // Every EOS the generator put on this iteration ended its request with `stopped`.
                for id in &w.steps[k].eos {
                    let stopped =
                        s.last_update().finished.iter().any(|f| &*f.id == id && f.status == FinishStatus::Stopped);
                    if !stopped {
                        broken.get_or_insert(format!("iteration {k}: EOS for {id} did not stop it"));
                    }
                }
            }
            for b in s.emitter_mut().into_iter().flat_map(|e| e.drain().collect::<Vec<_>>()) {
                journeys.entry(b.request_id.to_string()).or_default().push(b.event);
            }
        })
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    if let Some(b) = broken {
        return Err(TestCaseError::fail(b));
    }
    let s = engine.scheduler();
    prop_assert_eq!(s.num_live(), 0);
    prop_assert_eq!(s.blocks().used(), 0);
    prop_assert_eq!(s.emitter().map(|e| e.live()), Some(0), "tracing state outlived its requests");
    Ok((journeys, summary.steps))
}

proptest! {
    #![proptest_config(common::config(regressions!("scheduler_props"), 2_000))]

    #[test]
    fn random_workloads_keep_invariants_drain_and_conform(p in params()) {
        let w = generate(&p).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (journeys, steps) = replay(&w)?;
        // Replaying the file's text gives the same run.
        let again = Workload::from_json(&w.to_json()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (journeys2, steps2) = replay(&again)?;
        prop_assert_eq!(steps, steps2);
        prop_assert!(journeys == journeys2, "replay differs");
        prop_assert_eq!(journeys.len(), p.requests);
        for (id, events) in &journeys {
            let mut c = JourneyChecker::new(id.as_str());
            for e in events {
                let _ = c.push(e);
            }
            prop_assert_eq!(c.finish(), Verdict::Conforming, "{}", id);
        }
    }
}
