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

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::TracesData;

use crate::model::api::{ApiEvent, ApiKind, ApiState, AttrValue, Endpoint, REASON, check_api_span};
use crate::model::cross::{About, ApiSide, CoreSide, CrossOptions, Expected, check_layers};
use crate::model::ns::check_monotonic_ns;
use crate::model::{
    Detail, EventKind, InstanceChecker, JourneyChecker, JourneyEvent, Profile, RequestId, RuleId, SpanInfo, State,
    Step, StepChecker, Verdict, Violation,
};
use crate::wire;

use crate::model::steps::{BatchSummary, RequestSnapshot, StepEvent};

use super::read::{
    Assemble, InputError, ReadCounts, ReadWindow, RecordedEvent, Resource, Span, Trace, TraceBuilder, Unit, hex,
};
use super::summary::{JourneyMetrics, Stats};

/// What to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Rules whose violations are dropped from every verdict (`journey check --allow`).
    pub allow: BTreeSet<RuleId>,
    /// The scheduling profile the journeys are checked under (`journey check --profile`).
    pub profile: Profile,
    /// The input holds every span of every request (`journey check --complete`, `SPEC.md` §10):
    /// a missing partner span is a violation (X5) rather than counted as unpaired, S3's counts
    /// compare for equality, and a snapshot's request must have a journey.
    pub complete: bool,
    /// The workload that produced the input (`journey check --workload`, `SPEC.md` §10).
    pub workload: Option<Expected>,
    /// The horizon, in nanoseconds of trace time (`--horizon`): a streaming check that keeps
    /// only the violating journeys decides the relations of a span, and lets go of what it
    /// kept of it, once the latest span end seen in the input is this far past its end (with
    /// the spans still held as context, see [`Checker`]); a span that arrives starting before
    /// what was decided ended is counted as behind the horizon
    /// ([`CheckedTrace::behind_horizon`]). `None`: everything is kept
    /// until the end (and always with a workload, whose rules need every span).
    pub horizon: Option<u64>,
    /// The facts horizon, in nanoseconds of trace time (`--facts-horizon`): with a horizon, what
    /// R13, R14 and the cross-layer pairs need of the spans let go (a few words per span and
    /// step) is kept so that a span arriving behind the horizon is still checked against them,
    /// until the latest span end seen is about this far past their letting go (they are
    /// dropped an eighth of it at a time); a span arriving that starts before what was dropped
    /// ended is counted as behind the horizon. It bounds what a long run holds by the journeys
    /// of the last facts horizon. `None`: [`FACTS_PER_HORIZON`](Self::FACTS_PER_HORIZON)
    /// times the horizon.
    pub facts_horizon: Option<u64>,
}

impl CheckOptions {
    /// The horizon `journey check` and `journey serve` use unless told otherwise
    /// (`--horizon 600`): ten minutes of trace time.
    pub const DEFAULT_HORIZON_NS: u64 = 600_000_000_000;

    /// The facts horizon unless told otherwise, in horizons: 64 (10 h 40 min of trace time with
    /// the default horizon), so that a journey arriving up to that long after it started is
    /// still checked against what was let go.
    pub const FACTS_PER_HORIZON: u64 = 64;
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
    /// The verdict, without the violations of allowed rules. Instance rules (R13, R14) and the
    /// cross-layer rules about this span (X1–X4, W1) are included.
    pub verdict: Verdict,
    /// The `llm_request` this core span is the child of, when it is in the input.
    pub api_parent: Option<ApiLink>,
}

/// A core span's API parent, in brief: what the text report shows beside the core journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLink {
    /// Its index in [`CheckedTrace::api`].
    pub index: usize,
    /// Its request id.
    pub request_id: Option<String>,
    /// Its span id.
    pub span_id: String,
    /// Its endpoint.
    pub endpoint: Endpoint,
    /// The kinds of its events.
    pub kinds: Vec<Option<ApiKind>>,
}

/// One `llm_request` span with its verdict (rules A1–A4, and X5/X6 about it).
#[derive(Debug, Clone)]
pub struct ApiReport {
    /// The API request id (`gen_ai.request.id`), when the span has one.
    pub request_id: Option<String>,
    /// The trace id, lowercase hex.
    pub trace_id: String,
    /// The span id, lowercase hex.
    pub span_id: String,
    /// The parent span id (the client's), when the span has one.
    pub parent_span_id: Option<String>,
    /// The line of the span's first record.
    pub line: u64,
    /// Index of the span's resource in [`CheckedTrace::resources`].
    pub resource: usize,
    /// The endpoint whose lifecycle was checked.
    pub endpoint: Endpoint,
    /// Start, end and dropped events.
    pub span: SpanInfo,
    /// How many `api.*` events it had.
    pub num_events: usize,
    /// The events, when kept (violating spans, and those [`KeepEvents`] asks for).
    pub events: Vec<ApiEvent>,
    /// The kind of each event (`None` for an unknown `api.*` name).
    pub kinds: Vec<Option<ApiKind>>,
    /// The API state after each event (with the events).
    pub states: Vec<ApiState>,
    /// The span ids and request ids of its core children, in order of their start.
    pub children: Vec<(String, Option<String>)>,
    /// The verdict, without the violations of allowed rules.
    pub verdict: Verdict,
}

impl ApiReport {
    /// The request id, or `?` when the span has none.
    pub fn display_id(&self) -> &str {
        self.request_id.as_deref().unwrap_or("?")
    }

    /// The kind of the event a violation points at (`None` for the span as a whole).
    pub fn event_of(&self, violation: &Violation) -> Option<&'static str> {
        self.kinds.get(violation.event_index).copied().flatten().map(ApiKind::as_str)
    }
}

/// What the cross-layer rules found besides violations (`SPEC.md` §9.3, §10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerCounts {
    /// `llm_request` spans.
    pub api_spans: u64,
    /// API spans with at least one core child in the input.
    pub pairs: u64,
    /// API spans whose core child is expected but absent (without `--complete`).
    pub unpaired_api: u64,
    /// Core spans whose API parent is absent, in an input with an API layer (without
    /// `--complete`).
    pub unpaired_core: u64,
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
    /// Every `llm_request` span, in order of first appearance (events kept as [`KeepEvents`]
    /// says and for the violating ones).
    pub api: Vec<ApiReport>,
    /// Workload requests with no span at all that should have one (`--workload`; C3, X5).
    pub absent: Vec<Violation>,
    /// Pairs and unpaired spans.
    pub layers: LayerCounts,
    /// The step windows, checked.
    pub steps: StepReport,
    /// The journeys decided behind the horizon and let go, in brief (totals and statistics).
    pub retired: Retired,
    /// Spans and step windows that arrived behind the horizon, after the spans they could
    /// relate to had been decided and let go (see [`CheckOptions::horizon`]): their relations to
    /// those spans were not checked, so the check is incomplete.
    pub behind_horizon: u64,
}

impl CheckedTrace {
    /// How many journeys were checked.
    pub fn journey_count(&self) -> usize {
        let retired = usize::try_from(self.retired.journeys).unwrap_or(usize::MAX);
        self.journeys.len().saturating_add(self.settled.len()).saturating_add(retired)
    }
}

/// The journeys a streaming check decided behind the horizon and let go of, as the summary
/// counts them: what [`CheckedTrace::settled`] would have held, folded. The violating ones are
/// in [`CheckedTrace::journeys`] as always.
#[derive(Debug, Clone, Default)]
pub struct Retired {
    /// Journeys that break no rule, let go.
    pub journeys: u64,
    /// Their events.
    pub events: u64,
    /// Those without a request id.
    pub without_request_id: u64,
    /// Those that are complete.
    pub conforming: u64,
    /// Those that lost events (kept in brief, without their event kinds).
    pub incomplete: Vec<SettledJourney>,
    /// Their statistics (exact: one value per journey and distribution).
    pub stats: Stats,
}

impl Retired {
    fn add(&mut self, s: SettledJourney) {
        self.journeys += 1;
        self.events = self.events.saturating_add(s.events as u64);
        self.without_request_id += u64::from(s.request_id.is_none());
        self.stats.add(&s.metrics);
        if s.span.dropped_events > 0 {
            self.incomplete.push(SettledJourney { kinds: Vec::new(), ..s });
        } else {
            self.conforming += 1;
        }
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
#[derive(Debug, Clone)]
enum Held {
    Whole(JourneyReport),
    Settled(SettledJourney),
}

impl Held {
    fn num_events(&self) -> usize {
        match self {
            Held::Whole(j) => j.num_events,
            Held::Settled(j) => j.events,
        }
    }

    fn resource_and_id(&self) -> (usize, Option<&str>) {
        match self {
            Held::Whole(j) => (j.resource, j.request_id.as_deref()),
            Held::Settled(j) => (j.resource, j.request_id.as_deref()),
        }
    }

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
#[derive(Debug, Clone, Default)]
struct Instance {
    checker: InstanceChecker,
    members: Vec<(usize, Vec<u32>)>,
}

/// What an instance keeps, in one [`Generation`], of the journeys it let go behind the horizon,
/// so that a journey arriving behind it is still checked against them for R13 and R14 (see
/// [`Generation::check_late`]). Each table is a vector sorted by its key, merged into once per
/// decision pass (the steps of an instance grow, so a pass's steps are mostly appended): a few
/// words per entry, where hash tables of the same facts took several times that.
///
/// R14 keys each span by a keyed 128-bit fingerprint of its request id (two SipHash keys drawn
/// at random per check): a false R14 violation would need two distinct ids to agree on both
/// halves, about 2⁻¹²⁸ per pair of spans compared, which the keys keep out of an input's reach.
#[derive(Debug, Clone, Default)]
struct LetGo {
    /// R14: (id fingerprint, start, end) of each span let go, sorted by fingerprint; spans with
    /// the same fingerprint (an id reused) in the order they were let go.
    ids: Vec<(u128, u64, u64)>,
    /// R13: per step, the time of its latest SCHEDULED, sorted by step.
    scheduled: Vec<(Step, f64)>,
    /// R13: per step that had one, its earliest PREEMPTED (the first let go among equal times),
    /// sorted by step.
    preempted: Vec<PreemptedFact>,
    /// The request ids of the PREEMPTED journeys of `preempted`, end to end (for the violation
    /// text only): the `i`-th ends at `id_ends[i]`.
    id_text: String,
    id_ends: Vec<usize>,
}

/// R13's earliest PREEMPTED of one step over the journeys let go.
#[derive(Debug, Clone, Copy)]
struct PreemptedFact {
    step: Step,
    ts: f64,
    /// The event's index among its journey's decoded events.
    event: usize,
    /// Its journey's request id: an index into [`LetGo::id_ends`].
    id: usize,
}

/// Merges `new` into `v`, both sorted by `key` (stably): among equal keys, `v`'s come first.
fn merge_sorted<T, K: Ord>(v: &mut Vec<T>, mut new: Vec<T>, key: impl Fn(&T) -> K) {
    match (v.last(), new.first()) {
        (_, None) => return,
        (Some(a), Some(b)) if key(a) > key(b) => {}
        _ => {
            v.append(&mut new);
            return;
        }
    }
    let mut out = Vec::with_capacity(v.len().saturating_add(new.len()));
    let mut a = std::mem::take(v).into_iter().peekable();
    let mut b = new.into_iter().peekable();
    loop {
        let from_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => key(x) <= key(y),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if from_a { a.next() } else { b.next() });
    }
    *v = out;
}

impl LetGo {
    /// Notes what R13 and R14 need of the journeys of `part`, which are let go.
    fn absorb(&mut self, part: &InstanceChecker, fingerprint: impl Fn(&str) -> u128) {
        let ids: Vec<&RequestId> = part.journeys().map(|(id, _)| id).collect();
        let mut spans: Vec<(u128, u64, u64)> = part
            .journeys()
            .filter(|(id, _)| !id.as_str().is_empty())
            .filter_map(|(id, span)| Some((fingerprint(id.as_str()), span.start_unix_nano?, span.end_unix_nano?)))
            .collect();
        spans.sort_by_key(|s| s.0);
        merge_sorted(&mut self.ids, spans, |s| s.0);

        // Per step, the earliest PREEMPTED of the part (the first among equal times).
        let mut preempted: Vec<(Step, usize, usize, f64)> = part.preempted().collect();
        preempted.sort_by_key(|p| p.0);
        preempted.dedup_by(|later, kept| {
            if later.0 != kept.0 {
                return false;
            }
            if later.3 < kept.3 {
                *kept = *later;
            }
            true
        });
        let mut last_journey = None;
        let facts: Vec<PreemptedFact> = preempted
            .into_iter()
            .map(|(step, journey, event, ts)| {
                if last_journey.is_none_or(|(j, _)| j != journey) {
                    self.id_text.push_str(ids.get(journey).map_or("", |id| id.as_str()));
                    self.id_ends.push(self.id_text.len());
                    last_journey = Some((journey, self.id_ends.len().saturating_sub(1)));
                }
                let id = last_journey.map_or(0, |(_, i)| i);
                PreemptedFact { step, ts, event, id }
            })
            .collect();
        merge_sorted(&mut self.preempted, facts, |p| p.step);
        self.preempted.dedup_by(|later, kept| {
            if later.step != kept.step {
                return false;
            }
            if later.ts < kept.ts {
                *kept = *later;
            }
            true
        });

        let mut scheduled: Vec<(Step, f64)> = part.scheduled().map(|(step, _, _, ts)| (step, ts)).collect();
        scheduled.sort_by_key(|s| s.0);
        merge_sorted(&mut self.scheduled, scheduled, |s| s.0);
        self.scheduled.dedup_by(|later, kept| {
            if later.0 != kept.0 {
                return false;
            }
            kept.1 = kept.1.max(later.1);
            true
        });
    }

    /// The request id of a PREEMPTED fact.
    fn id_of(&self, fact: &PreemptedFact) -> &str {
        let end = self.id_ends.get(fact.id).copied().unwrap_or(0);
        let start = fact.id.checked_sub(1).and_then(|i| self.id_ends.get(i)).copied().unwrap_or(0);
        self.id_text.get(start..end).unwrap_or("")
    }

    fn preempted_at(&self, step: Step) -> Option<&PreemptedFact> {
        self.preempted.binary_search_by_key(&step, |p| p.step).ok().and_then(|i| self.preempted.get(i))
    }

    fn scheduled_at(&self, step: Step) -> Option<f64> {
        self.scheduled.binary_search_by_key(&step, |s| s.0).ok().and_then(|i| self.scheduled.get(i)).map(|s| s.1)
    }

    /// The (start, end) of the spans let go with this id fingerprint, in the order let go.
    fn spans_of(&self, key: u128) -> impl Iterator<Item = (u64, u64)> + '_ {
        let from = self.ids.partition_point(|s| s.0 < key);
        self.ids.get(from..).unwrap_or_default().iter().take_while(move |s| s.0 == key).map(|s| (s.1, s.2))
    }

    fn shrink(&mut self) {
        self.ids.shrink_to_fit();
        self.scheduled.shrink_to_fit();
        self.preempted.shrink_to_fit();
        self.id_text.shrink_to_fit();
        self.id_ends.shrink_to_fit();
    }
}

/// What was kept of the spans let go in a stretch of trace time (see [`Checker`]'s `facts`):
/// the facts are dropped a generation at a time, once the newest trace time is
/// [`CheckOptions::facts_horizon`] past the generation's last pass.
#[derive(Debug, Clone, Default)]
struct Generation {
    /// The trace time (Unix ns) of the first decision pass that let go into it.
    from: u64,
    /// That of the last: every span it holds facts of ended before it.
    until: u64,
    /// Per resource (sorted by resource), what its instance let go.
    instances: Vec<(usize, LetGo)>,
    /// Fingerprints (sorted) of the (trace, span) ids of the API spans and other spans let go: a
    /// core span arriving later with one of them as its parent relates to a span let go.
    parents_of: Vec<u64>,
    /// Fingerprints (sorted) of the (trace, parent span) ids of the core spans let go: an API
    /// span arriving later with one of them as its ids had a child let go.
    children_of: Vec<u64>,
}

impl Generation {
    fn instance(&self, resource: usize) -> Option<&LetGo> {
        self.instances.binary_search_by_key(&resource, |i| i.0).ok().and_then(|i| self.instances.get(i)).map(|i| &i.1)
    }

    fn instance_mut(&mut self, resource: usize) -> &mut LetGo {
        let i = match self.instances.binary_search_by_key(&resource, |i| i.0) {
            Ok(i) => i,
            Err(i) => {
                self.instances.insert(i, (resource, LetGo::default()));
                i
            }
        };
        &mut self.instances[i].1
    }

    fn add_fingerprints(set: &mut Vec<u64>, mut new: Vec<u64>) {
        new.sort_unstable();
        merge_sorted(set, new, |p| *p);
        set.dedup();
    }

    fn shrink(&mut self) {
        for (_, let_go) in &mut self.instances {
            let_go.shrink();
        }
        self.instances.shrink_to_fit();
        self.parents_of.shrink_to_fit();
        self.children_of.shrink_to_fit();
    }

    /// Checks a journey of `resource` arriving behind the horizon against the journeys let go
    /// of `generations`, as [`InstanceChecker`] would with them held: the R13 and R14
    /// violations of the journey itself, and whether a relation could not be checked — one that
    /// would make a journey let go violating (a PREEMPTED before a let-go SCHEDULED of the same
    /// step; a span with the same id that R14's order puts after one let go and overlaps it).
    fn check_late(
        generations: &VecDeque<Generation>,
        resource: usize,
        key: u128,
        id: &RequestId,
        span: &SpanInfo,
        decoded: &[JourneyEvent],
        unreadable: &[u32],
    ) -> (Vec<Violation>, bool) {
        let instances: Vec<&LetGo> = generations.iter().filter_map(|g| g.instance(resource)).collect();
        let mut found = Vec::new();
        let mut unchecked = false;
        if instances.is_empty() {
            return (found, unchecked);
        }
        for (k, e) in decoded.iter().enumerate() {
            match e.kind {
                EventKind::Scheduled => {
                    // The earliest over the generations, the first let go among equal times.
                    let mut earliest: Option<(&LetGo, &PreemptedFact)> = None;
                    for &let_go in &instances {
                        if let Some(p) = let_go.preempted_at(e.step)
                            && earliest.is_none_or(|(_, q)| p.ts < q.ts)
                        {
                            earliest = Some((let_go, p));
                        }
                    }
                    if let Some((let_go, p)) = earliest
                        && e.ts_monotonic > p.ts
                    {
                        let (pev, pts) = (p.event, p.ts);
                        found.push(Violation {
                            rule: RuleId::NoAdmissionAfterPreemption,
                            request_id: id.clone(),
                            event_index: recorded_index(k, unreadable),
                            detail: Detail::other(format!(
                                "SCHEDULED at step {}, t={}, after request {:?} was PREEMPTED in the same step (event #{pev}, t={pts}; let go behind the horizon)",
                                e.step,
                                e.ts_monotonic,
                                let_go.id_of(p),
                            )),
                        });
                    }
                }
                EventKind::Preempted => {
                    unchecked |= instances.iter().any(|l| l.scheduled_at(e.step).is_some_and(|t| t > e.ts_monotonic));
                }
                EventKind::Queued | EventKind::FirstToken | EventKind::Finished => {}
            }
        }
        if !id.as_str().is_empty()
            && let (Some(start), Some(end)) = (span.start_unix_nano, span.end_unix_nano)
        {
            // R14 sorts the spans of an id by (start, end), then by arrival: the let-go ones
            // come first among equals.
            let mut live: Option<(u64, u64)> = None;
            for (s, e) in instances.iter().flat_map(|l| l.spans_of(key)) {
                if (s, e) <= (start, end) {
                    if e > start && live.is_none_or(|(_, le)| e > le) {
                        live = Some((s, e));
                    }
                } else if s < end {
                    unchecked = true;
                }
            }
            if let Some((s, e)) = live {
                found.push(Violation {
                    rule: RuleId::UniqueLiveIds,
                    request_id: id.clone(),
                    event_index: 0,
                    detail: Detail::other(format!(
                        "a span for request {:?} starts at {start} ns while another span for it, started at {s} ns, is live until {e} ns; the other span was let go behind the horizon",
                        id.as_str()
                    )),
                });
            }
        }
        (found, unchecked)
    }
}

/// Checks journeys one span at a time: rules R1–R12 when a span is added, R13 and R14 per
/// scheduler instance (and the cross-layer rules) at [`finish`](Self::finish), or behind the
/// horizon ([`CheckOptions::horizon`]) as the input goes on. Memory: the journeys kept whole
/// (see [`KeepEvents`]), and for every other journey not yet decided its ids, times and
/// statistics plus what the relation rules need; for one decided, its latency values (up to
/// [`Samples::EXACT_LIMIT`](super::summary::Samples::EXACT_LIMIT), then bucket counts), and
/// until the facts horizon ([`CheckOptions::facts_horizon`]) is past it a few words of facts
/// for the relation rules.
#[derive(Debug, Clone)]
pub struct Checker {
    options: CheckOptions,
    keep: KeepEvents,
    journeys: Vec<Held>,
    instances: Vec<Instance>,
    spans: usize,
    /// Parallel to `journeys`: what the cross-layer rules need of each core span.
    cores: Vec<CoreSide>,
    /// Parallel to `api`: what the cross-layer rules need of each API span.
    apis: Vec<ApiSide>,
    api: Vec<ApiReport>,
    /// (trace, span) of the spans that are neither journeys nor API spans, for X1.
    others: HashSet<(String, String)>,
    /// S1–S3 per resource: what they need of the windows and journeys, compacted.
    steps: Vec<StepChecker>,
    /// Summaries and snapshots kept for [`KeepEvents::Request`].
    summaries_kept: Vec<BatchSummary>,
    snapshots_kept: Vec<RequestSnapshot>,
    /// Journeys before this index were handed to [`TraceStream::for_each_checked`].
    handed_out: usize,
    /// Whether [`for_each_checked`](Self::for_each_checked) was ever called: then only the
    /// journeys handed out may be let go.
    hands_out: bool,
    /// Parallel to `journeys` and to `api`: each span's (start, end) in trace time, for the
    /// horizon.
    times: Vec<(u64, u64)>,
    api_times: Vec<(u64, u64)>,
    /// Parallel to `journeys`: the journey's number in its resource's step checker.
    step_seq: Vec<u64>,
    /// Parallel to `journeys`: violations of instance rules found while deciding journeys it
    /// relates to (which were let go since), added to its own when it is decided.
    carried: Vec<Vec<Violation>>,
    /// Journeys of the instances held only as context (see [`decide_part`](Self::decide_part)):
    /// their members' indices start here.
    context_from: usize,
    /// The end of each span in `others`, to let go of them behind the horizon.
    others_ends: Vec<(u64, (String, String))>,
    /// Per resource: its step checker let go of journeys' facts before it had a window.
    steps_forgot: Vec<bool>,
    /// The latest span end seen (trace time, Unix ns).
    latest_end: u64,
    /// Every span that ended before this was decided and let go (0: none).
    decided_until: u64,
    /// Spans and windows that arrived behind the horizon.
    behind_horizon: u64,
    /// Whether an API span was seen (the input has an API layer).
    api_seen: bool,
    /// What was decided and let go.
    decided: Decided,
    /// The next decision pass comes when this many spans are held.
    next_pass: usize,
    /// The fewest spans held for a pass ([`MIN_PASS`]; smaller in tests).
    min_pass: usize,
    /// The keys of the fingerprints of what was let go.
    keys: [RandomState; 2],
    /// Journeys and API spans that arrived behind the horizon and were checked against what was
    /// kept of the spans let go.
    late_checked: u64,
    /// What R13, R14 and the cross-layer pairs need of the spans let go, oldest first, in
    /// generations of a stretch of trace time each (an eighth of the facts horizon), dropped
    /// whole once the facts horizon ([`CheckOptions::facts_horizon`]) is past them.
    facts: VecDeque<Generation>,
    /// Every span that ended before this had its facts dropped (0: none): a span arriving that
    /// starts before it may relate to one of them, and is counted as behind the horizon.
    forgotten_until: u64,
}

/// What a streaming check decided behind the horizon: the violating journeys and API spans
/// (and those linked to them), the pair counts, and the rest in brief.
#[derive(Debug, Clone, Default)]
struct Decided {
    journeys: Vec<JourneyReport>,
    api: Vec<ApiReport>,
    absent: Vec<Violation>,
    layers: LayerCounts,
    retired: Retired,
    /// Core spans decided before any API span was seen: without a parent, and unpaired if an
    /// API layer turns up later.
    orphans_unlayered: u64,
}

/// The fewest spans held before a decision pass (the passes are then amortised: the next one
/// comes when twice as many as were left are held).
const MIN_PASS: usize = 4096;

/// A journey the checker has just checked on its own (R1–R12, C2), before the rules that relate
/// spans (instance, cross-layer and step rules, decided at [`Checker::finish`]).
#[derive(Debug, Clone, Copy)]
pub enum JustChecked<'a> {
    /// Kept whole: it violates a rule on its own, or [`KeepEvents`] asks for it.
    Whole(&'a JourneyReport),
    /// Kept in brief: it breaks no rule on its own.
    Settled(&'a SettledJourney),
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
            cores: Vec::new(),
            apis: Vec::new(),
            api: Vec::new(),
            others: HashSet::new(),
            steps: Vec::new(),
            summaries_kept: Vec::new(),
            snapshots_kept: Vec::new(),
            handed_out: 0,
            hands_out: false,
            times: Vec::new(),
            api_times: Vec::new(),
            step_seq: Vec::new(),
            carried: Vec::new(),
            context_from: usize::MAX,
            others_ends: Vec::new(),
            steps_forgot: Vec::new(),
            latest_end: 0,
            decided_until: 0,
            behind_horizon: 0,
            api_seen: false,
            decided: Decided::default(),
            next_pass: MIN_PASS,
            min_pass: MIN_PASS,
            keys: [RandomState::new(), RandomState::new()],
            late_checked: 0,
            facts: VecDeque::new(),
            forgotten_until: 0,
        }
    }

    /// The fingerprint of a request id, for R14 (see [`LetGo`]).
    fn id_fingerprint(keys: &[RandomState; 2], id: &str) -> u128 {
        (u128::from(keys[0].hash_one(id)) << 64) | u128::from(keys[1].hash_one(id))
    }

    /// The fingerprint of a (trace, span) pair of ids: a false match only counts a span as
    /// behind the horizon.
    fn pair_fingerprint(&self, trace_id: &str, span_id: &str) -> u64 {
        self.keys[0].hash_one((trace_id, span_id))
    }

    /// Calls `f` on each journey checked since the last call, in the order they were checked.
    pub fn for_each_checked(&mut self, mut f: impl FnMut(JustChecked<'_>)) {
        for held in self.journeys.get(self.handed_out..).unwrap_or_default() {
            f(match held {
                Held::Whole(j) => JustChecked::Whole(j),
                Held::Settled(j) => JustChecked::Settled(j),
            });
        }
        self.handed_out = self.journeys.len();
        self.hands_out = true;
        self.maybe_decide();
    }

    /// Whether `keep` asks for the events of a span with `request_id` — the id itself, or, for
    /// `journey timeline` given either layer's id, a core id that extends it.
    fn keeps(&self, request_id: Option<&str>, api: bool) -> bool {
        match &self.keep {
            KeepEvents::All => true,
            KeepEvents::Violating => false,
            KeepEvents::Request(id) => request_id.is_some_and(|r| {
                let (short, long) = if api { (r, id.as_str()) } else { (id.as_str(), r) };
                r == id || long.starts_with(&format!("{short}-")) || long.contains(&format!("_{short}-"))
            }),
        }
    }

    /// Checks one API span (A1–A4) and notes it for the cross-layer rules.
    fn add_api_span(&mut self, span: &Span) {
        let api_span = span.api_span();
        let outcome = check_api_span(&api_span);
        let time = |k: ApiKind| api_span.events.iter().find(|e| e.kind() == Some(k)).and_then(|e| e.time_unix_nano);
        let aborted = api_span.events.iter().find(|e| e.kind() == Some(ApiKind::Aborted)).map(|e| {
            (e.time_unix_nano.unwrap_or(0), e.attribute(REASON).and_then(AttrValue::as_str).map(str::to_owned))
        });
        let request_id = api_span.request_id().map(str::to_owned);
        let (times, late) = self.arrive(span.info.start_unix_nano, span.info.end_unix_nano);
        self.late_checked += u64::from(late);
        if late
            && (times.0 < self.forgotten_until || {
                let p = self.pair_fingerprint(&hex(&span.trace_id), &hex(&span.span_id));
                self.facts.iter().any(|g| g.children_of.binary_search(&p).is_ok())
            })
        {
            // A child of it was let go (or may have been, its facts dropped): the pair was not
            // checked.
            self.behind_horizon += 1;
        }
        self.api_times.push(times);
        self.api_seen = true;
        self.apis.push(ApiSide {
            trace_id: hex(&span.trace_id),
            span_id: hex(&span.span_id),
            parent_span_id: span.parent_span_id_hex(),
            request_id: request_id.clone(),
            endpoint: Some(outcome.endpoint),
            n: api_span.n(),
            start: span.info.start_unix_nano,
            end: span.info.end_unix_nano,
            flags: span.layer.flags,
            arrived: time(ApiKind::Arrived),
            handoff: time(ApiKind::HandoffToCore),
            first_response: time(ApiKind::FirstResponseFromCore),
            departed: time(ApiKind::Departed),
            aborted,
        });
        let violating = outcome.verdict.violations().iter().any(|v| !self.options.allow.contains(&v.rule));
        let keep = violating || self.keeps(request_id.as_deref(), true);
        let kinds = api_span.events.iter().map(ApiEvent::kind).collect();
        self.api.push(ApiReport {
            request_id,
            trace_id: hex(&span.trace_id),
            span_id: hex(&span.span_id),
            parent_span_id: span.parent_span_id_hex(),
            line: span.line,
            resource: span.resource,
            endpoint: outcome.endpoint,
            span: span.info,
            num_events: api_span.events.len(),
            events: if keep { api_span.events } else { Vec::new() },
            kinds,
            states: if keep { outcome.states } else { Vec::new() },
            children: Vec::new(),
            verdict: outcome.verdict,
        });
    }

    /// What the cross-layer rules need of a core span.
    fn core_side(span: &Span) -> CoreSide {
        let time = |k: EventKind| span.events.iter().find(|e| e.kind() == Some(k)).map(|e| e.time_unix_nano);
        let finished = span
            .events
            .iter()
            .find(|e| e.kind() == Some(EventKind::Finished))
            .map(|e| (e.time_unix_nano, e.decoded.as_ref().ok().and_then(|d| d.finish_status)));
        let totals = span
            .events
            .iter()
            .find_map(|e| e.decoded.as_ref().ok())
            .map(|d| (d.progress.prefill_total, d.progress.decode_max));
        CoreSide {
            trace_id: hex(&span.trace_id),
            span_id: hex(&span.span_id),
            parent_span_id: span.parent_span_id_hex(),
            request_id: span.request_id.clone(),
            kind: span.layer.kind,
            scope: span.layer.scope.to_string(),
            start: span.info.start_unix_nano,
            end: span.info.end_unix_nano,
            flags: span.layer.flags,
            queued: time(EventKind::Queued),
            first_token: time(EventKind::FirstToken),
            finished,
            totals,
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
        let known = |t: u64| (t > 0).then_some(t);
        let (start, _) = self.time_of(known(window.start_unix_nano), known(window.end_unix_nano));
        self.latest_end = self.latest_end.max(window.end_unix_nano);
        if self.steps_forgot.get(window.resource).copied().unwrap_or(false) && start < self.decided_until {
            // Journeys of its steps may have been let go before it came.
            self.behind_horizon += 1;
        }
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
        if span.is_api() {
            self.add_api_span(&span);
        }
        if !span.is_journey() {
            if !span.is_api() {
                let key = (hex(&span.trace_id), hex(&span.span_id));
                let (_, end) = self.time_of(span.info.start_unix_nano, span.info.end_unix_nano);
                self.latest_end = self.latest_end.max(end);
                if self.options.horizon.is_some() {
                    self.others_ends.push((end, key.clone()));
                }
                self.others.insert(key);
            }
            return;
        }
        let (times, late) = self.arrive(span.info.start_unix_nano, span.info.end_unix_nano);
        self.late_checked += u64::from(late);
        self.times.push(times);
        let core = Self::core_side(&span);
        // Behind the horizon: its API parent (or other parent span) was let go, or what was let
        // go that it may relate to was dropped.
        let mut unchecked = late
            && (times.0 < self.forgotten_until
                || core.parent_span_id.as_deref().is_some_and(|p| {
                    let p = self.pair_fingerprint(&core.trace_id, p);
                    self.facts.iter().any(|g| g.parents_of.binary_search(&p).is_ok())
                }));
        self.cores.push(core);
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
        let seq = self.steps_of(resource).add_journey(&id, span.info.dropped_events > 0, &decoded);
        self.step_seq.push(seq);
        let id = RequestId::from(id);
        let mut carried = Vec::new();
        if late {
            // Checked against the journeys of its instance let go, for R13 and R14.
            let key = Self::id_fingerprint(&self.keys, id.as_str());
            let (found, not_checked) =
                Generation::check_late(&self.facts, resource, key, &id, &span.info, &decoded, &unreadable);
            carried = found;
            unchecked |= not_checked;
        }
        if unchecked {
            self.behind_horizon += 1;
        }
        self.carried.push(carried);
        let instance = &mut self.instances[resource];
        instance.checker.add_journey(id, span.info, &decoded);
        instance.members.push((index, unreadable));

        let mut report = check_span(span, self.options.profile);
        let keep = self.keeps(report.request_id.as_deref(), false);
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
        self.maybe_decide();
    }

    /// A span's (start, end) in trace time: an unknown end is its start, or the latest end seen.
    fn time_of(&self, start: Option<u64>, end: Option<u64>) -> (u64, u64) {
        let end = end.or(start).unwrap_or(self.latest_end);
        (start.unwrap_or(end).min(end), end)
    }

    /// Notes a journey or API span arriving: its times, the clock, and whether it came behind
    /// the horizon (starting before spans let go ended; the caller checks what it can against
    /// what was kept of them).
    fn arrive(&mut self, start: Option<u64>, end: Option<u64>) -> ((u64, u64), bool) {
        let (start, end) = self.time_of(start, end);
        let late = start < self.decided_until;
        self.latest_end = self.latest_end.max(end);
        ((start, end), late)
    }

    /// Decides the relations of the spans behind the horizon and lets go of them, when enough
    /// spans are held for a pass to be worth it.
    ///
    /// The spans let go are those that ended more than the horizon before the latest end seen
    /// (an API span and its core children count as one, ending with the last of them). They are
    /// decided with every span still held that started before the last of them ended as
    /// context: the rules that relate spans (R13 and R14 within an instance, which need the
    /// spans to overlap in time, and the cross-layer pairs, whose API span encloses its
    /// children) find then what deciding everything at the end would, and a violation they find
    /// for a span still held is carried to it. A span arriving later that starts before a span
    /// let go ended may relate to it: it is counted as behind the horizon.
    fn maybe_decide(&mut self) {
        let Some(horizon) = self.options.horizon else { return };
        if self.keep != KeepEvents::Violating || self.options.workload.is_some() {
            return;
        }
        let held = self.journeys.len().saturating_add(self.api.len());
        if held < self.next_pass {
            return;
        }
        let limit = if self.hands_out { self.handed_out } else { self.journeys.len() };
        let w = self.latest_end.saturating_sub(horizon);
        // Each API span's interval, widened by its children's; a journey not handed out yet is
        // held whatever its time.
        let mut api_iv = self.api_times.clone();
        let by_ids: HashMap<(&str, &str), usize> =
            self.apis.iter().enumerate().map(|(i, a)| ((a.trace_id.as_str(), a.span_id.as_str()), i)).collect();
        let core_iv = |c: usize| -> (u64, u64) {
            let (start, end) = self.times.get(c).copied().unwrap_or((0, u64::MAX));
            (start, if c < limit { end } else { u64::MAX })
        };
        let mut parent: Vec<Option<usize>> = vec![None; self.journeys.len()];
        for (c, core) in self.cores.iter().enumerate() {
            let (start, end) = core_iv(c);
            if let Some(p) = core.parent_span_id.as_deref()
                && let Some(&a) = by_ids.get(&(core.trace_id.as_str(), p))
                && let Some(iv) = api_iv.get_mut(a)
            {
                parent[c] = Some(a);
                *iv = (iv.0.min(start), iv.1.max(end));
            }
        }
        let take_j: Vec<bool> = (0..self.journeys.len())
            .map(|c| match parent[c] {
                Some(a) => api_iv.get(a).is_some_and(|iv| iv.1 < w),
                None => core_iv(c).1 < w,
            })
            .collect();
        let take_a: Vec<bool> = api_iv.iter().map(|iv| iv.1 < w).collect();
        let n_taken = take_j.iter().chain(&take_a).filter(|&&t| t).count();
        self.next_pass = self.min_pass.max(held.saturating_sub(n_taken).saturating_mul(2));
        if n_taken == 0 {
            return;
        }
        // The journeys held that may relate to one let go: those that started before the last
        // of them ended.
        let last_end = (0..self.journeys.len()).filter(|&c| take_j[c]).map(|c| core_iv(c).1).max().unwrap_or(0);
        let context: Vec<bool> = (0..self.journeys.len()).map(|c| !take_j[c] && core_iv(c).0 < last_end).collect();
        self.decide_part(&take_j, &take_a, &context, w);
    }

    /// How many facts of spans let go are held (entries of every table of every generation).
    #[cfg(test)]
    fn facts_held(&self) -> usize {
        self.facts
            .iter()
            .map(|g| {
                let instances: usize =
                    g.instances.iter().map(|(_, l)| l.ids.len() + l.scheduled.len() + l.preempted.len()).sum();
                instances + g.parents_of.len() + g.children_of.len()
            })
            .sum()
    }

    /// The facts horizon in nanoseconds ([`CheckOptions::facts_horizon`]), with a horizon.
    fn facts_horizon(&self) -> Option<u64> {
        let horizon = self.options.horizon?;
        Some(self.options.facts_horizon.unwrap_or(horizon.saturating_mul(CheckOptions::FACTS_PER_HORIZON)))
    }

    /// The generation the facts of a decision pass letting go of the spans that ended before `x`
    /// go into: the newest, or a new one once the newest spans an eighth of the facts horizon.
    fn generation_at(&mut self, x: u64) -> &mut Generation {
        let width = self.facts_horizon().unwrap_or(u64::MAX) / 8;
        let facts = &mut self.facts;
        let open = facts.back().is_some_and(|g| x.saturating_sub(g.from) < width.max(1));
        if !open {
            if let Some(g) = facts.back_mut() {
                g.shrink();
            }
            facts.push_back(Generation { from: x, until: x, ..Generation::default() });
        }
        let len = facts.len();
        let g = &mut facts[len.saturating_sub(1)];
        g.until = g.until.max(x);
        g
    }

    /// Drops the generations of facts the facts horizon is past: a span arriving later that
    /// starts before the last of them was let go may relate to what they held, and is counted
    /// as behind the horizon.
    fn forget(&mut self) {
        let Some(bound) = self.facts_horizon() else { return };
        while let Some(g) = self.facts.front()
            && g.until.saturating_add(bound) < self.latest_end
        {
            self.forgotten_until = self.forgotten_until.max(g.until);
            self.facts.pop_front();
        }
    }

    /// Decides the journeys and API spans `take_j` and `take_a` say on their own, with the
    /// journeys `context` says as context for the instance rules (see
    /// [`maybe_decide`](Self::maybe_decide)), keeps what the report needs of them and lets go
    /// of the rest.
    fn decide_part(&mut self, take_j: &[bool], take_a: &[bool], context: &[bool], x: u64) {
        let taken = |flags: &[bool], i: usize| flags.get(i).copied().unwrap_or(false);
        // Where each journey goes: its index in the part, or among those held.
        let mut new_index = Vec::with_capacity(take_j.len());
        let (mut in_part, mut in_held) = (0usize, 0usize);
        for &t in take_j {
            if t {
                new_index.push(in_part);
                in_part += 1;
            } else {
                new_index.push(in_held);
                in_held += 1;
            }
        }
        // The context journeys, by their index among those held, numbered after the part's.
        let mut context_of: Vec<usize> = Vec::new();
        let mut instances = Vec::with_capacity(self.instances.len());
        let keys = self.keys.clone();
        // Taken out while the instances absorb into it.
        self.generation_at(x);
        let mut generation = self.facts.pop_back().unwrap_or_default();
        for (resource, instance) in self.instances.iter_mut().enumerate() {
            let flags: Vec<bool> = instance.members.iter().map(|(j, _)| taken(take_j, *j)).collect();
            let around: Vec<bool> = instance.members.iter().map(|(j, _)| taken(context, *j)).collect();
            let mut checker = instance.checker.split_off(|k| flags.get(k).copied().unwrap_or(false));
            if checker.is_empty() {
                // Nothing of this instance is let go: nothing to decide here.
                for member in &mut instance.members {
                    member.0 = new_index.get(member.0).copied().unwrap_or(member.0);
                }
                continue;
            }
            let (part, kept): (Vec<_>, Vec<_>) =
                std::mem::take(&mut instance.members).into_iter().partition(|(j, _)| taken(take_j, *j));
            let remap = |(j, u): (usize, Vec<u32>)| (new_index.get(j).copied().unwrap_or(j), u);
            let kept: Vec<(usize, Vec<u32>)> = kept.into_iter().map(remap).collect();
            let mut members: Vec<(usize, Vec<u32>)> = part.into_iter().map(remap).collect();
            generation.instance_mut(resource).absorb(&checker, |id| Self::id_fingerprint(&keys, id));
            // The context: copies of the facts of the journeys held around those let go.
            let kept_flags: Vec<bool> = flags.iter().zip(&around).filter(|(t, _)| !**t).map(|(_, a)| *a).collect();
            checker.append(instance.checker.extract(|k| kept_flags.get(k).copied().unwrap_or(false)));
            for ((j, u), _) in kept.iter().zip(&kept_flags).filter(|(_, a)| **a) {
                members.push((in_part + context_of.len(), u.clone()));
                context_of.push(*j);
            }
            instance.members = kept;
            instances.push(Instance { checker, members });
        }
        self.facts.push_back(generation);
        // Their step facts: let go where no window needs them so far.
        for (c, held) in self.journeys.iter().enumerate() {
            if !taken(take_j, c) {
                continue;
            }
            let (resource, id) = held.resource_and_id();
            let seq = self.step_seq.get(c).copied().unwrap_or(u64::MAX);
            if let Some(steps) = self.steps.get_mut(resource)
                && !steps.has_windows()
            {
                steps.forget(id.unwrap_or_default(), seq);
                if self.steps_forgot.len() <= resource {
                    self.steps_forgot.resize(resource + 1, false);
                }
                self.steps_forgot[resource] = true;
            }
        }
        let journeys = split(&mut self.journeys, take_j);
        let cores = split(&mut self.cores, take_j);
        let carried = split(&mut self.carried, take_j);
        split(&mut self.times, take_j);
        split(&mut self.step_seq, take_j);
        let api = split(&mut self.api, take_a);
        let apis = split(&mut self.apis, take_a);
        split(&mut self.api_times, take_a);
        let parents: Vec<u64> = apis.iter().map(|a| self.pair_fingerprint(&a.trace_id, &a.span_id)).collect();
        let children: Vec<u64> = cores
            .iter()
            .filter_map(|c| Some(self.pair_fingerprint(&c.trace_id, c.parent_span_id.as_deref()?)))
            .collect();
        let generation = self.generation_at(x);
        Generation::add_fingerprints(&mut generation.parents_of, parents);
        Generation::add_fingerprints(&mut generation.children_of, children);
        self.handed_out = self.handed_out.saturating_sub(journeys.len());
        let orphans = if self.api_seen { 0 } else { journeys.len() as u64 };
        let part = Checker {
            journeys,
            instances,
            cores,
            apis,
            api,
            carried,
            context_from: in_part,
            others: std::mem::take(&mut self.others),
            api_seen: self.api_seen,
            ..Checker::new(self.options.clone(), self.keep.clone())
        };
        let (checked, others, found) = part.decide(String::new(), Vec::new(), ReadCounts::default());
        self.others = others;
        // What the instance rules found for journeys still held: theirs when they are decided.
        for (j, v) in found {
            if let Some(&held) = j.checked_sub(in_part).and_then(|k| context_of.get(k))
                && let Some(carried) = self.carried.get_mut(held)
                && !carried.iter().any(|c| c.rule == v.rule && c.event_index == v.event_index)
            {
                carried.push(v);
            }
        }
        // Other spans that ended before `x`: no span held can be their child.
        if self.others_ends.iter().any(|(end, _)| *end < x) {
            let (gone, kept): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.others_ends).into_iter().partition(|(end, _)| *end < x);
            let mut parents = Vec::with_capacity(gone.len());
            for (_, key) in gone {
                parents.push(self.pair_fingerprint(&key.0, &key.1));
                self.others.remove(&key);
            }
            Generation::add_fingerprints(&mut self.generation_at(x).parents_of, parents);
            self.others_ends = kept;
        }
        self.decided_until = self.decided_until.max(x);
        self.forget();
        let decided = &mut self.decided;
        decided.orphans_unlayered += orphans;
        let CheckedTrace { journeys, settled, api, absent, layers, .. } = checked;
        // The API spans kept: violating ones and the parents of the journeys kept.
        let linked: HashSet<usize> = journeys.iter().filter_map(|j| j.api_parent.as_ref().map(|l| l.index)).collect();
        let mut api_index = vec![None; api.len()];
        for (i, report) in api.into_iter().enumerate() {
            if matches!(report.verdict, Verdict::Violating(_)) || linked.contains(&i) {
                api_index[i] = Some(decided.api.len());
                decided.api.push(report);
            }
        }
        for mut journey in journeys {
            if let Some(link) = journey.api_parent.as_mut() {
                link.index = api_index.get(link.index).copied().flatten().unwrap_or(usize::MAX);
            }
            decided.journeys.push(journey);
        }
        for s in settled {
            decided.retired.add(s);
        }
        decided.absent.extend(absent);
        decided.layers.api_spans += layers.api_spans;
        decided.layers.pairs += layers.pairs;
        decided.layers.unpaired_api += layers.unpaired_api;
        decided.layers.unpaired_core += layers.unpaired_core;
    }

    /// Checks the instance rules and gives every journey its verdict.
    pub fn finish(mut self, source_name: String, resources: Vec<Resource>, counts: ReadCounts) -> CheckedTrace {
        let decided = std::mem::take(&mut self.decided);
        let (api_seen, complete) = (self.api_seen, self.options.complete);
        let mut behind_horizon = self.behind_horizon;
        let (mut checked, _, _) = self.decide(source_name, resources, counts);
        let offset = decided.api.len();
        for journey in &mut checked.journeys {
            if let Some(link) = journey.api_parent.as_mut() {
                link.index = link.index.saturating_add(offset);
            }
        }
        let mut api = decided.api;
        api.append(&mut checked.api);
        checked.api = api;
        let mut journeys = decided.journeys;
        journeys.append(&mut checked.journeys);
        checked.journeys = journeys;
        let mut absent = decided.absent;
        absent.append(&mut checked.absent);
        checked.absent = absent;
        let layers = &mut checked.layers;
        layers.api_spans += decided.layers.api_spans;
        layers.pairs += decided.layers.pairs;
        layers.unpaired_api += decided.layers.unpaired_api;
        layers.unpaired_core += decided.layers.unpaired_core;
        if api_seen && decided.orphans_unlayered > 0 {
            // Core spans decided before the API layer showed: their parents were not looked for.
            if complete {
                behind_horizon += decided.orphans_unlayered;
            } else {
                layers.unpaired_core += decided.orphans_unlayered;
            }
        }
        checked.retired = decided.retired;
        checked.behind_horizon = behind_horizon;
        checked
    }

    /// Every rule over what the checker holds, as if nothing had been decided before; gives
    /// back the other spans' ids, and the instance rules' violations for the context journeys
    /// (members numbered from `context_from`).
    fn decide(self, source_name: String, resources: Vec<Resource>, counts: ReadCounts) -> Decision {
        let Checker {
            options,
            journeys: mut held,
            instances,
            spans,
            cores,
            apis,
            mut api,
            others,
            steps: step_checkers,
            summaries_kept,
            snapshots_kept,
            api_seen,
            carried,
            context_from,
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
        for (more, carried) in extra.iter_mut().zip(carried) {
            *more = carried;
        }
        let mut found = Vec::new();
        for instance in instances {
            for (j, v) in instance_rules(&held, instance) {
                if j >= context_from {
                    found.push((j, v));
                } else if let Some(more) = extra.get_mut(j)
                    && !more.iter().any(|c| c.rule == v.rule && c.event_index == v.event_index)
                {
                    more.push(v);
                }
            }
        }
        let cross_options = CrossOptions {
            complete: options.complete,
            workload: options.workload.clone(),
            other_spans: others,
            api_layer: api_seen,
        };
        let cross = check_layers(&apis, &cores, &cross_options);
        let others = cross_options.other_spans;
        let mut absent = Vec::new();
        for f in cross.findings {
            let mut v = f.violation;
            match f.about {
                About::Core(c) => {
                    if let Some(more) = extra.get_mut(c) {
                        v.request_id = cores[c].request_id.clone().unwrap_or_default().into();
                        v.event_index = held.get(c).map_or(0, Held::num_events);
                        more.push(v);
                    }
                }
                About::Api(a) => {
                    if let Some(report) = api.get_mut(a) {
                        v.request_id = report.request_id.clone().unwrap_or_default().into();
                        v.event_index = report.num_events;
                        let mut all = report.verdict.violations().to_vec();
                        all.push(v);
                        report.verdict = Verdict::from_violations(all, report.span.dropped_events);
                    }
                }
                About::Request(id) => {
                    v.request_id = id.into();
                    absent.push(v);
                }
            }
        }
        absent.retain(|v| !options.allow.contains(&v.rule));
        for report in &mut api {
            let kept: Vec<Violation> =
                report.verdict.violations().iter().filter(|v| !options.allow.contains(&v.rule)).cloned().collect();
            if matches!(report.verdict, Verdict::Violating(_)) {
                report.verdict = Verdict::from_violations(kept, report.span.dropped_events);
            }
        }
        for (c, parent) in cross.parent_of.iter().enumerate() {
            if let (Some(a), Some(core)) = (parent, cores.get(c))
                && let Some(report) = api.get_mut(*a)
            {
                report.children.push((core.span_id.clone(), core.request_id.clone()));
            }
        }
        let layers = LayerCounts {
            api_spans: api.len() as u64,
            pairs: cross.pairs,
            unpaired_api: cross.unpaired_api,
            unpaired_core: cross.unpaired_core,
        };
        let parent_of = cross.parent_of;
        let mut journeys = Vec::new();
        let mut settled = Vec::new();
        for (index, (journey, more)) in held.drain(..).zip(extra).enumerate() {
            let api_parent = parent_of.get(index).copied().flatten().and_then(|a| {
                api.get(a).map(|r| ApiLink {
                    index: a,
                    request_id: r.request_id.clone(),
                    span_id: r.span_id.clone(),
                    endpoint: r.endpoint,
                    kinds: r.kinds.clone(),
                })
            });
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
                    journey.api_parent = api_parent;
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
                        api_parent: api_parent.clone(),
                    });
                }
            }
        }
        let checked = CheckedTrace {
            source_name,
            spans,
            journeys,
            settled,
            resources,
            counts,
            api,
            absent,
            layers,
            steps,
            retired: Retired::default(),
            behind_horizon: 0,
        };
        (checked, others, found)
    }
}

/// What [`Checker::decide`] gives: the checked part, the other spans' ids back, and the
/// instance rules' violations for the context journeys.
type Decision = (CheckedTrace, HashSet<(String, String)>, Vec<(usize, Violation)>);

/// Moves the items of `v` that `take` flags (by index) out, in order; the rest stay in order.
fn split<T>(v: &mut Vec<T>, take: &[bool]) -> Vec<T> {
    let mut taken = Vec::new();
    let mut kept = Vec::new();
    for (i, item) in std::mem::take(v).into_iter().enumerate() {
        if take.get(i).copied().unwrap_or(false) {
            taken.push(item);
        } else {
            kept.push(item);
        }
    }
    *v = kept;
    taken
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
    let ns: Vec<_> = span
        .events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.decoded.as_ref().ok().map(|d| (i, e.ts_monotonic_ns, d.ts_monotonic)))
        .collect();
    let clock = check_monotonic_ns(span.request_id.clone().unwrap_or_default(), &ns);
    let verdict = checker.finish();
    let verdict = if clock.is_empty() {
        verdict
    } else {
        let mut all = verdict.violations().to_vec();
        all.extend(clock);
        all.sort_by_key(|v| v.event_index);
        Verdict::from_violations(all, span.info.dropped_events)
    };
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
        verdict,
        api_parent: None,
    }
}

/// R13 and R14 over the journeys of one instance, with each violation's journey.
///
/// Event indices are mapped back from the decoded events the model saw to the journey's
/// events, and R14's message names the other span.
fn instance_rules(journeys: &[Held], instance: Instance) -> Vec<(usize, Violation)> {
    let Instance { checker, members, .. } = instance;
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

    /// The builder, for what it holds and its clock.
    pub fn builder(&self) -> &TraceBuilder {
        &self.builder
    }

    /// Lets go of the held spans whose last record came at or before the builder's `clock` and
    /// checks them (see [`TraceBuilder::release_untouched_since`]); `u64::MAX` lets go of all.
    pub fn release_untouched_since(&mut self, clock: u64) {
        self.builder.release_untouched_since(clock);
        self.drain();
    }

    /// Calls `f` on each journey checked since the last call (see [`Checker::for_each_checked`]).
    pub fn for_each_checked(&mut self, f: impl FnMut(JustChecked<'_>)) {
        self.checker.for_each_checked(f);
    }

    /// What [`finish`](Self::finish) would give for the spans let go so far, without the held
    /// ones: every rule, the relations included, decided over what has been checked. The stream
    /// goes on (its checker is copied).
    pub fn snapshot(&self) -> CheckedTrace {
        self.checker.clone().finish(
            self.builder.source_name().to_owned(),
            self.builder.resources().to_vec(),
            *self.builder.counts(),
        )
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
    use crate::otel::summary::{Distribution, Summary};

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

    /// `copies` copies of `input`, copy `n` shifted `n × shift_ns` later in trace time (span and
    /// event times) with fresh span ids, one after the other: a long run of one instance.
    fn shifted(input: &[u8], copies: u64, shift_ns: u64) -> Vec<u8> {
        fn walk(v: &mut serde_json::Value, shift: u64, copy: u64) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map.iter_mut() {
                        match (k.as_str(), &v) {
                            (
                                "startTimeUnixNano" | "endTimeUnixNano" | "timeUnixNano",
                                serde_json::Value::String(t),
                            ) => {
                                let t: u64 = t.parse().unwrap();
                                *v = serde_json::Value::String((t + shift).to_string());
                            }
                            ("spanId" | "parentSpanId", serde_json::Value::String(id)) if !id.is_empty() => {
                                // Ids stay distinct across copies and consistent within one.
                                let n = u64::from_str_radix(id, 16).unwrap();
                                *v = serde_json::Value::String(format!("{:016x}", n ^ (copy << 40)));
                            }
                            _ => walk(v, shift, copy),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, shift, copy)),
                _ => {}
            }
        }
        let lines: Vec<serde_json::Value> = input
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let mut out = Vec::new();
        for copy in 0..copies {
            for line in &lines {
                let mut line = line.clone();
                walk(&mut line, copy * shift_ns, copy);
                out.extend(serde_json::to_vec(&line).unwrap());
                out.push(b'\n');
            }
        }
        out
    }

    /// The first and last span time of `input`.
    fn time_range(input: &[u8]) -> (u64, u64) {
        let trace = read_trace("t", input, |e| panic!("{e}"));
        let starts = trace.spans.iter().filter_map(|s| s.info.start_unix_nano);
        let ends = trace.spans.iter().filter_map(|s| s.info.end_unix_nano);
        (starts.min().unwrap(), ends.max().unwrap())
    }

    fn stream_with(input: &[u8], horizon: Option<u64>) -> TraceStream {
        let options = CheckOptions { horizon, ..CheckOptions::default() };
        let mut stream = TraceStream::new("t", options).with_window(64);
        read_into("t", input, &ReadOptions::default(), &mut stream, &mut |e| panic!("{e}"));
        stream
    }

    fn report_of(checked: CheckedTrace) -> Summary {
        let mut s = Summary::new();
        s.add(checked, 0);
        s
    }

    #[test]
    fn behind_the_horizon_what_is_held_is_flat_in_the_number_of_journeys() {
        let input = data("vllm/kv_pressure.otlp.jsonl");
        let (first, last) = time_range(&input);
        let shift = last - first + 1_000_000_000;
        let copies = 40;
        let long = shifted(&input, copies, shift);
        let mut stream =
            TraceStream::new("t", CheckOptions { horizon: Some(shift), ..CheckOptions::default() }).with_window(64);
        let min_pass = 64;
        (stream.checker.min_pass, stream.checker.next_pass) = (min_pass, min_pass);
        let per_copy = input.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        let mut held_max = 0;
        let mut line = 0;
        for chunk in long.split_inclusive(|&b| b == b'\n') {
            read_into("t", chunk, &ReadOptions::default(), &mut stream, &mut |e| panic!("{e}"));
            line += 1;
            if line % per_copy == 0 {
                let held = stream.checker.journeys.len() + stream.checker.api.len();
                let instance: usize = stream.checker.instances.iter().map(|i| i.checker.len()).sum();
                assert_eq!(instance, stream.checker.journeys.len());
                if line / per_copy > copies as usize / 2 {
                    held_max = held_max.max(held);
                }
            }
        }
        let journeys_per_copy = report_of(stream_with(&input, None).finish()).journeys as usize;
        // At most twice what a pass leaves, and a pass leaves what overlaps the last horizon.
        let bound = 2 * min_pass.max(4 * journeys_per_copy);
        let total = copies as usize * journeys_per_copy;
        assert!(held_max <= bound && bound < total / 4, "held {held_max}, bound {bound}, journeys {total}");
        let retired = stream.checker.decided.retired.journeys as usize + stream.checker.decided.journeys.len();
        assert!(retired + bound >= total, "{retired} let go of {total}");
        let got = report_of(stream.finish());
        let want = report_of(stream_with(&long, None).finish());
        assert_eq!(got.behind_horizon, 0);
        assert_eq!(totals(&got), totals(&want));
        assert_eq!(got.stats.preemptions, want.stats.preemptions);
        let dist = |s: &Summary| {
            [&s.stats.queue_time, &s.stats.time_to_first_token, &s.stats.end_to_end]
                .map(|v| Distribution::of_samples(v).map(|d| (d.count, d.min, d.p50, d.p90, d.p99, d.max)))
        };
        assert_eq!(dist(&got), dist(&want));
    }

    /// A stream of `input` whose decision passes come every `min_pass` spans held.
    fn stream_of(input: &[u8], options: CheckOptions, min_pass: usize) -> TraceStream {
        let mut stream = TraceStream::new("t", options).with_window(64);
        (stream.checker.min_pass, stream.checker.next_pass) = (min_pass, min_pass);
        read_into("t", input, &ReadOptions::default(), &mut stream, &mut |e| panic!("{e}"));
        stream
    }

    #[test]
    fn behind_the_facts_horizon_what_is_kept_of_journeys_let_go_is_flat() {
        let input = data("vllm/kv_pressure.otlp.jsonl");
        let (first, last) = time_range(&input);
        let shift = last - first + 1_000_000_000;
        let copies = 40;
        let per_copy = input.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        // Each copy in later steps and monotonic times too, as one instance's long run is.
        fn advance(v: &mut serde_json::Value, copy: u64, shift: u64) {
            match v {
                serde_json::Value::Object(map) => {
                    let key = map.get("key").and_then(|k| k.as_str()).map(str::to_owned);
                    match (key.as_deref(), map.get_mut("value")) {
                        (Some("scheduler.step"), Some(value)) => {
                            let step: u64 = value["intValue"].as_str().unwrap().parse().unwrap();
                            value["intValue"] = (step + copy * 1_000_000).to_string().into();
                        }
                        (Some("ts.monotonic"), Some(value)) => {
                            let t = value["doubleValue"].as_f64().unwrap();
                            value["doubleValue"] = (t + (copy * shift) as f64 / 1e9).into();
                        }
                        _ => map.values_mut().for_each(|v| advance(v, copy, shift)),
                    }
                }
                serde_json::Value::Array(items) => items.iter_mut().for_each(|v| advance(v, copy, shift)),
                _ => {}
            }
        }
        let lines: Vec<Vec<u8>> = shifted(&input, copies, shift)
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, l)| {
                let mut v: serde_json::Value = serde_json::from_slice(l).unwrap();
                advance(&mut v, (i / per_copy) as u64, shift);
                let mut line = serde_json::to_vec(&v).unwrap();
                line.push(b'\n');
                line
            })
            .collect();
        // The facts held after each copy, with facts horizon `facts`.
        let run = |facts: Option<u64>| {
            let options = CheckOptions { horizon: Some(shift), facts_horizon: facts, ..CheckOptions::default() };
            let mut stream = stream_of(b"", options, 64);
            let mut held = Vec::new();
            for copy in lines.chunks(per_copy) {
                read_into("t", &copy.concat()[..], &ReadOptions::default(), &mut stream, &mut |e| panic!("{e}"));
                held.push(stream.checker.facts_held());
            }
            (held, report_of(stream.finish()))
        };
        // Facts kept as long as the input lasts: they grow with the copies.
        let (all, everything) = run(Some(u64::MAX / 2));
        let total = *all.last().unwrap();
        assert!(total > 0 && all[copies as usize / 2] < total * 3 / 4, "{all:?}");
        assert_eq!(
            everything.violations_by_rule(),
            report_of(stream_with(&lines.concat(), None).finish()).violations_by_rule()
        );
        // Four copies' worth of facts horizon: flat, about (4 + 1/8) copies' worth plus a pass.
        let (bounded, got) = run(Some(4 * shift));
        let per = total / copies as usize;
        let late = bounded[copies as usize / 2..].iter().copied().max().unwrap();
        assert!(late <= 8 * per && 8 * per < total / 4, "held {bounded:?}, {per} per copy, {total} in all");
        assert!(bounded.last().unwrap() * 4 < total);
        // Nothing arrived behind what was dropped: the same verdicts.
        assert_eq!(got.behind_horizon, 0);
        assert_eq!(everything.behind_horizon, 0);
        assert_eq!(totals(&got), totals(&everything));
    }

    #[test]
    fn a_late_span_behind_the_facts_horizon_is_behind_the_horizon() {
        // As in `a_late_r13_conflict_across_the_horizon_is_found`, with the facts of the first
        // span dropped before the second arrives: not a pass, behind the horizon.
        let input = data("corrupted/R13.admitted-after-a-preemption-in-the-same-step.otlp.jsonl");
        let spans = spans_of(&input, |_| true);
        let (_, last) = time_range(&input);
        let (fill, horizon) = filler(last);
        let long = [spans[0].clone(), fill, spans[1].clone()].concat();
        let check = |facts: Option<u64>| {
            let options = CheckOptions { horizon: Some(horizon), facts_horizon: facts, ..CheckOptions::default() };
            let stream = stream_of(&long, options, MIN_PASS);
            assert!(stream.checker.decided_until > last, "the first span was not let go");
            (stream.checker.forgotten_until, report_of(stream.finish()))
        };
        let (forgotten, kept) = check(None);
        assert_eq!(forgotten, 0);
        assert_eq!(kept.behind_horizon, 0);
        assert_eq!(kept.violations_by_rule().get(&RuleId::NoAdmissionAfterPreemption), Some(&1));
        let (forgotten, dropped) = check(Some(horizon));
        assert!(forgotten > last, "the first span's facts were not dropped");
        assert_eq!(dropped.behind_horizon, 1);
        assert!(!dropped.violations_by_rule().contains_key(&RuleId::NoAdmissionAfterPreemption));
    }

    #[test]
    fn a_late_r14_partner_behind_the_horizon_is_reported_as_an_r14_violation() {
        let input = data("vllm/basic.otlp.jsonl");
        let (first, last) = time_range(&input);
        let shift = last - first + 1_000_000_000;
        let mut long = shifted(&input, 60, shift);
        // The first copy's first line again, under fresh span ids: the same request ids at the
        // same times, so R14 relates them to journeys decided long before.
        let again = shifted(input.split_inclusive(|&b| b == b'\n').next().unwrap(), 61, 0);
        long.extend(again.split_inclusive(|&b| b == b'\n').next_back().unwrap());
        let everything = report_of(stream_with(&long, None).finish());
        assert!(everything.violations_by_rule().contains_key(&RuleId::UniqueLiveIds));
        assert_eq!(everything.behind_horizon, 0);
        let stream = stream_with(&long, Some(shift));
        assert!(stream.checker.decided_until > first, "nothing was let go");
        let bounded = report_of(stream.finish());
        // Checked against what was kept of the spans let go: found, and nothing left unchecked.
        assert_eq!(bounded.behind_horizon, 0);
        assert_eq!(totals(&bounded), totals(&everything));
    }

    /// `input` with every span of `resource_spans` entries for which `keep` says so, as lines
    /// of one span each (the span's resource and scope kept).
    fn spans_of(input: &[u8], mut keep: impl FnMut(&serde_json::Value) -> bool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for line in input.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            for rs in v["resourceSpans"].as_array().unwrap() {
                for ss in rs["scopeSpans"].as_array().unwrap() {
                    for span in ss["spans"].as_array().unwrap() {
                        if !keep(span) {
                            continue;
                        }
                        let one = serde_json::json!({"resourceSpans": [{
                            "resource": rs["resource"].clone(),
                            "scopeSpans": [{"scope": ss["scope"].clone(), "spans": [span.clone()]}],
                        }]});
                        let mut bytes = serde_json::to_vec(&one).unwrap();
                        bytes.push(b'\n');
                        out.push(bytes);
                    }
                }
            }
        }
        out
    }

    /// Copies of `vllm/basic` after `until`, under another resource (another instance): they
    /// only move the horizon on.
    fn filler(until: u64) -> (Vec<u8>, u64) {
        let input = data("vllm/basic.otlp.jsonl");
        let (first, last) = time_range(&input);
        let shift = last - first + 1_000_000_000;
        let copies = shifted(&input, 60, shift);
        let moved = shifted(&copies, 2, until.saturating_sub(first) + 1_000_000_000);
        let lines: Vec<&[u8]> = moved.split_inclusive(|&b| b == b'\n').collect();
        let second = lines[lines.len() / 2..].concat();
        (String::from_utf8(second).unwrap().replace("unknown_service", "filler").into_bytes(), shift)
    }

    #[test]
    fn a_late_r13_conflict_across_the_horizon_is_found() {
        let input = data("corrupted/R13.admitted-after-a-preemption-in-the-same-step.otlp.jsonl");
        // The first span is PREEMPTED in step 10; the second is SCHEDULED in it just after.
        let spans = spans_of(&input, |_| true);
        let (_, last) = time_range(&input);
        let (fill, horizon) = filler(last);
        let check = |order: [usize; 2]| {
            let long = [spans[order[0]].clone(), fill.clone(), spans[order[1]].clone()].concat();
            let everything = report_of(stream_with(&long, None).finish());
            assert_eq!(everything.violations_by_rule().get(&RuleId::NoAdmissionAfterPreemption), Some(&1));
            let stream = stream_with(&long, Some(horizon));
            assert!(stream.checker.decided_until > last, "the first span was not let go");
            (report_of(stream.finish()), everything)
        };
        // The admission arrives late: checked against the let-go preemption, and found.
        let (bounded, everything) = check([0, 1]);
        assert_eq!(bounded.behind_horizon, 0);
        assert_eq!(totals(&bounded), totals(&everything));
        // The preemption arrives late: the admission let go would violate, which is not checked.
        let (bounded, _) = check([1, 0]);
        assert_eq!(bounded.behind_horizon, 1);
        assert!(!bounded.violations_by_rule().contains_key(&RuleId::NoAdmissionAfterPreemption));
    }

    #[test]
    fn a_late_core_span_whose_api_parent_was_let_go_is_behind_the_horizon() {
        let input = data("vllm-head/api_r42.otlp.jsonl");
        let api = spans_of(&input, |s| s["name"] == "llm_request" && s["parentSpanId"] == "afd6bf7817e7fe82");
        let parent = api[0].clone();
        let parent_id = serde_json::from_slice::<serde_json::Value>(&parent).unwrap()["resourceSpans"][0]["scopeSpans"]
            [0]["spans"][0]["spanId"]
            .as_str()
            .unwrap()
            .to_owned();
        let child = spans_of(&input, |s| s["parentSpanId"] == parent_id.as_str());
        assert_eq!(child.len(), 1);
        let (_, last) = time_range(&input);
        let (fill, horizon) = filler(last);
        let long = [parent, fill, child[0].clone()].concat();
        let everything = report_of(stream_with(&long, None).finish());
        assert_eq!(everything.behind_horizon, 0);
        assert_eq!(everything.pairs, 1);
        let bounded = report_of(stream_with(&long, Some(horizon)).finish());
        // The pair was not checked: counted, and the verdict is incomplete.
        assert_eq!(bounded.behind_horizon, 1);
        assert_eq!(bounded.journeys, everything.journeys);
        // The JSON report says so; it has no such field when nothing came behind the horizon.
        let json = |s: &Summary| {
            let mut out = Vec::new();
            crate::otel::json::Report::new(s, []).write(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let report: serde_json::Value = serde_json::from_str(&json(&bounded)).unwrap();
        assert_eq!(report["behind_horizon"], 1);
        assert!(!json(&everything).contains("behind_horizon"));
        let mut text = Vec::new();
        crate::otel::text::write_summary(&mut text, &bounded, &[]).unwrap();
        assert!(String::from_utf8(text).unwrap().contains("behind the horizon"));
    }

    #[test]
    fn journeys_longer_than_the_horizon_check_as_if_everything_were_kept() {
        // A long valid run whose journeys last much longer than the horizon: most spans arrive
        // starting before what was let go ended, and are checked against what was kept of it.
        let input = data("vllm/kv_pressure.otlp.jsonl");
        let (first, last) = time_range(&input);
        let shift = last - first + 1_000_000_000;
        let long = shifted(&input, 40, shift);
        let horizon = (last - first) / 20;
        let options = CheckOptions { horizon: Some(horizon), ..CheckOptions::default() };
        let mut stream = TraceStream::new("t", options).with_window(64);
        (stream.checker.min_pass, stream.checker.next_pass) = (64, 64);
        read_into("t", &long[..], &ReadOptions::default(), &mut stream, &mut |e| panic!("{e}"));
        assert!(stream.checker.late_checked > 1000, "{} late", stream.checker.late_checked);
        let got = report_of(stream.finish());
        let want = report_of(stream_with(&long, None).finish());
        assert_eq!(want.violating, 0);
        assert_eq!(got.behind_horizon, 0);
        assert_eq!(totals(&got), totals(&want));
        assert_eq!(got.stats.preemptions, want.stats.preemptions);
    }

    #[test]
    fn relations_with_spans_still_held_are_decided_as_at_the_end() {
        // Copies that overlap in time with the same request ids: every journey of a copy shares
        // its id with a live one of the copy before (R14), across every pass's horizon.
        let input = data("vllm/kv_pressure.otlp.jsonl");
        let (first, last) = time_range(&input);
        let shift = (last - first) / 2;
        let long = shifted(&input, 30, shift);
        let options = CheckOptions { horizon: Some(2 * (last - first)), ..CheckOptions::default() };
        let mut stream = TraceStream::new("t", options).with_window(64);
        (stream.checker.min_pass, stream.checker.next_pass) = (64, 64);
        read_into("t", &long[..], &ReadOptions::default(), &mut stream, &mut |e| panic!("{e}"));
        assert!(stream.checker.decided.journeys.len() > 100, "{}", stream.checker.decided.journeys.len());
        let got = report_of(stream.finish());
        let want = report_of(stream_with(&long, None).finish());
        assert!(want.violations_by_rule().get(&RuleId::UniqueLiveIds).is_some_and(|&n| n > 100));
        assert_eq!(got.behind_horizon, 0);
        assert_eq!(totals(&got), totals(&want));
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
