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

/// An async replay through the real SDK: journeys from the in-memory exporter's spans, journeys
/// from the legacy buffer, and the step counter after every workload entry.
struct AsyncReplay {
    spans: BTreeMap<String, Vec<JourneyEvent>>,
    buffered: BTreeMap<String, Vec<JourneyEvent>>,
    entry_steps: Vec<u64>,
    steps: u64,
    verdicts: Vec<(String, bool, bool)>,
}

fn replay_async(workload: &Workload) -> AsyncReplay {
    use journey_spec::model::{JourneyChecker, Profile};
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let mut scheduler = Scheduler::new(workload.config).expect("fixture config is valid");
    scheduler.set_emitter(Some(Emitter::new(provider.tracer("vllm.scheduler")).with_clock(TickClock::default())));
    let mut buffered: BTreeMap<String, Vec<JourneyEvent>> = BTreeMap::new();
    let mut entry_steps = Vec::new();
    let entries = workload.steps.len();
    let mut engine = Engine::new(scheduler);
    engine
        .run(workload, |k, _, s| {
            if let Err(e) = s.check_invariants() {
                panic!("iteration {k}: {e}");
            }
            if k < entries {
                entry_steps.push(s.step().0);
            }
            if let Some(em) = s.emitter_mut() {
                for b in em.drain() {
                    buffered.entry(b.request_id.to_string()).or_default().push(b.event);
                }
            }
        })
        .expect("fixture workload drains");
    let steps = engine.scheduler().step().0;
    let mut spans = BTreeMap::new();
    let mut verdicts = Vec::new();
    for span in exporter.get_finished_spans().expect("exporter") {
        let j = journey_spec::otel::span_data::journey_of(&span).expect("a journey span");
        let events: Vec<JourneyEvent> = j.decoded().cloned().collect();
        assert_eq!(events.len(), j.events.len(), "{}: every event decodes", j.request_id.as_str());
        let verdict = |profile| {
            let mut c = JourneyChecker::new(j.request_id.clone()).with_span(j.span).with_profile(profile);
            for e in &events {
                let _ = c.push(e);
            }
            c.finish().is_conforming()
        };
        verdicts.push((j.request_id.to_string(), verdict(Profile::Sync), verdict(Profile::Async)));
        let prev = spans.insert(j.request_id.to_string(), events);
        assert!(prev.is_none(), "one span per request");
    }
    AsyncReplay { spans, buffered, entry_steps, steps, verdicts }
}

/// Replaying each real `AsyncScheduler` run of the fork (`../shared/fixtures/vllm-async/`) with
/// the emitter on a real SDK pipeline reproduces its journeys event for event and attribute for
/// attribute (clocks and ids aside), on the spans and on the legacy buffer; the step counter
/// after every entry is the fork's (empty `schedule()` calls included), and so is the step count
/// after the drain; every journey conforms to the async profile, and the sync profile rejects
/// exactly the journeys with late outputs the ground truth names.
#[test]
fn every_async_fixture_workload_reproduces_the_vllm_journeys() {
    let mut failures = Vec::new();
    let mut compared = 0;
    for (name, workload, otlp) in async_fixtures() {
        let w = Workload::from_file(&workload).expect("workload parses");
        assert!(w.config.async_scheduling, "{name}: an async workload");
        let truth_path = otlp.with_file_name(format!("{name}.ground_truth.json"));
        let truth: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(truth_path).expect("ground truth readable")).expect("JSON");
        let ours = replay_async(&w);
        let theirs = fixtures::journeys(&otlp);
        let events: usize = ours.spans.values().map(Vec::len).sum();
        for (what, journeys) in [("spans", &ours.spans), ("buffer", &ours.buffered)] {
            if let Some(diff) = fixtures::first_difference(journeys, &theirs) {
                failures.push(format!("{name} ({what}): {diff}"));
            }
        }
        let want: Vec<u64> = truth["entry_step_counter"]
            .as_array()
            .expect("entry_step_counter")
            .iter()
            .map(|v| v.as_u64().expect("a step"))
            .collect();
        assert_eq!(ours.entry_steps, want, "{name}: step counter after each entry");
        assert_eq!(Some(ours.steps), truth["summary"]["scheduler_steps"].as_u64(), "{name}: schedule() calls");
        let late: Vec<String> = truth["summary"]["late_output_journeys"]
            .as_array()
            .expect("late_output_journeys")
            .iter()
            .map(|j| j["id"].as_str().expect("id").to_owned())
            .collect();
        let mut late = late;
        late.sort();
        let mut rejected: Vec<String> =
            ours.verdicts.iter().filter(|(_, sync, _)| !sync).map(|(id, _, _)| id.clone()).collect();
        rejected.sort();
        assert_eq!(rejected, late, "{name}: the sync profile rejects exactly the late-output journeys");
        assert!(ours.verdicts.iter().all(|(_, _, a)| *a), "{name}: the async profile accepts every journey");
        println!(
            "{name}: {} requests, {events} events, {} steps, {} late: identical",
            ours.spans.len(),
            ours.steps,
            late.len()
        );
        compared += 1;
    }
    assert!(failures.is_empty(), "journeys differ from vLLM's:\n{}", failures.join("\n"));
    if fixtures::async_all().is_some() {
        assert_eq!(compared, 6);
    }
}

#[test]
fn async_replays_are_deterministic_and_differ_from_sync() {
    for (name, workload, _) in async_fixtures().into_iter().take(2) {
        let w = Workload::from_file(&workload).expect("workload parses");
        let (a, b) = (replay_async(&w), replay_async(&w));
        assert_eq!(a.spans, b.spans, "{name}");
        let sync =
            replay(&Workload { config: journey_spec::SchedulerConfig { async_scheduling: false, ..w.config }, ..w });
        assert_ne!(sync, a.buffered, "{name}: the sync run of the same workload is another run");
    }
}
