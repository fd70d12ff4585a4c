//! No input makes a checker panic: arbitrary events — every numeric field at 0, small, huge or
//! `u64::MAX`, clocks at NaN and the infinities, any request id, any qualifier on any kind — go
//! into every checker of the model (journey checker under each profile, the generic lifecycle
//! checker, the instance checker) and the wire decoder, and each returns findings, never a panic.

mod common;

use journey_spec::model::*;
use journey_spec::wire::{self, WireValue, keys};
use proptest::prelude::*;

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), 0u64..8, Just(u64::MAX / 2), Just(u64::MAX - 1), Just(u64::MAX), any::<u64>()]
}

fn clock() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        0.0f64..1e3,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-1.0),
        Just(f64::MAX),
        any::<f64>()
    ]
}

fn event() -> impl Strategy<Value = JourneyEvent> {
    (
        prop::sample::select(EventKind::ALL),
        number(),
        clock(),
        prop::sample::select(Phase::ALL),
        (number(), number(), number(), number()),
        number(),
        prop::option::of(prop::sample::select(ScheduleKind::ALL)),
        prop::option::of(prop::sample::select(FinishStatus::ALL)),
        prop::option::of(number()),
    )
        .prop_map(|(kind, step, ts, phase, (pd, pt, dd, dm), np, sk, fs, wall)| JourneyEvent {
            kind,
            step: Step(step),
            ts_monotonic: ts,
            phase,
            progress: Progress { prefill_done: pd, prefill_total: pt, decode_done: dd, decode_max: dm },
            num_preemptions: np,
            schedule_kind: sk,
            finish_status: fs,
            time_unix_nano: wall,
        })
}

fn span() -> impl Strategy<Value = SpanInfo> {
    (prop::option::of(number()), prop::option::of(number()), prop_oneof![Just(0u32), any::<u32>()]).prop_map(
        |(start, end, dropped)| SpanInfo { start_unix_nano: start, end_unix_nano: end, dropped_events: dropped },
    )
}

proptest! {
    #![proptest_config(common::config(regressions!("model_never_panics"), 2_000))]

    #[test]
    fn no_event_sequence_panics_a_checker(
        id in ".*",
        span in span(),
        events in prop::collection::vec(event(), 0..24),
        late_end in prop::option::of(number()),
    ) {
        for &profile in Profile::ALL {
            let mut checker = JourneyChecker::new(id.as_str()).with_span(span).with_profile(profile);
            for e in &events {
                let _ = checker.push(e);
                let _ = e.to_string();
            }
            if let Some(end) = late_end {
                checker.set_span_end(end);
            }
            let verdict = checker.finish();
            for v in verdict.violations() {
                // Every finding prints and serializes.
                let _ = v.to_string();
                prop_assert!(serde_json::to_string(v).is_ok());
            }
        }
        let mut generic = LifecycleChecker::<Core>::new(id.as_str());
        for e in &events {
            let _ = generic.push(e.label(), e.kind);
        }
        let _ = generic.finish(true);
        let mut instance = InstanceChecker::new();
        instance.add_journey(id.as_str(), span, &events);
        instance.add_journey(id.as_str(), span, &events);
        let _ = instance.finish();
    }

    #[test]
    fn no_attribute_set_panics_the_decoder(
        name in prop_oneof![Just("journey.QUEUED".to_owned()), Just("journey.FINISHED".to_owned()), ".*"],
        ints in prop::collection::vec((prop::sample::select(keys::MANDATORY.to_vec()), any::<i64>()), 0..12),
        strs in prop::collection::vec((prop::sample::select(keys::MANDATORY.to_vec()), ".*"), 0..4),
        doubles in prop::collection::vec(clock(), 0..2),
    ) {
        let mut attrs: Vec<(&str, WireValue<'_>)> = ints.iter().map(|(k, v)| (*k, WireValue::Int(*v))).collect();
        attrs.extend(strs.iter().map(|(k, v)| (*k, WireValue::Str(v.as_str()))));
        attrs.extend(doubles.iter().map(|d| (keys::TS_MONOTONIC, WireValue::Double(*d))));
        let mut checker = JourneyChecker::new("r");
        let _ = wire::push(&mut checker, &name, Some(0), attrs.iter().copied());
        let _ = checker.finish();
    }
}

/// Regression: a `num_preemptions` of `u64::MAX` on a PREEMPTED overflowed the checker's
/// expected count (`preemptions + 1`).
#[test]
fn a_preemption_count_at_the_maximum_is_a_finding_not_an_overflow() {
    let p = Progress::new(8, 4);
    let events = [
        JourneyEvent::new(Label::Queued, Step(0), p, 0),
        JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(1), p, u64::MAX),
        JourneyEvent::new(Label::Preempted, Step(2), p, u64::MAX),
        JourneyEvent::new(Label::Scheduled(ScheduleKind::Resume), Step(3), p, u64::MAX),
        JourneyEvent::new(Label::Finished(FinishStatus::Aborted), Step(3), p, u64::MAX),
    ];
    let verdict = check_journey("r", SpanInfo::default(), &events);
    let v = verdict.violations();
    assert_eq!((v[0].rule, v[0].event_index), (RuleId::PreemptionCount, 1));
    // The PREEMPTED after a count of u64::MAX would make the reported count overflow: checked
    // against the count of PREEMPTED events seen, not wrapped.
    assert_eq!((v[1].rule, v[1].event_index), (RuleId::PreemptionCount, 2));
    assert_eq!(
        v[1].detail,
        Detail::Counter {
            field: "num_preemptions".into(),
            expected: 1,
            found: u64::MAX,
            counts: "PREEMPTED event(s)".into()
        }
    );
    assert_eq!(v.len(), 2, "{v:?}");
}
