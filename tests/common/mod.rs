//! Shared test configuration.
#![allow(dead_code)]

use proptest::test_runner::{Config, FileFailurePersistence};

/// The regression file of a test binary: `proptest-regressions/<name>.txt` at the crate root,
/// committed so that every shrunk failure stays a test.
#[macro_export]
macro_rules! regressions {
    ($name:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/", $name, ".txt")
    };
}

/// A proptest configuration with `default_cases` cases (raised by `PROPTEST_CASES`), failures
/// persisted to `file`, and a shrink budget that does not depend on the case count.
pub fn config(file: &'static str, default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default_cases);
    Config {
        cases,
        max_shrink_iters: 20_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..Config::default()
    }
}

/// The small configuration most scenario tests start from: 8 sequences, a 64-token budget, 16
/// KV blocks of 4 tokens, `max_model_len` 64, chunked prefill, fcfs.
pub fn small_config() -> journey_spec::SchedulerConfig {
    journey_spec::SchedulerConfig {
        max_num_seqs: 8,
        max_num_batched_tokens: 64,
        block_size: 4,
        num_blocks: 16,
        max_model_len: 64,
        long_prefill_token_threshold: 0,
        enable_chunked_prefill: true,
        policy: journey_spec::Policy::Fcfs,
        async_scheduling: false,
    }
}
