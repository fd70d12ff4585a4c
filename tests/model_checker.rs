//! The journey checker's API in small, readable cases: accessors, verdicts, messages, and the
//! edges of the rules (boundaries the generated tests rarely hit exactly).

use journey_spec::model::*;

fn p() -> Progress {
    Progress::new(8, 4)
}

fn queued() -> JourneyEvent {
    JourneyEvent::new(Label::Queued, Step(0), p(), 0).at(1.0)
}

fn abort(step: u64) -> JourneyEvent {
    JourneyEvent::new(Label::Finished(FinishStatus::Aborted), Step(step), p(), 0).at(2.0)
}

#[test]
fn accessors_follow_the_events() {
    let mut c = JourneyChecker::new("r9");
    assert_eq!((c.request_id().as_str(), c.len(), c.is_empty(), c.state()), ("r9", 0, true, State::New));
    c.push(&queued()).unwrap();
    assert_eq!((c.len(), c.is_empty(), c.state()), (1, false, State::Waiting));
    let v = c.push(&queued()).unwrap_err();
    assert_eq!(c.violations(), [v]);
    assert_eq!(c.len(), 2);
}

#[test]
fn verdicts_say_what_they_are() {
    let ok = check_journey("r", SpanInfo::default(), &[queued(), abort(0)]);
    assert!(ok.is_conforming() && ok.violations().is_empty());
    let bad = check_journey("r", SpanInfo::default(), &[queued()]);
    assert!(!bad.is_conforming());
    assert_eq!(bad.violations().len(), 1);
    let cut = check_journey("r", SpanInfo { dropped_events: 3, ..SpanInfo::default() }, &[queued()]);
    assert_eq!(cut, Verdict::Incomplete { dropped_events: 3 });
    assert!(!cut.is_conforming() && cut.violations().is_empty());
}

#[test]
fn a_violation_prints_rule_name_request_index_and_message() {
    let v = check_journey("r1", SpanInfo::default(), &[queued()]).violations()[0].clone();
    assert_eq!(
        v.to_string(),
        "R3 ends-finished: request \"r1\", event #1: the span ended in state Waiting without FINISHED"
    );
    let empty = check_journey("r2", SpanInfo::default(), &[]);
    assert_eq!(empty.violations()[0].message, "the span ended without any journey event");
    assert_eq!(empty.violations()[0].event_index, 0);
}

#[test]
fn an_unreadable_event_takes_an_index() {
    let mut c = JourneyChecker::new("r");
    c.push(&queued()).unwrap();
    let v = c.push_unreadable(RuleId::WellFormed, "attribute phase is missing".into());
    assert_eq!((v.rule, v.event_index), (RuleId::WellFormed, 1));
    let next = c.push(&JourneyEvent::new(Label::FirstToken, Step(1), p(), 0).at(3.0)).unwrap_err();
    assert_eq!(next.event_index, 2);
}

#[test]
fn a_second_queued_after_lost_events_says_so() {
    let span = SpanInfo { dropped_events: 2, ..SpanInfo::default() };
    let mut c = JourneyChecker::new("r").with_span(span);
    c.push(&JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(1), p(), 0).at(1.0)).unwrap();
    let v = c.push(&JourneyEvent::new(Label::Queued, Step(1), p(), 0).at(2.0)).unwrap_err();
    assert_eq!(v.rule, RuleId::QueuedFirst);
    assert!(v.message.contains("an earlier, dropped event"), "{}", v.message);
}

#[test]
fn a_truncated_journey_may_start_with_a_mislabelled_event() {
    // The first kept event lacks its schedule kind: R4, not R1 or R2.
    let span = SpanInfo { dropped_events: 2, ..SpanInfo::default() };
    let mut first = JourneyEvent::new(Label::Scheduled(ScheduleKind::Resume), Step(4), p(), 1).at(1.0);
    first.schedule_kind = None;
    let v = check_journey("r", span, &[first]);
    assert_eq!(v.violations().iter().map(|v| v.rule).collect::<Vec<_>>(), [RuleId::Qualifiers]);
}

#[test]
fn events_may_lie_exactly_on_the_span_bounds() {
    let at = |t: u64| vec![queued().wall(t), abort(0).wall(t + 10)];
    let span = SpanInfo { start_unix_nano: Some(100), end_unix_nano: Some(110), dropped_events: 0 };
    assert_eq!(check_journey("r", span, &at(100)), Verdict::Conforming);
    let early = check_journey("r", span, &at(99));
    assert_eq!((early.violations()[0].rule, early.violations()[0].event_index), (RuleId::TimeOrder, 0));
    let late = check_journey("r", span, &at(101));
    assert_eq!((late.violations()[0].rule, late.violations()[0].event_index), (RuleId::TimeOrder, 1));
}

#[test]
fn the_span_end_can_be_set_after_the_events() {
    let mut c = JourneyChecker::new("r");
    c.push(&queued().wall(500)).unwrap();
    c.push(&abort(0).wall(900)).unwrap();
    c.set_span_end(800);
    // The end is known only now: `finish` checks the events fed before it.
    let v = c.finish();
    assert_eq!(v.violations().iter().map(|v| (v.rule, v.event_index)).collect::<Vec<_>>(), [(RuleId::TimeOrder, 1)]);
    let mut c = JourneyChecker::new("r");
    c.set_span_end(800);
    c.push(&queued().wall(500)).unwrap();
    assert_eq!(c.push(&abort(0).wall(900)).unwrap_err().rule, RuleId::TimeOrder);
}

#[test]
fn a_second_first_token_after_lost_events_says_so() {
    let span = SpanInfo { dropped_events: 5, ..SpanInfo::default() };
    let done = Progress { prefill_done: 8, decode_done: 2, ..p() };
    let mut c = JourneyChecker::new("r").with_span(span);
    c.push(&JourneyEvent::new(Label::Preempted, Step(9), done, 1).at(1.0)).unwrap();
    c.push(&JourneyEvent::new(Label::Scheduled(ScheduleKind::Resume), Step(10), done, 1).at(2.0)).unwrap();
    let v = c.push(&JourneyEvent::new(Label::FirstToken, Step(10), done, 1).at(3.0)).unwrap_err();
    assert_eq!(v.rule, RuleId::FirstToken);
    assert!(v.message.contains("before the kept events"), "{}", v.message);
}
