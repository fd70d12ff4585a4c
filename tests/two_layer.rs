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
        let adds: Vec<_> = w
            .steps
            .iter()
            .flat_map(|it| &it.ops)
            .filter_map(|op| if let Op::Add(a) = op { Some(a) } else { None })
            .collect();
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

/// A front end over a fresh scheduler with both layers on an in-memory exporter.
fn front(
    w: &Workload,
) -> (journey_spec::ApiFront, opentelemetry_sdk::trace::InMemorySpanExporter, opentelemetry_sdk::trace::SdkTracerProvider)
{
    use opentelemetry::trace::TracerProvider as _;
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider =
        opentelemetry_sdk::trace::SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let mut s = journey_spec::Scheduler::new(w.config).unwrap();
    s.set_emitter(Some(
        journey_spec::Emitter::new(provider.tracer("vllm.scheduler")).with_profile(journey_spec::WireProfile::Head),
    ));
    let f = journey_spec::ApiFront::new(s, w).with_tracer(provider.tracer("vllm.api"));
    (f, exporter, provider)
}

fn events(span: &opentelemetry_sdk::trace::SpanData) -> Vec<String> {
    span.events.iter().map(|e| e.name.to_string()).collect()
}

const SMALL: &str = r#"{"config": {"max_num_seqs": 2, "max_num_batched_tokens": 64, "block_size": 16, "num_blocks": 16,
    "max_model_len": 64, "api_sample_rate": 1.0}, "steps": []}"#;

#[test]
fn a_request_too_long_for_the_model_is_rejected_before_any_span() {
    use journey_spec::{AddOp, Submitted};
    let w = Workload::from_json(SMALL).unwrap();
    let (mut f, exporter, _p) = front(&w);
    let add = AddOp { id: "long".into(), prompt_len: 40, max_tokens: 25, sampled: Some(true), ..AddOp::default() };
    assert_eq!(f.submit(0, 0, &add).unwrap(), Submitted::Rejected);
    f.step(0, &[], &[]).unwrap();
    assert_eq!((f.live(), f.open_spans(), f.scheduler().num_live()), (0, 0, 0));
    drop(f);
    assert!(exporter.get_finished_spans().unwrap().is_empty());
}

#[test]
fn an_open_request_ends_cleanup_only_and_a_generation_error_aborts() {
    use journey_spec::{AddOp, ApiOutcome};
    let w = Workload::from_json(SMALL).unwrap();
    let (mut f, exporter, _p) = front(&w);
    let chat = AddOp { id: "open".into(), prompt_len: 4, max_tokens: 8, sampled: Some(true), ..AddOp::default() };
    let failing = AddOp { id: "bad".into(), stream: Some(true), ..chat.clone() };
    f.submit(0, 0, &chat).unwrap();
    f.submit(0, 1, &failing).unwrap();
    f.step(0, &[], &[]).unwrap();
    f.fail("bad");
    assert_eq!(f.outcome("bad"), Some(ApiOutcome::GenerationError));
    assert_eq!(f.outcome("open"), Some(ApiOutcome::Open));
    f.cleanup();
    assert_eq!(f.outcome("open"), Some(ApiOutcome::CleanupOnly));
    assert_eq!(f.open_spans(), 0);
    let spans = exporter.get_finished_spans().unwrap();
    let api =
        |id: &str| spans.iter().find(|s| s.name == "llm_request" && s.attributes[0].value.as_str() == id).unwrap();
    assert_eq!(
        events(api("chatcmpl-bad")),
        ["api.ARRIVED", "api.HANDOFF_TO_CORE", "api.FIRST_RESPONSE_FROM_CORE", "api.ABORTED"]
    );
    assert_eq!(api("chatcmpl-bad").status, opentelemetry::trace::Status::error("Generation error"));
    assert_eq!(events(api("chatcmpl-open")), ["api.ARRIVED", "api.HANDOFF_TO_CORE"], "no terminal event");
    // The core span of the failed request ended with FINISHED(error); the open one lives on.
    let core = spans.iter().find(|s| s.name == "llm_core").unwrap();
    assert_eq!(core.events.iter().last().map(|e| e.name.as_ref()), Some("journey.FINISHED"));
}

#[test]
fn an_unsampled_request_keeps_no_state_and_its_batch_siblings_carry_no_header() {
    use journey_spec::AddOp;
    let w = Workload::from_json(SMALL).unwrap();
    let (mut f, exporter, _p) = front(&w);
    let off =
        AddOp { id: "off".into(), prompt_len: 4, max_tokens: 2, sampled: Some(false), n: Some(2), ..AddOp::default() };
    let batch = AddOp {
        id: "batch".into(),
        prompt_len: 4,
        prompts: Some(vec![4, 5, 6]),
        max_tokens: 2,
        endpoint: Some(journey_spec::Endpoint::Completions),
        sampled: Some(true),
        ..AddOp::default()
    };
    f.submit(0, 0, &off).unwrap();
    f.submit(0, 1, &batch).unwrap();
    f.step(0, &[], &[]).unwrap();
    assert_eq!(f.scheduler().num_live(), 5, "2 samples and 3 prompts reach the scheduler");
    assert_eq!(
        f.scheduler().emitter().map(journey_spec::Emitter::live),
        Some(1),
        "state for prompt 0 of the batch only"
    );
    let ids: Vec<String> = f.core_ids("batch").unwrap().iter().map(|c| c.to_string()).collect();
    assert!(ids[0].starts_with("cmpl-batch-0-") && ids[2].starts_with("cmpl-batch-2-"), "{ids:?}");
    let off_ids = f.core_ids("off").unwrap();
    assert!(off_ids[0].starts_with("0_chatcmpl-off-") && off_ids[1].starts_with("1_chatcmpl-off-"), "{off_ids:?}");
    assert_eq!(off_ids[0][2..], off_ids[1][2..], "the n children share one suffix");
    while f.scheduler().has_requests() {
        f.step(1, &[], &[]).unwrap();
    }
    drop(f);
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 2, "the batch's API span and prompt 0's core span: {spans:?}");
}
