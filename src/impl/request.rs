//! Requests as the scheduler holds them, and the handles that name them.

use std::fmt;
use std::sync::Arc;

use crate::model::{FinishStatus, RequestId};

use super::kv::BlockId;

/// A live request's place in the scheduler: a slot index and the generation of that slot, so a
/// handle kept after its request finished never names a newer request that reused the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

impl Handle {
    /// The slot index (dense, reused after a request finishes).
    pub fn slot(self) -> usize {
        self.slot as usize
    }
}

/// The trace headers of a request: W3C trace context, whose span becomes the parent of its core
/// span (an empty `traceparent` is no header: a root span), and the fork's sampling header.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TraceHeaders {
    /// `traceparent`, e.g. `00-<32 hex>-<16 hex>-01`.
    pub traceparent: String,
    /// `tracestate`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// `x-vllm-journey-sampled: "1"`: the API layer sampled the request. The `head` wire
    /// profile creates a core span only for requests that carry it (`SPEC.md` §9.1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub journey_sampled: bool,
}

impl TraceHeaders {
    /// The value of the sampling header the API layer injects.
    pub const SAMPLED_HEADER: &'static str = "x-vllm-journey-sampled";
}

/// A request to add to the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// Its id; must not be live already.
    pub id: RequestId,
    /// Prompt length in tokens (at least 1, below `max_model_len`).
    pub prompt_len: u64,
    /// Generation cap (at least 1).
    pub max_tokens: u64,
    /// Priority under the `priority` policy: lower values first.
    pub priority: i64,
    /// Whether EOS tokens are ignored (then only the caps end the request naturally).
    pub ignore_eos: bool,
    /// Trace context of the caller, if any.
    pub trace: Option<TraceHeaders>,
}

impl NewRequest {
    /// A request with priority 0, EOS honoured and no trace context.
    pub fn new(id: impl Into<RequestId>, prompt_len: u64, max_tokens: u64) -> NewRequest {
        NewRequest { id: id.into(), prompt_len, max_tokens, priority: 0, ignore_eos: false, trace: None }
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: i64) -> NewRequest {
        self.priority = priority;
        self
    }

    /// Sets the trace context.
    pub fn traceparent(mut self, traceparent: impl Into<String>) -> NewRequest {
        let journey_sampled = self.trace.as_ref().is_some_and(|t| t.journey_sampled);
        self.trace = Some(TraceHeaders { traceparent: traceparent.into(), tracestate: None, journey_sampled });
        self
    }

    /// Sets or clears the sampling header `x-vllm-journey-sampled: "1"` (keeping the W3C
    /// headers).
    pub fn journey_sampled(mut self, sampled: bool) -> NewRequest {
        match &mut self.trace {
            Some(t) => t.journey_sampled = sampled,
            None if sampled => {
                self.trace = Some(TraceHeaders { journey_sampled: true, ..TraceHeaders::default() });
            }
            None => {}
        }
        self
    }
}

/// Where a live request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// In the waiting queue, never run.
    Waiting,
    /// In the running list.
    Running,
    /// Back in the waiting queue after a preemption.
    Preempted,
}

/// How a request is ended from outside the model's tokens (`finish_requests`). Natural
/// statuses (`stopped`, `length`) come only from tokens and caps, so they are not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// The client aborted.
    Aborted,
    /// The engine failed the request.
    Error,
    /// The request was ignored.
    Ignored,
}

impl FinishReason {
    /// All reasons.
    pub const ALL: [FinishReason; 3] = [FinishReason::Aborted, FinishReason::Error, FinishReason::Ignored];
}

impl From<FinishReason> for FinishStatus {
    fn from(r: FinishReason) -> FinishStatus {
        match r {
            FinishReason::Aborted => FinishStatus::Aborted,
            FinishReason::Error => FinishStatus::Error,
            FinishReason::Ignored => FinishStatus::Ignored,
        }
    }
}

impl fmt::Display for FinishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        FinishStatus::from(*self).fmt(f)
    }
}

/// A live request.
#[derive(Debug)]
pub struct Request {
    pub(crate) id: Arc<str>,
    pub(crate) prompt_len: u64,
    pub(crate) max_tokens: u64,
    /// `prompt_len + max_tokens`, saturating: the known tokens at which `max_tokens` is
    /// reached (kept for the async look-ahead of `schedule()`, which tests it per step).
    pub(crate) max_total: u64,
    pub(crate) priority: i64,
    pub(crate) arrival: u64,
    pub(crate) ignore_eos: bool,
    pub(crate) status: Status,
    pub(crate) num_computed: u64,
    pub(crate) num_output: u64,
    pub(crate) num_preemptions: u64,
    /// Tokens scheduled but not yet produced (async scheduling; always 0 otherwise).
    pub(crate) num_output_placeholders: u64,
    /// Set by a reset under async scheduling: the next token a batch delivers is thrown away.
    pub(crate) discard_latest_async_tokens: bool,
    pub(crate) blocks: Vec<BlockId>,
    pub(crate) trace: Option<TraceHeaders>,
}

// By hand for `clone_from`, which reuses the block list (the explorer's copies of a state).
impl Clone for Request {
    fn clone(&self) -> Request {
        Request {
            id: Arc::clone(&self.id),
            prompt_len: self.prompt_len,
            max_tokens: self.max_tokens,
            max_total: self.max_total,
            priority: self.priority,
            arrival: self.arrival,
            ignore_eos: self.ignore_eos,
            status: self.status,
            num_computed: self.num_computed,
            num_output: self.num_output,
            num_preemptions: self.num_preemptions,
            num_output_placeholders: self.num_output_placeholders,
            discard_latest_async_tokens: self.discard_latest_async_tokens,
            blocks: self.blocks.clone(),
            trace: self.trace.clone(),
        }
    }

    fn clone_from(&mut self, source: &Request) {
        // Every field by name, so that a new one cannot be forgotten here.
        let Request {
            id,
            prompt_len,
            max_tokens,
            max_total,
            priority,
            arrival,
            ignore_eos,
            status,
            num_computed,
            num_output,
            num_preemptions,
            num_output_placeholders,
            discard_latest_async_tokens,
            blocks,
            trace,
        } = source;
        // A state is mostly forked into a sibling that holds the same ids: no reference count
        // to touch then (two atomic operations per request and copy otherwise).
        if !Arc::ptr_eq(&self.id, id) {
            self.id.clone_from(id);
        }
        self.prompt_len = *prompt_len;
        self.max_tokens = *max_tokens;
        self.max_total = *max_total;
        self.priority = *priority;
        self.arrival = *arrival;
        self.ignore_eos = *ignore_eos;
        self.status = *status;
        self.num_computed = *num_computed;
        self.num_output = *num_output;
        self.num_preemptions = *num_preemptions;
        self.num_output_placeholders = *num_output_placeholders;
        self.discard_latest_async_tokens = *discard_latest_async_tokens;
        self.blocks.clone_from(blocks);
        self.trace.clone_from(trace);
    }
}

impl Request {
    /// The request id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The request id, shared.
    pub fn shared_id(&self) -> &Arc<str> {
        &self.id
    }

    /// Prompt length.
    pub fn prompt_len(&self) -> u64 {
        self.prompt_len
    }

    /// Generation cap.
    pub fn max_tokens(&self) -> u64 {
        self.max_tokens
    }

    /// Priority (lower first under the priority policy).
    pub fn priority(&self) -> i64 {
        self.priority
    }

    /// Arrival order: 0 for the first request ever added.
    pub fn arrival(&self) -> u64 {
        self.arrival
    }

    /// Where the request is.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Tokens whose KV entries are computed (reset to 0 by a preemption).
    pub fn num_computed(&self) -> u64 {
        self.num_computed
    }

    /// The stop check once a token has landed (vLLM's `check_stop`), the same in both
    /// scheduling modes: an EOS stops the request unless it ignores EOS; otherwise reaching
    /// `max_model_len` or its generation cap ends it by length.
    #[inline]
    pub(crate) fn stop_status(&self, eos: bool, max_model_len: u64) -> Option<FinishStatus> {
        if eos && !self.ignore_eos {
            Some(FinishStatus::Stopped)
        } else if self.num_tokens() >= max_model_len || self.num_output >= self.max_tokens {
            Some(FinishStatus::Length)
        } else {
            None
        }
    }

    /// Output tokens so far (kept across preemption).
    pub fn num_output(&self) -> u64 {
        self.num_output
    }

    /// Known tokens: prompt plus outputs.
    pub fn num_tokens(&self) -> u64 {
        self.prompt_len + self.num_output
    }

    /// Preemptions so far.
    pub fn num_preemptions(&self) -> u64 {
        self.num_preemptions
    }

    /// Output placeholders: tokens scheduled but not yet produced (async scheduling only).
    pub fn num_output_placeholders(&self) -> u64 {
        self.num_output_placeholders
    }

    /// KV blocks held.
    pub fn blocks(&self) -> &[BlockId] {
        &self.blocks
    }

    /// The trace context given at add time.
    pub fn trace(&self) -> Option<&TraceHeaders> {
        self.trace.as_ref()
    }
}
