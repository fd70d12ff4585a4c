//! The incremental journey checker: feed events one at a time, get the first broken rule per
//! event, finish with a [`Verdict`].
//!
//! # How it reports
//!
//! For each event the checker evaluates the rules in catalogue order and reports the first one
//! the event breaks (lowest id), with the event's index and a message that names the values
//! involved. It then *adopts the event as its new baseline* — its state (the event's target in
//! the transition table), counters and clocks — so that one defect is reported once: a dropped
//! `PREEMPTED` gives one R2 and not an R9 on every later event.
//!
//! # Incomplete journeys
//!
//! A span that reports dropped events ([`SpanInfo::dropped_events`]) lost events at one end:
//! the Python SDK drops the oldest (QUEUED first), the Rust SDK the newest (FINISHED first). The
//! checker then starts from any state consistent with the first event it sees, takes counters
//! from that event, does not require FINISHED, and reports only what the kept events themselves
//! break. Its verdict is [`Verdict::Incomplete`] unless a kept event breaks a rule.

use std::fmt;

use super::event::{EventKind, FinishStatus, JourneyEvent, Label, Phase, RequestId, ScheduleKind, Step};
use super::lifecycle::{self, State};
use super::rules::RuleId;

/// A broken rule: which, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The rule that was broken.
    pub rule: RuleId,
    /// The request whose journey broke it.
    pub request_id: RequestId,
    /// The index of the offending event in the journey (the number of events for a rule that
    /// concerns the end of the journey, such as a missing FINISHED).
    pub event_index: usize,
    /// What was wrong, naming the values involved.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: request {:?}, event #{}: {}",
            self.rule,
            self.rule.info().name,
            self.request_id.as_str(),
            self.event_index,
            self.message
        )
    }
}

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

/// The outcome of checking one journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every rule holds and the journey is complete.
    Conforming,
    /// No kept event breaks a rule, but the span dropped events, so the journey cannot be
    /// judged complete.
    Incomplete {
        /// Events the span reported as dropped.
        dropped_events: u32,
    },
    /// At least one rule is broken; every violation found, in event order.
    Violating(Vec<Violation>),
}

impl Verdict {
    /// Whether the verdict is [`Verdict::Conforming`].
    pub fn is_conforming(&self) -> bool {
        matches!(self, Verdict::Conforming)
    }

    /// The violations (empty unless [`Verdict::Violating`]).
    pub fn violations(&self) -> &[Violation] {
        match self {
            Verdict::Violating(v) => v,
            Verdict::Conforming | Verdict::Incomplete { .. } => &[],
        }
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
/// let done = Progress { prefill_done: 4, decode_done: 1, ..p };
/// let mut checker = JourneyChecker::new("r1");
/// checker.push(&JourneyEvent::new(Label::Queued, Step(0), p, 0)).unwrap();
/// checker.push(&JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(1), p, 0)).unwrap();
/// // FINISHED(stopped) without output breaks R12:
/// let err = checker.push(&JourneyEvent::new(Label::Finished(FinishStatus::Stopped), Step(1), p, 0)).unwrap_err();
/// assert_eq!(err.rule, RuleId::NaturalFinishHasOutput);
/// assert_eq!(err.event_index, 2);
/// assert!(!checker.finish().is_conforming());
/// # let _ = done;
/// ```
#[derive(Debug, Clone)]
pub struct JourneyChecker {
    request_id: RequestId,
    span: SpanInfo,
    events: usize,
    state: State,
    queued_at: Option<usize>,
    first_token_at: Option<usize>,
    output_seen: bool,
    preemptions: u64,
    last_preempted_step: Option<Step>,
    prev: Option<Baseline>,
    violations: Vec<Violation>,
    /// The latest wall-clock time among events checked before the span's end was known, and
    /// that event's index: [`finish`](Self::finish) checks it against an end set later.
    unbounded_latest: Option<(u64, usize)>,
}

/// A broken rule before it is attached to a request and an index.
type Broken = (RuleId, String);

impl JourneyChecker {
    /// A checker for the journey of `request_id`, expecting a complete journey.
    pub fn new(request_id: impl Into<RequestId>) -> JourneyChecker {
        JourneyChecker {
            request_id: request_id.into(),
            span: SpanInfo::default(),
            events: 0,
            state: State::New,
            queued_at: None,
            first_token_at: None,
            output_seen: false,
            preemptions: 0,
            last_preempted_step: None,
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
            Some((rule, message)) => {
                let v = Violation { rule, request_id: self.request_id.clone(), event_index: index, message };
                self.violations.push(v.clone());
                Err(v)
            }
        }
    }

    /// Records an event that could not be read at all (a wire-level rule such as R5 broke
    /// before the model could see it). It takes an index; the state does not change.
    pub fn push_unreadable(&mut self, rule: RuleId, message: String) -> Violation {
        let v = Violation { rule, request_id: self.request_id.clone(), event_index: self.events, message };
        self.events += 1;
        self.violations.push(v.clone());
        v
    }

    /// Ends the journey (its span has ended) and gives the verdict.
    pub fn finish(mut self) -> Verdict {
        if let (Some(end), Some((t, index))) = (self.span.end_unix_nano, self.unbounded_latest)
            && t > end
        {
            self.violations.push(Violation {
                rule: RuleId::TimeOrder,
                request_id: self.request_id.clone(),
                event_index: index,
                message: format!("event time {t} ns is after the span's end {end} ns"),
            });
            self.violations.sort_by_key(|v| v.event_index);
        }
        let dropped = self.span.dropped_events;
        if dropped == 0 && !self.state.is_finished() {
            let message = if self.events == 0 {
                "the span ended without any journey event".to_owned()
            } else {
                format!("the span ended in state {} without FINISHED", self.state)
            };
            self.violations.push(Violation {
                rule: RuleId::EndsFinished,
                request_id: self.request_id.clone(),
                event_index: self.events,
                message,
            });
        }
        if !self.violations.is_empty() {
            Verdict::Violating(self.violations)
        } else if dropped > 0 {
            Verdict::Incomplete { dropped_events: dropped }
        } else {
            Verdict::Conforming
        }
    }

    /// The span lost its oldest events: start from a state in which `first` is legal, with the
    /// counters `first` implies.
    fn assume_lost_prefix(&mut self, first: &JourneyEvent) {
        // A state in which the event is legal: by its label, or by its kind alone when its
        // qualifiers are wrong (R4 then reports them).
        let from = first
            .label()
            .and_then(|l| lifecycle::sources(l).next())
            .or_else(|| lifecycle::TRANSITIONS.iter().find(|r| r.label.kind() == first.kind).map(|r| r.from));
        self.state = from.unwrap_or(State::New);
        self.queued_at = Some(usize::MAX); // QUEUED was among the lost events
        let own = u64::from(first.kind == EventKind::Preempted);
        self.preemptions = first.num_preemptions.saturating_sub(own);
        self.output_seen = first.progress.decode_done > 0 && first.kind != EventKind::FirstToken;
        if self.output_seen {
            self.first_token_at = Some(usize::MAX);
        }
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
            if let Some(at) = self.queued_at {
                let first =
                    if at == usize::MAX { "an earlier, dropped event".to_owned() } else { format!("event #{at}") };
                return Err((rule, format!("a second QUEUED (the first was {first})")));
            }
        } else if index == 0 && self.state == State::New {
            return Err((rule, format!("the journey starts with {}, not QUEUED", e.kind)));
        }
        Ok(())
    }

    /// R2.
    fn legal(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::LegalTransition;
        if let State::Finished(status) = self.state {
            return Err((rule, format!("{} after FINISHED({status})", e.kind)));
        }
        if !lifecycle::kind_allowed(self.state, e.kind) {
            let allowed: Vec<String> = lifecycle::allowed(self.state).map(|l| l.to_string()).collect();
            return Err((
                rule,
                format!("{} is not allowed in state {} (allowed: {})", e.kind, self.state, allowed.join(", ")),
            ));
        }
        Ok(())
    }

    /// R4.
    fn qualifiers(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::Qualifiers;
        if e.kind != EventKind::Scheduled
            && let Some(k) = e.schedule_kind
        {
            return Err((rule, format!("schedule.kind {k} on {}", e.kind)));
        }
        if e.kind != EventKind::Finished
            && let Some(s) = e.finish_status
        {
            return Err((rule, format!("finish.status {s} on {}", e.kind)));
        }
        match e.kind {
            EventKind::Scheduled => match e.schedule_kind {
                None => return Err((rule, "SCHEDULED without schedule.kind".to_owned())),
                Some(k) if lifecycle::next(self.state, Label::Scheduled(k)).is_none() => {
                    let expected = match self.state {
                        State::Preempted => ScheduleKind::Resume,
                        State::New | State::Waiting | State::Running | State::Finished(_) => ScheduleKind::First,
                    };
                    return Err((rule, format!("SCHEDULED({k}) from {}: expected {expected}", self.state)));
                }
                Some(_) => {}
            },
            EventKind::Finished => match e.finish_status {
                None => return Err((rule, "FINISHED without finish.status".to_owned())),
                Some(s) if lifecycle::next(self.state, Label::Finished(s)).is_none() => {
                    return Err((
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

    /// R6.
    fn step_order(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::StepOrder;
        if let Some(prev) = self.prev
            && e.step < prev.step
        {
            return Err((rule, format!("scheduler.step went from {} back to {}", prev.step, e.step)));
        }
        if matches!(e.kind, EventKind::Scheduled | EventKind::Preempted) && e.step < Step(1) {
            return Err((rule, format!("{} at step {}: steps inside schedule() start at 1", e.kind, e.step)));
        }
        if e.kind == EventKind::Scheduled
            && e.schedule_kind == Some(ScheduleKind::Resume)
            && let Some(p) = self.last_preempted_step
            && e.step <= p
        {
            return Err((rule, format!("RESUME at step {} is not after its PREEMPTED at step {p}", e.step)));
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
                return Err((rule, format!("ts.monotonic went from {} back to {}", prev.ts_monotonic, e.ts_monotonic)));
            }
        }
        if let Some(t) = e.time_unix_nano {
            if let Some(start) = self.span.start_unix_nano.filter(|&s| t < s) {
                return Err((rule, format!("event time {t} ns is before the span's start {start} ns")));
            }
            if let Some(end) = self.span.end_unix_nano.filter(|&end| t > end) {
                return Err((rule, format!("event time {t} ns is after the span's end {end} ns")));
            }
        }
        Ok(())
    }

    /// R8.
    fn progress_bounds(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::ProgressBounds;
        let p = &e.progress;
        if let Some(prev) = self.prev {
            if p.prefill_total != prev.prefill_total {
                return Err((
                    rule,
                    format!("prefill.total_tokens changed from {} to {}", prev.prefill_total, p.prefill_total),
                ));
            }
            if p.decode_max != prev.decode_max {
                return Err((rule, format!("decode.max_tokens changed from {} to {}", prev.decode_max, p.decode_max)));
            }
            if p.prefill_done < prev.prefill_done {
                return Err((
                    rule,
                    format!("prefill.done_tokens went from {} back to {}", prev.prefill_done, p.prefill_done),
                ));
            }
            if p.decode_done < prev.decode_done {
                return Err((
                    rule,
                    format!("decode.done_tokens went from {} back to {}", prev.decode_done, p.decode_done),
                ));
            }
        }
        if p.prefill_done > p.prefill_total {
            return Err((
                rule,
                format!("prefill.done_tokens {} exceeds prefill.total_tokens {}", p.prefill_done, p.prefill_total),
            ));
        }
        if p.decode_done > p.decode_max {
            return Err((
                rule,
                format!("decode.done_tokens {} exceeds decode.max_tokens {}", p.decode_done, p.decode_max),
            ));
        }
        Ok(())
    }

    /// R9.
    fn preemption_count(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let expected = self.preemptions + u64::from(e.kind == EventKind::Preempted);
        if e.num_preemptions != expected {
            return Err((
                RuleId::PreemptionCount,
                format!("num_preemptions is {}, but {expected} PREEMPTED event(s) happened so far", e.num_preemptions),
            ));
        }
        Ok(())
    }

    /// R10.
    fn phase_and_snapshot(&self, e: &JourneyEvent) -> Result<(), Broken> {
        let rule = RuleId::PhaseAndSnapshot;
        let expected = Phase::expected(e.kind, e.progress.decode_done);
        if e.phase != expected {
            return Err((
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
            return Err((
                rule,
                format!(
                    "QUEUED reports prefill.done_tokens {} and decode.done_tokens {}: both must be 0",
                    p.prefill_done, p.decode_done
                ),
            ));
        }
        if e.kind == EventKind::Scheduled && e.schedule_kind == Some(ScheduleKind::First) && p.prefill_done != 0 {
            return Err((
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
            if let Some(at) = self.first_token_at {
                let first =
                    if at == usize::MAX { "before the kept events".to_owned() } else { format!("at event #{at}") };
                return Err((rule, format!("a second FIRST_TOKEN (the first was {first})")));
            }
            if p.decode_done < 1 {
                return Err((rule, "FIRST_TOKEN with decode.done_tokens 0".to_owned()));
            }
            if p.prefill_done != p.prefill_total {
                return Err((
                    rule,
                    format!(
                        "FIRST_TOKEN with prefill.done_tokens {} of {}: the whole prompt must be done",
                        p.prefill_done, p.prefill_total
                    ),
                ));
            }
        } else if p.decode_done >= 1 && self.first_token_at.is_none() && !self.output_seen {
            return Err((
                rule,
                format!("{} reports decode.done_tokens {} before any FIRST_TOKEN", e.kind, p.decode_done),
            ));
        }
        Ok(())
    }

    /// Makes `e` the new baseline. `broken` is the rule it broke, if any.
    fn adopt(&mut self, index: usize, e: &JourneyEvent, broken: Option<RuleId>) {
        // (A QUEUED that breaks R1 is never the first event.)
        let duplicate_queued = e.kind == EventKind::Queued && broken == Some(RuleId::QueuedFirst);
        if !self.state.is_finished() && !duplicate_queued {
            let label = e.label();
            let legal = label.and_then(|l| lifecycle::next(self.state, l));
            if let Some(s) = legal.or_else(|| lifecycle::target(label, e.kind)) {
                self.state = s;
            }
        }
        match e.kind {
            EventKind::Queued => {
                self.queued_at.get_or_insert(index);
            }
            EventKind::Scheduled => self.last_preempted_step = None,
            EventKind::Preempted => self.last_preempted_step = Some(e.step),
            EventKind::FirstToken => {
                self.first_token_at.get_or_insert(index);
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
        self.prev = Some(Baseline {
            step: e.step,
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
        && let Some(s @ (FinishStatus::Stopped | FinishStatus::Length)) = e.finish_status
        && e.progress.decode_done < 1
    {
        return Err((RuleId::NaturalFinishHasOutput, format!("FINISHED({s}) with decode.done_tokens 0")));
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
    let mut checker = JourneyChecker::new(request_id).with_span(span);
    for e in events {
        // Violations are collected by the checker and returned by `finish`.
        let _ = checker.push(e);
    }
    checker.finish()
}
