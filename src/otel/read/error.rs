//! The errors of reading: an input, and the line or record in it that could not be used.

use std::io;

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
    pub(super) fn json(e: &serde_json::Error) -> InputErrorKind {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        let column = (e.column() > 0).then(|| e.column() as u64);
        InputErrorKind::Json { message, column }
    }
}
