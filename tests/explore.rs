//! The bounded explorer (`journey_spec::explore`): pinned state counts on three
//! configurations, every outcome reachable, and injected scheduler faults found with a
//! counterexample of the shortest length.
//!
//! `EXPLORE_DEPTH=N` (and `EXPLORE_REQUESTS=K`) explore deeper; the pinned counts are then not
//! compared, every property still is.

use journey_spec::explore::{Counterexample, ExploreConfig, Failure, Report, explore};
use journey_spec::model::{JourneyChecker, JourneyEvent, Profile, Verdict};
use journey_spec::{Emitter, Engine, Faults, Scheduler, Workload};

/// Explores `config` (deeper with `EXPLORE_DEPTH`); fails on a counterexample or an
/// unreached outcome other than those `unreachable` names. Returns the report and whether the
/// bounds were the configuration's own.
fn run(config: &ExploreConfig, unreachable: &[&str]) -> (Report, bool) {
    let mut config = config.clone();
    let env = |k: &str| std::env::var(k).ok().and_then(|d| d.parse::<usize>().ok());
    let own = env("EXPLORE_DEPTH").is_none() && env("EXPLORE_REQUESTS").is_none();
    config.depth = env("EXPLORE_DEPTH").unwrap_or(config.depth);
    config.max_requests = env("EXPLORE_REQUESTS").unwrap_or(config.max_requests);
    let report = explore(&config, &mut |_| {}).expect("valid configuration");
    if let Some(c) = &report.counterexample {
        panic!("{}: {c}", config.name);
    }
    println!(
        "{}: {} unique states, max depth {}, {} transitions, {:.0} states/s",
        report.name,
        report.unique_states,
        report.max_depth,
        report.transitions,
        report.states_per_second()
    );
    assert_eq!(report.coverage.missing(), unreachable, "{}: outcomes not reached", config.name);
    (report, own)
}

#[test]
fn tiny_kv_cache_forces_preemption() {
    let (r, own) = run(&ExploreConfig::tiny_kv(), &[]);
    if own {
        assert_eq!((r.unique_states, r.max_depth, r.exhausted), (38_176, 30, false));
    }
}

/// Without chunked prefill a prompt is computed in its admission step, which samples the
/// first token: a request is never running in prefill when a preemption picks it.
#[test]
fn chunked_prefill_off() {
    let (r, own) = run(&ExploreConfig::no_chunking(), &["PREEMPTED in prefill"]);
    if own {
        assert_eq!((r.unique_states, r.max_depth, r.exhausted), (12_794, 12, true));
    }
}

#[test]
fn priority_policy() {
    let (r, own) = run(&ExploreConfig::priority(), &[]);
    if own {
        assert_eq!((r.unique_states, r.max_depth, r.exhausted), (58_059, 30, false));
    }
}

// ---- Injected faults ------------------------------------------------------------------------

/// Explores `config` with `faults` and without drains to depth `len - 1` (nothing may be
/// found: no shorter counterexample exists), then with drains to the configuration's depth:
/// the counterexample must have `len` operations.
fn shortest(mut config: ExploreConfig, faults: Faults, len: usize) -> Counterexample {
    config.faults = faults;
    let depth = config.depth;
    config.depth = len - 1;
    config.drain = false;
    let shorter = explore(&config, &mut |_| {}).expect("valid");
    assert!(shorter.counterexample.is_none(), "{faults:?}: found below {len}: {:?}", shorter.counterexample);
    config.depth = depth;
    config.drain = true;
    let found = explore(&config, &mut |_| {}).expect("valid");
    let c = found.counterexample.unwrap_or_else(|| panic!("{faults:?}: nothing found at depth {len}"));
    println!("{faults:?}:\n{c}");
    assert_eq!(c.actions.len(), len, "{c}");
    assert_eq!(c.lines.len(), len, "{c}");
    c
}

/// The counterexample's workload is kept in `tests/data/explore/NAME.workload.json`: the
/// explorer must still produce exactly it (`EXPLORE_BLESS=1` rewrites it), and the correct
/// scheduler replays it with every journey conforming.
fn kept(name: &str, c: &Counterexample) {
    let path = format!("{}/tests/data/explore/{name}.workload.json", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(&c.workload).expect("serialises") + "\n";
    if std::env::var_os("EXPLORE_BLESS").is_some() {
        std::fs::write(&path, &text).expect("writable");
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e} (EXPLORE_BLESS=1 writes it)"));
    assert_eq!(text, kept, "{name}: the counterexample changed");
    let workload = Workload::from_json(&kept).expect("a valid workload");
    assert_eq!(replayed(&workload), workload_ids(&workload), "{name}: replay");
}

/// Replays `w` on the correct scheduler with a buffer-only emitter; the ids whose journeys
/// conform (under the async profile for an async workload).
fn replayed(w: &Workload) -> Vec<String> {
    let mut s = Scheduler::new(w.config).expect("valid");
    s.set_emitter(Some(Emitter::without_tracer()));
    let mut engine = Engine::new(s);
    let mut events: Vec<(String, JourneyEvent)> = Vec::new();
    engine
        .run(w, |_, _, s| {
            if let Some(e) = s.emitter_mut() {
                events.extend(e.drain().map(|b| (b.request_id.to_string(), b.event)));
            }
        })
        .expect("replays and drains");
    let mut ids: Vec<String> = events.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    ids.retain(|id| {
        let journey: Vec<JourneyEvent> = events.iter().filter(|(i, _)| i == id).map(|(_, e)| e.clone()).collect();
        let profile = if w.config.async_scheduling { Profile::Async } else { Profile::Sync };
        let mut checker = JourneyChecker::new(id.as_str()).with_profile(profile);
        for e in &journey {
            let _ = checker.push(e);
        }
        checker.finish() == Verdict::Conforming
    });
    ids
}

fn workload_ids(w: &Workload) -> Vec<String> {
    let mut ids: Vec<String> = w
        .steps
        .iter()
        .flat_map(|it| &it.ops)
        .filter_map(|op| match op {
            journey_spec::Op::Add(a) => Some(a.id.clone()),
            journey_spec::Op::Finish(_) | journey_spec::Op::Reset => None,
        })
        .collect();
    ids.sort();
    ids
}

/// Forgetting to drop computed tokens on preemption: add, one step, reset. The scheduler's
/// bookkeeping no longer matches its own outputs.
#[test]
fn fault_keep_computed_on_preemption() {
    let faults = Faults { keep_computed_on_preemption: true, ..Faults::NONE };
    let c = shortest(ExploreConfig::tiny_kv(), faults, 3);
    assert!(matches!(&c.failure, Failure::Projection { request, .. } if request == "r0"), "{c}");
    kept("keep_computed_on_preemption", &c);
}

/// RESUME emitted as FIRST: add, step, reset, step.
#[test]
fn fault_resume_as_first() {
    let faults = Faults { resume_as_first: true, ..Faults::NONE };
    let c = shortest(ExploreConfig::tiny_kv(), faults, 4);
    // Debug builds: the emitter's own self-check panics first; release: the projection.
    assert!(
        matches!(&c.failure, Failure::Panicked(m) if m.contains("model rejects"))
            || matches!(&c.failure, Failure::Projection { .. }),
        "{c}"
    );
    kept("resume_as_first", &c);
}

/// Admitting in a step that preempted.
#[test]
fn fault_admit_after_preemption() {
    let faults = Faults { admit_after_preemption: true, ..Faults::NONE };
    let c = shortest(ExploreConfig::tiny_kv(), faults, 4);
    kept("admit_after_preemption", &c);
}

// ---- Async scheduling -----------------------------------------------------------------------

/// Async scheduling on the tiny cache: late outputs (FIRST_TOKEN and FINISHED(stopped) while
/// Preempted) are reached, and every journey passes the async profile. A late
/// FINISHED(length) is not: under fcfs the victim is the last request admitted, and with these
/// shapes a request whose last token is in flight holds 2 of the 3 blocks while the one admitted
/// before it already holds its 2 (both need at most 2), so nobody needs a block then. The
/// priority preset reaches it.
#[test]
fn async_scheduling_tiny_kv() {
    let (r, own) = run(&ExploreConfig::tiny_kv_async(), &["late FINISHED(length) in state Preempted"]);
    if own {
        assert_eq!((r.unique_states, r.max_depth, r.exhausted), (10_430, 14, false));
    }
}

#[test]
fn async_scheduling_priority() {
    let (r, own) = run(&ExploreConfig::priority_async(), &[]);
    if own {
        assert_eq!((r.unique_states, r.max_depth, r.exhausted), (17_731, 14, false));
    }
}

/// Freeing a request's blocks one step early under async scheduling: when an output lands, the
/// request's blocks are cut to its produced tokens although the next batch, in flight, writes
/// into the last one. Add, and three steps: the third schedules a token into a new block while
/// the second batch's output lands.
#[test]
fn fault_free_blocks_early_under_async() {
    let faults = Faults { trim_blocks_to_output: true, ..Faults::NONE };
    let c = shortest(ExploreConfig::tiny_kv_async(), faults, 4);
    assert!(matches!(&c.failure, Failure::Invariant(e) if e.invariant == journey_spec::Invariant::KvInFlight), "{c}");
    assert!(c.workload.config.async_scheduling);
    kept("trim_blocks_to_output", &c);
}

/// A preemption that clears the output placeholders of a request whose token is in flight
/// (the literal backport of upstream #38624 that underflowed, #48245): two requests, three
/// steps; the third preempts r1 for r0's second block while r1's token is in flight, and that
/// token lands with no placeholder left.
#[test]
fn fault_preempt_clears_placeholders() {
    let faults = Faults { preempt_clears_placeholders: true, ..Faults::NONE };
    let c = shortest(ExploreConfig::tiny_kv_async(), faults, 5);
    assert!(matches!(&c.failure, Failure::Invariant(e) if e.invariant == journey_spec::Invariant::Placeholders), "{c}");
    kept("preempt_clears_placeholders", &c);
}

/// A reset that does not mark the token in flight to be thrown away (the resumed request
/// would get a second token for one position): add, step, reset, where the projection (a
/// reset marks, `SPEC.md` §8.1) already differs from the scheduler's bookkeeping.
#[test]
fn fault_reset_keeps_latest_token() {
    let faults = Faults { reset_keeps_latest_token: true, ..Faults::NONE };
    let c = shortest(ExploreConfig::tiny_kv_async(), faults, 3);
    assert!(matches!(&c.failure, Failure::Projection { request, .. } if request == "r0"), "{c}");
    kept("reset_keeps_latest_token", &c);
}
