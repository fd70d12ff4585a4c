//! `journey simulate` and `journey demo`, run as a user runs them: replaying a fixture workload
//! writes the fixture's journeys; `simulate | check` round-trips with no violation across many
//! seeds and configurations; a saved workload replays to the same bytes.

#[path = "../../tests/common/fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use journey_spec::model::JourneyEvent;
use journey_spec::otel::simulate::{SimulateOptions, simulate};
use journey_spec::otel::{CheckOptions, Summary, check_trace, read_trace};
use journey_spec::synth::{SynthParams, generate};
use journey_spec::{Policy, SchedulerConfig};

fn journey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_journey")).args(args).output().expect("journey runs")
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn simulate_replays_fixture_workloads_into_the_fixture_journeys() {
    for (name, workload, otlp) in fixtures::all() {
        let out = tmp(&format!("{name}.simulated.jsonl"));
        let o = journey(&["simulate", "--workload", workload.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("journey: simulated"), "{name}: a summary on stderr");
        let ours: BTreeMap<String, Vec<JourneyEvent>> =
            fixtures::journeys(&out).into_iter().map(|(id, j)| (id, j.events)).collect();
        if let Some(diff) = fixtures::first_difference(&ours, &fixtures::journeys(&otlp)) {
            panic!("{name}: {diff}");
        }
        let check = journey(&["check", out.to_str().unwrap()]);
        assert_eq!(check.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&check.stdout));
    }
}

#[test]
fn simulate_then_check_round_trips_across_seeds_and_configurations() {
    let configs = [
        SynthParams::default().config,
        SchedulerConfig { policy: Policy::Priority, num_blocks: 64, ..SynthParams::default().config },
        SchedulerConfig {
            enable_chunked_prefill: false,
            max_num_batched_tokens: 2048,
            ..SynthParams::default().config
        },
        SchedulerConfig {
            long_prefill_token_threshold: 48,
            block_size: 8,
            num_blocks: 200,
            ..SynthParams::default().config
        },
        SchedulerConfig { max_num_seqs: 2, ..SynthParams::default().config },
    ];
    let mut journeys = 0;
    for seed in 0..40u64 {
        let config = configs[seed as usize % configs.len()];
        let params =
            SynthParams { seed, requests: 40, priorities: 3, abort_share: 0.2, config, ..SynthParams::default() };
        let w = generate(&params).unwrap();
        let (bytes, stats) =
            simulate(&w, Vec::new(), &SimulateOptions { id_seed: seed, ..SimulateOptions::default() }, |_| {}).unwrap();
        let mut errors = 0;
        let trace = read_trace("sim", &bytes[..], |e| {
            errors += 1;
            eprintln!("{e}");
        });
        let mut summary = Summary::new();
        summary.add(check_trace(trace, &CheckOptions::default()), errors);
        assert_eq!((summary.input_errors, summary.violating), (0, 0), "seed {seed}");
        assert_eq!(summary.journeys, 40, "seed {seed}");
        assert_eq!(summary.conforming, 40, "seed {seed}: every journey whole");
        assert_eq!(stats.write.spans, 40);
        journeys += summary.journeys;
    }
    assert_eq!(journeys, 1600);
    // And once through the binaries, as a pipe.
    let sim = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(["simulate", "--seed", "9", "--requests", "60", "--policy", "priority", "--priorities", "4"])
        .output()
        .unwrap();
    assert!(sim.status.success());
    let mut check = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(["check", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(&sim.stdout).unwrap();
    let o = check.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((report["journeys"].as_u64(), report["violating"].as_u64()), (Some(60), Some(0)));
}

#[test]
fn a_saved_workload_replays_to_the_same_bytes() {
    let (w, a, b) = (tmp("saved.workload.json"), tmp("a.jsonl"), tmp("b.jsonl"));
    let first = journey(&[
        "simulate",
        "--seed",
        "5",
        "--requests",
        "30",
        "--abort-share",
        "0.3",
        "--workload-out",
        w.to_str().unwrap(),
        "--out",
        a.to_str().unwrap(),
    ]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let again = journey(&["simulate", "--workload", w.to_str().unwrap(), "--out", b.to_str().unwrap()]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn usage_and_input_errors_exit_2_with_a_message() {
    let conflict = journey(&["simulate", "--workload", "x.json", "--seed", "3"]);
    assert_eq!(conflict.status.code(), Some(2));
    let missing = journey(&["simulate", "--workload", "/nonexistent/w.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/w.json"));
    let bad = tmp("bad.workload.json");
    std::fs::write(&bad, r#"{"config": {"max_num_seqs": 0}, "steps": []}"#).unwrap();
    let invalid = journey(&["simulate", "--workload", bad.to_str().unwrap()]);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("bad.workload.json"));
    let zero = journey(&["simulate", "--max-num-seqs", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&zero.stderr).contains("max_num_seqs"),
        "{}",
        String::from_utf8_lossy(&zero.stderr)
    );
}

#[test]
fn demo_simulates_checks_and_shows_the_most_preempted_request() {
    let o = journey(&["demo"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("conforming 200, incomplete 0, violating 0"), "{text}");
    assert!(text.contains("The most-preempted request"), "{text}");
    assert!(text.contains("PREEMPTED ▼") && text.contains("SCHEDULED(RESUME)"), "{text}");
    assert!(text.contains("aborted"), "the default workload has aborts: {text}");
}
