//! A fixed exploration for instruction counts (`BENCHMARKS.md`, "Exhaustive exploration"):
//! the five presets at one bound, counted only inside `measured` (`--toggle-collect`).
//!
//! ```sh
//! cargo build --release --features explore --example explore_probe
//! valgrind --tool=callgrind --toggle-collect='explore_probe::measured*' \
//!     target/release/examples/explore_probe [depth]
//! ```
//!
//! Each preset is explored at `depth` (10 unless given) with at most 3 requests. Prints the
//! unique states and transitions of each, for the record.

use journey_spec::explore::{ExploreConfig, Report, explore};

#[inline(never)]
fn measured(configs: &[ExploreConfig]) -> Vec<Report> {
    configs.iter().filter_map(|c| explore(c, &mut |_| {}).ok()).collect()
}

fn main() {
    let depth = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let configs: Vec<ExploreConfig> = [
        ExploreConfig::tiny_kv(),
        ExploreConfig::no_chunking(),
        ExploreConfig::priority(),
        ExploreConfig::tiny_kv_async(),
        ExploreConfig::priority_async(),
    ]
    .into_iter()
    .map(|mut c| {
        c.depth = depth;
        c.max_requests = 3;
        c
    })
    .collect();
    let reports = measured(&configs);
    let (mut states, mut transitions) = (0, 0);
    for r in &reports {
        println!("{}: {} unique states, {} transitions", r.name, r.unique_states, r.transitions);
        states += r.unique_states;
        transitions += r.transitions;
    }
    println!("total: {states} unique states, {transitions} transitions");
}
