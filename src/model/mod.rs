//! The pure specification: states, events, the transition table, the rule catalogue and the
//! checkers. No I/O, no clock, no OpenTelemetry: time is event data, and everything here is a
//! function of the events it is given.
//!
//! - [`event`]: the vocabulary ([`EventKind`], [`ScheduleKind`], [`FinishStatus`], [`Phase`],
//!   [`Progress`], [`JourneyEvent`]) with the wire spellings of `SPEC.md` §3.
//! - [`lifecycle`]: the machinery every lifecycle shares ([`Lifecycle`], [`LifecycleChecker`]);
//!   [`core`]: the core journey's [`State`]s and its [`TRANSITIONS`] table, the single source of
//!   truth for which event is legal where; [`mermaid`] draws it.
//! - [`finding`]: [`Violation`], [`Detail`], [`Verdict`]: findings as data.
//! - [`rules`]: the catalogue [`RuleId`] (`R1` … `R14`; the later layers' ids are namespaced by
//!   their letter: `C2`, `C3`, `W1` core, `A1` … `A4` API, `X1` … `X6` across), each with its
//!   [`Layer`].
//! - [`api`]: the API lifecycle of `llm_request` (`SPEC.md` §9.2) as two lifecycles under the
//!   same machinery, [`ChatApi`] and [`CompletionsApi`], and [`check_api_span`] (A1–A4);
//!   [`ns`]: the nanosecond clock of HEAD's core events (C2); [`cross`]: the two layers
//!   together, joined by trace and parent span id (X1–X6), and against the workload (C3, W1).
//! - [`JourneyChecker`] checks one journey incrementally; [`InstanceChecker`] checks the rules
//!   that span the journeys of one scheduler instance.
//! - `strategy` (cargo feature `proptest`): strategies that generate valid journeys, the
//!   corruption catalogue, and paths and corruptions for any lifecycle.
//!
//! # Using the model as an oracle
//!
//! Anything that produces journey events — another server's log, a simulator, a test double —
//! can be checked by building [`JourneyEvent`]s and feeding them to a [`JourneyChecker`]:
//!
//! ```
//! use journey_spec::model::*;
//!
//! // A hand-written log of some other server: (event, step, prefill done, decode done, preemptions).
//! let log = [("QUEUED", 0, 0, 0, 0), ("SCHEDULED:FIRST", 1, 0, 0, 0), ("FIRST_TOKEN", 1, 16, 1, 0),
//!            ("PREEMPTED", 2, 16, 1, 1), ("SCHEDULED:RESUME", 2, 16, 1, 1)];
//! let mut checker = JourneyChecker::new("req-7");
//! let mut found = Vec::new();
//! for (i, (name, step, pre, dec, n)) in log.iter().enumerate() {
//!     let label = match *name {
//!         "QUEUED" => Label::Queued,
//!         "SCHEDULED:FIRST" => Label::Scheduled(ScheduleKind::First),
//!         "SCHEDULED:RESUME" => Label::Scheduled(ScheduleKind::Resume),
//!         "FIRST_TOKEN" => Label::FirstToken,
//!         _ => Label::Preempted,
//!     };
//!     let progress = Progress { prefill_done: *pre, prefill_total: 16, decode_done: *dec, decode_max: 8 };
//!     let event = JourneyEvent::new(label, Step(*step), progress, *n).at(i as f64);
//!     if let Err(v) = checker.push(&event) {
//!         found.push(v);
//!     }
//! }
//! // The resume happened in the step that preempted the request: R6.
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].rule, RuleId::StepOrder);
//! assert_eq!(found[0].event_index, 4);
//! ```
//!
//! `examples/oracle.rs` does the same for a whole log file of another server.
//!
//! # Lifecycles
//!
//! Every lifecycle is a [`Lifecycle`]: states, labels, kinds, rule ids and one `const` table of
//! [`Row`]s, from which [`lifecycle`] derives the rest — legality, terminal states (those no row
//! leaves), where a journey may end, the diagram, the lists coverage is sized by — and which
//! [`LifecycleChecker`] checks with the lifecycle's own rule ids. The core journey is [`Core`];
//! [`JourneyChecker`] adds the core's attribute rules (R4–R12) to the machinery, under a
//! [`Profile`]. Findings are [`Violation`]s with a structured [`Detail`].
//!
//! # Two layers
//!
//! At the fork's HEAD a request has an API span (`llm_request`) whose child is its core span
//! (`llm_core`, absent for an unsampled request: C3). The API span is checked on its own by
//! [`check_api_span`]; the pair by [`cross::check_layers`] over compact summaries of both spans
//! ([`cross::ApiSide`], [`cross::CoreSide`]), so that a streaming check can let go of the events
//! and still join the layers at the end. A partner span missing from the input is *unpaired*
//! (counted) unless the input is declared complete.
//!
//! ```
//! use journey_spec::model::api::{ApiEvent, ApiKind, ApiSpan, AttrValue};
//! use journey_spec::model::{RuleId, check_api_span};
//!
//! let span = ApiSpan {
//!     attributes: vec![("gen_ai.request.id".into(), AttrValue::Str("cmpl-1".into())),
//!                      ("http.route".into(), AttrValue::Str("/v1/completions".into()))],
//!     events: vec![ApiEvent::new(ApiKind::Arrived, 1, 0.1), ApiEvent::new(ApiKind::HandoffToCore, 2, 0.2)],
//!     ..ApiSpan::default()
//! };
//! // Completions have no HANDOFF_TO_CORE: A2 at event 1.
//! let v = check_api_span(&span).verdict;
//! assert_eq!((v.violations()[0].rule, v.violations()[0].event_index), (RuleId::ApiLifecycle, 1));
//! ```
//!
//! # Extending the model
//!
//! **A lifecycle of your own** needs no change to this crate: implement [`Lifecycle`] on a
//! marker type (`tests/extension.rs` does it for a journey with an event after the old end and
//! a status the crate does not have) and use [`LifecycleChecker`], [`Lifecycle::mermaid`] and
//! `strategy::lifecycle::{path, corrupted_path}`.
//!
//! **A variant in the crate's own enums** is found by the compiler: no `match` over kinds,
//! labels or states has a wildcard arm, and nothing else lists them. Measured by adding each
//! variant to a copy of the crate and building with every feature:
//!
//! | added | places the compiler points at |
//! |---|---|
//! | an [`EventKind`] (`Departed => "DEPARTED"`) | 9: [`Phase::expected`], [`JourneyEvent::label`], the checker's R4 and baseline matches (`checker.rs`), [`InstanceChecker::add_journey`], `otel::summary` (journey metrics), `otel::text` (three: event marks, glyphs, labels) |
//! | its [`Label`] | 3: [`Label::kind`], [`Label::schedule_kind`], [`Label::finish_status`] |
//! | a [`State`] | 3: [`State::name`], its `Display`, `otel::text`'s lane glyph |
//! | a [`FinishStatus`] | 1: [`FinishStatus::is_natural`] |
//!
//! Then the data: the new rows in [`TRANSITIONS`] (a state that gains an outgoing row stops
//! being terminal by itself: `FINISHED → DEPARTED` makes `Finished(_)` ordinary and the new
//! state the end), the wire spelling in `SPEC.md` §3 (a test checks every spelling is there),
//! a rule id if the event brings a new property (the next free number, never a reused one,
//! with its entry in [`RuleId`]; `tests/model_rules.rs` fails until a corruption breaks it),
//! and the README diagram (its test fails until it shows [`mermaid`]'s output). Tests that
//! fail on their own until the data is right: every kind has a row with one target class,
//! every live state can finish with every unnatural status, coverage is sized by
//! [`Lifecycle::labels`] and [`Lifecycle::states`].

pub mod api;
pub mod checker;
pub mod core;
pub mod cross;
pub mod event;
pub mod finding;
pub mod instance;
pub mod lifecycle;
pub mod ns;
pub mod rules;
#[cfg(feature = "proptest")]
pub mod strategy;

pub use api::{ApiKind, ApiOutcome, ApiSpan, ApiState, ChatApi, CompletionsApi, Endpoint, check_api_span};
pub use checker::{JourneyChecker, Profile, SpanInfo, check_journey, check_journey_with};
pub use core::{Core, State, TRANSITIONS, allowed, mermaid, next};
pub use event::{
    EventKind, FinishStatus, JourneyEvent, Label, Phase, Progress, RequestId, ScheduleKind, Step, UnknownValue,
    event_name,
};
pub use finding::{Detail, Seen, SpanEdge, Verdict, Violation};
pub use instance::{InstanceChecker, InstanceViolation};
pub use lifecycle::{Lifecycle, LifecycleChecker, LifecycleRules, Row, Rule};
pub use rules::{Layer, RuleId, RuleInfo, Scope, catalogue};
