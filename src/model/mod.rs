//! The pure specification: states, events, the transition table, the rule catalogue and the
//! checkers. No I/O, no clock, no OpenTelemetry: time is event data, and everything here is a
//! function of the events it is given.
//!
//! - [`event`]: the vocabulary ([`EventKind`], [`ScheduleKind`], [`FinishStatus`], [`Phase`],
//!   [`Progress`], [`JourneyEvent`]) with the wire spellings of `SPEC.md` §3.
//! - [`lifecycle`]: [`State`] and the [`TRANSITIONS`] table, the single source of truth for which
//!   event is legal where; [`mermaid`] draws it.
//! - [`rules`]: the catalogue [`RuleId`] (`R1` … `R14`).
//! - [`JourneyChecker`] checks one journey incrementally; [`InstanceChecker`] checks the rules
//!   that span the journeys of one scheduler instance.
//! - `strategy` (cargo feature `proptest`): strategies that generate valid journeys.
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
//! # Extending the model
//!
//! Adding an event is one new enum variant plus its rows; the compiler then points at every
//! place that must handle it, because no `match` over events has a wildcard arm. As a walk
//! through, take the fork's API-side `DEPARTED` (the response left the system, after FINISHED):
//!
//! 1. **The kind.** Add `Departed => "DEPARTED",` to [`EventKind`] in `event.rs`. `ALL`, `as_str`,
//!    parsing and serde follow from the `wire_enum!` list. The compiler now stops at
//!    [`event_name`] (its span event name), [`Phase::expected`] (what phase it reports),
//!    [`JourneyEvent::label`], the checker's baseline update, [`InstanceChecker::add_journey`],
//!    the wire decoder and the emitter's call sites.
//! 2. **The label.** Add `Label::Departed`; the compiler stops at [`Label::kind`],
//!    [`Label::schedule_kind`], [`Label::finish_status`] and `Display`.
//! 3. **The rows.** `DEPARTED` follows `FINISHED`, so the lifecycle needs a new terminal state:
//!    add `State::Departed`, make `Finished(_)` non-terminal and add one row per status,
//!    `row(State::Finished(s), Label::Departed, State::Departed)`, to [`TRANSITIONS`]. The
//!    table's unit tests (one target class per kind, nothing leaves the terminal state) and the
//!    README diagram test (`tests/readme.rs`) fail until the README shows the new diagram.
//! 4. **The rules.** R2's "nothing follows FINISHED" becomes "nothing follows DEPARTED"; R3 may
//!    require DEPARTED after FINISHED. A genuinely new property gets the next free id (`R15`,
//!    never a reused one) in [`RuleId`] with its catalogue entry; `tests/model_rules.rs` fails
//!    until a targeted corruption breaks the new rule.
//! 5. **The wire.** [`crate::wire`] decodes `journey.DEPARTED` once the kind exists; add any new
//!    attribute key to [`crate::wire::keys`].

pub mod checker;
pub mod event;
pub mod instance;
pub mod lifecycle;
pub mod rules;
#[cfg(feature = "proptest")]
pub mod strategy;

pub use checker::{JourneyChecker, SpanInfo, Verdict, Violation, check_journey};
pub use event::{
    EventKind, FinishStatus, JourneyEvent, Label, Phase, Progress, RequestId, ScheduleKind, Step, UnknownValue,
    event_name,
};
pub use instance::{InstanceChecker, InstanceViolation};
pub use lifecycle::{Row, State, TRANSITIONS, allowed, mermaid, next};
pub use rules::{RuleId, RuleInfo, Scope, catalogue};
