//! Fidelity to vLLM, measured: replaying each fixture workload through the reference scheduler
//! reproduces the journeys the vLLM fork's own scheduler produced — every request, every event,
//! in order, with the same step, schedule kind, finish status, phase and progress values.

#[path = "common/fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;

use journey_spec::model::JourneyEvent;
use journey_spec::{Emitter, Engine, Scheduler, TickClock, Workload};

/// Replays a workload with the emitter's legacy buffer on, invariants checked after every
/// iteration; the journeys by request id.
fn replay(workload: &Workload) -> BTreeMap<String, Vec<JourneyEvent>> {
    let mut scheduler = Scheduler::new(workload.config).expect("fixture config is valid");
    scheduler.set_emitter(Some(Emitter::without_tracer().with_clock(TickClock::default())));
    let mut journeys: BTreeMap<String, Vec<JourneyEvent>> = BTreeMap::new();
    let mut engine = Engine::new(scheduler);
    engine
        .run(workload, |k, _, s| {
            if let Err(e) = s.check_invariants() {
                panic!("iteration {k}: {e}");
            }
            if let Some(em) = s.emitter_mut() {
                for b in em.drain() {
                    journeys.entry(b.request_id.to_string()).or_default().push(b.event);
                }
            }
        })
        .expect("fixture workload drains");
    journeys
}

#[test]
fn every_fixture_workload_reproduces_the_vllm_journeys() {
    let mut failures = Vec::new();
    for (name, workload, otlp) in fixtures::all() {
        let text = std::fs::read_to_string(&workload).expect("workload readable");
        let workload = Workload::from_json(&text).expect("workload parses");
        let ours = replay(&workload);
        let theirs = fixtures::journeys(&otlp);
        let events: usize = ours.values().map(Vec::len).sum();
        match fixtures::first_difference(&ours, &theirs) {
            None => println!("{name}: {} requests, {events} events: identical", ours.len()),
            Some(diff) => failures.push(format!("{name}: {diff}")),
        }
    }
    assert!(failures.is_empty(), "journeys differ from vLLM's:\n{}", failures.join("\n"));
}

#[test]
fn replaying_twice_gives_identical_journeys() {
    for (name, workload, _) in fixtures::all() {
        let text = std::fs::read_to_string(&workload).expect("workload readable");
        let workload = Workload::from_json(&text).expect("workload parses");
        assert_eq!(replay(&workload), replay(&workload), "{name}");
    }
}

#[test]
fn run_summaries_count_iterations_steps_and_the_drain() {
    // kv_pressure: 3795 workload iterations, then empty ones until drained; vLLM ran 3796 steps.
    let (_, workload, _) = fixtures::all().into_iter().nth(1).expect("kv_pressure");
    let w = Workload::from_json(&std::fs::read_to_string(workload).expect("readable")).expect("parses");
    let mut engine = Engine::new(Scheduler::new(w.config).expect("valid"));
    let limit = engine.drain_limit();
    assert_eq!(limit, 1024, "nothing is live before the run: the bound is its constant");
    let mut idle = 0;
    let summary = engine.run(&w, |_, done, _| idle += u64::from(done == journey_spec::Iterated::Idle)).expect("drains");
    assert_eq!(summary.steps, 3796);
    assert_eq!(summary.iterations, summary.steps + idle);
    assert_eq!(summary.iterations, w.steps.len() as u64 + summary.drain_iterations);
    assert!(summary.drain_iterations > 0);
}

#[test]
fn the_drain_bound_grows_with_the_work_left() {
    let mut s = Scheduler::new(journey_spec::SchedulerConfig::default()).expect("valid");
    s.add_request(journey_spec::NewRequest::new("a", 10, 5)).expect("add");
    s.add_request(journey_spec::NewRequest::new("b", 20, 7)).expect("add");
    assert_eq!(Engine::new(s).drain_limit(), 1024 + 16 * (15 + 27));
}

/// The async fixtures, or a skip outside the development layout (never on CI).
fn async_fixtures() -> Vec<(String, std::path::PathBuf, std::path::PathBuf)> {
    match fixtures::async_all() {
        Some(all) => all,
        None => {
            assert!(std::env::var_os("CI").is_none(), "the vllm-async fixtures are missing on CI");
            eprintln!("SKIPPED: ../shared/fixtures/vllm-async is not beside this checkout");
            Vec::new()
        }
    }
}

#[test]
fn every_async_fixture_workload_reproduces_the_vllm_journeys_buffered() {
    let mut failures = Vec::new();
    for (name, workload, otlp) in async_fixtures() {
        let workload = Workload::from_file(&workload).expect("workload parses");
        assert!(workload.config.async_scheduling, "{name}: an async workload");
        let ours = replay(&workload);
        let theirs = fixtures::journeys(&otlp);
        let events: usize = ours.values().map(Vec::len).sum();
        match fixtures::first_difference(&ours, &theirs) {
            None => println!("{name}: {} requests, {events} events: identical", ours.len()),
            Some(diff) => failures.push(format!("{name}: {diff}")),
        }
    }
    assert!(failures.is_empty(), "journeys differ from vLLM's:\n{}", failures.join("\n"));
}
