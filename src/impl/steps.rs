//! Step windows on OpenTelemetry spans, as HEAD's `a0d1f6fa4` emits them (`SPEC.md` §12):
//! root spans `scheduler_steps_<n>` (scope `vllm.scheduler.step`), each its own trace, carrying
//! a `step.BATCH_SUMMARY` in every sampled step and one `step.REQUEST_SNAPSHOT` per running
//! request in the rich ones.
//!
//! The scheduler owns a [`StepTracer`] optionally ([`Scheduler::set_step_tracer`]); without one
//! a step costs one branch. With one, `schedule()` reads the monotonic clock before it
//! schedules, and afterwards — before the step's bookkeeping, as the fork does — the tracer
//! emits the step's events from what the scheduler decided, then counts the step towards the
//! closure interval. The sampling decisions are the workload's recorded sets
//! ([`StepTracing`]), so a replay is exact.
//!
//! The Rust SDK drops the *newest* events beyond a span's event limit (the Python SDK the
//! oldest): give the provider a limit above the longest window (128 by default) to keep windows
//! whole.
//!
//! [`Scheduler::set_step_tracer`]: super::Scheduler::set_step_tracer

use std::panic::{AssertUnwindSafe, catch_unwind};

use opentelemetry::global::{BoxedSpan, BoxedTracer, ObjectSafeTracer};
use opentelemetry::trace::{Span, SpanKind, Tracer};
use opentelemetry::{Context, KeyValue, Value};

use crate::model::Phase;
use crate::model::steps::{BatchSummary, RequestSnapshot, StepEvent};
use crate::wire::WireValue;
use crate::wire::steps as keys;

use super::emitter::{Clock, SystemClock};
use super::scheduler::Scheduler;
use super::workload::StepTracing;

/// What `schedule()` reads before it schedules, for the step's summary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepStart {
    /// Monotonic ns at the start of the step.
    pub(crate) ts_start_ns: i64,
    /// Requests finished since the previous step (vLLM's `finished_req_ids`).
    pub(crate) num_finished: usize,
}

/// The open window.
struct Open {
    span: BoxedSpan,
    start: u64,
}

/// Emits step windows (see the [module documentation](self)).
///
/// ```
/// use journey_spec::{NewRequest, Scheduler, SchedulerConfig, Share, StepTracer, StepTracing, TickClock};
/// use opentelemetry::trace::TracerProvider as _;
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let one = Share::new(1.0).unwrap();
/// let settings = StepTracing { sample_rate: one, rich_subsample_rate: one, closure_interval: 2,
///     summary_steps: vec![1, 2], rich_steps: vec![2] };
/// let mut s = Scheduler::new(SchedulerConfig::default())?;
/// s.set_step_tracer(Some(StepTracer::new(provider.tracer("vllm.scheduler.step"), settings).with_clock(TickClock::default())));
/// s.add_request(NewRequest::new("r1", 8, 4))?;
/// for _ in 0..3 {
///     s.schedule();
///     s.update_from_output(|_| false);
/// }
/// s.shutdown();
/// let spans = exporter.get_finished_spans()?;
/// let names: Vec<_> = spans.iter().map(|s| s.name.as_ref()).collect();
/// assert_eq!(names, ["scheduler_steps_1", "scheduler_steps_2"]);
/// let events: Vec<_> = spans[0].events.iter().map(|e| e.name.as_ref()).collect();
/// assert_eq!(events, ["step.BATCH_SUMMARY", "step.BATCH_SUMMARY", "step.REQUEST_SNAPSHOT"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StepTracer {
    tracer: BoxedTracer,
    clock: Box<dyn Clock>,
    settings: StepTracing,
    /// The sampled steps, sorted and deduplicated, and how far `schedule()` has walked them.
    summary_steps: Vec<u64>,
    rich_steps: Vec<u64>,
    next_summary: usize,
    next_rich: usize,
    open: Option<Open>,
    sequence: u64,
    steps_since_closure: u64,
    events_since_closure: u64,
    last_step: u64,
    contained_panics: u64,
    windows: u64,
}

impl std::fmt::Debug for StepTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepTracer")
            .field("sequence", &self.sequence)
            .field("open", &self.open.as_ref().map(|o| o.start))
            .field("contained_panics", &self.contained_panics)
            .finish()
    }
}

impl StepTracer {
    /// A tracer on `tracer` (scope `vllm.scheduler.step`, by the fork's convention) with the
    /// system clocks; window 1 opens at the first step.
    pub fn new<T>(tracer: T, settings: StepTracing) -> StepTracer
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        let boxed: Box<dyn ObjectSafeTracer + Send + Sync> = Box::new(tracer);
        let sorted = |steps: &[u64]| {
            let mut v = steps.to_vec();
            v.sort_unstable();
            v.dedup();
            v
        };
        StepTracer {
            tracer: BoxedTracer::new(boxed),
            clock: Box::new(SystemClock::new()),
            summary_steps: sorted(&settings.summary_steps),
            rich_steps: sorted(&settings.rich_steps),
            next_summary: 0,
            next_rich: 0,
            settings,
            open: None,
            sequence: 0,
            steps_since_closure: 0,
            events_since_closure: 0,
            last_step: 0,
            contained_panics: 0,
            windows: 0,
        }
    }

    /// Uses `clock`: give it the journey emitter's clock (a clone of a [`SimClock`] or
    /// [`TickClock`] shares its time), so that summaries and journeys are on one clock, as in
    /// the fork.
    ///
    /// [`SimClock`]: super::SimClock
    /// [`TickClock`]: super::TickClock
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> StepTracer {
        self.clock = Box::new(clock);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &StepTracing {
        &self.settings
    }

    /// Windows ended so far.
    pub fn windows_ended(&self) -> u64 {
        self.windows
    }

    /// Panics from the OpenTelemetry pipeline that were contained so far.
    pub fn contained_panics(&self) -> u64 {
        self.contained_panics
    }

    fn guard<R>(contained: &mut u64, f: impl FnOnce() -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => Some(r),
            Err(_) => {
                *contained += 1;
                None
            }
        }
    }

    /// Monotonic ns now.
    pub(crate) fn now_ns(&self) -> i64 {
        // `as` saturates: a clock cannot make this panic.
        (self.clock.monotonic() * 1e9).round() as i64
    }

    /// `_open_step_span(start)`: a root INTERNAL span `scheduler_steps_<seq>`.
    fn open(&mut self, start: u64) {
        self.sequence += 1;
        let seq = self.sequence;
        let wall = self.clock.wall();
        let tracer = &self.tracer;
        let span = StepTracer::guard(&mut self.contained_panics, || {
            let mut span = tracer
                .span_builder(format!("{}{seq}", keys::SPAN_PREFIX))
                .with_kind(SpanKind::Internal)
                .with_start_time(wall)
                .start_with_context(tracer, &Context::new());
            if span.is_recording() {
                span.set_attribute(KeyValue::new(keys::SPAN_SEQUENCE, int(seq)));
                span.set_attribute(KeyValue::new(keys::RANGE_START, int(start)));
                span.set_attribute(KeyValue::new(keys::CLOSURE_INTERVAL, int(self.settings.closure_interval)));
            }
            span
        });
        self.open = span.map(|span| Open { span, start });
    }

    /// `_close_step_span(end)`: sets the range end and ends the span.
    fn close(&mut self, end: u64) {
        let Some(mut open) = self.open.take() else { return };
        let wall = self.clock.wall();
        self.windows += 1;
        StepTracer::guard(&mut self.contained_panics, move || {
            if open.span.is_recording() {
                open.span.set_attribute(KeyValue::new(keys::RANGE_END, int(end)));
            }
            open.span.end_with_timestamp(wall);
        });
    }

    /// Closes the open window at the last step (`Scheduler.shutdown()`); a later step opens
    /// none.
    pub(crate) fn shutdown(&mut self) {
        if self.sequence == 0 {
            // The fork opens window 1 at construction and closes it at shutdown, steps or not.
            self.open(1);
        }
        let last = self.last_step;
        self.close(last);
    }

    fn add_event(&mut self, event: &StepEvent) {
        let wall = self.clock.wall();
        let Some(open) = self.open.as_mut() else { return };
        if !open.span.is_recording() {
            return;
        }
        let mut attributes = Vec::with_capacity(keys::SUMMARY_KEYS.len());
        keys::encode_each(event, |k, v| attributes.push(KeyValue::new(k, value(v))));
        let name = keys::event_name(event);
        StepTracer::guard(&mut self.contained_panics, || {
            open.span.add_event_with_timestamp(name, wall, attributes);
        });
    }

    /// After `schedule()` decided step `s.step()`: the summary and snapshots when sampled, then
    /// the closure count (HEAD's `schedule()`, lines 1302–1318).
    pub(crate) fn after_schedule(&mut self, s: &Scheduler, before: StepStart) {
        let step = s.step().0;
        self.last_step = step;
        if self.open.is_none() && self.sequence == 0 {
            // Window 1 exists from the scheduler's construction in the fork.
            self.open(1);
        }
        if walk(&self.summary_steps, &mut self.next_summary, step) {
            let summary = summary(s, before, self.now_ns());
            self.add_event(&StepEvent::Summary(summary));
            self.events_since_closure += 1;
            // The rich gate is evaluated only for summarized steps, as in the fork.
            if walk(&self.rich_steps, &mut self.next_rich, step) {
                for snapshot in snapshots(s) {
                    self.add_event(&StepEvent::Snapshot(snapshot));
                    self.events_since_closure += 1;
                }
            }
        }
        self.steps_since_closure += 1;
        if self.steps_since_closure >= self.settings.closure_interval {
            if self.events_since_closure > 0 && self.open.is_some() {
                self.close(step);
                self.open(step + 1);
            }
            self.steps_since_closure = 0;
            self.events_since_closure = 0;
        }
    }
}

impl Drop for StepTracer {
    /// The open window is closed at the last step, as at shutdown.
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Whether `step` is in the sorted `steps`, moving `next` past the steps before it: steps only
/// grow, so a whole run walks the list once.
fn walk(steps: &[u64], next: &mut usize, step: u64) -> bool {
    while steps.get(*next).is_some_and(|&s| s < step) {
        *next += 1;
    }
    steps.get(*next) == Some(&step)
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn value(v: WireValue<'_>) -> Value {
    match v {
        WireValue::Str(s) => Value::from(s.to_owned()),
        WireValue::Int(i) => Value::I64(i),
        WireValue::Double(d) => Value::F64(d),
        WireValue::Bool(b) => Value::Bool(b),
        WireValue::Other(s) => Value::from(s),
    }
}

/// `_emit_step_batch_summary`: the step's summary, from what the scheduler decided (after
/// scheduling, before the step's tokens count as computed: the scheduler has added them, so
/// they are subtracted where the fork reads the earlier value).
pub(crate) fn summary(s: &Scheduler, before: StepStart, ts_end_ns: i64) -> BatchSummary {
    let out = s.last_step();
    let mut b = BatchSummary {
        step: out.step.0,
        ts_start_ns: before.ts_start_ns,
        ts_end_ns,
        duration_us: ts_end_ns.saturating_sub(before.ts_start_ns) / 1000,
        running_depth: s.running().len() as u64,
        waiting_depth: s.num_waiting() as u64,
        scheduled_tokens: out.total_tokens,
        num_finished: before.num_finished as u64,
        num_preempted: out.preempted.len() as u64,
        kv_blocks_total_gpu: s.config().num_blocks as u64,
        kv_blocks_free_gpu: s.blocks().free() as u64,
        ..BatchSummary::default()
    };
    for sch in &out.scheduled {
        let Some(r) = s.request(sch.handle) else { continue };
        if r.num_output() == 0 {
            b.num_prefill_reqs += 1;
            b.prefill_tokens += sch.tokens;
        } else {
            b.num_decode_reqs += 1;
            b.decode_tokens += sch.tokens;
        }
    }
    // `block_pool.get_usage()`, as the fork computes it.
    b.kv_usage_gpu_ratio = if b.kv_blocks_total_gpu == 0 {
        0.0
    } else {
        1.0 - (b.kv_blocks_free_gpu as f64 / b.kv_blocks_total_gpu as f64)
    };
    b
}

/// `_emit_rich_request_snapshots`: one snapshot per request of the running list, in its order.
pub(crate) fn snapshots(s: &Scheduler) -> impl Iterator<Item = RequestSnapshot> + '_ {
    let out = s.last_step();
    s.running().iter().filter_map(move |&h| {
        let r = s.request(h)?;
        let tokens = out.scheduled.iter().find(|x| x.handle == h).map_or(0, |x| x.tokens);
        Some(RequestSnapshot {
            step: out.step.0,
            request_id: r.id().to_owned(),
            phase: Some(if r.num_output() == 0 { Phase::Prefill } else { Phase::Decode }),
            num_prompt_tokens: r.prompt_len(),
            num_computed_tokens: r.num_computed().saturating_sub(tokens),
            num_output_tokens: r.num_output(),
            num_preemptions: r.num_preemptions(),
            scheduled_tokens_this_step: tokens,
            kv_blocks_allocated_gpu: r.blocks().len() as u64,
            // No prefix caching: nothing is cached, and the effective prompt is the prompt.
            kv_blocks_cached_gpu: 0,
            effective_prompt_len: Some(r.prompt_len()),
        })
    })
}
