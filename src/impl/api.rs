//! The API front end above the engine: what the fork's `OpenAIServing` does at HEAD for the
//! chat and completions endpoints (`SPEC.md` §8.1, §9.2; research `vllm-fork-head.md` §3–§5).
//!
//! [`ApiFront`] owns the scheduler and replays two-layer workloads. Per client request it
//! - rejects `prompt_len + max_tokens > max_model_len` before anything exists (HTTP 400);
//! - takes the sampling decision recorded in the workload (`add.sampled`); a sampled request
//!   gets the `llm_request` span (scope `vllm.api`, kind SERVER; parent: the client's
//!   `traceparent`), `gen_ai.request.id`, `http.route`, the request attributes and
//!   `api.ARRIVED`; chat also `api.HANDOFF_TO_CORE` right after the engine call is made, before
//!   the engine has the request;
//! - fans the request out into engine requests: `<api id>-<8 hex>` (chat),
//!   `<api id>-<prompt index>-<8 hex>` (completions, one per prompt), and with `n > 1` the
//!   children `<j>_<core id>`, sharing one suffix; the suffix comes from a seeded generator;
//! - injects its span's context and `x-vllm-journey-sampled: "1"` into the engine requests'
//!   trace headers — for a batch completion into prompt 0's only, as the fork does; unsampled
//!   requests carry the client's `traceparent` alone;
//! - follows the outputs: `api.FIRST_RESPONSE_FROM_CORE` (chat) on the first token when
//!   streaming, on the final output when not; `api.DEPARTED` (chat with
//!   `gen_ai.usage.completion_tokens`) when every engine request finished naturally;
//!   `api.ABORTED` `generation_error` when one ended with `error`;
//! - on a client disconnect ends its span with `api.ABORTED` `client_disconnect`, then aborts the
//!   engine requests (between steps, or in flight just before `update_from_output`);
//! - ends, on drop, every span still open without a terminal event (the cleanup-only
//!   finalization of the fork's outer `finally`).
//!
//! An unsampled request costs the front end no span and no attribute; the engine-side gate is
//! the emitter's ([`WireProfile::Head`]).
//!
//! [`WireProfile::Head`]: super::emitter::WireProfile::Head

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use opentelemetry::global::{BoxedSpan, BoxedTracer, ObjectSafeTracer};
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;

use super::emitter::{Clock, Headers, SystemClock};
use super::engine::{Drive, EngineError, Iterated, RunSummary, run_to_drain};
use super::request::{FinishReason, NewRequest, TraceHeaders};
use super::rng::Rng;
use super::scheduler::Scheduler;
use super::workload::{AddOp, Endpoint, InFlight, Iteration, Op, Workload};
use crate::model::{FinishStatus, RequestId};

/// Names and keys of the API layer's wire format (`SPEC.md` §9.2).
pub mod api_keys {
    /// The span's name.
    pub const SPAN_NAME: &str = "llm_request";
    /// The instrumentation scope of the API layer's tracer.
    pub const SCOPE_NAME: &str = "vllm.api";
    /// The API request id (`chatcmpl-<id>`, `cmpl-<id>`).
    pub const REQUEST_ID: &str = "gen_ai.request.id";
    /// The endpoint's route.
    pub const HTTP_ROUTE: &str = "http.route";
    /// The served model.
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    /// Prompt tokens (of the first prompt).
    pub const PROMPT_TOKENS: &str = "gen_ai.usage.prompt_tokens";
    /// Sampling temperature.
    pub const TEMPERATURE: &str = "gen_ai.request.temperature";
    /// Nucleus sampling.
    pub const TOP_P: &str = "gen_ai.request.top_p";
    /// The generation cap.
    pub const MAX_TOKENS: &str = "gen_ai.request.max_tokens";
    /// Parallel samples.
    pub const N: &str = "gen_ai.request.n";
    /// Output tokens of every choice: chat, on DEPARTED only.
    pub const COMPLETION_TOKENS: &str = "gen_ai.usage.completion_tokens";
    /// The monotonic clock (seconds) on every `api.*` event.
    pub const EVENT_TS_MONOTONIC: &str = "event.ts.monotonic";
    /// Why a request was aborted.
    pub const REASON: &str = "reason";
    /// The error message of an abort.
    pub const ERROR: &str = "error";
    /// `api.ARRIVED`.
    pub const ARRIVED: &str = "api.ARRIVED";
    /// `api.HANDOFF_TO_CORE`.
    pub const HANDOFF_TO_CORE: &str = "api.HANDOFF_TO_CORE";
    /// `api.FIRST_RESPONSE_FROM_CORE`.
    pub const FIRST_RESPONSE_FROM_CORE: &str = "api.FIRST_RESPONSE_FROM_CORE";
    /// `api.DEPARTED`.
    pub const DEPARTED: &str = "api.DEPARTED";
    /// `api.ABORTED`.
    pub const ABORTED: &str = "api.ABORTED";
    /// The disconnect's error message.
    pub const CLIENT_DISCONNECTED: &str = "Client disconnected";
}

/// Why a two-layer step could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The engine failed (configuration, an engine request it refused, no drain).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A client request id is already in use by a live request.
    #[error("iteration {iteration}, operation {op}: request {id} is already live")]
    DuplicateId {
        /// Index of the iteration.
        iteration: usize,
        /// Index of the operation.
        op: usize,
        /// The client id.
        id: String,
    },
    /// An `add` that a two-layer run cannot replay.
    #[error("iteration {iteration}, operation {op}: request {id}: {what}")]
    BadAdd {
        /// Index of the iteration.
        iteration: usize,
        /// Index of the operation.
        op: usize,
        /// The client id.
        id: String,
        /// What is wrong.
        what: &'static str,
    },
    /// A `finish` other than a client disconnect (`aborted`).
    #[error(
        "iteration {iteration}: finish {id} with status {status}: a two-layer run only has client disconnects (aborted)"
    )]
    NotADisconnect {
        /// Index of the iteration.
        iteration: usize,
        /// The client id.
        id: String,
        /// The refused status.
        status: FinishReason,
    },
}

/// What became of a client request handed to [`ApiFront::submit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Accepted: its engine requests reach the scheduler at the next [`ApiFront::admit`].
    Accepted {
        /// Whether it was sampled (an API span exists when a tracer is set).
        sampled: bool,
    },
    /// Refused by the serving layer's validation (`prompt_len + max_tokens > max_model_len`):
    /// no span, no engine request.
    Rejected,
}

/// How an API span ended (for tests and harnesses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiOutcome {
    /// Still open.
    Open,
    /// `api.DEPARTED`.
    Departed,
    /// `api.ABORTED` `client_disconnect`.
    Disconnected,
    /// `api.ABORTED` `generation_error`.
    GenerationError,
    /// Ended without a terminal event.
    CleanupOnly,
}

/// One client request, from its acceptance to the end of its last engine request.
struct ClientRequest {
    /// The workload's id (the client's `X-Request-Id`).
    id: String,
    endpoint: Endpoint,
    stream: bool,
    span: Option<BoxedSpan>,
    outcome: ApiOutcome,
    /// Engine requests not finished yet.
    live_cores: usize,
    /// Engine requests of this client request, in add order.
    cores: Vec<Arc<str>>,
    first_response: bool,
    completion_tokens: u64,
    /// An engine request ended with `error`.
    failed: bool,
}

/// The API front end over a scheduler (feature `tracing`).
///
/// ```
/// use journey_spec::{ApiFront, Emitter, Scheduler, SchedulerConfig, Workload, WireProfile};
/// use opentelemetry::trace::TracerProvider as _;
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
///
/// let w = Workload::from_json(r#"{"config": {"max_num_seqs": 2, "max_num_batched_tokens": 64,
///     "block_size": 16, "num_blocks": 8, "max_model_len": 128, "api_sample_rate": 1.0},
///     "steps": [{"ops": [{"op": "add", "id": "r1", "prompt_len": 5, "max_tokens": 2,
///                         "stream": true, "sampled": true}]}]}"#)?;
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let mut s = Scheduler::new(w.config)?;
/// s.set_emitter(Some(Emitter::new(provider.tracer("vllm.scheduler")).with_profile(WireProfile::Head)));
/// let mut front = ApiFront::new(s, &w).with_tracer(provider.tracer("vllm.api"));
/// front.run(&w, |_, _, _| {})?;
/// drop(front);
/// let spans = exporter.get_finished_spans()?;
/// let core = spans.iter().find(|s| s.name == "llm_core").unwrap();
/// let api = spans.iter().find(|s| s.name == "llm_request").unwrap();
/// assert_eq!(core.parent_span_id, api.span_context.span_id());
/// let names: Vec<_> = api.events.iter().map(|e| e.name.as_ref()).collect();
/// assert_eq!(names, ["api.ARRIVED", "api.HANDOFF_TO_CORE", "api.FIRST_RESPONSE_FROM_CORE", "api.DEPARTED"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ApiFront {
    scheduler: Scheduler,
    tracer: Option<BoxedTracer>,
    clock: Box<dyn Clock>,
    propagator: TraceContextPropagator,
    model: String,
    suffixes: Rng,
    requests: Vec<ClientRequest>,
    /// Live client requests by workload id.
    by_id: HashMap<String, usize>,
    /// Live engine requests by engine id.
    by_core: HashMap<Arc<str>, usize>,
    /// Engine requests submitted and not yet handed to the scheduler.
    pending_adds: Vec<(usize, NewRequest)>,
    /// Engine requests whose abort reaches the scheduler between the next steps.
    pending_aborts: Vec<Arc<str>>,
    contained_panics: u64,
}

impl std::fmt::Debug for ApiFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiFront")
            .field("tracer", &self.tracer.is_some())
            .field("requests", &self.requests.len())
            .field("live", &self.by_id.len())
            .field("open_spans", &self.open_spans())
            .finish()
    }
}

impl ApiFront {
    /// A front end over `scheduler` serving `workload`'s model, without a tracer (no API spans);
    /// the core-id suffixes come from seed 0.
    pub fn new(scheduler: Scheduler, workload: &Workload) -> ApiFront {
        ApiFront {
            scheduler,
            tracer: None,
            clock: Box::new(SystemClock::new()),
            propagator: TraceContextPropagator::new(),
            model: workload.api.model().to_owned(),
            suffixes: Rng::new(0),
            requests: Vec::new(),
            by_id: HashMap::new(),
            by_core: HashMap::new(),
            pending_adds: Vec::new(),
            pending_aborts: Vec::new(),
            contained_panics: 0,
        }
    }

    /// Emits `llm_request` spans on `tracer` (the provider's `vllm.api` tracer).
    pub fn with_tracer<T>(mut self, tracer: T) -> ApiFront
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        let boxed: Box<dyn ObjectSafeTracer + Send + Sync> = Box::new(tracer);
        self.tracer = Some(BoxedTracer::new(boxed));
        self
    }

    /// Uses `clock` for span times and `event.ts.monotonic`.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> ApiFront {
        self.clock = Box::new(clock);
        self
    }

    /// Draws the 8-hex core-id suffixes from `seed` (the fork draws a `uuid4`; a replay cannot
    /// reproduce it, so any seed is as faithful as another).
    pub fn with_suffix_seed(mut self, seed: u64) -> ApiFront {
        self.suffixes = Rng::new(seed);
        self
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// The scheduler, mutably.
    pub fn scheduler_mut(&mut self) -> &mut Scheduler {
        &mut self.scheduler
    }

    /// API spans not ended yet.
    pub fn open_spans(&self) -> usize {
        self.requests.iter().filter(|r| r.span.is_some()).count()
    }

    /// Client requests with any state in the front end (not finished on both sides).
    pub fn live(&self) -> usize {
        self.by_id.len()
    }

    /// Panics of the OpenTelemetry pipeline contained so far.
    pub fn contained_panics(&self) -> u64 {
        self.contained_panics
    }

    /// The engine request ids of client request `id` (the latest with that id), in add order.
    pub fn core_ids(&self, id: &str) -> Option<&[Arc<str>]> {
        self.requests.iter().rev().find(|r| r.id == id).map(|r| r.cores.as_slice())
    }

    /// How the API span of client request `id` (the latest with that id) ended.
    pub fn outcome(&self, id: &str) -> Option<ApiOutcome> {
        self.requests.iter().rev().find(|r| r.id == id).map(|r| r.outcome)
    }

    /// Runs an OpenTelemetry call; a panic inside it is contained and counted.
    fn guard<R>(contained: &mut u64, f: impl FnOnce() -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => Some(r),
            Err(_) => {
                *contained += 1;
                None
            }
        }
    }

    /// The `add` of a client: validation, the sampling decision, the span and its
    /// `api.ARRIVED` (and for chat `api.HANDOFF_TO_CORE`), then the engine requests, which
    /// reach the scheduler at the next [`ApiFront::admit`]. `iteration`/`op` name it in errors.
    pub fn submit(&mut self, iteration: usize, op: usize, add: &AddOp) -> Result<Submitted, ApiError> {
        let bad = |what| ApiError::BadAdd { iteration, op, id: add.id.clone(), what };
        let endpoint = add.endpoint();
        let n = add.n.unwrap_or(1);
        if n == 0 {
            return Err(bad("n must be at least 1"));
        }
        if let Some(prompts) = &add.prompts {
            if endpoint != Endpoint::Completions {
                return Err(bad("prompts is for the completions endpoint only"));
            }
            if prompts.first() != Some(&add.prompt_len) {
                return Err(bad("prompt_len must repeat prompts[0]"));
            }
        }
        if self.by_id.contains_key(&add.id) {
            return Err(ApiError::DuplicateId { iteration, op, id: add.id.clone() });
        }
        let max_model_len = self.scheduler.config().max_model_len;
        let prompts = add.prompt_lens();
        // The serving layer's validation, before any span (HTTP 400).
        if prompts.iter().any(|p| p.saturating_add(add.max_tokens) > max_model_len) {
            return Ok(Submitted::Rejected);
        }
        let sampled = add.sampled.unwrap_or(true);
        let api_id = format!("{}{}", endpoint.id_prefix(), add.id);
        let client = add.traceparent.as_ref().map(|tp| TraceHeaders {
            traceparent: tp.clone(),
            tracestate: add.tracestate.clone(),
            journey_sampled: false,
        });
        let span = if sampled { self.start_span(&api_id, endpoint, add, client.as_ref()) } else { None };
        // The context the engine requests carry: the API span's, with the sampling header.
        let injected = span.as_ref().map(|s| self.inject(s, client.as_ref()));
        let index = self.requests.len();
        let mut request = ClientRequest {
            id: add.id.clone(),
            endpoint,
            stream: add.stream.unwrap_or(false),
            span,
            outcome: ApiOutcome::Open,
            live_cores: 0,
            cores: Vec::new(),
            first_response: false,
            completion_tokens: 0,
            failed: false,
        };
        if endpoint == Endpoint::Chat {
            // Right after `engine_client.generate(...)` is called: nothing reached the engine.
            self.event(&mut request, api_keys::HANDOFF_TO_CORE, Vec::new());
        }
        for (i, &prompt_len) in prompts.iter().enumerate() {
            let suffix = self.suffixes.next_u64() & 0xffff_ffff;
            let core = match endpoint {
                Endpoint::Chat => format!("{api_id}-{suffix:08x}"),
                Endpoint::Completions => format!("{api_id}-{i}-{suffix:08x}"),
            };
            // `create_completion` injects the header for prompt 0 only; the others carry the
            // client's headers (an atomicity hole of the fork, SPEC.md §9.3 X5).
            let trace = match (&injected, i) {
                (Some(t), 0) => Some(t.clone()),
                (Some(_) | None, _) => client.clone(),
            };
            for j in 0..n {
                let id = if n > 1 { format!("{j}_{core}") } else { core.clone() };
                let id: Arc<str> = Arc::from(id);
                request.cores.push(Arc::clone(&id));
                self.pending_adds.push((
                    index,
                    NewRequest {
                        id: RequestId(id.to_string()),
                        prompt_len,
                        max_tokens: add.max_tokens,
                        priority: add.priority,
                        ignore_eos: add.ignore_eos,
                        trace: trace.clone(),
                    },
                ));
            }
        }
        self.by_id.insert(add.id.clone(), index);
        self.requests.push(request);
        Ok(Submitted::Accepted { sampled })
    }

    /// `_create_api_span` and the request attributes: the span, `api.ARRIVED`.
    fn start_span(
        &mut self,
        api_id: &str,
        endpoint: Endpoint,
        add: &AddOp,
        client: Option<&TraceHeaders>,
    ) -> Option<BoxedSpan> {
        let tracer = self.tracer.as_ref()?;
        let parent = match client {
            Some(h) => self.propagator.extract(&Headers(h)),
            None => Context::new(),
        };
        let start = self.clock.wall();
        let monotonic = self.clock.monotonic();
        let wall = self.clock.wall();
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let attributes = [
            KeyValue::new(api_keys::REQUEST_ID, api_id.to_owned()),
            KeyValue::new(api_keys::HTTP_ROUTE, endpoint.route()),
            KeyValue::new(api_keys::RESPONSE_MODEL, self.model.clone()),
            KeyValue::new(api_keys::PROMPT_TOKENS, int(add.prompt_len)),
            // Every request of a replay is sent with temperature 1.0 and top_p 1.0 (SPEC.md §8.1).
            KeyValue::new(api_keys::TEMPERATURE, 1.0),
            KeyValue::new(api_keys::TOP_P, 1.0),
            KeyValue::new(api_keys::MAX_TOKENS, int(add.max_tokens)),
            KeyValue::new(api_keys::N, i64::from(add.n.unwrap_or(1))),
        ];
        ApiFront::guard(&mut self.contained_panics, || {
            let mut span = tracer
                .span_builder(api_keys::SPAN_NAME)
                .with_kind(SpanKind::Server)
                .with_start_time(start)
                .start_with_context(tracer, &parent);
            if span.is_recording() {
                span.add_event_with_timestamp(
                    api_keys::ARRIVED,
                    wall,
                    vec![KeyValue::new(api_keys::EVENT_TS_MONOTONIC, monotonic)],
                );
                span.set_attributes(attributes);
            }
            span
        })
    }

    /// `_inject_trace_context_and_sampling_header`: the client's headers, overwritten with the
    /// API span's context, plus the sampling header.
    fn inject(&self, span: &BoxedSpan, client: Option<&TraceHeaders>) -> TraceHeaders {
        let mut carrier = Carrier(client.cloned().unwrap_or_default());
        let cx = Context::new().with_remote_span_context(span.span_context().clone());
        self.propagator.inject_context(&cx, &mut carrier);
        carrier.0.journey_sampled = true;
        carrier.0
    }

    /// Adds event `name` to the request's span (if any and recording), with `event.ts.monotonic`
    /// and `extra` attributes.
    fn event(&mut self, r: &mut ClientRequest, name: &'static str, extra: Vec<KeyValue>) {
        let Some(span) = r.span.as_mut() else { return };
        let monotonic = self.clock.monotonic();
        let wall = self.clock.wall();
        ApiFront::guard(&mut self.contained_panics, || {
            if span.is_recording() {
                let mut attributes = Vec::with_capacity(1 + extra.len());
                attributes.push(KeyValue::new(api_keys::EVENT_TS_MONOTONIC, monotonic));
                attributes.extend(extra);
                span.add_event_with_timestamp(name, wall, attributes);
            }
        });
    }

    /// `_finalize_api_span`: the terminal event (none for the cleanup-only end), the status,
    /// the end. Idempotent: a second call finds no span.
    fn finalize(&mut self, index: usize, outcome: ApiOutcome) {
        let Some(mut r) = self.requests.get_mut(index).map(|r| std::mem::replace(r, ClientRequest::placeholder()))
        else {
            return;
        };
        if r.outcome == ApiOutcome::Open && outcome != ApiOutcome::Open {
            r.outcome = outcome;
            let chat = r.endpoint == Endpoint::Chat;
            match outcome {
                ApiOutcome::Departed => {
                    if chat {
                        let tokens = i64::try_from(r.completion_tokens).unwrap_or(i64::MAX);
                        if let Some(span) = r.span.as_mut() {
                            ApiFront::guard(&mut self.contained_panics, || {
                                span.set_attribute(KeyValue::new(api_keys::COMPLETION_TOKENS, tokens));
                            });
                        }
                    }
                    self.event(&mut r, api_keys::DEPARTED, Vec::new());
                }
                ApiOutcome::Disconnected => {
                    // Streaming completions abort without a message (status stays UNSET).
                    let message = (chat || !r.stream).then_some(api_keys::CLIENT_DISCONNECTED);
                    self.abort_event(&mut r, "client_disconnect", message);
                }
                ApiOutcome::GenerationError => {
                    self.abort_event(&mut r, "generation_error", Some("Generation error"));
                }
                ApiOutcome::CleanupOnly | ApiOutcome::Open => {}
            }
            if let Some(mut span) = r.span.take() {
                let end = self.clock.wall();
                ApiFront::guard(&mut self.contained_panics, move || {
                    span.end_with_timestamp(end);
                    drop(span);
                });
            }
        }
        if let Some(slot) = self.requests.get_mut(index) {
            *slot = r;
        }
    }

    fn abort_event(&mut self, r: &mut ClientRequest, reason: &'static str, message: Option<&'static str>) {
        if let (Some(message), Some(span)) = (message, r.span.as_mut()) {
            // Not gated on recording, as in the fork.
            ApiFront::guard(&mut self.contained_panics, || span.set_status(Status::error(message)));
        }
        let mut extra = vec![KeyValue::new(api_keys::REASON, reason)];
        if let Some(message) = message {
            extra.push(KeyValue::new(api_keys::ERROR, message));
        }
        self.event(r, api_keys::ABORTED, extra);
    }

    /// A client disconnect: the API span ends with `api.ABORTED` `client_disconnect`, and the
    /// engine requests still live are aborted — at the next [`ApiFront::admit`] unless
    /// `in_flight`, then at once. Unknown and finished ids do nothing.
    pub fn disconnect(&mut self, id: &str, in_flight: bool) {
        let Some(&index) = self.by_id.get(id) else { return };
        self.finalize(index, ApiOutcome::Disconnected);
        let Some(r) = self.requests.get(index) else { return };
        let cores: Vec<Arc<str>> = r.cores.iter().filter(|c| self.by_core.contains_key(&**c)).cloned().collect();
        let pending: Vec<Arc<str>> =
            r.cores.iter().filter(|c| self.pending_adds.iter().any(|(_, p)| p.id.0 == ***c)).cloned().collect();
        if in_flight {
            self.abort_cores(&cores);
            self.pending_aborts.extend(pending);
        } else {
            self.pending_aborts.extend(cores);
            self.pending_aborts.extend(pending);
        }
    }

    /// A generation error: every live engine request of client request `id` ends with
    /// `error`; when the last has, the API span ends with `api.ABORTED` `generation_error`.
    pub fn fail(&mut self, id: &str) {
        let Some(&index) = self.by_id.get(id) else { return };
        let Some(r) = self.requests.get(index) else { return };
        let cores: Vec<Arc<str>> = r.cores.iter().filter(|c| self.by_core.contains_key(&**c)).cloned().collect();
        self.finish_cores(&cores, FinishReason::Error);
    }

    fn abort_cores(&mut self, cores: &[Arc<str>]) {
        self.finish_cores(cores, FinishReason::Aborted);
    }

    /// Ends engine requests `cores` with `reason`, and their client requests as that implies.
    fn finish_cores(&mut self, cores: &[Arc<str>], reason: FinishReason) {
        if cores.is_empty() {
            return;
        }
        let finished: Vec<(Arc<str>, FinishStatus)> = self
            .scheduler
            .finish_requests(cores.iter().map(|c| &**c), reason, None)
            .iter()
            .map(|f| (Arc::clone(&f.id), f.status))
            .collect();
        for (id, status) in finished {
            self.core_finished(&id, status);
        }
    }

    /// Hands the submitted engine requests to the scheduler in add order, then applies the
    /// disconnects that reach it between steps.
    pub fn admit(&mut self) -> Result<(), EngineError> {
        for (k, (owner, new)) in std::mem::take(&mut self.pending_adds).into_iter().enumerate() {
            let id: Arc<str> = Arc::from(new.id.0.as_str());
            self.scheduler.add_request(new).map_err(|source| EngineError::Add { iteration: 0, op: k, source })?;
            self.by_core.insert(id, owner);
            if let Some(r) = self.requests.get_mut(owner) {
                r.live_cores += 1;
            }
        }
        let aborts = std::mem::take(&mut self.pending_aborts);
        self.abort_cores(&aborts);
        Ok(())
    }

    /// An engine request left the scheduler.
    fn core_finished(&mut self, id: &str, status: FinishStatus) {
        let Some(index) = self.by_core.remove(id) else { return };
        let Some(r) = self.requests.get_mut(index) else { return };
        r.live_cores = r.live_cores.saturating_sub(1);
        r.failed |= status == FinishStatus::Error;
        let done = r.live_cores == 0;
        let chat = r.endpoint == Endpoint::Chat;
        let failed = r.failed;
        let first_response = r.first_response;
        if !done {
            return;
        }
        if r.outcome == ApiOutcome::Open {
            if failed {
                self.finalize(index, ApiOutcome::GenerationError);
            } else {
                if chat && !first_response {
                    // Non-streaming (`FINAL_ONLY`): the first output is the final one.
                    self.first_response(index);
                }
                self.finalize(index, ApiOutcome::Departed);
            }
        }
        if let Some(r) = self.requests.get(index) {
            let client = r.id.clone();
            self.by_id.remove(&client);
        }
    }

    fn first_response(&mut self, index: usize) {
        let Some(mut r) = self.requests.get_mut(index).map(|r| std::mem::replace(r, ClientRequest::placeholder()))
        else {
            return;
        };
        if !r.first_response {
            r.first_response = true;
            self.event(&mut r, api_keys::FIRST_RESPONSE_FROM_CORE, Vec::new());
        }
        if let Some(slot) = self.requests.get_mut(index) {
            *slot = r;
        }
    }

    /// After `update_from_output`: tokens and natural finishes reach the endpoints.
    fn outputs(&mut self) {
        let update = self.scheduler.last_update();
        let mut tokens: Vec<(usize, bool)> = Vec::with_capacity(update.sampled.len());
        for &(h, first) in &update.sampled {
            let id = match self.scheduler.request(h) {
                Some(r) => Some(r.shared_id()),
                None => update.finished.iter().find(|f| f.handle == h).map(|f| &f.id),
            };
            if let Some(&i) = id.and_then(|id| self.by_core.get(&**id)) {
                tokens.push((i, first));
            }
        }
        let finished: Vec<(Arc<str>, FinishStatus)> =
            update.finished.iter().map(|f| (Arc::clone(&f.id), f.status)).collect();
        for (i, first) in tokens {
            let Some(r) = self.requests.get_mut(i) else { continue };
            r.completion_tokens = r.completion_tokens.saturating_add(1);
            if first && r.stream && r.endpoint == Endpoint::Chat && r.outcome == ApiOutcome::Open {
                self.first_response(i);
            }
        }
        for (id, status) in finished {
            self.core_finished(&id, status);
        }
    }

    /// Whether the client id `id` (of the workload's `eos` lists) owns engine request `core`.
    fn owner_is(&self, core: &str, ids: &[String]) -> bool {
        self.by_core.get(core).and_then(|&i| self.requests.get(i)).is_some_and(|r| ids.contains(&r.id))
    }

    /// One engine iteration of a two-layer workload (the fixtures' engine loop): (1) the ops in
    /// order — `add` runs the serving code up to the engine call, `finish aborted` is a client
    /// disconnect, `reset` preempts every running request; (2) [`ApiFront::admit`]; (3) if the
    /// scheduler has requests, `schedule()`, the in-flight disconnects (their aborts land
    /// now), `update_from_output` with EOS for the engine requests of the ids in `eos`, and the
    /// outputs reach the endpoints; otherwise the in-flight disconnects end their API spans and
    /// their aborts wait for the next iteration's (2).
    pub fn iterate(&mut self, index: usize, it: &Iteration) -> Result<Iterated, ApiError> {
        for (op, o) in it.ops.iter().enumerate() {
            match o {
                Op::Add(add) => {
                    self.submit(index, op, add)?;
                }
                Op::Finish(f) => {
                    if f.status != FinishReason::Aborted {
                        return Err(ApiError::NotADisconnect { iteration: index, id: f.id.clone(), status: f.status });
                    }
                    self.disconnect(&f.id, false);
                }
                Op::Reset => {
                    self.scheduler.reset();
                }
            }
        }
        self.step(index, &it.in_flight, &it.eos)
    }

    /// The engine part of an iteration, after its ops: [`ApiFront::admit`]; then, if the
    /// scheduler has requests, `schedule()`, the `in_flight` disconnects (their aborts land at
    /// once), `update_from_output` with EOS for the engine requests of the client ids in `eos`,
    /// and the outputs reach the endpoints; otherwise the in-flight disconnects end their API
    /// spans and their aborts wait for the next admission. `index` names the iteration in errors.
    pub fn step(&mut self, index: usize, in_flight: &[InFlight], eos: &[String]) -> Result<Iterated, ApiError> {
        self.admit().map_err(|e| match e {
            EngineError::Add { op, source, .. } => EngineError::Add { iteration: index, op, source },
            other => other,
        })?;
        let stepped = self.scheduler.has_requests();
        if stepped {
            self.scheduler.schedule();
        }
        for InFlight::Finish(f) in in_flight {
            if f.status != FinishReason::Aborted {
                return Err(ApiError::NotADisconnect { iteration: index, id: f.id.clone(), status: f.status });
            }
            self.disconnect(&f.id, stepped);
        }
        if !stepped {
            return Ok(Iterated::Idle);
        }
        // The closure cannot borrow `self` while the scheduler is borrowed mutably: look the
        // owners up first.
        let eos_cores: Vec<Arc<str>> = if eos.is_empty() {
            Vec::new()
        } else {
            self.scheduler
                .sampling()
                .filter_map(|h| self.scheduler.request(h).map(|r| Arc::clone(r.shared_id())))
                .filter(|c| self.owner_is(c, eos))
                .collect()
        };
        self.scheduler.update_from_output(|id| eos_cores.iter().any(|c| &**c == id));
        self.outputs();
        Ok(Iterated::Stepped)
    }

    /// Replays a two-layer `workload` from its first iteration, then runs empty iterations
    /// until no request is live and every client has its answer. `on_iteration` sees the
    /// scheduler after every iteration.
    pub fn run(
        &mut self,
        workload: &Workload,
        on_iteration: impl FnMut(usize, Iterated, &mut Scheduler),
    ) -> Result<RunSummary, ApiError> {
        run_to_drain(self, workload, on_iteration)
    }

    /// The cleanup-only finalization (the fork's outer `finally`): every API span still open
    /// ends without a terminal event. Dropping the front end does it too.
    pub fn cleanup(&mut self) {
        for i in 0..self.requests.len() {
            self.finalize(i, ApiOutcome::CleanupOnly);
        }
    }
}

impl Drive for ApiFront {
    type Error = ApiError;
    fn iterate(&mut self, index: usize, it: &Iteration) -> Result<Iterated, ApiError> {
        ApiFront::iterate(self, index, it)
    }
    /// Requests still live, or client disconnects still to reach the engine.
    fn busy(&self) -> bool {
        self.scheduler.has_requests() || !self.pending_aborts.is_empty()
    }
    fn scheduler_mut(&mut self) -> &mut Scheduler {
        &mut self.scheduler
    }
}

impl Drop for ApiFront {
    fn drop(&mut self) {
        self.cleanup();
    }
}

impl ClientRequest {
    /// A stand-in while a request is taken out of the list for an update.
    fn placeholder() -> ClientRequest {
        ClientRequest {
            id: String::new(),
            endpoint: Endpoint::Chat,
            stream: false,
            span: None,
            outcome: ApiOutcome::Open,
            live_cores: 0,
            cores: Vec::new(),
            first_response: false,
            completion_tokens: 0,
            failed: false,
        }
    }
}

/// The engine request's headers, as the propagator writes them.
struct Carrier(TraceHeaders);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "traceparent" => self.0.traceparent = value,
            "tracestate" => self.0.tracestate = Some(value).filter(|v| !v.is_empty()),
            _ => {}
        }
    }
}
