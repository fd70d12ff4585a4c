//! # journey-spec
//!
//! A formal, executable specification of **request journeys** in an LLM serving scheduler: the
//! lifecycle events a request goes through (`QUEUED`, `SCHEDULED` `FIRST`/`RESUME`,
//! `PREEMPTED`, `FIRST_TOKEN`, `FINISHED` with a status) as emitted on one OpenTelemetry span
//! per request by the vLLM fork that introduced journey tracing.
//!
//! The crate is built in layers, with dependencies pointing one way:
//!
//! - [`model`]: the pure specification. A lifecycle state machine written as one transition
//!   table (and the API layer's two, `SPEC.md` §9), the rule catalogue `R1` … `R14` with the
//!   later layers' `C2`, `C3`, `W1`, `A1` … `A4`, `X1` … `X6`, and checkers that turn events into verdicts. No
//!   I/O, no clock, no OpenTelemetry; reusable by anyone as a test oracle.
//! - [`wire`]: the wire format — attribute keys and the conversion between model events and
//!   span event attributes.
//! - the reference system, re-exported at the root ([`Scheduler`], [`Engine`], [`Workload`],
//!   [`synth`], and with feature `tracing` the [`Emitter`]): the reference scheduler with vLLM v1
//!   semantics, the engine loop that replays workload files, and the emitter that puts journeys
//!   on OpenTelemetry spans. (It lives in `src/impl`; `impl` is a keyword, so the module is
//!   `r#impl` and nobody needs to type it.)
//! - `otel` (feature `otlp`): OTLP JSON in and out — journeys read from OpenTelemetry Collector
//!   files, spans written as OTLP JSON Lines.
//! - `serve` (feature `serve`): the OTLP/gRPC and OTLP/HTTP receiver of `journey serve`, which
//!   decodes spans and hands them to `otel`'s assembly and checks as they arrive.
//!
//! # Checking a journey
//!
//! ```
//! use journey_spec::model::*;
//!
//! let p = Progress::new(32, 4);
//! let after_prefill = Progress { prefill_done: 32, decode_done: 1, ..p };
//! let journey = [
//!     JourneyEvent::new(Label::Queued, Step(0), p, 0),
//!     JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(1), p, 0),
//!     JourneyEvent::new(Label::FirstToken, Step(1), after_prefill, 0),
//!     JourneyEvent::new(Label::Finished(FinishStatus::Stopped), Step(1), after_prefill, 0),
//! ];
//! assert_eq!(check_journey("r1", SpanInfo::default(), &journey), Verdict::Conforming);
//! ```
//!
//! The specification itself is `SPEC.md`; rule ids in the documentation refer to its §5.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(feature = "explore")]
pub mod explore;
pub mod r#impl;
pub mod model;
#[cfg(feature = "otlp")]
pub mod otel;
#[cfg(feature = "serve")]
pub mod serve;
pub mod wire;

// The reference system's public face: every type of `r#impl` at the root, so that no user
// types `r#impl` (`impl` is a keyword).
pub use r#impl::*;
