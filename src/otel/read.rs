//! Reading OTLP JSON into journeys: the input formats, how spans are grouped and merged, and
//! the errors that name a file and a line.
//!
//! # Input formats
//!
//! The reader accepts what an OpenTelemetry Collector's `file` exporter writes with
//! `format: json` and no compression, and what `jq .` makes of it:
//!
//! - **JSON Lines** (the usual case): one `ExportTraceServiceRequest` (equivalently `TracesData`,
//!   which has the same JSON shape) per line, lines in no particular order. Blank lines are
//!   skipped, a trailing `\r` is ignored, and a line that cannot be parsed is reported with its
//!   number while the other lines are still read. The reader holds one line at a time.
//! - **One JSON document** spanning the input (pretty-printed), or several such documents back to
//!   back. Such a document must be parsed whole, so it is held in memory; after a syntax error
//!   nothing further can be read from it (JSON has no resynchronisation point), but whatever came
//!   before the error is kept.
//!
//! The format is decided once per input, from its first non-blank line: when that line parses on
//! its own, or is not the unfinished start of a JSON object, the input is JSON Lines. When it is
//! an unfinished object (it starts with `{` and the JSON parser runs out of input), the input is
//! one document — unless the *next* non-blank line is itself a complete request object (a JSON
//! object with a `resourceSpans` key), in which case the input is JSON Lines whose first line is
//! broken (truncated), and that line is reported. A pretty-printer never puts a whole request on
//! the second line, and a JSON Lines file always has one there.
//!
//! Parsing uses the serde types of `opentelemetry-proto`, so any valid OTLP JSON is accepted:
//! int64 values as strings or numbers, omitted default fields, unknown fields (ignored).
//!
//! # Spans and journeys
//!
//! Spans are identified by (trace id, span id). The same span may appear in several records
//! (lines, or places in one document): it is the **union of its records**, merged as follows.
//!
//! - Events are merged as a multiset union: an event that several records carry identically
//!   (same name, timestamp and decoded attributes — an exporter retry, a file concatenated with
//!   itself) counts once; an event that one record carries twice counts twice, because one SDK
//!   emitted it twice and the checker should see that.
//! - The span's start is the earliest start any record gives, its end the latest end, its dropped
//!   event count the largest. A record that omits the request id attribute takes the one the
//!   others give.
//! - A record that *contradicts* the span — another `gen_ai.request.id`, or another resource —
//!   is not the same span, whatever its ids say: it is reported as an input error at its line
//!   and left out, so that events of two different requests are never mixed into one journey.
//!
//! A span without ids (both empty) is never merged with anything. A span is a *journey* when it
//! has at least one `journey.*` event; its other events (not starting with `journey.`) are
//! counted and ignored, and spans without journey events are counted and ignored. A journey's
//! events are put in timestamp order, ties (and unknown timestamps, which sort first) kept in
//! the order the input had them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::io::{self, BufRead};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use opentelemetry_proto::tonic::trace::v1::span::Event as ProtoEvent;

use crate::model::{
    Detail, EventKind, FinishStatus, JourneyEvent, Phase, Progress, RuleId, ScheduleKind, SpanInfo, Step,
};
use crate::wire::{self, DecodeError, WireValue, keys};

/// An input that could not be read, or a record in it that could not be used.
///
/// Displays as `path:line: what is wrong` (or `path: what is wrong` when no line applies), the
/// format compilers and `grep` use, so editors can jump to it.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}{}: {kind}", match line { Some(l) => format!(":{l}"), None => String::new() })]
pub struct InputError {
    /// The input's name as given (a path, or `-` for standard input).
    pub source_name: String,
    /// The 1-based line the problem is on, when it is on one.
    pub line: Option<u64>,
    /// What is wrong.
    pub kind: InputErrorKind,
}

/// What is wrong with an input (see [`InputError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputErrorKind {
    /// Reading failed; nothing more is read from this input.
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    /// A line (or document) is not valid OTLP JSON.
    #[error("{message}{}", match column { Some(c) => format!(" (column {c})"), None => String::new() })]
    Json {
        /// The parser's message, without its position.
        message: String,
        /// The 1-based column, when the parser gave one.
        column: Option<u64>,
    },
    /// A JSON value that starts on this line is unfinished at the end of the input.
    #[error("the JSON value starting here is unfinished at the end of the input (truncated?)")]
    Unfinished,
    /// A record of a span contradicts an earlier record with the same ids; it was left out.
    #[error(
        "span {trace_id}/{span_id} was first seen on line {first_line} with {what} {first}, here it has {here}; this record is left out"
    )]
    ConflictingSpan {
        /// The span's trace id, in hex.
        trace_id: String,
        /// The span's span id, in hex.
        span_id: String,
        /// The line of the span's first record.
        first_line: u64,
        /// What differs: `request id` or `resource`.
        what: &'static str,
        /// The first record's value.
        first: String,
        /// This record's value.
        here: String,
    },
}

impl InputErrorKind {
    fn json(e: &serde_json::Error) -> InputErrorKind {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        let column = (e.column() > 0).then(|| e.column() as u64);
        InputErrorKind::Json { message, column }
    }
}

/// One `journey.*` span event as read: its timestamp, and the decoded event or why it could not
/// be decoded (rule R5 or R4, see [`wire::decode`]).
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    /// The event's timestamp, nanoseconds since the Unix epoch; 0 when the input has none.
    pub time_unix_nano: u64,
    /// The decoded event, or the event's name and the decoding error.
    pub decoded: Result<JourneyEvent, Unreadable>,
    /// Which record of the span carried it (0 for the first), for merging.
    part: u32,
}

/// A journey event that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The span event's name (`journey.<something>`).
    pub name: Box<str>,
    /// Why it could not be decoded.
    pub error: DecodeError,
}

impl RecordedEvent {
    /// A decoded event at `time_unix_nano` (0 when unknown): what a user builds to draw the
    /// timeline of a journey of their own ([`crate::otel::text`]).
    pub fn new(time_unix_nano: u64, event: JourneyEvent) -> RecordedEvent {
        RecordedEvent { time_unix_nano, decoded: Ok(event), part: 0 }
    }

    /// An event that could not be decoded.
    pub fn unreadable(time_unix_nano: u64, unreadable: Unreadable) -> RecordedEvent {
        RecordedEvent { time_unix_nano, decoded: Err(unreadable), part: 0 }
    }
}

/// Events are equal when their timestamps and contents are, whichever record carried them.
impl PartialEq for RecordedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.time_unix_nano == other.time_unix_nano && self.decoded == other.decoded
    }
}

impl RecordedEvent {
    /// The event's kind, when its name names one.
    pub fn kind(&self) -> Option<EventKind> {
        match &self.decoded {
            Ok(e) => Some(e.kind),
            Err(u) => wire::kind_of_name(&u.name).and_then(Result::ok),
        }
    }

    /// Everything that makes two events the same event, for the multiset union of records.
    fn identity(&self) -> Identity<'_> {
        match &self.decoded {
            Ok(e) => Identity::Decoded {
                time: self.time_unix_nano,
                kind: e.kind,
                step: e.step,
                ts_bits: e.ts_monotonic.to_bits(),
                phase: e.phase,
                progress: e.progress,
                num_preemptions: e.num_preemptions,
                schedule_kind: e.schedule_kind,
                finish_status: e.finish_status,
            },
            Err(u) => Identity::Unreadable {
                time: self.time_unix_nano,
                name: &u.name,
                rule: u.error.rule,
                detail: &u.error.detail,
            },
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum Identity<'a> {
    Decoded {
        time: u64,
        kind: EventKind,
        step: Step,
        ts_bits: u64,
        phase: Phase,
        progress: Progress,
        num_preemptions: u64,
        schedule_kind: Option<ScheduleKind>,
        finish_status: Option<FinishStatus>,
    },
    Unreadable {
        time: u64,
        name: &'a str,
        rule: RuleId,
        detail: &'a Detail,
    },
}

/// Lowercase hex of an id.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// One span as assembled from its records, holding only what the checker needs.
#[derive(Debug, Clone)]
pub struct Span {
    /// The trace id (16 bytes in valid OTLP; whatever the input had otherwise).
    pub trace_id: Box<[u8]>,
    /// The span id (8 bytes in valid OTLP).
    pub span_id: Box<[u8]>,
    /// The `gen_ai.request.id` attribute, when the span has it as a string.
    pub request_id: Option<String>,
    /// Index of the span's resource in [`Trace::resources`].
    pub resource: usize,
    /// The line of the span's first record.
    pub line: u64,
    /// Start, end and dropped events, for the checker.
    pub info: SpanInfo,
    /// The span's `journey.*` events, in timestamp order once the trace is finished.
    pub events: Vec<RecordedEvent>,
    /// How many records were merged into this span.
    pub records: u32,
}

impl Span {
    /// Whether the span carries a journey (at least one `journey.*` event).
    pub fn is_journey(&self) -> bool {
        !self.events.is_empty()
    }

    /// The trace id in lowercase hex.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id in lowercase hex.
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }
}

/// A resource, as the list of its attributes (key and value rendered as JSON), sorted by key;
/// two resources are the same scheduler instance when their lists are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Resource(pub Vec<(String, String)>);

impl Resource {
    fn of(attributes: &[KeyValue]) -> Resource {
        let mut attrs: Vec<(String, String)> =
            attributes.iter().map(|kv| (kv.key.clone(), render_value(kv.value.as_ref()))).collect();
        attrs.sort();
        Resource(attrs)
    }

    /// The value of `service.name`, when the resource has one.
    pub fn service_name(&self) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == "service.name").map(|(_, v)| v.trim_matches('"'))
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { "" } else { ", " })?;
        }
        f.write_str("}")
    }
}

fn render_value(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(value) => serde_json::to_string(value).unwrap_or_else(|e| format!("<{e}>")),
        None => "null".to_owned(),
    }
}

/// The attribute value as the wire decoder sees it.
fn wire_value(v: Option<&AnyValue>) -> WireValue<'_> {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => WireValue::Str(s),
        Some(any_value::Value::IntValue(i)) => WireValue::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => WireValue::Double(*d),
        Some(any_value::Value::BoolValue(b)) => WireValue::Bool(*b),
        Some(any_value::Value::ArrayValue(_)) => WireValue::Other("array"),
        Some(any_value::Value::KvlistValue(_)) => WireValue::Other("map"),
        Some(any_value::Value::BytesValue(_)) => WireValue::Other("bytes"),
        Some(any_value::Value::StringValueStrindex(_)) => WireValue::Other("string table index"),
        None => WireValue::Other("empty value"),
    }
}

/// Counts of what an input held besides its journeys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCounts {
    /// Lines read (including blank and malformed ones).
    pub lines: u64,
    /// Requests (lines, or documents) parsed.
    pub requests: u64,
    /// Span records parsed (a span that appears twice counts twice).
    pub span_records: u64,
    /// Span events whose name does not start with `journey.` (ignored).
    pub other_events: u64,
    /// Journey events left out because another record of the same span carried them already.
    pub duplicate_events: u64,
    /// Span records left out because they contradict an earlier record of the same span.
    pub conflicting_records: u64,
}

/// The spans of one input (one run of a scheduler, or a Collector file with several instances).
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The input's name.
    pub source_name: String,
    /// Every span, in order of first appearance.
    pub spans: Vec<Span>,
    /// The distinct resources; [`Span::resource`] indexes this.
    pub resources: Vec<Resource>,
    /// What else was read.
    pub counts: ReadCounts,
}

impl Trace {
    /// The spans that carry journeys.
    pub fn journeys(&self) -> impl Iterator<Item = &Span> {
        self.spans.iter().filter(|s| s.is_journey())
    }
}

/// (trace id, span id): what identifies a span.
type SpanIds = (Box<[u8]>, Box<[u8]>);

/// Builds a [`Trace`] from parsed requests: groups span records, decodes journey events.
///
/// [`read_trace`] drives it from a reader; use it directly to feed requests obtained otherwise
/// (from an in-memory exporter, say).
#[derive(Debug, Default)]
pub struct TraceBuilder {
    trace: Trace,
    by_ids: HashMap<SpanIds, usize>,
    by_resource: HashMap<Resource, usize>,
}

impl TraceBuilder {
    /// An empty trace for the input called `source_name`.
    pub fn new(source_name: impl Into<String>) -> TraceBuilder {
        TraceBuilder { trace: Trace { source_name: source_name.into(), ..Trace::default() }, ..Default::default() }
    }

    /// Adds every span of `request`, which was found at `line`. Records that contradict an
    /// earlier record of the same span are left out and returned as errors.
    pub fn add(&mut self, request: ExportTraceServiceRequest, line: u64) -> Vec<InputError> {
        self.trace.counts.requests += 1;
        let mut errors = Vec::new();
        for rs in request.resource_spans {
            let resource = Resource::of(rs.resource.as_ref().map_or(&[][..], |r| &r.attributes));
            let next = self.trace.resources.len();
            let resource = match self.by_resource.entry(resource) {
                Entry::Occupied(o) => *o.get(),
                Entry::Vacant(v) => {
                    self.trace.resources.push(v.key().clone());
                    v.insert(next);
                    next
                }
            };
            for ss in rs.scope_spans {
                for span in ss.spans {
                    if let Err(kind) = self.add_span(span, resource, line) {
                        errors.push(InputError { source_name: self.trace.source_name.clone(), line: Some(line), kind });
                    }
                }
            }
        }
        errors
    }

    fn add_span(&mut self, span: ProtoSpan, resource: usize, line: u64) -> Result<(), InputErrorKind> {
        self.trace.counts.span_records += 1;
        let ProtoSpan {
            trace_id,
            span_id,
            attributes,
            events,
            start_time_unix_nano,
            end_time_unix_nano,
            dropped_events_count,
            ..
        } = span;
        let request_id = attributes.into_iter().find(|kv| kv.key == keys::REQUEST_ID).and_then(|kv| {
            match kv.value.and_then(|v| v.value) {
                Some(any_value::Value::StringValue(s)) => Some(s),
                _ => None,
            }
        });
        let info = SpanInfo {
            start_unix_nano: (start_time_unix_nano != 0).then_some(start_time_unix_nano),
            end_unix_nano: (end_time_unix_nano != 0).then_some(end_time_unix_nano),
            dropped_events: dropped_events_count,
        };
        let (trace_id, span_id) = (trace_id.into_boxed_slice(), span_id.into_boxed_slice());

        // Spans without ids cannot be told apart, so they are never merged.
        let existing = if trace_id.is_empty() && span_id.is_empty() {
            None
        } else {
            match self.by_ids.entry((trace_id.clone(), span_id.clone())) {
                Entry::Occupied(o) => Some(*o.get()),
                Entry::Vacant(v) => {
                    v.insert(self.trace.spans.len());
                    None
                }
            }
        };
        let span = match existing {
            None => {
                self.trace.spans.push(Span {
                    trace_id,
                    span_id,
                    request_id,
                    resource,
                    line,
                    info,
                    events: Vec::new(),
                    records: 1,
                });
                let last = self.trace.spans.len() - 1;
                &mut self.trace.spans[last]
            }
            Some(i) => {
                let s = &mut self.trace.spans[i];
                let conflict = |what, first: String, here: String| InputErrorKind::ConflictingSpan {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    first_line: s.line,
                    what,
                    first,
                    here,
                };
                if let (Some(first), Some(here)) = (&s.request_id, &request_id)
                    && first != here
                {
                    self.trace.counts.conflicting_records += 1;
                    return Err(conflict("request id", format!("{first:?}"), format!("{here:?}")));
                }
                if s.resource != resource {
                    self.trace.counts.conflicting_records += 1;
                    let resources = &self.trace.resources;
                    return Err(conflict(
                        "resource",
                        resources[s.resource].to_string(),
                        resources[resource].to_string(),
                    ));
                }
                if s.request_id.is_none() {
                    s.request_id = request_id;
                }
                s.info.start_unix_nano = min_known(s.info.start_unix_nano, info.start_unix_nano);
                s.info.end_unix_nano = s.info.end_unix_nano.max(info.end_unix_nano);
                s.info.dropped_events = s.info.dropped_events.max(info.dropped_events);
                s.records += 1;
                s
            }
        };
        let part = span.records - 1;
        for event in events {
            match record_event(event, part) {
                Some(e) => span.events.push(e),
                None => self.trace.counts.other_events += 1,
            }
        }
        Ok(())
    }

    /// The trace: every journey's events in timestamp order, records of one span merged.
    pub fn finish(mut self) -> Trace {
        let mut duplicates = 0;
        for span in &mut self.trace.spans {
            // Stable: ties keep input order.
            span.events.sort_by_key(|e| e.time_unix_nano);
            if span.records > 1 {
                duplicates += merge_records(&mut span.events);
            }
        }
        self.trace.counts.duplicate_events += duplicates;
        self.trace
    }

    /// Counts a line read (see [`ReadCounts::lines`]).
    fn count_line(&mut self) {
        self.trace.counts.lines += 1;
    }
}

/// Decodes a span event, `None` when it is not a journey event.
fn record_event(event: ProtoEvent, part: u32) -> Option<RecordedEvent> {
    if !event.name.starts_with(keys::EVENT_PREFIX) {
        return None;
    }
    let time = (event.time_unix_nano != 0).then_some(event.time_unix_nano);
    let attributes = event.attributes.iter().map(|kv| (kv.key.as_str(), wire_value(kv.value.as_ref())));
    let decoded = wire::decode(&event.name, time, attributes)
        .map_err(|error| Unreadable { name: event.name.into_boxed_str(), error });
    Some(RecordedEvent { time_unix_nano: event.time_unix_nano, decoded, part })
}

/// The multiset union of a span's records, over events sorted by time: among events with the
/// same timestamp, each distinct event is kept as many times as the record that carries it
/// most often has it. Returns how many events were left out.
fn merge_records(events: &mut Vec<RecordedEvent>) -> u64 {
    let mut keep = vec![true; events.len()];
    let mut start = 0;
    while start < events.len() {
        let time = events[start].time_unix_nano;
        let end = start + events[start..].iter().take_while(|e| e.time_unix_nano == time).count();
        if end - start > 1 {
            // For each distinct event: how often each record has it, and how many were kept.
            let mut seen: HashMap<Identity<'_>, (HashMap<u32, u32>, u32)> = HashMap::new();
            for e in &events[start..end] {
                *seen.entry(e.identity()).or_default().0.entry(e.part).or_default() += 1;
            }
            for (i, e) in events[start..end].iter().enumerate() {
                if let Some((per_record, kept)) = seen.get_mut(&e.identity()) {
                    let wanted = per_record.values().copied().max().unwrap_or(0);
                    if *kept < wanted {
                        *kept += 1;
                    } else {
                        keep[start + i] = false;
                    }
                }
            }
        }
        start = end;
    }
    let before = events.len();
    let mut flags = keep.into_iter();
    events.retain(|_| flags.next().unwrap_or(true));
    (before - events.len()) as u64
}

fn min_known(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads one input (see the [module documentation](self) for the formats) and assembles its
/// spans. Every problem is passed to `on_error` and reading goes on where it can; an I/O error
/// ends the input. The trace holds whatever could be read.
///
/// ```
/// use journey_spec::otel::read::read_trace;
///
/// let input = "{\"resourceSpans\":[]}\nnot json\n";
/// let mut errors = Vec::new();
/// let trace = read_trace("example.jsonl", input.as_bytes(), |e| errors.push(e.to_string()));
/// assert_eq!(trace.counts.lines, 2);
/// assert_eq!(errors, ["example.jsonl:2: expected ident (column 2)"]);
/// ```
pub fn read_trace(source_name: &str, input: impl BufRead, mut on_error: impl FnMut(InputError)) -> Trace {
    let mut reader = Reader { input, builder: TraceBuilder::new(source_name), line: 0, on_error: &mut on_error };
    if let Err(e) = reader.run() {
        let error = InputError { source_name: source_name.to_owned(), line: None, kind: InputErrorKind::Io(e) };
        (reader.on_error)(error);
    }
    reader.builder.finish()
}

/// The minimum a JSON Lines record has: a `resourceSpans` key (used to tell a JSON Lines file
/// with a broken first line from a pretty-printed document).
#[derive(serde::Deserialize)]
struct RequestProbe {
    #[serde(rename = "resourceSpans")]
    _resource_spans: serde::de::IgnoredAny,
}

struct Reader<'e, R> {
    input: R,
    builder: TraceBuilder,
    /// The number of the last line read.
    line: u64,
    on_error: &'e mut dyn FnMut(InputError),
}

/// A line without its line terminator (`\n` or `\r\n`).
fn content(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

impl<R: BufRead> Reader<'_, R> {
    fn error(&mut self, line: Option<u64>, kind: InputErrorKind) {
        let source_name = self.builder.trace.source_name.clone();
        (self.on_error)(InputError { source_name, line, kind });
    }

    /// Reads the next line into `buf` (cleared first); false at the end of the input.
    fn next_line(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.clear();
        if self.input.read_until(b'\n', buf)? == 0 {
            return Ok(false);
        }
        self.line += 1;
        self.builder.count_line();
        Ok(true)
    }

    fn run(&mut self) -> io::Result<()> {
        // Everything read before the format is known, kept for document mode.
        let mut head = Vec::new();
        let mut buf = Vec::new();
        let first_line = loop {
            if !self.next_line(&mut buf)? {
                return Ok(());
            }
            head.extend_from_slice(&buf);
            if !is_blank(&buf) {
                break self.line;
            }
        };
        let first = content(&buf).to_vec();
        match serde_json::from_slice::<ExportTraceServiceRequest>(&first) {
            Ok(request) => self.add(request, first_line),
            Err(e) if e.is_eof() && first.trim_ascii_start().starts_with(b"{") => {
                // An unfinished object: a document, unless the next line is a whole request.
                let second = loop {
                    if !self.next_line(&mut buf)? {
                        break None;
                    }
                    head.extend_from_slice(&buf);
                    if !is_blank(&buf) {
                        break Some(self.line);
                    }
                };
                match second {
                    Some(line) if serde_json::from_slice::<RequestProbe>(content(&buf)).is_ok() => {
                        self.error(Some(first_line), InputErrorKind::json(&e));
                        let second = content(&buf).to_vec();
                        self.json_line(&second, line);
                    }
                    Some(_) | None => {
                        self.input.read_to_end(&mut head)?;
                        self.document(&head);
                        return Ok(());
                    }
                }
            }
            Err(e) => self.error(Some(first_line), InputErrorKind::json(&e)),
        }
        while self.next_line(&mut buf)? {
            if !is_blank(&buf) {
                let line = content(&buf).to_vec();
                self.json_line(&line, self.line);
            }
        }
        Ok(())
    }

    fn json_line(&mut self, line: &[u8], number: u64) {
        match serde_json::from_slice::<ExportTraceServiceRequest>(line) {
            Ok(request) => self.add(request, number),
            Err(e) => self.error(Some(number), InputErrorKind::json(&e)),
        }
    }

    fn add(&mut self, request: ExportTraceServiceRequest, line: u64) {
        for e in self.builder.add(request, line) {
            (self.on_error)(e);
        }
    }

    /// The whole input as one or more JSON documents; `text` starts at the input's first byte,
    /// so the parser's line numbers are the input's.
    fn document(&mut self, text: &[u8]) {
        let lines = count_newlines(text) + u64::from(!text.is_empty() && !text.ends_with(b"\n"));
        self.builder.trace.counts.lines = lines;
        let mut stream = serde_json::Deserializer::from_slice(text).into_iter::<ExportTraceServiceRequest>();
        // The line the next value starts on (after the whitespace that precedes it), counted
        // incrementally from where the last value ended.
        let (mut start, mut line) = (0, 1);
        loop {
            let rest = text.get(start..).unwrap_or_default();
            let skipped = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            line += count_newlines(&rest[..skipped]);
            start += skipped;
            match stream.next() {
                None => break,
                Some(Ok(request)) => self.add(request, line),
                Some(Err(e)) if e.is_eof() => {
                    self.error(Some(line), InputErrorKind::Unfinished);
                    break;
                }
                Some(Err(e)) => {
                    let at = u64::try_from(e.line()).unwrap_or(u64::MAX);
                    self.error(Some(at.max(1)), InputErrorKind::json(&e));
                    break;
                }
            }
            let end = stream.byte_offset();
            line += text.get(start..end).map_or(0, count_newlines);
            start = end.max(start);
        }
    }
}

fn count_newlines(text: &[u8]) -> u64 {
    text.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const W1: &str = include_str!("../../tests/data/vllm-random/w1.otlp.jsonl");

    fn read(input: &[u8]) -> (Trace, Vec<String>) {
        let mut errors = Vec::new();
        let trace = read_trace("t", input, |e| errors.push(e.to_string()));
        (trace, errors)
    }

    fn events(trace: &Trace) -> usize {
        trace.spans.iter().map(|s| s.events.len()).sum()
    }

    #[test]
    fn crlf_blank_lines_and_order_do_not_matter() {
        let (plain, _) = read(W1.as_bytes());
        let mut lines: Vec<&str> = W1.lines().collect();
        lines.reverse();
        let crlf = format!("\r\n  \r\n{}\r\n", lines.join("\r\n\r\n"));
        let (trace, errors) = read(crlf.as_bytes());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((trace.spans.len(), events(&trace)), (plain.spans.len(), events(&plain)));
    }

    #[test]
    fn a_truncated_first_line_of_json_lines_is_reported_and_the_rest_read() {
        let first = W1.lines().next().unwrap();
        let input = format!("{}\n{}", &first[..first.len() / 2], W1.lines().skip(1).collect::<Vec<_>>().join("\n"));
        let (trace, errors) = read(input.as_bytes());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("t:1: EOF while parsing"), "{errors:?}");
        assert_eq!(trace.counts.requests, W1.lines().count() as u64 - 1);
    }

    #[test]
    fn documents_back_to_back_and_an_error_in_the_second() {
        let one = "{\n  \"resourceSpans\": []\n}\n";
        let (trace, errors) = read(format!("{one}{one}\n{one}").as_bytes());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((trace.counts.requests, trace.counts.lines), (3, 10));
        let (trace, errors) = read(format!("{one}{{\n  \"resourceSpans\": 3\n}}\n").as_bytes());
        assert_eq!(trace.counts.requests, 1);
        assert_eq!(errors, ["t:5: invalid type: integer `3`, expected a sequence (column 20)"]);
    }

    #[test]
    fn records_of_one_span_merge_as_a_multiset_union() {
        let line = W1.lines().next().unwrap();
        let (once, _) = read(line.as_bytes());
        // The same line twice: every event counts once.
        let (twice, errors) = read(format!("{line}\n{line}\n").as_bytes());
        assert!(errors.is_empty());
        assert_eq!(events(&twice), events(&once));
        assert_eq!(twice.counts.duplicate_events as usize, events(&once));
        assert!(twice.spans.iter().all(|s| s.records == 2));
        // An event one record carries twice is kept twice, even when another record has it once.
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let evs = v["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["events"].as_array_mut().unwrap();
        let first = evs[0].clone();
        evs.insert(1, first);
        let doubled = serde_json::to_string(&v).unwrap();
        let (merged, _) = read(format!("{line}\n{doubled}\n").as_bytes());
        assert_eq!(events(&merged), events(&once) + 1);
        assert_eq!(merged.spans[0].events[0], merged.spans[0].events[1]);
    }

    #[test]
    fn non_journey_events_and_spans_are_counted_and_ignored() {
        let input = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"0102","spanId":"03","events":[{"name":"exception"},{"name":"journey.QUEUED"}]},
            {"traceId":"0102","spanId":"04"},
            {"events":[{"name":"journey.NOPE"}]}]}]}]}"#
            .replace('\n', "");
        let (trace, errors) = read(input.as_bytes());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((trace.spans.len(), trace.journeys().count(), trace.counts.other_events), (3, 2, 1));
        let unreadable: Vec<_> =
            trace.journeys().flat_map(|s| &s.events).filter_map(|e| e.decoded.as_ref().err()).collect();
        assert_eq!(unreadable.len(), 2);
        assert!(unreadable.iter().all(|u| u.error.rule == RuleId::WellFormed));
    }
}
