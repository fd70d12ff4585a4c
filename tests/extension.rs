//! Extending the model, as a user would: a lifecycle of our own, written against the public API
//! only, with an event that follows the terminal event of the journey it extends (as the API
//! layer's `DEPARTED` follows the request's end) and a status the crate does not know.
//!
//! It shows that legality, the end rules, the diagram, coverage and the corruption strategies
//! all pick the new lifecycle up from its table: nothing here lists a state, a kind or a status
//! a second time.

use std::fmt;

use journey_spec::model::strategy::lifecycle::{PathCorruption, corrupt, corrupted_path, path, walk};
use journey_spec::model::{Detail, Lifecycle, LifecycleChecker, LifecycleRules, Row, Rule, Verdict};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// How a toy request ended; `Cancelled` is the status the crate does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Status {
    Stopped,
    Aborted,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Queued,
    Finished,
    Departed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Label {
    Queued,
    Finished(Status),
    Departed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum State {
    New,
    Waiting,
    Finished(Status),
    Departed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ToyRule {
    Start,
    Legal,
    End,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Stopped => "stopped",
            Status::Aborted => "aborted",
            Status::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Queued => "QUEUED",
            Kind::Finished => "FINISHED",
            Kind::Departed => "DEPARTED",
        })
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Finished(s) => write!(f, "FINISHED({})", s.as_str()),
            Label::Queued | Label::Departed => write!(f, "{}", Toy::kind(*self)),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Finished(s) => write!(f, "Finished({})", s.as_str()),
            State::New | State::Waiting | State::Departed => f.write_str(Toy::state_name(*self)),
        }
    }
}

impl fmt::Display for ToyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ToyRule::Start => "T1",
            ToyRule::Legal => "T2",
            ToyRule::End => "T3",
        })
    }
}

impl Rule for ToyRule {
    fn name(self) -> &'static str {
        match self {
            ToyRule::Start => "toy-start",
            ToyRule::Legal => "toy-legal",
            ToyRule::End => "toy-end",
        }
    }
}

struct Toy;

const fn row(from: State, label: Label, to: State) -> Row<Toy> {
    Row::new(from, label, to)
}

impl Lifecycle for Toy {
    type State = State;
    type Label = Label;
    type Kind = Kind;
    type Rule = ToyRule;

    const NAME: &'static str = "toy";
    const INITIAL: State = State::New;
    const KINDS: &'static [Kind] = &[Kind::Queued, Kind::Finished, Kind::Departed];
    const RULES: LifecycleRules<ToyRule> =
        LifecycleRules { start: ToyRule::Start, legal: ToyRule::Legal, end: ToyRule::End };
    const TABLE: &'static [Row<Toy>] = &[
        row(State::New, Label::Queued, State::Waiting),
        row(State::Waiting, Label::Finished(Status::Stopped), State::Finished(Status::Stopped)),
        row(State::Waiting, Label::Finished(Status::Aborted), State::Finished(Status::Aborted)),
        row(State::Waiting, Label::Finished(Status::Cancelled), State::Finished(Status::Cancelled)),
        // The event after the old end: every finished request departs.
        row(State::Finished(Status::Stopped), Label::Departed, State::Departed),
        row(State::Finished(Status::Aborted), Label::Departed, State::Departed),
        row(State::Finished(Status::Cancelled), Label::Departed, State::Departed),
    ];

    fn kind(label: Label) -> Kind {
        match label {
            Label::Queued => Kind::Queued,
            Label::Finished(_) => Kind::Finished,
            Label::Departed => Kind::Departed,
        }
    }

    fn state_name(state: State) -> &'static str {
        match state {
            State::New => "New",
            State::Waiting => "Waiting",
            State::Finished(_) => "Finished",
            State::Departed => "Departed",
        }
    }

    fn qualifier(label: Label) -> Option<&'static str> {
        match label {
            Label::Finished(s) => Some(s.as_str()),
            Label::Queued | Label::Departed => None,
        }
    }
}

fn check(labels: &[Label]) -> Verdict<ToyRule> {
    let mut checker = LifecycleChecker::<Toy>::new("toy-1");
    for l in labels {
        let _ = checker.push(Some(*l), Toy::kind(*l));
    }
    checker.finish(true)
}

#[test]
fn legality_follows_the_table_past_the_old_end() {
    // The journey the crate's core checker used to reject as R2 with its state stuck.
    let journey = [Label::Queued, Label::Finished(Status::Aborted), Label::Departed];
    assert_eq!(check(&journey), Verdict::Conforming);
    assert_eq!(check(&[Label::Queued, Label::Finished(Status::Cancelled), Label::Departed]), Verdict::Conforming);
    // The old end is an ordinary state now; the new one is terminal.
    assert!(!Toy::is_terminal(State::Finished(Status::Aborted)));
    assert!(Toy::is_terminal(State::Departed));
    assert_eq!(Toy::allowed(State::Finished(Status::Cancelled)).collect::<Vec<_>>(), [Label::Departed]);
    // Nothing follows the new end: the finding says where and that nothing is allowed.
    let v = check(&[Label::Queued, Label::Finished(Status::Stopped), Label::Departed, Label::Departed]);
    let [only] = v.violations() else { panic!("{v:?}") };
    assert_eq!((only.rule, only.event_index), (ToyRule::Legal, 3));
    assert_eq!(
        only.detail,
        Detail::IllegalTransition { from: "Departed".into(), got: "DEPARTED".into(), allowed: Vec::new() }
    );
    assert_eq!(
        only.to_string(),
        "T2 toy-legal: request \"toy-1\", event #3: DEPARTED after the journey ended in Departed"
    );
    // A start that is not the table's.
    let v = check(&[Label::Departed]);
    assert_eq!((v.violations()[0].rule, v.violations()[0].event_index), (ToyRule::Start, 0));
}

#[test]
fn the_end_rule_follows_the_terminal_states() {
    // Ending at the old end is now unfinished: the request never departed.
    let v = check(&[Label::Queued, Label::Finished(Status::Aborted)]);
    let [only] = v.violations() else { panic!("{v:?}") };
    assert_eq!((only.rule, only.event_index), (ToyRule::End, 2));
    assert_eq!(
        only.detail,
        Detail::Unfinished { state: "Finished(aborted)".into(), events: 2, expected: vec!["DEPARTED".into()] }
    );
    assert_eq!(only.message(), "the span ended in state Finished(aborted) without DEPARTED");
}

#[test]
fn the_diagram_is_drawn_from_the_table() {
    let diagram = Toy::mermaid();
    assert_eq!(
        diagram,
        "stateDiagram-v2\n\
         \x20   [*] --> Waiting : QUEUED\n\
         \x20   Waiting --> Finished : FINISHED(stopped, aborted, cancelled)\n\
         \x20   Finished --> Departed : DEPARTED\n\
         \x20   Departed --> [*]\n"
    );
}

#[test]
fn coverage_is_sized_by_the_table() {
    // Paths through the table reach every label and every state within a few hundred cases.
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[5; 32]));
    let labels = Toy::labels();
    let states = Toy::states();
    let mut seen_labels = vec![false; labels.len()];
    let mut seen_states = vec![false; states.len()];
    let mut seen_kinds = vec![false; Toy::KINDS.len()];
    for _ in 0..300 {
        let p = path::<Toy>(6).new_tree(&mut runner).expect("strategy").current();
        let mut s = Toy::INITIAL;
        for l in &p {
            seen_labels[labels.iter().position(|x| x == l).expect("a table label")] = true;
            seen_kinds[Toy::kind_index(Toy::kind(*l)).expect("a kind")] = true;
            s = Toy::next(s, *l).expect("a valid path");
            seen_states[states.iter().position(|x| *x == s).expect("a table state")] = true;
        }
        assert!(Toy::may_end_in(s), "{p:?} ends in {s}");
    }
    assert!(seen_labels.iter().all(|x| *x), "{labels:?}: {seen_labels:?}");
    assert!(seen_kinds.iter().all(|x| *x), "{seen_kinds:?}");
    // Every state but the initial one is entered by some label.
    assert!(seen_states[1..].iter().all(|x| *x), "{states:?}: {seen_states:?}");
    assert_eq!(walk::<Toy>(&[]), [Label::Queued, Label::Finished(Status::Stopped), Label::Departed]);
}

#[test]
fn every_corruption_applies_to_the_new_lifecycle() {
    let valid = walk::<Toy>(&[0, 2, 0]);
    assert_eq!(valid, [Label::Queued, Label::Finished(Status::Cancelled), Label::Departed]);
    let after = corrupt::<Toy>(&valid, PathCorruption::AfterEnd, 0).expect("ends in a terminal state");
    assert_eq!((after.rule, after.event_index), (ToyRule::Legal, 3));
    let cut = corrupt::<Toy>(&valid, PathCorruption::Truncated, 2).expect("a cut before DEPARTED");
    assert_eq!((cut.rule, cut.event_index, cut.labels.len()), (ToyRule::End, 2, 2));
    let inserted = corrupt::<Toy>(&valid, PathCorruption::InsertIllegal, 2).expect("an illegal label");
    assert_eq!((inserted.rule, inserted.event_index), (ToyRule::Legal, 2));
}

proptest! {
    #![proptest_config(Config { cases: 500, failure_persistence: None, ..Config::default() })]

    /// Generated paths conform; each corruption is reported first with its rule at its index.
    #[test]
    fn corrupted_paths_are_reported_with_their_rule(p in path::<Toy>(8), c in corrupted_path::<Toy>(8)) {
        prop_assert_eq!(check(&p), Verdict::Conforming);
        let verdict = check(&c.labels);
        let first = verdict.violations().first().map(|v| (v.rule, v.event_index));
        prop_assert_eq!(first, Some((c.rule, c.event_index)), "{:?}", c);
    }
}
