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
pub use crate::model::Endpoint;
use crate::model::RequestId;

/// A whole workload: a configuration and one entry per engine iteration.
///
/// In the file, `config` holds the scheduler's fields and, for two-layer runs (`SPEC.md` §8.1),
/// the API front end's (`api_sample_rate`, `stream_fraction`, `model`) and `step_tracing`; here
/// the latter are [`Workload::api`] and [`Workload::step_tracing`], so that [`SchedulerConfig`]
/// stays a small `Copy` value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "WorkloadRepr")]
pub struct Workload {
    /// The scheduler configuration.
    pub config: SchedulerConfig,
    /// The API front end's configuration (two-layer runs; all absent in a v1 file).
    pub api: ApiConfig,
    /// Engine iterations, in order. After the last one the run continues with empty
    /// iterations until no request is live.
    pub steps: Vec<Iteration>,
    /// Step windows (`config.step_tracing`, `SPEC.md` §8.1 and §12); `None`: off.
    pub step_tracing: Option<StepTracing>,
}

impl Workload {
    /// A one-layer workload without step tracing.
    pub fn new(config: SchedulerConfig, steps: Vec<Iteration>) -> Workload {
        Workload { config, api: ApiConfig::default(), steps, step_tracing: None }
    }
}

/// The step-tracing settings of a workload (`config.step_tracing`): HEAD's three settings and
/// the sampling decisions as recorded, which a replay takes as they are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTracing {
    /// How the summary steps were drawn (`--step-tracing-sample-rate`); informational.
    pub sample_rate: Share,
    /// How the rich steps were drawn among them (`--step-tracing-rich-subsample-rate`);
    /// informational.
    pub rich_subsample_rate: Share,
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

impl StepTracing {
    /// Whether step `s` is summarized.
    pub fn summarized(&self, s: u64) -> bool {
        contains(&self.summary_steps, s)
    }

    /// Whether step `s` is rich (snapshots after its summary).
    pub fn rich(&self, s: u64) -> bool {
        contains(&self.rich_steps, s)
    }

    /// Checks the settings: a closure interval of at least 1 (the rates are [`Share`]s, in
    /// `[0, 1]` by construction).
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

/// The API front end's part of a workload's `config` (`SPEC.md` §8.1). With `sampled` and
/// `stream` recorded on every `add`, the two shares only say how those were drawn.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiConfig {
    /// `--journey-tracing-sample-rate` of the serving layer: the share of requests sampled.
    pub api_sample_rate: Option<Share>,
    /// The share of clients that stream.
    pub stream_fraction: Option<Share>,
    /// The served model (`gen_ai.response.model`); [`ApiConfig::DEFAULT_MODEL`] when absent.
    pub model: Option<String>,
}

impl ApiConfig {
    /// The model of the fixtures' runs.
    pub const DEFAULT_MODEL: &'static str = "facebook/opt-125m";

    /// The served model.
    pub fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(ApiConfig::DEFAULT_MODEL)
    }

    /// Whether any field is set (a two-layer configuration).
    pub fn is_set(&self) -> bool {
        self.api_sample_rate.is_some() || self.stream_fraction.is_some() || self.model.is_some()
    }
}

/// A number in `[0, 1]` (a share or a rate), never NaN, so that it compares as a value.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Share(f64);

impl Eq for Share {}

impl Share {
    /// `value` if it lies in `[0, 1]`.
    pub fn new(value: f64) -> Option<Share> {
        (0.0..=1.0).contains(&value).then_some(Share(value))
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Share {
    type Error = String;
    fn try_from(value: f64) -> Result<Share, String> {
        Share::new(value).ok_or_else(|| format!("{value} is not a share in [0, 1]"))
    }
}

impl From<Share> for f64 {
    fn from(s: Share) -> f64 {
        s.0
    }
}

/// The file form of a workload, read: `config` as one object holding both configurations.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadRepr {
    config: ConfigRepr<serde_json::Value>,
    steps: Vec<Iteration>,
}

/// `config` in the file: the scheduler's fields (`S`), then the API front end's.
#[derive(serde::Serialize, serde::Deserialize)]
struct ConfigRepr<S> {
    #[serde(flatten)]
    scheduler: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_sample_rate: Option<Share>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stream_fraction: Option<Share>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step_tracing: Option<StepTracing>,
}

/// The file form, written: the scheduler's fields in their declared order.
#[derive(serde::Serialize)]
struct WorkloadOut<'a> {
    config: ConfigRepr<&'a SchedulerConfig>,
    steps: &'a [Iteration],
}

impl serde::Serialize for Workload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let api = &self.api;
        WorkloadOut {
            config: ConfigRepr {
                scheduler: &self.config,
                api_sample_rate: api.api_sample_rate,
                stream_fraction: api.stream_fraction,
                model: api.model.clone(),
                step_tracing: self.step_tracing.clone(),
            },
            steps: &self.steps,
        }
        .serialize(serializer)
    }
}

impl TryFrom<WorkloadRepr> for Workload {
    type Error = String;
    fn try_from(w: WorkloadRepr) -> Result<Workload, String> {
        let ConfigRepr { scheduler, api_sample_rate, stream_fraction, model, step_tracing } = w.config;
        // The scheduler's own schema (unknown fields rejected) on what is left of `config`.
        let config: SchedulerConfig = serde_json::from_value(scheduler).map_err(|e| format!("config: {e}"))?;
        Ok(Workload {
            config,
            api: ApiConfig { api_sample_rate, stream_fraction, model },
            steps: w.steps,
            step_tracing,
        })
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
///
/// The fields after `ignore_eos` are the v2 extensions (`SPEC.md` §8.1), all optional: `sampled`
/// for both kinds of run, the others only for two-layer runs (the API front end above the
/// engine: `ApiFront`, feature `tracing`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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
    /// The API layer's sampling decision: `true` puts `x-vllm-journey-sampled: "1"` in the
    /// request's trace headers, `false` leaves it out (no core span under the `head` wire
    /// profile; no API span either in a two-layer run). Absent: sampled, as a v1 replay is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<bool>,
    /// Two-layer: the client's `stream` flag (absent: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Two-layer: the endpoint (absent: chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    /// Two-layer: parallel samples (absent: 1); the front end fans the request out into `n`
    /// engine requests `<j>_<core id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Two-layer, completions only: a batch of prompt lengths, one engine request per prompt
    /// (`prompt_len` repeats `prompts[0]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<Vec<u64>>,
}

impl AddOp {
    /// The request this operation adds to the scheduler directly (a one-layer run): its
    /// `traceparent` and, unless `sampled` is `false`, the sampling header.
    pub fn to_request(&self) -> NewRequest {
        let sampled = self.sampled.unwrap_or(true);
        let trace = match (&self.traceparent, sampled) {
            (None, false) => None,
            (tp, journey_sampled) => Some(TraceHeaders {
                traceparent: tp.clone().unwrap_or_default(),
                tracestate: self.tracestate.clone(),
                journey_sampled,
            }),
        };
        NewRequest {
            id: RequestId(self.id.clone()),
            prompt_len: self.prompt_len,
            max_tokens: self.max_tokens,
            priority: self.priority,
            ignore_eos: self.ignore_eos,
            trace,
        }
    }

    /// Whether the operation uses a field that only a two-layer run gives meaning to.
    pub fn is_two_layer(&self) -> bool {
        self.stream.is_some() || self.endpoint.is_some() || self.n.is_some() || self.prompts.is_some()
    }

    /// The endpoint (chat when absent).
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint.unwrap_or_default()
    }

    /// The prompt lengths of its engine requests: `prompts`, or `[prompt_len]`.
    pub fn prompt_lens(&self) -> Vec<u64> {
        match &self.prompts {
            Some(p) if !p.is_empty() => p.clone(),
            Some(_) | None => vec![self.prompt_len],
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

    /// Whether the workload is a two-layer run (`SPEC.md` §8.1): its `config` has an API field,
    /// or an `add` has `stream`, `endpoint`, `n` or `prompts`. (`sampled` alone is not: a
    /// one-layer run records it too, for the core layer's sampling gate.)
    pub fn is_two_layer(&self) -> bool {
        self.api.is_set()
            || self.steps.iter().flat_map(|it| &it.ops).any(|op| matches!(op, Op::Add(a) if a.is_two_layer()))
    }

    /// The workload as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail (a NaN rate becomes `null`).
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"config": {"max_num_seqs": 2, "max_num_batched_tokens": 64, "block_size": 16,
        "num_blocks": 8, "max_model_len": 128},
        "steps": [{"ops": [{"op": "add", "id": "r1", "prompt_len": 5, "max_tokens": 2, "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}]}]}"#;

    const TWO_LAYER: &str = r#"{"config":{"max_num_seqs":4,"max_num_batched_tokens":32,"block_size":16,"num_blocks":30,
        "max_model_len":2048,"api_sample_rate":0.5,"stream_fraction":1,"model":"m"},
        "steps":[{"ops":[{"op":"add","id":"b","endpoint":"completions","prompt_len":12,"prompts":[12,20],"n":2,
        "max_tokens":3,"stream":false,"sampled":true},{"op":"add","id":"c","prompt_len":10,"max_tokens":4,"sampled":false}]},
        {"in_flight":[{"op":"finish","id":"b","status":"aborted"}]}]}"#;

    #[test]
    fn a_v1_file_reads_as_before_and_writes_no_new_field() {
        let w = Workload::from_json(V1).unwrap();
        assert!(!w.is_two_layer());
        assert_eq!(w.api, ApiConfig::default());
        let Op::Add(a) = &w.steps[0].ops[0] else { panic!("an add") };
        assert_eq!((a.sampled, a.stream, a.endpoint, a.n, &a.prompts), (None, None, None, None, &None));
        let json = w.to_json();
        for new in
            ["api_sample_rate", "stream_fraction", "\"model\"", "sampled", "stream", "endpoint", "prompts", "\"n\""]
        {
            assert!(!json.contains(new), "{new} in {json}");
        }
        assert!(json.starts_with(r#"{"config":{"max_num_seqs":2,"max_num_batched_tokens":64"#), "{json}");
        assert_eq!(Workload::from_json(&json).unwrap(), w);
        // No `sampled`: the header is there, as a v1 replay harness would send it.
        let r = a.to_request();
        assert!(r.trace.as_ref().is_some_and(|t| t.journey_sampled));
    }

    #[test]
    fn the_two_layer_fields_round_trip() {
        let w = Workload::from_json(TWO_LAYER).unwrap();
        assert!(w.is_two_layer());
        assert_eq!(w.api.api_sample_rate.map(Share::get), Some(0.5));
        assert_eq!(w.api.stream_fraction.map(Share::get), Some(1.0), "an integer share reads as a double");
        assert_eq!(w.api.model(), "m");
        let Op::Add(b) = &w.steps[0].ops[0] else { panic!("an add") };
        assert_eq!((b.endpoint(), b.n, b.stream, b.sampled), (Endpoint::Completions, Some(2), Some(false), Some(true)));
        assert_eq!(b.prompt_lens(), [12, 20]);
        let Op::Add(c) = &w.steps[0].ops[1] else { panic!("an add") };
        assert_eq!((c.endpoint(), c.prompt_lens()), (Endpoint::Chat, vec![10]));
        assert_eq!(c.to_request().trace, None, "unsampled without traceparent: no header at all");
        assert_eq!(Workload::from_json(&w.to_json()).unwrap(), w);
    }

    #[test]
    fn bad_api_fields_are_rejected_with_their_name() {
        let bad_rate = TWO_LAYER.replace("0.5", "1.5");
        let e = Workload::from_json(&bad_rate).unwrap_err().to_string();
        assert!(e.contains("1.5 is not a share"), "{e}");
        let unknown = V1.replace("\"num_blocks\": 8", "\"num_blocks\": 8, \"nope\": 1");
        let e = Workload::from_json(&unknown).unwrap_err().to_string();
        assert!(e.contains("unknown field `nope`"), "{e}");
        let bad_endpoint = TWO_LAYER.replace("\"completions\"", "\"embed\"");
        assert!(Workload::from_json(&bad_endpoint).is_err());
        let unknown_add = V1.replace("\"max_tokens\": 2", "\"max_tokens\": 2, \"streaming\": true");
        let e = Workload::from_json(&unknown_add).unwrap_err().to_string();
        assert!(e.contains("streaming"), "{e}");
    }

    #[test]
    fn the_endpoints_name_their_routes_and_ids() {
        assert_eq!((Endpoint::Chat.route(), Endpoint::Chat.id_prefix()), ("/v1/chat/completions", "chatcmpl-"));
        assert_eq!((Endpoint::Completions.route(), Endpoint::Completions.id_prefix()), ("/v1/completions", "cmpl-"));
    }
}
