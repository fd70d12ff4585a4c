//! OpenTelemetry data in and out: reading journeys from OTLP JSON (as an OpenTelemetry
//! Collector's file exporter writes it) and from SDK spans, checking them, reporting the
//! results, and writing spans as OTLP JSON Lines.
//!
//! The layers, each usable on its own:
//!
//! 1. [`read`]: input formats (JSON, length-framed protobuf, zstd, gzip), grouping span records
//!    into spans, decoding journey events; [`read_trace`] reads one input into a [`Trace`] and
//!    reports malformed input with its line, [`read_into`] reads into any [`read::Assemble`].
//! 2. [`check`]: [`check_trace`] checks every journey of a trace (rules R1–R12 per journey,
//!    R13–R14 per scheduler instance, C2) into [`JourneyReport`]s, every `llm_request` span
//!    (A1–A4) into an [`ApiReport`], and the two layers together (X1–X6; with a workload C3,
//!    W1).
//!    [`TraceStream`] does both as the input streams in, with bounded memory: what `journey
//!    check` uses, and the entry point for OTLP receivers
//!    ([`TraceStream::add_export_request`], [`TraceStream::add_traces_data`]).
//! 3. [`summary`]: a [`Summary`] totals checked traces and keeps the statistics.
//! 4. [`json`] and [`text`]: the two output formats of `journey check`, and the timeline;
//!    [`report`]: the HTML page of `journey report`.
//!
//! And the other direction: [`span_data`] reads journeys from SDK spans, [`write`](mod@write) writes spans
//! as OTLP JSON Lines, and `simulate` (feature `tracing`) runs a workload through the emitter
//! into such a file.
//!
//! ```
//! use journey_spec::otel::{CheckOptions, Summary, check_trace, read_trace};
//!
//! let input = std::fs::read("tests/data/vllm/basic.otlp.jsonl").unwrap();
//! let mut errors = 0;
//! let trace = read_trace("basic", &input[..], |_| errors += 1);
//! let mut summary = Summary::new();
//! summary.add(check_trace(trace, &CheckOptions::default()), errors);
//! assert_eq!((summary.journeys, summary.conforming, summary.violating), (200, 200, 0));
//! ```
pub mod check;
pub mod json;
pub mod read;
pub mod report;
#[cfg(feature = "tracing")]
pub mod simulate;
pub mod span_data;
pub mod summary;
pub mod text;
pub mod write;

pub use check::{
    ApiLink, ApiReport, CheckOptions, CheckedTrace, Checker, JourneyReport, JustChecked, KeepEvents, LayerCounts,
    SettledJourney, StepReport, TraceStream, check_trace,
};
pub use read::{InputError, InputErrorKind, ReadOptions, Trace, TraceBuilder, read_into, read_trace};
pub use summary::Summary;
