//! The async profile on real `AsyncScheduler` runs of the vLLM fork (`../shared/fixtures/vllm-async/`,
//! when present beside the repository): `journey check --profile async` accepts every journey,
//! and the sync profile flags exactly the journeys with late outputs (the ground truth's count),
//! each first at a late output (R2: FIRST_TOKEN in Preempted; R4: a natural FINISHED from it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/vllm-async");
    dir.is_dir().then_some(dir)
}

fn check(profile: &str, path: &Path) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(["check", "--format", "json", "--profile", profile])
        .arg(path)
        .output()
        .expect("journey runs");
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn the_async_profile_accepts_every_async_journey_and_sync_flags_the_late_ones() {
    let Some(dir) = fixtures() else {
        // The shared fixtures sit beside the repository in the development layout and in CI.
        assert!(std::env::var_os("CI").is_none(), "the vllm-async fixtures are missing on CI");
        eprintln!("SKIPPED: ../shared/fixtures/vllm-async is not beside this checkout");
        return;
    };
    // name → journeys with late outputs (the README's "late" column).
    let runs = [
        ("r30_async", 2),
        ("r30_late_async", 2),
        ("r31_async", 1),
        ("r33_async", 2),
        ("r35_async", 0),
        ("r36_async", 0),
    ];
    let mut total = 0;
    for (name, late) in runs {
        let path = dir.join(format!("{name}.otlp.jsonl"));
        let a = check("async", &path);
        assert_eq!(a["profile"], "async");
        let journeys = a["journeys"].as_u64().unwrap();
        assert!(journeys > 0, "{name}");
        assert_eq!(
            (a["conforming"].as_u64(), a["violating"].as_u64()),
            (Some(journeys), Some(0)),
            "{name}: {:#}",
            a["violations"]
        );
        total += journeys;
        let s = check("sync", &path);
        assert_eq!(s["profile"], "sync");
        assert_eq!(s["violating"].as_u64(), Some(late), "{name}: {:#}", s["violations"]);
        // Each flagged journey is flagged first at a late output.
        let mut seen = std::collections::BTreeSet::new();
        for v in s["violations"].as_array().unwrap() {
            let id = v["request_id"].as_str().unwrap().to_owned();
            if seen.insert(id.clone()) {
                let at = (v["rule"].as_str().unwrap(), v["event"].as_str().unwrap());
                assert!(matches!(at, ("R2", "FIRST_TOKEN") | ("R4", "FINISHED")), "{name} {id}: {v:#}");
            }
        }
    }
    assert!(total >= 300, "{total} journeys");
}
