//! `journey simulate` and `journey demo`, run as a user runs them: replaying a fixture workload
//! writes the fixture's journeys; `simulate | check` round-trips with no violation across many
//! seeds and configurations; a saved workload replays to the same bytes.

#[path = "../../tests/common/fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

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

/// `journey simulate --workload` on the fork's real `AsyncScheduler` runs (`config.async_scheduling`)
/// writes their journeys event for event; `journey check --profile async` accepts them all.
#[test]
fn simulate_replays_async_fixture_workloads_into_the_fixture_journeys() {
    let Some(all) = fixtures::async_all() else {
        assert!(std::env::var_os("CI").is_none(), "the vllm-async fixtures are missing on CI");
        eprintln!("SKIPPED: ../shared/fixtures/vllm-async is not beside this checkout");
        return;
    };
    assert_eq!(all.len(), 6);
    for (name, workload, otlp) in all {
        let out = tmp(&format!("{name}.simulated.jsonl"));
        let o = journey(&["simulate", "--workload", workload.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let ours: BTreeMap<String, Vec<JourneyEvent>> =
            fixtures::journeys(&out).into_iter().map(|(id, j)| (id, j.events)).collect();
        let theirs = fixtures::journeys(&otlp);
        assert_eq!(ours.len(), theirs.len(), "{name}: one journey per request");
        if let Some(diff) = fixtures::first_difference(&ours, &theirs) {
            panic!("{name}: {diff}");
        }
        let check = journey(&["check", "--profile", "async", out.to_str().unwrap()]);
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
        String::from_utf8_lossy(&zero.stderr).contains("--max-num-seqs 0: must be at least 1"),
        "{}",
        String::from_utf8_lossy(&zero.stderr)
    );
}

#[test]
fn hostile_flags_are_errors_naming_the_flag_and_the_value() {
    // `--step-ms 1e300` panicked in `Duration::from_secs_f64`; `--arrival-rate 0`, `nan` and
    // `-1` ran 1.4 M iterations and then said "did not drain"; the rest were accepted.
    let out = tmp("hostile.jsonl");
    let cases: [(&[&str], &str); 14] = [
        (&["--step-ms", "1e300"], "--step-ms <MS>': is too long"),
        (&["--step-ms", "-1"], "'-1' for '--step-ms <MS>': must be a finite number, at least 0"),
        (&["--step-ms", "inf"], "'inf' for '--step-ms <MS>'"),
        (&["--token-us", "nan"], "'nan' for '--token-us <US>': must be a finite number, at least 0"),
        (&["--arrival-rate", "0"], "--arrival-rate 0: must be a positive, finite number"),
        (&["--arrival-rate", "nan"], "--arrival-rate NaN: must be a positive, finite number"),
        (&["--arrival-rate", "-1"], "--arrival-rate -1: must be a positive, finite number"),
        (&["--arrival-rate", "1e-300"], "--arrival-rate: arrival_rate is 1e-300: request 0 would arrive at iteration"),
        (&["--abort-share", "1.5"], "--abort-share 1.5: must be between 0 and 1"),
        (&["--priorities", "0"], "--priorities 0: must be at least 1"),
        (&["--prompt-median", "0"], "--prompt-median 0: must be a positive, finite number"),
        (&["--num-blocks", "4294967296"], "--num-blocks 4294967296: must be at most 4294967295"),
        (&["--block-size", "0"], "--block-size 0: must be at least 1"),
        (&["--max-num-seqs", "0"], "--max-num-seqs 0: must be at least 1"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["simulate", "--requests", "3", "--out", out.to_str().unwrap()];
        args.extend_from_slice(flags);
        let o = journey(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
    }
    // `journey demo` shares the synthetic options and their checks.
    for flags in [["--priorities", "0"], ["--abort-share", "1.5"], ["--num-blocks", "4294967296"]] {
        let o = journey(&[&["demo"][..], &flags].concat());
        assert_eq!(o.status.code(), Some(2), "demo {flags:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("{} {}", flags[0], flags[1])), "demo {flags:?}");
    }
}

#[test]
fn huge_limits_run_in_the_memory_of_what_runs() {
    // `--max-num-seqs` 2^63 panicked (capacity overflow) and 2^40 aborted (allocation failure),
    // in `simulate` and `demo`; `--num-blocks` 2^32 - 1 allocated 16 GiB of free list.
    let out = tmp("huge-limits.jsonl");
    for limits in
        [["--max-num-seqs", "9223372036854775808"], ["--max-num-seqs", "1099511627776"], ["--num-blocks", "4294967295"]]
    {
        let o = journey(&[&["simulate", "--requests", "20", "--out", out.to_str().unwrap()][..], &limits].concat());
        assert!(o.status.success(), "{limits:?}: {}", String::from_utf8_lossy(&o.stderr));
        let check = journey(&["check", out.to_str().unwrap()]);
        assert_eq!(check.status.code(), Some(0), "{limits:?}: {}", String::from_utf8_lossy(&check.stdout));
        let demo = journey(&[&["demo", "--requests", "20"][..], &limits].concat());
        assert_eq!(demo.status.code(), Some(0), "demo {limits:?}: {}", String::from_utf8_lossy(&demo.stderr));
    }
}

#[test]
fn run_errors_of_a_workload_file_name_the_file_and_the_request_id_as_a_string() {
    let w = tmp("duplicate.workload.json");
    std::fs::write(
        &w,
        r#"{"config": {"max_num_seqs": 2, "max_num_batched_tokens": 64, "block_size": 4, "num_blocks": 16,
            "max_model_len": 64}, "steps": [{"ops": [{"op": "add", "id": "a", "prompt_len": 4, "max_tokens": 8}]},
            {"ops": [{"op": "add", "id": "a", "prompt_len": 4, "max_tokens": 8}]}]}"#,
    )
    .unwrap();
    let o =
        journey(&["simulate", "--workload", w.to_str().unwrap(), "--out", tmp("duplicate.jsonl").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: iteration 1, operation 0: request \"a\" is already live", w.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("RequestId"), "{stderr}");
}

#[test]
fn the_longest_step_costs_saturate_simulated_time_instead_of_panicking() {
    // `step_base + step_per_token · tokens` overflowed `Duration`, and the clock wrapped.
    let w = generate(&SynthParams { requests: 10, ..SynthParams::default() }).unwrap();
    let options =
        SimulateOptions { step_base: Duration::MAX, step_per_token: Duration::MAX, ..SimulateOptions::default() };
    let (bytes, stats) = simulate(&w, Vec::new(), &options, |_| {}).expect("simulates");
    // Time stops at the last instant of OpenTelemetry's u64 nanoseconds since the epoch.
    let end = Duration::from_nanos(u64::MAX);
    assert_eq!(options.start.duration_since(std::time::UNIX_EPOCH).unwrap() + stats.simulated, end);
    let trace = read_trace("sim", &bytes[..], |e| panic!("{e}"));
    let mut summary = Summary::new();
    summary.add(check_trace(trace, &CheckOptions::default()), 0);
    assert_eq!((summary.journeys, summary.violating), (10, 0), "time never runs backwards");
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

#[path = "../../tests/common/head.rs"]
mod head;

#[test]
fn simulate_head_replays_the_forks_two_layer_runs_span_for_span() {
    let Some(dir) = head::head_fixtures() else { return };
    for name in head::RUNS {
        let workload = dir.join(format!("{name}.workload.json"));
        let out = tmp(&format!("{name}.head.jsonl"));
        let o = journey(&[
            "simulate",
            "--workload",
            workload.to_str().unwrap(),
            "--wire-profile",
            "head",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let theirs = head::reduce(&std::fs::read_to_string(dir.join(format!("{name}.otlp.jsonl"))).unwrap());
        let ours = head::reduce(&std::fs::read_to_string(&out).unwrap());
        if let Some(diff) = head::first_difference(&theirs, &ours) {
            panic!("{name}: {diff}");
        }
    }
}

#[test]
fn simulate_refuses_a_two_layer_workload_under_the_seed_profile() {
    let Some(dir) = head::head_fixtures() else { return };
    let workload = dir.join("api_r45.workload.json");
    let o = journey(&[
        "simulate",
        "--workload",
        workload.to_str().unwrap(),
        "--out",
        tmp("refused.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("api_r45.workload.json") && err.contains("head profile"), "{err}");
}

/// A generated two-layer workload: sampling and streaming drawn per request and recorded, both
/// layers written under `head`, checked clean as a complete input against the workload, and
/// replayed from the saved file to the same bytes.
#[test]
fn a_generated_two_layer_run_checks_clean_and_replays_to_the_same_bytes() {
    let (w, a, b) = (tmp("two-layer.workload.json"), tmp("two-layer.a.jsonl"), tmp("two-layer.b.jsonl"));
    let generated = journey(&[
        "simulate",
        "--seed",
        "11",
        "--requests",
        "60",
        "--abort-share",
        "0.3",
        "--api-sample-rate",
        "0.5",
        "--stream-fraction",
        "0.5",
        "--wire-profile",
        "head",
        "--workload-out",
        w.to_str().unwrap(),
        "--out",
        a.to_str().unwrap(),
    ]);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let workload = journey_spec::Workload::from_file(&w).unwrap();
    assert!(workload.is_two_layer());
    let adds: Vec<&journey_spec::AddOp> = workload
        .steps
        .iter()
        .flat_map(|it| &it.ops)
        .filter_map(|op| match op {
            journey_spec::Op::Add(a) => Some(a),
            _ => None,
        })
        .collect();
    let sampled = adds.iter().filter(|a| a.sampled == Some(true)).count();
    assert!(adds.iter().all(|a| a.sampled.is_some() && a.stream.is_some()), "every decision recorded");
    assert!(sampled > 10 && sampled < 50, "about half of 60 sampled: {sampled}");
    assert!(adds.iter().any(|a| a.stream == Some(true)) && adds.iter().any(|a| a.stream == Some(false)));
    let finishes = workload.steps.iter().flat_map(|it| {
        it.ops
            .iter()
            .filter_map(|op| match op {
                journey_spec::Op::Finish(f) => Some(f.status),
                _ => None,
            })
            .chain(it.in_flight.iter().map(|journey_spec::InFlight::Finish(f)| f.status))
    });
    assert!(finishes.into_iter().all(|s| s == journey_spec::FinishReason::Aborted), "only client disconnects");

    let check =
        journey(&["check", "--format", "json", "--complete", "--workload", w.to_str().unwrap(), a.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(check.status.code(), Some(0), "{report}");
    assert_eq!(report["api_spans"].as_u64(), Some(sampled as u64), "{report}");
    assert_eq!(report["journeys"].as_u64(), Some(sampled as u64), "one core span per sampled request");
    assert_eq!(report["pairs"].as_u64(), Some(sampled as u64));

    let again = journey(&[
        "simulate",
        "--workload",
        w.to_str().unwrap(),
        "--wire-profile",
        "head",
        "--out",
        b.to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}
