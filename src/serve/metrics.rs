//! `/metrics`: Prometheus text exposition (format 0.0.4) of what the receiver decided.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `journey_journeys_total` | counter | `verdict`: `conforming`, `incomplete`, `violating` |
//! | `journey_violations_total` | counter | `rule` (`R1` …), `rule_name` |
//! | `journey_events_checked_total` | counter | |
//! | `journey_export_requests_total` | counter | `transport`: `grpc`, `http/protobuf`, `http/json` |
//! | `journey_received_bytes_total` | counter | `transport` (uncompressed message bytes) |
//! | `journey_span_records_received_total` | counter | |
//! | `journey_rejected_requests_total` | counter | (bodies that could not be decoded) |
//! | `journey_records_shed_total` | counter | (pending set full) |
//! | `journey_late_records_total` | counter | (span already decided) |
//! | `journey_behind_horizon_total` | counter | (spans that came after what they relate to was decided, `--horizon`) |
//! | `journey_pending_spans` | gauge | |
//! | `journey_queue_time_seconds` | histogram | QUEUED → first SCHEDULED |
//! | `journey_time_to_first_token_seconds` | histogram | QUEUED → FIRST_TOKEN |
//! | `journey_e2e_latency_seconds` | histogram | QUEUED → FINISHED |
//!
//! The histograms are derived from the journeys that break no rule (the times of a violating
//! journey are not to be trusted), from `ts.monotonic`, with the bucket boundaries the GenAI
//! semantic conventions advise for `gen_ai.server.time_to_first_token` and
//! `gen_ai.server.request.duration` (queue time uses the latter's).

use std::fmt::Write as _;

use crate::model::RuleId;
use crate::otel::Summary;

use super::ingest::{Received, Transport};

/// Bucket upper bounds for time to first token, seconds (GenAI semantic conventions).
pub const TTFT_BUCKETS: [f64; 16] =
    [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
/// Bucket upper bounds for request durations, seconds (GenAI semantic conventions).
pub const DURATION_BUCKETS: [f64; 14] =
    [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

/// A cumulative histogram with fixed bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations `<=` each bound (not cumulative; summed when rendered).
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    /// An empty histogram over `bounds` (increasing).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: vec![0; bounds.len()], count: 0, sum: 0.0 }
    }

    /// Records one value (NaN is left out).
    pub fn observe(&mut self, v: f64) {
        self.observe_n(v, 1);
    }

    /// Records `n` observations of `v`.
    pub fn observe_n(&mut self, v: f64, n: u64) {
        if v.is_nan() {
            return;
        }
        if let Some(i) = self.bounds.iter().position(|b| v <= *b)
            && let Some(c) = self.counts.get_mut(i)
        {
            *c = c.saturating_add(n);
        }
        self.count = self.count.saturating_add(n);
        self.sum += v * n as f64;
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c;
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// The metrics derived from decided journeys (the counters come from the summary).
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Queue time (QUEUED → first SCHEDULED).
    pub queue_time: Histogram,
    /// Time to first token (QUEUED → FIRST_TOKEN).
    pub time_to_first_token: Histogram,
    /// End-to-end latency (QUEUED → FINISHED).
    pub e2e_latency: Histogram,
    /// Violations per rule, in [`RuleId::ALL`] order.
    pub violations: Vec<u64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            queue_time: Histogram::new(&DURATION_BUCKETS),
            time_to_first_token: Histogram::new(&TTFT_BUCKETS),
            e2e_latency: Histogram::new(&DURATION_BUCKETS),
            violations: vec![0; RuleId::ALL.len()],
        }
    }
}

impl Metrics {
    /// The metrics of the journeys `summary` holds.
    pub fn of(summary: &Summary) -> Metrics {
        let mut m = Metrics::default();
        let stats = &summary.stats;
        stats.queue_time.counts().for_each(|(v, n)| m.queue_time.observe_n(v, n));
        stats.time_to_first_token.counts().for_each(|(v, n)| m.time_to_first_token.observe_n(v, n));
        stats.end_to_end.counts().for_each(|(v, n)| m.e2e_latency.observe_n(v, n));
        for (rule, n) in summary.violations_by_rule() {
            if let Some(i) = RuleId::ALL.iter().position(|r| *r == rule)
                && let Some(c) = m.violations.get_mut(i)
            {
                *c = n;
            }
        }
        m
    }

    /// The exposition text.
    pub fn render(&self, summary: &Summary, received: &Received, pending: usize) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        let _ = writeln!(out, "# HELP journey_journeys_total Journeys decided, by verdict.");
        let _ = writeln!(out, "# TYPE journey_journeys_total counter");
        for (verdict, n) in
            [("conforming", summary.conforming), ("incomplete", summary.incomplete), ("violating", summary.violating)]
        {
            let _ = writeln!(out, "journey_journeys_total{{verdict=\"{verdict}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP journey_violations_total Rule violations, by rule.");
        let _ = writeln!(out, "# TYPE journey_violations_total counter");
        for (rule, n) in RuleId::ALL.iter().zip(&self.violations) {
            let _ =
                writeln!(out, "journey_violations_total{{rule=\"{}\",rule_name=\"{}\"}} {n}", rule, rule.info().name);
        }
        counter(&mut out, "journey_events_checked_total", "Journey events checked.", summary.events);
        let _ = writeln!(out, "# HELP journey_export_requests_total OTLP export requests taken in, by transport.");
        let _ = writeln!(out, "# TYPE journey_export_requests_total counter");
        for (i, t) in Transport::ALL.iter().enumerate() {
            let _ =
                writeln!(out, "journey_export_requests_total{{transport=\"{}\"}} {}", t.as_str(), received.requests[i]);
        }
        let _ =
            writeln!(out, "# HELP journey_received_bytes_total Bytes of export messages, uncompressed, by transport.");
        let _ = writeln!(out, "# TYPE journey_received_bytes_total counter");
        for (i, t) in Transport::ALL.iter().enumerate() {
            let _ = writeln!(out, "journey_received_bytes_total{{transport=\"{}\"}} {}", t.as_str(), received.bytes[i]);
        }
        counter(&mut out, "journey_span_records_received_total", "Span records taken in.", received.span_records);
        counter(
            &mut out,
            "journey_rejected_requests_total",
            "Export requests whose body could not be decoded.",
            received.rejected_requests,
        );
        counter(
            &mut out,
            "journey_records_shed_total",
            "Span records left out because the pending set was full (--max-pending).",
            received.shed_records,
        );
        counter(
            &mut out,
            "journey_late_records_total",
            "Span records left out because their span was already decided.",
            received.late_records,
        );
        counter(
            &mut out,
            "journey_behind_horizon_total",
            "Spans and step windows that came behind the horizon (--horizon), after what they could relate to was decided.",
            summary.behind_horizon,
        );
        let _ = writeln!(
            out,
            "# HELP journey_pending_spans Spans waiting to be decided.\n# TYPE journey_pending_spans gauge\njourney_pending_spans {pending}"
        );
        self.queue_time.render(&mut out, "journey_queue_time_seconds", "QUEUED to first SCHEDULED, seconds.");
        self.time_to_first_token.render(
            &mut out,
            "journey_time_to_first_token_seconds",
            "QUEUED to FIRST_TOKEN, seconds.",
        );
        self.e2e_latency.render(&mut out, "journey_e2e_latency_seconds", "QUEUED to FINISHED, seconds.");
        out
    }
}
