//! Journeys read from OpenTelemetry SDK spans ([`SpanData`], as exporters receive them).
//!
//! ```
//! # #[cfg(feature = "tracing")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use journey_spec::otel::span_data::journey_of;
//! use journey_spec::{Emitter, NewRequest, Scheduler, SchedulerConfig};
//! use opentelemetry::trace::TracerProvider as _;
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//!
//! let exporter = InMemorySpanExporter::default();
//! let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
//! let mut s = Scheduler::new(SchedulerConfig::default())?;
//! s.set_emitter(Some(Emitter::new(provider.tracer("vllm.scheduler"))));
//! s.add_request(NewRequest::new("r1", 8, 1))?;
//! s.schedule();
//! s.update_from_output(|_| false);
//! let spans = exporter.get_finished_spans()?;
//! let journey = journey_of(&spans[0]).expect("a journey span");
//! assert_eq!(journey.request_id.as_str(), "r1");
//! assert!(journey.check().is_conforming());
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "tracing"))]
//! # fn main() {}
//! ```

use opentelemetry::Value;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::SpanData;

use crate::model::{JourneyChecker, JourneyEvent, RequestId, SpanInfo, Verdict};
use crate::wire::{self, DecodeError, WireValue, keys, unix_nanos};

/// The journey carried by one span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanJourney {
    /// `gen_ai.request.id` (empty when the span lacks it).
    pub request_id: RequestId,
    /// The span's trace id.
    pub trace_id: TraceId,
    /// The span's id.
    pub span_id: SpanId,
    /// The parent's span id (`SpanId::INVALID` for a root span).
    pub parent_span_id: SpanId,
    /// Times and dropped events, for the checker.
    pub span: SpanInfo,
    /// The `journey.*` events in span order, decoded (or why not).
    pub events: Vec<Result<JourneyEvent, DecodeError>>,
}

impl SpanJourney {
    /// Checks the journey: decoding errors and model violations together.
    pub fn check(&self) -> Verdict {
        let mut checker = JourneyChecker::new(self.request_id.clone()).with_span(self.span);
        for e in &self.events {
            // The checker keeps every violation for `finish`.
            let _ = wire::push_decoded(&mut checker, e.as_ref());
        }
        checker.finish()
    }

    /// The events that decoded.
    pub fn decoded(&self) -> impl Iterator<Item = &JourneyEvent> {
        self.events.iter().filter_map(|e| e.as_ref().ok())
    }
}

/// An SDK attribute value as the wire decoder sees it.
pub fn wire_value(v: &Value) -> WireValue<'_> {
    match v {
        Value::String(s) => WireValue::Str(s.as_str()),
        Value::I64(i) => WireValue::Int(*i),
        Value::F64(f) => WireValue::Double(*f),
        Value::Bool(b) => WireValue::Bool(*b),
        Value::Array(_) => WireValue::Other("array"),
        _ => WireValue::Other("other"),
    }
}

/// The journey of `span`, or `None` when it has no `journey.*` event.
pub fn journey_of(span: &SpanData) -> Option<SpanJourney> {
    let mut events = Vec::new();
    for e in span.events.iter() {
        if wire::kind_of_name(&e.name).is_none() {
            continue;
        }
        let attrs = e.attributes.iter().map(|kv| (kv.key.as_str(), wire_value(&kv.value)));
        events.push(wire::decode(&e.name, Some(unix_nanos(e.timestamp)), attrs));
    }
    if events.is_empty() {
        return None;
    }
    let request_id = span
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == keys::REQUEST_ID)
        .map(|kv| RequestId(kv.value.as_str().into_owned()))
        .unwrap_or_default();
    Some(SpanJourney {
        request_id,
        trace_id: span.span_context.trace_id(),
        span_id: span.span_context.span_id(),
        parent_span_id: span.parent_span_id,
        span: SpanInfo {
            start_unix_nano: Some(unix_nanos(span.start_time)),
            end_unix_nano: Some(unix_nanos(span.end_time)),
            dropped_events: span.events.dropped_count,
        },
        events,
    })
}

/// The step window of `span` (`scheduler_steps_<n>`, `SPEC.md` §12), or `None` when it is not
/// one (its scope is not `vllm.scheduler.step` and its name lacks the prefix).
pub fn window_of(span: &SpanData) -> Option<crate::model::StepWindow> {
    use crate::wire::steps as step_keys;
    if !step_keys::is_window(span.instrumentation_scope.name(), &span.name) {
        return None;
    }
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .and_then(|kv| step_keys::window_attribute(wire_value(&kv.value)))
    };
    let events = span
        .events
        .iter()
        .map(|e| step_keys::decode(&e.name, e.attributes.iter().map(|kv| (kv.key.as_str(), wire_value(&kv.value)))))
        .collect();
    Some(crate::model::StepWindow {
        name: span.name.to_string(),
        root: span.parent_span_id == opentelemetry::trace::SpanId::INVALID,
        internal: span.span_kind == opentelemetry::trace::SpanKind::Internal,
        sequence: attribute(step_keys::SPAN_SEQUENCE),
        range_start: attribute(step_keys::RANGE_START),
        closure_interval: attribute(step_keys::CLOSURE_INTERVAL),
        range_end: attribute(step_keys::RANGE_END),
        dropped_events: span.events.dropped_count,
        events,
    })
}
