//! The receiver's core: span records in, decided journeys out. No sockets, no clock of its own
//! (the caller passes `now`), so the transports, the tests and the benchmarks drive the same code.
//!
//! # One path with `journey check`
//!
//! Everything received is one input to one [`TraceStream`], the streaming check `journey check`
//! reads files with: the same [`TraceBuilder`](crate::otel::TraceBuilder) merges the records of
//! a span (scope, status, flags and all), the same [`Checker`](crate::otel::Checker) checks each
//! span on its own when it is let go (R1–R12, C2, A1–A4) and decides the rules that relate spans
//! — the instance rules (R13, R14), the cross-layer rules (X1–X6, C3, W1: an `llm_request` and
//! its `llm_core` child paired by trace id and parent span id) and the step-window rules (S1–S3)
//! — over everything let go. [`CheckOptions`] carries `--profile`, `--complete` and
//! `--workload` exactly as for `check`. A new rule set reaches the receiver through the
//! checker; nothing here names a rule.
//!
//! # When a span is decided
//!
//! An OpenTelemetry SDK exports a span once, when it ends; a Collector or an exporter retry may
//! send the same record again. So a span is **pending** (held by the builder, records merging)
//! from its first record until `pending_timeout` has passed without a new record for it; then it
//! is let go and checked on its own, and a violating or incomplete journey is written to
//! `--findings`. The relations are decided over every span let go so far: each `/report` and
//! `/metrics` shows them for what has been let go, and at shutdown, when everything pending has
//! been let go, the report is `journey check`'s on the same spans. A journey a relation makes
//! violating is written to `--findings` then (with all its violations), as are violating API
//! spans.
//!
//! # Bounded memory
//!
//! At most `max_pending` spans are pending. A record of a new span that finds the set full is
//! **shed**: left out, counted (records, spans, journey events), answered as rejected spans in
//! the OTLP partial-success response, and the final verdict becomes incomplete (exit status 2),
//! never a pass. A record for a span already let go is **late**: it is left out and counted the
//! same way, since checking it as a new journey would report a journey cut in two. Later records
//! of a shed span are shed too (the last `max(max_pending, 65 536)` shed spans are remembered).
//! What is kept of a span once it is let go is what `journey check` keeps: until its relations
//! are decided, the journey in brief (ids, times, event kinds, statistics) and what the
//! relation rules need of it; once they are decided behind the horizon (`--horizon`, see
//! [`CheckOptions::horizon`]), only its contribution to the totals and statistics (one value
//! per distribution), and the journey itself when it violates a rule or lost events. A span
//! that comes behind the horizon is counted (`behind_horizon` in the report,
//! `journey_behind_horizon_total`) and makes the verdict incomplete, as a late record does.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Write};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;

use crate::model::{RuleId, Verdict, Violation};
use crate::otel::json::Report;
use crate::otel::{ApiReport, CheckOptions, JourneyReport, JustChecked, Summary, TraceStream};
use crate::wire::keys;

use super::metrics::Metrics;

/// The fewest shed span ids remembered (`max_pending` when larger): a few megabytes.
const REMEMBERED: usize = 65_536;

/// The input name the receiver's journeys are reported under.
pub const SOURCE_NAME: &str = "journey-serve";

/// How the receiver decides and bounds.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// What to check: rules allowed, `--profile`, `--complete`, `--workload`, as for `check`.
    pub check: CheckOptions,
    /// How long a span stays pending after its last record.
    pub pending_timeout: Duration,
    /// The most spans pending at once; records of new spans beyond it are shed.
    pub max_pending: usize,
    /// The number of journeys expected (`--expect-journeys`): fewer is a failure.
    pub expect_journeys: Option<u64>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            check: CheckOptions::default(),
            pending_timeout: Duration::from_secs(5),
            max_pending: 100_000,
            expect_journeys: None,
        }
    }
}

/// The transport a request came in on (a label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    HttpProtobuf,
    /// OTLP/HTTP with a JSON body.
    HttpJson,
}

impl Transport {
    /// Every transport, in metrics order.
    pub const ALL: [Transport; 3] = [Transport::Grpc, Transport::HttpProtobuf, Transport::HttpJson];

    /// The label value: `grpc`, `http/protobuf`, `http/json` (the names of
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, with `http/json` for JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::HttpProtobuf => "http/protobuf",
            Transport::HttpJson => "http/json",
        }
    }

    fn index(self) -> usize {
        match self {
            Transport::Grpc => 0,
            Transport::HttpProtobuf => 1,
            Transport::HttpJson => 2,
        }
    }
}

/// What one export request did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Span records taken in.
    pub records: u64,
    /// Span records left out (shed or late): the OTLP response's `rejected_spans`.
    pub rejected: u64,
}

impl Accepted {
    /// The message of the OTLP partial success, empty when nothing was rejected.
    pub fn message(&self, max_pending: usize) -> String {
        if self.rejected == 0 {
            String::new()
        } else {
            format!(
                "journey serve: {} of {} spans left out: more than {max_pending} spans pending (--max-pending), or the span was already decided",
                self.rejected,
                self.records + self.rejected
            )
        }
    }
}

/// Counters of what came in besides journeys, reported in `/report`'s `serve` object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Received {
    /// Export requests taken in, per transport (grpc, http/protobuf, http/json).
    pub requests: [u64; 3],
    /// Bytes of request messages (uncompressed), per transport.
    pub bytes: [u64; 3],
    /// Span records taken in.
    pub span_records: u64,
    /// Requests refused because their body could not be decoded (also counted as input errors).
    pub rejected_requests: u64,
    /// Span records shed because the pending set was full.
    pub shed_records: u64,
    /// Distinct spans that lost records to shedding.
    pub shed_spans: u64,
    /// Journey events in shed records.
    pub shed_journey_events: u64,
    /// Records that came for a span already decided, left out.
    pub late_records: u64,
}

impl Received {
    /// Records left out, shed or late.
    pub fn lost_records(&self) -> u64 {
        self.shed_records.saturating_add(self.late_records)
    }
}

/// The overall verdict of what was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every journey conforms, nothing was lost.
    Conforming,
    /// No journey violates a rule, but something was lost: records shed or late, bodies that
    /// could not be decoded, journeys that dropped events, spans behind the horizon, fewer
    /// journeys than expected.
    Incomplete,
    /// At least one journey violates a rule.
    Violating,
    /// No journey arrived and nothing was lost (with `--expect-journeys`, a failure).
    NoJourneys,
}

/// (trace id, span id) of a shed span.
type Ids = (Vec<u8>, Vec<u8>);

/// The receiver's state: the streaming check, the counters, the findings written.
pub struct Ingest {
    options: IngestOptions,
    stream: TraceStream,
    /// After each request: when it came and the builder's clock then. A span whose last record
    /// came at or before the clock of a mark `pending_timeout` old is due.
    marks: VecDeque<(Instant, u64)>,
    /// Spans shed (bounded), so that their later records are shed too.
    shed: HashSet<Ids>,
    shed_order: VecDeque<Ids>,
    received: Received,
    /// Problems with records the builder took (conflicting records, events without timestamps)
    /// and bodies that could not be decoded.
    input_errors: u64,
    findings: Option<Box<dyn Write + Send>>,
    /// The spans written to `--findings`, with how many violations they were written with.
    written: HashMap<(String, String), usize>,
    /// Export requests seen (numbers them: a journey's `line`).
    requests: u64,
    /// The summary of what has been let go, until something changes.
    summary: Option<Summary>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("pending", &self.pending())
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Ingest {
    /// An empty receiver; `findings` gets one JSON line per violating or incomplete journey as
    /// it is decided.
    pub fn new(options: IngestOptions, findings: Option<Box<dyn Write + Send>>) -> Ingest {
        // No window: spans are let go by time (`poll`), and the pending set is bounded by
        // shedding (`max_pending`).
        let stream = TraceStream::new(SOURCE_NAME, options.check.clone()).with_window(usize::MAX);
        Ingest {
            options,
            stream,
            marks: VecDeque::new(),
            shed: HashSet::new(),
            shed_order: VecDeque::new(),
            received: Received::default(),
            input_errors: 0,
            findings,
            written: HashMap::new(),
            requests: 0,
            summary: None,
        }
    }

    /// The options.
    pub fn options(&self) -> &IngestOptions {
        &self.options
    }

    /// Takes in one export request of `bytes` bytes (uncompressed) that came over `transport`.
    pub fn ingest(
        &mut self,
        mut request: ExportTraceServiceRequest,
        bytes: usize,
        transport: Transport,
        now: Instant,
    ) -> Accepted {
        let t = transport.index();
        self.received.requests[t] += 1;
        self.received.bytes[t] = self.received.bytes[t].saturating_add(bytes as u64);
        self.requests += 1;
        let records: usize =
            request.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum();
        let builder = self.stream.builder();
        // Only a request that could overfill the pending set needs to tell new spans apart.
        let may_overfill = builder.held().saturating_add(records) > self.options.max_pending;
        let mut new_spans: HashSet<Ids> = HashSet::new();
        let mut accepted = Accepted::default();
        for rs in &mut request.resource_spans {
            for ss in &mut rs.scope_spans {
                ss.spans.retain(|span| {
                    let keep = take(
                        builder,
                        span,
                        &self.options,
                        may_overfill,
                        &mut new_spans,
                        &mut self.shed,
                        &mut self.shed_order,
                        &mut self.received,
                    );
                    if keep {
                        accepted.records += 1;
                    } else {
                        accepted.rejected += 1;
                    }
                    keep
                });
            }
        }
        self.received.span_records += accepted.records;
        for e in self.stream.add_export_request(&request, self.requests) {
            self.input_errors += e.count();
            let _ = writeln!(io::stderr().lock(), "{e}");
        }
        self.marks.push_back((now, self.stream.builder().clock()));
        self.summary = None;
        accepted
    }

    /// Counts a request whose body could not be decoded: an input error, as a malformed line
    /// is for `check`.
    pub fn reject(&mut self) {
        self.received.rejected_requests += 1;
        self.input_errors += 1;
        self.summary = None;
    }

    /// How many spans are pending.
    pub fn pending(&self) -> usize {
        self.stream.builder().held()
    }

    /// Decides every span whose last record is `pending_timeout` old at `now`.
    pub fn poll(&mut self, now: Instant) -> io::Result<()> {
        let timeout = self.options.pending_timeout;
        let mut due = None;
        while let Some(&(at, clock)) = self.marks.front()
            && now.saturating_duration_since(at) >= timeout
        {
            due = Some(clock);
            self.marks.pop_front();
        }
        match due {
            Some(clock) => self.release(clock),
            None => Ok(()),
        }
    }

    /// Decides everything pending (at shutdown), and writes the findings the relations made.
    pub fn flush(&mut self) -> io::Result<()> {
        self.marks.clear();
        self.release(u64::MAX)?;
        if self.findings.is_none() {
            return Ok(());
        }
        let checked = self.stream.snapshot();
        if let Some(out) = self.findings.as_mut() {
            let journeys = checked.journeys.iter().map(Finding::of_journey);
            let apis = checked.api.iter().filter(|a| matches!(a.verdict, Verdict::Violating(_))).map(Finding::of_api);
            for finding in journeys.chain(apis) {
                let n = finding.violations.len();
                let key = (finding.trace_id.to_owned(), finding.span_id.to_owned());
                // Written again only when a relation added to what was written when it was let go.
                if n > 0 && self.written.get(&key) != Some(&n) {
                    write_finding(&mut **out, &finding)?;
                    self.written.insert(key, n);
                }
            }
            out.flush()?;
        }
        Ok(())
    }

    /// Lets go of the spans last touched at or before `clock` and writes the findings of the
    /// journeys checked.
    fn release(&mut self, clock: u64) -> io::Result<()> {
        self.stream.release_untouched_since(clock);
        self.summary = None;
        let Some(out) = self.findings.as_mut() else {
            self.stream.for_each_checked(|_| {});
            return Ok(());
        };
        let written = &mut self.written;
        let mut result = Ok(());
        self.stream.for_each_checked(|j| {
            let finding = match j {
                JustChecked::Whole(journey) => match journey.verdict {
                    Verdict::Conforming => return,
                    Verdict::Incomplete { .. } | Verdict::Violating(_) => Finding::of_journey(journey),
                },
                JustChecked::Settled(s) if s.span.dropped_events > 0 => Finding {
                    layer: "core",
                    verdict: "incomplete",
                    request_id: s.request_id.as_deref(),
                    trace_id: &s.trace_id,
                    span_id: &s.span_id,
                    events: s.events,
                    dropped_events: s.span.dropped_events,
                    violations: Vec::new(),
                },
                JustChecked::Settled(_) => return,
            };
            written.insert((finding.trace_id.to_owned(), finding.span_id.to_owned()), finding.violations.len());
            if result.is_ok() {
                result = write_finding(&mut **out, &finding);
            }
        });
        result?;
        out.flush()
    }

    /// The summary of the journeys decided so far: `journey check`'s over the spans let go.
    pub fn summary(&mut self) -> &Summary {
        let stream = &self.stream;
        let (requests, errors) = (self.requests, self.input_errors);
        self.summary.get_or_insert_with(|| {
            let mut checked = stream.snapshot();
            checked.counts.lines = requests;
            let mut summary = Summary::new();
            summary.add(checked, errors);
            summary
        })
    }

    /// The counters.
    pub fn received(&self) -> &Received {
        &self.received
    }

    /// The metrics derived from decided journeys.
    pub fn metrics(&mut self) -> Metrics {
        Metrics::of(self.summary())
    }

    /// Whether fewer journeys than `--expect-journeys` were decided.
    pub fn short_of_expected(&mut self) -> bool {
        let expected = self.options.expect_journeys;
        expected.is_some_and(|n| self.summary().journeys < n)
    }

    /// The overall verdict so far.
    pub fn outcome(&mut self) -> Outcome {
        let short = self.short_of_expected();
        let lost_records = self.received.lost_records() > 0;
        let s = self.summary();
        let lost = lost_records || s.input_errors > 0 || s.behind_horizon > 0;
        if s.any_violation() {
            Outcome::Violating
        } else if s.journeys == 0 && s.api_spans == 0 && !lost {
            Outcome::NoJourneys
        } else if lost || s.incomplete > 0 || short {
            Outcome::Incomplete
        } else {
            Outcome::Conforming
        }
    }

    /// The exit status of `journey serve`, as `check`'s: 2 when input was lost or could not be
    /// read (records shed or late, bodies not decoded, spans behind the horizon, fewer journeys
    /// than expected), else 1 when a rule is broken, else 0.
    pub fn exit_status(&mut self) -> u8 {
        let short = self.short_of_expected();
        let lost_records = self.received.lost_records() > 0;
        let s = self.summary();
        if s.input_errors > 0 || s.behind_horizon > 0 || lost_records || short {
            2
        } else if s.any_violation() {
            1
        } else {
            0
        }
    }

    /// The report: `journey check --format json`'s object, plus a `serve` object.
    pub fn report(&mut self) -> ServeReport<'_> {
        let outcome = self.outcome();
        let serve = ServeSection {
            outcome,
            pending: self.pending(),
            max_pending: self.options.max_pending,
            pending_timeout_s: self.options.pending_timeout.as_secs_f64(),
            expect_journeys: self.options.expect_journeys,
            export_requests: Transport::ALL.iter().map(|t| (t.as_str(), self.received.requests[t.index()])).collect(),
            bytes_received: Transport::ALL.iter().map(|t| (t.as_str(), self.received.bytes[t.index()])).collect(),
            span_records: self.received.span_records,
            rejected_requests: self.received.rejected_requests,
            shed_records: self.received.shed_records,
            shed_spans: self.received.shed_spans,
            shed_journey_events: self.received.shed_journey_events,
            late_records: self.received.late_records,
        };
        let check = &self.options.check;
        let allowed: Vec<RuleId> = check.allow.iter().copied().collect();
        let (profile, complete) = (check.profile, check.complete);
        let summary = self.summary();
        ServeReport { report: Report::new(summary, allowed).with_profile(profile).with_complete(complete), serve }
    }

    /// The Prometheus text of `/metrics`.
    pub fn prometheus(&mut self) -> String {
        let pending = self.pending();
        let received = self.received;
        let summary = self.summary();
        Metrics::of(summary).render(summary, &received, pending)
    }
}

/// Whether one span record is taken (else it is counted as shed or late).
#[allow(clippy::too_many_arguments)]
fn take(
    builder: &crate::otel::TraceBuilder,
    span: &ProtoSpan,
    options: &IngestOptions,
    may_overfill: bool,
    new_spans: &mut HashSet<Ids>,
    shed: &mut HashSet<Ids>,
    shed_order: &mut VecDeque<Ids>,
    received: &mut Received,
) -> bool {
    let anonymous = span.trace_id.is_empty() && span.span_id.is_empty();
    let journey_events = || span.events.iter().filter(|e| e.name.starts_with(keys::EVENT_PREFIX)).count() as u64;
    if !anonymous && builder.was_released(&span.trace_id, &span.span_id) {
        received.late_records += 1;
        received.shed_journey_events += journey_events();
        return false;
    }
    if !anonymous && !shed.is_empty() && shed.contains(&(span.trace_id.clone(), span.span_id.clone())) {
        received.shed_records += 1;
        received.shed_journey_events += journey_events();
        return false;
    }
    if !may_overfill {
        return true;
    }
    let ids = (span.trace_id.clone(), span.span_id.clone());
    if !anonymous && (builder.holds(&ids.0, &ids.1) || new_spans.contains(&ids)) {
        return true;
    }
    if builder.held().saturating_add(new_spans.len()) >= options.max_pending {
        received.shed_records += 1;
        received.shed_spans += 1;
        received.shed_journey_events += journey_events();
        if !anonymous {
            // Remembered (the oldest forgotten beyond the bound), so its later records are shed too.
            if shed_order.len() >= options.max_pending.max(REMEMBERED)
                && let Some(old) = shed_order.pop_front()
            {
                shed.remove(&old);
            }
            if shed.insert(ids.clone()) {
                shed_order.push_back(ids);
            }
        }
        return false;
    }
    // An anonymous span is new each time; it is counted under a key no other span has.
    if anonymous {
        let n = new_spans.len() as u64;
        new_spans.insert((Vec::new(), n.to_be_bytes().to_vec()));
    } else {
        new_spans.insert(ids);
    }
    true
}

/// `/report` (see [`Ingest::report`]).
#[derive(Debug, serde::Serialize)]
pub struct ServeReport<'a> {
    #[serde(flatten)]
    report: Report<'a>,
    serve: ServeSection,
}

impl ServeReport<'_> {
    /// Writes the report as one line of JSON.
    pub fn write(&self, mut out: impl Write) -> io::Result<()> {
        serde_json::to_writer(&mut out, self).map_err(io::Error::from)?;
        out.write_all(b"\n")
    }
}

/// The receiver's own fields of the report.
#[derive(Debug, serde::Serialize)]
struct ServeSection {
    outcome: Outcome,
    pending: usize,
    max_pending: usize,
    pending_timeout_s: f64,
    expect_journeys: Option<u64>,
    export_requests: std::collections::BTreeMap<&'static str, u64>,
    bytes_received: std::collections::BTreeMap<&'static str, u64>,
    span_records: u64,
    rejected_requests: u64,
    shed_records: u64,
    shed_spans: u64,
    shed_journey_events: u64,
    late_records: u64,
}

/// One line of `--findings`.
#[derive(serde::Serialize)]
struct Finding<'a> {
    /// `core` (an `llm_core` journey) or `api` (an `llm_request` span).
    layer: &'static str,
    verdict: &'static str,
    request_id: Option<&'a str>,
    trace_id: &'a str,
    span_id: &'a str,
    events: usize,
    dropped_events: u32,
    violations: Vec<FindingViolation>,
}

#[derive(serde::Serialize)]
struct FindingViolation {
    rule: RuleId,
    rule_name: &'static str,
    event_index: usize,
    event: Option<&'static str>,
    message: String,
}

impl FindingViolation {
    fn of(v: &Violation, event: Option<&'static str>) -> FindingViolation {
        FindingViolation {
            rule: v.rule,
            rule_name: v.rule.info().name,
            event_index: v.event_index,
            event,
            message: v.message(),
        }
    }
}

impl<'a> Finding<'a> {
    fn of_journey(journey: &'a JourneyReport) -> Finding<'a> {
        Finding {
            layer: "core",
            verdict: verdict_name(&journey.verdict),
            request_id: journey.request_id.as_deref(),
            trace_id: &journey.trace_id,
            span_id: &journey.span_id,
            events: journey.num_events,
            dropped_events: journey.span.dropped_events,
            violations: journey
                .verdict
                .violations()
                .iter()
                .map(|v| FindingViolation::of(v, journey.event_of(v)))
                .collect(),
        }
    }

    fn of_api(api: &'a ApiReport) -> Finding<'a> {
        Finding {
            layer: "api",
            verdict: verdict_name(&api.verdict),
            request_id: api.request_id.as_deref(),
            trace_id: &api.trace_id,
            span_id: &api.span_id,
            events: api.num_events,
            dropped_events: api.span.dropped_events,
            violations: api.verdict.violations().iter().map(|v| FindingViolation::of(v, api.event_of(v))).collect(),
        }
    }
}

fn verdict_name(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Conforming => "conforming",
        Verdict::Incomplete { .. } => "incomplete",
        Verdict::Violating(_) => "violating",
    }
}

/// Writes one finding as a JSON line.
fn write_finding(out: &mut dyn Write, finding: &Finding<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, finding).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
