//! OpenTelemetry data in and out: reading journeys from OTLP JSON (as an OpenTelemetry
//! Collector's file exporter writes it) and writing spans as OTLP JSON Lines.
