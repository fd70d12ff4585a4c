//! The tracing configurations that the performance measurements compare (`BENCHMARKS.md`), and
//! an SDK pipeline that records spans and exports them to nowhere.
//!
//! Included by the benches, the examples and the tests through `#[path]`.
#![allow(dead_code)]

use journey_spec::{Emitter, Scheduler};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};

/// How a scheduler traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracing {
    /// No emitter: tracing compiled in, switched off (the hooks branch on an empty `Option`).
    Off,
    /// The legacy buffered stream only (`Emitter::without_tracer()`): the fork with journey
    /// tracing on and no OpenTelemetry span.
    BufferOnly,
    /// Spans from an SDK provider whose sampler drops everything (`Sampler::AlwaysOff`): every
    /// core span is non-recording.
    SampledOut {
        /// Whether the legacy buffer is on too.
        buffer: bool,
    },
    /// Recording spans from an SDK provider with a simple processor and an exporter that drops
    /// what it gets ([`NoopExporter`]); the event limit is raised so that no event is dropped.
    Recording {
        /// Whether the legacy buffer is on too.
        buffer: bool,
    },
}

impl Tracing {
    /// Every configuration, in the order of the tables.
    pub const ALL: [Tracing; 6] = [
        Tracing::Off,
        Tracing::BufferOnly,
        Tracing::SampledOut { buffer: false },
        Tracing::SampledOut { buffer: true },
        Tracing::Recording { buffer: false },
        Tracing::Recording { buffer: true },
    ];

    /// A short name for benchmark ids and command lines.
    pub fn name(self) -> &'static str {
        match self {
            Tracing::Off => "off",
            Tracing::BufferOnly => "buffer-only",
            Tracing::SampledOut { buffer: false } => "sampled-out",
            Tracing::SampledOut { buffer: true } => "sampled-out+buffer",
            Tracing::Recording { buffer: false } => "recording",
            Tracing::Recording { buffer: true } => "recording+buffer",
        }
    }

    /// The configuration called `name`.
    pub fn parse(name: &str) -> Option<Tracing> {
        Tracing::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Attaches this configuration's emitter to `scheduler` (with the system clocks). The
    /// returned provider must outlive the scheduler's spans.
    pub fn attach(self, scheduler: &mut Scheduler) -> Option<SdkTracerProvider> {
        let (emitter, provider) = match self {
            Tracing::Off => return None,
            Tracing::BufferOnly => (Emitter::without_tracer(), None),
            Tracing::SampledOut { buffer } => {
                let p = SdkTracerProvider::builder()
                    .with_sampler(Sampler::AlwaysOff)
                    .with_simple_exporter(NoopExporter)
                    .build();
                (Emitter::new(p.tracer("vllm.scheduler")).with_legacy_buffer(buffer), Some(p))
            }
            Tracing::Recording { buffer } => {
                let p = recording_provider();
                (Emitter::new(p.tracer("vllm.scheduler")).with_legacy_buffer(buffer), Some(p))
            }
        };
        scheduler.set_emitter(Some(emitter));
        provider
    }
}

/// An SDK provider that records every span (the default sampler, no parent: always on), keeps
/// up to a million events per span, and exports each ended span to a [`NoopExporter`] from a
/// simple (synchronous) processor.
pub fn recording_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder().with_max_events_per_span(1_000_000).with_simple_exporter(NoopExporter).build()
}

/// An exporter that drops every batch: the pipeline's cost up to the wire, without the wire.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}
