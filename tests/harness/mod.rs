//! The model-checking harness: the system under test is the reference scheduler with the
//! emitter on a real `SdkTracerProvider` and `InMemorySpanExporter`, driven operation by
//! operation; after every operation it checks everything `SPEC.md` §7 lists.
//!
//! Independently of the emitter, a [`Projection`] re-derives from the scheduler's own outputs
//! (admissions, preemptions, tokens, finishes) every event each request must have, with every
//! attribute; exported spans must equal it. Two more schedulers run the same operations in
//! lockstep — one without tracing, one whose pipeline panics and fails — and every decision of
//! the three must be identical.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use journey_spec::model::steps::StepEvent;
use journey_spec::model::{
    InstanceChecker, JourneyChecker, JourneyEvent, Label, Profile, Progress, RequestId, SpanInfo, Step, StepChecker,
    Verdict,
};
use journey_spec::otel::span_data::{SpanJourney, journey_of, window_of};
use journey_spec::{
    AddError, AddOp, Emitter, FinishOp, FinishReason, Finished, Handle, InFlight, Iteration, NewRequest, Op, Scheduler,
    SchedulerConfig, Share, StepOutput, StepTracer, StepTracing, TickClock, UpdateOutput, Workload,
};
use opentelemetry::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, Span, SpanData, SpanExporter, SpanProcessor};

/// Panics raised on purpose by the broken pipeline carry this marker; the harness's panic hook
/// keeps them quiet.
pub const MARKER: &str = "deliberate panic (harness)";

/// Installs, once per test binary, a panic hook that silences the broken pipeline's deliberate
/// panics and reports every other panic as usual.
pub fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
            if msg != Some(MARKER) {
                default(info);
            }
        }));
    });
}

/// A span processor that panics in `on_start` every 5th span and in `on_end` every 3rd.
///
/// When `on_start` panics, the SDK drops the half-built span while unwinding, which calls
/// `on_end`; a second panic there would abort the process (no Rust code can contain a panic in
/// a destructor during unwinding). Such spans are marked and spared in `on_end`.
#[derive(Debug, Default)]
struct FlakyProcessor {
    started: AtomicU64,
    ended: AtomicU64,
}

const POISONED: &str = "harness.on_start_panicked";

impl SpanProcessor for FlakyProcessor {
    fn on_start(&self, span: &mut Span, _cx: &Context) {
        if self.started.fetch_add(1, Ordering::Relaxed) % 5 == 4 {
            use opentelemetry::trace::Span as _;
            span.set_attribute(opentelemetry::KeyValue::new(POISONED, true));
            std::panic::panic_any(MARKER);
        }
    }
    fn on_end(&self, span: SpanData) {
        let poisoned = span.attributes.iter().any(|kv| kv.key.as_str() == POISONED);
        if !poisoned && self.ended.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
            std::panic::panic_any(MARKER);
        }
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// An exporter whose collector is always down.
#[derive(Debug)]
struct DownExporter;

impl SpanExporter for DownExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Err(OTelSdkError::InternalFailure("collector down (harness)".into()))
    }
}

/// One request's life as the projection sees it.
#[derive(Debug, Clone)]
struct Incarnation {
    id: String,
    prompt: u64,
    max: u64,
    outputs: u64,
    preemptions: u64,
    computed: u64,
    hiwater: u64,
    finished: bool,
    /// Events implied by the scheduler's outputs (clocks left at zero).
    expected: Vec<JourneyEvent>,
    /// Events drained from the emitter's legacy buffer (with clocks).
    buffered: Vec<JourneyEvent>,
}

impl Incarnation {
    fn push(&mut self, label: Label, step: Step) {
        let progress = Progress {
            prefill_done: self.hiwater.min(self.prompt),
            prefill_total: self.prompt,
            decode_done: self.outputs,
            decode_max: self.max,
        };
        self.expected.push(JourneyEvent::new(label, step, progress, self.preemptions));
    }
}

/// The events every request must have, re-derived from the scheduler's outputs alone.
#[derive(Debug, Default)]
pub struct Projection {
    incarnations: Vec<Incarnation>,
    live: HashMap<Handle, usize>,
}

impl Projection {
    fn added(&mut self, h: Handle, req: &NewRequest, step: Step) {
        let mut inc = Incarnation {
            id: req.id.0.clone(),
            prompt: req.prompt_len,
            max: req.max_tokens,
            outputs: 0,
            preemptions: 0,
            computed: 0,
            hiwater: 0,
            finished: false,
            expected: Vec::new(),
            buffered: Vec::new(),
        };
        inc.push(Label::Queued, step);
        self.live.insert(h, self.incarnations.len());
        self.incarnations.push(inc);
    }

    fn get(&mut self, h: Handle) -> &mut Incarnation {
        let i = *self.live.get(&h).unwrap_or_else(|| panic!("the scheduler reported {h:?}, which is not live"));
        &mut self.incarnations[i]
    }

    fn preempted(&mut self, h: Handle, step: Step) {
        let inc = self.get(h);
        inc.preemptions += 1;
        inc.computed = 0;
        inc.push(Label::Preempted, step);
    }

    fn scheduled(&mut self, out: &StepOutput) {
        for &h in &out.preempted {
            self.preempted(h, out.step);
        }
        for s in &out.scheduled {
            if let Some(kind) = s.admitted {
                self.get(s.handle).push(Label::Scheduled(kind), out.step);
            }
        }
        for s in &out.scheduled {
            let inc = self.get(s.handle);
            inc.computed += s.tokens;
            if inc.outputs == 0 {
                inc.hiwater = inc.hiwater.max(inc.computed.min(inc.prompt));
            }
        }
    }

    fn updated(&mut self, upd: &UpdateOutput) {
        for &(h, first) in &upd.sampled {
            let inc = self.get(h);
            inc.outputs += 1;
            assert_eq!(first, inc.outputs == 1, "{}: first-token flag", inc.id);
            if first {
                inc.push(Label::FirstToken, upd.step);
            }
        }
        self.finished(&upd.finished);
    }

    fn finished(&mut self, done: &[Finished]) {
        for f in done {
            let inc = self.get(f.handle);
            assert_eq!(&*f.id, inc.id, "finished id");
            inc.push(Label::Finished(f.status), f.step);
            inc.finished = true;
            self.live.remove(&f.handle);
        }
    }
}

/// Events one per line, for failure messages.
fn show(events: &[JourneyEvent]) -> String {
    events.iter().enumerate().map(|(i, e)| format!("    #{i:03} {e}\n")).collect()
}

/// Fails with both event lists when they differ.
fn same(what: &str, id: &str, got: &[JourneyEvent], want: &[JourneyEvent]) {
    if got != want {
        panic!("{what} of request {id} differ\n  expected:\n{}  got:\n{}", show(want), show(got));
    }
}

/// The fields the projection fixes (all but the clocks).
fn essence(e: &JourneyEvent) -> JourneyEvent {
    JourneyEvent { ts_monotonic: 0.0, time_unix_nano: None, ..e.clone() }
}

/// The system under test.
pub struct Sut {
    /// The scheduler with the emitter on a healthy SDK pipeline.
    pub s: Scheduler,
    plain: Scheduler,
    broken: Scheduler,
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _broken_provider: SdkTracerProvider,
    pub projection: Projection,
    /// Exported spans already checked.
    checked: usize,
    /// Ids ever added (for operations that pick one).
    pub added: Vec<String>,
    /// The run so far as a workload file.
    steps: Vec<Iteration>,
    pending: Iteration,
    /// Ops applied (for messages).
    pub applied: usize,
    /// Async scheduling: the EOS ids fixed for each batch in flight, oldest first.
    eos_in_flight: VecDeque<Vec<String>>,
    /// Requests aborted by the drain because of vLLM's stale-placeholder stall.
    pub stalls: usize,
    /// The emitter's clock, which the step tracer shares.
    clock: TickClock,
    /// Step windows, when on: their exporter and provider, and per step what `schedule()`
    /// decided (scheduled tokens, preemptions, running depth).
    windows: Option<(InMemorySpanExporter, SdkTracerProvider)>,
    step_log: HashMap<u64, (u64, u64, u64)>,
}

impl Sut {
    pub fn new(config: SchedulerConfig) -> Sut {
        quiet_deliberate_panics();
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .with_max_events_per_span(1_000_000)
            .build();
        let broken_provider = SdkTracerProvider::builder()
            .with_span_processor(FlakyProcessor::default())
            .with_simple_exporter(DownExporter)
            .build();
        let mut s = Scheduler::new(config).expect("generated configurations are valid");
        let clock = TickClock::default();
        s.set_emitter(Some(Emitter::new(provider.tracer("vllm.scheduler")).with_clock(clock.clone())));
        let plain = Scheduler::new(config).expect("valid");
        let mut broken = Scheduler::new(config).expect("valid");
        broken.set_emitter(Some(Emitter::new(broken_provider.tracer("vllm.scheduler")).with_legacy_buffer(false)));
        Sut {
            s,
            plain,
            broken,
            exporter,
            _provider: provider,
            _broken_provider: broken_provider,
            projection: Projection::default(),
            checked: 0,
            added: Vec::new(),
            steps: Vec::new(),
            pending: Iteration::default(),
            applied: 0,
            eos_in_flight: VecDeque::new(),
            stalls: 0,
            clock,
            windows: None,
            step_log: HashMap::new(),
        }
    }

    /// Turns step windows on, with closure interval `interval`: steps 1, 3, 4, 5, 7, 9, 10, …
    /// (odd or a multiple of 3… in a fixed pattern with gaps, so that some intervals get no
    /// event) are summarized, every third of them rich.
    pub fn with_step_tracing(mut self, interval: u64) -> Sut {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .with_max_events_per_span(1_000_000)
            .build();
        let summary_steps: Vec<u64> = (1..=20_000u64).filter(|s| s % 7 < 3 || s % 11 == 0).collect();
        let rich_steps = summary_steps.iter().copied().filter(|s| s % 3 == 0).collect();
        let settings = StepTracing {
            sample_rate: Share::new(0.4).unwrap(),
            rich_subsample_rate: Share::new(0.33).unwrap(),
            closure_interval: interval,
            summary_steps,
            rich_steps,
        };
        let tracer = StepTracer::new(provider.tracer("vllm.scheduler.step"), settings).with_clock(self.clock.clone());
        self.s.set_step_tracer(Some(tracer));
        self.windows = Some((exporter, provider));
        self
    }

    /// The step windows ended so far against the journeys (every incarnation's buffered
    /// events, live ones included: the input is complete) and against the scheduler's own
    /// step outputs: S1–S3 hold, and every summary's counts are the scheduler's.
    fn check_steps(&self) {
        let Some((exporter, _)) = &self.windows else { return };
        let mut checker = StepChecker::new(true);
        let mut summaries = 0;
        for span in exporter.get_finished_spans().expect("exporter") {
            let w = window_of(&span).expect("every span is a step window");
            for e in &w.events {
                let e = e.as_ref().expect("step events decode");
                if let StepEvent::Summary(b) = e {
                    summaries += 1;
                    let want = self.step_log.get(&b.step).copied();
                    assert_eq!(
                        Some((b.scheduled_tokens, b.num_preempted, b.running_depth)),
                        want,
                        "step {}: the summary is not what schedule() decided",
                        b.step
                    );
                }
            }
            checker.add_window(&w);
        }
        for inc in &self.projection.incarnations {
            checker.add_journey(&inc.id, false, &inc.buffered);
        }
        let violations = checker.finish();
        assert!(violations.is_empty(), "step windows disagree ({summaries} summaries): {violations:#?}");
    }

    /// The run so far, as a workload file (`SPEC.md` §8) that `journey simulate --workload`
    /// or `Engine::run` replays.
    pub fn workload(&self) -> Workload {
        let mut steps = self.steps.clone();
        if self.pending != Iteration::default() {
            steps.push(self.pending.clone());
        }
        Workload::new(*self.s.config(), steps)
    }

    /// A digest of the scheduler state that a rejected operation must leave unchanged.
    fn digest(s: &Scheduler) -> String {
        format!(
            "{:?} {:?} {:?} {:?} {} {:?}",
            s.step(),
            s.running(),
            s.waiting().collect::<Vec<_>>(),
            s.blocks(),
            s.num_live(),
            s.emitter().map(|e| (e.live(), e.buffered().len()))
        )
    }

    pub fn add(&mut self, req: NewRequest) -> Result<(), AddError> {
        let before = Sut::digest(&self.s);
        let exported = self.exporter.get_finished_spans().map(|s| s.len()).unwrap_or(0);
        let step = self.s.step();
        let r = self.s.add_request(req.clone());
        assert_eq!(r.clone().map(|_| ()), self.plain.add_request(req.clone()).map(|_| ()), "plain diverged on add");
        assert_eq!(r.clone().map(|_| ()), self.broken.add_request(req.clone()).map(|_| ()), "broken diverged on add");
        match r {
            Ok(h) => {
                self.projection.added(h, &req, step);
                if !self.added.contains(&req.id.0) {
                    self.added.push(req.id.0.clone());
                }
                self.pending.ops.push(Op::Add(AddOp {
                    id: req.id.0.clone(),
                    prompt_len: req.prompt_len,
                    max_tokens: req.max_tokens,
                    priority: req.priority,
                    traceparent: req.trace.as_ref().map(|t| t.traceparent.clone()),
                    tracestate: None,
                    ignore_eos: req.ignore_eos,
                    ..AddOp::default()
                }));
                Ok(())
            }
            Err(e) => {
                assert_eq!(Sut::digest(&self.s), before, "a rejected add changed the scheduler: {e}");
                let now = self.exporter.get_finished_spans().map(|s| s.len()).unwrap_or(0);
                assert_eq!(now, exported, "a rejected add exported a span");
                Err(e)
            }
        }
    }

    pub fn finish(&mut self, id: &str, reason: FinishReason) -> usize {
        let done = self.s.finish_requests([id], reason, None).to_vec();
        assert_eq!(done, self.plain.finish_requests([id], reason, None), "plain diverged on finish");
        assert_eq!(done, self.broken.finish_requests([id], reason, None), "broken diverged on finish");
        self.projection.finished(&done);
        self.pending.ops.push(Op::Finish(FinishOp { id: id.to_owned(), status: reason }));
        done.len()
    }

    pub fn reset(&mut self) {
        let step = self.s.step();
        let preempted = self.s.reset().to_vec();
        assert_eq!(preempted, self.plain.reset(), "plain diverged on reset");
        assert_eq!(preempted, self.broken.reset(), "broken diverged on reset");
        for h in preempted {
            self.projection.preempted(h, step);
        }
        self.pending.ops.push(Op::Reset);
    }

    /// The profile the scheduler's journeys are held to.
    pub fn profile(&self) -> Profile {
        if self.s.config().async_scheduling { Profile::Async } else { Profile::Sync }
    }

    /// `schedule()` on the three schedulers, which must agree; the projection follows.
    fn schedule(&mut self) -> StepOutput {
        let out = self.s.schedule().clone();
        assert_eq!(&out, self.plain.schedule(), "plain diverged on schedule");
        assert_eq!(&out, self.broken.schedule(), "broken diverged on schedule");
        self.projection.scheduled(&out);
        out
    }

    /// The in-flight finish of one of the requests `out` scheduled, if `in_flight` asks for one.
    fn finish_in_flight(&mut self, out: &StepOutput, in_flight: Option<(usize, FinishReason)>, it: &mut Iteration) {
        if let Some((pick, reason)) = in_flight
            && !out.scheduled.is_empty()
        {
            let h = out.scheduled[pick % out.scheduled.len()].handle;
            if let Some(id) = self.s.request(h).map(|r| r.id().to_owned()) {
                let done = self.s.finish_requests([id.as_str()], reason, None).to_vec();
                assert_eq!(done, self.plain.finish_requests([id.as_str()], reason, None));
                assert_eq!(done, self.broken.finish_requests([id.as_str()], reason, None));
                self.projection.finished(&done);
                it.in_flight.push(InFlight::Finish(FinishOp { id, status: reason }));
            }
        }
    }

    /// The EOS ids among the requests the last batch samples: those whose bit is set.
    fn eos_of(&self, eos_mask: u32) -> Vec<String> {
        let sampled: Vec<String> =
            self.s.sampling().filter_map(|h| self.s.request(h)).map(|r| r.id().to_owned()).collect();
        sampled.iter().enumerate().filter(|(i, _)| eos_mask & (1 << (i % 32)) != 0).map(|(_, id)| id.clone()).collect()
    }

    /// `update_from_output` on the three schedulers, which must agree; the projection follows.
    fn update(&mut self, eos: &[String]) {
        let is_eos = |id: &str| eos.iter().any(|e| e == id);
        let upd = self.s.update_from_output(is_eos).clone();
        assert_eq!(&upd, self.plain.update_from_output(is_eos), "plain diverged on update");
        assert_eq!(&upd, self.broken.update_from_output(is_eos), "broken diverged on update");
        self.projection.updated(&upd);
    }

    /// One async engine iteration (`SPEC.md` §8.1): `schedule()` if the scheduler has requests,
    /// its batch's EOS fixed now (the sampled requests whose bit is set in `eos_mask`); if the
    /// batch has tokens and the queue is not full, the in-flight finish ends the iteration;
    /// otherwise the in-flight finish lands and the oldest batch is applied.
    fn step_async(&mut self, eos_mask: u32, in_flight: Option<(usize, FinishReason)>) {
        let mut it = std::mem::take(&mut self.pending);
        let scheduled = if self.s.has_requests() {
            assert!(self.plain.has_requests() && self.broken.has_requests());
            let out = self.schedule();
            it.eos = self.eos_of(eos_mask);
            self.eos_in_flight.push_back(it.eos.clone());
            if out.total_tokens > 0 && self.s.in_flight() < 2 {
                self.finish_in_flight(&out, in_flight, &mut it);
                self.steps.push(it);
                return;
            }
            Some(out)
        } else {
            assert!(!self.plain.has_requests() && !self.broken.has_requests());
            if self.s.in_flight() == 0 {
                self.steps.push(it);
                return;
            }
            None
        };
        assert_eq!(self.s.in_flight(), self.plain.in_flight());
        let eos = self.eos_in_flight.pop_front().expect("a batch in flight has its EOS");
        if let Some(out) = &scheduled {
            self.finish_in_flight(out, in_flight, &mut it);
        }
        self.update(&eos);
        self.steps.push(it);
    }

    /// One engine iteration: `schedule()` if the scheduler has requests, then an optional
    /// in-flight finish (`in_flight` picks among the scheduled requests), then the tokens, EOS
    /// for the sampled requests whose bit is set in `eos_mask`. Under async scheduling, the
    /// iteration of `SPEC.md` §8.1 instead.
    pub fn step(&mut self, eos_mask: u32, in_flight: Option<(usize, FinishReason)>) {
        if self.s.config().async_scheduling {
            return self.step_async(eos_mask, in_flight);
        }
        let mut it = std::mem::take(&mut self.pending);
        if self.s.has_requests() {
            assert!(self.plain.has_requests() && self.broken.has_requests());
            let out = self.schedule();
            let running = self.s.running().len() as u64;
            self.step_log.insert(out.step.0, (out.total_tokens, out.preempted.len() as u64, running));
            self.finish_in_flight(&out, in_flight, &mut it);
            let eos = self.eos_of(eos_mask);
            self.update(&eos);
            it.eos = eos;
        } else {
            assert!(!self.plain.has_requests() && !self.broken.has_requests());
        }
        self.steps.push(it);
    }

    /// Every check of `SPEC.md` §7 after an operation.
    pub fn check(&mut self) {
        for (name, s) in [("traced", &self.s), ("plain", &self.plain), ("broken", &self.broken)] {
            if let Err(e) = s.check_invariants() {
                panic!("{name}: {e}");
            }
        }
        // No tracing state outlives its request.
        let live = self.s.num_live();
        assert_eq!(self.s.emitter().map(|e| e.live()), Some(live), "tracing state and live requests differ");
        assert_eq!(self.broken.emitter().map(|e| e.live()), Some(live), "broken pipeline leaked tracing state");
        // The buffered stream, drained per operation.
        let mut buffered: BTreeMap<String, Vec<JourneyEvent>> = BTreeMap::new();
        if let Some(e) = self.s.emitter_mut() {
            for b in e.drain() {
                buffered.entry(b.request_id.to_string()).or_default().push(b.event);
            }
        }
        for (id, events) in buffered {
            // The live (or just finished) incarnation of `id` is its latest one.
            let inc = self
                .projection
                .incarnations
                .iter_mut()
                .rev()
                .find(|i| i.id == id)
                .unwrap_or_else(|| panic!("buffered events for unknown request {id}"));
            inc.buffered.extend(events);
        }
        // Each buffered event is what the projection implies.
        for inc in &self.projection.incarnations {
            let got: Vec<_> = inc.buffered.iter().map(essence).collect();
            same("buffered events and the scheduler's outputs", &inc.id, &got, &inc.expected);
        }
        // Every exported span: one per finished incarnation, in finishing order per id; events
        // equal the projection attribute for attribute and the buffer exactly; the model accepts it.
        let spans = self.exporter.get_finished_spans().expect("exporter");
        let finished: Vec<&Incarnation> = self.projection.incarnations.iter().filter(|i| i.finished).collect();
        assert_eq!(spans.len(), finished.len(), "spans ended != requests finished");
        for span in &spans[self.checked..] {
            let j = journey_of(span).expect("every span is a journey");
            let k = spans.iter().take_while(|s| !std::ptr::eq(*s, span)).filter(|s| same_id(s, &j)).count();
            let inc = self
                .projection
                .incarnations
                .iter()
                .filter(|i| i.id == j.request_id.as_str())
                .nth(k)
                .unwrap_or_else(|| panic!("span #{k} of {} has no incarnation", j.request_id));
            assert!(inc.finished, "{}: span ended before FINISHED", inc.id);
            let decoded: Vec<JourneyEvent> = j.events.iter().map(|e| e.clone().expect("decodes")).collect();
            let got: Vec<_> = decoded.iter().map(essence).collect();
            same("span events and the scheduler's outputs", &inc.id, &got, &inc.expected);
            same("span and buffered streams", &inc.id, &decoded, &inc.buffered);
            let verdict = match self.profile() {
                Profile::Sync => j.check(),
                profile => {
                    let mut checker = JourneyChecker::new(j.request_id.clone()).with_span(j.span).with_profile(profile);
                    for e in &decoded {
                        let _ = checker.push(e);
                    }
                    checker.finish()
                }
            };
            assert_eq!(verdict, Verdict::Conforming, "{}: the model rejects the exported journey", inc.id);
        }
        self.checked = spans.len();
        // After the buffer is drained into the incarnations: the journeys the windows are
        // checked against are up to date.
        self.check_steps();
    }

    /// Runs empty iterations until the scheduler has no requests (bounded), then checks that
    /// every request finished, every map is empty, and the instance-level rules hold.
    pub fn drain(&mut self) {
        // Async: how long each running request with a stale placeholder has not moved.
        let mut still: HashMap<Handle, (u64, u64, u32)> = HashMap::new();
        for _ in 0..100_000 {
            if !self.s.has_requests() && self.s.in_flight() == 0 {
                break;
            }
            self.step(0, None);
            self.check();
            if self.s.config().async_scheduling {
                let mut stalled = false;
                for &h in self.s.running() {
                    let Some(r) = self.s.request(h) else { continue };
                    let now = (r.num_computed(), r.num_output());
                    let e = still.entry(h).or_insert((now.0, now.1, 0));
                    *e = if (e.0, e.1) == now { (now.0, now.1, e.2 + 1) } else { (now.0, now.1, 0) };
                    stalled |= e.2 >= 8 && r.num_output_placeholders() > self.s.tokens_in_flight(h);
                }
                if stalled {
                    self.abort_stalled();
                    still.clear();
                }
            }
        }
        assert!(!self.s.has_requests() && self.s.in_flight() == 0, "the run did not drain");
        assert_eq!(self.s.num_live(), 0);
        assert_eq!(self.s.blocks().used(), 0);
        assert_eq!(self.s.emitter().map(|e| e.live()), Some(0));
        assert_eq!(self.broken.emitter().map(|e| e.live()), Some(0));
        assert!(self.projection.live.is_empty());
        assert!(self.projection.incarnations.iter().all(|i| i.finished));
        let mut instance = InstanceChecker::new();
        for span in self.exporter.get_finished_spans().expect("exporter") {
            let j = journey_of(&span).expect("journey");
            let events: Vec<JourneyEvent> = j.decoded().cloned().collect();
            instance.add_journey(j.request_id.clone(), j.span, &events);
        }
        let violations = instance.finish();
        assert!(violations.is_empty(), "instance rules broken: {violations:#?}");
        // Shutdown closes the open window; the whole run's windows are checked once more.
        self.s.shutdown();
        self.check_steps();
    }

    /// Async scheduling only: live requests that nothing schedules any more must all be the
    /// known vLLM stall, a request left a stale placeholder by a reset (see
    /// `Scheduler::tokens_in_flight`) whose skip check (`max_tokens` reached in flight) or
    /// `max_model_len` cap now always gives it 0 tokens. They are aborted, as a client would
    /// give up, so that the drain's checks run; any other stall fails.
    fn abort_stalled(&mut self) {
        assert!(self.s.config().async_scheduling, "a synchronous run stalled");
        // The stalled requests run (holding blocks and seats); those queued behind them wait.
        let stalled: Vec<String> = self
            .s
            .running()
            .iter()
            .filter_map(|h| self.s.request(*h).map(|r| (*h, r)))
            .filter(|(h, r)| r.num_output_placeholders() > self.s.tokens_in_flight(*h))
            .map(|(_, r)| r.id().to_owned())
            .collect();
        let states: Vec<String> = self
            .s
            .running()
            .iter()
            .copied()
            .chain(self.s.waiting())
            .filter_map(|h| self.s.request(h))
            .map(|r| {
                format!(
                    "{} {:?} computed {} outputs {} placeholders {}",
                    r.id(),
                    r.status(),
                    r.num_computed(),
                    r.num_output(),
                    r.num_output_placeholders()
                )
            })
            .collect();
        assert!(!stalled.is_empty(), "the run stalled without a stale placeholder: {states:#?}");
        for id in stalled {
            assert_eq!(self.finish(&id, FinishReason::Aborted), 1);
            self.stalls += 1;
        }
        self.check();
    }

    /// The journeys exported so far, as (request id, events) for coverage statistics.
    pub fn exported(&self) -> Vec<(RequestId, SpanInfo, Vec<JourneyEvent>)> {
        self.exporter
            .get_finished_spans()
            .unwrap_or_default()
            .iter()
            .filter_map(journey_of)
            .map(|j: SpanJourney| (j.request_id.clone(), j.span, j.decoded().cloned().collect()))
            .collect()
    }
}

fn same_id(span: &SpanData, j: &SpanJourney) -> bool {
    journey_of(span).is_some_and(|o| o.request_id == j.request_id)
}

impl Drop for Sut {
    /// On a failing run, leave the operations as a workload file that replays the failure
    /// outside proptest (the last one written during shrinking is the minimal one).
    fn drop(&mut self) {
        if std::thread::panicking() {
            let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("model_check_failure.workload.json");
            let text = serde_json::to_string_pretty(&self.workload()).unwrap_or_default();
            if std::fs::write(&path, &text).is_ok() {
                eprintln!("failing operations as a workload file: {}\n{text}", path.display());
            }
        }
    }
}
