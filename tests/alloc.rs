//! Allocations and tracing state of long runs (`BENCHMARKS.md`): per step, the scheduler's work
//! grows with the requests it touches, not with the requests it has seen, and allocates nothing
//! in steady state; tracing state ends with its request.
//!
//! A counting global allocator (this test binary only) counts the allocations of the calling
//! thread, so the tests can run in parallel.

#[path = "../benches/support/steady.rs"]
mod steady;
#[cfg(feature = "tracing")]
#[path = "../benches/support/tracing.rs"]
mod tracing;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use steady::Steady;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while the thread's locals are being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// thread-local `Cell` that needs no allocation and has no destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
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

/// Allocations (and reallocations) made by `f` on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    (ALLOCATIONS.with(Cell::get) - before, r)
}

/// Iterations counted per load.
const ITERATIONS: usize = 500;

/// Counts a warmed-up load over [`ITERATIONS`]: (allocations in `schedule()` +
/// `update_from_output`, allocations in the arrivals, requests that arrived).
fn count_load(load: &mut Steady) -> (u64, u64, u64) {
    let (mut stepping, mut arriving) = (0, 0);
    let added = load.added();
    for _ in 0..ITERATIONS {
        arriving += allocations(|| load.arrive()).0;
        stepping += allocations(|| load.step()).0;
    }
    (stepping, arriving, load.added() - added)
}

#[test]
fn untraced_steady_steps_allocate_nothing_and_arrivals_a_constant_per_request() {
    let mut per_arrival = Vec::new();
    for live in [16, 1024] {
        let mut load = Steady::warm(live, 7);
        let (stepping, arriving, arrived) = count_load(&mut load);
        assert!(arrived > 0, "{live}: the load has churn");
        assert_eq!(stepping, 0, "{live} live requests: schedule() and update_from_output allocated");
        assert_eq!(arriving % arrived, 0, "{live}: {arriving} allocations for {arrived} arrivals");
        per_arrival.push(arriving / arrived);
    }
    // The driver's id string (two: `format!` grows it once), the scheduler's shared id and the
    // request's KV block list, whatever the live count.
    assert_eq!(per_arrival[0], per_arrival[1], "allocations per arrival depend on the live count");
    assert!(per_arrival[0] <= 4, "{} allocations per arrival", per_arrival[0]);
}

/// Decode steps emit no journey event, so they allocate nothing under any tracing
/// configuration: 256 requests that all have their first token and are far from their caps.
#[cfg(feature = "tracing")]
#[test]
fn decode_steps_allocate_nothing_under_any_tracing() {
    use journey_spec::{NewRequest, Scheduler};
    for t in tracing::Tracing::ALL {
        let mut s = Scheduler::new(steady::config(256)).expect("valid config");
        let _provider = t.attach(&mut s);
        for k in 0..256 {
            s.add_request(NewRequest::new(format!("d{k}"), 100, 1000)).expect("fits");
        }
        let step = |s: &mut Scheduler| {
            s.schedule();
            s.update_from_output(|_| false);
            if let Some(e) = s.emitter_mut() {
                e.drain();
            }
        };
        for _ in 0..20 {
            step(&mut s); // prefill, first tokens, buffers at their working size
        }
        let (n, ()) = allocations(|| (0..200).for_each(|_| step(&mut s)));
        assert_eq!(n, 0, "{}: decode steps allocated", t.name());
    }
}

/// Allocations per request with tracing on, at 256 live requests: printed for `BENCHMARKS.md`
/// (`cargo test --test alloc -- --nocapture`), and checked not to grow with time: two windows
/// of the same long run allocate the same per request.
#[cfg(feature = "tracing")]
#[test]
fn traced_allocations_are_a_constant_per_request() {
    use journey_spec::Scheduler;
    for t in tracing::Tracing::ALL {
        let mut s = Scheduler::new(steady::config(256)).expect("valid config");
        let _provider = t.attach(&mut s);
        let mut load = Steady::new(s, 7);
        let window = |load: &mut Steady| {
            let (mut n, mut stepping) = (0, 0);
            let added = load.added();
            for _ in 0..ITERATIONS {
                n += allocations(|| load.arrive()).0;
                let (k, ()) = allocations(|| {
                    load.step();
                    if let Some(e) = load.scheduler_mut().emitter_mut() {
                        e.drain();
                    }
                });
                stepping += k;
            }
            (n + stepping, stepping, load.added() - added)
        };
        load.warm_up();
        let (early, early_stepping, early_requests) = window(&mut load);
        for _ in 0..4 {
            window(&mut load);
        }
        let (late, _, late_requests) = window(&mut load);
        let per_request = |n: u64, r: u64| n as f64 / r as f64;
        println!(
            "{:>20}: {:6.2} allocations per iteration ({:.2} in schedule + update), {:5.2} per request",
            t.name(),
            early as f64 / ITERATIONS as f64,
            early_stepping as f64 / ITERATIONS as f64,
            per_request(early, early_requests),
        );
        let (a, b) = (per_request(early, early_requests), per_request(late, late_requests));
        assert!((a - b).abs() < 0.05 * a, "{}: {a:.2} then {b:.2} allocations per request", t.name());
        let e = load.scheduler().emitter().map_or(0, |e| e.live());
        assert!(t == tracing::Tracing::Off || e == load.scheduler().num_live(), "{}: {e} tracked", t.name());
    }
}

/// After a run, no per-request tracing state is left, under every tracing configuration; during
/// it, the emitter tracks exactly the live requests. The workload has every termination path
/// the synthetic generator makes: stops, length caps, aborts between steps and in flight,
/// errors, ignored requests, preemptions.
#[cfg(feature = "tracing")]
#[test]
fn tracing_state_ends_with_every_request() {
    use journey_spec::synth::{SynthParams, generate};
    use journey_spec::{Engine, Scheduler};
    let w = generate(&SynthParams { requests: 400, abort_share: 0.3, ..SynthParams::default() }).expect("drains");
    for t in tracing::Tracing::ALL {
        let mut s = Scheduler::new(w.config).expect("valid config");
        let _provider = t.attach(&mut s);
        let mut engine = Engine::new(s);
        engine
            .run(&w, |k, _, s| {
                let tracked = s.emitter().map_or(s.num_live(), |e| e.live());
                assert_eq!(tracked, s.num_live(), "{}, iteration {k}", t.name());
                if let Some(e) = s.emitter_mut() {
                    e.drain();
                }
            })
            .expect("drains");
        let s = engine.scheduler();
        assert_eq!(s.num_live(), 0);
        assert_eq!(s.emitter().map_or(0, |e| e.live()), 0, "{}: tracing state left after the run", t.name());
    }
}
