//! Two-layer runs (`SPEC.md` §8.1, §9): the workload files of the fork's HEAD fixtures
//! (`../shared/fixtures/vllm-head/`, beside this checkout; skipped when absent).

use std::path::{Path, PathBuf};

use journey_spec::{Op, Workload};

/// The fixture directory, if it is beside this checkout.
fn head_fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/vllm-head");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: ../shared/fixtures/vllm-head is not beside this checkout");
        None
    }
}

const RUNS: [&str; 7] = ["api_basic", "api_r41", "api_r42", "api_r43", "api_r45", "api_atomicity2", "r28"];

#[test]
fn every_head_workload_reads_and_round_trips() {
    let Some(dir) = head_fixtures() else { return };
    for name in RUNS {
        let w = Workload::from_file(dir.join(format!("{name}.workload.json"))).unwrap();
        assert_eq!(w.is_two_layer(), name != "r28", "{name}");
        let adds: Vec<_> =
            w.steps.iter().flat_map(|it| &it.ops).filter_map(|op| if let Op::Add(a) = op { Some(a) } else { None }).collect();
        assert!(adds.iter().all(|a| a.sampled.is_some()), "{name}: every add records `sampled`");
        assert_eq!(Workload::from_json(&w.to_json()).unwrap(), w, "{name}");
    }
}
