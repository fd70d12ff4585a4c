//! OTLP JSON: JSON Lines, or one or more JSON documents, told apart from the first lines.

use std::io::{self, BufRead};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::builder::TraceBuilder;
use super::error::{InputError, InputErrorKind};

/// The minimum a JSON Lines record has: a `resourceSpans` key (used to tell a JSON Lines file
/// with a broken first line from a pretty-printed document).
#[derive(serde::Deserialize)]
struct RequestProbe {
    #[serde(rename = "resourceSpans")]
    _resource_spans: serde::de::IgnoredAny,
}

pub(super) struct Reader<'e, R> {
    pub(super) input: R,
    pub(super) builder: TraceBuilder,
    /// The number of the last line read.
    pub(super) line: u64,
    pub(super) on_error: &'e mut dyn FnMut(InputError),
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

    pub(super) fn run(&mut self) -> io::Result<()> {
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
