//! Two runs of one workload side by side (`journey report A --against B`): per request, where
//! the journeys first differ.
//!
//! Journeys are matched by request id (the n-th journey with an id in A with the n-th with
//! that id in B); journeys without one are not matched. Two journeys agree on an event when
//! its label (`SCHEDULED(RESUME)`) and its step are the same; timestamps are not compared, as
//! two runs never share a clock.

use std::collections::BTreeMap;

use super::{JourneyRow, LaneEvent, RunData};

/// Where the journeys of one request first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The request id.
    pub request_id: String,
    /// Its journey in A (index in A's [`RunData::rows`]).
    pub a: usize,
    /// Its journey in B.
    pub b: usize,
    /// The index of the first event that differs (in the core lanes).
    pub index: usize,
    /// A's event there (`SCHEDULED(FIRST) @ step 12`), or `None` when A's journey ends first.
    pub a_event: Option<String>,
    /// B's event there, or `None` when B's journey ends first.
    pub b_event: Option<String>,
}

/// The comparison of two runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Requests whose journeys agree event for event.
    pub identical: usize,
    /// Requests whose journeys differ, in A's order.
    pub differences: Vec<Difference>,
    /// Request ids with a journey in A and none in B.
    pub only_in_a: Vec<String>,
    /// Request ids with a journey in B and none in A.
    pub only_in_b: Vec<String>,
}

fn describe(e: &LaneEvent) -> String {
    format!("{} @ step {}", e.label, e.step)
}

/// Compares the journeys of `a` and `b` (see the [module documentation](self)).
pub fn compare(a: &RunData, b: &RunData) -> Comparison {
    // Request id → B's journeys with it, in order; matched ones are taken from the front.
    let mut in_b: BTreeMap<&str, std::collections::VecDeque<usize>> = BTreeMap::new();
    for (i, r) in b.rows.iter().enumerate() {
        if let Some(id) = r.request_id.as_deref() {
            in_b.entry(id).or_default().push_back(i);
        }
    }
    let mut out = Comparison::default();
    for (ai, ra) in a.rows.iter().enumerate() {
        let Some(id) = ra.request_id.as_deref() else { continue };
        let Some(bi) = in_b.get_mut(id).and_then(|q| q.pop_front()) else {
            out.only_in_a.push(id.to_owned());
            continue;
        };
        match first_difference(ra, &b.rows[bi]) {
            None => out.identical += 1,
            Some((index, a_event, b_event)) => {
                out.differences.push(Difference { request_id: id.to_owned(), a: ai, b: bi, index, a_event, b_event });
            }
        }
    }
    for (id, rest) in in_b {
        out.only_in_b.extend(rest.iter().map(|_| id.to_owned()));
    }
    out
}

type Split = (usize, Option<String>, Option<String>);

fn first_difference(a: &JourneyRow, b: &JourneyRow) -> Option<Split> {
    let empty = Vec::new();
    let ea = a.core().map_or(&empty, |l| &l.events);
    let eb = b.core().map_or(&empty, |l| &l.events);
    let same = |x: &LaneEvent, y: &LaneEvent| x.label == y.label && x.step == y.step;
    let index = ea.iter().zip(eb).position(|(x, y)| !same(x, y)).unwrap_or(ea.len().min(eb.len()));
    (index < ea.len().max(eb.len())).then(|| (index, ea.get(index).map(describe), eb.get(index).map(describe)))
}
