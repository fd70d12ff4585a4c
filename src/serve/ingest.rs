//! The receiver's core: span records in, decided journeys out. No sockets, no clock of its own
//! (the caller passes `now`), so the transports, the tests and the benchmarks drive the same code.
//!
//! # When a journey is decided
//!
//! An OpenTelemetry SDK exports a span once, when it ends; a Collector or an exporter retry may
//! send the same record again, and the reader merges records of one span ([`TraceBuilder`]). So
//! a span is **pending** from its first record until `pending_timeout` has passed without a new
//! record for it; then it is decided: its records go through the same [`TraceBuilder`] and
//! [`check_trace`] that `journey check` uses, and the result is added to the [`Summary`] the
//! report is made from. Spans that become due together are checked together, so the instance
//! rules (R13, R14) relate the journeys of one resource decided in the same batch; at shutdown
//! everything still pending is one batch. (Relations across batches are the subject of the
//! instance-window work in later issues; the receiver hands spans over and needs no change
//! for it.)
//!
//! # Bounded memory
//!
//! At most `max_pending` spans are pending. A record of a new span that finds the set full is
//! **shed**: left out, counted (records, spans, journey events), answered as rejected spans in
//! the OTLP partial-success response, and the final verdict becomes incomplete (exit status 2),
//! never a pass. A record for a span decided recently (the last `max(max_pending, 65 536)`
//! decided spans are remembered) is **late**: it is left out and counted the same way, since
//! checking it as a new journey would report a journey cut in two. Later records of a shed span
//! are shed too (as many shed spans are remembered).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Write};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as ProtoSpan};
use prost::Message as _;

use crate::model::{RuleId, Verdict};
use crate::otel::json::Report;
use crate::otel::summary::JourneyMetrics;
use crate::otel::{CheckOptions, CheckedTrace, JourneyReport, Summary, TraceBuilder, check_trace};
use crate::wire::keys;

use super::metrics::Metrics;

/// The fewest shed and decided span ids remembered (each set; `max_pending` when larger): a
/// few megabytes.
const REMEMBERED: usize = 65_536;

/// The input name the receiver's journeys are reported under.
pub const SOURCE_NAME: &str = "journey-serve";

/// How the receiver decides and bounds.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// What to check (rules allowed).
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
    /// could not be decoded, journeys that dropped events, fewer journeys than expected.
    Incomplete,
    /// At least one journey violates a rule.
    Violating,
    /// No journey arrived and nothing was lost (with `--expect-journeys`, a failure).
    NoJourneys,
}

/// A span waiting to be decided.
#[derive(Debug)]
struct Pending {
    resource: usize,
    records: Vec<ProtoSpan>,
    /// The export request its first record came in (reported as its `line`).
    first_request: u64,
    /// Arrival order of its first record (batches keep it).
    order: u64,
    last_seen: Instant,
}

/// What identifies a span here: resource, trace id, span id. Spans without ids get a unique
/// key each, as the reader never merges them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ids(usize, Vec<u8>, Vec<u8>),
    Anonymous(u64),
}

/// The receiver's state: pending spans, the summary of decided journeys, the counters.
pub struct Ingest {
    options: IngestOptions,
    pending: HashMap<Key, Pending>,
    /// Distinct resources seen, keyed by their attributes' encoding in key order.
    resources: Vec<ProtoResource>,
    by_resource: HashMap<Vec<u8>, usize>,
    /// Spans shed (bounded like the pending set), so that their later records are shed too.
    shed: HashSet<Key>,
    /// The most recently decided spans (bounded), to recognise late records.
    decided: HashSet<Key>,
    decided_order: VecDeque<Key>,
    summary: Summary,
    received: Received,
    metrics: Metrics,
    findings: Option<Box<dyn Write + Send>>,
    /// Export requests seen (numbers them).
    requests: u64,
    /// Span records seen (orders them).
    order: u64,
    anonymous: u64,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("pending", &self.pending.len())
            .field("received", &self.received)
            .field("journeys", &self.summary.journeys)
            .finish_non_exhaustive()
    }
}

impl Ingest {
    /// An empty receiver; `findings` gets one JSON line per violating or incomplete journey as
    /// it is decided.
    pub fn new(options: IngestOptions, findings: Option<Box<dyn Write + Send>>) -> Ingest {
        let mut summary = Summary::new();
        // One input for everything received, so the report has the shape of `check`'s on one file.
        summary.add(CheckedTrace { source_name: SOURCE_NAME.to_owned(), ..CheckedTrace::default() }, 0);
        Ingest {
            options,
            pending: HashMap::new(),
            resources: Vec::new(),
            by_resource: HashMap::new(),
            shed: HashSet::new(),
            decided: HashSet::new(),
            decided_order: VecDeque::new(),
            summary,
            received: Received::default(),
            metrics: Metrics::default(),
            findings,
            requests: 0,
            order: 0,
            anonymous: 0,
        }
    }

    /// The options.
    pub fn options(&self) -> &IngestOptions {
        &self.options
    }

    /// Takes in one export request of `bytes` bytes (uncompressed) that came over `transport`.
    pub fn ingest(
        &mut self,
        request: ExportTraceServiceRequest,
        bytes: usize,
        transport: Transport,
        now: Instant,
    ) -> Accepted {
        let t = transport.index();
        self.received.requests[t] += 1;
        self.received.bytes[t] = self.received.bytes[t].saturating_add(bytes as u64);
        self.requests += 1;
        self.summary.inputs[0].lines = self.requests;
        let mut accepted = Accepted::default();
        for rs in request.resource_spans {
            let resource = self.resource(rs.resource.unwrap_or_default());
            for ss in rs.scope_spans {
                for span in ss.spans {
                    if self.take(resource, span, now) {
                        accepted.records += 1;
                    } else {
                        accepted.rejected += 1;
                    }
                }
            }
        }
        self.received.span_records += accepted.records;
        accepted
    }

    /// Counts a request whose body could not be decoded: an input error, as a malformed line
    /// is for `check`.
    pub fn reject(&mut self) {
        self.received.rejected_requests += 1;
        self.summary.input_errors += 1;
        self.summary.inputs[0].errors += 1;
    }

    /// The index of `resource` in the table, added when new.
    fn resource(&mut self, mut resource: ProtoResource) -> usize {
        // Attribute order does not make another resource (the reader sorts them too).
        resource.attributes.sort_by(|a: &KeyValue, b: &KeyValue| a.key.cmp(&b.key));
        let key = resource.encode_to_vec();
        if let Some(&i) = self.by_resource.get(&key) {
            return i;
        }
        let i = self.resources.len();
        self.resources.push(resource);
        self.by_resource.insert(key, i);
        i
    }

    /// Takes one span record into the pending set; false when it is left out.
    fn take(&mut self, resource: usize, span: ProtoSpan, now: Instant) -> bool {
        self.order += 1;
        let key = if span.trace_id.is_empty() && span.span_id.is_empty() {
            self.anonymous += 1;
            Key::Anonymous(self.anonymous)
        } else {
            Key::Ids(resource, span.trace_id.clone(), span.span_id.clone())
        };
        if let Some(p) = self.pending.get_mut(&key) {
            p.records.push(span);
            p.last_seen = now;
            return true;
        }
        let journey_events = span.events.iter().filter(|e| e.name.starts_with(keys::EVENT_PREFIX)).count() as u64;
        if self.decided.contains(&key) {
            self.received.late_records += 1;
            self.received.shed_journey_events += journey_events;
            return false;
        }
        if self.shed.contains(&key) {
            self.received.shed_records += 1;
            self.received.shed_journey_events += journey_events;
            return false;
        }
        if self.pending.len() >= self.options.max_pending {
            self.received.shed_records += 1;
            self.received.shed_spans += 1;
            self.received.shed_journey_events += journey_events;
            // Remembered while there is room, so that its later records are shed too.
            if self.shed.len() < self.remembered() {
                self.shed.insert(key);
            }
            return false;
        }
        let p =
            Pending { resource, records: vec![span], first_request: self.requests, order: self.order, last_seen: now };
        self.pending.insert(key, p);
        true
    }

    /// How many spans are pending.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Decides every span whose last record is `pending_timeout` old at `now`.
    pub fn poll(&mut self, now: Instant) -> io::Result<()> {
        let timeout = self.options.pending_timeout;
        let due: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.last_seen) >= timeout)
            .map(|(k, _)| k.clone())
            .collect();
        self.decide(due)
    }

    /// Decides everything pending (at shutdown).
    pub fn flush(&mut self) -> io::Result<()> {
        let all: Vec<Key> = self.pending.keys().cloned().collect();
        self.decide(all)
    }

    /// Checks the spans `keys` together and adds them to the summary.
    fn decide(&mut self, keys: Vec<Key>) -> io::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut batch: Vec<(Key, Pending)> =
            keys.into_iter().filter_map(|k| self.pending.remove(&k).map(|p| (k, p))).collect();
        batch.sort_by_key(|(_, p)| p.order);
        let mut builder = TraceBuilder::new(SOURCE_NAME);
        // Spans of one resource whose first records came in one request go back together, as
        // they came (and the resource is copied once per group, not per span).
        let mut group: Option<(usize, u64, Vec<ProtoSpan>)> = None;
        for (key, p) in batch {
            self.remember_decided(key);
            match &mut group {
                Some((resource, request, spans)) if *resource == p.resource && *request == p.first_request => {
                    spans.extend(p.records);
                }
                _ => {
                    if let Some(done) = group.take() {
                        self.add_group(&mut builder, done);
                    }
                    group = Some((p.resource, p.first_request, p.records));
                }
            }
        }
        if let Some(done) = group.take() {
            self.add_group(&mut builder, done);
        }
        let checked = check_trace(builder.finish(), &self.options.check);
        for journey in &checked.journeys {
            self.metrics.add(journey, &JourneyMetrics::of(&journey.events));
            if let Some(out) = self.findings.as_mut() {
                write_finding(out, journey)?;
            }
        }
        if let Some(out) = self.findings.as_mut() {
            out.flush()?;
        }
        self.fold(checked);
        Ok(())
    }

    /// How many shed and how many decided span ids are remembered.
    fn remembered(&self) -> usize {
        self.options.max_pending.max(REMEMBERED)
    }

    /// Hands one group of span records to the builder; a record that contradicts its span
    /// (another request id) is reported and left out, as `check` does.
    fn add_group(&mut self, builder: &mut TraceBuilder, (resource, number, spans): (usize, u64, Vec<ProtoSpan>)) {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: self.resources.get(resource).cloned(),
                scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
                ..ResourceSpans::default()
            }],
        };
        let errors = builder.add(request, number);
        for e in &errors {
            let _ = writeln!(io::stderr().lock(), "{e}");
        }
        let errors = errors.len() as u64;
        self.summary.input_errors += errors;
        self.summary.inputs[0].errors += errors;
    }

    fn remember_decided(&mut self, key: Key) {
        if !matches!(key, Key::Ids(..)) {
            return;
        }
        if self.decided_order.len() >= self.remembered()
            && let Some(old) = self.decided_order.pop_front()
        {
            self.decided.remove(&old);
        }
        if self.decided.insert(key.clone()) {
            self.decided_order.push_back(key);
        }
    }

    /// Adds a checked batch to the summary's one input.
    fn fold(&mut self, checked: CheckedTrace) {
        self.summary.add(checked, 0);
        if let Some(batch) = self.summary.inputs.pop() {
            let input = &mut self.summary.inputs[0];
            input.spans += batch.spans;
            input.journeys += batch.journeys;
        }
        // `Summary::add` gave the batch's journeys the index of the input it pushed.
        for (input, _) in &mut self.summary.violating_journeys {
            *input = 0;
        }
        for i in &mut self.summary.incomplete_journeys {
            i.input = 0;
        }
        for (input, _) in &mut self.summary.violating_api {
            *input = 0;
        }
        for (input, _) in &mut self.summary.absent {
            *input = 0;
        }
    }

    /// The summary of the journeys decided so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The counters.
    pub fn received(&self) -> &Received {
        &self.received
    }

    /// The metrics derived from decided journeys.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether fewer journeys than `--expect-journeys` were decided.
    pub fn short_of_expected(&self) -> bool {
        self.options.expect_journeys.is_some_and(|n| self.summary.journeys < n)
    }

    /// The overall verdict so far.
    pub fn outcome(&self) -> Outcome {
        let s = &self.summary;
        let lost = self.received.lost_records() > 0 || s.input_errors > 0;
        if s.violating > 0 {
            Outcome::Violating
        } else if s.journeys == 0 && !lost {
            Outcome::NoJourneys
        } else if lost || s.incomplete > 0 || self.short_of_expected() {
            Outcome::Incomplete
        } else {
            Outcome::Conforming
        }
    }

    /// The exit status of `journey serve`, as `check`'s: 2 when input was lost or could not be
    /// read (records shed or late, bodies not decoded, fewer journeys than expected), else 1
    /// when a journey violates a rule, else 0.
    pub fn exit_status(&self) -> u8 {
        let s = &self.summary;
        if s.input_errors > 0 || self.received.lost_records() > 0 || self.short_of_expected() {
            2
        } else if s.violating > 0 {
            1
        } else {
            0
        }
    }

    /// The report: `journey check --format json`'s object, plus a `serve` object.
    pub fn report(&self) -> ServeReport<'_> {
        let allowed: Vec<RuleId> = self.options.check.allow.iter().copied().collect();
        ServeReport {
            report: Report::new(&self.summary, allowed),
            serve: ServeSection {
                outcome: self.outcome(),
                pending: self.pending.len(),
                max_pending: self.options.max_pending,
                pending_timeout_s: self.options.pending_timeout.as_secs_f64(),
                expect_journeys: self.options.expect_journeys,
                export_requests: Transport::ALL
                    .iter()
                    .map(|t| (t.as_str(), self.received.requests[t.index()]))
                    .collect(),
                bytes_received: Transport::ALL.iter().map(|t| (t.as_str(), self.received.bytes[t.index()])).collect(),
                span_records: self.received.span_records,
                rejected_requests: self.received.rejected_requests,
                shed_records: self.received.shed_records,
                shed_spans: self.received.shed_spans,
                shed_journey_events: self.received.shed_journey_events,
                late_records: self.received.late_records,
            },
        }
    }

    /// The Prometheus text of `/metrics`.
    pub fn prometheus(&self) -> String {
        self.metrics.render(&self.summary, &self.received, self.pending.len())
    }
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

/// Writes `journey` as a finding when it is violating or incomplete.
fn write_finding(out: &mut dyn Write, journey: &JourneyReport) -> io::Result<()> {
    let verdict = match &journey.verdict {
        Verdict::Conforming => return Ok(()),
        Verdict::Incomplete { .. } => "incomplete",
        Verdict::Violating(_) => "violating",
    };
    let finding = Finding {
        verdict,
        request_id: journey.request_id.as_deref(),
        trace_id: &journey.trace_id,
        span_id: &journey.span_id,
        events: journey.events.len(),
        dropped_events: journey.span.dropped_events,
        violations: journey
            .verdict
            .violations()
            .iter()
            .map(|v| FindingViolation {
                rule: v.rule,
                rule_name: v.rule.info().name,
                event_index: v.event_index,
                event: journey.event_of(v),
                message: v.message(),
            })
            .collect(),
    };
    serde_json::to_writer(&mut *out, &finding).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
