//! OTLP JSON: JSON Lines, or one or more JSON documents, told apart from the first lines.

use std::io::{self, BufRead, Read};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::Context;
use super::error::{InputErrorKind, Unit};
use super::otlp_json::{looks_binary, parse_request};

/// What to do about binary input read as JSON.
const BINARY_HINT: &str = "this is not JSON; the reader detects protobuf and compressed files \
                           from their first bytes unless told a format (--input-format)";

/// The minimum a JSON Lines record has: a `resourceSpans` key (used to tell a JSON Lines file
/// with a broken first line from a pretty-printed document).
#[derive(serde::Deserialize)]
struct RequestProbe {
    #[serde(rename = "resourceSpans")]
    _resource_spans: serde::de::IgnoredAny,
}

pub(super) struct Reader<'c, 'e, R> {
    pub(super) input: R,
    pub(super) ctx: &'c mut Context<'e>,
    /// The number of the last line read.
    pub(super) line: u64,
}

/// A line without its line terminator (`\n` or `\r\n`).
fn content(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Why reading stopped early: the input ended, or a line was too long (reported).
enum Next {
    Line,
    End,
}

impl<R: BufRead> Reader<'_, '_, R> {
    fn error(&mut self, line: Option<u64>, kind: InputErrorKind) {
        self.ctx.error(line, kind);
    }

    /// Reads the next line into `buf` (cleared first), at most `--max-record-bytes` of it; a
    /// longer line is reported and ends the input.
    fn next_line(&mut self, buf: &mut Vec<u8>) -> io::Result<Next> {
        buf.clear();
        let limit = self.ctx.options.max_record_bytes;
        loop {
            let available = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            let (take, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if buf.len().saturating_add(take) > limit.saturating_add(2) {
                let hint = looks_binary(buf).or_else(|| looks_binary(available));
                self.line += 1;
                self.ctx.counts().lines += 1;
                self.error(Some(self.line), InputErrorKind::TooLong { unit: Unit::Line, limit, hint });
                return Ok(Next::End);
            }
            buf.extend_from_slice(&available[..take]);
            self.input.consume(take);
            if done {
                break;
            }
        }
        if buf.is_empty() {
            return Ok(Next::End);
        }
        self.line += 1;
        self.ctx.counts().lines += 1;
        Ok(Next::Line)
    }

    pub(super) fn run(&mut self) -> io::Result<()> {
        // Everything read before the format is known, kept for document mode.
        let mut head = Vec::new();
        let mut buf = Vec::new();
        let first_line = loop {
            if let Next::End = self.next_line(&mut buf)? {
                return Ok(());
            }
            head.extend_from_slice(&buf);
            if !is_blank(&buf) {
                break self.line;
            }
        };
        let first = content(&buf).to_vec();
        match serde_json::from_slice::<ExportTraceServiceRequest>(&first) {
            Ok(request) => self.add(request, &first, first_line),
            Err(e) if e.is_eof() && first.trim_ascii_start().starts_with(b"{") => {
                // An unfinished object: a document, unless the next line is a whole request.
                let second = loop {
                    if let Next::End = self.next_line(&mut buf)? {
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
                        // A document is parsed whole: at most --max-record-bytes of it.
                        let limit = self.ctx.options.max_record_bytes;
                        let room = (limit as u64).saturating_add(1).saturating_sub(head.len() as u64);
                        (&mut self.input).take(room).read_to_end(&mut head)?;
                        if head.len() > limit {
                            let hint = looks_binary(&head);
                            self.error(None, InputErrorKind::TooLong { unit: Unit::Line, limit, hint });
                            return Ok(());
                        }
                        self.document(&head);
                        return Ok(());
                    }
                }
            }
            Err(_) => self.json_line(&first, first_line),
        }
        while let Next::Line = self.next_line(&mut buf)? {
            if !is_blank(&buf) {
                let line = content(&buf).to_vec();
                self.json_line(&line, self.line);
            }
        }
        Ok(())
    }

    fn json_line(&mut self, line: &[u8], number: u64) {
        match parse_request(line) {
            Ok(request) => self.add(request, line, number),
            Err(kind) => {
                let kind = match (number, looks_binary(line)) {
                    (1, Some(found)) => InputErrorKind::Format { found, hint: BINARY_HINT },
                    _ => kind,
                };
                self.error(Some(number), kind)
            }
        }
    }

    fn add(&mut self, request: ExportTraceServiceRequest, text: &[u8], line: u64) {
        self.ctx.add(&request, Some(text), line);
    }

    /// The whole input as one or more JSON documents; `text` starts at the input's first byte,
    /// so the parser's line numbers are the input's.
    fn document(&mut self, text: &[u8]) {
        let lines = count_newlines(text) + u64::from(!text.is_empty() && !text.ends_with(b"\n"));
        self.ctx.counts().lines = lines;
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
                Some(Ok(request)) => self.ctx.add(&request, None, line),
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
