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
    assert_eq!(empty.violations()[0].message(), "the span ended without any journey event");
    assert_eq!(empty.violations()[0].event_index, 0);
}

#[test]
fn an_unreadable_event_takes_an_index() {
    let mut c = JourneyChecker::new("r");
    c.push(&queued()).unwrap();
    let v = c.push_unreadable(RuleId::WellFormed, Detail::MissingAttribute { key: "phase".into() });
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
    assert!(v.message().contains("an earlier, dropped event"), "{}", v.message());
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
    assert!(v.message().contains("before the kept events"), "{}", v.message());
}

#[test]
fn first_token_may_carry_several_outputs_but_not_none() {
    // Speculative decoding appends several tokens at once (the fork's own test uses two).
    let two = Progress { prefill_done: 8, decode_done: 2, ..p() };
    let ok = [
        queued(),
        JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(1), p(), 0).at(1.5),
        JourneyEvent::new(Label::FirstToken, Step(1), two, 0).at(1.6),
        JourneyEvent::new(Label::Finished(FinishStatus::Stopped), Step(1), two, 0).at(1.7),
    ];
    assert_eq!(check_journey("r", SpanInfo::default(), &ok), Verdict::Conforming);
    let mut none = ok.clone();
    none[2] = JourneyEvent::new(Label::FirstToken, Step(1), Progress { prefill_done: 8, ..p() }, 0).at(1.6);
    let v = check_journey("r", SpanInfo::default(), &none);
    assert_eq!((v.violations()[0].rule, v.violations()[0].event_index), (RuleId::FirstToken, 2));
}

#[test]
fn events_states_and_steps_print_as_documented() {
    let e = JourneyEvent::new(
        Label::Finished(FinishStatus::Length),
        Step(12),
        Progress { prefill_done: 8, decode_done: 4, ..p() },
        2,
    )
    .at(0.25);
    assert_eq!(e.to_string(), "FINISHED(length) step=12 phase=DECODE prefill=8/8 decode=4/4 preemptions=2 t=0.250000");
    assert_eq!(Step(7).to_string(), "7");
    assert_eq!(
        [State::New, State::Waiting, State::Running, State::Preempted, State::Finished(FinishStatus::Error)]
            .map(|s| s.to_string()),
        ["New", "Waiting", "Running", "Preempted", "Finished(error)"]
    );
    assert!(State::Waiting.is_live() && State::Running.is_live() && State::Preempted.is_live());
    assert!(!State::New.is_live() && !State::Finished(FinishStatus::Stopped).is_live());
}

/// A journey of the R13 cases: request id and (event, step, ts) triples.
type Sketch<'a> = (&'a str, &'a [(Label, u64, f64)]);

/// The violations of one instance made of `journeys`.
fn instance(journeys: &[Sketch<'_>]) -> Vec<Violation> {
    let mut c = InstanceChecker::new();
    assert!(c.is_empty());
    for (id, events) in journeys {
        let evs: Vec<JourneyEvent> =
            events.iter().map(|(l, step, ts)| JourneyEvent::new(*l, Step(*step), p(), 0).at(*ts)).collect();
        c.add_journey(*id, SpanInfo::default(), &evs);
    }
    assert_eq!(c.len(), journeys.len());
    c.finish()
}

#[test]
fn admission_is_compared_with_the_earliest_preemption_of_its_step() {
    let first = Label::Scheduled(ScheduleKind::First);
    // Preemptions at t=1 and t=3 in step 5; an admission at t=2 comes after the first one.
    let v = instance(&[
        ("late", &[(Label::Preempted, 5, 3.0)]),
        ("early", &[(Label::Preempted, 5, 1.0)]),
        ("new", &[(first, 5, 2.0)]),
    ]);
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].rule, v[0].request_id.as_str(), v[0].event_index), (RuleId::NoAdmissionAfterPreemption, "new", 0));
    // At the same instant, or in another step, it is fine.
    assert!(instance(&[("p", &[(Label::Preempted, 5, 2.0)]), ("new", &[(first, 5, 2.0)])]).is_empty());
    assert!(instance(&[("p", &[(Label::Preempted, 5, 1.0)]), ("new", &[(first, 6, 2.0)])]).is_empty());
}

#[test]
fn overlapping_ids_are_found_against_the_longest_live_span() {
    let span = |start, end| SpanInfo { start_unix_nano: Some(start), end_unix_nano: Some(end), dropped_events: 0 };
    let check = |spans: &[(u64, u64)]| {
        let mut c = InstanceChecker::new();
        for (s, e) in spans {
            c.add_journey("same", span(*s, *e), &[]);
        }
        c.finish_by_journey().into_iter().map(|v| (v.journey, v.related.map(|r| r.0))).collect::<Vec<_>>()
    };
    // The first span is live until 100: the third overlaps it although the second ended at 20.
    assert_eq!(check(&[(0, 100), (10, 20), (50, 60)]), [(1, Some(0)), (2, Some(0))]);
    // Touching spans (one ends when the next starts) do not overlap; nor do reused ids later on.
    assert!(check(&[(0, 10), (10, 20), (30, 40)]).is_empty());
    // Journeys without a request id are not compared.
    let mut c = InstanceChecker::new();
    c.add_journey("", span(0, 10), &[]);
    c.add_journey("", span(5, 10), &[]);
    assert!(c.finish().is_empty());
}

#[test]
fn a_late_span_end_is_checked_inclusively_and_reports_the_first_latest_event() {
    let fed = |end: u64, times: [u64; 3]| {
        let mut c = JourneyChecker::new("r");
        c.push(&queued().wall(times[0])).unwrap();
        c.push(&JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(1), p(), 0).at(1.5).wall(times[1]))
            .unwrap();
        c.push(&abort(1).wall(times[2])).unwrap();
        c.set_span_end(end);
        c.finish()
    };
    assert_eq!(fed(900, [500, 700, 900]), Verdict::Conforming, "an event at the very end is inside");
    let v = fed(800, [500, 900, 900]);
    assert_eq!(v.violations().iter().map(|v| (v.rule, v.event_index)).collect::<Vec<_>>(), [(RuleId::TimeOrder, 1)]);
}

#[test]
fn instance_conflicts_name_the_first_journey_they_involve() {
    let p = p();
    let preempted = |ts| [JourneyEvent::new(Label::Preempted, Step(5), p, 1).at(ts)];
    let mut c = InstanceChecker::new();
    c.add_journey("a", SpanInfo::default(), &preempted(1.0));
    c.add_journey("b", SpanInfo::default(), &preempted(1.0));
    c.add_journey(
        "c",
        SpanInfo::default(),
        &[JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(5), p, 0).at(2.0)],
    );
    assert!(!c.is_empty());
    let v = c.finish_by_journey();
    assert_eq!((v.len(), v[0].journey, v[0].related), (1, 2, Some((0, 0))), "ties go to the first preemption");

    let span = |start, end| SpanInfo { start_unix_nano: Some(start), end_unix_nano: Some(end), dropped_events: 0 };
    let mut c = InstanceChecker::new();
    for (s, e) in [(0, 100), (10, 100), (50, 60)] {
        c.add_journey("same", span(s, e), &[]);
    }
    let related: Vec<_> = c.finish_by_journey().iter().map(|v| (v.journey, v.related)).collect();
    assert_eq!(related, [(1, Some((0, 0))), (2, Some((0, 0)))], "the first of the longest spans");
}

/// The async profile (`SPEC.md` §11): the output of a batch in flight may reach a request that
/// was preempted meanwhile, at the batch's step; everything else stays checked.
mod async_profile {
    use journey_spec::model::*;

    const P: Progress = Progress::new(8, 4);
    const OUT: Progress = Progress { prefill_done: 8, decode_done: 1, ..P };

    /// Admitted at step 1, preempted at step 2 while step 1's batch was in flight.
    fn preempted_in_flight() -> Vec<JourneyEvent> {
        vec![
            JourneyEvent::new(Label::Queued, Step(0), P, 0).at(0.0),
            JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(1), P, 0).at(0.1),
            JourneyEvent::new(Label::Preempted, Step(2), Progress { prefill_done: 8, ..P }, 1).at(0.2),
        ]
    }

    fn check(profile: Profile, events: &[JourneyEvent]) -> Vec<(RuleId, usize)> {
        check_journey_with("r", SpanInfo::default(), profile, events)
            .violations()
            .iter()
            .map(|v| (v.rule, v.event_index))
            .collect()
    }

    #[test]
    fn a_late_first_token_is_legal_only_in_the_async_profile() {
        let mut j = preempted_in_flight();
        j.push(JourneyEvent::new(Label::FirstToken, Step(1), OUT, 1).at(0.3));
        j.push(JourneyEvent::new(Label::Scheduled(ScheduleKind::Resume), Step(3), OUT, 1).at(0.4));
        j.push(
            JourneyEvent::new(Label::Finished(FinishStatus::Length), Step(3), Progress { decode_done: 4, ..OUT }, 1)
                .at(0.5),
        );
        assert_eq!(check(Profile::Async, &j), []);
        // Sync: the late FIRST_TOKEN is illegal in Preempted (and re-synchronises to Running,
        // where the RESUME is then illegal too).
        assert_eq!(check(Profile::Sync, &j)[0], (RuleId::LegalTransition, 3));
    }

    #[test]
    fn a_late_natural_finish_in_preempted_is_legal_only_in_the_async_profile() {
        let mut j = preempted_in_flight();
        j.push(JourneyEvent::new(Label::FirstToken, Step(1), OUT, 1).at(0.3));
        j.push(JourneyEvent::new(Label::Finished(FinishStatus::Stopped), Step(1), OUT, 1).at(0.3));
        assert_eq!(check(Profile::Async, &j), []);
        // Sync: the FIRST_TOKEN is R2, and the FINISHED from Preempted is then legal by kind but
        // its natural status is R4.
        let sync = check(Profile::Sync, &j);
        assert_eq!(sync[0], (RuleId::LegalTransition, 3));
    }

    #[test]
    fn what_stays_checked_under_the_async_profile() {
        // The first finding when one event follows the in-flight preemption.
        let late = |label, step| {
            let mut j = preempted_in_flight();
            j.push(JourneyEvent::new(label, Step(step), OUT, 1).at(0.3));
            check(Profile::Async, &j)[0]
        };
        // A late output at or after the PREEMPTED's step is not late: R6.
        assert_eq!(late(Label::FirstToken, 2), (RuleId::StepOrder, 3));
        // Before the SCHEDULED that admitted the request: R6.
        assert_eq!(late(Label::FirstToken, 0), (RuleId::StepOrder, 3));
        // An unnatural "late" finish is just a FINISHED from Preempted, held to the step order.
        assert_eq!(late(Label::Finished(FinishStatus::Aborted), 1), (RuleId::StepOrder, 3));
        // A late output without output is still R11 / R12.
        let mut j = preempted_in_flight();
        j.push(JourneyEvent::new(Label::FirstToken, Step(1), Progress { prefill_done: 8, ..P }, 1).at(0.3));
        assert_eq!(check(Profile::Async, &j), [(RuleId::FirstToken, 3), (RuleId::EndsFinished, 4)]);
        // Late outputs only in Preempted: a FIRST_TOKEN in Waiting stays R2.
        let waiting = [
            JourneyEvent::new(Label::Queued, Step(0), P, 0),
            JourneyEvent::new(Label::FirstToken, Step(0), OUT, 0),
            JourneyEvent::new(Label::Finished(FinishStatus::Aborted), Step(0), OUT, 0),
        ];
        assert_eq!(check(Profile::Async, &waiting)[0], (RuleId::LegalTransition, 1));
        // Nothing follows FINISHED.
        let mut j = preempted_in_flight();
        j.push(JourneyEvent::new(Label::FirstToken, Step(1), OUT, 1).at(0.3));
        j.push(JourneyEvent::new(Label::Finished(FinishStatus::Stopped), Step(1), OUT, 1).at(0.3));
        j.push(JourneyEvent::new(Label::Scheduled(ScheduleKind::Resume), Step(3), OUT, 1).at(0.4));
        assert_eq!(check(Profile::Async, &j), [(RuleId::LegalTransition, 5)]);
    }

    #[test]
    fn a_late_output_does_not_lower_the_step_baseline() {
        let mut j = preempted_in_flight();
        j.push(JourneyEvent::new(Label::FirstToken, Step(1), OUT, 1).at(0.3));
        // RESUME must still come after the PREEMPTED's step 2, not after the late output's 1.
        j.push(JourneyEvent::new(Label::Scheduled(ScheduleKind::Resume), Step(2), OUT, 1).at(0.4));
        j.push(JourneyEvent::new(Label::Finished(FinishStatus::Aborted), Step(2), OUT, 1).at(0.5));
        assert_eq!(check(Profile::Async, &j), [(RuleId::StepOrder, 4)]);
    }

    #[test]
    fn profiles_are_named() {
        for p in Profile::ALL {
            assert_eq!(Profile::lookup(p.as_str()), Some(*p));
        }
        assert_eq!(Profile::default(), Profile::Sync);
        assert!(Profile::Sync.late_output_rows().is_empty());
        assert!(Profile::Async.late_output_rows().iter().all(|r| r.from == State::Preempted));
    }
}
