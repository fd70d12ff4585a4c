//! Scenario tests of the reference scheduler, each named after the vLLM behaviour it shows.

mod common;

use journey_spec::model::{FinishStatus, ScheduleKind, Step};
use journey_spec::{
    AddError, ConfigError, Engine, FinishReason, Handle, Iterated, Iteration, NewRequest, Op, Policy, Scheduler,
    SchedulerConfig, Status, Workload,
};

fn config() -> SchedulerConfig {
    common::small_config()
}

fn ids(s: &Scheduler, hs: impl IntoIterator<Item = Handle>) -> Vec<String> {
    hs.into_iter().map(|h| s.request(h).map_or_else(|| "<gone>".to_owned(), |r| r.id().to_owned())).collect()
}

fn add(s: &mut Scheduler, id: &str, prompt: u64, max: u64) -> Handle {
    s.add_request(NewRequest::new(id, prompt, max)).expect("valid request")
}

/// Steps until `pred` holds (no EOS), at most 100 steps.
fn step_until(s: &mut Scheduler, mut pred: impl FnMut(&Scheduler) -> bool) {
    for _ in 0..100 {
        if pred(s) {
            return;
        }
        s.schedule();
        s.check_invariants().expect("invariants");
        s.update_from_output(|_| false);
        s.check_invariants().expect("invariants");
    }
    panic!("condition never held");
}

#[test]
fn the_first_step_is_1_and_queued_reports_the_counter() {
    let mut s = Scheduler::new(config()).unwrap();
    assert_eq!(s.step(), Step(0));
    add(&mut s, "a", 4, 2);
    assert_eq!(s.schedule().step, Step(1));
    assert_eq!(s.step(), Step(1));
}

#[test]
fn fcfs_victim_is_the_last_running_request() {
    // 16 blocks of 4 tokens: a, b, c each take 5 blocks for a 20-token prompt; growing `a` by
    // one block on decode needs a free block.
    let mut s = Scheduler::new(config()).unwrap();
    for id in ["a", "b", "c"] {
        add(&mut s, id, 20, 40);
    }
    s.schedule();
    assert_eq!(ids(&s, s.running().to_vec()), ["a", "b", "c"]);
    assert_eq!(s.blocks().free(), 1);
    s.update_from_output(|_| false);
    // a, b, c each need a sixth block now: a gets the last free one, b preempts c.
    let out = s.schedule().clone();
    assert_eq!(ids(&s, out.preempted.clone()), ["c"]);
    assert_eq!(ids(&s, s.running().to_vec()), ["a", "b"]);
    s.check_invariants().unwrap();
}

#[test]
fn priority_victim_is_the_worst_priority_then_the_latest_arrival() {
    let mut s = Scheduler::new(SchedulerConfig { policy: Policy::Priority, ..config() }).unwrap();
    s.add_request(NewRequest::new("a", 20, 40).priority(1)).unwrap();
    s.add_request(NewRequest::new("b", 20, 40).priority(5)).unwrap();
    s.add_request(NewRequest::new("c", 20, 40).priority(1)).unwrap();
    s.schedule();
    s.update_from_output(|_| false);
    // The priority queue admits a, c, b. Then a takes the last free block; c needs one: the
    // victim is the worst request, b (priority 5).
    assert_eq!(ids(&s, s.running().to_vec()), ["a", "c", "b"]);
    let out = s.schedule().clone();
    assert_eq!(ids(&s, out.preempted.clone()), ["b"]);
    s.update_from_output(|_| false);
    // With b gone, c (priority 1, arrived after a) is the worst of the rest.
    step_until(&mut s, |s| !s.last_step().preempted.is_empty() && s.step() > Step(2));
    assert_eq!(ids(&s, s.last_step().preempted.clone()), ["c"]);
}

#[test]
fn priority_victim_already_scheduled_in_the_step_gives_its_tokens_back() {
    let mut s = Scheduler::new(SchedulerConfig { policy: Policy::Priority, ..config() }).unwrap();
    // Running order b, a: b (worst) is scheduled first in the step, then a needs a block.
    s.add_request(NewRequest::new("b", 24, 40).priority(9)).unwrap();
    s.schedule();
    s.update_from_output(|_| false);
    s.add_request(NewRequest::new("a", 36, 40).priority(0)).unwrap();
    s.schedule(); // a admitted: 6 + 9 = 15 blocks used
    s.update_from_output(|_| false);
    assert_eq!(ids(&s, s.running().to_vec()), ["b", "a"]);
    // b decodes into its 7th block (16 used), then a needs a 10th: b is preempted and its
    // token is given back to the budget.
    step_until(&mut s, |s| !s.last_step().preempted.is_empty());
    let out = s.last_step();
    assert_eq!(ids(&s, out.preempted.clone()), ["b"]);
    assert_eq!(ids(&s, out.scheduled.iter().map(|x| x.handle)), ["a"]);
    assert_eq!(out.total_tokens, 1);
    s.check_invariants().unwrap();
}

#[test]
fn a_preempted_request_goes_to_the_front_and_recomputes_prompt_plus_outputs() {
    let mut s = Scheduler::new(config()).unwrap();
    for id in ["a", "b", "c"] {
        add(&mut s, id, 20, 40);
    }
    add(&mut s, "d", 4, 4);
    s.schedule(); // a, b, c (5 blocks each) and d (1 block) fill the cache
    s.update_from_output(|_| false);
    step_until(&mut s, |s| !s.last_step().preempted.is_empty());
    // d, then c were preempted; each went to the front, so c is first.
    assert_eq!(ids(&s, s.last_step().preempted.clone()), ["d", "c"]);
    let victim = s.last_step().preempted[1];
    let r = s.request(victim).unwrap();
    assert_eq!((r.status(), r.num_computed(), r.blocks().len()), (Status::Preempted, 0, 0));
    let outputs = r.num_output();
    assert!(outputs >= 1);
    assert_eq!(s.waiting().next(), Some(victim), "front of the queue");
    // Once there is room it is resumed with its whole prompt plus outputs to recompute.
    step_until(&mut s, |s| s.last_step().scheduled.iter().any(|x| x.handle == victim));
    let resumed = s.last_step().scheduled.iter().find(|x| x.handle == victim).copied().unwrap();
    assert_eq!(resumed.admitted, Some(ScheduleKind::Resume));
    assert_eq!(resumed.tokens, (20 + outputs).min(64));
}

#[test]
fn no_admission_in_a_step_that_preempted() {
    let mut s = Scheduler::new(config()).unwrap();
    for id in ["a", "b", "c"] {
        add(&mut s, id, 20, 40);
    }
    s.schedule();
    s.update_from_output(|_| false);
    add(&mut s, "small", 1, 1); // would fit the budget and, after c's preemption, the cache
    let out = s.schedule().clone();
    assert!(!out.preempted.is_empty());
    assert!(out.scheduled.iter().all(|x| x.admitted.is_none()), "{out:?}");
    assert_eq!(ids(&s, s.waiting()), ["c", "small"]);
}

#[test]
fn chunked_prefill_splits_a_long_prompt_across_steps_under_the_budget() {
    let mut s = Scheduler::new(SchedulerConfig { max_num_batched_tokens: 16, ..config() }).unwrap();
    add(&mut s, "long", 40, 2);
    let mut chunks = Vec::new();
    for _ in 0..3 {
        let out = s.schedule();
        chunks.push(out.scheduled[0].tokens);
        let upd = s.update_from_output(|_| false);
        assert_eq!(upd.sampled.is_empty(), chunks.iter().sum::<u64>() < 40, "a token only after the whole prompt");
    }
    assert_eq!(chunks, [16, 16, 8]);
}

#[test]
fn long_prefill_threshold_limits_each_chunk() {
    let mut s = Scheduler::new(SchedulerConfig { long_prefill_token_threshold: 10, ..config() }).unwrap();
    add(&mut s, "long", 25, 2);
    let chunks: Vec<u64> = (0..3)
        .map(|_| {
            let t = s.schedule().scheduled[0].tokens;
            s.update_from_output(|_| false);
            t
        })
        .collect();
    assert_eq!(chunks, [10, 10, 5]);
}

#[test]
fn without_chunked_prefill_a_prompt_larger_than_the_remaining_budget_waits() {
    let off = SchedulerConfig { enable_chunked_prefill: false, max_num_batched_tokens: 64, ..config() };
    let mut s = Scheduler::new(off).unwrap();
    add(&mut s, "a", 40, 4);
    add(&mut s, "b", 30, 4);
    let out = s.schedule();
    assert_eq!(out.scheduled.len(), 1, "b (30) does not fit the 24 tokens left and waits whole");
    let mut on = Scheduler::new(config()).unwrap();
    add(&mut on, "a", 40, 4);
    add(&mut on, "b", 30, 4);
    let out = on.schedule();
    assert_eq!(out.scheduled.iter().map(|x| x.tokens).collect::<Vec<_>>(), [40, 24], "chunked: b gets 24");
}

#[test]
fn max_model_len_caps_with_status_length() {
    let mut s = Scheduler::new(SchedulerConfig { max_model_len: 24, ..config() }).unwrap();
    add(&mut s, "a", 20, 100);
    let mut finished = None;
    for _ in 0..10 {
        s.schedule();
        if let Some(f) = s.update_from_output(|_| false).finished.first() {
            finished = Some((f.status, s.last_update().sampled.len()));
            break;
        }
    }
    assert_eq!(finished.map(|f| f.0), Some(FinishStatus::Length));
    assert_eq!(s.num_live(), 0);
}

#[test]
fn max_tokens_caps_with_status_length_and_eos_with_stopped() {
    let mut s = Scheduler::new(config()).unwrap();
    add(&mut s, "capped", 4, 1);
    add(&mut s, "eos", 4, 5);
    s.schedule();
    let upd = s.update_from_output(|id| id == "eos").clone();
    let got: Vec<_> = upd.finished.iter().map(|f| (f.id.to_string(), f.status)).collect();
    assert_eq!(got, [("capped".to_owned(), FinishStatus::Length), ("eos".to_owned(), FinishStatus::Stopped)]);
}

#[test]
fn ignore_eos_runs_to_the_cap() {
    let mut s = Scheduler::new(config()).unwrap();
    s.add_request(NewRequest { ignore_eos: true, ..NewRequest::new("a", 4, 2) }).unwrap();
    s.schedule();
    assert!(s.update_from_output(|_| true).finished.is_empty());
    s.schedule();
    assert_eq!(s.update_from_output(|_| true).finished[0].status, FinishStatus::Length);
}

#[test]
fn abort_from_waiting_running_and_preempted() {
    let mut s = Scheduler::new(SchedulerConfig { max_num_seqs: 3, ..config() }).unwrap();
    for id in ["a", "b", "c"] {
        add(&mut s, id, 20, 40);
    }
    add(&mut s, "w", 60, 4); // waits: max_num_seqs is 3
    s.schedule();
    s.update_from_output(|_| false);
    s.schedule(); // c preempted
    s.update_from_output(|_| false);
    let status = |s: &Scheduler, id| s.handle(id).and_then(|h| s.request(h)).map(|r| r.status());
    assert_eq!(status(&s, "w"), Some(Status::Waiting));
    assert_eq!(status(&s, "a"), Some(Status::Running));
    assert_eq!(status(&s, "c"), Some(Status::Preempted));
    let done = s.finish_requests(["w", "a", "c", "unknown", "a"], FinishReason::Aborted, None).to_vec();
    let got: Vec<_> = done.iter().map(|f| (f.id.to_string(), f.status, f.step)).collect();
    assert_eq!(
        got,
        [
            ("w".into(), FinishStatus::Aborted, Step(2)),
            ("a".into(), FinishStatus::Aborted, Step(2)),
            ("c".into(), FinishStatus::Aborted, Step(2))
        ]
    );
    assert_eq!(ids(&s, s.running().to_vec()), ["b"]);
    assert_eq!(s.num_waiting(), 0);
    s.check_invariants().unwrap();
    // Finished ids are skipped silently.
    assert!(s.finish_requests(["a"], FinishReason::Error, None).is_empty());
}

#[test]
fn a_schedule_that_schedules_nothing_still_counts_but_an_idle_engine_does_not_schedule() {
    let w: Workload = Workload::from_json(
        r#"{"config": {"max_num_seqs": 1, "max_num_batched_tokens": 64, "block_size": 4, "num_blocks": 16, "max_model_len": 64},
            "steps": [{}, {"ops": [{"op": "add", "id": "a", "prompt_len": 4, "max_tokens": 1}]}, {}, {}, {}]}"#,
    )
    .unwrap();
    let mut engine = Engine::new(Scheduler::new(w.config).unwrap());
    let got: Vec<Iterated> = w.steps.iter().enumerate().map(|(k, it)| engine.iterate(k, it).unwrap()).collect();
    // Idle; a admitted and finished (max_tokens 1); one more step reports the finish (vLLM's
    // has_requests); then idle again.
    assert_eq!(got, [Iterated::Idle, Iterated::Stepped, Iterated::Stepped, Iterated::Idle, Iterated::Idle]);
    assert_eq!(engine.scheduler().step(), Step(2));
    assert!(engine.scheduler().last_step().scheduled.is_empty(), "step 2 scheduled nothing and still counted");
}

#[test]
fn an_add_and_abort_before_any_step_still_runs_one_step() {
    // The vLLM fixture w4 starts this way: its second request is QUEUED at step 1.
    let mut s = Scheduler::new(config()).unwrap();
    add(&mut s, "a", 4, 1);
    s.finish_requests(["a"], FinishReason::Error, None);
    assert!(!s.has_live());
    assert!(s.has_requests());
    s.schedule();
    assert!(!s.has_requests());
}

#[test]
fn an_in_flight_abort_gets_no_token_from_its_step() {
    let w = Workload::from_json(
        r#"{"config": {"max_num_seqs": 4, "max_num_batched_tokens": 64, "block_size": 4, "num_blocks": 16, "max_model_len": 64},
            "steps": [{"ops": [{"op": "add", "id": "a", "prompt_len": 4, "max_tokens": 4}],
                       "in_flight": [{"op": "finish", "id": "a", "status": "aborted"}], "eos": ["a"]}]}"#,
    )
    .unwrap();
    let mut engine = Engine::new(Scheduler::new(w.config).unwrap());
    engine.iterate(0, &w.steps[0]).unwrap();
    let s = engine.scheduler();
    assert!(s.last_update().sampled.is_empty());
    assert!(s.last_update().finished.is_empty());
    assert_eq!(s.num_live(), 0);
}

#[test]
fn reset_preempts_every_running_request_and_keeps_their_order() {
    let mut s = Scheduler::new(config()).unwrap();
    for id in ["a", "b", "c"] {
        add(&mut s, id, 8, 8);
    }
    add(&mut s, "w", 8, 8);
    s.schedule();
    s.update_from_output(|_| false);
    assert_eq!(ids(&s, s.running().to_vec()), ["a", "b", "c", "w"]);
    let preempted = s.reset().to_vec();
    assert_eq!(ids(&s, preempted), ["w", "c", "b", "a"], "last first");
    assert_eq!(ids(&s, s.waiting()), ["a", "b", "c", "w"]);
    assert_eq!(s.blocks().used(), 0);
    s.check_invariants().unwrap();
}

#[test]
fn adding_is_rejected_with_a_typed_error_and_no_state_change() {
    let mut s = Scheduler::new(config()).unwrap();
    add(&mut s, "a", 4, 4);
    let before = (s.num_live(), s.num_waiting(), s.step(), s.blocks().free());
    let cases = [
        (NewRequest::new("a", 4, 4), "DuplicateId"),
        (NewRequest::new("b", 0, 4), "EmptyPrompt"),
        (NewRequest::new("b", 64, 4), "PromptTooLong"),
        (NewRequest::new("b", 4, 0), "ZeroMaxTokens"),
    ];
    for (i, (req, want)) in cases.into_iter().enumerate() {
        let err = s.add_request(req).unwrap_err();
        let name = match err {
            AddError::DuplicateId { .. } => "DuplicateId",
            AddError::EmptyPrompt { .. } => "EmptyPrompt",
            AddError::PromptTooLong { .. } => "PromptTooLong",
            AddError::ZeroMaxTokens { .. } => "ZeroMaxTokens",
            AddError::CannotFit { .. } => "CannotFit",
        };
        assert_eq!(name, want, "#{i}: {err}");
        assert_eq!((s.num_live(), s.num_waiting(), s.step(), s.blocks().free()), before, "#{i}");
    }
    s.check_invariants().unwrap();
    // A cache smaller than max_model_len is fine for requests that fit, and rejects the others.
    let small = SchedulerConfig { num_blocks: 2, ..config() };
    let mut t = Scheduler::new(small).unwrap();
    let err = t.add_request(NewRequest::new("big", 4, 5)).unwrap_err();
    assert_eq!(err, AddError::CannotFit { id: "big".into(), needed: 3, available: 2 });
    assert!(t.add_request(NewRequest::new("fits", 4, 4)).is_ok());
    // A finished id may be reused.
    t.finish_requests(["fits"], FinishReason::Aborted, None);
    assert!(t.add_request(NewRequest::new("fits", 4, 4)).is_ok());
}

#[test]
fn configurations_are_validated_with_the_failing_value() {
    let cases = [
        (SchedulerConfig { max_num_seqs: 0, ..config() }, "max_num_seqs is 0, must be at least 1"),
        (SchedulerConfig { max_num_batched_tokens: 0, ..config() }, "max_num_batched_tokens is 0, must be at least 1"),
        (SchedulerConfig { block_size: 0, ..config() }, "block_size is 0, must be at least 1"),
        (SchedulerConfig { num_blocks: 0, ..config() }, "num_blocks is 0, must be at least 1"),
        (SchedulerConfig { max_model_len: 1, ..config() }, "max_model_len is 1, must be at least 2"),
    ];
    for (c, msg) in cases {
        assert_eq!(Scheduler::new(c).unwrap_err().to_string(), msg);
    }
    let e = Scheduler::new(SchedulerConfig { enable_chunked_prefill: false, max_num_batched_tokens: 32, ..config() })
        .unwrap_err();
    assert!(matches!(e, ConfigError::BudgetBelowModelLen { budget: 32, max_model_len: 64 }), "{e}");
}

#[test]
fn workload_files_reject_unknown_fields_and_natural_finish_statuses() {
    let base =
        r#"{"max_num_seqs": 1, "max_num_batched_tokens": 64, "block_size": 4, "num_blocks": 16, "max_model_len": 64}"#;
    let bad = [
        format!(r#"{{"config": {base}, "steps": [{{"ops": [{{"op": "finish", "id": "a", "status": "stopped"}}]}}]}}"#),
        format!(r#"{{"config": {base}, "steps": [{{"ops": [{{"op": "add", "id": "a", "prompt_len": 4}}]}}]}}"#),
        format!(r#"{{"config": {base}, "steps": [{{"opz": []}}]}}"#),
        format!(r#"{{"config": {base}, "steps": [{{"ops": [{{"op": "explode"}}]}}]}}"#),
        r#"{"config": {"max_num_seqs": 0, "max_num_batched_tokens": 1, "block_size": 1, "num_blocks": 1, "max_model_len": 2}, "steps": []}"#.to_owned(),
        "".to_owned(),
        "[]".to_owned(),
    ];
    for (i, text) in bad.iter().enumerate() {
        assert!(Workload::from_json(text).is_err(), "#{i} accepted: {text}");
    }
    let ok = format!(r#"{{"config": {base}, "steps": [{{"ops": [{{"op": "reset"}}]}}]}}"#);
    assert_eq!(Workload::from_json(&ok).unwrap().steps[0].ops, [Op::Reset]);
    let _ = Iteration::default();
}

#[test]
fn a_priority_victim_scheduled_earlier_in_the_step_refunds_its_tokens_and_nobody_is_skipped() {
    // Running order [b, a, c] (b admitted alone first); b is the worst. When `a` needs a block,
    // b — already given its token in this step — is preempted: its token goes back to the
    // budget (without it `c` would not fit) and the loop index steps back (without that `c`
    // would be skipped).
    let cfg = SchedulerConfig {
        policy: Policy::Priority,
        max_num_batched_tokens: 3,
        block_size: 4,
        num_blocks: 4,
        max_model_len: 64,
        ..config()
    };
    let mut s = Scheduler::new(cfg).unwrap();
    s.add_request(NewRequest::new("b", 1, 6).priority(9)).unwrap();
    s.schedule();
    s.update_from_output(|_| false);
    s.add_request(NewRequest::new("a", 1, 6).priority(0)).unwrap();
    s.add_request(NewRequest::new("c", 6, 6).priority(0)).unwrap();
    let mut seen = false;
    for _ in 0..40 {
        let out = s.schedule().clone();
        s.check_invariants().unwrap();
        if ids(&s, out.preempted.clone()) == ["b"] {
            // b got 1 token first, then was preempted for a: with the refund the budget of 3
            // covers a's token and two of c's.
            let got: Vec<(String, u64)> =
                out.scheduled.iter().map(|x| (ids(&s, [x.handle])[0].clone(), x.tokens)).collect();
            assert_eq!(got, [("a".to_owned(), 1), ("c".to_owned(), 2)], "{out:?}");
            assert_eq!(out.total_tokens, 3);
            seen = true;
            break;
        }
        s.update_from_output(|_| false);
    }
    assert!(seen, "the situation never arose");
}

#[test]
fn without_chunked_prefill_a_prompt_that_fills_the_remaining_budget_exactly_is_admitted() {
    let off = SchedulerConfig { enable_chunked_prefill: false, max_num_batched_tokens: 64, ..config() };
    let mut s = Scheduler::new(off).unwrap();
    add(&mut s, "a", 40, 4);
    add(&mut s, "b", 24, 4);
    let out = s.schedule();
    assert_eq!(out.scheduled.iter().map(|x| x.tokens).collect::<Vec<_>>(), [40, 24]);
}

#[test]
fn scheduling_twice_without_an_update_schedules_nothing_new_and_loses_no_token() {
    let mut s = Scheduler::new(config()).unwrap();
    add(&mut s, "a", 4, 3);
    add(&mut s, "b", 4, 3);
    s.schedule();
    // The tokens of step 1 were not applied: both requests have nothing to compute.
    let out = s.schedule().clone();
    assert!(out.scheduled.is_empty(), "{out:?}");
    let upd = s.update_from_output(|_| false);
    assert_eq!(upd.sampled.len(), 2, "the pending tokens arrive with the next update");
    s.check_invariants().unwrap();
}

#[test]
fn accessors_report_the_request_and_the_configuration() {
    let mut s = Scheduler::new(SchedulerConfig { policy: Policy::Priority, ..config() }).unwrap();
    assert_eq!(*s.config(), SchedulerConfig { policy: Policy::Priority, ..config() });
    s.add_request(NewRequest::new("x", 5, 2).priority(-3)).unwrap();
    s.add_request(NewRequest::new("y", 9, 2).priority(7)).unwrap();
    assert_eq!(s.num_waiting(), 2);
    let x = s.request(s.handle("x").unwrap()).unwrap();
    assert_eq!((x.priority(), x.arrival(), x.prompt_len(), x.max_tokens()), (-3, 0, 5, 2));
    let y = s.request(s.handle("y").unwrap()).unwrap();
    assert_eq!((y.priority(), y.arrival()), (7, 1));
    s.schedule();
    let x = s.request(s.handle("x").unwrap()).unwrap();
    assert_eq!(x.blocks().len(), 2, "5 tokens in blocks of 4");
    assert_eq!(s.num_waiting(), 0);
    assert_eq!(format!("{} {} {}", Policy::Fcfs, Policy::Priority, FinishReason::Ignored), "fcfs priority ignored");
}

#[test]
fn a_workload_without_optional_fields_gets_the_defaults() {
    let w = Workload::from_json(
        r#"{"config": {"max_num_seqs": 1, "max_num_batched_tokens": 64, "block_size": 4, "num_blocks": 16, "max_model_len": 64},
            "steps": [{"ops": [{"op": "add", "id": "a", "prompt_len": 4, "max_tokens": 1}]}]}"#,
    )
    .unwrap();
    assert!(w.config.enable_chunked_prefill);
    assert_eq!((w.config.long_prefill_token_threshold, w.config.policy), (0, Policy::Fcfs));
    let Op::Add(add) = &w.steps[0].ops[0] else { panic!("an add") };
    assert_eq!((add.priority, add.ignore_eos, add.traceparent.as_deref()), (0, false, None));
}
