//! Scheduler configuration (`SPEC.md` §6), validated before a scheduler exists.

use std::fmt;

/// How the waiting queue is ordered and which running request is preempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// First come, first served: the queue is in arrival order, preempted requests go back to
    /// its front, and the victim of a preemption is the last running request.
    #[default]
    Fcfs,
    /// Lower `priority` value first, ties by arrival; the victim is the running request with
    /// the worst `(priority, arrival)`.
    Priority,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Fcfs => "fcfs",
            Policy::Priority => "priority",
        })
    }
}

/// The scheduler's configuration, with the field names of the workload file (`SPEC.md` §8).
///
/// ```
/// use journey_spec::{SchedulerConfig, ConfigError};
/// let config = SchedulerConfig { num_blocks: 0, ..SchedulerConfig::default() };
/// assert_eq!(config.validate(), Err(ConfigError::TooSmall { field: "num_blocks", value: 0, min: 1 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Most requests in the running list at once (a limit only: the running list grows with
    /// the requests that run, whatever this is).
    pub max_num_seqs: usize,
    /// The token budget of one step.
    pub max_num_batched_tokens: u64,
    /// Tokens per KV block.
    pub block_size: u64,
    /// Usable KV blocks (vLLM's `num_gpu_blocks` minus its null block), at most `u32::MAX`.
    /// The pool takes memory for the blocks in use, not for all of them.
    pub num_blocks: usize,
    /// Longest sequence (prompt plus outputs) a request may reach.
    pub max_model_len: u64,
    /// Most tokens a request is given in one step (0 = no limit).
    #[serde(default)]
    pub long_prefill_token_threshold: u64,
    /// Whether a prompt may be split across steps.
    #[serde(default = "yes")]
    pub enable_chunked_prefill: bool,
    /// Queue order and victim choice.
    #[serde(default)]
    pub policy: Policy,
    /// Async scheduling (`SPEC.md` §8.1, vLLM's `AsyncScheduler`): `schedule()` queues its batch
    /// and counts output placeholders; `update_from_output` applies the oldest batch in flight.
    /// Off: the synchronous engine of `SPEC.md` §6.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub async_scheduling: bool,
}

fn yes() -> bool {
    true
}

impl Default for SchedulerConfig {
    /// vLLM's scheduler-test defaults: 16 sequences, 8192-token budget, 10,000 blocks of 16.
    fn default() -> Self {
        SchedulerConfig {
            max_num_seqs: 16,
            max_num_batched_tokens: 8192,
            block_size: 16,
            num_blocks: 10_000,
            max_model_len: 8192,
            long_prefill_token_threshold: 0,
            enable_chunked_prefill: true,
            policy: Policy::Fcfs,
            async_scheduling: false,
        }
    }
}

/// A configuration value that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A field is below the smallest value that makes sense.
    #[error("{field} is {value}, must be at least {min}")]
    TooSmall {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The smallest sensible value.
        min: u64,
    },
    /// A field is above the largest value the reference system supports.
    #[error("{field} is {value}, must be at most {max}")]
    TooLarge {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The largest supported value.
        max: u64,
    },
    /// Without chunked prefill a prompt must fit one step's budget, so the budget must cover
    /// the longest prompt (vLLM rejects this configuration too).
    #[error(
        "max_num_batched_tokens ({budget}) is smaller than max_model_len ({max_model_len}) while chunked prefill is off: long prompts could never be scheduled"
    )]
    BudgetBelowModelLen {
        /// `max_num_batched_tokens`.
        budget: u64,
        /// `max_model_len`.
        max_model_len: u64,
    },
}

impl SchedulerConfig {
    /// Checks every value; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let checks = [
            ("max_num_seqs", self.max_num_seqs as u64, 1),
            ("max_num_batched_tokens", self.max_num_batched_tokens, 1),
            ("block_size", self.block_size, 1),
            ("num_blocks", self.num_blocks as u64, 1),
            // A prompt must be shorter than max_model_len, so 1 admits no request at all.
            ("max_model_len", self.max_model_len, 2),
        ];
        if let Some(&(field, value, min)) = checks.iter().find(|(_, value, min)| value < min) {
            return Err(ConfigError::TooSmall { field, value, min });
        }
        // Block ids are 32-bit (a request holds 4 bytes per block).
        if self.num_blocks as u64 > u64::from(u32::MAX) {
            return Err(ConfigError::TooLarge {
                field: "num_blocks",
                value: self.num_blocks as u64,
                max: u32::MAX.into(),
            });
        }
        if !self.enable_chunked_prefill && self.max_num_batched_tokens < self.max_model_len {
            return Err(ConfigError::BudgetBelowModelLen {
                budget: self.max_num_batched_tokens,
                max_model_len: self.max_model_len,
            });
        }
        Ok(())
    }

    /// KV blocks needed to hold `tokens` tokens.
    pub fn blocks_for(&self, tokens: u64) -> usize {
        usize::try_from(tokens.div_ceil(self.block_size)).unwrap_or(usize::MAX)
    }
}
