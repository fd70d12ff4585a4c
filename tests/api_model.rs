//! The API lifecycle and the cross-layer rules as model tests: valid paths through each API
//! table conform, every corruption of a path is reported with its rule at its index (as
//! `tests/extension.rs` does for a lifecycle of its own), and each rule of `SPEC.md` §9 outside
//! the core journey has a targeted case here.

use journey_spec::model::api::{
    ApiEvent, ApiKind, ApiSpan, ApiState, AttrValue, CHAT_TABLE, COMPLETIONS_TABLE, ChatApi, CompletionsApi, Endpoint,
    StatusCode, check_api_span,
};
use journey_spec::model::cross::{
    About, ApiSide, CoreSide, CrossOptions, Expected, ExpectedRequest, FLAG_HAS_IS_REMOTE, FLAG_IS_REMOTE,
    check_layers, core_id_parts,
};
use journey_spec::model::ns::{NsReading, check_monotonic_ns};
use journey_spec::model::strategy::lifecycle::{PathCorruption, corrupt, corrupted_path, path, walk};
use journey_spec::model::{FinishStatus, Lifecycle, LifecycleChecker, RuleId, SpanInfo, Verdict};
use proptest::prelude::*;

fn lifecycle_check<L: Lifecycle<Label = ApiKind, Kind = ApiKind, Rule = RuleId>>(labels: &[ApiKind]) -> Verdict {
    let mut checker = LifecycleChecker::<L>::new("api-1");
    for l in labels {
        let _ = checker.push(Some(*l), *l);
    }
    checker.finish(true)
}

/// An API span with the given events, one µs apart, inside the span, well-formed.
fn span_of(endpoint: Endpoint, kinds: &[ApiKind]) -> ApiSpan {
    let (id, route) = match endpoint {
        Endpoint::Chat => ("chatcmpl-r1", Endpoint::CHAT_ROUTE),
        Endpoint::Completions => ("cmpl-r1", Endpoint::COMPLETIONS_ROUTE),
    };
    let events: Vec<ApiEvent> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let e = ApiEvent::new(*k, 1_000 + i as u64 * 1_000, 1.0 + i as f64 * 1e-6);
            if *k == ApiKind::Aborted { e.with("reason", AttrValue::Str("client_disconnect".into())) } else { e }
        })
        .collect();
    ApiSpan {
        span: SpanInfo { start_unix_nano: Some(500), end_unix_nano: Some(1_000_000), dropped_events: 0 },
        attributes: vec![
            ("gen_ai.request.id".into(), AttrValue::Str(id.into())),
            ("http.route".into(), AttrValue::Str(route.into())),
            ("gen_ai.usage.prompt_tokens".into(), AttrValue::Int(12)),
            ("gen_ai.request.n".into(), AttrValue::Int(1)),
        ],
        status: StatusCode::Unset,
        status_message: String::new(),
        events,
    }
}

fn first(v: &Verdict) -> Option<(RuleId, usize)> {
    v.violations().first().map(|v| (v.rule, v.event_index))
}

#[test]
fn the_tables_and_the_cleanup_only_end() {
    assert_eq!(walk::<ChatApi>(&[]).first(), Some(&ApiKind::Arrived));
    for table_end in [ApiState::Arrived, ApiState::HandedOff, ApiState::Responding] {
        assert!(ChatApi::may_end_in(table_end), "{table_end}");
    }
    assert!(!ChatApi::may_end_in(ApiState::New));
    // A chat span may end after HANDOFF without a terminal event; a completions one after ARRIVED.
    assert!(
        check_api_span(&span_of(Endpoint::Chat, &[ApiKind::Arrived, ApiKind::HandoffToCore])).verdict.is_conforming()
    );
    assert!(check_api_span(&span_of(Endpoint::Completions, &[ApiKind::Arrived])).verdict.is_conforming());
    // A span without any event did not start the way the lifecycle starts.
    assert_eq!(first(&check_api_span(&span_of(Endpoint::Chat, &[])).verdict), Some((RuleId::ApiLifecycle, 0)));
    // Completions have neither HANDOFF nor FIRST_RESPONSE.
    let v = check_api_span(&span_of(Endpoint::Completions, &[ApiKind::Arrived, ApiKind::HandoffToCore])).verdict;
    assert_eq!(first(&v), Some((RuleId::ApiLifecycle, 1)));
    assert_eq!(CHAT_TABLE.len(), 7);
    assert_eq!(COMPLETIONS_TABLE.len(), 3);
}

#[test]
fn each_api_rule_has_a_case() {
    use ApiKind::*;
    let good = span_of(Endpoint::Chat, &[Arrived, HandoffToCore, FirstResponseFromCore, Departed]);
    assert!(check_api_span(&good).verdict.is_conforming());
    // A1: a mistyped attribute; completion tokens on an aborted chat span.
    let mut s = good.clone();
    s.attributes.push(("gen_ai.request.temperature".into(), AttrValue::Int(1)));
    assert_eq!(first(&check_api_span(&s).verdict), Some((RuleId::ApiAttributes, 4)));
    let mut s = span_of(Endpoint::Chat, &[Arrived, HandoffToCore, Aborted]);
    s.attributes.push(("gen_ai.usage.completion_tokens".into(), AttrValue::Int(3)));
    assert_eq!(first(&check_api_span(&s).verdict), Some((RuleId::ApiAttributes, 3)));
    // A2: an unknown api.* name; a second terminal event.
    let mut s = good.clone();
    s.events.insert(2, ApiEvent::new(Departed, 2_500, 1.0000015));
    s.events[2].name = "api.SOMETHING_ELSE".into();
    assert_eq!(first(&check_api_span(&s).verdict), Some((RuleId::ApiLifecycle, 2)));
    let mut s = good.clone();
    s.events.push(ApiEvent::new(Aborted, 9_000, 2.0).with("reason", AttrValue::Str("exception".into())));
    assert_eq!(first(&check_api_span(&s).verdict), Some((RuleId::ApiLifecycle, 4)));
    // A3: the clock goes back; ABORTED without a reason; an error without the ERROR status.
    let mut s = good.clone();
    s.events[2].attributes[0].1 = AttrValue::Double(0.5);
    assert_eq!(first(&check_api_span(&s).verdict), Some((RuleId::ApiClockAndStatus, 2)));
    let mut s = span_of(Endpoint::Chat, &[Arrived, HandoffToCore, Aborted]);
    s.events[2].attributes.retain(|(k, _)| &**k != "reason");
    assert_eq!(first(&check_api_span(&s).verdict), Some((RuleId::ApiClockAndStatus, 2)));
    let mut s = span_of(Endpoint::Chat, &[Arrived, HandoffToCore, Aborted]);
    s.events[2].attributes.push(("error".into(), AttrValue::Str("Client disconnected".into())));
    assert_eq!(first(&check_api_span(&s).verdict), Some((RuleId::ApiClockAndStatus, 2)));
    s.status = StatusCode::Error;
    s.status_message = "Client disconnected".into();
    assert!(check_api_span(&s).verdict.is_conforming());
    s.status_message = "something else".into();
    assert_eq!(first(&check_api_span(&s).verdict), Some((RuleId::ApiClockAndStatus, 2)));
    // A4: an event before the span's start.
    let mut s = good;
    s.events[0].time_unix_nano = Some(100);
    assert_eq!(first(&check_api_span(&s).verdict), Some((RuleId::ApiWithinSpan, 0)));
}

#[test]
fn corruptions_of_the_api_tables_apply() {
    let valid = walk::<ChatApi>(&[0, 0, 0, 0]);
    assert_eq!(valid, [ApiKind::Arrived, ApiKind::HandoffToCore, ApiKind::FirstResponseFromCore, ApiKind::Departed]);
    let after = corrupt::<ChatApi>(&valid, PathCorruption::AfterEnd, 0).expect("ends in a terminal state");
    assert_eq!((after.rule, after.event_index), (RuleId::ApiLifecycle, 4));
    let inserted = corrupt::<ChatApi>(&valid, PathCorruption::InsertIllegal, 1).expect("an illegal label");
    assert_eq!((inserted.rule, inserted.event_index), (RuleId::ApiLifecycle, 1));
    // Every cut of a chat path is a legal end (the cleanup-only finalization) except the empty one.
    for cut in 1..valid.len() {
        assert_eq!(lifecycle_check::<ChatApi>(&valid[..cut]), Verdict::Conforming, "{cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// Generated chat paths conform, in the lifecycle checker and as whole spans; each corruption
    /// is reported first with its rule at its index, by both.
    #[test]
    fn chat_corruptions_are_caught(p in path::<ChatApi>(6), c in corrupted_path::<ChatApi>(6)) {
        prop_assert_eq!(lifecycle_check::<ChatApi>(&p), Verdict::Conforming);
        prop_assert!(check_api_span(&span_of(Endpoint::Chat, &p)).verdict.is_conforming());
        let want = Some((c.rule, c.event_index));
        prop_assert_eq!(first(&lifecycle_check::<ChatApi>(&c.labels)), want, "{:?}", c);
        prop_assert_eq!(first(&check_api_span(&span_of(Endpoint::Chat, &c.labels)).verdict), want, "{:?}", c);
    }

    #[test]
    fn completions_corruptions_are_caught(p in path::<CompletionsApi>(4), c in corrupted_path::<CompletionsApi>(4)) {
        prop_assert_eq!(lifecycle_check::<CompletionsApi>(&p), Verdict::Conforming);
        prop_assert!(check_api_span(&span_of(Endpoint::Completions, &p)).verdict.is_conforming());
        let want = Some((c.rule, c.event_index));
        prop_assert_eq!(first(&lifecycle_check::<CompletionsApi>(&c.labels)), want, "{:?}", c);
        prop_assert_eq!(first(&check_api_span(&span_of(Endpoint::Completions, &c.labels)).verdict), want, "{:?}", c);
    }
}

#[test]
fn c2_the_ns_clock() {
    let ok = [(0, Some(NsReading::Int(1_972_963_274_087)), 1972.963274087)];
    assert!(check_monotonic_ns("r", &ok).is_empty());
    let off = [(0, Some(NsReading::Int(1_972_963_274_088)), 1972.963274087)];
    assert_eq!(check_monotonic_ns("r", &off)[0].rule, RuleId::MonotonicNs);
}

// ---- across the layers ----

fn api() -> ApiSide {
    ApiSide {
        trace_id: "t1".into(),
        span_id: "a1".into(),
        request_id: Some("chatcmpl-r1".into()),
        endpoint: Some(Endpoint::Chat),
        n: Some(1),
        start: Some(100),
        end: Some(1_000),
        flags: FLAG_HAS_IS_REMOTE,
        arrived: Some(110),
        handoff: Some(120),
        first_response: Some(500),
        departed: Some(900),
        ..ApiSide::default()
    }
}

fn core() -> CoreSide {
    CoreSide {
        trace_id: "t1".into(),
        span_id: "c1".into(),
        parent_span_id: Some("a1".into()),
        request_id: Some("chatcmpl-r1-0123abcd".into()),
        kind: 1,
        scope: "vllm.scheduler".into(),
        start: Some(130),
        end: Some(800),
        flags: FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE,
        queued: Some(140),
        first_token: Some(400),
        finished: Some((790, Some(FinishStatus::Length))),
        totals: Some((12, 8)),
    }
}

fn rules(apis: &[ApiSide], cores: &[CoreSide], options: &CrossOptions) -> Vec<(RuleId, About)> {
    check_layers(apis, cores, options).findings.into_iter().map(|f| (f.violation.rule, f.about)).collect()
}

fn one(apis: &[ApiSide], cores: &[CoreSide]) -> Vec<(RuleId, About)> {
    rules(apis, cores, &CrossOptions::default())
}

#[test]
fn a_clean_pair_and_each_cross_rule() {
    assert_eq!(one(&[api()], &[core()]), []);
    // X1: the child of an llm_request is INTERNAL in vllm.scheduler.
    assert_eq!(one(&[api()], &[CoreSide { kind: 2, ..core() }]), [(RuleId::ParentIsApiSpan, About::Core(0))]);
    // X1: the parent is in the input but is not an llm_request.
    let mut options = CrossOptions::default();
    options.other_spans.insert(("t1".into(), "zz".into()));
    let c = CoreSide { parent_span_id: Some("zz".into()), ..core() };
    assert_eq!(rules(&[api()], &[c], &options), [(RuleId::ParentIsApiSpan, About::Core(0))]);
    // X2.
    for bad in ["chatcmpl-r1-0123ABCD", "chatcmpl-r1-0123abc", "chatcmpl-r2-0123abcd", "0_chatcmpl-r1-0123abcd"] {
        let c = CoreSide { request_id: Some(bad.into()), ..core() };
        assert_eq!(one(&[api()], &[c]), [(RuleId::IdRelation, About::Core(0))], "{bad}");
    }
    // X3: HANDOFF after the core span's start; no HANDOFF at all for a chat child.
    assert_eq!(
        one(&[ApiSide { handoff: Some(135), ..api() }], &[core()]),
        [(RuleId::HandoffBeforeCore, About::Core(0))]
    );
    assert_eq!(one(&[ApiSide { handoff: None, ..api() }], &[core()]), [(RuleId::HandoffBeforeCore, About::Core(0))]);
    // X4: DEPARTED before FINISHED; FIRST_RESPONSE before the first token, or without one.
    assert_eq!(
        one(&[ApiSide { departed: Some(700), ..api() }], &[core()]),
        [(RuleId::ResponseAfterCore, About::Core(0))]
    );
    assert_eq!(
        one(&[ApiSide { first_response: Some(300), ..api() }], &[core()]),
        [(RuleId::ResponseAfterCore, About::Core(0))]
    );
    assert_eq!(
        one(&[api()], &[CoreSide { first_token: None, ..core() }]),
        [(RuleId::ResponseAfterCore, About::Core(0))]
    );
    // X6: a root API span whose flags say its parent is remote.
    assert_eq!(
        one(&[ApiSide { flags: FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE, ..api() }], &[core()]),
        [(RuleId::ClientParent, About::Api(0))]
    );
    // Flags without the has-is-remote bit say nothing.
    assert_eq!(one(&[api()], &[CoreSide { flags: 0, ..core() }]), []);
}

#[test]
fn a_client_disconnect_lets_the_child_outlive_its_parent() {
    let disconnected = ApiSide {
        first_response: None,
        departed: None,
        aborted: Some((300, Some("client_disconnect".into()))),
        end: Some(310),
        ..api()
    };
    let aborted =
        CoreSide { first_token: None, finished: Some((400, Some(FinishStatus::Aborted))), end: Some(410), ..core() };
    assert_eq!(one(std::slice::from_ref(&disconnected), std::slice::from_ref(&aborted)), []);
    // The API side ending after the core's FINISHED(aborted) is not how a disconnect goes.
    let late = ApiSide { end: Some(450), ..disconnected };
    assert_eq!(one(&[late], &[aborted]), [(RuleId::ResponseAfterCore, About::Core(0))]);
}

#[test]
fn sampling_atomicity_holes_and_completeness() {
    // n = 1 with two children: a violation whatever is declared.
    let twin = CoreSide { span_id: "c2".into(), request_id: Some("chatcmpl-r1-89abcdef".into()), ..core() };
    assert_eq!(one(&[api()], &[core(), twin]), [(RuleId::SamplingAtomicity, About::Api(0))]);
    // n = 3: three children sharing a suffix, the hole of SPEC §9.3.
    let n3 = ApiSide { n: Some(3), ..api() };
    let kids: Vec<CoreSide> = (0..3)
        .map(|j| CoreSide { span_id: format!("c{j}"), request_id: Some(format!("{j}_chatcmpl-r1-0123abcd")), ..core() })
        .collect();
    assert_eq!(one(std::slice::from_ref(&n3), &kids), []);
    let mut other_suffix = kids.clone();
    other_suffix[2].request_id = Some("2_chatcmpl-r1-ffffffff".into());
    assert_eq!(one(&[n3], &other_suffix), [(RuleId::IdRelation, About::Core(2))]);
    // A batch completion: one API span, a child for prompt 0 only.
    let batch = ApiSide {
        request_id: Some("cmpl-b".into()),
        endpoint: Some(Endpoint::Completions),
        handoff: None,
        first_response: None,
        ..api()
    };
    let prompt0 = CoreSide { request_id: Some("cmpl-b-0-98dd9de3".into()), ..core() };
    assert_eq!(one(&[batch], &[prompt0]), []);
    // Missing partners: unpaired without --complete, X5 with it.
    let alone = check_layers(&[api()], &[], &CrossOptions::default());
    assert_eq!((alone.findings.len(), alone.unpaired_api), (0, 1));
    let orphan = check_layers(&[ApiSide { span_id: "a9".into(), ..api() }], &[core()], &CrossOptions::default());
    assert_eq!((orphan.findings.len(), orphan.unpaired_api, orphan.unpaired_core), (0, 1, 1));
    let complete = CrossOptions { complete: true, ..CrossOptions::default() };
    assert_eq!(rules(&[api()], &[], &complete), [(RuleId::SamplingAtomicity, About::Api(0))]);
    assert_eq!(
        rules(&[ApiSide { span_id: "a9".into(), ..api() }], &[core()], &complete),
        [(RuleId::SamplingAtomicity, About::Api(0)), (RuleId::SamplingAtomicity, About::Core(0))]
    );
    // A chat span that never handed off expects no child; without an API layer nothing is unpaired.
    assert_eq!(rules(&[ApiSide { handoff: None, ..api() }], &[], &complete), []);
    assert_eq!(rules(&[], &[CoreSide { parent_span_id: None, flags: FLAG_HAS_IS_REMOTE, ..core() }], &complete), []);
}

fn expected(requests: Vec<ExpectedRequest>, two_layers: bool) -> CrossOptions {
    CrossOptions { workload: Some(Expected { requests, two_layers }), ..CrossOptions::default() }
}

fn request(id: &str) -> ExpectedRequest {
    ExpectedRequest {
        id: id.into(),
        sampled: true,
        prompts: vec![12],
        max_tokens: 8,
        n: 1,
        ..ExpectedRequest::default()
    }
}

#[test]
fn the_workload_rules() {
    let two = |r: ExpectedRequest| rules(&[api()], &[core()], &expected(vec![r], true));
    assert_eq!(two(request("r1")), []);
    // X5: unsampled but present; sampled but absent.
    assert_eq!(two(ExpectedRequest { sampled: false, ..request("r1") }), [(RuleId::SamplingAtomicity, About::Api(0))]);
    assert_eq!(
        rules(&[], &[], &expected(vec![request("r1")], true)),
        [(RuleId::SamplingAtomicity, About::Request("r1".into()))]
    );
    // A request refused before any span exists is not missing.
    assert_eq!(rules(&[], &[], &expected(vec![ExpectedRequest { rejected: true, ..request("r1") }], true)), []);
    // W1: the prompt and the cap.
    assert_eq!(two(ExpectedRequest { prompts: vec![13], ..request("r1") }), [(RuleId::WorkloadTotals, About::Core(0))]);
    assert_eq!(two(ExpectedRequest { max_tokens: 9, ..request("r1") }), [(RuleId::WorkloadTotals, About::Core(0))]);
    // X6: the client's traceparent.
    let tp = ExpectedRequest { traceparent: Some(("t1".into(), "p1".into())), ..request("r1") };
    assert_eq!(two(tp.clone()), [(RuleId::ClientParent, About::Api(0))]);
    let with_parent =
        ApiSide { parent_span_id: Some("p1".into()), flags: FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE, ..api() };
    assert_eq!(rules(&[with_parent], &[core()], &expected(vec![tp], true)), []);
    // One layer: C3 both ways, and the core span is the top span.
    let root = CoreSide { request_id: Some("r1".into()), parent_span_id: None, flags: FLAG_HAS_IS_REMOTE, ..core() };
    let one_layer = |r: ExpectedRequest, cores: &[CoreSide]| rules(&[], cores, &expected(vec![r], false));
    assert_eq!(one_layer(request("r1"), std::slice::from_ref(&root)), []);
    assert_eq!(
        one_layer(ExpectedRequest { sampled: false, ..request("r1") }, std::slice::from_ref(&root)),
        [(RuleId::AbsentCoreSpan, About::Core(0))]
    );
    assert_eq!(one_layer(request("r1"), &[]), [(RuleId::AbsentCoreSpan, About::Request("r1".into()))]);
    assert_eq!(one_layer(ExpectedRequest { sampled: false, ..request("r1") }, &[]), []);
}

#[test]
fn core_ids_split_against_their_api_id() {
    let p = core_id_parts("cmpl-batch2n2-1-b4695ba6", "cmpl-batch2n2", Endpoint::Completions).unwrap();
    assert_eq!((p.child, p.prompt, p.suffix), (None, Some(1), "b4695ba6"));
    assert!(core_id_parts("cmpl-batch2n2-b4695ba6", "cmpl-batch2n2", Endpoint::Completions).is_err());
    let p = core_id_parts("2_chatcmpl-chatn3-a28186c9", "chatcmpl-chatn3", Endpoint::Chat).unwrap();
    assert_eq!((p.child, p.suffix), (Some(2), "a28186c9"));
}
