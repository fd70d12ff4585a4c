//! Simulations: a workload replayed through the reference scheduler with the emitter on the real
//! OpenTelemetry SDK, its spans written as OTLP JSON Lines (what `journey simulate` does).
//!
//! Time is simulated ([`SimClock`]): each engine iteration that runs a step advances it by a
//! modelled step duration (a fixed cost plus a cost per scheduled token), so queue times and
//! latencies in the output are those of the modelled engine, and the same workload gives the
//! same bytes every time (span ids come from [`SeededIds`]).
//!
//! ```
//! use journey_spec::otel::simulate::{SimulateOptions, simulate};
//! use journey_spec::synth::{SynthParams, generate};
//!
//! let workload = generate(&SynthParams { requests: 10, ..SynthParams::default() })?;
//! let (bytes, stats) = simulate(&workload, Vec::new(), &SimulateOptions::default(), |_| {})?;
//! assert_eq!(stats.requests, 10);
//! assert_eq!(stats.write.spans, 10);
//! assert!(!bytes.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::write::{OtlpJsonWriter, SeededIds, WriteStats};
use crate::r#impl::{
    ApiError, ApiFront, Emitter, Engine, EngineError, Iterated, RunSummary, Scheduler, SimClock, StepTracer,
    WireProfile, Workload, api_keys,
};
use crate::wire::keys;

/// How a simulation runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulateOptions {
    /// Span event limit of the SDK provider. The default keeps every journey whole (a request
    /// preempted 60 times has more than 128 events, the SDK's default limit).
    pub event_limit: u32,
    /// Spans per output line.
    pub spans_per_line: usize,
    /// Seed of the span and trace ids.
    pub id_seed: u64,
    /// Wall-clock time of the simulation's start.
    pub start: SystemTime,
    /// Modelled duration of a step: this much per step … (Any durations: simulated time
    /// saturates at `u64::MAX` nanoseconds, some 584 years, instead of wrapping.)
    pub step_base: Duration,
    /// … plus this much per scheduled token.
    pub step_per_token: Duration,
    /// `service.name` of the resource.
    pub service_name: String,
    /// The wire format: the fork at the seed (default) or at HEAD. A two-layer workload
    /// (`SPEC.md` §8.1) needs `head`: the API layer and the sampling header exist only there.
    pub wire_profile: WireProfile,
}

impl Default for SimulateOptions {
    /// Every journey whole, 4 spans per line, ids from seed 0, starting 2026-01-01T00:00:00Z,
    /// steps of 8 ms plus 40 µs per token.
    fn default() -> Self {
        SimulateOptions {
            event_limit: 1_000_000,
            spans_per_line: 4,
            id_seed: 0,
            start: UNIX_EPOCH + Duration::from_secs(1_767_225_600),
            step_base: Duration::from_millis(8),
            step_per_token: Duration::from_micros(40),
            service_name: "journey-simulate".to_owned(),
            wire_profile: WireProfile::Seed,
        }
    }
}

/// What a simulation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimulateStats {
    /// Engine iterations.
    pub iterations: u64,
    /// `schedule()` calls.
    pub steps: u64,
    /// Requests added.
    pub requests: u64,
    /// Preemptions.
    pub preemptions: u64,
    /// Simulated time.
    pub simulated: Duration,
    /// What was written.
    pub write: WriteStats,
}

/// How far a simulation got, reported after each engine iteration (not to be confused with a
/// request's token progress, [`crate::model::Progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulateProgress {
    /// Iterations done.
    pub iterations: u64,
    /// Iterations in the workload file (the drain comes after them).
    pub planned: u64,
    /// Requests live now.
    pub live: usize,
}

/// Why a simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The run itself failed (invalid configuration or request, or it did not drain).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The output could not be written.
    #[error("cannot write the spans: {0}")]
    Io(#[from] io::Error),
    /// The two-layer run failed (a request the front end cannot replay).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A two-layer workload under the `seed` wire profile, which has no API layer.
    #[error(
        "the workload is a two-layer run (API fields in its config or adds), which the seed wire profile cannot emit: use the head profile"
    )]
    TwoLayerNeedsHead,
}

/// Replays `workload` with the emitter on an SDK provider that writes OTLP JSON Lines to `out`;
/// returns `out` and what was done. `progress` is called after every iteration.
pub fn simulate<W: Write + Send + 'static>(
    workload: &Workload,
    out: W,
    options: &SimulateOptions,
    mut progress: impl FnMut(SimulateProgress),
) -> Result<(W, SimulateStats), SimulateError> {
    let two_layer = workload.is_two_layer();
    if two_layer && options.wire_profile == WireProfile::Seed {
        return Err(SimulateError::TwoLayerNeedsHead);
    }
    let writer = OtlpJsonWriter::new(out, options.spans_per_line);
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(writer.clone())
        .with_max_events_per_span(options.event_limit)
        .with_id_generator(SeededIds::new(options.id_seed))
        .with_resource(Resource::builder_empty().with_service_name(options.service_name.clone()).build())
        .build();
    let clock = SimClock::new(options.start);
    let mut scheduler = Scheduler::new(workload.config).map_err(EngineError::from)?;
    scheduler.set_emitter(Some(
        Emitter::new(provider.tracer(keys::SCOPE_NAME))
            .with_clock(clock.clone())
            .with_legacy_buffer(false)
            .with_profile(options.wire_profile),
    ));
    if let Some(settings) = &workload.step_tracing {
        // Step windows on the same provider and clock as the journeys, as in the fork.
        let tracer = provider.tracer(crate::wire::steps::SCOPE_NAME);
        scheduler.set_step_tracer(Some(StepTracer::new(tracer, settings.clone()).with_clock(clock.clone())));
    }
    let mut stats = SimulateStats::default();
    let planned = workload.steps.len() as u64;
    let on_iteration = |_, done, s: &mut Scheduler| {
        if done == Iterated::Stepped {
            let out = s.last_step();
            stats.preemptions += out.preempted.len() as u64;
            let tokens = u32::try_from(out.total_tokens).unwrap_or(u32::MAX);
            clock.advance(options.step_base.saturating_add(options.step_per_token.saturating_mul(tokens)));
        }
        stats.iterations += 1;
        progress(SimulateProgress { iterations: stats.iterations, planned, live: s.num_live() });
    };
    let run: Result<RunSummary, SimulateError> = if two_layer {
        let mut front = ApiFront::new(scheduler, workload)
            .with_tracer(provider.tracer(api_keys::SCOPE_NAME))
            .with_clock(clock.clone())
            .with_suffix_seed(options.id_seed);
        let run = front.run(workload, on_iteration).map_err(SimulateError::from);
        // The fork's shutdown closes the open step window. Open API spans (a failed run) end
        // cleanup-only, live core spans when the emitter drops.
        front.scheduler_mut().shutdown();
        drop(front);
        run
    } else {
        let mut engine = Engine::new(scheduler);
        let run = engine.run(workload, on_iteration).map_err(SimulateError::from);
        // The fork's shutdown closes the open step window. Requests still live (a failed run)
        // end their spans when the emitter drops.
        engine.scheduler_mut().shutdown();
        drop(engine);
        run
    };
    let summary = run?;
    stats.steps = summary.steps;
    stats.requests =
        workload.steps.iter().flat_map(|it| &it.ops).filter(|op| matches!(op, crate::r#impl::Op::Add(_))).count()
            as u64;
    stats.simulated = clock.elapsed();
    // Shutting down flushes the writer; an export error surfaces from `finish` below.
    let _ = provider.shutdown();
    let (out, write) = writer.finish()?;
    stats.write = write;
    Ok((out, stats))
}
