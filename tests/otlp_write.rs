//! Spans written as OTLP JSON Lines read back as the same journeys: replaying every vLLM
//! fixture workload through the emitter into the writer reproduces the fixture file's journeys.

#[path = "common/fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;

use journey_spec::model::JourneyEvent;
use journey_spec::otel::write::{OtlpJsonWriter, SeededIds};
use journey_spec::{Emitter, Engine, Scheduler, SimClock, Workload};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

fn simulate(w: &Workload, seed: u64) -> Vec<u8> {
    let writer = OtlpJsonWriter::new(Vec::new(), 4);
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(writer.clone())
        .with_max_events_per_span(u32::MAX)
        .with_id_generator(SeededIds::new(seed))
        .with_resource(Resource::builder_empty().with_service_name("journey-test").build())
        .build();
    let clock = SimClock::new(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000));
    let mut s = Scheduler::new(w.config).unwrap();
    s.set_emitter(Some(
        Emitter::new(provider.tracer("vllm.scheduler")).with_clock(clock.clone()).with_legacy_buffer(false),
    ));
    let mut engine = Engine::new(s);
    engine.run(w, |_, _, _| clock.advance(std::time::Duration::from_millis(10))).unwrap();
    drop(engine);
    provider.shutdown().unwrap();
    writer.finish().unwrap().0
}

#[test]
fn simulated_otlp_json_reproduces_every_fixture() {
    for (name, workload, otlp) in fixtures::all() {
        let w = Workload::from_json(&std::fs::read_to_string(&workload).unwrap()).unwrap();
        let bytes = simulate(&w, 7);
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.sim.otlp.jsonl"));
        std::fs::write(&path, &bytes).unwrap();
        let ours: BTreeMap<String, Vec<JourneyEvent>> =
            fixtures::journeys(&path).into_iter().map(|(id, j)| (id, j.events)).collect();
        let theirs = fixtures::journeys(&otlp);
        if let Some(diff) = fixtures::first_difference(&ours, &theirs) {
            panic!("{name}: {diff}");
        }
        assert_eq!(bytes, simulate(&w, 7), "{name}: a simulation is byte-for-byte reproducible");
    }
}

#[test]
fn the_output_is_proto3_json_with_hex_ids_and_string_int64() {
    let w = Workload::from_json(
        r#"{"config": {"max_num_seqs": 2, "max_num_batched_tokens": 64, "block_size": 4, "num_blocks": 16, "max_model_len": 64},
            "steps": [{"ops": [{"op": "add", "id": "a", "prompt_len": 4, "max_tokens": 1,
                                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}]}]}"#,
    )
    .unwrap();
    let text = String::from_utf8(simulate(&w, 1)).unwrap();
    assert_eq!(text.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(span["parentSpanId"], "b7ad6b7169203331");
    assert_eq!(span["name"], "llm_core");
    assert_eq!(span["kind"], 1);
    assert!(span["startTimeUnixNano"].is_string());
    let step = &span["events"][1]["attributes"][2];
    assert_eq!(step["key"], "scheduler.step");
    assert_eq!(step["value"]["intValue"], "1");
    assert_eq!(v["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"], "vllm.scheduler");
}
