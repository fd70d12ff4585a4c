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
mod json;
mod record;
mod trace;

use std::io::BufRead;

use json::Reader;

pub use builder::TraceBuilder;
pub use error::{InputError, InputErrorKind};
pub use record::{RecordedEvent, Unreadable};
pub use trace::{ReadCounts, Resource, Span, Trace};

pub(crate) use trace::hex;

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
