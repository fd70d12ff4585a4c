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
            if !(to > from) {
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
