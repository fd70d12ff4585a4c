//! Writing spans as OTLP JSON Lines, the format an OpenTelemetry Collector's file exporter
//! writes: one `ExportTraceServiceRequest` per line, with lowercase hex ids and 64-bit integers
//! as strings, encoded by `opentelemetry-proto`'s serde support.
//!
//! ```
//! use journey_spec::otel::write::OtlpJsonWriter;
//! use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//!
//! let writer = OtlpJsonWriter::new(Vec::<u8>::new(), 16);
//! let provider = SdkTracerProvider::builder().with_simple_exporter(writer.clone()).build();
//! provider.tracer("demo").start("llm_core").end();
//! provider.shutdown()?;
//! let (bytes, stats) = writer.finish()?;
//! assert_eq!(stats.spans, 1);
//! assert!(String::from_utf8(bytes)?.starts_with(r#"{"resourceSpans":[{"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{IdGenerator, SpanData, SpanExporter};

use crate::r#impl::rng;

/// What a writer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    /// Lines (export requests) written.
    pub lines: u64,
    /// Spans written.
    pub spans: u64,
    /// Bytes written.
    pub bytes: u64,
}

struct Inner<W> {
    out: Option<W>,
    pending: Vec<SpanData>,
    batch: usize,
    resource: ResourceAttributesWithSchema,
    stats: WriteStats,
    error: Option<io::Error>,
}

/// A span exporter that writes OTLP JSON Lines to any `Write`, `batch` spans per line (the
/// rest on flush and shutdown). Clones share the output; after the provider shuts down,
/// [`finish`](OtlpJsonWriter::finish) gives the writer back with what was written, or the first
/// I/O error (an export that fails returns an error to the SDK, which never reaches the
/// scheduler).
pub struct OtlpJsonWriter<W> {
    inner: Arc<Mutex<Inner<W>>>,
}

impl<W> Clone for OtlpJsonWriter<W> {
    fn clone(&self) -> Self {
        OtlpJsonWriter { inner: Arc::clone(&self.inner) }
    }
}

impl<W> fmt::Debug for OtlpJsonWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("OtlpJsonWriter").field("stats", &inner.stats).field("pending", &inner.pending.len()).finish()
    }
}

impl<W: Write + Send + 'static> OtlpJsonWriter<W> {
    /// A writer to `out`, `batch` spans per line (at least 1).
    pub fn new(out: W, batch: usize) -> OtlpJsonWriter<W> {
        OtlpJsonWriter {
            inner: Arc::new(Mutex::new(Inner {
                out: Some(out),
                pending: Vec::new(),
                batch: batch.max(1),
                resource: ResourceAttributesWithSchema::from(&Resource::builder_empty().build()),
                stats: WriteStats::default(),
                error: None,
            })),
        }
    }

    /// Writes out pending spans; returns the output and the totals, or the first I/O error.
    pub fn finish(&self) -> io::Result<(W, WriteStats)> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.write_pending();
        if let Some(e) = inner.error.take() {
            return Err(e);
        }
        let stats = inner.stats;
        let out = inner.out.take().ok_or_else(|| io::Error::other("the writer was already finished"))?;
        Ok((out, stats))
    }

    /// The totals so far.
    pub fn stats(&self) -> WriteStats {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).stats
    }
}

impl<W: Write> Inner<W> {
    fn write_pending(&mut self) {
        if self.pending.is_empty() || self.error.is_some() {
            self.pending.clear();
            return;
        }
        let spans = std::mem::take(&mut self.pending);
        let n = spans.len() as u64;
        let request =
            ExportTraceServiceRequest { resource_spans: group_spans_by_resource_and_scope(spans, &self.resource) };
        let result = serde_json::to_vec(&request).map_err(io::Error::from).and_then(|mut line| {
            line.push(b'\n');
            let out = self.out.as_mut().ok_or_else(|| io::Error::other("the writer was already finished"))?;
            out.write_all(&line)?;
            out.flush()?;
            Ok(line.len() as u64)
        });
        match result {
            Ok(bytes) => {
                self.stats.lines += 1;
                self.stats.spans += n;
                self.stats.bytes += bytes;
            }
            Err(e) => self.error = Some(e),
        }
    }

    fn status(&self) -> OTelSdkResult {
        match &self.error {
            Some(e) => Err(OTelSdkError::InternalFailure(e.to_string())),
            None => Ok(()),
        }
    }
}

impl<W: Write + Send + 'static> SpanExporter for OtlpJsonWriter<W> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.pending.extend(batch);
        if inner.pending.len() >= inner.batch {
            inner.write_pending();
        }
        inner.status()
    }

    fn force_flush(&self) -> OTelSdkResult {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.write_pending();
        inner.status()
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        self.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.resource = ResourceAttributesWithSchema::from(resource);
    }
}

/// Trace and span ids from a seeded SplitMix64 stream, so that a simulation writes the same
/// ids every time.
#[derive(Debug)]
pub struct SeededIds {
    state: AtomicU64,
}

impl SeededIds {
    /// Ids from `seed`.
    pub fn new(seed: u64) -> SeededIds {
        SeededIds { state: AtomicU64::new(seed) }
    }

    fn next(&self) -> u64 {
        let state = self.state.fetch_add(rng::GAMMA, Ordering::Relaxed).wrapping_add(rng::GAMMA);
        rng::mix(state) | 1 // never the invalid all-zero id
    }
}

impl IdGenerator for SeededIds {
    fn new_trace_id(&self) -> TraceId {
        TraceId::from((u128::from(self.next()) << 64) | u128::from(self.next()))
    }

    fn new_span_id(&self) -> SpanId {
        SpanId::from(self.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_are_the_generator_stream_with_the_low_bit_set() {
        let ids = SeededIds::new(42);
        let mut rng = crate::r#impl::synth::Rng::new(42);
        for _ in 0..100 {
            assert_eq!(ids.next(), rng.next_u64() | 1);
        }
    }
}
