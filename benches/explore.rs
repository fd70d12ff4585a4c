//! What the bounded explorer costs (`BENCHMARKS.md`, "Exhaustive exploration").
//!
//! - `explore/<config>`: a whole exploration of a preset at a reduced bound, throughput in
//!   unique states (so criterion's elements/s is states/s on one core).
//! - Before the measurements, one run per preset at its full bound prints the peak heap and
//!   the heap per unique state, read from a counting allocator, and the rates (wall) of unique
//!   states and of transitions (stateright's `states`: every successor, before deduplication).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use journey_spec::explore::{ExploreConfig, explore};

#[path = "support/counting.rs"]
mod counting;

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
        let before = counting::reset_peak();
        let report = explore(&config, &mut |_| {}).expect("valid");
        let peak = counting::peak() - before;
        println!(
            "explore/{}: {} unique states, {} transitions, {:.0} unique states/s, {:.0} transitions/s, peak heap {:.1} MiB, {:.0} bytes per state",
            config.name,
            report.unique_states,
            report.transitions,
            report.states_per_second(),
            report.transitions_per_second(),
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
