//! What the bounded explorer costs (`BENCHMARKS.md`, "Exhaustive exploration").
//!
//! - `explore/<config>`: a whole exploration of a preset at a reduced bound, throughput in
//!   unique states (so criterion's elements/s is states/s on one core).
//! - Before the measurements, one run per preset at its full bound prints the peak heap and
//!   the heap per unique state, read from a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use journey_spec::explore::{ExploreConfig, explore};

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on as it is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn presets() -> [ExploreConfig; 5] {
    [
        ExploreConfig::tiny_kv(),
        ExploreConfig::no_chunking(),
        ExploreConfig::priority(),
        ExploreConfig::tiny_kv_async(),
        ExploreConfig::priority_async(),
    ]
}

fn memory() {
    for config in presets() {
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let report = explore(&config, &mut |_| {}).expect("valid");
        let peak = PEAK.load(Ordering::Relaxed) - before;
        println!(
            "explore/{}: {} unique states, {} transitions, {:.0} states/s, peak heap {:.1} MiB, {:.0} bytes per state",
            config.name,
            report.unique_states,
            report.transitions,
            report.states_per_second(),
            peak as f64 / (1 << 20) as f64,
            peak as f64 / report.unique_states as f64
        );
    }
}

fn throughput(c: &mut Criterion) {
    memory();
    let mut g = c.benchmark_group("explore");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for mut config in presets() {
        config.depth = 14;
        config.max_requests = 3;
        let states = explore(&config, &mut |_| {}).expect("valid").unique_states;
        g.throughput(Throughput::Elements(states as u64));
        g.bench_function(config.name.clone(), |b| b.iter(|| black_box(explore(&config, &mut |_| {}))));
    }
    g.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
