//! Reading OTLP traces into journeys: the input formats, how spans are grouped and merged, and
//! the errors that name a file and a line (or record).
//!
//! # Input formats
//!
//! The reader accepts what an OpenTelemetry Collector's `file` exporter writes, in each of its
//! settings, and what `jq .` makes of JSON. The format is decided from the input's first bytes,
//! never from its name ([`InputFormat::Auto`]; [`ReadOptions::format`] can force one):
//!
//! - zstd (`28 b5 2f fd`) or gzip (`1f 8b`) magic: the whole input is decompressed (multi-frame
//!   and multi-member streams too) and the result is detected again, once.
//! - A 4-byte big-endian length of at most [`ReadOptions::max_record_bytes`] followed by a byte
//!   that starts a zstd, gzip, JSON or protobuf payload (`format: proto`, or any format with
//!   `compression: zstd`): **length-framed records**. Each payload is a `TracesData` (the same
//!   message as `ExportTraceServiceRequest` on the wire) in protobuf, decoded with `prost` into
//!   `opentelemetry-proto`'s types, or in JSON; a payload may be compressed on its own. Errors
//!   name the record (`path: record 7: ...`). Needs the `otlp-proto` feature.
//! - Anything else is JSON (a UTF-8 byte order mark is skipped), in one of two layouts:
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
//! int64 values as strings or numbers, omitted default fields, unknown fields (ignored); and
//! what the protobuf JSON mapping allows beyond them (`"NaN"`, `"Infinity"` doubles, quoted
//! 32-bit counters) is read too (see `otlp_json`). Errors name the field.
//!
//! # Bounds
//!
//! No input makes the reader hold more than [`ReadOptions::max_record_bytes`] of it at once (a
//! line, a document, a record, a decompressed payload): a longer one is reported and ends the
//! input, so `/dev/zero` or a file without newlines is an error, not an out-of-memory kill. At
//! most [`ReadOptions::max_repeated_errors`] errors of one kind are passed on per input, then
//! one [`InputErrorKind::Repeated`] with the count.
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
//!
//! # Modules
//!
//! - `error`: [`InputError`], naming the input and the line.
//! - `record`: [`RecordedEvent`], an event's identity and the multiset union of records.
//! - `trace`: [`Trace`], [`Span`], [`Resource`], [`ReadCounts`].
//! - `builder`: [`TraceBuilder`], the assembly of decoded OTLP messages into a trace.
//! - `json`: the JSON formats and how they are told apart.

mod builder;
mod error;
#[cfg(feature = "otlp-proto")]
mod framed;
mod json;
mod otlp_json;
mod record;
mod trace;

use std::io::{self, BufRead, Read};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

pub use builder::{Assemble, TraceBuilder};
pub use error::{InputError, InputErrorKind, Unit};
pub use record::{RecordedEvent, Unreadable};
pub use trace::{API_SCOPE, ReadCounts, Resource, Span, SpanLayer, Trace};

use error::ErrorSink;
use json::Reader;

pub(crate) use trace::hex;

/// Which format to read an input as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// Decided from the first bytes (see the [module documentation](self)).
    #[default]
    Auto,
    /// OTLP JSON (JSON Lines or documents), whatever the first bytes look like.
    Json,
    /// Length-framed records (protobuf or JSON payloads, possibly compressed).
    Framed,
}

/// How to read inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// The input format.
    pub format: InputFormat,
    /// The longest line, document or record (after decompression) read, in bytes; a longer
    /// one is reported and ends the input, so that memory stays bounded on any input.
    pub max_record_bytes: usize,
    /// At most this many errors of one kind are reported per input; the rest are counted and
    /// reported as one [`InputErrorKind::Repeated`].
    pub max_repeated_errors: usize,
}

impl ReadOptions {
    /// The default longest record: 32 MiB (the Collector's default gRPC message limit is
    /// 4 MiB, its OTLP/HTTP body limit 20 MiB).
    pub const DEFAULT_MAX_RECORD_BYTES: usize = 32 << 20;
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: InputFormat::Auto,
            max_record_bytes: Self::DEFAULT_MAX_RECORD_BYTES,
            max_repeated_errors: 10,
        }
    }
}

/// What one input is being read into, and where its errors go.
pub(crate) struct Context<'e> {
    source_name: &'e str,
    options: &'e ReadOptions,
    assembly: &'e mut dyn Assemble,
    errors: ErrorSink<'e>,
    unit: Unit,
}

impl Context<'_> {
    fn error(&mut self, position: Option<u64>, kind: InputErrorKind) {
        self.errors.report(InputError::at(self.source_name, self.unit, position, kind));
    }

    fn counts(&mut self) -> &mut ReadCounts {
        self.assembly.counts_mut()
    }

    fn set_unit(&mut self, unit: Unit) {
        self.unit = unit;
        self.assembly.set_unit(unit);
    }

    /// Adds a parsed request found at `position`; `text` is its JSON, when it has one, to say
    /// what a request without spans holds instead.
    fn add(&mut self, request: &ExportTraceServiceRequest, text: Option<&[u8]>, position: u64) {
        if request.resource_spans.is_empty() {
            let signal = text.and_then(|t| serde_json::from_slice::<SignalProbe>(t).ok());
            let counts = self.counts();
            match signal {
                Some(SignalProbe { logs: Some(_), .. }) => counts.logs_requests += 1,
                Some(SignalProbe { metrics: Some(_), .. }) => counts.metrics_requests += 1,
                Some(SignalProbe { profiles: Some(_), .. }) => counts.profiles_requests += 1,
                Some(_) | None => {}
            }
        }
        for mut e in self.assembly.add_request(request, position) {
            // The assembly may span several files (a directory): name the one being read.
            self.source_name.clone_into(&mut e.source_name);
            self.errors.report(e);
        }
    }
}

/// The other OTLP signals, told apart by their top-level key.
#[derive(serde::Deserialize)]
struct SignalProbe {
    #[serde(rename = "resourceLogs")]
    logs: Option<serde::de::IgnoredAny>,
    #[serde(rename = "resourceMetrics")]
    metrics: Option<serde::de::IgnoredAny>,
    #[serde(rename = "resourceProfiles")]
    profiles: Option<serde::de::IgnoredAny>,
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
    let mut builder = TraceBuilder::new(source_name);
    read_into(source_name, input, &ReadOptions::default(), &mut builder, &mut on_error);
    builder.finish()
}

/// Reads one input into `assembly` (a [`TraceBuilder`], or the streaming
/// [`TraceStream`](super::TraceStream)), with `options`; like [`read_trace`] otherwise.
pub fn read_into(
    source_name: &str,
    input: impl BufRead,
    options: &ReadOptions,
    assembly: &mut dyn Assemble,
    on_error: &mut dyn FnMut(InputError),
) {
    let mut ctx = Context {
        source_name,
        options,
        assembly,
        errors: ErrorSink::new(on_error, options.max_repeated_errors),
        unit: Unit::Line,
    };
    let mut input = input;
    if let Err(e) = read_stream(&mut ctx, &mut input, 0) {
        ctx.error(None, InputErrorKind::Io(e));
    }
    ctx.errors.finish(source_name);
}

/// What the first bytes of an input say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Empty,
    Zstd,
    Gzip,
    Framed,
    Json,
}

/// The zstd frame magic number, little-endian on the wire.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The gzip member magic.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The UTF-8 byte order mark.
const BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

fn sniff(head: &[u8], max_record_bytes: usize) -> Sniffed {
    if head.is_empty() {
        return Sniffed::Empty;
    }
    if head.starts_with(&ZSTD_MAGIC) {
        return Sniffed::Zstd;
    }
    if head.starts_with(&GZIP_MAGIC) {
        return Sniffed::Gzip;
    }
    if let Some(prefix) = head.first_chunk::<4>() {
        let len = u32::from_be_bytes(*prefix) as usize;
        // A record length the limit allows, then a payload that starts like one: zstd, gzip, a
        // JSON object, or a protobuf message whose first field is 1 (resource_spans, length-
        // delimited). JSON Lines start with `{"` (0x7b22...), a length of ~2 GB.
        let payload = head.get(4).copied();
        if len > 0 && len <= max_record_bytes && matches!(payload, Some(0x28 | 0x1f | b'{' | 0x0a)) {
            return Sniffed::Framed;
        }
    }
    Sniffed::Json
}

/// Reads `input` after looking at its first bytes; `depth` counts the decompressions around it
/// (one whole-file compression is read, a second one nested in it is not).
fn read_stream(ctx: &mut Context<'_>, input: &mut dyn BufRead, depth: u32) -> io::Result<()> {
    let mut head = Vec::with_capacity(8);
    input.take(8).read_to_end(&mut head)?;
    let sniffed = sniff(&head, ctx.options.max_record_bytes);
    let mut input = io::Cursor::new(head.clone()).chain(input);
    let compressed = matches!(sniffed, Sniffed::Zstd | Sniffed::Gzip);
    if compressed {
        ctx.counts().compression = Some(if sniffed == Sniffed::Zstd { "zstd" } else { "gzip" });
    }
    match (ctx.options.format, sniffed) {
        (_, Sniffed::Empty) => Ok(()),
        (InputFormat::Auto | InputFormat::Framed, Sniffed::Zstd | Sniffed::Gzip) if depth == 0 => {
            decompressed(ctx, input, sniffed, depth)
        }
        (InputFormat::Auto | InputFormat::Framed, Sniffed::Zstd | Sniffed::Gzip) => {
            ctx.error(
                None,
                InputErrorKind::Format { found: "compressed data inside compressed data", hint: "not read" },
            );
            Ok(())
        }
        (InputFormat::Auto, Sniffed::Framed) | (InputFormat::Framed, Sniffed::Framed | Sniffed::Json) => {
            framed(ctx, input)
        }
        (InputFormat::Json, Sniffed::Zstd | Sniffed::Gzip | Sniffed::Framed) => {
            let found = match sniffed {
                Sniffed::Zstd => "the input looks zstd-compressed",
                Sniffed::Gzip => "the input looks gzip-compressed",
                Sniffed::Framed | Sniffed::Json | Sniffed::Empty => {
                    "the input looks like length-framed protobuf records"
                }
            };
            ctx.error(
                None,
                InputErrorKind::Format { found, hint: "read as JSON as told; --input-format auto reads it" },
            );
            json(ctx, input)
        }
        (InputFormat::Auto | InputFormat::Json, Sniffed::Json) => {
            // A byte order mark before JSON is allowed (RFC 8259 §8.1 lets parsers ignore it).
            if head.starts_with(&BOM) {
                io::copy(&mut (&mut input).take(BOM.len() as u64), &mut io::sink())?;
            }
            json(ctx, input)
        }
    }
}

fn json(ctx: &mut Context<'_>, input: impl BufRead) -> io::Result<()> {
    ctx.set_unit(Unit::Line);
    ctx.counts().format = Some("json");
    Reader { input, ctx, line: 0 }.run()
}

#[cfg(feature = "otlp-proto")]
fn framed(ctx: &mut Context<'_>, input: impl BufRead) -> io::Result<()> {
    ctx.set_unit(Unit::Record);
    ctx.counts().format = Some("framed");
    framed::read_records(ctx, input)
}

#[cfg(feature = "otlp-proto")]
fn decompressed(ctx: &mut Context<'_>, input: impl BufRead, sniffed: Sniffed, depth: u32) -> io::Result<()> {
    match sniffed {
        Sniffed::Gzip => {
            let mut decoded = io::BufReader::new(flate2::bufread::MultiGzDecoder::new(input));
            read_stream(ctx, &mut decoded, depth + 1)
        }
        Sniffed::Zstd | Sniffed::Framed | Sniffed::Json | Sniffed::Empty => {
            let mut decoded = io::BufReader::new(zstd::stream::read::Decoder::with_buffer(input)?);
            read_stream(ctx, &mut decoded, depth + 1)
        }
    }
}

/// Without the `otlp-proto` feature only JSON is read.
#[cfg(not(feature = "otlp-proto"))]
fn framed(ctx: &mut Context<'_>, _input: impl BufRead) -> io::Result<()> {
    ctx.error(
        None,
        InputErrorKind::Format { found: "the input looks like length-framed protobuf records", hint: NO_PROTO },
    );
    Ok(())
}

#[cfg(not(feature = "otlp-proto"))]
fn decompressed(ctx: &mut Context<'_>, _input: impl BufRead, _sniffed: Sniffed, _depth: u32) -> io::Result<()> {
    ctx.error(None, InputErrorKind::Format { found: "the input is compressed", hint: NO_PROTO });
    Ok(())
}

#[cfg(not(feature = "otlp-proto"))]
const NO_PROTO: &str = "this build reads JSON only (the `otlp-proto` feature reads protobuf and compressed files)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RuleId;

    const W1: &str = include_str!("../../../tests/data/vllm-random/w1.otlp.jsonl");

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
            {"traceId":"0102","spanId":"03","events":[{"name":"exception"},{"name":"journey.QUEUED","timeUnixNano":"1"}]},
            {"traceId":"0102","spanId":"04"},
            {"events":[{"name":"journey.NOPE","timeUnixNano":"2"}]}]}]}]}"#
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
