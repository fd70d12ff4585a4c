//! Two-layer runs (`SPEC.md` §8.1, §9): the workload files of the fork's HEAD fixtures
//! (`../shared/fixtures/vllm-head/`, beside this checkout; skipped when absent).

#[path = "common/head.rs"]
mod head;

use head::{RUNS, first_difference, head_fixtures, reduce};
use journey_spec::{Op, Workload};

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

fn simulate_head(w: &Workload) -> String {
    use journey_spec::WireProfile;
    use journey_spec::otel::simulate::{SimulateOptions, simulate};
    let options = SimulateOptions { wire_profile: WireProfile::Head, ..SimulateOptions::default() };
    let (bytes, _) = simulate(w, Vec::new(), &options, |_| {}).unwrap();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn simulating_every_head_workload_writes_the_forks_spans_event_for_event() {
    let Some(dir) = head_fixtures() else { return };
    let mut failures = Vec::new();
    for name in RUNS {
        let w = Workload::from_file(dir.join(format!("{name}.workload.json"))).unwrap();
        let theirs = reduce(&std::fs::read_to_string(dir.join(format!("{name}.otlp.jsonl"))).unwrap());
        let ours = reduce(&simulate_head(&w));
        let events: usize = ours.values().map(|s| s.events.len()).sum();
        match first_difference(&theirs, &ours) {
            None => println!("{name}: {} spans, {events} events: identical", ours.len()),
            Some(d) => failures.push(format!("{name}: {d}")),
        }
    }
    assert!(failures.is_empty(), "spans differ from the fork's:\n{}", failures.join("\n"));
}

#[test]
fn a_two_layer_workload_under_the_seed_profile_is_refused() {
    use journey_spec::otel::simulate::{SimulateError, SimulateOptions, simulate};
    let w = Workload::from_json(
        r#"{"config": {"max_num_seqs": 2, "max_num_batched_tokens": 64, "block_size": 16, "num_blocks": 8,
            "max_model_len": 128}, "steps": [{"ops": [{"op": "add", "id": "r", "prompt_len": 4, "max_tokens": 2,
            "stream": true}]}]}"#,
    )
    .unwrap();
    let e = simulate(&w, Vec::new(), &SimulateOptions::default(), |_| {}).unwrap_err();
    assert!(matches!(e, SimulateError::TwoLayerNeedsHead), "{e}");
    assert!(!simulate_head(&w).is_empty());
}
