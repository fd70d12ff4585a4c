//! The core journey (`llm_core`, `SPEC.md` §2) as a [`Lifecycle`]: its states, its one
//! transition table, and the functions the rest of the crate reads it through.
//!
//! States are named for where the request is, labels for what happened to it. [`mermaid`]
//! renders the table itself, and the README's diagram is checked against it by a test.

use std::fmt;

use super::event::{EventKind, FinishStatus, Label, ScheduleKind};
use super::lifecycle::{Lifecycle, LifecycleRules, Row};
use super::rules::RuleId;

/// Where a request is in its core lifecycle.
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
    /// Gone from the scheduler, with the status it finished with.
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

    /// Whether the request is still held by the scheduler: past its first event and not in a
    /// terminal state.
    pub fn is_live(self) -> bool {
        self != Core::INITIAL && !Core::is_terminal(self)
    }

    /// Whether the state is terminal: no row of the table leaves it.
    pub fn is_finished(self) -> bool {
        Core::is_terminal(self)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self {
            State::Finished(s) => Some(s.as_str()),
            State::New | State::Waiting | State::Running | State::Preempted => None,
        };
        super::lifecycle::qualified(f, self.name(), status)
    }
}

/// The core journey: the lifecycle of one request in the scheduler, on the `llm_core` span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Core;

impl Lifecycle for Core {
    type State = State;
    type Label = Label;
    type Kind = EventKind;
    type Rule = RuleId;

    const NAME: &'static str = "core";
    const INITIAL: State = State::New;
    const TABLE: &'static [Row<Core>] = TRANSITIONS;
    const KINDS: &'static [EventKind] = EventKind::ALL;
    const RULES: LifecycleRules<RuleId> =
        LifecycleRules { start: RuleId::QueuedFirst, legal: RuleId::LegalTransition, end: RuleId::EndsFinished };

    fn kind(label: Label) -> EventKind {
        label.kind()
    }

    fn state_name(state: State) -> &'static str {
        state.name()
    }

    fn qualifier(label: Label) -> Option<&'static str> {
        label.qualifier()
    }

    // The table's answer (no row leaves the state) without scanning the table, which every
    // journey's end asks (the explorer some 100,000 times a run): the test
    // `terminal_states_are_the_tables` compares the two for every state.
    fn is_terminal(state: State) -> bool {
        matches!(state, State::Finished(_))
    }
}

const fn row(from: State, label: Label, to: State) -> Row<Core> {
    Row::new(from, label, to)
}

const fn finish(from: State, status: FinishStatus) -> Row<Core> {
    row(from, Label::Finished(status), State::Finished(status))
}

/// The core transition table (`SPEC.md` §2). Every legal `(state, event)` pair has exactly one
/// row; anything else is illegal. Natural statuses (`stopped`, `length`) finish only from
/// `Running`. `Finished(_)` is terminal because no row leaves it.
pub const TRANSITIONS: &[Row<Core>] = &[
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
    Core::next(from, label)
}

/// The labels the core table allows in state `from`, in table order.
pub fn allowed(from: State) -> impl Iterator<Item = Label> {
    Core::allowed(from)
}

/// The core table as a Mermaid `stateDiagram-v2` ([`Lifecycle::mermaid`]).
pub fn mermaid() -> String {
    Core::mermaid()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Core::is_terminal` says what the table says: no row leaves the state.
    #[test]
    fn terminal_states_are_the_tables() {
        let mut states = vec![State::New, State::Waiting, State::Running, State::Preempted];
        states.extend(FinishStatus::ALL.iter().map(|s| State::Finished(*s)));
        for s in states {
            assert_eq!(Core::is_terminal(s), TRANSITIONS.iter().all(|r| r.from != s), "{s:?}");
        }
    }

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
        for &kind in Core::KINDS {
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
        for from in Core::states().into_iter().filter(|s| s.is_live()) {
            for &s in FinishStatus::ALL.iter().filter(|s| !s.is_natural()) {
                assert_eq!(next(from, Label::Finished(s)), Some(State::Finished(s)));
            }
        }
    }

    #[test]
    fn the_terminal_states_are_the_finished_ones() {
        let mut terminal: Vec<State> = Core::states().into_iter().filter(|s| Core::is_terminal(*s)).collect();
        terminal.sort_by_key(|s| format!("{s:?}"));
        let mut finished: Vec<State> = FinishStatus::ALL.iter().map(|s| State::Finished(*s)).collect();
        finished.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(terminal, finished);
    }

    #[test]
    fn edge_labels_group_finish_statuses_only() {
        let diagram = mermaid();
        assert!(diagram.contains("Waiting --> Finished : FINISHED(aborted, error, ignored)"), "{diagram}");
        assert!(diagram.contains("Waiting --> Running : SCHEDULED(FIRST)"), "{diagram}");
        assert!(diagram.contains("Running --> Running : FIRST_TOKEN"), "{diagram}");
        assert!(diagram.ends_with("    Finished --> [*]\n"), "{diagram}");
    }

    #[test]
    fn target_is_where_an_event_leads_wherever_it_happens() {
        assert_eq!(Core::target(Some(Label::Preempted), EventKind::Preempted), Some(State::Preempted));
        assert_eq!(
            Core::target(Some(Label::Finished(FinishStatus::Error)), EventKind::Finished),
            Some(State::Finished(FinishStatus::Error))
        );
        // An unknown label (a qualifier missing): by kind.
        assert_eq!(Core::target(None, EventKind::Scheduled), Some(State::Running));
        assert_eq!(Core::target(None, EventKind::Queued), Some(State::Waiting));
    }
}
