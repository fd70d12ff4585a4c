//! Journey events on OpenTelemetry core spans, in the wire format of the vLLM fork
//! (`SPEC.md` §3–§4), with the fork's legacy buffered stream in parallel.
//!
//! The scheduler owns an [`Emitter`] optionally ([`Scheduler::set_emitter`]); without one,
//! tracing costs one predictable branch per call site and allocates nothing. The emitter keeps,
//! per live request, the core span, the FIRST_TOKEN dedup flag and the prefill high-water mark,
//! and removes them on every termination path.
//!
//! # Safety promises
//!
//! - **Tracing never changes scheduling.** No emitter method returns an error into the
//!   scheduler, and every call into OpenTelemetry runs inside [`catch_unwind`]: a panicking span
//!   processor or exporter is contained (the span concerned is dropped). A shut-down provider
//!   hands out non-recording spans, which emit nothing. One case is beyond any Rust code: a
//!   processor that panics in `on_start` *and again* in `on_end` for the same span aborts the
//!   process, because the SDK drops the half-built span while unwinding and a panic in a
//!   destructor during unwinding aborts.
//! - **No resource without an end.** Each core span is ended exactly once, right after
//!   FINISHED, and its per-request state removed; ending is idempotent.
//! - **Non-recording spans (sampled out) cost next to nothing**: attributes are built only for
//!   recording spans.
//!
//! # Event limits
//!
//! OpenTelemetry SDKs keep 128 events per span by default. The Rust SDK drops the *newest*
//! events beyond the limit — FINISHED first — and counts them in the span's dropped-events
//! count (the Python SDK drops the oldest). A request preempted about 60 times has more than 128
//! events. Give the provider a higher limit (`SdkTracerProvider::builder()
//! .with_max_events_per_span(n)`) when journeys must be complete; the checker reports spans
//! that lost events as *incomplete*. The legacy buffered stream is not limited.
//!
//! # Clocks
//!
//! Event timestamps come from a wall clock, `ts.monotonic` from a monotonic clock, both read
//! through the [`Clock`] trait so tests can make them deterministic ([`TickClock`]).
//!
//! [`Scheduler::set_emitter`]: super::Scheduler::set_emitter

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry::global::{BoxedSpan, BoxedTracer, ObjectSafeTracer};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Span, SpanKind, Tracer};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;

use crate::model::{FinishStatus, JourneyEvent, Label, Progress, ScheduleKind, Step};
use crate::wire::{self, WireValue, keys, unix_nanos};

use super::request::{Handle, Request, TraceHeaders};

/// The two clocks a journey event reads.
pub trait Clock: Send + Sync {
    /// Wall-clock time: span start and end, event timestamps.
    fn wall(&self) -> SystemTime;
    /// Monotonic time in seconds: `ts.monotonic`.
    fn monotonic(&self) -> f64;
    /// Monotonic time in nanoseconds: `ts.monotonic_ns` of the `head` wire profile, which also
    /// derives `ts.monotonic` from it (one read). By default the seconds, converted.
    fn monotonic_ns(&self) -> u64 {
        // `as` saturates (negative and NaN become 0): a clock that reports nonsense stays in range.
        (self.monotonic() * 1e9) as u64
    }
}

/// What the emitter puts on the wire: the fork at the seed (`6a58608de`) or at its HEAD
/// (`f6ec81c76`; `SPEC.md` §9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WireProfile {
    /// The seed: a core span for every request, the legacy buffer on (unless turned off),
    /// `ts.monotonic` in seconds only.
    #[default]
    Seed,
    /// HEAD: no legacy buffer; `ts.monotonic_ns` on every event and `ts.monotonic` =
    /// `ts.monotonic_ns / 1e9` from the same read; the sampling gate of `_create_core_span`: a
    /// core span only for a request whose trace headers carry `x-vllm-journey-sampled: "1"`,
    /// and for any other request no span, no event and no tracing state.
    Head,
}

impl WireProfile {
    /// The profile's name on the command line: `seed` or `head`.
    pub fn as_str(self) -> &'static str {
        match self {
            WireProfile::Seed => "seed",
            WireProfile::Head => "head",
        }
    }
}

/// The system clocks: `SystemTime::now()` and an [`Instant`] measured from the clock's
/// creation.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// Clocks starting now.
    pub fn new() -> SystemClock {
        SystemClock { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn monotonic(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    fn monotonic_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A deterministic clock for tests: every read advances both clocks by one tick.
#[derive(Debug, Clone)]
pub struct TickClock {
    ticks: Arc<AtomicU64>,
    start: SystemTime,
    tick: Duration,
}

impl TickClock {
    /// Starts at `start` (wall) and 0 s (monotonic); each read advances by `tick`.
    pub fn new(start: SystemTime, tick: Duration) -> TickClock {
        TickClock { ticks: Arc::new(AtomicU64::new(0)), start, tick }
    }

    fn next(&self) -> Duration {
        let n = self.ticks.fetch_add(1, Ordering::Relaxed);
        self.tick.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX))
    }
}

impl Default for TickClock {
    /// 2025-01-01T00:00:00Z, one microsecond per read.
    fn default() -> Self {
        TickClock::new(UNIX_EPOCH + Duration::from_secs(1_735_689_600), Duration::from_micros(1))
    }
}

impl Clock for TickClock {
    fn wall(&self) -> SystemTime {
        self.start + self.next()
    }

    fn monotonic(&self) -> f64 {
        self.next().as_secs_f64()
    }

    fn monotonic_ns(&self) -> u64 {
        u64::try_from(self.next().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Simulated time for simulations: the driver advances it (by a modelled step duration, say),
/// and every read adds one nanosecond so that events keep their order. Clones share the time.
#[derive(Debug, Clone)]
pub struct SimClock {
    nanos: Arc<AtomicU64>,
    start: SystemTime,
    /// The most nanoseconds that may elapse (see [`SimClock::advance`]).
    end: u64,
}

impl SimClock {
    /// Simulated time starting at `start` (wall) and 0 s (monotonic).
    pub fn new(start: SystemTime) -> SimClock {
        // OpenTelemetry timestamps are u64 nanoseconds since the Unix epoch.
        let since_epoch =
            start.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        SimClock { nanos: Arc::new(AtomicU64::new(0)), start, end: u64::MAX - since_epoch }
    }

    /// Moves time forward by `by`. Time stops at the last instant of OpenTelemetry's u64
    /// nanoseconds since the Unix epoch (in the year 2554), or after `u64::MAX` nanoseconds
    /// from a start before the epoch: it never wraps back.
    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.add(ns);
    }

    /// Adds `ns` nanoseconds, saturating at the end of time; returns the time before.
    fn add(&self, ns: u64) -> u64 {
        let end = self.end;
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        match self.nanos.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(t.saturating_add(ns).min(end))) {
            Ok(before) | Err(before) => before,
        }
    }

    /// Simulated time elapsed so far.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    fn read(&self) -> Duration {
        Duration::from_nanos(self.add(1))
    }
}

impl Clock for SimClock {
    fn wall(&self) -> SystemTime {
        self.start + self.read()
    }

    fn monotonic(&self) -> f64 {
        self.read().as_secs_f64()
    }

    fn monotonic_ns(&self) -> u64 {
        u64::try_from(self.read().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One event of the legacy buffered stream: the same event as on the span, as a plain value.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferedEvent {
    /// The request.
    pub request_id: Arc<str>,
    /// The event.
    pub event: JourneyEvent,
}

/// Per-request tracing state.
struct Tracked {
    generation: u32,
    id: Arc<str>,
    span: Option<BoxedSpan>,
    first_token_emitted: bool,
    /// Prompt tokens processed: survives preemption, frozen after the first output token.
    hiwater: u64,
    #[cfg(debug_assertions)]
    checker: crate::model::JourneyChecker,
}

impl Tracked {
    /// A copy without the span (the explorer's forks have no tracer): every other field as is.
    #[cfg(feature = "explore")]
    fn copy_untraced(&self) -> Tracked {
        Tracked {
            generation: self.generation,
            id: Arc::clone(&self.id),
            span: None,
            first_token_emitted: self.first_token_emitted,
            hiwater: self.hiwater,
            #[cfg(debug_assertions)]
            checker: self.checker.clone(),
        }
    }
}

/// Emits journey events on one core span per request and into the legacy buffer.
///
/// ```
/// use journey_spec::{Emitter, NewRequest, Scheduler, SchedulerConfig, TickClock};
/// use opentelemetry::trace::TracerProvider as _;
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let mut s = Scheduler::new(SchedulerConfig::default())?;
/// s.set_emitter(Some(Emitter::new(provider.tracer("vllm.scheduler")).with_clock(TickClock::default())));
/// s.add_request(NewRequest::new("r1", 8, 1))?;
/// s.schedule();
/// s.update_from_output(|_| true);
/// let spans = exporter.get_finished_spans()?;
/// let names: Vec<_> = spans[0].events.iter().map(|e| e.name.as_ref()).collect();
/// assert_eq!(names, ["journey.QUEUED", "journey.SCHEDULED", "journey.FIRST_TOKEN", "journey.FINISHED"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Emitter {
    tracer: Option<BoxedTracer>,
    clock: Box<dyn Clock>,
    propagator: TraceContextPropagator,
    tracked: Vec<Option<Tracked>>,
    live: usize,
    buffer: Vec<BufferedEvent>,
    buffer_enabled: bool,
    profile: WireProfile,
    contained_panics: u64,
    /// The profile the debug self-check holds journeys to: async scheduling has late outputs.
    check_profile: crate::model::Profile,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("tracer", &self.tracer.is_some())
            .field("live", &self.live)
            .field("buffered", &self.buffer.len())
            .field("contained_panics", &self.contained_panics)
            .finish()
    }
}

impl Emitter {
    /// An emitter on `tracer` (any provider's: the SDK, a user's OTLP pipeline), with the system
    /// clocks and the legacy buffer on.
    pub fn new<T>(tracer: T) -> Emitter
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        let boxed: Box<dyn ObjectSafeTracer + Send + Sync> = Box::new(tracer);
        Emitter::build(Some(BoxedTracer::new(boxed)))
    }

    /// An emitter without spans: journey events go to the legacy buffer only (the fork with
    /// journey tracing on but no OTLP endpoint).
    pub fn without_tracer() -> Emitter {
        Emitter::build(None)
    }

    fn build(tracer: Option<BoxedTracer>) -> Emitter {
        Emitter {
            tracer,
            clock: Box::new(SystemClock::new()),
            propagator: TraceContextPropagator::new(),
            tracked: Vec::new(),
            live: 0,
            buffer: Vec::new(),
            buffer_enabled: true,
            profile: WireProfile::Seed,
            contained_panics: 0,
            check_profile: crate::model::Profile::Sync,
        }
    }

    /// Uses `clock` for timestamps.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Emitter {
        self.clock = Box::new(clock);
        self
    }

    /// Turns the legacy buffered stream on or off (on by default).
    pub fn with_legacy_buffer(mut self, on: bool) -> Emitter {
        self.buffer_enabled = on;
        self
    }

    /// Emits in the wire format of `profile`. [`WireProfile::Head`] turns the legacy buffer off
    /// (PR #9 removed it); [`WireProfile::Seed`] leaves it as it was.
    pub fn with_profile(mut self, profile: WireProfile) -> Emitter {
        self.profile = profile;
        if profile == WireProfile::Head {
            self.buffer_enabled = false;
        }
        self
    }

    /// The wire profile.
    pub fn profile(&self) -> WireProfile {
        self.profile
    }

    /// The scheduler's engine (set when the emitter is attached): journeys of requests queued
    /// from now on are self-checked (debug builds) against this profile.
    pub(crate) fn set_check_profile(&mut self, profile: crate::model::Profile) {
        self.check_profile = profile;
    }

    /// Requests with tracing state (a core span or journey bookkeeping).
    pub fn live(&self) -> usize {
        self.live
    }

    /// Panics from the OpenTelemetry pipeline that were contained so far.
    pub fn contained_panics(&self) -> u64 {
        self.contained_panics
    }

    /// Removes and returns the buffered events (the legacy stream), oldest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, BufferedEvent> {
        self.buffer.drain(..)
    }

    /// The buffered events not drained yet.
    pub fn buffered(&self) -> &[BufferedEvent] {
        &self.buffer
    }

    /// A copy for the explorer's branching states, on `clock`: the per-request state and the
    /// buffer. `None` when the emitter has a tracer, whose spans cannot be copied.
    #[cfg(feature = "explore")]
    pub(crate) fn fork(&self, clock: impl Clock + 'static) -> Option<Emitter> {
        if self.tracer.is_some() {
            return None;
        }
        let tracked = self.tracked.iter().map(|t| t.as_ref().map(Tracked::copy_untraced)).collect();
        Some(Emitter {
            tracer: None,
            clock: Box::new(clock),
            propagator: TraceContextPropagator::new(),
            tracked,
            live: self.live,
            buffer: self.buffer.clone(),
            buffer_enabled: self.buffer_enabled,
            profile: self.profile,
            contained_panics: self.contained_panics,
            check_profile: self.check_profile,
        })
    }

    /// [`fork`](Self::fork) into `dst`, reusing its vectors; `dst` keeps its clock (the
    /// explorer's states share one). `false`, changing nothing, when `self` has a tracer.
    #[cfg(feature = "explore")]
    pub(crate) fn fork_into(&self, dst: &mut Emitter) -> bool {
        // Every field by name, so that a new one cannot be forgotten here.
        let Emitter {
            tracer,
            clock: _,
            propagator: _,
            tracked,
            live,
            buffer,
            buffer_enabled,
            profile,
            contained_panics,
            check_profile,
        } = self;
        if tracer.is_some() {
            return false;
        }
        dst.tracer = None;
        dst.tracked.truncate(tracked.len());
        for (d, t) in dst.tracked.iter_mut().zip(tracked) {
            match (d, t) {
                (Some(d), Some(t)) => {
                    let Tracked {
                        generation,
                        id,
                        span: _,
                        first_token_emitted,
                        hiwater,
                        #[cfg(debug_assertions)]
                        checker,
                    } = t;
                    d.generation = *generation;
                    d.id.clone_from(id);
                    d.span = None;
                    d.first_token_emitted = *first_token_emitted;
                    d.hiwater = *hiwater;
                    #[cfg(debug_assertions)]
                    d.checker.clone_from(checker);
                }
                (d, t) => *d = t.as_ref().map(Tracked::copy_untraced),
            }
        }
        let have = dst.tracked.len();
        dst.tracked.extend(tracked.iter().skip(have).map(|t| t.as_ref().map(Tracked::copy_untraced)));
        dst.live = *live;
        dst.buffer.clone_from(buffer);
        dst.buffer_enabled = *buffer_enabled;
        dst.profile = *profile;
        dst.contained_panics = *contained_panics;
        dst.check_profile = *check_profile;
        true
    }

    fn slot(&mut self, h: Handle) -> Option<&mut Tracked> {
        self.tracked.get_mut(h.slot()).and_then(Option::as_mut).filter(|t| t.generation == h.generation)
    }

    /// Runs an OpenTelemetry call; a panic inside it is contained and counted.
    fn guard<R>(contained: &mut u64, f: impl FnOnce() -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => Some(r),
            Err(_) => {
                *contained += 1;
                None
            }
        }
    }

    pub(crate) fn queued(&mut self, h: Handle, r: &Request, step: u64) {
        // HEAD's `_create_core_span`: no sampling header, no span, and nothing is kept (every
        // later hook finds no state and returns). One header lookup is all it costs.
        if self.profile == WireProfile::Head && !r.trace().is_some_and(|t| t.journey_sampled) {
            return;
        }
        if self.tracked.len() <= h.slot() {
            self.tracked.resize_with(h.slot() + 1, || None);
        }
        // A stale entry would mean a missed cleanup: a bug, but end it rather than leak it.
        debug_assert!(self.tracked[h.slot()].is_none(), "tracing state of a finished request survived");
        self.end_and_cleanup(h.slot(), false);
        let mut span_start = None;
        let span = match &self.tracer {
            Some(tracer) => {
                let parent = match r.trace() {
                    Some(headers) => self.propagator.extract(&Headers(headers)),
                    None => Context::new(),
                };
                let start = self.clock.wall();
                span_start = Some(unix_nanos(start));
                Emitter::guard(&mut self.contained_panics, || {
                    let mut span = tracer
                        .span_builder(keys::SPAN_NAME)
                        .with_kind(SpanKind::Internal)
                        .with_start_time(start)
                        .start_with_context(tracer, &parent);
                    if span.is_recording() {
                        // The shared id: a reference count, not a copy of the string.
                        span.set_attribute(KeyValue::new(keys::REQUEST_ID, Arc::clone(r.shared_id())));
                    }
                    span
                })
            }
            None => None,
        };
        self.tracked[h.slot()] = Some(Tracked {
            generation: h.generation,
            id: Arc::clone(r.shared_id()),
            span,
            first_token_emitted: false,
            hiwater: 0,
            // The model checks every event from inside, span times included (R7).
            #[cfg(debug_assertions)]
            checker: crate::model::JourneyChecker::new(r.id())
                .with_profile(self.check_profile)
                .with_span(crate::model::SpanInfo { start_unix_nano: span_start, ..Default::default() }),
        });
        #[cfg(not(debug_assertions))]
        let _ = span_start;
        self.live += 1;
        self.emit(h, r, Label::Queued, step);
    }

    pub(crate) fn scheduled(&mut self, h: Handle, r: &Request, step: u64, kind: ScheduleKind) {
        self.emit(h, r, Label::Scheduled(kind), step);
    }

    pub(crate) fn preempted(&mut self, h: Handle, r: &Request, step: u64) {
        self.emit(h, r, Label::Preempted, step);
    }

    pub(crate) fn computed(&mut self, h: Handle, r: &Request) {
        if r.num_output() == 0
            && let Some(t) = self.slot(h)
        {
            t.hiwater = t.hiwater.max(r.num_computed().min(r.prompt_len()));
        }
    }

    pub(crate) fn first_token(&mut self, h: Handle, r: &Request, step: u64) {
        let Some(t) = self.slot(h) else { return };
        if t.first_token_emitted {
            return;
        }
        t.first_token_emitted = true;
        self.emit(h, r, Label::FirstToken, step);
    }

    pub(crate) fn finished(&mut self, h: Handle, r: &Request, step: u64, status: FinishStatus) {
        self.emit(h, r, Label::Finished(status), step);
        if self.slot(h).is_some() {
            self.end_and_cleanup(h.slot(), true);
        }
    }

    /// Ends the span of `slot` (once) and drops its state. Idempotent. `finished`: the journey
    /// ended with FINISHED, so in debug builds the model must accept it whole.
    fn end_and_cleanup(&mut self, slot: usize, finished: bool) {
        let Some(mut t) = self.tracked.get_mut(slot).and_then(Option::take) else { return };
        self.live -= 1;
        if let Some(mut span) = t.span.take() {
            let end = self.clock.wall();
            #[cfg(debug_assertions)]
            t.checker.set_span_end(unix_nanos(end));
            Emitter::guard(&mut self.contained_panics, move || {
                span.end_with_timestamp(end);
                drop(span);
            });
        }
        #[cfg(debug_assertions)]
        if finished {
            let verdict = t.checker.finish();
            debug_assert!(verdict.is_conforming(), "the emitter produced a journey the model rejects: {verdict:?}");
        }
        #[cfg(not(debug_assertions))]
        let _ = finished;
    }

    fn emit(&mut self, h: Handle, r: &Request, label: Label, step: u64) {
        let buffer_enabled = self.buffer_enabled;
        let head = self.profile == WireProfile::Head;
        let Some(t) = self.tracked.get_mut(h.slot()).and_then(Option::as_mut).filter(|t| t.generation == h.generation)
        else {
            return;
        };
        let recording = t.span.as_ref().is_some_and(|s| s.is_recording());
        if !(recording || buffer_enabled) {
            // Nothing carries this event (a sampled-out span, no buffer): it costs nothing in
            // release builds. Debug builds still show it to the model, so the journey the model
            // sees stays whole; the condition is the same in every build, so tests see it.
            #[cfg(debug_assertions)]
            Emitter::self_check(t, &Emitter::event(&*self.clock, head, t, r, label, step).0);
            return;
        }
        let (event, wall, ns) = Emitter::event(&*self.clock, head, t, r, label, step);
        #[cfg(debug_assertions)]
        Emitter::self_check(t, &event);
        if recording && let Some(span) = t.span.as_mut() {
            // Built in place, at its final size: collecting `wire::encode` through its iterator
            // chain cost about as much as the rest of the event (BENCHMARKS.md).
            let mut attributes = Vec::with_capacity(wire::MAX_ATTRIBUTES + 1);
            wire::encode_each(&event, |k, v| {
                attributes.push(KeyValue::new(k, value(v)));
                // HEAD's order: `ts.monotonic_ns` right after `ts.monotonic`.
                if head && k == keys::TS_MONOTONIC {
                    attributes.push(KeyValue::new(keys::TS_MONOTONIC_NS, i64::try_from(ns).unwrap_or(i64::MAX)));
                }
            });
            Emitter::guard(&mut self.contained_panics, || {
                span.add_event_with_timestamp(event.name(), wall, attributes);
            });
        }
        if buffer_enabled {
            self.buffer.push(BufferedEvent { request_id: Arc::clone(&t.id), event });
        }
    }

    /// The journey event `label` of request `r` now, the wall time it carries and, with `ns`
    /// (the `head` profile), the monotonic nanoseconds its `ts.monotonic` was derived from.
    fn event(
        clock: &dyn Clock,
        ns: bool,
        t: &Tracked,
        r: &Request,
        label: Label,
        step: u64,
    ) -> (JourneyEvent, SystemTime, u64) {
        let progress = Progress {
            prefill_done: t.hiwater.min(r.prompt_len()),
            prefill_total: r.prompt_len(),
            decode_done: r.num_output(),
            decode_max: r.max_tokens(),
        };
        // One read for both monotonic attributes: HEAD computes `ts_monotonic_ns / 1e9`.
        let (monotonic, monotonic_ns) = if ns {
            let n = clock.monotonic_ns();
            (n as f64 / 1e9, n)
        } else {
            (clock.monotonic(), 0)
        };
        let wall = clock.wall();
        let event =
            JourneyEvent::new(label, Step(step), progress, r.num_preemptions()).at(monotonic).wall(unix_nanos(wall));
        (event, wall, monotonic_ns)
    }

    /// Debug builds: the model checks every event as it is emitted.
    #[cfg(debug_assertions)]
    fn self_check(t: &mut Tracked, event: &JourneyEvent) {
        let checked = t.checker.push(event);
        debug_assert!(checked.is_ok(), "the emitter produced an event the model rejects: {checked:?}");
    }
}

impl Drop for Emitter {
    /// Spans of requests still live are ended (without FINISHED: their journeys are cut short,
    /// and the checker reports them so).
    fn drop(&mut self) {
        for slot in 0..self.tracked.len() {
            self.end_and_cleanup(slot, false);
        }
    }
}

fn value(v: WireValue<'static>) -> Value {
    match v {
        WireValue::Str(s) => Value::from(s),
        WireValue::Int(i) => Value::I64(i),
        WireValue::Double(d) => Value::F64(d),
        WireValue::Bool(b) => Value::Bool(b),
        WireValue::Other(s) => Value::from(s),
    }
}

/// The W3C headers of a request, as the propagator reads them (the core span's parent, and the
/// client's parent of the API span).
pub(crate) struct Headers<'a>(pub(crate) &'a TraceHeaders);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            // An empty `traceparent` stands for no header (a sampled request without one).
            "traceparent" => Some(self.0.traceparent.as_str()).filter(|tp| !tp.is_empty()),
            "tracestate" => self.0.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys = Vec::with_capacity(2);
        if !self.0.traceparent.is_empty() {
            keys.push("traceparent");
        }
        if self.0.tracestate.is_some() {
            keys.push("tracestate");
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_clock_advances_one_tick_per_read() {
        let start = UNIX_EPOCH + Duration::from_secs(100);
        let c = TickClock::new(start, Duration::from_millis(2));
        assert_eq!(c.wall(), start);
        assert_eq!(c.monotonic(), 0.002);
        assert_eq!(c.wall(), start + Duration::from_millis(4));
        let shared = c.clone();
        assert_eq!(shared.monotonic(), 0.006, "clones share the ticks");
    }

    #[test]
    fn sim_clock_moves_by_advance_and_a_nanosecond_per_read() {
        let start = UNIX_EPOCH + Duration::from_secs(100);
        let c = SimClock::new(start);
        assert_eq!(c.wall(), start);
        c.advance(Duration::from_secs(2));
        assert_eq!(c.elapsed(), Duration::from_nanos(2_000_000_001));
        assert_eq!(c.monotonic(), 2.000_000_001);
        assert_eq!(c.clone().wall(), start + Duration::from_nanos(2_000_000_002));
    }

    #[test]
    fn sim_clock_stops_at_the_end_of_otel_time_instead_of_wrapping() {
        let end = UNIX_EPOCH + Duration::from_nanos(u64::MAX);
        for start in [UNIX_EPOCH, UNIX_EPOCH + Duration::from_secs(1_767_225_600)] {
            let c = SimClock::new(start);
            c.advance(Duration::MAX);
            c.advance(Duration::from_secs(1));
            assert_eq!(start + c.elapsed(), end, "{start:?}");
            assert_eq!(c.wall(), end, "{start:?}: a read stays at the end");
            assert_eq!(start + c.elapsed(), end);
        }
        let before_epoch = UNIX_EPOCH - Duration::from_secs(10);
        let c = SimClock::new(before_epoch);
        c.advance(Duration::MAX);
        assert_eq!(c.elapsed(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn system_clock_is_monotonic_from_its_creation() {
        let c = SystemClock::default();
        let a = c.monotonic();
        std::thread::sleep(Duration::from_millis(5));
        let b = c.monotonic();
        assert!((0.0..1.0).contains(&a), "{a}");
        assert!(b - a >= 0.004, "{a} then {b}");
        let now = SystemTime::now();
        let w = c.wall();
        assert!(w >= now && w < now + Duration::from_secs(1));
    }

    #[test]
    fn the_headers_extractor_serves_both_w3c_headers() {
        let with = TraceHeaders { traceparent: "tp".into(), tracestate: Some("k=v".into()), journey_sampled: false };
        let h = Headers(&with);
        assert_eq!((h.get("traceparent"), h.get("tracestate"), h.get("other")), (Some("tp"), Some("k=v"), None));
        assert_eq!(h.keys(), ["traceparent", "tracestate"]);
        let without = TraceHeaders { traceparent: "tp".into(), tracestate: None, journey_sampled: false };
        assert_eq!(Headers(&without).keys(), ["traceparent"]);
        assert_eq!(Headers(&without).get("tracestate"), None);
    }

    #[test]
    fn debug_shows_the_counts() {
        let e = Emitter::without_tracer();
        assert_eq!(format!("{e:?}"), "Emitter { tracer: false, live: 0, buffered: 0, contained_panics: 0 }");
    }
}
