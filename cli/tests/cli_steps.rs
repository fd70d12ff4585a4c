//! Step windows (`SPEC.md` §12) through `journey check`: the real HEAD runs of
//! `../shared/fixtures/vllm-step/` (when present beside the repository) check clean, with and
//! without `--complete`; targeted corruptions of them are caught by the intended rule (S1–S3);
//! the early commits' files (no step windows) check clean; `journey rules` lists S1–S3.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/vllm-step");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(std::env::var_os("CI").is_none(), "the vllm-step fixtures are missing on CI");
    eprintln!("SKIPPED: ../shared/fixtures/vllm-step is not beside this checkout");
    None
}

fn check(path: &Path, extra: &[&str]) -> (i32, Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(["check", "--format", "json"])
        .args(extra)
        .arg(path)
        .output()
        .expect("journey runs");
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code().unwrap_or(-1), v)
}

/// The rules of the step violations in a report.
fn step_rules(report: &Value) -> Vec<String> {
    report["steps"]["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["rule"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn the_step_fixtures_check_clean() {
    let Some(dir) = fixtures() else { return };
    for (run, windows) in [("r46_c100_steps", 27), ("r47_steps", 51), ("r49_steps", 26)] {
        for extra in [&[][..], &["--complete"][..]] {
            let (code, report) = check(&dir.join(format!("{run}.otlp.jsonl")), extra);
            assert_eq!(code, 0, "{run} {extra:?}: {report}");
            assert_eq!(report["steps"]["windows"], windows, "{run}");
            assert!(step_rules(&report).is_empty(), "{run}: {report}");
        }
    }
}

#[test]
fn the_early_commits_files_have_no_windows_and_check_clean() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vllm");
    for name in ["basic", "kv_pressure"] {
        let (code, report) = check(&data.join(format!("{name}.otlp.jsonl")), &[]);
        assert_eq!(code, 0, "{name}");
        assert!(report.get("steps").is_none(), "{name}: no step windows, no steps section");
    }
}

/// Applies `edit` to every step window of `run` (the edit says whether it changed anything),
/// writes the result, and checks it.
fn corrupt(run: &str, extra: &[&str], mut edit: impl FnMut(&mut Value) -> bool) -> Option<(i32, Vec<String>)> {
    let dir = fixtures()?;
    let text = std::fs::read_to_string(dir.join(format!("{run}.otlp.jsonl"))).unwrap();
    let mut changed = 0;
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut v: Value = serde_json::from_str(line).unwrap();
        for rs in v["resourceSpans"].as_array_mut().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array_mut().into_iter().flatten() {
                if ss["scope"]["name"] != "vllm.scheduler.step" {
                    continue;
                }
                for span in ss["spans"].as_array_mut().into_iter().flatten() {
                    if changed == 0 && edit(span) {
                        changed += 1;
                    }
                }
            }
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    assert_eq!(changed, 1, "{run}: the corruption applied");
    // One file per corruption: the tests run in parallel.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("journey-steps-{run}-{}-{k}.otlp.jsonl", std::process::id()));
    std::fs::write(&path, out).unwrap();
    let (code, report) = check(&path, extra);
    let _ = std::fs::remove_file(&path);
    Some((code, step_rules(&report)))
}

fn attr<'a>(list: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    list.as_array_mut()?.iter_mut().find(|kv| kv["key"] == key).map(|kv| &mut kv["value"]["intValue"])
}

fn int(v: &Value) -> i64 {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_i64()).unwrap_or(-1)
}

fn expect(got: Option<(i32, Vec<String>)>, rule: &str) {
    let Some((code, rules)) = got else { return };
    assert_eq!(code, 1, "{rules:?}");
    assert!(!rules.is_empty() && rules.iter().all(|r| r == rule), "expected only {rule}: {rules:?}");
}

#[test]
fn a_gap_between_windows_is_s1() {
    expect(
        corrupt("r49_steps", &[], |span| {
            if span["name"] != "scheduler_steps_2" {
                return false;
            }
            *attr(&mut span["attributes"], "scheduler.step_range_start").unwrap() = Value::String("32".into());
            true
        }),
        "S1",
    );
}

#[test]
fn a_second_summary_of_one_step_is_s2() {
    expect(
        corrupt("r49_steps", &[], |span| {
            if span["name"] != "scheduler_steps_1" {
                return false;
            }
            // The summary once more, at the end: a second summary of step 29, with no snapshots.
            let summary = span["events"][0].clone();
            span["events"].as_array_mut().unwrap().push(summary);
            true
        }),
        "S2",
    );
}

#[test]
fn a_missing_snapshot_is_s2() {
    expect(
        corrupt("r49_steps", &[], |span| {
            let events = span["events"].as_array_mut().unwrap();
            if events.len() < 3 {
                return false;
            }
            events.pop();
            true
        }),
        "S2",
    );
}

#[test]
fn tokens_that_do_not_add_up_are_s3() {
    expect(
        corrupt("r47_steps", &[], |span| {
            let Some(e) = span["events"].as_array_mut().unwrap().iter_mut().find(|e| e["name"] == "step.BATCH_SUMMARY")
            else {
                return false;
            };
            let t = attr(&mut e["attributes"], "batch.prefill_tokens").unwrap();
            *t = Value::String((int(t) + 1).to_string());
            true
        }),
        "S3",
    );
}

#[test]
fn a_preemption_count_the_journeys_contradict_is_s3_under_complete() {
    let lower = |span: &mut Value| {
        for e in span["events"].as_array_mut().unwrap() {
            if e["name"] != "step.BATCH_SUMMARY" {
                continue;
            }
            let n = attr(&mut e["attributes"], "batch.num_preempted").unwrap();
            if int(n) > 0 {
                *n = Value::String((int(n) - 1).to_string());
                return true;
            }
        }
        false
    };
    // Fewer than the journeys show: a violation in any case.
    expect(corrupt("r46_c100_steps", &[], lower), "S3");
    let raise = |span: &mut Value| {
        let Some(e) = span["events"].as_array_mut().unwrap().iter_mut().find(|e| e["name"] == "step.BATCH_SUMMARY")
        else {
            return false;
        };
        let n = attr(&mut e["attributes"], "batch.num_preempted").unwrap();
        *n = Value::String((int(n) + 1).to_string());
        true
    };
    // More than the journeys show: only when the input is declared complete.
    if let Some((code, rules)) = corrupt("r46_c100_steps", &[], raise) {
        assert_eq!((code, rules), (0, vec![]));
    }
    expect(corrupt("r46_c100_steps", &["--complete"], raise), "S3");
}

#[test]
fn a_snapshot_the_journey_contradicts_is_s3() {
    expect(
        corrupt("r49_steps", &[], |span| {
            let Some(e) =
                span["events"].as_array_mut().unwrap().iter_mut().find(|e| e["name"] == "step.REQUEST_SNAPSHOT")
            else {
                return false;
            };
            *attr(&mut e["attributes"], "request.num_preemptions").unwrap() = Value::String("3".into());
            true
        }),
        "S3",
    );
}

#[test]
fn journey_rules_lists_s1_to_s3_in_layer_step() {
    let o = Command::new(env!("CARGO_BIN_EXE_journey")).args(["rules", "--format", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let steps: Vec<&str> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["layer"] == "step")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["S1", "S2", "S3"]);
    let text = Command::new(env!("CARGO_BIN_EXE_journey")).args(["rules"]).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("S3") && l.contains("step-agreement")), "{text}");
}

/// Drops the oldest `k` events of the first window with more than `k + 2` events, as the
/// Python SDK's limit does; `report` says whether the span reports them.
fn drop_oldest(k: usize, report: bool) -> impl FnMut(&mut Value) -> bool {
    move |span: &mut Value| {
        let events = span["events"].as_array_mut().unwrap();
        if events.len() <= k + 2 || events[k]["name"] != "step.REQUEST_SNAPSHOT" {
            return false;
        }
        events.drain(..k);
        if report {
            span["droppedEventsCount"] = Value::from(k);
        }
        true
    }
}

#[test]
fn a_window_that_dropped_its_oldest_events_is_checked_on_what_it_kept() {
    // Cut in the middle of a rich step: its leading snapshots have lost their summary.
    let kept = corrupt("r46_c100_steps", &["--complete"], drop_oldest(5, true));
    if let Some((code, rules)) = kept {
        assert_eq!((code, rules), (0, vec![]));
    }
    // The same loss without the span saying so: snapshots before any summary break S2.
    expect(corrupt("r46_c100_steps", &["--complete"], drop_oldest(5, false)), "S2");
}

#[test]
fn timeline_steps_shows_the_summaries_and_snapshots_at_the_requests_steps() {
    let Some(dir) = fixtures() else { return };
    let o = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(["timeline", "--steps", "--request", "w49-035"])
        .arg(dir.join("r49_steps.otlp.jsonl"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    // The fixture's three rich steps of w49-035, each with its summary and the snapshot.
    for line in [
        "  step 847: running 2, waiting 8, prefill 0 req / 0 tok, decode 2 req / 2 tok, finished 0, preempted 0, KV 88.4% (8 of 69 blocks free)",
        "    this request: DECODE, computed 893, output 50, preemptions 0, scheduled 1, 56 KV blocks",
        "    this request: DECODE, computed 995, output 152, preemptions 0, scheduled 1, 63 KV blocks",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}
