//! The emitter on real OpenTelemetry SDK spans, read back from the in-memory exporter: the
//! fork's test expectations (PR #1–#4), a RESUME test, every termination path, defensive
//! behaviour, event limits, and vLLM fidelity of the exported spans.

mod common;

#[path = "common/fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::time::Duration;

use journey_spec::model::{EventKind, FinishStatus, JourneyEvent, Phase, ScheduleKind, Step, Verdict};
use journey_spec::otel::span_data::{SpanJourney, journey_of};
use journey_spec::wire::keys;
use journey_spec::{Emitter, Engine, FinishReason, NewRequest, Scheduler, SchedulerConfig, TickClock, Workload};
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SdkTracerProvider, Span, SpanData, SpanExporter, SpanProcessor,
};

/// A scheduler whose emitter writes to a local SDK provider with an in-memory exporter.
struct Traced {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    s: Scheduler,
}

fn config() -> SchedulerConfig {
    common::small_config()
}

fn traced_with(config: SchedulerConfig, builder: opentelemetry_sdk::trace::TracerProviderBuilder) -> Traced {
    let exporter = InMemorySpanExporter::default();
    let provider = builder.with_simple_exporter(exporter.clone()).build();
    let mut s = Scheduler::new(config).expect("config");
    s.set_emitter(Some(Emitter::new(provider.tracer("vllm.scheduler")).with_clock(TickClock::default())));
    Traced { exporter, _provider: provider, s }
}

fn traced(config: SchedulerConfig) -> Traced {
    traced_with(config, SdkTracerProvider::builder().with_max_events_per_span(100_000))
}

impl Traced {
    fn spans(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().expect("exporter")
    }

    /// Exported journeys by request id; each id must have exactly one span.
    fn journeys(&self) -> BTreeMap<String, SpanJourney> {
        let mut out = BTreeMap::new();
        for span in self.spans() {
            let j = journey_of(&span).expect("every exported span is a journey");
            let id = j.request_id.to_string();
            assert!(out.insert(id.clone(), j).is_none(), "request {id} has two spans (ended twice?)");
        }
        out
    }

    /// The exported events of every request, by request id.
    fn decoded_journeys(&self) -> BTreeMap<String, Vec<JourneyEvent>> {
        self.journeys().into_iter().map(|(id, j)| (id, j.decoded().cloned().collect())).collect()
    }

    /// A fresh emitter on the same provider (test clock), with the legacy buffer on or off.
    fn with_legacy_buffer(mut self, on: bool) -> Traced {
        let tracer = self._provider.tracer("vllm.scheduler");
        self.s.set_emitter(Some(Emitter::new(tracer).with_clock(TickClock::default()).with_legacy_buffer(on)));
        self
    }

    fn events(&self, id: &str) -> Vec<JourneyEvent> {
        self.journeys()[id].decoded().cloned().collect()
    }

    fn add(&mut self, id: &str, prompt: u64, max: u64) {
        self.s.add_request(NewRequest::new(id, prompt, max)).expect("add");
    }

    fn step(&mut self, eos: &[&str]) {
        self.s.schedule();
        self.s.update_from_output(|id| eos.contains(&id));
    }

    /// The live-span events of a request, read through the emitter's buffer.
    fn buffered(&mut self) -> BTreeMap<String, Vec<JourneyEvent>> {
        let mut out: BTreeMap<String, Vec<JourneyEvent>> = BTreeMap::new();
        if let Some(e) = self.s.emitter_mut() {
            for b in e.drain() {
                out.entry(b.request_id.to_string()).or_default().push(b.event);
            }
        }
        out
    }
}

fn kinds(events: &[JourneyEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match (e.schedule_kind, e.finish_status) {
            (Some(k), _) => format!("{}({k})", e.kind),
            (_, Some(s)) => format!("{}({s})", e.kind),
            _ => e.kind.to_string(),
        })
        .collect()
}

#[test]
fn queued_at_step_0_with_phase_waiting_then_scheduled_first_at_step_1() {
    let mut t = traced(config());
    t.add("r", 10, 10);
    t.step(&[]);
    t.s.finish_requests(["r"], FinishReason::Aborted, None);
    let ev = t.events("r");
    assert_eq!(kinds(&ev), ["QUEUED", "SCHEDULED(FIRST)", "FIRST_TOKEN", "FINISHED(aborted)"]);
    let q = &ev[0];
    assert_eq!((q.step, q.phase, q.num_preemptions), (Step(0), Phase::Waiting, 0));
    assert_eq!((q.progress.prefill_done, q.progress.prefill_total, q.progress.decode_done), (0, 10, 0));
    let s = &ev[1];
    assert_eq!(
        (s.step, s.phase, s.schedule_kind, s.num_preemptions),
        (Step(1), Phase::Prefill, Some(ScheduleKind::First), 0)
    );
    assert_eq!(s.progress.prefill_done, 0, "SCHEDULED reports the mark from before its step's work");
}

#[test]
fn the_core_span_has_the_fork_shape_and_complete_typed_attributes() {
    let mut t = traced(config());
    t.add("r", 10, 1);
    t.step(&[]);
    let spans = t.spans();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.name, "llm_core");
    assert_eq!(span.span_kind, SpanKind::Internal);
    assert_eq!(span.instrumentation_scope.name(), "vllm.scheduler");
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID, "no traceparent: a root span");
    let attrs: Vec<_> = span.attributes.iter().map(|kv| (kv.key.as_str().to_owned(), kv.value.clone())).collect();
    assert_eq!(attrs, [(keys::REQUEST_ID.to_owned(), Value::from("r"))]);
    let names: Vec<_> = span.events.iter().map(|e| e.name.to_string()).collect();
    assert_eq!(names, ["journey.QUEUED", "journey.SCHEDULED", "journey.FIRST_TOKEN", "journey.FINISHED"]);
    for e in span.events.iter() {
        let get = |k: &str| e.attributes.iter().find(|kv| kv.key.as_str() == k).map(|kv| kv.value.clone());
        for key in keys::MANDATORY {
            assert!(get(key).is_some(), "{} lacks {key}", e.name);
        }
        assert!(matches!(get(keys::EVENT_TYPE), Some(Value::String(_))));
        assert!(matches!(get(keys::TS_MONOTONIC), Some(Value::F64(_))));
        assert!(matches!(get(keys::PHASE), Some(Value::String(_))));
        for key in [
            keys::SCHEDULER_STEP,
            keys::PREFILL_DONE,
            keys::PREFILL_TOTAL,
            keys::DECODE_DONE,
            keys::DECODE_MAX,
            keys::NUM_PREEMPTIONS,
        ] {
            assert!(matches!(get(key), Some(Value::I64(_))), "{key} on {} is not an int", e.name);
        }
        assert_eq!(get(keys::SCHEDULE_KIND).is_some(), e.name == "journey.SCHEDULED");
        assert_eq!(get(keys::FINISH_STATUS).is_some(), e.name == "journey.FINISHED");
        assert!(e.timestamp >= span.start_time && e.timestamp <= span.end_time);
    }
}

#[test]
fn first_token_once_on_the_zero_to_one_transition() {
    let mut t = traced(config());
    t.add("r", 4, 5);
    for _ in 0..5 {
        t.step(&[]);
    }
    let ev = t.events("r");
    assert_eq!(ev.iter().filter(|e| e.kind == EventKind::FirstToken).count(), 1);
    let ft = ev.iter().find(|e| e.kind == EventKind::FirstToken).unwrap();
    assert_eq!((ft.step, ft.phase, ft.progress.decode_done, ft.progress.prefill_done), (Step(1), Phase::Decode, 1, 4));
    let fin = ev.last().unwrap();
    assert_eq!((fin.finish_status, fin.step, fin.progress.decode_done), (Some(FinishStatus::Length), Step(5), 5));
}

#[test]
fn finished_on_natural_completion_ends_the_span_exactly_once() {
    let mut t = traced(config());
    t.add("eos", 4, 10);
    t.add("cap", 4, 2);
    t.step(&[]);
    t.step(&["eos"]);
    assert_eq!(t.s.emitter().unwrap().live(), 0);
    let j = t.journeys(); // asserts one span per id
    assert_eq!(j["eos"].decoded().last().unwrap().finish_status, Some(FinishStatus::Stopped));
    assert_eq!(j["cap"].decoded().last().unwrap().finish_status, Some(FinishStatus::Length));
    assert_eq!(t.spans().len(), 2);
}

/// Two requests of 20 tokens each plus one of 20 fill 15 of 16 blocks; the third is preempted
/// when the first two grow.
fn preempting() -> Traced {
    preempting_on(traced(config()))
}

fn preempting_on(mut t: Traced) -> Traced {
    for id in ["a", "b", "c"] {
        t.add(id, 20, 6);
    }
    t
}

#[test]
fn preempted_carries_the_count_and_resume_is_labelled_resume() {
    let mut t = preempting();
    for _ in 0..12 {
        t.step(&[]);
    }
    let ev = t.events("c");
    let k = kinds(&ev);
    assert_eq!(&k[..4], ["QUEUED", "SCHEDULED(FIRST)", "FIRST_TOKEN", "PREEMPTED"]);
    let p = &ev[3];
    assert_eq!((p.num_preemptions, p.step, p.phase), (1, Step(2), Phase::Decode));
    assert_eq!(p.progress.prefill_done, 20, "the mark survives preemption");
    let r = ev.iter().find(|e| e.schedule_kind == Some(ScheduleKind::Resume)).expect("c resumed");
    assert!(r.step > p.step);
    assert_eq!((r.num_preemptions, r.phase, r.progress.decode_done), (1, Phase::Decode, 1));
    assert_eq!(ev.last().unwrap().finish_status, Some(FinishStatus::Length));
    assert!(
        journey_of(&t.spans().into_iter().find(|s| journey_of(s).unwrap().request_id.as_str() == "c").unwrap())
            .unwrap()
            .check()
            .is_conforming()
    );
}

#[test]
fn prefill_mark_survives_preemption_during_prefill() {
    let cfg = SchedulerConfig { max_num_batched_tokens: 8, num_blocks: 6, ..config() };
    let mut t = traced(cfg);
    t.add("a", 12, 4);
    t.add("b", 12, 4);
    for _ in 0..30 {
        if !t.s.has_requests() {
            break;
        }
        t.step(&[]);
    }
    for (id, j) in t.journeys() {
        assert!(j.check().is_conforming(), "{id}");
    }
    // Some request was preempted with part of its prompt done, and resumed reporting that mark.
    let any = t.journeys().into_values().any(|j| {
        let ev: Vec<_> = j.decoded().cloned().collect();
        ev.windows(2).any(|w| {
            w[0].kind == EventKind::Preempted
                && w[0].phase == Phase::Prefill
                && w[0].progress.prefill_done > 0
                && w[1].schedule_kind == Some(ScheduleKind::Resume)
                && w[1].progress.prefill_done == w[0].progress.prefill_done
        })
    });
    assert!(any, "no preemption during prefill happened");
}

#[test]
fn every_termination_path_ends_the_span_once_and_cleans_up() {
    // (path, how to reach it)
    type Path = (&'static str, fn(&mut Traced));
    let paths: [Path; 11] = [
        ("natural stop (EOS)", |t| {
            t.add("r", 4, 8);
            t.step(&["r"]);
        }),
        ("length cap (max_tokens)", |t| {
            t.add("r", 4, 1);
            t.step(&[]);
        }),
        ("length cap (max_model_len)", |t| {
            t.add("r", 62, 50);
            t.step(&[]);
            t.step(&[]);
        }),
        ("abort while waiting", |t| {
            t.add("r", 4, 8);
            t.s.finish_requests(["r"], FinishReason::Aborted, None);
        }),
        ("abort while running", |t| {
            t.add("r", 4, 8);
            t.step(&[]);
            t.s.finish_requests(["r"], FinishReason::Aborted, None);
        }),
        ("abort while preempted", |t| {
            for id in ["a", "b", "r"] {
                t.add(id, 20, 30);
            }
            t.step(&[]);
            t.step(&[]); // r preempted
            t.s.finish_requests(["r", "a", "b"], FinishReason::Aborted, None);
        }),
        ("error", |t| {
            t.add("r", 4, 8);
            t.step(&[]);
            t.s.finish_requests(["r"], FinishReason::Error, Some(Step(1)));
        }),
        ("ignored", |t| {
            t.add("r", 4, 8);
            t.s.finish_requests(["r"], FinishReason::Ignored, None);
        }),
        ("in-flight abort", |t| {
            t.add("r", 4, 8);
            t.s.schedule();
            t.s.finish_requests(["r"], FinishReason::Aborted, None);
            t.s.update_from_output(|_| true);
        }),
        ("reset, then abort", |t| {
            t.add("r", 4, 8);
            t.step(&[]);
            t.s.reset();
            t.s.finish_requests(["r"], FinishReason::Aborted, None);
        }),
        ("abort twice (idempotent)", |t| {
            t.add("r", 4, 8);
            t.s.finish_requests(["r"], FinishReason::Aborted, None);
            t.s.finish_requests(["r"], FinishReason::Aborted, None);
            t.s.finish_requests(["r"], FinishReason::Error, None);
        }),
    ];
    for (name, path) in paths {
        let mut t = traced(config());
        path(&mut t);
        assert_eq!(t.s.emitter().unwrap().live(), 0, "{name}: tracing state left behind");
        let journeys = t.journeys(); // one span per id: ended exactly once
        let j = journeys.get("r").unwrap_or_else(|| panic!("{name}: span not ended"));
        let ev: Vec<_> = j.decoded().cloned().collect();
        assert_eq!(ev.last().map(|e| e.kind), Some(EventKind::Finished), "{name}");
        assert_eq!(j.check(), Verdict::Conforming, "{name}: {:?}", kinds(&ev));
        assert!(j.span.end_unix_nano >= ev.last().unwrap().time_unix_nano, "{name}: ended before FINISHED");
    }
}

#[test]
fn dropping_the_scheduler_ends_open_spans() {
    let mut t = traced(config());
    t.add("r", 4, 8);
    t.step(&[]);
    let Traced { exporter, _provider, s } = t;
    drop(s);
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    let j = journey_of(&spans[0]).unwrap();
    assert!(matches!(j.check(), Verdict::Violating(v) if v[0].rule == journey_spec::model::RuleId::EndsFinished));
    // The emitter ended it, on its own clock (the test clock starts in 2025), not the SDK on drop.
    let year_2026 = std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    assert!(spans[0].end_time < year_2026, "{:?}", spans[0].end_time);
}

#[test]
fn the_parent_context_from_traceparent_is_honoured() {
    let mut t = traced(config());
    let tp = "00-1234567890abcdef1234567890abcdef-fedcba9876543210-01";
    let mut child = NewRequest::new("child", 4, 1).traceparent(tp);
    if let Some(headers) = child.trace.as_mut() {
        headers.tracestate = Some("vendor=value".to_owned());
    }
    t.s.add_request(child).unwrap();
    t.add("root", 4, 1);
    t.step(&[]);
    let spans = t.spans();
    let child = spans.iter().find(|s| journey_of(s).unwrap().request_id.as_str() == "child").unwrap();
    assert_eq!(child.span_context.trace_id().to_string(), "1234567890abcdef1234567890abcdef");
    assert_eq!(child.parent_span_id.to_string(), "fedcba9876543210");
    assert!(child.parent_span_is_remote);
    assert_eq!(child.span_context.trace_state().header(), "vendor=value", "tracestate is propagated");
    let root = spans.iter().find(|s| journey_of(s).unwrap().request_id.as_str() == "root").unwrap();
    assert_eq!(root.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    // A malformed traceparent is ignored: the span becomes a root.
    let mut t = traced(config());
    t.s.add_request(NewRequest::new("bad", 4, 1).traceparent("00-zz-01")).unwrap();
    t.step(&[]);
    assert_eq!(t.spans()[0].parent_span_id, opentelemetry::trace::SpanId::INVALID);
}

#[test]
fn no_span_without_a_tracer_but_the_legacy_buffer_works() {
    let mut s = Scheduler::new(config()).unwrap();
    s.set_emitter(Some(Emitter::without_tracer()));
    s.add_request(NewRequest::new("r", 4, 1)).unwrap();
    s.schedule();
    s.update_from_output(|_| false);
    assert_eq!(s.emitter().unwrap().buffered().len(), 4, "the events wait in the buffer until drained");
    let buffered: Vec<_> = s.emitter_mut().unwrap().drain().map(|b| b.event.kind).collect();
    assert!(s.emitter().unwrap().buffered().is_empty());
    assert_eq!(buffered, [EventKind::Queued, EventKind::Scheduled, EventKind::FirstToken, EventKind::Finished]);
    assert_eq!(s.emitter().unwrap().live(), 0);
}

#[test]
fn with_the_legacy_buffer_off_spans_still_carry_every_event() {
    let run = |buffer: bool| {
        let mut t = preempting_on(traced(config()).with_legacy_buffer(buffer));
        for _ in 0..12 {
            t.step(&[]);
        }
        assert_eq!(t.s.emitter().unwrap().buffered().is_empty(), !buffer);
        t.decoded_journeys()
    };
    let (off, on) = (run(false), run(true));
    assert_eq!(off.len(), 3);
    assert!(kinds(&off["c"]).contains(&"SCHEDULED(RESUME)".to_owned()), "{:?}", kinds(&off["c"]));
    assert!(off == on, "the buffer changed what the spans carry");
}

#[test]
fn a_sampled_out_span_without_the_buffer_costs_no_state() {
    let mut t =
        traced_with(config(), SdkTracerProvider::builder().with_sampler(Sampler::AlwaysOff)).with_legacy_buffer(false);
    t.add("r", 4, 2);
    t.step(&[]);
    assert_eq!(t.s.emitter().unwrap().live(), 1, "the request is tracked while live");
    t.step(&[]);
    assert!(t.spans().is_empty());
    assert!(t.s.emitter().unwrap().buffered().is_empty());
    assert_eq!(t.s.emitter().unwrap().live(), 0);
}

/// A wall clock that steps backwards on every read, as an NTP step would.
#[cfg(debug_assertions)]
struct BackwardsWallClock(std::sync::atomic::AtomicU64);

#[cfg(debug_assertions)]
impl journey_spec::Clock for BackwardsWallClock {
    fn wall(&self) -> std::time::SystemTime {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::time::UNIX_EPOCH + Duration::from_secs(1_000_000) - Duration::from_millis(n)
    }

    fn monotonic(&self) -> f64 {
        0.0
    }
}

/// Debug builds feed every event through the model: an event stamped before its span started
/// (R7) stops the test run at the event, not later in a trace checker.
#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "the emitter produced an event the model rejects")]
fn the_debug_self_check_rejects_an_event_before_its_span_start() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter).build();
    let mut s = Scheduler::new(config()).unwrap();
    let clock = BackwardsWallClock(std::sync::atomic::AtomicU64::new(0));
    s.set_emitter(Some(Emitter::new(provider.tracer("vllm.scheduler")).with_clock(clock)));
    let _ = s.add_request(NewRequest::new("r", 4, 1));
}

#[test]
fn the_buffered_stream_equals_the_span_stream() {
    let text = std::fs::read_to_string(fixtures::all()[1].1.clone()).unwrap(); // kv_pressure
    let w = Workload::from_json(&text).unwrap();
    let mut t = traced(w.config);
    let mut buffered: BTreeMap<String, Vec<JourneyEvent>> = BTreeMap::new();
    let mut engine = Engine::new(std::mem::replace(&mut t.s, Scheduler::new(config()).unwrap()));
    engine
        .run(&w, |_, _, s| {
            for b in s.emitter_mut().unwrap().drain() {
                buffered.entry(b.request_id.to_string()).or_default().push(b.event);
            }
        })
        .unwrap();
    let spans = t.decoded_journeys();
    assert_eq!(spans.len(), 150);
    assert!(spans == buffered, "span and buffer streams differ");
}

#[test]
fn exported_spans_reproduce_the_vllm_fixtures_including_parents() {
    for (name, workload, otlp) in fixtures::all() {
        let w = Workload::from_json(&std::fs::read_to_string(&workload).unwrap()).unwrap();
        let mut t = traced(w.config);
        let mut engine = Engine::new(std::mem::replace(&mut t.s, Scheduler::new(config()).unwrap()));
        engine.run(&w, |_, _, _| {}).unwrap();
        let ours = t.decoded_journeys();
        let theirs = fixtures::journeys(&otlp);
        if let Some(diff) = fixtures::first_difference(&ours, &theirs) {
            panic!("{name}: {diff}");
        }
        // Spans with a traceparent continue the caller's trace, as in the fixtures.
        for span in t.spans() {
            let j = journey_of(&span).unwrap();
            let fx = &theirs[j.request_id.as_str()];
            if !fx.parent_span_id.is_empty() {
                assert_eq!(j.trace_id.to_string(), fx.trace_id, "{name}");
                assert_eq!(j.parent_span_id.to_string(), fx.parent_span_id, "{name}");
            }
            assert_eq!(j.check(), Verdict::Conforming, "{name} {}", j.request_id);
        }
    }
}

#[test]
fn under_a_tiny_event_limit_spans_are_incomplete_and_the_buffer_is_whole() {
    let mut t = traced_with(config(), SdkTracerProvider::builder().with_max_events_per_span(2));
    t.add("r", 4, 3);
    for _ in 0..3 {
        t.step(&[]);
    }
    let buffered = t.buffered();
    assert_eq!(kinds(&buffered["r"]), ["QUEUED", "SCHEDULED(FIRST)", "FIRST_TOKEN", "FINISHED(length)"]);
    let spans = t.spans();
    assert_eq!(spans.len(), 1, "the span still ends");
    assert_eq!(spans[0].events.len(), 2);
    assert_eq!(spans[0].events.dropped_count, 2, "the Rust SDK drops the newest events, FINISHED included");
    let j = journey_of(&spans[0]).unwrap();
    assert_eq!(j.check(), Verdict::Incomplete { dropped_events: 2 });
}

// ---- Defensive behaviour -------------------------------------------------------------------

#[derive(Debug)]
struct PanickingProcessor {
    on_start: bool,
    on_end: bool,
}

impl SpanProcessor for PanickingProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {
        if self.on_start {
            panic!("span processor panics in on_start (test)");
        }
    }
    fn on_end(&self, _span: SpanData) {
        if self.on_end {
            panic!("span processor panics in on_end (test)");
        }
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[derive(Debug)]
struct BrokenExporter {
    panics: bool,
}

impl SpanExporter for BrokenExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        if self.panics {
            panic!("exporter panics (test)");
        }
        Err(OTelSdkError::InternalFailure("the collector is down (test)".into()))
    }
}

/// Everything the scheduler decided in a run, as text: identical runs, identical text.
fn decisions(w: &Workload, emitter: Option<Emitter>) -> (String, u64) {
    let mut s = Scheduler::new(w.config).unwrap();
    s.set_emitter(emitter);
    let mut log = String::new();
    let mut engine = Engine::new(s);
    engine
        .run(w, |k, done, s| {
            let out = s.last_step();
            let upd = s.last_update();
            log.push_str(&format!(
                "{k} {done:?} {} {:?} {:?} {:?} {:?}\n",
                out.step,
                out.scheduled.iter().map(|x| (x.handle, x.tokens, x.admitted)).collect::<Vec<_>>(),
                out.preempted,
                upd.sampled,
                upd.finished.iter().map(|f| (&*f.id, f.status, f.step)).collect::<Vec<_>>()
            ));
        })
        .unwrap();
    let contained = engine.scheduler().emitter().map_or(0, |e| e.contained_panics());
    (log, contained)
}

#[test]
fn a_broken_pipeline_never_changes_scheduling() {
    // The contained panics print their messages (captured by the test harness): expected.
    let text = std::fs::read_to_string(&fixtures::all()[7].1).unwrap(); // w6: preemptions, aborts
    let w = Workload::from_json(&text).unwrap();
    let (baseline, _) = decisions(&w, None);
    let tracer = |b: opentelemetry_sdk::trace::TracerProviderBuilder| {
        let p = b.build();
        let t = p.tracer("vllm.scheduler");
        (p, t)
    };
    let mut variants: Vec<(&str, Option<Emitter>, Option<SdkTracerProvider>)> =
        vec![("buffer only", Some(Emitter::without_tracer()), None)];
    let exporter = InMemorySpanExporter::default();
    for (name, builder) in [
        ("healthy", SdkTracerProvider::builder().with_simple_exporter(exporter.clone())),
        (
            "panicking on_start",
            SdkTracerProvider::builder().with_span_processor(PanickingProcessor { on_start: true, on_end: false }),
        ),
        (
            "panicking on_end",
            SdkTracerProvider::builder().with_span_processor(PanickingProcessor { on_start: false, on_end: true }),
        ),
        ("failing exporter", SdkTracerProvider::builder().with_simple_exporter(BrokenExporter { panics: false })),
        ("panicking exporter", SdkTracerProvider::builder().with_simple_exporter(BrokenExporter { panics: true })),
        (
            "sampled out",
            SdkTracerProvider::builder().with_sampler(Sampler::AlwaysOff).with_simple_exporter(exporter.clone()),
        ),
    ] {
        let (p, t) = tracer(builder);
        variants.push((name, Some(Emitter::new(t)), Some(p)));
    }
    let (shut, t) = tracer(SdkTracerProvider::builder().with_simple_exporter(InMemorySpanExporter::default()));
    shut.shutdown().unwrap();
    variants.push(("shut-down provider", Some(Emitter::new(t)), None));
    let mut contained = BTreeMap::new();
    for (name, emitter, _provider) in variants {
        let (log, panics) = decisions(&w, emitter);
        assert!(log == baseline, "{name}: scheduling changed");
        contained.insert(name, panics);
    }
    assert_eq!(contained["healthy"], 0);
    assert!(contained["panicking on_start"] > 0);
    assert!(contained["panicking on_end"] > 0);
    assert!(contained["panicking exporter"] > 0);
    assert_eq!(contained["failing exporter"], 0, "an exporter error is not a panic");
}

#[test]
fn a_sampled_out_span_emits_nothing() {
    let mut t = traced_with(config(), SdkTracerProvider::builder().with_sampler(Sampler::AlwaysOff));
    t.add("r", 4, 2);
    t.step(&[]);
    t.step(&[]);
    assert!(t.spans().is_empty());
    assert_eq!(t.s.emitter().unwrap().live(), 0);
}

#[test]
fn a_panicking_caller_closure_leaves_the_emitter_attached() {
    // The scheduler moves the emitter out while it works; a panic in the caller's `is_eos`
    // must not lose it.
    let mut t = traced(config());
    t.add("r", 4, 2);
    t.s.schedule();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.s.update_from_output(|_| panic!("is_eos panics (test)"));
    }));
    assert!(panicked.is_err());
    assert_eq!(t.s.emitter().map(|e| e.live()), Some(1), "the emitter and its span survive");
}
