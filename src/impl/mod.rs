//! The reference system: a continuous-batching scheduler with vLLM v1 semantics, its KV block
//! pool, the engine loop that replays workload files, a synthetic workload generator, and the
//! journey emitter (feature `tracing`).
//!
//! The scheduler is a pure core driven from outside, like `raft-rs`'s `RawNode`: it owns no
//! clock, thread or randomness. [`Scheduler::add_request`], [`Scheduler::schedule`],
//! [`Scheduler::update_from_output`], [`Scheduler::finish_requests`] and [`Scheduler::reset`]
//! are its inputs; [`StepOutput`] and [`UpdateOutput`] say what it decided. [`Engine`] runs
//! those calls in the order of one engine iteration (`SPEC.md` §8) and replays [`Workload`]s.
//!
//! `impl` is a keyword: the crate root re-exports this module's types, so users write
//! `journey_spec::Scheduler`.

#[cfg(feature = "tracing")]
pub mod api;
mod config;
#[cfg(feature = "tracing")]
pub mod emitter;
mod engine;
#[cfg(feature = "faults")]
#[doc(hidden)]
pub mod faults;
mod hooks;
mod kv;
mod queue;
mod request;
pub(crate) mod rng;
mod scheduler;
#[cfg(feature = "tracing")]
pub mod steps;
pub mod synth;
mod workload;

#[cfg(feature = "tracing")]
pub use api::{ApiError, ApiFront, ApiOutcome, Submitted, api_keys};
pub use config::{ConfigError, Policy, SchedulerConfig};
#[cfg(feature = "tracing")]
pub use emitter::{BufferedEvent, Clock, Emitter, SimClock, SystemClock, TickClock, WireProfile};
#[cfg(feature = "explore")]
pub(crate) use engine::drain_bound;
pub use engine::{Engine, EngineError, Iterated, RunSummary, replay};
#[cfg(feature = "faults")]
#[doc(hidden)]
pub use faults::Faults;
pub use kv::{BlockId, BlockPool};
pub use request::{FinishReason, Handle, NewRequest, Request, Status, TraceHeaders};
pub use scheduler::{AddError, Finished, Invariant, InvariantError, Scheduled, Scheduler, StepOutput, UpdateOutput};
#[cfg(feature = "tracing")]
pub use steps::StepTracer;
pub use workload::{
    AddOp, ApiConfig, Endpoint, FinishOp, InFlight, Iteration, Op, Share, StepTracing, Workload, WorkloadError,
    WorkloadFileError,
};
