//! The bounded explorer (`journey_spec::explore`) on three configurations.

use journey_spec::explore::{ExploreConfig, Report, explore};

fn run(config: &ExploreConfig) -> Report {
    let depth = std::env::var("EXPLORE_DEPTH").ok().and_then(|d| d.parse().ok());
    let mut config = config.clone();
    if let Some(d) = depth {
        config.depth = d;
    }
    let report = explore(&config, &mut |p| eprintln!("{}: depth {} states {} transitions {} in {:?}", config.name, p.depth, p.states, p.transitions, p.elapsed)).expect("valid configuration");
    if let Some(c) = &report.counterexample {
        panic!("{}: {c}", config.name);
    }
    eprintln!("{}: {} states, depth {}, {:?}, missing {:?}", report.name, report.unique_states, report.max_depth, report.elapsed, report.coverage.missing());
    report
}

#[test]
fn tiny_kv() {
    run(&ExploreConfig::tiny_kv());
}

#[test]
fn no_chunking() {
    run(&ExploreConfig::no_chunking());
}

#[test]
fn priority() {
    run(&ExploreConfig::priority());
}
