//! The errors of reading: an input, and the line or record in it that could not be used.

use std::io;

/// An input that could not be read, or a record in it that could not be used.
///
/// Displays as `path:line: what is wrong` (or `path: what is wrong` when no line applies), the
/// format compilers and `grep` use, so editors can jump to it; in a length-framed file, which
/// has records instead of lines, as `path: record N: what is wrong`.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}{}: {kind}", position(*line, *record))]
pub struct InputError {
    /// The input's name as given (a path, or `-` for standard input).
    pub source_name: String,
    /// The 1-based line the problem is on, when it is on one.
    pub line: Option<u64>,
    /// The 1-based record of a length-framed file the problem is in, when it is in one.
    pub record: Option<u64>,
    /// What is wrong.
    pub kind: InputErrorKind,
}

fn position(line: Option<u64>, record: Option<u64>) -> String {
    match (line, record) {
        (Some(l), _) => format!(":{l}"),
        (None, Some(r)) => format!(": record {r}"),
        (None, None) => String::new(),
    }
}

impl InputError {
    /// An error at a position of `unit`.
    pub fn at(source_name: &str, unit: Unit, position: Option<u64>, kind: InputErrorKind) -> InputError {
        let (line, record) = match unit {
            Unit::Line => (position, None),
            Unit::Record => (None, position),
        };
        InputError { source_name: source_name.to_owned(), line, record, kind }
    }

    /// How many problems this error stands for: the count of a [`InputErrorKind::Repeated`]
    /// summary, 1 otherwise.
    pub fn count(&self) -> u64 {
        match &self.kind {
            InputErrorKind::Repeated { count, .. } => *count,
            _ => 1,
        }
    }

    /// What makes errors "the same kind" for [`ErrorSink`]: the parser's message for JSON and
    /// protobuf errors, the kind alone for errors that name a span (each names another one).
    fn class(&self) -> String {
        match &self.kind {
            InputErrorKind::Json { message, .. } | InputErrorKind::Protobuf { message } => message.clone(),
            InputErrorKind::ConflictingSpan { what, .. } => format!("conflicting {what}"),
            InputErrorKind::LateRecord { .. } => "late record".to_owned(),
            InputErrorKind::NoTimestamp { .. } => "no timestamp".to_owned(),
            other @ (InputErrorKind::Io(_)
            | InputErrorKind::Unfinished
            | InputErrorKind::TooLong { .. }
            | InputErrorKind::TruncatedRecord { .. }
            | InputErrorKind::Decompress { .. }
            | InputErrorKind::Format { .. }
            | InputErrorKind::Repeated { .. }) => other.to_string(),
        }
    }
}

/// What positions in an input are: lines of text, or records of a length-framed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// Lines (JSON Lines, JSON documents).
    #[default]
    Line,
    /// Length-framed records (the Collector's protobuf or compressed file format).
    Record,
}

impl Unit {
    /// `line` or `record`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Line => "line",
            Unit::Record => "record",
        }
    }
}

/// Passes errors on, at most `max` of each class per input, then counts the rest and reports
/// them as one [`InputErrorKind::Repeated`] each at [`finish`](Self::finish).
pub(super) struct ErrorSink<'e> {
    on_error: &'e mut dyn FnMut(InputError),
    max: usize,
    seen: std::collections::HashMap<String, u64>,
    /// Classes in order of their first suppressed error, with that error's text (without its
    /// position), for a stable output.
    suppressed: Vec<(String, String)>,
}

/// At most this many classes are told apart per input (so that the sink's memory is bounded
/// too); errors of further classes share one.
const CLASSES: usize = 256;

impl<'e> ErrorSink<'e> {
    pub(super) fn new(on_error: &'e mut dyn FnMut(InputError), max: usize) -> ErrorSink<'e> {
        ErrorSink { on_error, max, seen: Default::default(), suppressed: Vec::new() }
    }

    pub(super) fn report(&mut self, error: InputError) {
        let mut class = error.class();
        if self.seen.len() >= CLASSES && !self.seen.contains_key(&class) {
            class = String::from("\0other");
        }
        let n = self.seen.entry(class.clone()).or_default();
        *n += 1;
        if *n <= self.max as u64 {
            (self.on_error)(error);
        } else if *n == self.max as u64 + 1 {
            let what = match &error.kind {
                InputErrorKind::Json { message, .. } => message.clone(),
                other => other.to_string(),
            };
            self.suppressed.push((class, what));
        }
    }

    pub(super) fn finish(self, source_name: &str) {
        for (class, what) in self.suppressed {
            let count = self.seen.get(&class).copied().unwrap_or(0).saturating_sub(self.max as u64);
            (self.on_error)(InputError {
                source_name: source_name.to_owned(),
                line: None,
                record: None,
                kind: InputErrorKind::Repeated { count, what },
            });
        }
    }
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
        "span {trace_id}/{span_id} was first seen on {} {first_line} with {what} {first}, here it has {here}; this record is left out", unit.as_str()
    )]
    ConflictingSpan {
        /// The span's trace id, in hex.
        trace_id: String,
        /// The span's span id, in hex.
        span_id: String,
        /// Whether `first_line` is a line or a record.
        unit: Unit,
        /// The line (or record) of the span's first record.
        first_line: u64,
        /// What differs: `request id` or `resource`.
        what: &'static str,
        /// The first record's value.
        first: String,
        /// This record's value.
        here: String,
    },
    /// A record of a span that was already checked and let go (see
    /// [`TraceBuilder::with_window`](super::TraceBuilder::with_window)); it was left out.
    #[error(
        "span {trace_id}/{span_id} was already checked (its last record came more than {window} spans earlier); this late record is left out"
    )]
    LateRecord {
        /// The span's trace id, in hex.
        trace_id: String,
        /// The span's span id, in hex.
        span_id: String,
        /// The window, in spans.
        window: usize,
    },
    /// A journey event has no timestamp (`timeUnixNano` absent or 0); it is checked where its
    /// record has it.
    #[error(
        "span {trace_id}/{span_id}: event {name} has no timestamp (timeUnixNano); it is checked in its record's order"
    )]
    NoTimestamp {
        /// The span's trace id, in hex.
        trace_id: String,
        /// The span's span id, in hex.
        span_id: String,
        /// The event's name.
        name: String,
    },
    /// A line or record is longer than the limit; nothing more is read from this input.
    #[error(
        "{unit} is longer than {limit} bytes (--max-record-bytes){}; the rest of the input is not read",
        hint.map(|h| format!(": {h}")).unwrap_or_default(), unit = unit.as_str()
    )]
    TooLong {
        /// A line or a record.
        unit: Unit,
        /// The limit, in bytes.
        limit: usize,
        /// What the input looks like, when that explains it.
        hint: Option<&'static str>,
    },
    /// A length-framed record is cut short at the end of the input.
    #[error("the record is cut short: {expected} bytes announced, {found} present (truncated?)")]
    TruncatedRecord {
        /// The length its prefix gives.
        expected: u64,
        /// The bytes that follow.
        found: u64,
    },
    /// A protobuf message could not be decoded.
    #[error("not an OTLP protobuf trace message: {message}")]
    Protobuf {
        /// The decoder's message.
        message: String,
    },
    /// A compressed stream or record could not be decompressed.
    #[error("cannot decompress ({compression}): {message}")]
    Decompress {
        /// `zstd` or `gzip`.
        compression: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// The input is in a format this reader was not told to read, or cannot read.
    #[error("{found}; {hint}")]
    Format {
        /// What the input looks like.
        found: &'static str,
        /// What to do about it.
        hint: &'static str,
    },
    /// More errors of one kind than are shown.
    #[error("{count} more error(s) like \"{what}\" not shown")]
    Repeated {
        /// How many were not shown.
        count: u64,
        /// The error, without its position.
        what: String,
    },
}

impl InputErrorKind {
    pub(super) fn json(e: &serde_json::Error) -> InputErrorKind {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        let column = (e.column() > 0).then(|| e.column() as u64);
        InputErrorKind::Json { message, column }
    }
}
