//! Hostile configurations and requests (issue "no panic and no unbounded allocation on any
//! input"): every value that used to panic, abort or allocate what it configured is now a typed
//! error naming the value, or runs in memory that follows what is used.
//!
//! A byte-counting global allocator (this test binary only) measures what the calling thread
//! asks for, so the tests can run in parallel.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use journey_spec::{
    AddError, ConfigError, Engine, EngineError, NewRequest, Policy, Scheduler, SchedulerConfig, Workload,
    WorkloadError, replay,
};
use proptest::prelude::*;

struct Counting;

thread_local! {
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // `try_with`: the allocator may run while the thread's locals are being torn down.
    let _ = BYTES.try_with(|n| n.set(n.get().saturating_add(bytes as u64)));
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// thread-local `Cell` that needs no allocation and has no destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Bytes asked for by `f` on this thread (allocations and reallocations, frees not deducted).
fn bytes<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = BYTES.with(Cell::get);
    let r = f();
    (BYTES.with(Cell::get) - before, r)
}

/// Far above what a scheduler with a handful of requests needs, far below anything sized by
/// a configured limit.
const SMALL: u64 = 64 * 1024;

fn config() -> SchedulerConfig {
    SchedulerConfig {
        max_num_seqs: 8,
        max_num_batched_tokens: 64,
        block_size: 4,
        num_blocks: 16,
        max_model_len: 64,
        ..SchedulerConfig::default()
    }
}

/// A few requests through the engine until they all finish, checking the invariants on the
/// way; returns the steps run.
fn run_a_few(s: Scheduler, requests: &[(&str, u64, u64)]) -> u64 {
    let mut engine = Engine::new(s);
    for &(id, prompt, max) in requests {
        engine.scheduler_mut().add_request(NewRequest::new(id, prompt, max)).expect("fits");
    }
    let summary = engine
        .run(&Workload::new(*engine.scheduler().config(), Vec::new()), |k, _, s| {
            assert_eq!(s.check_invariants(), Ok(()), "iteration {k}");
        })
        .expect("drains");
    assert_eq!(engine.scheduler().num_live(), 0);
    summary.steps
}

#[test]
fn max_tokens_near_u64_max_saturates_the_drain_bound_and_drains() {
    // `prompt + max_tokens` overflowed in the drain bound.
    let mut s = Scheduler::new(config()).unwrap();
    s.add_request(NewRequest::new("a", 4, u64::MAX)).unwrap();
    s.add_request(NewRequest::new("b", 60, u64::MAX - 1)).unwrap();
    let engine = Engine::new(s);
    // Each request is bounded by max_model_len (64 tokens): 1024 + 16 · (64 + 64).
    assert_eq!(engine.drain_limit(), 3072);
    let steps = run_a_few(engine.into_scheduler(), &[("c", 4, u64::MAX), ("d", 63, u64::MAX - 3)]);
    assert!(steps > 60, "a ran to max_model_len: {steps} steps");
}

#[test]
fn max_num_seqs_of_2_pow_40_and_2_pow_63_takes_no_memory_up_front() {
    // 2^63 panicked with a capacity overflow in `Scheduler::new`, 2^40 aborted on a failed
    // allocation: the running list was reserved for `max_num_seqs` requests.
    for max_num_seqs in [1 << 40, 1 << 63, usize::MAX] {
        let (n, s) = bytes(|| Scheduler::new(SchedulerConfig { max_num_seqs, ..config() }));
        let s = s.expect("a limit, not an allocation");
        assert!(n < SMALL, "max_num_seqs {max_num_seqs}: {n} bytes up front");
        run_a_few(s, &[("a", 8, 4), ("b", 8, 4), ("c", 20, 4)]);
    }
}

#[test]
fn num_blocks_above_u32_max_is_a_typed_error_not_a_clamp() {
    // The pool clamped to u32::MAX blocks while admission used the configured number.
    for num_blocks in [1 << 32, usize::MAX] {
        let c = SchedulerConfig { num_blocks, ..config() };
        let want = ConfigError::TooLarge { field: "num_blocks", value: num_blocks as u64, max: u32::MAX.into() };
        assert_eq!(c.validate(), Err(want.clone()));
        assert_eq!(Scheduler::new(c).unwrap_err(), want);
        assert_eq!(want.to_string(), format!("num_blocks is {num_blocks}, must be at most 4294967295"));
    }
    let text = r#"{"config": {"max_num_seqs": 1, "max_num_batched_tokens": 64, "block_size": 4,
        "num_blocks": 4294967296, "max_model_len": 64}, "steps": []}"#;
    assert!(matches!(Workload::from_json(text), Err(WorkloadError::Config(ConfigError::TooLarge { .. }))));
}

#[test]
fn num_blocks_of_u32_max_takes_memory_as_blocks_are_used() {
    // 2^32 blocks allocated 16.8 GB up front (the whole free list).
    let c = SchedulerConfig { num_blocks: u32::MAX as usize, ..config() };
    let (n, s) = bytes(|| Scheduler::new(c));
    let s = s.expect("valid");
    assert!(n < SMALL, "{n} bytes up front");
    assert_eq!((s.blocks().free(), s.blocks().issued()), (u32::MAX as usize, 0));
    // `check_invariants` too sizes its bookkeeping by the blocks ever used.
    let (n, steps) = bytes(|| run_a_few(s, &[("a", 30, 10), ("b", 30, 10), ("c", 7, 20)]));
    assert!(steps > 0);
    assert!(n < 4 * SMALL, "{n} bytes for three small requests");
}

#[test]
fn a_request_that_may_grow_to_billions_of_blocks_reserves_a_bounded_block_list() {
    // `add_request` reserved the most blocks the request could ever hold: here 2^31 blocks,
    // 8 GiB, for a request that holds 2 blocks when it stops.
    let c = SchedulerConfig { num_blocks: u32::MAX as usize, block_size: 1, max_model_len: u64::MAX, ..config() };
    let mut s = Scheduler::new(c).unwrap();
    let (n, added) = bytes(|| s.add_request(NewRequest::new("long", 8, 1 << 31)));
    added.expect("fits the cache at its longest");
    assert!(n < SMALL, "{n} bytes for one request");
    for _ in 0..40 {
        s.schedule();
        s.update_from_output(|_| false);
    }
    assert_eq!(s.check_invariants(), Ok(()));
    let h = s.handle("long").expect("live");
    assert_eq!(s.request(h).map(|r| r.blocks().len()), Some(8 + 39), "one block per token, grown as used");
}

#[test]
fn workload_errors_name_the_file_and_print_ids_as_strings() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("hostile-duplicate.json");
    let text = r#"{"config": {"max_num_seqs": 2, "max_num_batched_tokens": 64, "block_size": 4,
        "num_blocks": 16, "max_model_len": 64},
        "steps": [{"ops": [{"op": "add", "id": "a", "prompt_len": 4, "max_tokens": 8},
                           {"op": "add", "id": "a", "prompt_len": 4, "max_tokens": 8}]}]}"#;
    std::fs::write(&path, text).unwrap();
    let w = Workload::from_file(&path).expect("the file parses");
    let err = replay(&w).unwrap_err();
    assert!(matches!(&err, EngineError::Add { iteration: 0, op: 1, source: AddError::DuplicateId { .. } }), "{err}");
    assert_eq!(err.to_string(), r#"iteration 0, operation 1: request "a" is already live"#);
    for e in [
        AddError::EmptyPrompt { id: "q\"x".into() },
        AddError::ZeroMaxTokens { id: "z".into() },
        AddError::CannotFit { id: "c".into(), needed: 9, available: 8 },
        AddError::PromptTooLong { id: "p".into(), prompt_len: 70, max_model_len: 64 },
    ] {
        assert!(!e.to_string().contains("RequestId"), "{e}");
    }
    assert_eq!(AddError::EmptyPrompt { id: "q\"x".into() }.to_string(), r#"request "q\"x" has an empty prompt"#);

    let missing = dir.join("hostile-missing.json");
    let e = Workload::from_file(&missing).unwrap_err();
    assert!(matches!(e.source, WorkloadError::Io(_)), "{e}");
    assert!(e.to_string().starts_with(&format!("{}: cannot read the workload: ", missing.display())), "{e}");
    let bad = dir.join("hostile-bad.json");
    std::fs::write(
        &bad,
        r#"{"config": {"max_num_seqs": 0, "max_num_batched_tokens": 1, "block_size": 1,
        "num_blocks": 1, "max_model_len": 2}, "steps": []}"#,
    )
    .unwrap();
    let e = Workload::from_file(&bad).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: invalid workload configuration: max_num_seqs is 0, must be at least 1", bad.display())
    );
}

/// Every numeric field at 0, 1, small, around 2^32 and at the top of its range.
fn hostile() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        2..64u64,
        Just(u64::from(u32::MAX)),
        Just(1 << 32),
        Just(1 << 40),
        Just(1 << 63),
        Just(u64::MAX - 1),
        Just(u64::MAX),
    ]
}

/// Prompt lengths: hostile. A request that really holds millions of blocks takes their memory,
/// as it should: a step may allocate by the blocks handed out so far (see the test), never by
/// the blocks configured.
fn prompt() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), 2..64u64, Just(u64::MAX - 1), Just(u64::MAX)]
}

proptest! {
    #![proptest_config(common::config(regressions!("hostile_config"), 256))]

    /// Any configuration and any requests: `Scheduler::new` accepts or names the value, and
    /// nothing panics, breaks an invariant, or allocates by what is configured rather than
    /// what is used.
    #[test]
    fn no_configuration_or_request_panics_or_allocates_what_it_configures(
        (seqs, budget, block_size, num_blocks, max_model_len, threshold) in
            (hostile(), hostile(), hostile(), hostile(), hostile(), hostile()),
        chunked in any::<bool>(),
        priority in any::<bool>(),
        requests in proptest::collection::vec((prompt(), hostile(), any::<i64>()), 0..6),
        steps in 1..40usize,
    ) {
        let config = SchedulerConfig {
            max_num_seqs: usize::try_from(seqs).unwrap_or(usize::MAX),
            max_num_batched_tokens: budget,
            block_size,
            num_blocks: usize::try_from(num_blocks).unwrap_or(usize::MAX),
            max_model_len,
            long_prefill_token_threshold: threshold,
            enable_chunked_prefill: chunked,
            policy: if priority { Policy::Priority } else { Policy::Fcfs },
            async_scheduling: false,
        };
        let (n, s) = bytes(|| Scheduler::new(config));
        prop_assert!(n < SMALL, "{n} bytes up front for {config:?}");
        let mut s = match s {
            Ok(s) => s,
            Err(e) => {
                prop_assert_eq!(config.validate(), Err(e));
                return Ok(());
            }
        };
        for (k, &(prompt_len, max_tokens, priority)) in requests.iter().enumerate() {
            let (n, _) = bytes(|| s.add_request(NewRequest::new(format!("r{k}"), prompt_len, max_tokens).priority(priority)));
            prop_assert!(n < SMALL, "{n} bytes to add ({prompt_len}, {max_tokens})");
        }
        let mut engine = Engine::new(s);
        for _ in 0..steps {
            let (n, _) = bytes(|| {
                let s = engine.scheduler_mut();
                s.schedule();
                s.update_from_output(|_| false);
            });
            // What is used: every block ever handed out can be in a request's list and in the
            // free list once released (4 bytes each), and either list may grow by doubling,
            // which the allocator counts again: 16 bytes per block at most, whatever
            // `num_blocks` says.
            let issued = engine.scheduler().blocks().issued() as u64;
            prop_assert!(n < SMALL + 16 * issued, "{n} bytes in one step, {issued} blocks handed out so far");
            prop_assert_eq!(engine.scheduler().check_invariants(), Ok(()));
            prop_assert!(engine.drain_limit() >= 1024);
        }
    }
}
