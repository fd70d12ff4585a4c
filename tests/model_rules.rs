//! Model self-tests: generated valid journeys are accepted; for every rule of the catalogue,
//! targeted corruptions of valid journeys are reported with exactly that rule at the corrupted
//! event; journeys that lost events at either end are incomplete, never violating.

mod common;

use journey_spec::model::strategy::corrupt::CORRUPTIONS;
use journey_spec::model::strategy::{GeneratedJourney, JourneyParams, journey, journey_with};
use journey_spec::model::*;
use journey_spec::wire::{self, WireValue, keys};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A span event as the wire carries it: name, wall time, attributes.
type WireEvent = (&'static str, Option<u64>, Vec<(&'static str, WireValue<'static>)>);

fn to_wire(events: &[JourneyEvent]) -> Vec<WireEvent> {
    events.iter().map(|e| (e.name(), e.time_unix_nano, wire::encode(e).collect())).collect()
}

/// Decodes and checks a journey the way a trace reader does.
fn check_wire(id: &RequestId, span: SpanInfo, events: &[WireEvent]) -> Verdict {
    let mut checker = JourneyChecker::new(id.clone()).with_span(span);
    for (name, time, attrs) in events {
        let _ = wire::push(&mut checker, name, *time, attrs.iter().copied());
    }
    checker.finish()
}

/// A wire-level corruption (R5): applied to a valid journey (and a number to pick positions
/// with), it gives the corrupted span events and the index where `rule` must be reported.
/// The model-level catalogue is the crate's own, [`CORRUPTIONS`].
type Corrupted = (Vec<WireEvent>, usize);

fn is_resume(e: &JourneyEvent) -> bool {
    e.schedule_kind == Some(ScheduleKind::Resume)
}

struct WireCorruption {
    name: &'static str,
    rule: RuleId,
    once: bool,
    apply: fn(&GeneratedJourney, usize) -> Option<Corrupted>,
}

/// Every corruption, model-level ones through the wire format, as `(name, rule, once, result)`.
fn all_corruptions(j: &GeneratedJourney, k: usize) -> Vec<(&'static str, RuleId, bool, Option<Corrupted>)> {
    let model = CORRUPTIONS.iter().map(|c| (c.name, c.rule, c.once, (c.apply)(j, k).map(|(e, i)| (to_wire(&e), i))));
    let wire = WIRE_CORRUPTIONS.iter().map(|c| (c.name, c.rule, c.once, (c.apply)(j, k)));
    model.chain(wire).collect()
}

const WIRE_CORRUPTIONS: &[WireCorruption] = &[
    // R5 (wire level)
    WireCorruption {
        name: "a mandatory attribute is missing",
        rule: RuleId::WellFormed,
        once: false,

        apply: |j, k| {
            let i = k % j.events.len();
            let key = keys::MANDATORY[(k / j.events.len()) % keys::MANDATORY.len()];
            let mut w = to_wire(&j.events);
            w[i].2.retain(|(name, _)| *name != key);
            Some((w, i))
        },
    },
    WireCorruption {
        name: "event.type differs from the name",
        rule: RuleId::WellFormed,
        once: false,
        apply: |j, k| {
            let i = k % j.events.len();
            let other = EventKind::ALL.iter().find(|kind| **kind != j.events[i].kind)?;
            let mut w = to_wire(&j.events);
            for (name, v) in &mut w[i].2 {
                if *name == keys::EVENT_TYPE {
                    *v = WireValue::Str(other.as_str());
                }
            }
            Some((w, i))
        },
    },
    WireCorruption {
        name: "a counter with the wrong type",
        rule: RuleId::WellFormed,
        once: false,
        apply: |j, k| {
            let i = k % j.events.len();
            let mut w = to_wire(&j.events);
            for (name, v) in &mut w[i].2 {
                if *name == keys::SCHEDULER_STEP {
                    *v = WireValue::Double(1.0);
                }
            }
            Some((w, i))
        },
    },
];

/// An instance-level corruption: two valid journeys in, the journeys of one instance out, with
/// the request and event where `rule` must be reported.
/// The journeys of a corrupted instance, and the request and event index to report.
type CorruptedInstance = (Vec<GeneratedJourney>, RequestId, usize);

struct InstanceCorruption {
    name: &'static str,
    rule: RuleId,
    apply: fn(&GeneratedJourney, &GeneratedJourney) -> Option<CorruptedInstance>,
}

/// A three-event journey of `id` admitted at `step`, `ts` seconds on the monotonic clock.
fn admitted_at(id: &str, step: u64, ts: f64) -> GeneratedJourney {
    let p = Progress::new(16, 4);
    let events = vec![
        JourneyEvent::new(Label::Queued, Step(step - 1), p, 0).at(ts - 0.5),
        JourneyEvent::new(Label::Scheduled(ScheduleKind::First), Step(step), p, 0).at(ts),
        JourneyEvent::new(Label::Finished(FinishStatus::Aborted), Step(step), Progress { prefill_done: 16, ..p }, 0)
            .at(ts + 0.5),
    ];
    GeneratedJourney {
        request_id: RequestId::from(id),
        span: SpanInfo::default(),
        events,
        finished_from: State::Running,
    }
}

const INSTANCE_CORRUPTIONS: &[InstanceCorruption] = &[
    InstanceCorruption {
        name: "admission after a preemption in the same step",
        rule: RuleId::NoAdmissionAfterPreemption,
        apply: |a, _| {
            let p = a.events.iter().find(|e| e.kind == EventKind::Preempted)?;
            let late = admitted_at("late", p.step.0, p.ts_monotonic + 0.001);
            Some((vec![a.clone(), late], RequestId::from("late"), 1))
        },
    },
    InstanceCorruption {
        name: "two live spans with one request id",
        rule: RuleId::UniqueLiveIds,
        apply: |a, b| {
            let mut twin = b.clone();
            twin.request_id = a.request_id.clone();
            twin.span = a.span;
            Some((vec![a.clone(), twin], a.request_id.clone(), 0))
        },
    },
];

/// The same journey 10,000 steps and 1,000 seconds later.
fn later(mut j: GeneratedJourney) -> GeneratedJourney {
    const NS: u64 = 1_000_000_000_000;
    for e in &mut j.events {
        e.step.0 += 10_000;
        e.ts_monotonic += 1_000.0;
        e.time_unix_nano = e.time_unix_nano.map(|t| t + NS);
    }
    j.span.start_unix_nano = j.span.start_unix_nano.map(|t| t + NS);
    j.span.end_unix_nano = j.span.end_unix_nano.map(|t| t + NS);
    j
}

fn check_instance(journeys: &[GeneratedJourney]) -> Vec<Violation> {
    let mut instance = InstanceChecker::new();
    for j in journeys {
        instance.add_journey(j.request_id.clone(), j.span, &j.events);
    }
    instance.finish()
}

fn first_violation(v: &Verdict) -> Option<(RuleId, usize)> {
    v.violations().first().map(|v| (v.rule, v.event_index))
}

proptest! {
    #![proptest_config(common::config(regressions!("model_rules"), 4_000))]

    /// Every generated journey is accepted, directly and through the wire format.
    #[test]
    fn generated_journeys_conform(j in journey()) {
        let verdict = check_journey(j.request_id.clone(), j.span, &j.events);
        prop_assert_eq!(&verdict, &Verdict::Conforming, "{:#?}", j.events);
        prop_assert_eq!(check_wire(&j.request_id, j.span, &to_wire(&j.events)), Verdict::Conforming);
        prop_assert!(check_instance(std::slice::from_ref(&j)).is_empty());
        prop_assert_eq!(j.preemptions() as u64, j.events.last().map_or(0, |e| e.num_preemptions));
    }

    /// Each corruption is reported first, with its rule, at the corrupted event.
    #[test]
    fn corruptions_are_reported_with_their_rule(j in journey(), k in any::<usize>()) {
        for (name, rule, once, corrupted) in all_corruptions(&j, k) {
            if let Some((events, index)) = corrupted {
                let verdict = check_wire(&j.request_id, j.span, &events);
                prop_assert_eq!(
                    first_violation(&verdict), Some((rule, index)),
                    "corruption {:?} of {:#?}\ngave {:#?}", name, j.events, verdict
                );
                if once {
                    prop_assert_eq!(verdict.violations().len(), 1, "corruption {:?} reported more than once: {:#?}", name, verdict);
                }
            }
        }
    }

    /// Instance rules: each corruption is reported; the uncorrupted pair is not.
    #[test]
    fn instance_corruptions_are_reported(a in journey(), b in journey_with(JourneyParams { request_id: "other".into(), ..JourneyParams::default() })) {
        // Two independently generated journeys share steps and clocks; move `b` to a later,
        // disjoint part of the run so that the pair is a valid instance.
        let b = later(b);
        prop_assert!(check_instance(&[a.clone(), b.clone()]).is_empty());
        for c in INSTANCE_CORRUPTIONS {
            if let Some((journeys, id, index)) = (c.apply)(&a, &b) {
                let v = check_instance(&journeys);
                prop_assert!(!v.is_empty(), "{}: nothing reported", c.name);
                prop_assert_eq!((v[0].rule, &v[0].request_id, v[0].event_index), (c.rule, &id, index), "{}", c.name);
            }
        }
    }

    /// A span that lost its oldest events (Python SDK) or its newest (Rust SDK) is incomplete,
    /// never violating.
    #[test]
    fn truncated_journeys_are_incomplete(j in journey(), k in any::<usize>()) {
        let n = j.events.len();
        let lost = 1 + k % (n - 1);
        let span = SpanInfo { dropped_events: lost as u32, ..j.span };
        let oldest_lost = check_journey(j.request_id.clone(), span, &j.events[lost..]);
        prop_assert_eq!(oldest_lost, Verdict::Incomplete { dropped_events: lost as u32 }, "lost {} of {:#?}", lost, j.events);
        let newest_lost = check_journey(j.request_id.clone(), span, &j.events[..n - lost]);
        prop_assert_eq!(newest_lost, Verdict::Incomplete { dropped_events: lost as u32 });
    }

    /// Truncation does not hide a corruption among the kept events.
    #[test]
    fn truncated_journeys_still_report_kept_violations(j in journey(), k in any::<usize>()) {
        let n = j.events.len();
        if n < 3 {
            return Ok(());
        }
        let span = SpanInfo { dropped_events: 1, ..j.span };
        let mut events = j.events[1..].to_vec();
        let i = 1 + k % (events.len() - 1);
        events[i].num_preemptions += 7;
        let verdict = check_journey(j.request_id.clone(), span, &events);
        prop_assert_eq!(first_violation(&verdict), Some((RuleId::PreemptionCount, i)));
    }
}

/// A rule without a corruption that triggers it is an untested rule; a corruption that never
/// applies to generated journeys tests nothing.
#[test]
fn every_rule_has_corruptions_that_apply() {
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let cases = 4_000;
    let names: Vec<(&str, RuleId)> =
        CORRUPTIONS.iter().map(|c| (c.name, c.rule)).chain(WIRE_CORRUPTIONS.iter().map(|c| (c.name, c.rule))).collect();
    let mut applied = vec![0usize; names.len()];
    let mut applied_instance = vec![0usize; INSTANCE_CORRUPTIONS.len()];
    let strategy = (journey(), journey(), any::<usize>());
    for _ in 0..cases {
        let (a, b, k) = strategy.new_tree(&mut runner).expect("strategy").current();
        for (n, (_, _, _, c)) in applied.iter_mut().zip(all_corruptions(&a, k)) {
            *n += usize::from(c.is_some());
        }
        for (n, c) in applied_instance.iter_mut().zip(INSTANCE_CORRUPTIONS) {
            *n += usize::from((c.apply)(&a, &b).is_some());
        }
    }
    // Journey rules; S1–S3 (step windows) are broken by `cli/tests/cli_steps.rs`.
    for rule in RuleId::ALL.iter().filter(|r| r.layer() == journey_spec::model::Layer::Core) {
        let count = names.iter().filter(|(_, r)| r == rule).count()
            + INSTANCE_CORRUPTIONS.iter().filter(|c| c.rule == *rule).count();
        assert!(count > 0, "rule {rule} has no corruption");
    }
    // Every corruption applies to at least 1% of generated journeys.
    for (n, (name, _)) in applied.iter().zip(&names) {
        assert!(*n * 100 >= cases, "{name:?} applied to only {n} of {cases} journeys");
    }
    for (n, c) in applied_instance.iter().zip(INSTANCE_CORRUPTIONS) {
        assert!(*n * 100 >= cases, "{:?} applied to only {n} of {cases} journeys", c.name);
    }
}

/// The generator produces the shapes the corruptions need: preemption cycles, chunked prefill,
/// every finish status from every state that allows it.
#[test]
fn generated_journeys_have_realistic_shapes() {
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[9; 32]));
    let mut seen = std::collections::BTreeSet::new();
    let (mut preempted, mut resumed_in_decode, mut chunked) = (0, 0, 0);
    let cases = 4_000;
    for _ in 0..cases {
        let j = journey().new_tree(&mut runner).expect("strategy").current();
        let last = j.events.last().expect("non-empty");
        seen.insert((j.finished_from.name(), last.finish_status.expect("finished")));
        preempted += usize::from(j.preemptions() >= 2);
        resumed_in_decode += usize::from(j.events.iter().any(|e| is_resume(e) && e.phase == Phase::Decode));
        chunked += usize::from(
            j.events.iter().any(|e| e.progress.prefill_done > 0 && e.progress.prefill_done < e.progress.prefill_total),
        );
    }
    for row in TRANSITIONS {
        if let Label::Finished(status) = row.label {
            assert!(seen.contains(&(row.from.name(), status)), "never finished {status} from {}", row.from);
        }
    }
    assert!(preempted * 10 >= cases, "only {preempted} journeys with two preemptions or more");
    assert!(resumed_in_decode * 20 >= cases, "only {resumed_in_decode} resumes in decode");
    assert!(chunked * 10 >= cases, "only {chunked} journeys with chunked prefill");
}

/// The strategy is pinned for a seed: a change to the generator (its shapes or its clocks)
/// shows here, and the pinned journeys stay valid.
#[test]
fn generated_journeys_are_pinned_for_a_seed() {
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[1; 32]));
    let mut digest = (0usize, 0u64, 0u64, 0u64, 0u64);
    for _ in 0..50 {
        let j = journey().new_tree(&mut runner).expect("strategy").current();
        let first = j.events[0].time_unix_nano.unwrap_or(0);
        digest.0 += j.events.len();
        digest.1 += j.events.iter().map(|e| e.step.0).sum::<u64>();
        digest.2 += j.events.iter().map(|e| (e.ts_monotonic * 1e4).round() as u64).sum::<u64>();
        digest.3 += j.span.start_unix_nano.map_or(0, |s| first - s) + j.preemptions() as u64;
        digest.3 += j.events.iter().filter_map(|e| e.time_unix_nano).map(|t| (t - first) / 1_000).sum::<u64>();
        digest.4 += j.events.iter().map(|e| e.progress.prefill_done + e.progress.decode_done).sum::<u64>();
    }
    assert_eq!(digest, (275, 7317, 275_015_075, 1_282_462, 56_875));
}

#[test]
fn wire_strings_round_trip_and_unknown_strings_are_errors() {
    fn round_trip<T>(all: &[T])
    where
        T: Copy + std::fmt::Debug + PartialEq + std::fmt::Display + std::str::FromStr<Err = UnknownValue>,
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        for v in all {
            let s = v.to_string();
            assert_eq!(s.parse::<T>(), Ok(*v));
            let json = serde_json::to_string(v).expect("serialize");
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<T>(&json).expect("deserialize"), *v);
        }
        for bad in ["", " QUEUED", "queued ", "FIRST\0", "\u{1F600}", "RESUMED"] {
            let e = bad.parse::<T>();
            assert!(e.is_err(), "{bad:?} parsed");
            assert!(serde_json::from_str::<T>(&format!("{bad:?}")).is_err());
        }
    }
    round_trip(EventKind::ALL);
    round_trip(ScheduleKind::ALL);
    round_trip(FinishStatus::ALL);
    round_trip(Phase::ALL);
    // The spellings are the specification's: each one is written in SPEC.md (§2, §3), so a new
    // variant fails here until the specification says how it is spelt.
    const SPEC: &str = include_str!("../SPEC.md");
    for wire in EventKind::WIRE.iter().chain(ScheduleKind::WIRE).chain(Phase::WIRE) {
        assert!(SPEC.contains(wire), "SPEC.md does not spell {wire}");
    }
    for wire in FinishStatus::WIRE {
        assert!(SPEC.contains(&format!("`{wire}`")), "SPEC.md does not spell `{wire}`");
    }
    let err = "stoped".parse::<FinishStatus>().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("unknown finish status \"stoped\": expected one of {}", FinishStatus::WIRE.join(", "))
    );
}

#[test]
fn journey_events_round_trip_through_serde() {
    let ev = JourneyEvent::new(Label::Finished(FinishStatus::Length), Step(9), Progress::new(3, 1), 2).at(1.5).wall(7);
    let json = serde_json::to_string(&ev).expect("serialize");
    assert_eq!(
        json,
        r#"{"kind":"FINISHED","step":9,"ts_monotonic":1.5,"phase":"PREFILL","prefill_done":0,"prefill_total":3,"decode_done":0,"decode_max":1,"num_preemptions":2,"finish_status":"length","time_unix_nano":7}"#
    );
    assert_eq!(serde_json::from_str::<JourneyEvent>(&json).expect("deserialize"), ev);
}
