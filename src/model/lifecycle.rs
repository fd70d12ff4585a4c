//! The machinery every lifecycle shares: a lifecycle is its transition table, and everything
//! else — which states are terminal, whether an event is legal, where a journey may end, the
//! diagram, the coverage a test should reach — is derived from that table.
//!
//! A lifecycle is a marker type implementing [`Lifecycle`]: its states, its labels (an event kind
//! with the qualifier the table reads), its kinds, its rule ids and one `const` table of
//! [`Row`]s. The crate's own lifecycles are [`Core`](super::Core) (the `llm_core` journey of
//! `SPEC.md` §2) and the ones later sections add; a user's lifecycle is written the same way and
//! gets the same machinery:
//!
//! - [`Lifecycle::next`], [`Lifecycle::allowed`], [`Lifecycle::is_terminal`],
//!   [`Lifecycle::states`], [`Lifecycle::labels`]: the table read as an automaton. A state is
//!   *terminal* when no row leaves it — there is no separate list of terminal states, so an
//!   event added after a terminal state (an API-side `DEPARTED` after `FINISHED`) makes the
//!   old terminal state an ordinary one by data alone.
//! - [`LifecycleChecker`]: the rules every lifecycle has — the journey starts from the initial
//!   state, each event is legal where it happens (nothing follows a terminal state), and an
//!   ended journey is in a state where it may end — reported with the lifecycle's own rule ids
//!   ([`Lifecycle::RULES`]) as structured [`Violation`]s.
//! - [`Lifecycle::mermaid`]: the state diagram.
//! - `strategy::lifecycle` (cargo feature `proptest`): valid label paths through the table and
//!   their corruptions, with the rule and index the checker must report.
//!
//! ```
//! use journey_spec::model::{Core, Label, Lifecycle, ScheduleKind, State};
//!
//! assert_eq!(Core::next(State::Waiting, Label::Scheduled(ScheduleKind::First)), Some(State::Running));
//! assert!(Core::is_terminal(State::Finished(journey_spec::model::FinishStatus::Stopped)));
//! assert!(!Core::is_terminal(State::Preempted));
//! ```

use std::fmt::{self, Debug, Display};
use std::hash::Hash;

use super::event::RequestId;
use super::finding::{Detail, Verdict, Violation};

/// A rule id of some lifecycle: a stable, printable id (`R2`, `A2`, `T1` …) with a short
/// kebab-case name. The crate's catalogue is [`RuleId`](super::RuleId); a user's lifecycle
/// brings its own enum.
pub trait Rule: Copy + Eq + Hash + Debug + Display + 'static {
    /// The short kebab-case name (`legal-transition`).
    fn name(self) -> &'static str;
}

/// Which of a lifecycle's rules report the three checks every lifecycle has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleRules<R> {
    /// The first event is not legal from the initial state.
    pub start: R,
    /// An event is not legal in the current state (including anything after a terminal state).
    pub legal: R,
    /// The journey ended in a state where it may not end.
    pub end: R,
}

/// One row of a transition table: in state `from`, an event with `label` leads to `to`.
pub struct Row<L: Lifecycle> {
    /// The state before the event.
    pub from: L::State,
    /// The event.
    pub label: L::Label,
    /// The state after the event.
    pub to: L::State,
}

impl<L: Lifecycle> Row<L> {
    /// A row: in `from`, `label` leads to `to`.
    pub const fn new(from: L::State, label: L::Label, to: L::State) -> Row<L> {
        Row { from, label, to }
    }
}

// Manual impls: a derive would ask the marker type `L` itself to be `Clone`, `Debug`, ...
impl<L: Lifecycle> Clone for Row<L> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<L: Lifecycle> Copy for Row<L> {}
impl<L: Lifecycle> PartialEq for Row<L> {
    fn eq(&self, other: &Self) -> bool {
        self.from == other.from && self.label == other.label && self.to == other.to
    }
}
impl<L: Lifecycle> Eq for Row<L> {}
impl<L: Lifecycle> Debug for Row<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} --{:?}--> {:?}", self.from, self.label, self.to)
    }
}

/// A lifecycle: states, labelled events and one transition table.
///
/// Implement it on a marker type. Only the associated types, the constants, [`kind`](Self::kind)
/// and [`state_name`](Self::state_name) are yours to write; everything else is derived from
/// [`TABLE`](Self::TABLE). `tests/extension.rs` defines a lifecycle of its own this way.
///
/// ```
/// use std::fmt;
/// use journey_spec::model::{Lifecycle, LifecycleChecker, LifecycleRules, Row, Rule};
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
/// enum Door { Closed, Open }
/// #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
/// enum Push { Opened, Shut }
/// #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
/// enum DoorRule { Legal }
/// impl fmt::Display for Door { fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { fmt::Debug::fmt(self, f) } }
/// impl fmt::Display for Push { fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { fmt::Debug::fmt(self, f) } }
/// impl fmt::Display for DoorRule { fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str("D1") } }
/// impl Rule for DoorRule { fn name(self) -> &'static str { "legal" } }
///
/// struct DoorLife;
/// impl Lifecycle for DoorLife {
///     type State = Door;
///     type Label = Push;
///     type Kind = Push;
///     type Rule = DoorRule;
///     const NAME: &'static str = "door";
///     const INITIAL: Door = Door::Closed;
///     const KINDS: &'static [Push] = &[Push::Opened, Push::Shut];
///     const RULES: LifecycleRules<DoorRule> =
///         LifecycleRules { start: DoorRule::Legal, legal: DoorRule::Legal, end: DoorRule::Legal };
///     const TABLE: &'static [Row<Self>] = &[
///         Row::new(Door::Closed, Push::Opened, Door::Open),
///         Row::new(Door::Open, Push::Shut, Door::Closed),
///     ];
///     fn kind(label: Push) -> Push { label }
///     fn state_name(state: Door) -> &'static str { match state { Door::Closed => "Closed", Door::Open => "Open" } }
///     // Any state may end a journey (the default: only terminal states).
///     fn may_end_in(_: Door) -> bool { true }
/// }
///
/// let mut checker = LifecycleChecker::<DoorLife>::new("door-1");
/// assert!(checker.push(Some(Push::Opened), Push::Opened).is_ok());
/// let v = checker.push(Some(Push::Opened), Push::Opened).unwrap_err();
/// assert_eq!(v.to_string(), r#"D1 legal: request "door-1", event #1: Opened is not allowed in state Open (allowed: Shut)"#);
/// ```
pub trait Lifecycle: Sized + 'static {
    /// Where a journey is.
    type State: Copy + Eq + Hash + Debug + Display + 'static;
    /// What happened: an event kind with the qualifiers the table reads.
    type Label: Copy + Eq + Hash + Debug + Display + 'static;
    /// An event kind: a label without its qualifiers (what a span event's name says).
    type Kind: Copy + Eq + Hash + Debug + Display + 'static;
    /// The rule ids the lifecycle reports.
    type Rule: Rule;

    /// A short name for the lifecycle (`core`, `api`): the namespace of its rules.
    const NAME: &'static str;
    /// The state before the first event.
    const INITIAL: Self::State;
    /// The transition table. Every legal `(state, label)` pair has exactly one row.
    const TABLE: &'static [Row<Self>];
    /// Every event kind, in declaration order (coverage arrays are sized by it).
    const KINDS: &'static [Self::Kind];
    /// The rules that report the start, legality and end checks.
    const RULES: LifecycleRules<Self::Rule>;

    /// The kind of a label.
    fn kind(label: Self::Label) -> Self::Kind;

    /// The state's name without qualifiers: states with the same name are one node in the
    /// diagram (`Finished(stopped)` and `Finished(length)` are both `Finished`).
    fn state_name(state: Self::State) -> &'static str;

    /// Whether a journey may end in `state`. Default: exactly the terminal states. A lifecycle
    /// whose span may also end without a terminal event (the API span's cleanup-only end)
    /// says so here.
    fn may_end_in(state: Self::State) -> bool {
        Self::is_terminal(state)
    }

    /// The state after `label` in `from`, or `None` when the table has no such row.
    fn next(from: Self::State, label: Self::Label) -> Option<Self::State> {
        Self::TABLE.iter().find(|r| r.from == from && r.label == label).map(|r| r.to)
    }

    /// The labels the table allows in `from`, in table order.
    fn allowed(from: Self::State) -> impl Iterator<Item = Self::Label> {
        Self::TABLE.iter().filter(move |r| r.from == from).map(|r| r.label)
    }

    /// Whether some row allows an event of `kind` in `from`, whatever its qualifier.
    fn kind_allowed(from: Self::State, kind: Self::Kind) -> bool {
        Self::allowed(from).any(|l| Self::kind(l) == kind)
    }

    /// Whether no row leaves `state`.
    fn is_terminal(state: Self::State) -> bool {
        Self::allowed(state).next().is_none()
    }

    /// The states from which `label` is legal, in table order.
    fn sources(label: Self::Label) -> impl Iterator<Item = Self::State> {
        Self::TABLE.iter().filter(move |r| r.label == label).map(|r| r.from)
    }

    /// Where an event leads wherever it happens: the `to` of the first row with `label` (or,
    /// when the label is unknown, with the same kind). How a checker re-synchronises after an
    /// illegal event.
    fn target(label: Option<Self::Label>, kind: Self::Kind) -> Option<Self::State> {
        let by_label = label.and_then(|l| Self::TABLE.iter().find(|r| r.label == l));
        by_label.or_else(|| Self::TABLE.iter().find(|r| Self::kind(r.label) == kind)).map(|r| r.to)
    }

    /// Every state the table names, the initial one first, then in order of appearance.
    fn states() -> Vec<Self::State> {
        let mut out = vec![Self::INITIAL];
        for r in Self::TABLE {
            for s in [r.from, r.to] {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// Every label the table names, in order of first appearance.
    fn labels() -> Vec<Self::Label> {
        let mut out = Vec::new();
        for r in Self::TABLE {
            if !out.contains(&r.label) {
                out.push(r.label);
            }
        }
        out
    }

    /// The position of `kind` in [`KINDS`](Self::KINDS): the index into a coverage array.
    fn kind_index(kind: Self::Kind) -> Option<usize> {
        Self::KINDS.iter().position(|k| *k == kind)
    }

    /// The qualifier a label carries beside its kind (`FIRST` on `SCHEDULED(FIRST)`), for the
    /// diagram's grouping of one kind's labels on an edge. Default: none.
    fn qualifier(label: Self::Label) -> Option<&'static str> {
        let _ = label;
        None
    }

    /// Renders the table as a Mermaid `stateDiagram-v2`.
    ///
    /// The initial state is the pseudo-state `[*]`; states with one [`state_name`](Self::state_name)
    /// are one node; the labels of one edge are listed once each, in table order (grouped as
    /// `KIND(q1, q2)` when they are one kind's qualifiers); every node a journey may end in gets
    /// an edge to `[*]`.
    fn mermaid() -> String {
        let node = |s: Self::State| if s == Self::INITIAL { "[*]" } else { Self::state_name(s) };
        let mut edges: Vec<(&'static str, &'static str, Vec<Self::Label>)> = Vec::new();
        for r in Self::TABLE {
            let (from, to) = (node(r.from), node(r.to));
            match edges.iter_mut().find(|(f, t, _)| *f == from && *t == to) {
                Some((_, _, labels)) if labels.contains(&r.label) => {}
                Some((_, _, labels)) => labels.push(r.label),
                None => edges.push((from, to, vec![r.label])),
            }
        }
        let mut out = String::from("stateDiagram-v2\n");
        for (from, to, labels) in &edges {
            out.push_str(&format!("    {from} --> {to} : {}\n", edge_label::<Self>(labels)));
        }
        let mut ends: Vec<&'static str> = Vec::new();
        for s in Self::states() {
            let n = node(s);
            if Self::may_end_in(s) && n != "[*]" && !ends.contains(&n) {
                ends.push(n);
            }
        }
        for n in ends {
            out.push_str(&format!("    {n} --> [*]\n"));
        }
        out
    }
}

/// `KIND(q)`: how a label with a qualifier prints, everywhere in the crate.
pub(crate) fn qualified(f: &mut fmt::Formatter<'_>, kind: &str, qualifier: Option<&str>) -> fmt::Result {
    match qualifier {
        Some(q) => write!(f, "{kind}({q})"),
        None => f.write_str(kind),
    }
}

/// The labels of one edge: `FINISHED(aborted, error, ignored)` when they are several
/// qualifiers of one kind, otherwise each label, comma-separated.
fn edge_label<L: Lifecycle>(labels: &[L::Label]) -> String {
    let kind = labels.first().map(|l| L::kind(*l));
    let qualifiers: Vec<&str> = labels.iter().filter_map(|l| L::qualifier(*l)).collect();
    match kind {
        Some(kind)
            if labels.len() > 1 && qualifiers.len() == labels.len() && labels.iter().all(|l| L::kind(*l) == kind) =>
        {
            format!("{kind}({})", qualifiers.join(", "))
        }
        Some(_) | None => labels.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
    }
}

/// Checks the rules every lifecycle has — start, legality, end — for one journey of `L`.
///
/// After an illegal event it re-synchronises on the event's [`target`](Lifecycle::target), so
/// that one defect is reported once; once in a terminal state it stays there and reports every
/// further event.
#[derive(Debug, Clone)]
pub struct LifecycleChecker<L: Lifecycle> {
    request_id: RequestId,
    state: L::State,
    events: usize,
    violations: Vec<Violation<L::Rule>>,
}

impl<L: Lifecycle> LifecycleChecker<L> {
    /// A checker for the journey of `request_id`, in the initial state.
    pub fn new(request_id: impl Into<RequestId>) -> Self {
        LifecycleChecker { request_id: request_id.into(), state: L::INITIAL, events: 0, violations: Vec::new() }
    }

    /// The current state.
    pub fn state(&self) -> L::State {
        self.state
    }

    /// How many events were pushed.
    pub fn events(&self) -> usize {
        self.events
    }

    /// Assumes the journey's earlier events were lost and it is now in `state`.
    pub fn assume(&mut self, state: L::State) {
        self.state = state;
    }

    /// Checks one event: its `label`, or `None` when its qualifiers could not be read (then
    /// only its `kind` is known). Returns the broken rule, which the checker also keeps.
    pub fn push(&mut self, label: Option<L::Label>, kind: L::Kind) -> Result<(), Violation<L::Rule>> {
        let index = self.events;
        self.events += 1;
        let result = match check_transition::<L>(self.state, label, kind) {
            Ok(to) => {
                self.state = to;
                return Ok(());
            }
            Err(detail) => {
                let rule = if index == 0 && self.state == L::INITIAL { L::RULES.start } else { L::RULES.legal };
                Violation { rule, request_id: self.request_id.clone(), event_index: index, detail }
            }
        };
        if !L::is_terminal(self.state)
            && let Some(to) = L::target(label, kind)
        {
            self.state = to;
        }
        self.violations.push(result.clone());
        Err(result)
    }

    /// The verdict: every violation found, plus the end rule when the journey `ended` (its span
    /// ended) in a state where it may not end.
    pub fn finish(mut self, ended: bool) -> Verdict<L::Rule> {
        if ended && let Err(detail) = check_end::<L>(self.state, self.events) {
            self.violations.push(Violation {
                rule: L::RULES.end,
                request_id: self.request_id.clone(),
                event_index: self.events,
                detail,
            });
        }
        Verdict::from_violations(self.violations, 0)
    }
}

/// The transition `label` makes from `from`, or why it is illegal. `label` is `None` when the
/// event's qualifiers are unreadable: it is legal when some label of its `kind` is, and stays
/// where it is (the caller reports the qualifiers).
pub fn check_transition<L: Lifecycle>(
    from: L::State,
    label: Option<L::Label>,
    kind: L::Kind,
) -> Result<L::State, Detail> {
    let legal = match label {
        Some(l) => L::next(from, l),
        None => L::kind_allowed(from, kind).then_some(from),
    };
    legal.ok_or_else(|| Detail::IllegalTransition {
        from: from.to_string(),
        got: label.map_or_else(|| kind.to_string(), |l| l.to_string()),
        allowed: L::allowed(from).map(|l| l.to_string()).collect(),
    })
}

/// Whether a journey may end in `state` after `events` events; the detail when it may not.
pub fn check_end<L: Lifecycle>(state: L::State, events: usize) -> Result<(), Detail> {
    if L::may_end_in(state) {
        Ok(())
    } else {
        let mut expected: Vec<String> = Vec::new();
        for r in L::TABLE.iter().filter(|r| L::may_end_in(r.to)) {
            let kind = L::kind(r.label).to_string();
            if !expected.contains(&kind) {
                expected.push(kind);
            }
        }
        Err(Detail::Unfinished { state: state.to_string(), events, expected })
    }
}
