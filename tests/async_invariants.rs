//! The async-scheduling invariants (`Scheduler::check_invariants`), each broken on purpose: a
//! test-only fault (feature `faults`) reintroduces the vLLM bug class the invariant is for, and
//! the check, run after every engine iteration, names that invariant; the same run without the
//! fault keeps every invariant and drains.

use journey_spec::{
    AddOp, Engine, Faults, Invariant, InvariantError, Iteration, Op, Scheduler, SchedulerConfig, Workload,
};

fn config(num_blocks: usize) -> SchedulerConfig {
    SchedulerConfig {
        max_num_seqs: 4,
        max_num_batched_tokens: 64,
        block_size: 4,
        num_blocks,
        max_model_len: 64,
        async_scheduling: true,
        ..SchedulerConfig::default()
    }
}

fn add(id: &str, prompt_len: u64, max_tokens: u64) -> Op {
    Op::Add(AddOp { id: id.into(), prompt_len, max_tokens, ..AddOp::default() })
}

fn entry(ops: Vec<Op>) -> Iteration {
    Iteration { ops, ..Iteration::default() }
}

/// What a run showed: the first broken invariant (checked after every iteration, the drain
/// included), and how many late outputs (a token delivered to a request preempted since its
/// batch was scheduled) and preemptions it had.
#[derive(Debug)]
struct Outcome {
    broken: Option<InvariantError>,
    late: usize,
    preemptions: usize,
}

fn run(workload: &Workload, faults: Faults) -> Outcome {
    let mut s = Scheduler::new(workload.config).expect("valid");
    s.inject_faults(faults);
    let mut engine = Engine::new(s);
    let (mut late, mut preemptions) = (0, 0);
    let empty = Iteration::default();
    for k in 0..workload.steps.len() + 200 {
        let it = workload.steps.get(k).unwrap_or(&empty);
        let before = engine.scheduler().step();
        engine.iterate(k, it).expect("valid operations");
        let s = engine.scheduler();
        if s.step() != before {
            preemptions += s.last_step().preempted.len();
        }
        late += s
            .last_update()
            .sampled
            .iter()
            .filter(|(h, _)| s.request(*h).is_some_and(|r| r.status() != journey_spec::Status::Running))
            .count();
        if let Err(e) = s.check_invariants() {
            return Outcome { broken: Some(e), late, preemptions };
        }
        if k >= workload.steps.len() && !s.has_requests() && s.in_flight() == 0 {
            break;
        }
    }
    assert_eq!(engine.scheduler().num_live(), 0, "the run drains");
    Outcome { broken: None, late, preemptions }
}

/// Two decoding requests outgrow an 8-block cache: the second is preempted while its token is
/// in flight, and that token arrives after the preemption (a late output).
fn kv_pressure() -> Workload {
    Workload::new(config(8), vec![entry(vec![add("a", 8, 20), add("b", 8, 20)])])
}

#[test]
fn placeholder_underflow_is_caught() {
    let honest = run(&kv_pressure(), Faults::NONE);
    assert!(honest.broken.is_none(), "{:?}", honest.broken);
    assert!(honest.preemptions > 0 && honest.late > 0, "the scenario has a late output: {honest:?}");
    let faulty = run(&kv_pressure(), Faults { preempt_clears_placeholders: true, ..Faults::NONE });
    let e = faulty.broken.expect("the underflow is reported");
    assert_eq!(e.invariant, Invariant::Placeholders, "{e}");
    assert!(e.what.contains("b: ") && e.what.contains("no output placeholder left"), "{e}");
}

/// A decoding request is reset while its token is in flight, and resumed at once.
fn reset_in_flight() -> Workload {
    let steps = vec![entry(vec![add("a", 4, 10)]), entry(vec![]), entry(vec![]), entry(vec![Op::Reset])];
    Workload::new(config(16), steps)
}

#[test]
fn a_token_twice_for_one_position_is_caught() {
    let honest = run(&reset_in_flight(), Faults::NONE);
    assert!(honest.broken.is_none(), "{:?}", honest.broken);
    let faulty = run(&reset_in_flight(), Faults { reset_keeps_latest_token: true, ..Faults::NONE });
    let e = faulty.broken.expect("the duplicate is reported");
    assert_eq!(e.invariant, Invariant::DuplicateToken, "{e}");
    assert!(e.what.contains("already holds one"), "{e}");
}

/// One request decoding across block boundaries (prompt 3, blocks of 4).
fn crossing_blocks() -> Workload {
    Workload::new(config(16), vec![entry(vec![add("a", 3, 12)])])
}

#[test]
fn a_block_freed_under_a_batch_in_flight_is_caught() {
    let honest = run(&crossing_blocks(), Faults::NONE);
    assert!(honest.broken.is_none(), "{:?}", honest.broken);
    let faulty = run(&crossing_blocks(), Faults { trim_blocks_to_output: true, ..Faults::NONE });
    let e = faulty.broken.expect("the early free is reported");
    assert_eq!(e.invariant, Invariant::KvInFlight, "{e}");
    assert!(e.what.contains("a still runs") && e.what.contains("in flight reads"), "{e}");
}

/// The faults touch async paths only: a synchronous run with all three on keeps every
/// invariant (nothing is ever in flight there).
#[test]
fn the_async_faults_leave_sync_runs_alone() {
    let all = Faults {
        preempt_clears_placeholders: true,
        reset_keeps_latest_token: true,
        trim_blocks_to_output: true,
        ..Faults::NONE
    };
    for mut w in [kv_pressure(), reset_in_flight(), crossing_blocks()] {
        w.config.async_scheduling = false;
        let o = run(&w, all);
        assert!(o.broken.is_none(), "{:?}", o.broken);
        assert_eq!(o.late, 0, "no late outputs without async scheduling");
    }
}
