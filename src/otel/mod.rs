//! OpenTelemetry data in and out: reading journeys from OTLP JSON (as an OpenTelemetry
//! Collector's file exporter writes it) and from SDK spans, and writing spans as OTLP JSON
//! Lines.

#[cfg(feature = "tracing")]
pub mod simulate;
pub mod span_data;
pub mod write;
