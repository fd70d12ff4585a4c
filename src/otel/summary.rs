//! The totals and statistics of a check over one or more inputs: what `journey check` reports.
//!
//! A [`Summary`] takes one [`CheckedTrace`] at a time and keeps only what the report needs:
//! counters, one number per journey for each latency distribution ([`Samples`]: exact values,
//! 8 bytes each, so that the percentiles are the nearest-rank ones, up to
//! [`Samples::EXACT_LIMIT`] journeys; past that, counts in buckets of ±0.05% whose number does
//! not grow with the journeys), and the events of violating journeys (for their timelines).
//! Memory grows with the number of journeys (24 bytes per journey for the three distributions)
//! up to that limit, then no more; never with the size of the inputs.

use std::collections::BTreeMap;

use crate::model::{EventKind, FinishStatus, Verdict};

use super::check::{CheckedTrace, JourneyReport, SettledJourney};
use super::read::RecordedEvent;

/// One input of the check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputSummary {
    /// The input's name.
    pub name: String,
    /// Lines read.
    pub lines: u64,
    /// Distinct spans.
    pub spans: u64,
    /// Spans with journey events.
    pub journeys: u64,
    /// Problems reported while reading it (malformed lines, conflicting records, I/O errors).
    pub errors: u64,
    /// The format read (`json`, `framed`), `None` when nothing was read.
    pub format: Option<&'static str>,
    /// The whole-input compression (`zstd`, `gzip`), when there was one.
    pub compression: Option<&'static str>,
}

/// A problem reported while reading an input, as the JSON report lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Index of its input in [`Summary::inputs`] (set by [`Summary::add_problems`]).
    pub input: usize,
    /// The file it is in (the input itself, or one file of a directory).
    pub path: String,
    /// The line, when it is on one.
    pub line: Option<u64>,
    /// The record of a length-framed file, when it is in one.
    pub record: Option<u64>,
    /// What is wrong.
    pub message: String,
}

/// A journey that lost events (the span reports dropped events) and breaks no rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteJourney {
    /// Index of its input in [`Summary::inputs`].
    pub input: usize,
    /// The request id, when the span has one.
    pub request_id: Option<String>,
    /// The trace id, lowercase hex.
    pub trace_id: String,
    /// The span id, lowercase hex.
    pub span_id: String,
    /// Events the span reports as dropped.
    pub dropped_events: u32,
    /// Events kept.
    pub events: usize,
}

impl IncompleteJourney {
    /// The entry of a journey settled without its events kept, from input `input`.
    fn settled(input: usize, s: SettledJourney) -> Self {
        IncompleteJourney {
            input,
            request_id: s.request_id,
            trace_id: s.trace_id,
            span_id: s.span_id,
            dropped_events: s.span.dropped_events,
            events: s.events,
        }
    }
}

/// A distribution of durations (seconds), summarised by nearest-rank percentiles.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Distribution {
    /// How many values.
    pub count: usize,
    /// The smallest.
    pub min: f64,
    /// The median (nearest rank).
    pub p50: f64,
    /// The 90th percentile (nearest rank).
    pub p90: f64,
    /// The 99th percentile (nearest rank).
    pub p99: f64,
    /// The largest.
    pub max: f64,
    /// The arithmetic mean.
    pub mean: f64,
    /// Whether the percentiles come from [`Samples`]' buckets (more than
    /// [`Samples::EXACT_LIMIT`] values): then each is within ±0.05% of the nearest-rank value
    /// (`count`, `min` and `max` stay exact). Written to JSON only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
}

impl Distribution {
    /// Summarises `values`; `None` when there are none. NaNs are left out.
    ///
    /// ```
    /// use journey_spec::otel::summary::Distribution;
    /// let d = Distribution::of((1..=100).map(f64::from).collect()).unwrap();
    /// assert_eq!((d.p50, d.p90, d.p99, d.max), (50.0, 90.0, 99.0, 100.0));
    /// ```
    pub fn of(mut values: Vec<f64>) -> Option<Distribution> {
        values.retain(|v| !v.is_nan());
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let rank = |p: f64| values[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        (n > 0).then(|| Distribution {
            count: n,
            min: values[0],
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: values[n - 1],
            mean: values.iter().sum::<f64>() / n as f64,
            approximate: false,
        })
    }

    /// Summarises `samples`: exactly as [`of`](Self::of) while they hold every value, else
    /// from their buckets (marked [`approximate`](Self::approximate)).
    pub fn of_samples(samples: &Samples) -> Option<Distribution> {
        let Some(b) = &samples.buckets else {
            return Distribution::of(samples.exact.clone());
        };
        let n = b.count;
        let rank = |p: f64| {
            let r = ((p / 100.0 * n as f64).ceil() as u64).clamp(1, n);
            let mut seen = 0u64;
            for (&key, &c) in &b.counts {
                seen = seen.saturating_add(c);
                if seen >= r {
                    return Buckets::value(key).clamp(b.min, b.max);
                }
            }
            b.max
        };
        (n > 0).then(|| Distribution {
            count: usize::try_from(n).unwrap_or(usize::MAX),
            min: b.min,
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: b.max,
            mean: b.sum / n as f64,
            approximate: true,
        })
    }
}

/// The values of one duration (seconds), for [`Distribution`]: every value as given while
/// there are at most [`EXACT_LIMIT`](Self::EXACT_LIMIT), so that the percentiles are the
/// nearest-rank ones; past that, a count per bucket of values that agree in sign, exponent and
/// the top 10 bits of the mantissa (a bucket spans 2⁻¹⁰ of its values, so a value reported
/// from its middle is within ±0.05%), with the count, minimum, maximum and sum kept as they
/// are. The buckets depend on the values only, not on the order they came in, so two samples
/// of the same values merged in any order summarise alike (the mean's last bits aside). NaNs
/// are left out.
///
/// ```
/// use journey_spec::otel::summary::{Distribution, Samples};
/// let mut s = Samples::default();
/// (1..=100).for_each(|v| s.push(f64::from(v)));
/// let d = Distribution::of_samples(&s).unwrap();
/// assert_eq!((d.p50, d.p99, d.approximate), (50.0, 99.0, false));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    /// The values, while they are kept (`buckets` is `None`).
    exact: Vec<f64>,
    buckets: Option<Buckets>,
}

impl Extend<f64> for Samples {
    fn extend<I: IntoIterator<Item = f64>>(&mut self, values: I) {
        values.into_iter().for_each(|v| self.push(v));
    }
}

impl FromIterator<f64> for Samples {
    fn from_iter<I: IntoIterator<Item = f64>>(values: I) -> Samples {
        let mut s = Samples::default();
        s.extend(values);
        s
    }
}

/// [`Samples`] past their limit.
#[derive(Debug, Clone, PartialEq)]
struct Buckets {
    /// Values by [`Buckets::key`].
    counts: BTreeMap<i64, u64>,
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
}

impl Buckets {
    /// Mantissa bits a bucket keeps.
    const BITS: u32 = 10;

    /// The bucket of `v` (not NaN): ordered as the values are.
    fn key(v: f64) -> i64 {
        if v == 0.0 {
            return 0;
        }
        // The bits of a non-negative double are ordered as its value; +1 keeps 0 for zero.
        let magnitude = (v.abs().to_bits() >> (52 - Self::BITS)) as i64 + 1;
        if v > 0.0 { magnitude } else { -magnitude }
    }

    /// The value reported for bucket `key`: the middle of its span (its lower end when the
    /// span reaches infinity).
    fn value(key: i64) -> f64 {
        if key == 0 {
            return 0.0;
        }
        let m = key.unsigned_abs() - 1;
        let lo = f64::from_bits(m << (52 - Self::BITS));
        let hi = f64::from_bits((m + 1) << (52 - Self::BITS));
        let mid = if hi.is_finite() { lo + (hi - lo) / 2.0 } else { lo };
        if key > 0 { mid } else { -mid }
    }

    fn empty() -> Buckets {
        Buckets { counts: BTreeMap::new(), count: 0, min: f64::INFINITY, max: f64::NEG_INFINITY, sum: 0.0 }
    }

    fn add(&mut self, v: f64, n: u64) {
        *self.counts.entry(Self::key(v)).or_default() += n;
        self.count = self.count.saturating_add(n);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v * n as f64;
    }

    fn merge(&mut self, other: &Buckets) {
        for (k, c) in &other.counts {
            *self.counts.entry(*k).or_default() += c;
        }
        self.count = self.count.saturating_add(other.count);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }
}

impl Samples {
    /// Values kept exactly, per duration; past this the samples are counted in buckets (about
    /// 8 MiB per duration at the limit; the buckets of one duration number at most a few
    /// thousand for durations between a microsecond and a day).
    pub const EXACT_LIMIT: usize = 1 << 20;

    /// Adds `v` (a NaN is left out).
    pub fn push(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        match &mut self.buckets {
            Some(b) => b.add(v, 1),
            None => {
                self.exact.push(v);
                self.spill_if_full();
            }
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Samples) {
        match (&mut self.buckets, &other.buckets) {
            (Some(b), Some(o)) => b.merge(o),
            (Some(b), None) => other.exact.iter().for_each(|v| b.add(*v, 1)),
            (None, Some(o)) => {
                let mut b = o.clone();
                std::mem::take(&mut self.exact).into_iter().for_each(|v| b.add(v, 1));
                self.buckets = Some(b);
            }
            (None, None) => {
                self.exact.extend_from_slice(&other.exact);
                self.spill_if_full();
            }
        }
    }

    /// Past the limit, the exact values go into buckets and their memory is given back.
    fn spill_if_full(&mut self) {
        if self.exact.len() > Self::EXACT_LIMIT {
            let mut b = Buckets::empty();
            std::mem::take(&mut self.exact).into_iter().for_each(|v| b.add(v, 1));
            self.buckets = Some(b);
        }
    }

    /// How many values were added.
    pub fn len(&self) -> usize {
        match &self.buckets {
            Some(b) => usize::try_from(b.count).unwrap_or(usize::MAX),
            None => self.exact.len(),
        }
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every value is kept as given (at most [`EXACT_LIMIT`](Self::EXACT_LIMIT)).
    pub fn is_exact(&self) -> bool {
        self.buckets.is_none()
    }

    /// The values with how often each occurs: each value once, in the order added, while they
    /// are exact; else each bucket's middle value (within its minimum and maximum) and count, in
    /// ascending order.
    pub fn counts(&self) -> Box<dyn Iterator<Item = (f64, u64)> + '_> {
        match &self.buckets {
            None => Box::new(self.exact.iter().map(|v| (*v, 1))),
            Some(b) => Box::new(b.counts.iter().map(|(k, c)| (Buckets::value(*k).clamp(b.min, b.max), *c))),
        }
    }
}

/// What one journey contributes to the statistics: durations from `ts.monotonic`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JourneyMetrics {
    /// QUEUED → first SCHEDULED, seconds.
    pub queue_time: Option<f64>,
    /// QUEUED → FIRST_TOKEN, seconds.
    pub time_to_first_token: Option<f64>,
    /// QUEUED → FINISHED, seconds.
    pub end_to_end: Option<f64>,
    /// Preemptions (the largest `num_preemptions` seen, which counts lost events too).
    pub preemptions: u64,
    /// The finish status, when the journey has FINISHED.
    pub finish_status: Option<FinishStatus>,
}

impl JourneyMetrics {
    /// The metrics of a journey's events (undecodable events are skipped).
    pub fn of(events: &[RecordedEvent]) -> JourneyMetrics {
        let mut queued = None;
        let mut scheduled = None;
        let mut first_token = None;
        let mut finished = None;
        let mut m = JourneyMetrics::default();
        for e in events.iter().filter_map(|e| e.decoded.as_ref().ok()) {
            let t = e.ts_monotonic;
            match e.kind {
                EventKind::Queued => {
                    queued.get_or_insert(t);
                }
                EventKind::Scheduled => {
                    scheduled.get_or_insert(t);
                }
                EventKind::FirstToken => {
                    first_token.get_or_insert(t);
                }
                EventKind::Finished => {
                    finished.get_or_insert(t);
                    m.finish_status = m.finish_status.or(e.finish_status);
                }
                EventKind::Preempted => {}
            }
            m.preemptions = m.preemptions.max(e.num_preemptions);
        }
        let since_queued = |t: Option<f64>| Some(t? - queued?);
        m.queue_time = since_queued(scheduled);
        m.time_to_first_token = since_queued(first_token);
        m.end_to_end = since_queued(finished);
        m
    }
}

/// Statistics over the journeys that break no rule (conforming and incomplete ones); the times
/// of a violating journey are not to be trusted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// QUEUED → first SCHEDULED, seconds, one value per journey that has both.
    pub queue_time: Samples,
    /// QUEUED → FIRST_TOKEN, seconds.
    pub time_to_first_token: Samples,
    /// QUEUED → FINISHED, seconds.
    pub end_to_end: Samples,
    /// Number of journeys by number of preemptions.
    pub preemptions: BTreeMap<u64, u64>,
    /// Number of journeys by finish status (statuses no journey had are absent).
    pub finish_status: BTreeMap<FinishStatus, u64>,
    /// Journeys without FINISHED (incomplete ones that lost it).
    pub unfinished: u64,
}

impl Stats {
    /// How many journeys finished with `status`.
    pub fn finished(&self, status: FinishStatus) -> u64 {
        self.finish_status.get(&status).copied().unwrap_or(0)
    }

    pub(crate) fn add(&mut self, m: &JourneyMetrics) {
        self.queue_time.extend(m.queue_time);
        self.time_to_first_token.extend(m.time_to_first_token);
        self.end_to_end.extend(m.end_to_end);
        *self.preemptions.entry(m.preemptions).or_default() += 1;
        match m.finish_status {
            Some(s) => *self.finish_status.entry(s).or_default() += 1,
            None => self.unfinished += 1,
        }
    }

    /// Adds the values and counts of `other`.
    fn merge(&mut self, other: &Stats) {
        self.queue_time.merge(&other.queue_time);
        self.time_to_first_token.merge(&other.time_to_first_token);
        self.end_to_end.merge(&other.end_to_end);
        for (k, n) in &other.preemptions {
            *self.preemptions.entry(*k).or_default() += n;
        }
        for (k, n) in &other.finish_status {
            *self.finish_status.entry(*k).or_default() += n;
        }
        self.unfinished += other.unfinished;
    }
}

/// The result of a check over all inputs.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Every input, in the order given.
    pub inputs: Vec<InputSummary>,
    /// Distinct spans (per input, summed).
    pub spans: u64,
    /// Spans with journey events.
    pub journeys: u64,
    /// Journey events checked.
    pub events: u64,
    /// Journeys that break no rule and are complete.
    pub conforming: u64,
    /// Journeys that break no rule but lost events.
    pub incomplete: u64,
    /// Journeys that break at least one (not allowed) rule.
    pub violating: u64,
    /// Span events that are not journey events (ignored).
    pub other_events: u64,
    /// Journey events merged away as duplicates of another record of their span.
    pub duplicate_events: u64,
    /// Journeys whose span has no `gen_ai.request.id` string attribute.
    pub without_request_id: u64,
    /// Problems reported while reading.
    pub input_errors: u64,
    /// The violating journeys, with their events, and the index of their input.
    pub violating_journeys: Vec<(usize, JourneyReport)>,
    /// The incomplete journeys.
    pub incomplete_journeys: Vec<IncompleteJourney>,
    /// `llm_request` spans, over all inputs.
    pub api_spans: u64,
    /// API spans that break a rule (A1–A4, or X5/X6 about them).
    pub api_violating: u64,
    /// API spans with at least one core child in the input.
    pub pairs: u64,
    /// API spans whose core child is expected but not in the input (not a violation without
    /// `--complete`).
    pub unpaired_api: u64,
    /// Core spans whose API parent is not in an input with an API layer (not a violation
    /// without `--complete`).
    pub unpaired_core: u64,
    /// The violating API spans, with the index of their input.
    pub violating_api: Vec<(usize, crate::otel::check::ApiReport)>,
    /// Workload requests without any span that should have one, with the index of their input.
    pub absent: Vec<(usize, crate::model::Violation)>,
    /// Statistics over the journeys that break no rule.
    pub stats: Stats,
    /// The problems reported while reading, as far as they were kept.
    pub problems: Vec<Problem>,
    /// Step windows (`scheduler_steps_<n>`) checked.
    pub step_windows: u64,
    /// `step.BATCH_SUMMARY` events checked.
    pub step_summaries: u64,
    /// `step.REQUEST_SNAPSHOT` events checked.
    pub step_snapshots: u64,
    /// Violations of S1–S3, with the index of their input; `request_id` names the window.
    pub step_violations: Vec<(usize, crate::model::Violation)>,
    /// Spans and step windows that arrived behind the horizon (`--horizon`), after what they
    /// could relate to was decided: their relations were not checked, so the check is
    /// incomplete.
    pub behind_horizon: u64,
}

impl Summary {
    /// An empty summary.
    pub fn new() -> Summary {
        Summary::default()
    }

    /// Adds one checked input, for which `input_errors` problems were reported while reading.
    pub fn add(&mut self, checked: CheckedTrace, input_errors: u64) {
        let input = self.inputs.len();
        let journeys = checked.journey_count() as u64;
        self.inputs.push(InputSummary {
            name: checked.source_name,
            lines: checked.counts.lines,
            spans: checked.spans as u64,
            journeys,
            errors: input_errors,
            format: checked.counts.format,
            compression: checked.counts.compression,
        });
        self.spans += checked.spans as u64;
        self.journeys += journeys;
        self.other_events += checked.counts.other_events;
        self.duplicate_events += checked.counts.duplicate_events;
        self.input_errors += input_errors;
        self.api_spans += checked.layers.api_spans;
        self.pairs += checked.layers.pairs;
        self.unpaired_api += checked.layers.unpaired_api;
        self.unpaired_core += checked.layers.unpaired_core;
        for report in checked.api {
            if matches!(report.verdict, Verdict::Violating(_)) {
                self.api_violating += 1;
                self.violating_api.push((input, report));
            }
        }
        self.absent.extend(checked.absent.into_iter().map(|v| (input, v)));
        self.step_windows += checked.steps.windows as u64;
        self.step_summaries += checked.steps.summaries as u64;
        self.step_snapshots += checked.steps.snapshots as u64;
        self.step_violations.extend(checked.steps.violations.into_iter().map(|(_, v)| (input, v)));
        self.behind_horizon += checked.behind_horizon;
        let retired = checked.retired;
        self.events += retired.events;
        self.without_request_id += retired.without_request_id;
        self.conforming += retired.conforming;
        self.stats.merge(&retired.stats);
        for s in retired.incomplete {
            self.incomplete += 1;
            self.incomplete_journeys.push(IncompleteJourney::settled(input, s));
        }
        for s in checked.settled {
            self.events += s.events as u64;
            self.without_request_id += u64::from(s.request_id.is_none());
            self.stats.add(&s.metrics);
            if s.span.dropped_events > 0 {
                self.incomplete += 1;
                self.incomplete_journeys.push(IncompleteJourney::settled(input, s));
            } else {
                self.conforming += 1;
            }
        }
        for journey in checked.journeys {
            self.events += journey.num_events as u64;
            self.without_request_id += u64::from(journey.request_id.is_none());
            match journey.verdict {
                Verdict::Conforming => {
                    self.conforming += 1;
                    self.stats.add(&JourneyMetrics::of(&journey.events));
                }
                Verdict::Incomplete { dropped_events } => {
                    self.incomplete += 1;
                    self.stats.add(&JourneyMetrics::of(&journey.events));
                    self.incomplete_journeys.push(IncompleteJourney {
                        input,
                        request_id: journey.request_id,
                        trace_id: journey.trace_id,
                        span_id: journey.span_id,
                        dropped_events,
                        events: journey.num_events,
                    });
                }
                Verdict::Violating(_) => {
                    self.violating += 1;
                    self.violating_journeys.push((input, journey));
                }
            }
        }
    }

    /// Adds the problems of the input added last.
    pub fn add_problems(&mut self, problems: impl IntoIterator<Item = Problem>) {
        let input = self.inputs.len().saturating_sub(1);
        self.problems.extend(problems.into_iter().map(|p| Problem { input, ..p }));
    }

    /// How many violations each rule has, in rule order (only rules with at least one).
    pub fn violations_by_rule(&self) -> BTreeMap<crate::model::RuleId, u64> {
        let mut counts = BTreeMap::new();
        for (_, _, v) in self.violations() {
            *counts.entry(v.rule).or_default() += 1;
        }
        for (_, _, v) in self.api_violations() {
            *counts.entry(v.rule).or_default() += 1;
        }
        for (_, v) in &self.absent {
            *counts.entry(v.rule).or_default() += 1;
        }
        for (_, v) in &self.step_violations {
            *counts.entry(v.rule).or_default() += 1;
        }
        counts
    }

    /// Every violation about an API span, with its span and the index of its input.
    pub fn api_violations(
        &self,
    ) -> impl Iterator<Item = (usize, &crate::otel::check::ApiReport, &crate::model::Violation)> {
        self.violating_api.iter().flat_map(|(input, a)| a.verdict.violations().iter().map(move |v| (*input, a, v)))
    }

    /// Whether any rule not allowed is broken: by a core journey, an API span, a request absent
    /// from the trace, or a step window.
    pub fn any_violation(&self) -> bool {
        self.violating > 0 || self.api_violating > 0 || !self.absent.is_empty() || !self.step_violations.is_empty()
    }

    /// Every violation, with its journey and the index of its input.
    pub fn violations(&self) -> impl Iterator<Item = (usize, &JourneyReport, &crate::model::Violation)> {
        self.violating_journeys.iter().flat_map(|(input, j)| j.verdict.violations().iter().map(move |v| (*input, j, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations spread over six decades, in an order that is not sorted.
    fn durations(n: usize) -> impl Iterator<Item = f64> {
        (0..n).map(|i| {
            let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11;
            1e-4 * 10f64.powf(6.0 * x as f64 / (1u64 << 53) as f64)
        })
    }

    #[test]
    fn below_the_limit_samples_summarise_exactly() {
        let values: Vec<f64> = durations(10_000).chain([f64::NAN]).collect();
        let s: Samples = values.iter().copied().collect();
        assert!(s.is_exact());
        assert_eq!(s.len(), 10_000);
        assert_eq!(Distribution::of_samples(&s), Distribution::of(values));
        assert_eq!(Distribution::of_samples(&Samples::default()), None);
    }

    #[test]
    fn bucket_keys_are_ordered_as_the_values_and_their_values_are_within_half_a_bucket() {
        let mut values: Vec<f64> = durations(5_000).flat_map(|v| [v, -v]).collect();
        values.extend([0.0, -0.0, f64::MIN_POSITIVE, 5e-324, -5e-324, 1e300, -1e300, 86_400.0]);
        values.sort_by(f64::total_cmp);
        for w in values.windows(2) {
            assert!(Buckets::key(w[0]) <= Buckets::key(w[1]), "{} then {}", w[0], w[1]);
        }
        for v in values.into_iter().filter(|v| v.is_normal()) {
            let r = Buckets::value(Buckets::key(v));
            assert!(((r - v) / v).abs() <= 1.0 / f64::from(1u32 << (Buckets::BITS + 1)), "{v} -> {r}");
        }
    }

    /// Past the limit the values are given back and counted in buckets: count, min and max
    /// exact, the percentiles within ±0.05% of the nearest-rank ones, the same whatever the
    /// order the samples are merged in.
    #[test]
    fn past_the_limit_samples_are_bounded_and_close() {
        let n = Samples::EXACT_LIMIT + 1_000;
        let values: Vec<f64> = durations(n).collect();
        let all: Samples = values.iter().copied().collect();
        assert!(!all.is_exact() && all.exact.capacity() == 0);
        let buckets = all.buckets.as_ref().map_or(0, |b| b.counts.len());
        // Six decades are 20 binades of 2^10 buckets each, at most.
        assert!(buckets <= 21 << Buckets::BITS, "{buckets} buckets");
        let exact = Distribution::of(values.clone()).unwrap();
        let approx = Distribution::of_samples(&all).unwrap();
        assert!(approx.approximate && !exact.approximate);
        assert_eq!((approx.count, approx.min, approx.max), (exact.count, exact.min, exact.max));
        for (a, e) in
            [(approx.p50, exact.p50), (approx.p90, exact.p90), (approx.p99, exact.p99), (approx.mean, exact.mean)]
        {
            assert!(((a - e) / e).abs() <= 5e-4, "{a} against {e}");
        }
        // Merged in either order from two parts, one of them past the limit.
        let (head, tail) = values.split_at(Samples::EXACT_LIMIT + 1);
        let (a, b): (Samples, Samples) = (head.iter().copied().collect(), tail.iter().copied().collect());
        assert!(!a.is_exact() && b.is_exact());
        let (mut ab, mut ba) = (a.clone(), b.clone());
        ab.merge(&b);
        ba.merge(&a);
        let summary = |s: &Samples| Distribution::of_samples(s).map(|d| (d.count, d.min, d.p50, d.p90, d.p99, d.max));
        assert_eq!(summary(&ab), summary(&all));
        assert_eq!(summary(&ba), summary(&all));
        let weighted: u64 = all.counts().map(|(_, c)| c).sum();
        assert_eq!(weighted as usize, n);
        // The JSON object says so, and only then.
        let json = |d: &Distribution| serde_json::to_string(d).unwrap_or_default();
        assert!(json(&approx).contains(r#""approximate":true"#), "{}", json(&approx));
        assert!(!json(&exact).contains("approximate"), "{}", json(&exact));
    }
}
