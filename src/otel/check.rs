//! Checking the journeys of a [`Trace`]: every journey on its own (rules R1–R12, with the span's
//! times and dropped events), then the journeys of each scheduler instance together (R13, R14).
//!
//! A scheduler instance is the set of journeys of one input that share a resource (the same
//! resource attributes): a Collector file may hold the spans of several servers, told apart by
//! their resources, and separate inputs are separate runs.
//!
//! ```
//! use journey_spec::otel::{CheckOptions, check_trace, read_trace};
//!
//! let trace = read_trace("empty", &b""[..], |e| panic!("{e}"));
//! let checked = check_trace(trace, &CheckOptions::default());
//! assert!(checked.journeys.is_empty());
//! ```

use std::collections::BTreeSet;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::TracesData;

use crate::model::{
    Detail, EventKind, InstanceChecker, JourneyChecker, JourneyEvent, Profile, RuleId, SpanInfo, State, StepChecker,
    Verdict, Violation,
};
use crate::wire;

use crate::model::steps::{BatchSummary, RequestSnapshot, StepEvent};

use super::read::{
    Assemble, InputError, ReadCounts, ReadWindow, RecordedEvent, Resource, Span, Trace, TraceBuilder, Unit, hex,
};
use super::summary::JourneyMetrics;

/// What to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Rules whose violations are dropped from every verdict (`journey check --allow`).
    pub allow: BTreeSet<RuleId>,
    /// The scheduling profile the journeys are checked under (`journey check --profile`).
    pub profile: Profile,
    /// The input holds every span of the run (`journey check --complete`, `SPEC.md` §10):
    /// S3's counts compare for equality, and a snapshot's request must have a journey.
    pub complete: bool,
}

/// The step windows of one input, checked (rules S1–S3, `SPEC.md` §12).
#[derive(Debug, Clone, Default)]
pub struct StepReport {
    /// Windows read.
    pub windows: usize,
    /// `step.BATCH_SUMMARY` events read.
    pub summaries: usize,
    /// `step.REQUEST_SNAPSHOT` events read.
    pub snapshots: usize,
    /// Violations (without those of allowed rules), each naming its window as `request_id`,
    /// with the window's resource.
    pub violations: Vec<(usize, Violation)>,
    /// With [`KeepEvents::Request`]: every summary read, and that request's snapshots, for
    /// `journey timeline` to show beside the journey (empty otherwise).
    pub summaries_kept: Vec<BatchSummary>,
    /// See `summaries_kept`.
    pub snapshots_kept: Vec<RequestSnapshot>,
}

/// One journey with its verdict.
#[derive(Debug, Clone)]
pub struct JourneyReport {
    /// The `gen_ai.request.id` of the span, when it has one.
    pub request_id: Option<String>,
    /// The trace id, lowercase hex.
    pub trace_id: String,
    /// The span id, lowercase hex.
    pub span_id: String,
    /// The line of the span's first record.
    pub line: u64,
    /// Index of the span's resource in [`CheckedTrace::resources`].
    pub resource: usize,
    /// Start, end and dropped events of the span.
    pub span: SpanInfo,
    /// The journey's events, in the order they were checked; empty when a streaming check let
    /// go of them before an instance rule found the journey violating.
    pub events: Vec<RecordedEvent>,
    /// How many events the journey had.
    pub num_events: usize,
    /// The kind of each event, kept when the events themselves were let go (empty otherwise):
    /// what a violation found by an instance rule later still names.
    pub kinds: Vec<Option<EventKind>>,
    /// The lifecycle state after each event, as the checker followed it.
    pub states: Vec<State>,
    /// The verdict, without the violations of allowed rules. Instance rules (R13, R14) are
    /// included: a journey that breaks one is violating.
    pub verdict: Verdict,
}

impl JourneyReport {
    /// The request id, or `?` when the span has none.
    pub fn display_id(&self) -> &str {
        self.request_id.as_deref().unwrap_or("?")
    }

    /// The kind of the event a violation points at, as the `event` field of the JSON report
    /// gives it: `None` for a violation that concerns the whole journey (a missing FINISHED at
    /// the end, R14's overlapping spans) or an event whose name names no kind.
    pub fn event_of(&self, violation: &Violation) -> Option<&'static str> {
        if violation.rule == RuleId::UniqueLiveIds {
            return None;
        }
        let kind = match self.events.get(violation.event_index) {
            Some(e) => e.kind(),
            None => self.kinds.get(violation.event_index).copied().flatten(),
        };
        kind.map(EventKind::as_str)
    }
}

/// A journey that breaks no rule on its own, kept in brief: the streaming check lets go of its
/// events once it is checked (see [`TraceStream`]).
#[derive(Debug, Clone)]
pub struct SettledJourney {
    /// The `gen_ai.request.id` of the span, when it has one.
    pub request_id: Option<String>,
    /// The trace id, lowercase hex.
    pub trace_id: String,
    /// The span id, lowercase hex.
    pub span_id: String,
    /// The line of the span's first record.
    pub line: u64,
    /// Index of the span's resource in [`CheckedTrace::resources`].
    pub resource: usize,
    /// Start, end and dropped events of the span.
    pub span: SpanInfo,
    /// How many events it had.
    pub events: usize,
    /// The kind of each event (one byte each), for a violation an instance rule finds later.
    pub kinds: Vec<Option<EventKind>>,
    /// Its contribution to the statistics.
    pub metrics: JourneyMetrics,
}

/// Every journey of one input, checked.
#[derive(Debug, Clone, Default)]
pub struct CheckedTrace {
    /// The input's name.
    pub source_name: String,
    /// How many distinct spans the input had (journeys or not).
    pub spans: usize,
    /// The journeys kept whole (with their events), in the order they were checked: with
    /// [`check_trace`] every journey, in order of its span's first appearance; with a
    /// [`TraceStream`] the violating ones and those [`KeepEvents`] asks for.
    pub journeys: Vec<JourneyReport>,
    /// The journeys kept in brief (conforming or incomplete; [`TraceStream`] only).
    pub settled: Vec<SettledJourney>,
    /// The input's distinct resources.
    pub resources: Vec<Resource>,
    /// What else was read.
    pub counts: ReadCounts,
    /// The step windows, checked.
    pub steps: StepReport,
}

impl CheckedTrace {
    /// How many journeys were checked.
    pub fn journey_count(&self) -> usize {
        self.journeys.len() + self.settled.len()
    }
}

/// Checks every journey of `trace`, keeping every journey whole.
pub fn check_trace(trace: Trace, options: &CheckOptions) -> CheckedTrace {
    let Trace { source_name, spans, resources, counts, step_windows } = trace;
    let mut checker = Checker::new(options.clone(), KeepEvents::All);
    for window in step_windows {
        checker.add_window(window);
    }
    for span in spans {
        checker.add_span(span);
    }
    checker.finish(source_name, resources, counts)
}

/// Which journeys a streaming check keeps whole, with their events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KeepEvents {
    /// Every journey (what [`check_trace`] does).
    All,
    /// The journeys that violate a rule on their own (what `journey check` prints).
    #[default]
    Violating,
    /// The violating ones and those with this request id (what `journey timeline` draws).
    Request(String),
}

/// A journey as the checker holds it until the instance rules have been checked.
#[derive(Debug)]
enum Held {
    Whole(JourneyReport),
    Settled(SettledJourney),
}

impl Held {
    fn ids(&self) -> (&str, &str, u64) {
        match self {
            Held::Whole(j) => (&j.trace_id, &j.span_id, j.line),
            Held::Settled(j) => (&j.trace_id, &j.span_id, j.line),
        }
    }
}

/// The instance rules' state of one resource: the model's checker, which keeps only what
/// R13 and R14 need (each journey's id and times, the steps' first PREEMPTED, the SCHEDULED
/// events), and for each of its journeys the journey's index and the indices of its
/// undecodable events (to map the model's event indices back).
#[derive(Debug, Default)]
struct Instance {
    checker: InstanceChecker,
    members: Vec<(usize, Vec<u32>)>,
}

/// Checks journeys one span at a time: rules R1–R12 when a span is added, R13 and R14 per
/// scheduler instance at [`finish`](Self::finish). Memory: the journeys kept whole (see
/// [`KeepEvents`]), and for every other journey its ids, times and statistics plus what the
/// instance rules need.
#[derive(Debug)]
pub struct Checker {
    options: CheckOptions,
    keep: KeepEvents,
    journeys: Vec<Held>,
    instances: Vec<Instance>,
    spans: usize,
    /// S1–S3 per resource: what they need of the windows and journeys, compacted.
    steps: Vec<StepChecker>,
    /// Summaries and snapshots kept for [`KeepEvents::Request`].
    summaries_kept: Vec<BatchSummary>,
    snapshots_kept: Vec<RequestSnapshot>,
}

impl Checker {
    /// A checker with `options`, keeping whole the journeys `keep` says.
    pub fn new(options: CheckOptions, keep: KeepEvents) -> Checker {
        Checker {
            options,
            keep,
            journeys: Vec::new(),
            instances: Vec::new(),
            spans: 0,
            steps: Vec::new(),
            summaries_kept: Vec::new(),
            snapshots_kept: Vec::new(),
        }
    }

    fn steps_of(&mut self, resource: usize) -> &mut StepChecker {
        if self.steps.len() <= resource {
            let complete = self.options.complete;
            self.steps.resize_with(resource + 1, || StepChecker::new(complete));
        }
        &mut self.steps[resource]
    }

    /// Checks one step window on its own and keeps what S1 and S3 need of it.
    pub fn add_window(&mut self, window: ReadWindow) {
        self.spans += 1;
        self.steps_of(window.resource).add_window(&window.window);
        if let KeepEvents::Request(id) = &self.keep {
            for e in window.window.events.iter().flatten() {
                match e {
                    StepEvent::Summary(s) => self.summaries_kept.push(*s),
                    StepEvent::Snapshot(s) if s.request_id == *id => self.snapshots_kept.push(s.clone()),
                    StepEvent::Snapshot(_) => {}
                }
            }
        }
    }

    /// Checks one span (rules R1–R12) when it is a journey, and notes it for R13 and R14.
    pub fn add_span(&mut self, span: Span) {
        self.spans += 1;
        if !span.is_journey() {
            return;
        }
        let index = self.journeys.len();
        let resource = span.resource;
        if self.instances.len() <= resource {
            self.instances.resize_with(resource + 1, Instance::default);
        }
        let decoded: Vec<JourneyEvent> = span.events.iter().filter_map(|e| e.decoded.as_ref().ok().cloned()).collect();
        let unreadable: Vec<u32> = span
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.decoded.is_err())
            .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        let id = span.request_id.clone().unwrap_or_default();
        self.steps_of(resource).add_journey(&id, span.info.dropped_events > 0, &decoded);
        let instance = &mut self.instances[resource];
        instance.checker.add_journey(id, span.info, &decoded);
        instance.members.push((index, unreadable));

        let mut report = check_span(span, self.options.profile);
        let keep = match &self.keep {
            KeepEvents::All => true,
            KeepEvents::Violating => false,
            KeepEvents::Request(id) => report.request_id.as_deref() == Some(id.as_str()),
        };
        let violating = report.verdict.violations().iter().any(|v| !self.options.allow.contains(&v.rule));
        let held = if keep || violating {
            Held::Whole(report)
        } else {
            Held::Settled(SettledJourney {
                request_id: report.request_id.take(),
                trace_id: std::mem::take(&mut report.trace_id),
                span_id: std::mem::take(&mut report.span_id),
                line: report.line,
                resource: report.resource,
                span: report.span,
                events: report.num_events,
                kinds: report.events.iter().map(RecordedEvent::kind).collect(),
                metrics: JourneyMetrics::of(&report.events),
            })
        };
        self.journeys.push(held);
    }

    /// Checks the instance rules and gives every journey its verdict.
    pub fn finish(self, source_name: String, resources: Vec<Resource>, counts: ReadCounts) -> CheckedTrace {
        let Checker {
            options,
            journeys: mut held,
            instances,
            spans,
            steps: step_checkers,
            summaries_kept,
            snapshots_kept,
            ..
        } = self;
        let mut steps = StepReport { summaries_kept, snapshots_kept, ..StepReport::default() };
        for (resource, c) in step_checkers.into_iter().enumerate() {
            steps.windows += c.windows();
            steps.summaries += c.summaries();
            steps.snapshots += c.snapshots();
            let found = c.finish().into_iter().filter(|v| !options.allow.contains(&v.rule));
            steps.violations.extend(found.map(|v| (resource, v)));
        }
        let mut extra: Vec<Vec<Violation>> = vec![Vec::new(); held.len()];
        for instance in instances {
            for (j, v) in instance_rules(&held, instance) {
                extra[j].push(v);
            }
        }
        let mut journeys = Vec::new();
        let mut settled = Vec::new();
        for (journey, more) in held.drain(..).zip(extra) {
            let mut more = more;
            more.retain(|v| !options.allow.contains(&v.rule));
            match journey {
                Held::Whole(mut journey) => {
                    let verdict = std::mem::replace(&mut journey.verdict, Verdict::Conforming);
                    let mut violations = match verdict {
                        Verdict::Violating(v) => v,
                        Verdict::Conforming | Verdict::Incomplete { .. } => Vec::new(),
                    };
                    violations.extend(more);
                    violations.retain(|v| !options.allow.contains(&v.rule));
                    journey.verdict = final_verdict(violations, journey.span.dropped_events);
                    journeys.push(journey);
                }
                Held::Settled(s) if more.is_empty() => settled.push(s),
                Held::Settled(s) => {
                    // Found violating by an instance rule after its events were let go.
                    journeys.push(JourneyReport {
                        request_id: s.request_id,
                        trace_id: s.trace_id,
                        span_id: s.span_id,
                        line: s.line,
                        resource: s.resource,
                        span: s.span,
                        events: Vec::new(),
                        kinds: s.kinds,
                        states: Vec::new(),
                        num_events: s.events,
                        verdict: final_verdict(more, s.span.dropped_events),
                    });
                }
            }
        }
        CheckedTrace { source_name, spans, journeys, settled, resources, counts, steps }
    }
}

fn final_verdict(violations: Vec<Violation>, dropped_events: u32) -> Verdict {
    Verdict::from_violations(violations, dropped_events)
}

/// Rules R1–R12 on one span's journey, event by event, as [`crate::wire::push`] does it.
fn check_span(span: Span, profile: Profile) -> JourneyReport {
    let mut checker =
        JourneyChecker::new(span.request_id.clone().unwrap_or_default()).with_span(span.info).with_profile(profile);
    let mut states = Vec::with_capacity(span.events.len());
    for e in &span.events {
        // The checker keeps every violation for `finish`.
        let _ = wire::push_decoded(&mut checker, e.decoded.as_ref().map_err(|u| &u.error));
        states.push(checker.state());
    }
    JourneyReport {
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        request_id: span.request_id,
        line: span.line,
        resource: span.resource,
        span: span.info,
        num_events: span.events.len(),
        kinds: Vec::new(),
        events: span.events,
        states,
        verdict: checker.finish(),
    }
}

/// R13 and R14 over the journeys of one instance, with each violation's journey.
///
/// Event indices are mapped back from the decoded events the model saw to the journey's
/// events, and R14's message names the other span.
fn instance_rules(journeys: &[Held], instance: Instance) -> Vec<(usize, Violation)> {
    let Instance { checker, members } = instance;
    if members.is_empty() {
        return Vec::new();
    }
    checker
        .finish_by_journey()
        .into_iter()
        .filter_map(|iv| {
            let (journey, unreadable) = members.get(iv.journey)?;
            let mut v = iv.violation;
            if v.rule == RuleId::UniqueLiveIds {
                if let Some((other, _)) = iv.related
                    && let Some((o, _)) = members.get(other)
                    && let Some(held) = journeys.get(*o)
                {
                    let (trace_id, span_id, line) = held.ids();
                    v.detail =
                        Detail::other(format!("{}; the other span is {trace_id}/{span_id} (line {line})", v.detail));
                }
            } else {
                v.event_index = recorded_index(v.event_index, unreadable);
            }
            Some((*journey, v))
        })
        .collect()
}

/// The index among all of a journey's events of its `decoded`-th decoded event, given the
/// (ascending) indices of its undecodable events.
fn recorded_index(decoded: usize, unreadable: &[u32]) -> usize {
    let mut i = decoded;
    for &u in unreadable {
        if u as usize <= i {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Reads and checks one input as it streams in: a [`TraceBuilder`] with a window, whose
/// released spans go straight to a [`Checker`]. What an OTLP receiver, or `journey check`,
/// feeds decoded messages into.
///
/// ```
/// use journey_spec::otel::{CheckOptions, KeepEvents, TraceStream};
/// use journey_spec::otel::read::{ReadOptions, read_into};
///
/// let input = std::fs::read("tests/data/vllm/basic.otlp.jsonl").unwrap();
/// let mut stream = TraceStream::new("basic", CheckOptions::default()).with_window(16);
/// read_into("basic", &input[..], &ReadOptions::default(), &mut stream, &mut |e| panic!("{e}"));
/// let checked = stream.finish();
/// assert_eq!((checked.journey_count(), checked.journeys.len()), (200, 0));
/// ```
#[derive(Debug)]
pub struct TraceStream {
    builder: TraceBuilder,
    checker: Checker,
}

impl TraceStream {
    /// The default window: spans held before the least recently touched are checked.
    pub const DEFAULT_WINDOW: usize = 4096;

    /// A stream for the input `source_name`, keeping whole only the violating journeys.
    pub fn new(source_name: impl Into<String>, options: CheckOptions) -> TraceStream {
        TraceStream {
            builder: TraceBuilder::new(source_name).with_window(Self::DEFAULT_WINDOW),
            checker: Checker::new(options, KeepEvents::Violating),
        }
    }

    /// Holds at most about `spans` spans (see [`TraceBuilder::with_window`]).
    pub fn with_window(mut self, spans: usize) -> TraceStream {
        self.builder = self.builder.with_window(spans);
        self
    }

    /// Keeps whole the journeys `keep` says.
    pub fn keep(mut self, keep: KeepEvents) -> TraceStream {
        self.checker.keep = keep;
        self
    }

    /// Adds an OTLP `ExportTraceServiceRequest` found at `position`; returns the records that
    /// could not be used.
    pub fn add_export_request(&mut self, request: &ExportTraceServiceRequest, position: u64) -> Vec<InputError> {
        let errors = self.builder.add_export_request(request, position);
        self.drain();
        errors
    }

    /// Adds an OTLP `TracesData` found at `position`.
    pub fn add_traces_data(&mut self, data: &TracesData, position: u64) -> Vec<InputError> {
        let errors = self.builder.add_traces_data(data, position);
        self.drain();
        errors
    }

    fn drain(&mut self) {
        for window in self.builder.take_step_windows() {
            self.checker.add_window(window);
        }
        for span in self.builder.take_released() {
            self.checker.add_span(span);
        }
    }

    /// Checks what is still held and the instance rules.
    pub fn finish(mut self) -> CheckedTrace {
        self.drain();
        let Trace { source_name, spans, resources, counts, step_windows } = self.builder.finish();
        for window in step_windows {
            self.checker.add_window(window);
        }
        for span in spans {
            self.checker.add_span(span);
        }
        self.checker.finish(source_name, resources, counts)
    }
}

impl Assemble for TraceStream {
    fn add_request(&mut self, request: &ExportTraceServiceRequest, position: u64) -> Vec<InputError> {
        self.add_export_request(request, position)
    }

    fn counts_mut(&mut self) -> &mut ReadCounts {
        self.builder.counts_mut()
    }

    fn set_unit(&mut self, unit: Unit) {
        self.builder.set_unit(unit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otel::read::{ReadOptions, read_into, read_trace};
    use crate::otel::summary::Summary;

    fn data(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)).unwrap()
    }

    fn batch(input: &[u8]) -> Summary {
        let mut s = Summary::new();
        s.add(check_trace(read_trace("t", input, |e| panic!("{e}")), &CheckOptions::default()), 0);
        s
    }

    fn streamed(input: &[u8], window: usize) -> (Summary, Vec<String>) {
        let mut stream = TraceStream::new("t", CheckOptions::default()).with_window(window);
        let mut errors = Vec::new();
        read_into("t", input, &ReadOptions::default(), &mut stream, &mut |e| errors.push(e.to_string()));
        let mut s = Summary::new();
        s.add(stream.finish(), errors.len() as u64);
        (s, errors)
    }

    fn totals(s: &Summary) -> (u64, u64, u64, u64, u64, Vec<(RuleId, u64)>) {
        let rules = s.violations_by_rule().into_iter().collect();
        (s.journeys, s.events, s.conforming, s.incomplete, s.violating, rules)
    }

    #[test]
    fn a_small_window_gives_the_batch_verdicts() {
        for name in [
            "vllm/kv_pressure.otlp.jsonl",
            "vllm-random/w6.otlp.jsonl",
            "corrupted/R13.admitted-after-a-preemption-in-the-same-step.otlp.jsonl",
            "corrupted/R14.request-id-reused-while-live.otlp.jsonl",
            "corrupted/R9.preemption-count-off-by-one.otlp.jsonl",
        ] {
            let input = data(name);
            let want = batch(&input);
            for window in [2, 8, 4096] {
                let (got, errors) = streamed(&input, window);
                assert!(errors.is_empty(), "{name}: {errors:?}");
                assert_eq!(totals(&got), totals(&want), "{name}, window {window}");
                assert_eq!(got.stats, want.stats, "{name}, window {window}");
            }
        }
    }

    #[test]
    fn a_record_after_its_span_was_let_go_is_reported() {
        let input = data("vllm/basic.otlp.jsonl");
        let first = input.split(|&b| b == b'\n').next().unwrap().to_vec();
        let mut late = input.clone();
        late.extend_from_slice(&first);
        late.push(b'\n');
        let (got, errors) = streamed(&late, 8);
        assert!(!errors.is_empty() && errors.iter().all(|e| e.contains("was already checked")), "{errors:?}");
        assert_eq!(totals(&got), totals(&batch(&input)));
        // With the whole input in the window, the copy merges as before.
        let (got, errors) = streamed(&late, 4096);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(got.journeys, batch(&input).journeys);
    }
}
