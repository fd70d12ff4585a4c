//! The incremental journey checker: feed events one at a time, get the first broken rule per
//! event, finish with a [`Verdict`].
//!
//! # How it reports
//!
//! For each event the checker evaluates the rules in catalogue order and reports the first one
//! the event breaks (lowest id), with the event's index and a structured [`Detail`]. It then
//! *adopts the event as its new baseline* — its state (the event's target in the transition
//! table), counters and clocks — so that one defect is reported once: a dropped `PREEMPTED`
//! gives one R2 and not an R9 on every later event.
//!
//! One defect gives one finding, with one documented exception each way for R9: after a wrong
//! `num_preemptions` the checker accepts on the next events either the count the history implies
//! or the count the broken event reported, so a single wrong count and a count shifted from
//! one event on are both reported once. (Checked over the whole corruption catalogue by
//! `tests/model_rules.rs`: every corruption marked `once` yields exactly one violation.)
//!
//! # Profiles
//!
//! A checker runs under a [`Profile`]: [`Profile::Sync`] (the default, `SPEC.md` §2–§5) or
//! [`Profile::Async`] (`SPEC.md` §11), which is the same checker with the documented
//! relaxations of [`Profile::late_output_rows`]: in `Preempted`, the output of a batch still in
//! flight — FIRST_TOKEN, or FINISHED(stopped|length) — may arrive, at a step below the PREEMPTED
//! before it and not below the SCHEDULED that admitted it; it does not lower the step baseline.
//!
//! # Incomplete journeys
//!
//! A span that reports dropped events ([`SpanInfo::dropped_events`]) lost events at one end:
//! the Python SDK drops the oldest (QUEUED first), the Rust SDK the newest (FINISHED first). The
//! checker then starts from any state consistent with the first event it sees, takes counters
//! from that event, does not require FINISHED, and reports only what the kept events themselves
//! break. Its verdict is [`Verdict::Incomplete`] unless a kept event breaks a rule.

use super::core::{Core, State};
use super::event::{EventKind, FinishStatus, JourneyEvent, Label, Phase, RequestId, ScheduleKind, Step};
use super::finding::{Detail, Seen, SpanEdge, Verdict, Violation};
use super::lifecycle::{self, Lifecycle, Row};
use super::rules::RuleId;

/// What the checker knows about the span that carried the journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpanInfo {
    /// Span start, nanoseconds since the Unix epoch (R7 checks events against it).
    pub start_unix_nano: Option<u64>,
    /// Span end, nanoseconds since the Unix epoch.
    pub end_unix_nano: Option<u64>,
    /// How many events the span reports as dropped (SDK event limit). Non-zero makes the
    /// journey incomplete rather than violating when its ends are missing.
    pub dropped_events: u32,
}

/// A scheduling profile: which engine produced the journeys, and so which relaxations of the
/// core rules apply (`SPEC.md` §10: a profile is never inferred).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Profile {
    /// The synchronous engine (`SPEC.md` §2–§5): no relaxation.
    #[default]
    Sync,
    /// Async scheduling (`SPEC.md` §11): step N+1 is scheduled before step N's output is
    /// applied, so the output of a batch in flight may reach a request that was preempted
    /// meanwhile (a *late output*).
    Async,
}

const LATE_OUTPUTS: &[Row<Core>] = &[
    Row::new(State::Preempted, Label::FirstToken, State::Preempted),
    Row::new(State::Preempted, Label::Finished(FinishStatus::Stopped), State::Finished(FinishStatus::Stopped)),
    Row::new(State::Preempted, Label::Finished(FinishStatus::Length), State::Finished(FinishStatus::Length)),
];

impl Profile {
    /// Every profile.
    pub const ALL: &'static [Profile] = &[Profile::Sync, Profile::Async];

    /// The name used on the command line and in reports: `sync`, `async`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Profile::Sync => "sync",
            Profile::Async => "async",
        }
    }

    /// The rows this profile adds to the core table: the late outputs it allows. Each is legal
    /// only with the step conditions of `SPEC.md` §11 (checked under R6).
    pub const fn late_output_rows(self) -> &'static [Row<Core>] {
        match self {
            Profile::Sync => &[],
            Profile::Async => LATE_OUTPUTS,
        }
    }

    /// Looks a profile up by name.
    pub fn lookup(name: &str) -> Option<Profile> {
        Profile::ALL.iter().copied().find(|p| p.as_str() == name)
    }

    fn late_output(self, from: State, label: Label) -> Option<State> {
        self.late_output_rows().iter().find(|r| r.from == from && r.label == label).map(|r| r.to)
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The values of the last event, against which the next one is compared.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    step: Step,
    ts_monotonic: f64,
    prefill_done: u64,
    prefill_total: u64,
    decode_done: u64,
    decode_max: u64,
}

/// Checks one journey event by event.
///
/// ```
/// use journey_spec::model::*;
///
/// let p = Progress::new(4, 2);
/// let mut checker = JourneyChecker::new("r1");
/// checker.push(&JourneyEvent::new(Label::Queued, Step(0), p, 0)).unwrap();
/// checker.push(&JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(1), p, 0)).unwrap();
/// // FINISHED(stopped) without output breaks R12:
/// let err = checker.push(&JourneyEvent::new(Label::Finished(FinishStatus::Stopped), Step(1), p, 0)).unwrap_err();
/// assert_eq!(err.rule, RuleId::NaturalFinishHasOutput);
/// assert_eq!(err.event_index, 2);
/// assert!(!checker.finish().is_conforming());
/// ```
#[derive(Debug, Clone)]
pub struct JourneyChecker {
    request_id: RequestId,
    span: SpanInfo,
    profile: Profile,
    events: usize,
    state: State,
    queued_at: Option<Seen>,
    first_token_at: Option<Seen>,
    output_seen: bool,
    /// `num_preemptions` as the last event reported it.
    preemptions: u64,
    /// PREEMPTED events counted (from the first kept event's count on).
    counted_preemptions: u64,
    last_preempted_step: Option<Step>,
    /// The step of the SCHEDULED that last admitted the request.
    admitted_step: Option<Step>,
    /// The step of the last late output in the current preempted stretch (async profile).
    late_step: Option<Step>,
    prev: Option<Baseline>,
    violations: Vec<Violation>,
    /// The latest wall-clock time among events checked before the span's end was known, and
    /// that event's index: [`finish`](Self::finish) checks it against an end set later.
    unbounded_latest: Option<(u64, usize)>,
}

/// A broken rule before it is attached to a request and an index.
type Broken = (RuleId, Detail);

fn other(rule: RuleId, message: String) -> Broken {
    (rule, Detail::Other { message })
}

impl JourneyChecker {
    /// A checker for the journey of `request_id`, expecting a complete journey, under the
    /// [`Profile::Sync`] profile.
    pub fn new(request_id: impl Into<RequestId>) -> JourneyChecker {
        JourneyChecker {
            request_id: request_id.into(),
            span: SpanInfo::default(),
            profile: Profile::Sync,
            events: 0,
            state: Core::INITIAL,
            queued_at: None,
            first_token_at: None,
            output_seen: false,
            preemptions: 0,
            counted_preemptions: 0,
            last_preempted_step: None,
            admitted_step: None,
            late_step: None,
            prev: None,
            violations: Vec::new(),
            unbounded_latest: None,
        }
    }

    /// Sets what is known about the span (times for R7, dropped events for R3).
    pub fn with_span(mut self, span: SpanInfo) -> JourneyChecker {
        self.span = span;
        self
    }

    /// Sets the scheduling profile.
    pub fn with_profile(mut self, profile: Profile) -> JourneyChecker {
        self.profile = profile;
        self
    }

    /// The profile the checker runs under.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Sets the span's end time once it is known (the span ended after the events were fed);
    /// events already fed are checked against it by [`finish`](Self::finish).
    pub fn set_span_end(&mut self, end_unix_nano: u64) {
        self.span.end_unix_nano = Some(end_unix_nano);
    }

    /// The request this checker is for.
    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }

    /// The lifecycle state after the events so far.
    pub fn state(&self) -> State {
        self.state
    }

    /// How many events were fed.
    pub fn len(&self) -> usize {
        self.events
    }

    /// Whether no event was fed yet.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Every violation found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Checks the next event: `Err` with the first rule it breaks (it is also kept for
    /// [`finish`](Self::finish)).
    pub fn push(&mut self, event: &JourneyEvent) -> Result<(), Violation> {
        let index = self.events;
        self.events += 1;
        if index == 0 && self.span.dropped_events > 0 && event.kind != EventKind::Queued {
            self.assume_lost_prefix(event);
        }
        let broken = self.evaluate(index, event);
        self.adopt(index, event, broken.as_ref().map(|(r, _)| *r));
        match broken {
            None => Ok(()),
            Some((rule, detail)) => {
                let v = Violation { rule, request_id: self.request_id.clone(), event_index: index, detail };
                self.violations.push(v.clone());
                Err(v)
            }
        }
    }

    /// Records an event that could not be read at all (a wire-level rule such as R5 broke
    /// before the model could see it). It takes an index; the state does not change.
    pub fn push_unreadable(&mut self, rule: RuleId, detail: Detail) -> Violation {
        let v = Violation { rule, request_id: self.request_id.clone(), event_index: self.events, detail };
        self.events += 1;
        self.violations.push(v.clone());
        v
    }

    /// Ends the journey (its span has ended) and gives the verdict.
    pub fn finish(mut self) -> Verdict {
        let violations = std::mem::take(&mut self.violations);
        self.verdict_with(violations)
    }

    /// The verdict [`finish`](Self::finish) would give, leaving the checker as it is (for a
    /// checker shared with others, which `finish` would have to copy first).
    pub fn verdict(&self) -> Verdict {
        self.verdict_with(self.violations.clone())
    }

    /// [`finish`](Self::finish) with the violations found so far taken out.
    fn verdict_with(&self, mut violations: Vec<Violation>) -> Verdict {
        if let (Some(end), Some((t, index))) = (self.span.end_unix_nano, self.unbounded_latest)
            && t > end
        {
            violations.push(Violation {
                rule: RuleId::TimeOrder,
                request_id: self.request_id.clone(),
                event_index: index,
                detail: Detail::OutsideSpan { time_unix_nano: t, edge: SpanEdge::End, span_unix_nano: end },
            });
            violations.sort_by_key(|v| v.event_index);
        }
        let dropped = self.span.dropped_events;
        if dropped == 0
            && let Err(detail) = lifecycle::check_end::<Core>(self.state, self.events)
        {
            violations.push(Violation {
                rule: Core::RULES.end,
                request_id: self.request_id.clone(),
                event_index: self.events,
                detail,
            });
        }
        Verdict::from_violations(violations, dropped)
    }

    /// The span lost its oldest events: start from a state in which `first` is legal, with the
    /// counters `first` implies.
    fn assume_lost_prefix(&mut self, first: &JourneyEvent) {
        // A state in which the event is legal: by its label, or by its kind alone when its
        // qualifiers are wrong (R4 then reports them).
        let from = first
            .label()
            .and_then(|l| Core::sources(l).next())
            .or_else(|| Core::TABLE.iter().find(|r| r.label.kind() == first.kind).map(|r| r.from));
        self.state = from.unwrap_or(Core::INITIAL);
        self.queued_at = Some(Seen::BeforeKept);
        let own = u64::from(first.kind == EventKind::Preempted);
        self.preemptions = first.num_preemptions.saturating_sub(own);
        self.counted_preemptions = self.preemptions;
        self.output_seen = first.progress.decode_done > 0 && first.kind != EventKind::FirstToken;
        if self.output_seen {
            self.first_token_at = Some(Seen::BeforeKept);
        }
    }

    /// Whether `e` is a late output (async profile): an output of a batch in flight that
    /// reaches the request in `Preempted`.
    fn is_late_output(&self, e: &JourneyEvent) -> bool {
        e.label().is_some_and(|l| self.profile.late_output(self.state, l).is_some())
    }

    /// The transition `label` makes in this profile.
    fn next(&self, label: Label) -> Option<State> {
        Core::next(self.state, label).or_else(|| self.profile.late_output(self.state, label))
    }

    fn evaluate(&self, index: usize, e: &JourneyEvent) -> Option<Broken> {
        self.queued_first(index, e)
            .and_then(|()| self.legal(e))
            .and_then(|()| self.qualifiers(e))
            .and_then(|()| self.step_order(e))
            .and_then(|()| self.time_order(e))
            .and_then(|()| self.progress_bounds(e))
            .and_then(|()| self.preemption_count(e))
            .and_then(|()| self.phase_and_snapshot(e))
            .and_then(|()| self.first_token(e))
            .and_then(|()| natural_finish_has_output(e))
            .err()
    }

    /// R1.
    fn queued_first(&self, index: usize, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::QueuedFirst;
        if e.kind == EventKind::Queued {
            if let Some(first) = self.queued_at {
                return Err((rule, Detail::Repeated { event: e.kind.to_string(), first }));
            }
        } else if index == 0 && self.state == Core::INITIAL {
            let expected = Core::allowed(Core::INITIAL).map(|l| l.to_string()).collect();
            return Err((rule, Detail::BadStart { got: e.kind.to_string(), expected }));
        }
        Ok(())
    }

    /// R2.
    fn legal(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let legal = Core::kind_allowed(self.state, e.kind)
            || self.profile.late_output_rows().iter().any(|r| r.from == self.state && r.label.kind() == e.kind);
        if legal {
            return Ok(());
        }
        let detail = lifecycle::check_transition::<Core>(self.state, e.label(), e.kind).err();
        Err((RuleId::LegalTransition, detail.unwrap_or_else(|| Detail::other(format!("{} in {}", e.kind, self.state)))))
    }

    /// R4.
    fn qualifiers(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::Qualifiers;
        if e.kind != EventKind::Scheduled
            && let Some(k) = e.schedule_kind
        {
            return Err(other(rule, format!("schedule.kind {k} on {}", e.kind)));
        }
        if e.kind != EventKind::Finished
            && let Some(s) = e.finish_status
        {
            return Err(other(rule, format!("finish.status {s} on {}", e.kind)));
        }
        match e.kind {
            EventKind::Scheduled => match e.schedule_kind {
                None => return Err(other(rule, "SCHEDULED without schedule.kind".to_owned())),
                Some(k) if self.next(Label::Scheduled(k)).is_none() => {
                    let expected: Vec<String> =
                        Core::allowed(self.state).filter_map(|l| l.schedule_kind()).map(|k| k.to_string()).collect();
                    return Err(other(
                        rule,
                        format!("SCHEDULED({k}) from {}: expected {}", self.state, expected.join(" or ")),
                    ));
                }
                Some(_) => {}
            },
            EventKind::Finished => match e.finish_status {
                None => return Err(other(rule, "FINISHED without finish.status".to_owned())),
                Some(s) if self.next(Label::Finished(s)).is_none() => {
                    return Err(other(
                        rule,
                        format!("natural status {s} from {}: only a running request finishes naturally", self.state),
                    ));
                }
                Some(_) => {}
            },
            EventKind::Queued | EventKind::Preempted | EventKind::FirstToken => {}
        }
        Ok(())
    }

    /// R6 (with the async profile's conditions on late outputs).
    fn step_order(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::StepOrder;
        let went_back = |from: Step, to: Step| {
            (rule, Detail::WentBack { field: "scheduler.step".to_owned(), from: from.to_string(), to: to.to_string() })
        };
        if self.is_late_output(e) {
            if let Some(p) = self.last_preempted_step
                && e.step >= p
            {
                return Err(other(
                    rule,
                    format!("late {} at step {} is not before its PREEMPTED at step {p}", e.kind, e.step),
                ));
            }
            if let Some(a) = self.admitted_step
                && e.step < a
            {
                return Err(other(
                    rule,
                    format!("late {} at step {} is before the SCHEDULED at step {a} that admitted it", e.kind, e.step),
                ));
            }
            if let Some(l) = self.late_step
                && e.step < l
            {
                return Err(went_back(l, e.step));
            }
            return Ok(());
        }
        if let Some(prev) = self.prev
            && e.step < prev.step
        {
            return Err(went_back(prev.step, e.step));
        }
        if matches!(e.kind, EventKind::Scheduled | EventKind::Preempted) && e.step < Step(1) {
            return Err(other(rule, format!("{} at step {}: steps inside schedule() start at 1", e.kind, e.step)));
        }
        if e.kind == EventKind::Scheduled
            && e.schedule_kind == Some(ScheduleKind::Resume)
            && let Some(p) = self.last_preempted_step
            && e.step <= p
        {
            return Err(other(rule, format!("RESUME at step {} is not after its PREEMPTED at step {p}", e.step)));
        }
        Ok(())
    }

    /// R7.
    fn time_order(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::TimeOrder;
        if let Some(prev) = self.prev {
            // NaN is out of order too.
            let in_order = e.ts_monotonic.partial_cmp(&prev.ts_monotonic).is_some_and(|o| o.is_ge());
            if !in_order {
                return Err((
                    rule,
                    Detail::WentBack {
                        field: "ts.monotonic".to_owned(),
                        from: prev.ts_monotonic.to_string(),
                        to: e.ts_monotonic.to_string(),
                    },
                ));
            }
        }
        if let Some(t) = e.time_unix_nano {
            if let Some(start) = self.span.start_unix_nano.filter(|&s| t < s) {
                return Err((
                    rule,
                    Detail::OutsideSpan { time_unix_nano: t, edge: SpanEdge::Start, span_unix_nano: start },
                ));
            }
            if let Some(end) = self.span.end_unix_nano.filter(|&end| t > end) {
                return Err((
                    rule,
                    Detail::OutsideSpan { time_unix_nano: t, edge: SpanEdge::End, span_unix_nano: end },
                ));
            }
        }
        Ok(())
    }

    /// R8.
    fn progress_bounds(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::ProgressBounds;
        let p = &e.progress;
        let s = |v: u64| v.to_string();
        if let Some(prev) = self.prev {
            let checks = [
                (
                    prev.prefill_total != p.prefill_total,
                    false,
                    "prefill.total_tokens",
                    prev.prefill_total,
                    p.prefill_total,
                ),
                (prev.decode_max != p.decode_max, false, "decode.max_tokens", prev.decode_max, p.decode_max),
                (p.prefill_done < prev.prefill_done, true, "prefill.done_tokens", prev.prefill_done, p.prefill_done),
                (p.decode_done < prev.decode_done, true, "decode.done_tokens", prev.decode_done, p.decode_done),
            ];
            if let Some(&(_, back, field, from, to)) = checks.iter().find(|c| c.0) {
                let (field, from, to) = (field.to_owned(), s(from), s(to));
                let detail =
                    if back { Detail::WentBack { field, from, to } } else { Detail::Changed { field, from, to } };
                return Err((rule, detail));
            }
        }
        let bounds = [
            ("prefill.done_tokens", p.prefill_done, "prefill.total_tokens", p.prefill_total),
            ("decode.done_tokens", p.decode_done, "decode.max_tokens", p.decode_max),
        ];
        if let Some(&(field, value, bound_field, bound)) = bounds.iter().find(|b| b.1 > b.3) {
            return Err((
                rule,
                Detail::Exceeds { field: field.to_owned(), value, bound_field: bound_field.to_owned(), bound },
            ));
        }
        Ok(())
    }

    /// R9.
    fn preemption_count(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let own = u64::from(e.kind == EventKind::Preempted);
        let (reported, counted) = (self.preemptions.checked_add(own), self.counted_preemptions.checked_add(own));
        if reported == Some(e.num_preemptions) || counted == Some(e.num_preemptions) {
            return Ok(());
        }
        let detail = match counted {
            Some(expected) => Detail::Counter {
                field: "num_preemptions".to_owned(),
                expected,
                found: e.num_preemptions,
                counts: "PREEMPTED event(s)".to_owned(),
            },
            None => Detail::other(format!("num_preemptions is {}: the count overflows", e.num_preemptions)),
        };
        Err((RuleId::PreemptionCount, detail))
    }

    /// R10.
    fn phase_and_snapshot(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::PhaseAndSnapshot;
        let expected = Phase::expected(e.kind, e.progress.decode_done);
        if e.phase != expected {
            return Err(other(
                rule,
                format!(
                    "phase is {} on {} with decode.done_tokens {}: expected {expected}",
                    e.phase, e.kind, e.progress.decode_done
                ),
            ));
        }
        let p = &e.progress;
        // (QUEUED's zero preemptions is R10's too, but R9 always reports a non-zero count first.)
        if e.kind == EventKind::Queued && (p.prefill_done != 0 || p.decode_done != 0) {
            return Err(other(
                rule,
                format!(
                    "QUEUED reports prefill.done_tokens {} and decode.done_tokens {}: both must be 0",
                    p.prefill_done, p.decode_done
                ),
            ));
        }
        if e.kind == EventKind::Scheduled && e.schedule_kind == Some(ScheduleKind::First) && p.prefill_done != 0 {
            return Err(other(
                rule,
                format!(
                    "SCHEDULED(FIRST) reports prefill.done_tokens {}: expected 0, the mark before this step's work",
                    p.prefill_done
                ),
            ));
        }
        Ok(())
    }

    /// R11.
    fn first_token(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::FirstToken;
        let p = &e.progress;
        if e.kind == EventKind::FirstToken {
            if let Some(first) = self.first_token_at {
                return Err((rule, Detail::Repeated { event: e.kind.to_string(), first }));
            }
            if p.decode_done < 1 {
                return Err(other(rule, "FIRST_TOKEN with decode.done_tokens 0".to_owned()));
            }
            if p.prefill_done != p.prefill_total {
                return Err(other(
                    rule,
                    format!(
                        "FIRST_TOKEN with prefill.done_tokens {} of {}: the whole prompt must be done",
                        p.prefill_done, p.prefill_total
                    ),
                ));
            }
        } else if p.decode_done >= 1 && self.first_token_at.is_none() && !self.output_seen {
            return Err(other(
                rule,
                format!("{} reports decode.done_tokens {} before any FIRST_TOKEN", e.kind, p.decode_done),
            ));
        }
        Ok(())
    }

    /// Makes `e` the new baseline. `broken` is the rule it broke, if any.
    fn adopt(&mut self, index: usize, e: &JourneyEvent, broken: Option<RuleId>) {
        let late = self.is_late_output(e);
        // (A QUEUED that breaks R1 is never the first event.)
        let duplicate_queued = e.kind == EventKind::Queued && broken == Some(RuleId::QueuedFirst);
        if !Core::is_terminal(self.state) && !duplicate_queued {
            let label = e.label();
            let legal = label.and_then(|l| self.next(l));
            if let Some(s) = legal.or_else(|| Core::target(label, e.kind)) {
                self.state = s;
            }
        }
        match e.kind {
            EventKind::Queued => {
                self.queued_at.get_or_insert(Seen::At(index));
            }
            EventKind::Scheduled => {
                self.last_preempted_step = None;
                self.admitted_step = Some(e.step);
                self.late_step = None;
            }
            EventKind::Preempted => {
                self.last_preempted_step = Some(e.step);
                self.late_step = None;
            }
            EventKind::FirstToken => {
                self.first_token_at.get_or_insert(Seen::At(index));
            }
            EventKind::Finished => {}
        }
        self.output_seen |= e.progress.decode_done >= 1;
        if let (None, Some(t)) = (self.span.end_unix_nano, e.time_unix_nano)
            && self.unbounded_latest.is_none_or(|(latest, _)| t > latest)
        {
            self.unbounded_latest = Some((t, index));
        }
        self.preemptions = e.num_preemptions;
        if e.kind == EventKind::Preempted {
            self.counted_preemptions = self.counted_preemptions.saturating_add(1);
        }
        // A late output does not lower the step baseline: later events are held to R6 against
        // the PREEMPTED's step.
        let step = match (late, self.prev) {
            (true, Some(prev)) => {
                self.late_step = Some(e.step);
                prev.step
            }
            (true, None) | (false, _) => e.step,
        };
        self.prev = Some(Baseline {
            step,
            ts_monotonic: e.ts_monotonic,
            prefill_done: e.progress.prefill_done,
            prefill_total: e.progress.prefill_total,
            decode_done: e.progress.decode_done,
            decode_max: e.progress.decode_max,
        });
    }
}

/// R12.
fn natural_finish_has_output(e: &JourneyEvent) -> Result<(), Broken> {
    if e.kind == EventKind::Finished
        && let Some(s) = e.finish_status.filter(|s| s.is_natural())
        && e.progress.decode_done < 1
    {
        return Err(other(RuleId::NaturalFinishHasOutput, format!("FINISHED({s}) with decode.done_tokens 0")));
    }
    Ok(())
}

/// Checks a whole journey at once: [`JourneyChecker`] fed with every event, then finished.
///
/// ```
/// use journey_spec::model::*;
/// let p = Progress::new(8, 4);
/// let journey = [
///     JourneyEvent::new(Label::Queued, Step(0), p, 0),
///     JourneyEvent::new(Label::Finished(FinishStatus::Aborted), Step(0), p, 0),
/// ];
/// assert_eq!(check_journey("r1", SpanInfo::default(), &journey), Verdict::Conforming);
/// ```
pub fn check_journey(request_id: impl Into<RequestId>, span: SpanInfo, events: &[JourneyEvent]) -> Verdict {
    check_journey_with(request_id, span, Profile::Sync, events)
}

/// [`check_journey`] under a profile.
pub fn check_journey_with(
    request_id: impl Into<RequestId>,
    span: SpanInfo,
    profile: Profile,
    events: &[JourneyEvent],
) -> Verdict {
    let mut checker = JourneyChecker::new(request_id).with_span(span).with_profile(profile);
    for e in events {
        // Violations are collected by the checker and returned by `finish`.
        let _ = checker.push(e);
    }
    checker.finish()
}
