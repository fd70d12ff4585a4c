//! Load over time, derived from the journeys: how many requests were running, waiting (never
//! run yet) and preempted (waiting to resume), and how many preemptions happened per second.
//!
//! The time of one input is cut into equal bins; each count is the time-weighted mean over a
//! bin (a request running for half of a bin counts one half), so the area under a curve is
//! the total time requests spent in that state, whatever the bin width. A journey contributes
//! from its first event to its last: one that lost its FINISHED stops at its last kept event.

use super::{JourneyRow, Layer, Mark, Segment};

/// The load of one input over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// The width of a bin, seconds.
    pub bin: f64,
    /// Running requests, per bin.
    pub running: Vec<f64>,
    /// Requests waiting for their first run, per bin.
    pub waiting: Vec<f64>,
    /// Preempted requests waiting to resume, per bin.
    pub preempted: Vec<f64>,
    /// Preemptions per second, per bin.
    pub preemptions_per_s: Vec<f64>,
}

impl Load {
    /// How many bins.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether there are no bins (an input without timed journeys).
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

/// The load of the journeys `rows` (their core lanes) over `[0, duration]` seconds, in `bins`
/// bins (at least one unless `duration` is not positive, then none).
pub fn load<'a>(rows: impl IntoIterator<Item = &'a JourneyRow>, duration: f64, bins: usize) -> Load {
    let n = if duration > 0.0 && duration.is_finite() { bins.max(1) } else { 0 };
    let bin = if n > 0 { duration / n as f64 } else { 0.0 };
    let mut out = Load {
        bin,
        running: vec![0.0; n],
        waiting: vec![0.0; n],
        preempted: vec![0.0; n],
        preemptions_per_s: vec![0.0; n],
    };
    if n == 0 {
        return out;
    }
    let index = |t: f64| ((t / bin).floor().max(0.0) as usize).min(n - 1);
    for lane in rows.into_iter().flat_map(|r| r.lanes.iter().filter(|l| l.layer == Layer::Core)) {
        for (k, e) in lane.events.iter().enumerate() {
            if e.mark == Some(Mark::Preemption) {
                out.preemptions_per_s[index(e.t)] += 1.0 / bin;
            }
            let Some(next) = lane.events.get(k + 1) else { continue };
            let series = match e.segment {
                Segment::Waiting => &mut out.waiting,
                Segment::Running => &mut out.running,
                Segment::Preempted => &mut out.preempted,
                Segment::Done => continue,
            };
            let (from, to) = (e.t.max(0.0), next.t.min(duration));
            // Also skips a NaN time.
            if to.partial_cmp(&from) != Some(std::cmp::Ordering::Greater) {
                continue;
            }
            for (i, slot) in series.iter_mut().enumerate().take(index(to) + 1).skip(index(from)) {
                let (lo, hi) = (i as f64 * bin, (i + 1) as f64 * bin);
                let overlap = to.min(hi) - from.max(lo);
                if overlap > 0.0 {
                    *slot += overlap / bin;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otel::report::RunData;
    use crate::otel::{CheckOptions, check_trace, read_trace};

    fn kv_pressure() -> RunData {
        let input = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vllm/kv_pressure.otlp.jsonl"))
            .unwrap_or_default();
        let mut run = RunData::new();
        run.add(check_trace(read_trace("kv", &input[..], |_| {}), &CheckOptions::default()), 0);
        run
    }

    /// The time a lane spends in `segment`, from its events.
    fn time_in(run: &RunData, segment: Segment) -> f64 {
        run.rows
            .iter()
            .flat_map(|r| r.lanes.iter())
            .flat_map(|l| l.events.windows(2))
            .filter(|w| w[0].segment == segment)
            .map(|w| w[1].t - w[0].t)
            .sum()
    }

    #[test]
    fn the_areas_are_the_time_spent_in_each_state_whatever_the_bins() {
        let run = kv_pressure();
        assert_eq!(run.rows.len(), 150);
        let d = run.inputs[0].duration;
        for bins in [1, 7, 240, 1000] {
            let l = load(&run.rows, d, bins);
            assert_eq!(l.len(), bins);
            for (series, segment) in
                [(&l.running, Segment::Running), (&l.waiting, Segment::Waiting), (&l.preempted, Segment::Preempted)]
            {
                let area: f64 = series.iter().sum::<f64>() * l.bin;
                let expected = time_in(&run, segment);
                assert!(
                    (area - expected).abs() < 1e-9 * expected.max(1.0),
                    "{bins} bins, {segment:?}: {area} vs {expected}"
                );
            }
            // kv_pressure's README: 790 preemptions.
            let preemptions: f64 = l.preemptions_per_s.iter().sum::<f64>() * l.bin;
            assert!((preemptions - 790.0).abs() < 1e-6, "{preemptions}");
        }
        // At most 32 requests run at once (max_num_seqs), so no bin's mean exceeds it.
        assert!(load(&run.rows, d, 240).running.iter().all(|r| *r <= 32.0 + 1e-9));
        assert!(load(&run.rows, 0.0, 240).is_empty());
    }

    #[test]
    fn a_run_compared_with_itself_is_identical() {
        let run = kv_pressure();
        let c = crate::otel::report::compare(&run, &run);
        assert_eq!((c.identical, c.differences.len(), c.only_in_a.len(), c.only_in_b.len()), (150, 0, 0, 0));
        let mut other = run.clone();
        if let Some(lane) = other.rows.get_mut(3).and_then(|r| r.lanes.get_mut(0)) {
            lane.events.truncate(2);
        }
        other.rows[5].request_id = Some("not-in-a".to_owned());
        let c = crate::otel::report::compare(&run, &other);
        assert_eq!((c.identical, c.only_in_a.len(), c.only_in_b), (148, 1, vec!["not-in-a".to_owned()]));
        assert_eq!(c.differences.len(), 1);
        let d = &c.differences[0];
        assert_eq!((d.index, d.b_event.as_deref()), (2, None));
        assert!(d.a_event.as_deref().is_some_and(|e| e.contains("@ step")), "{:?}", d.a_event);
    }
}
