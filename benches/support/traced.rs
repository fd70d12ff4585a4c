//! A scheduler with the emitter of a named tracing configuration, whether tracing is compiled
//! in or out (shared by the measurement programs in `examples/`).
#![allow(dead_code)]

use journey_spec::Scheduler;

/// `scheduler` with the emitter of the tracing configuration `name` (`None` for an unknown
/// name), and the provider that must outlive it.
#[cfg(feature = "tracing")]
pub fn traced(
    mut scheduler: Scheduler,
    name: &str,
) -> Option<(Scheduler, Option<opentelemetry_sdk::trace::SdkTracerProvider>)> {
    let provider = super::tracing::Tracing::parse(name)?.attach(&mut scheduler);
    Some((scheduler, provider))
}

/// Tracing is compiled out: only `off` exists.
#[cfg(not(feature = "tracing"))]
pub fn traced(scheduler: Scheduler, name: &str) -> Option<(Scheduler, ())> {
    (name == "off").then_some((scheduler, ()))
}
