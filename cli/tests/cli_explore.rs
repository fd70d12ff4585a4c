//! `journey explore` as a user runs it, and the explorer's kept counterexamples replayed by
//! `journey simulate --workload`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn journey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_journey")).args(args).output().expect("journey runs")
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

const CONFIG: &str = r#"{"name": "tiny", "scheduler": {"max_num_seqs": 2, "max_num_batched_tokens": 8,
  "block_size": 2, "num_blocks": 3, "max_model_len": 8, "long_prefill_token_threshold": 2},
  "shapes": [{"prompt_len": 3, "max_tokens": 2}, {"prompt_len": 1, "max_tokens": 3}]}"#;

#[test]
fn explore_reports_the_states_of_a_configuration_file() {
    let path = tmp("tiny.explore.json");
    std::fs::write(&path, CONFIG).expect("writable");
    let o = journey(&["explore", "--config", path.to_str().unwrap(), "--depth", "6", "--requests", "2"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.starts_with("tiny: "), "{stdout}");
    assert!(stdout.contains("unique states, max depth 6 of 6"), "{stdout}");
    assert!(stdout.contains(" states/s, ") && stdout.contains(" transitions/s)"), "{stdout}");
    let states: usize = stdout.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a count");
    // The library's count for the same bounds.
    let mut config = journey_spec::explore::ExploreConfig::from_json(CONFIG).expect("valid");
    config.depth = 6;
    config.max_requests = 2;
    let report = journey_spec::explore::explore(&config, &mut |_| {}).expect("valid");
    assert_eq!(states, report.unique_states);
}

/// An async configuration file (`"async_scheduling": true`): explored as the library explores
/// it, with journeys held to the async profile.
#[test]
fn explore_runs_an_async_configuration() {
    let path = tmp("tiny-async.explore.json");
    let config = CONFIG.replace(
        r#""long_prefill_token_threshold": 2"#,
        r#""long_prefill_token_threshold": 2, "async_scheduling": true"#,
    );
    std::fs::write(&path, &config).expect("writable");
    let o = journey(&["explore", "--config", path.to_str().unwrap(), "--depth", "8", "--requests", "2"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("unique states, max depth 8 of 8"), "{stdout}");
    let states: usize = stdout.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a count");
    let mut c = journey_spec::explore::ExploreConfig::from_json(&config).expect("valid");
    assert!(c.scheduler.async_scheduling);
    c.depth = 8;
    c.max_requests = 2;
    let report = journey_spec::explore::explore(&c, &mut |_| {}).expect("valid");
    assert_eq!(states, report.unique_states);
    // The sync count for the same bounds differs: the async state holds the batch in flight.
    c.scheduler.async_scheduling = false;
    assert_ne!(states, journey_spec::explore::explore(&c, &mut |_| {}).expect("valid").unique_states);
}

#[test]
fn explore_rejects_a_bad_configuration_with_status_2() {
    let path = tmp("bad.explore.json");
    std::fs::write(
        &path,
        r#"{"scheduler": {"max_num_seqs": 2, "max_num_batched_tokens": 8, "block_size": 2,
        "num_blocks": 3, "max_model_len": 8}, "shapes": [{"prompt_len": 9, "max_tokens": 2}]}"#,
    )
    .expect("writable");
    let o = journey(&["explore", "--config", path.to_str().unwrap(), "--depth", "3"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("bad.explore.json") && stderr.contains("shape #0"), "{stderr}");
}

/// Each counterexample the explorer found for an injected fault is a workload that the
/// correct scheduler replays with every journey conforming.
#[test]
fn kept_counterexamples_replay_and_conform() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/explore");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the directory") {
        let workload = entry.expect("entry").path();
        let out = tmp(&format!("{}.jsonl", workload.file_name().unwrap().to_string_lossy()));
        let o = journey(&["simulate", "--workload", workload.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}: {}", workload.display(), String::from_utf8_lossy(&o.stderr));
        // An async workload's journeys are held to the async profile (late outputs).
        let text = std::fs::read_to_string(&workload).expect("readable");
        let profile = if text.contains("\"async_scheduling\": true") { "async" } else { "sync" };
        let check = journey(&["check", "--profile", profile, out.to_str().unwrap()]);
        assert_eq!(check.status.code(), Some(0), "{}: {}", workload.display(), String::from_utf8_lossy(&check.stdout));
        n += 1;
    }
    assert_eq!(n, 6, "one workload per injected fault");
}
