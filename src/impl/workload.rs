//! Workload files (`SPEC.md` §8): a replayable record of everything that decides a journey.
//!
//! ```
//! use journey_spec::Workload;
//! let w = Workload::from_json(r#"{"config": {"max_num_seqs": 2, "max_num_batched_tokens": 64,
//!     "block_size": 16, "num_blocks": 8, "max_model_len": 128},
//!     "steps": [{"ops": [{"op": "add", "id": "r1", "prompt_len": 5, "max_tokens": 2}]}, {"eos": ["r1"]}]}"#)?;
//! assert_eq!(w.steps.len(), 2);
//! assert_eq!(Workload::from_json(&w.to_json())?, w);
//! # Ok::<(), journey_spec::WorkloadError>(())
//! ```

use std::io;
use std::path::{Path, PathBuf};

use super::config::{ConfigError, SchedulerConfig};
use super::request::{FinishReason, NewRequest, TraceHeaders};
use crate::model::RequestId;

/// A whole workload: a configuration and one entry per engine iteration.
///
/// In the file, `step_tracing` is a member of `config` (`SPEC.md` §8.1); here it is a field of
/// its own, so that [`SchedulerConfig`] stays a small `Copy` value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "WorkloadFile", into = "WorkloadFile")]
pub struct Workload {
    /// The scheduler configuration.
    pub config: SchedulerConfig,
    /// Engine iterations, in order. After the last one the run continues with empty
    /// iterations until no request is live.
    pub steps: Vec<Iteration>,
    /// Step windows (`config.step_tracing`, `SPEC.md` §8.1 and §12); `None`: off.
    pub step_tracing: Option<StepTracing>,
}

impl Workload {
    /// A workload without step tracing.
    pub fn new(config: SchedulerConfig, steps: Vec<Iteration>) -> Workload {
        Workload { config, steps, step_tracing: None }
    }
}

/// The step-tracing settings of a workload (`config.step_tracing`): HEAD's three settings and
/// the sampling decisions as recorded, which a replay takes as they are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTracing {
    /// How the summary steps were drawn (`--step-tracing-sample-rate`); informational.
    pub sample_rate: Rate,
    /// How the rich steps were drawn among them (`--step-tracing-rich-subsample-rate`);
    /// informational.
    pub rich_subsample_rate: Rate,
    /// `schedule()` calls per window before a closure is considered
    /// (`--step-tracing-closure-interval`).
    pub closure_interval: u64,
    /// The steps whose `schedule()` emits a `step.BATCH_SUMMARY`, ascending.
    #[serde(default)]
    pub summary_steps: Vec<u64>,
    /// The summarized steps that also emit one `step.REQUEST_SNAPSHOT` per running request.
    #[serde(default)]
    pub rich_steps: Vec<u64>,
}

/// A sampling rate as written in a workload file: a float kept bit for bit, so that a workload
/// with rates stays `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Rate(pub f64);

impl Eq for Rate {}

impl StepTracing {
    /// Whether step `s` is summarized.
    pub fn summarized(&self, s: u64) -> bool {
        contains(&self.summary_steps, s)
    }

    /// Whether step `s` is rich (snapshots after its summary).
    pub fn rich(&self, s: u64) -> bool {
        contains(&self.rich_steps, s)
    }

    /// Checks the settings: a closure interval of at least 1, rates within `[0, 1]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.closure_interval == 0 {
            return Err(ConfigError::TooSmall { field: "step_tracing.closure_interval", value: 0, min: 1 });
        }
        Ok(())
    }
}

/// Membership in a step list (a scan: the lists of a file need not be sorted; the step tracer
/// sorts its own copy once and walks it).
fn contains(steps: &[u64], s: u64) -> bool {
    steps.contains(&s)
}

/// The file's shape: `step_tracing` inside `config`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    config: ConfigFile,
    steps: Vec<Iteration>,
}

#[derive(serde::Serialize)]
struct ConfigFile {
    #[serde(flatten)]
    scheduler: SchedulerConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_tracing: Option<StepTracing>,
}

impl<'de> serde::Deserialize<'de> for ConfigFile {
    /// `step_tracing` is taken out first, and the rest read as a [`SchedulerConfig`], which
    /// rejects unknown keys (serde's `flatten` would let them through).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ConfigFile, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let step_tracing = match map.remove("step_tracing") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                serde::Deserialize::deserialize(v)
                    .map_err(|e| D::Error::custom(format!("config.step_tracing: {e}")))?,
            ),
        };
        let scheduler = serde::Deserialize::deserialize(serde_json::Value::Object(map)).map_err(D::Error::custom)?;
        Ok(ConfigFile { scheduler, step_tracing })
    }
}

impl From<WorkloadFile> for Workload {
    fn from(f: WorkloadFile) -> Workload {
        Workload { config: f.config.scheduler, steps: f.steps, step_tracing: f.config.step_tracing }
    }
}

impl From<Workload> for WorkloadFile {
    fn from(w: Workload) -> WorkloadFile {
        WorkloadFile { config: ConfigFile { scheduler: w.config, step_tracing: w.step_tracing }, steps: w.steps }
    }
}

/// One engine iteration of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iteration {
    /// Operations before `schedule()`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<Op>,
    /// Finishes that land while the model runs (after `schedule()`, before the tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight: Vec<InFlight>,
    /// Requests whose token in this iteration is EOS (ignored for requests that get none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eos: Vec<String>,
}

/// An operation before `schedule()`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// Add a request.
    Add(AddOp),
    /// Finish a live request (a finished or unknown id does nothing).
    Finish(FinishOp),
    /// Preempt every running request.
    Reset,
}

/// An in-flight operation: only finishes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum InFlight {
    /// Finish a request while the model runs: it gets no token from this iteration.
    Finish(FinishOp),
}

/// The `add` operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddOp {
    /// Request id.
    pub id: String,
    /// Prompt length.
    pub prompt_len: u64,
    /// Generation cap.
    pub max_tokens: u64,
    /// Priority (default 0).
    #[serde(default)]
    pub priority: i64,
    /// W3C `traceparent` of the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C `tracestate` of the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// Ignore EOS tokens (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_eos: bool,
}

impl AddOp {
    /// The request this operation adds.
    pub fn to_request(&self) -> NewRequest {
        NewRequest {
            id: RequestId(self.id.clone()),
            prompt_len: self.prompt_len,
            max_tokens: self.max_tokens,
            priority: self.priority,
            ignore_eos: self.ignore_eos,
            trace: self
                .traceparent
                .as_ref()
                .map(|tp| TraceHeaders { traceparent: tp.clone(), tracestate: self.tracestate.clone() }),
        }
    }
}

/// The `finish` operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishOp {
    /// Request id.
    pub id: String,
    /// `aborted`, `error` or `ignored`.
    pub status: FinishReason,
}

/// A workload file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// Not valid JSON, or not the workload schema (serde's message names line and column).
    #[error("invalid workload: {0}")]
    Json(#[from] serde_json::Error),
    /// The configuration is rejected.
    #[error("invalid workload configuration: {0}")]
    Config(#[from] ConfigError),
    /// The file cannot be read.
    #[error("cannot read the workload: {0}")]
    Io(#[from] io::Error),
}

/// A workload file that cannot be used: its path and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct WorkloadFileError {
    /// The file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub source: WorkloadError,
}

impl Workload {
    /// Parses a workload and validates its configuration.
    pub fn from_json(text: &str) -> Result<Workload, WorkloadError> {
        let w: Workload = serde_json::from_str(text)?;
        w.config.validate()?;
        if let Some(t) = &w.step_tracing {
            t.validate()?;
        }
        Ok(w)
    }

    /// Reads a workload file ([`Workload::from_json`] on its content); errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Workload, WorkloadFileError> {
        let path = path.as_ref();
        let read = std::fs::read_to_string(path).map_err(WorkloadError::from);
        read.and_then(|text| Workload::from_json(&text))
            .map_err(|source| WorkloadFileError { path: path.to_owned(), source })
    }

    /// The workload as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail (a NaN rate becomes `null`).
        serde_json::to_string(self).unwrap_or_default()
    }
}
