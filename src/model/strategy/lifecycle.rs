//! Strategies for any [`Lifecycle`]: valid label paths through its table, and corruptions of
//! them with the rule and event index a [`LifecycleChecker`](crate::model::LifecycleChecker)
//! must report.
//!
//! ```
//! use journey_spec::model::{Core, LifecycleChecker};
//! use journey_spec::model::strategy::lifecycle::{corrupted_path, path};
//! use proptest::prelude::*;
//!
//! proptest!(|(p in path::<Core>(12))| {
//!     let mut checker = LifecycleChecker::<Core>::new("r");
//!     for label in &p {
//!         prop_assert!(checker.push(Some(*label), label.kind()).is_ok());
//!     }
//!     prop_assert!(checker.finish(true).is_conforming());
//! });
//! proptest!(|(c in corrupted_path::<Core>(12))| {
//!     let mut checker = LifecycleChecker::<Core>::new("r");
//!     for label in &c.labels {
//!         let _ = checker.push(Some(*label), label.kind());
//!     }
//!     let verdict = checker.finish(true);
//!     let first = &verdict.violations()[0];
//!     prop_assert_eq!((first.rule, first.event_index), (c.rule, c.event_index));
//! });
//! ```

use std::collections::VecDeque;

use proptest::prelude::*;

use crate::model::lifecycle::Lifecycle;

/// The shortest label sequence from `from` to a state where a journey may end (empty when
/// `from` is one), or `None` when no such state is reachable.
pub fn shortest_end<L: Lifecycle>(from: L::State) -> Option<Vec<L::Label>> {
    let mut seen = vec![from];
    let mut queue = VecDeque::from([(from, Vec::new())]);
    while let Some((s, path)) = queue.pop_front() {
        if L::may_end_in(s) {
            return Some(path);
        }
        for r in L::TABLE.iter().filter(|r| r.from == s) {
            if !seen.contains(&r.to) {
                seen.push(r.to);
                let mut p = path.clone();
                p.push(r.label);
                queue.push_back((r.to, p));
            }
        }
    }
    None
}

/// Walks the table from the initial state, taking the `choices` in turn (each picks one of
/// the labels allowed in the current state), then the shortest way to an end.
pub fn walk<L: Lifecycle>(choices: &[usize]) -> Vec<L::Label> {
    let mut state = L::INITIAL;
    let mut labels = Vec::new();
    for &c in choices {
        let allowed: Vec<L::Label> = L::allowed(state).collect();
        if allowed.is_empty() {
            break;
        }
        let label = allowed[c % allowed.len()];
        labels.push(label);
        state = L::next(state, label).unwrap_or(state);
    }
    labels.extend(shortest_end::<L>(state).unwrap_or_default());
    labels
}

/// Valid label paths of at most about `max_choices` free choices, each ending in a state where
/// the journey may end.
pub fn path<L: Lifecycle>(max_choices: usize) -> impl Strategy<Value = Vec<L::Label>> {
    prop::collection::vec(any::<usize>(), 0..=max_choices).prop_map(|choices| walk::<L>(&choices))
}

/// How a valid path was corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathCorruption {
    /// A label that is not allowed in the state at the index was inserted there.
    InsertIllegal,
    /// A label was appended after the terminal state the path ended in.
    AfterEnd,
    /// The path was cut where the journey may not end.
    Truncated,
}

/// A corrupted path and what the checker must report first.
pub struct CorruptedPath<L: Lifecycle> {
    /// How it was corrupted.
    pub corruption: PathCorruption,
    /// The corrupted labels.
    pub labels: Vec<L::Label>,
    /// The rule the checker reports first.
    pub rule: L::Rule,
    /// The index it reports it at.
    pub event_index: usize,
}

// Manual impls: a derive would ask the marker type `L` itself to be `Debug` and `Clone`.
impl<L: Lifecycle> std::fmt::Debug for CorruptedPath<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorruptedPath")
            .field("corruption", &self.corruption)
            .field("labels", &self.labels)
            .field("rule", &self.rule)
            .field("event_index", &self.event_index)
            .finish()
    }
}

impl<L: Lifecycle> Clone for CorruptedPath<L> {
    fn clone(&self) -> Self {
        CorruptedPath {
            corruption: self.corruption,
            labels: self.labels.clone(),
            rule: self.rule,
            event_index: self.event_index,
        }
    }
}

/// Corrupts the valid path `labels` with `how`, using `k` to pick positions and labels, or
/// `None` when the path has no place for that corruption.
pub fn corrupt<L: Lifecycle>(labels: &[L::Label], how: PathCorruption, k: usize) -> Option<CorruptedPath<L>> {
    let states = states_along::<L>(labels);
    let all = L::labels();
    let made = |labels, rule, event_index| Some(CorruptedPath { corruption: how, labels, rule, event_index });
    match how {
        PathCorruption::InsertIllegal => {
            let at = k % (labels.len() + 1);
            let here = states[at];
            let illegal: Vec<L::Label> = all.iter().copied().filter(|l| L::next(here, *l).is_none()).collect();
            let bad = *illegal.get((k / (labels.len() + 1)) % illegal.len().max(1))?;
            let mut out = labels.to_vec();
            out.insert(at, bad);
            let rule = if at == 0 { L::RULES.start } else { L::RULES.legal };
            made(out, rule, at)
        }
        PathCorruption::AfterEnd => {
            let last = *states.last()?;
            if !L::is_terminal(last) {
                return None;
            }
            let mut out = labels.to_vec();
            out.push(all[k % all.len().max(1)]);
            made(out, L::RULES.legal, labels.len())
        }
        PathCorruption::Truncated => {
            let cuts: Vec<usize> = (0..labels.len()).filter(|&i| !L::may_end_in(states[i])).collect();
            let cut = *cuts.get(k % cuts.len().max(1))?;
            made(labels[..cut].to_vec(), L::RULES.end, cut)
        }
    }
}

/// Valid paths with one corruption each.
pub fn corrupted_path<L: Lifecycle>(max_choices: usize) -> impl Strategy<Value = CorruptedPath<L>> {
    let how =
        prop::sample::select(vec![PathCorruption::InsertIllegal, PathCorruption::AfterEnd, PathCorruption::Truncated]);
    (path::<L>(max_choices), how, any::<usize>())
        .prop_filter_map("no place for the corruption", |(p, how, k)| corrupt::<L>(&p, how, k))
}

/// The state before each label of a valid path, and the state after the last one.
fn states_along<L: Lifecycle>(labels: &[L::Label]) -> Vec<L::State> {
    let mut out = vec![L::INITIAL];
    let mut s = L::INITIAL;
    for l in labels {
        s = L::next(s, *l).unwrap_or(s);
        out.push(s);
    }
    out
}
