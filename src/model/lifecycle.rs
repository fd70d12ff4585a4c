//! The request lifecycle as data: one transition table that the checker, the emitter's debug
//! assertions, the property tests and the documentation all read.
//!
//! States are named for where the request is, labels for what happened to it; both are in
//! `SPEC.md` §2. [`mermaid`] renders the table itself, and the README's
//! diagram is checked against it by a test.

use std::fmt;

use super::event::{EventKind, FinishStatus, Label, ScheduleKind};

/// Where a request is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum State {
    /// Not yet known to the scheduler: no event so far.
    New,
    /// In the waiting queue, never run.
    Waiting,
    /// In the running list: being prefilled or decoded.
    Running,
    /// Evicted from the running list; back in the waiting queue with its outputs kept.
    Preempted,
    /// Gone from the scheduler, with the status it finished with. Terminal.
    Finished(FinishStatus),
}

impl State {
    /// The state's name without its status: `New`, `Waiting`, `Running`, `Preempted`, `Finished`.
    pub const fn name(self) -> &'static str {
        match self {
            State::New => "New",
            State::Waiting => "Waiting",
            State::Running => "Running",
            State::Preempted => "Preempted",
            State::Finished(_) => "Finished",
        }
    }

    /// Whether the request is still held by the scheduler (`Waiting`, `Running`, `Preempted`).
    pub const fn is_live(self) -> bool {
        matches!(self, State::Waiting | State::Running | State::Preempted)
    }

    /// Whether the state is terminal.
    pub const fn is_finished(self) -> bool {
        matches!(self, State::Finished(_))
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Finished(s) => write!(f, "Finished({s})"),
            State::New | State::Waiting | State::Running | State::Preempted => f.write_str(self.name()),
        }
    }
}

/// One row of the transition table: in state `from`, an event with `label` leads to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The state before the event.
    pub from: State,
    /// The event.
    pub label: Label,
    /// The state after the event.
    pub to: State,
}

const fn row(from: State, label: Label, to: State) -> Row {
    Row { from, label, to }
}

const fn finish(from: State, status: FinishStatus) -> Row {
    row(from, Label::Finished(status), State::Finished(status))
}

/// The transition table (`SPEC.md` §2). Every legal `(state, event)` pair has exactly one row;
/// anything else is illegal. Natural statuses (`stopped`, `length`) finish only from `Running`.
pub const TRANSITIONS: &[Row] = &[
    row(State::New, Label::Queued, State::Waiting),
    row(State::Waiting, Label::Scheduled(ScheduleKind::First), State::Running),
    row(State::Preempted, Label::Scheduled(ScheduleKind::Resume), State::Running),
    row(State::Running, Label::Preempted, State::Preempted),
    row(State::Running, Label::FirstToken, State::Running),
    finish(State::Waiting, FinishStatus::Aborted),
    finish(State::Waiting, FinishStatus::Error),
    finish(State::Waiting, FinishStatus::Ignored),
    finish(State::Running, FinishStatus::Stopped),
    finish(State::Running, FinishStatus::Length),
    finish(State::Running, FinishStatus::Aborted),
    finish(State::Running, FinishStatus::Error),
    finish(State::Running, FinishStatus::Ignored),
    finish(State::Preempted, FinishStatus::Aborted),
    finish(State::Preempted, FinishStatus::Error),
    finish(State::Preempted, FinishStatus::Ignored),
];

/// The state after `label` in state `from`, or `None` when the table has no such row.
///
/// ```
/// use journey_spec::model::{next, Label, ScheduleKind, State};
/// assert_eq!(next(State::Waiting, Label::Scheduled(ScheduleKind::First)), Some(State::Running));
/// assert_eq!(next(State::Waiting, Label::Preempted), None);
/// ```
pub fn next(from: State, label: Label) -> Option<State> {
    TRANSITIONS.iter().find(|r| r.from == from && r.label == label).map(|r| r.to)
}

/// The labels the table allows in state `from`, in table order.
pub fn allowed(from: State) -> impl Iterator<Item = Label> {
    TRANSITIONS.iter().filter(move |r| r.from == from).map(|r| r.label)
}

/// Whether some row allows an event of `kind` in state `from`, whatever its qualifier.
pub fn kind_allowed(from: State, kind: EventKind) -> bool {
    allowed(from).any(|l| l.kind() == kind)
}

/// The states from which `label` is legal, in table order.
pub fn sources(label: Label) -> impl Iterator<Item = State> {
    TRANSITIONS.iter().filter(move |r| r.label == label).map(|r| r.from)
}

/// The state an event leads to, wherever it happens: the `to` of the first row with `label`
/// (or, when the label is unknown, with the same kind). Every kind has a single target class in
/// the table, so this is how the checker re-synchronises after an illegal event.
pub fn target(label: Option<Label>, kind: EventKind) -> Option<State> {
    let by_label = label.and_then(|l| TRANSITIONS.iter().find(|r| r.label == l));
    by_label.or_else(|| TRANSITIONS.iter().find(|r| r.label.kind() == kind)).map(|r| r.to)
}

/// Renders the transition table as a Mermaid `stateDiagram-v2`.
///
/// `New` is the initial pseudo-state `[*]`; all `Finished(status)` states are drawn as one
/// `Finished` node whose incoming edges list the statuses. Edges keep table order.
pub fn mermaid() -> String {
    // Group rows by (from node, to node), keeping first-appearance order.
    let mut edges: Vec<(&'static str, &'static str, Vec<Label>)> = Vec::new();
    for r in TRANSITIONS {
        let (from, to) = (node(r.from), node(r.to));
        match edges.iter_mut().find(|(f, t, _)| *f == from && *t == to) {
            Some((_, _, labels)) => labels.push(r.label),
            None => edges.push((from, to, vec![r.label])),
        }
    }
    let mut out = String::from("stateDiagram-v2\n");
    for (from, to, labels) in &edges {
        out.push_str(&format!("    {from} --> {to} : {}\n", edge_label(labels)));
    }
    out.push_str("    Finished --> [*]\n");
    out
}

fn node(s: State) -> &'static str {
    match s {
        State::New => "[*]",
        State::Waiting | State::Running | State::Preempted | State::Finished(_) => s.name(),
    }
}

/// `SCHEDULED(FIRST)`, or `FINISHED(aborted, error, ignored)` for several statuses on one edge.
fn edge_label(labels: &[Label]) -> String {
    let statuses: Vec<&str> = labels.iter().filter_map(|l| l.finish_status()).map(FinishStatus::as_str).collect();
    if statuses.len() == labels.len() && statuses.len() > 1 {
        format!("FINISHED({})", statuses.join(", "))
    } else {
        labels.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_has_at_most_one_row() {
        for (i, a) in TRANSITIONS.iter().enumerate() {
            for b in &TRANSITIONS[i + 1..] {
                assert!(!(a.from == b.from && a.label == b.label), "duplicate row {a:?}");
            }
        }
    }

    #[test]
    fn every_event_kind_has_a_row_and_a_single_target_class() {
        for &kind in EventKind::ALL {
            let targets: Vec<&str> =
                TRANSITIONS.iter().filter(|r| r.label.kind() == kind).map(|r| r.to.name()).collect();
            assert!(!targets.is_empty(), "{kind} has no row");
            assert!(targets.iter().all(|t| *t == targets[0]), "{kind} leads to {targets:?}");
        }
    }

    #[test]
    fn natural_statuses_only_from_running() {
        for r in TRANSITIONS {
            if let Some(s) = r.label.finish_status() {
                assert_eq!(r.to, State::Finished(s));
                if s.is_natural() {
                    assert_eq!(r.from, State::Running, "{r:?}");
                }
            }
        }
    }

    #[test]
    fn every_live_state_can_finish_with_every_unnatural_status() {
        for from in [State::Waiting, State::Running, State::Preempted] {
            for &s in FinishStatus::ALL.iter().filter(|s| !s.is_natural()) {
                assert_eq!(next(from, Label::Finished(s)), Some(State::Finished(s)));
            }
        }
    }

    #[test]
    fn nothing_leaves_finished() {
        for &s in FinishStatus::ALL {
            assert_eq!(allowed(State::Finished(s)).count(), 0);
        }
    }

    #[test]
    fn edge_labels_group_finish_statuses_only() {
        use FinishStatus::{Aborted, Error};
        assert_eq!(edge_label(&[Label::Scheduled(ScheduleKind::First)]), "SCHEDULED(FIRST)");
        assert_eq!(edge_label(&[Label::Finished(Aborted)]), "FINISHED(aborted)");
        assert_eq!(edge_label(&[Label::Finished(Aborted), Label::Finished(Error)]), "FINISHED(aborted, error)");
        assert_eq!(
            edge_label(&[Label::Preempted, Label::Finished(Aborted), Label::Finished(Error)]),
            "PREEMPTED, FINISHED(aborted), FINISHED(error)"
        );
    }

    #[test]
    fn target_is_where_an_event_leads_wherever_it_happens() {
        assert_eq!(target(Some(Label::Preempted), EventKind::Preempted), Some(State::Preempted));
        assert_eq!(
            target(Some(Label::Finished(FinishStatus::Error)), EventKind::Finished),
            Some(State::Finished(FinishStatus::Error))
        );
        // An unknown label (a qualifier missing): by kind.
        assert_eq!(target(None, EventKind::Scheduled), Some(State::Running));
        assert_eq!(target(None, EventKind::Queued), Some(State::Waiting));
    }
}
