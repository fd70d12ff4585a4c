//! The API lifecycle (`llm_request`, scope `vllm.api`, `SPEC.md` §9.2) as two [`Lifecycle`]s —
//! [`ChatApi`] and [`CompletionsApi`], one table each over the same states and events — and
//! [`check_api_span`], which checks one API span against them and the attribute rules A1–A4.
//!
//! The span may end without a terminal event (the fork's cleanup-only finalization), so every
//! state after ARRIVED is one a span [may end in](Lifecycle::may_end_in).
//!
//! ```
//! use journey_spec::model::api::{ApiKind, ApiState, ChatApi};
//! use journey_spec::model::Lifecycle;
//!
//! assert_eq!(ChatApi::next(ApiState::Arrived, ApiKind::HandoffToCore), Some(ApiState::HandedOff));
//! assert!(ChatApi::may_end_in(ApiState::HandedOff));
//! assert!(!ChatApi::may_end_in(ApiState::New));
//! ```

use std::fmt;

use super::checker::SpanInfo;
use super::finding::{Detail, Seen, SpanEdge, Verdict, Violation};
use super::lifecycle::{self, Lifecycle, LifecycleRules, Row};
use super::rules::RuleId;

/// The prefix of every API event name.
pub const API_EVENT_PREFIX: &str = "api.";
/// The attribute every API event carries: `time.monotonic()` in seconds (a double).
pub const EVENT_TS_MONOTONIC: &str = "event.ts.monotonic";
/// The ABORTED attribute that says why.
pub const REASON: &str = "reason";
/// The ABORTED attribute with the error message, when there is one.
pub const ERROR: &str = "error";

/// An API event kind: the suffix of `api.<KIND>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum ApiKind {
    /// `api.ARRIVED`: the span was created.
    Arrived,
    /// `api.HANDOFF_TO_CORE` (chat only): the engine call was made.
    HandoffToCore,
    /// `api.FIRST_RESPONSE_FROM_CORE` (chat only): the first output reached the endpoint.
    FirstResponseFromCore,
    /// `api.DEPARTED`: success.
    Departed,
    /// `api.ABORTED`: an error path.
    Aborted,
}

impl ApiKind {
    /// Every kind, in lifecycle order.
    pub const ALL: &'static [ApiKind] = &[
        ApiKind::Arrived,
        ApiKind::HandoffToCore,
        ApiKind::FirstResponseFromCore,
        ApiKind::Departed,
        ApiKind::Aborted,
    ];

    /// The wire spelling after `api.`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApiKind::Arrived => "ARRIVED",
            ApiKind::HandoffToCore => "HANDOFF_TO_CORE",
            ApiKind::FirstResponseFromCore => "FIRST_RESPONSE_FROM_CORE",
            ApiKind::Departed => "DEPARTED",
            ApiKind::Aborted => "ABORTED",
        }
    }

    /// The kind an event name (`api.ARRIVED`) names, if any.
    pub fn of_name(name: &str) -> Option<ApiKind> {
        let suffix = name.strip_prefix(API_EVENT_PREFIX)?;
        ApiKind::ALL.iter().copied().find(|k| k.as_str() == suffix)
    }

    /// Whether the kind ends the API journey.
    pub const fn is_terminal(self) -> bool {
        match self {
            ApiKind::Departed | ApiKind::Aborted => true,
            ApiKind::Arrived | ApiKind::HandoffToCore | ApiKind::FirstResponseFromCore => false,
        }
    }
}

impl fmt::Display for ApiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request is in the API layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ApiState {
    /// No event yet.
    New,
    /// After ARRIVED.
    Arrived,
    /// After HANDOFF_TO_CORE: the engine has (or is about to have) the request.
    HandedOff,
    /// After FIRST_RESPONSE_FROM_CORE: outputs are flowing back.
    Responding,
    /// After DEPARTED.
    Departed,
    /// After ABORTED.
    Aborted,
}

impl ApiState {
    /// The state's name.
    pub const fn name(self) -> &'static str {
        match self {
            ApiState::New => "New",
            ApiState::Arrived => "Arrived",
            ApiState::HandedOff => "HandedOff",
            ApiState::Responding => "Responding",
            ApiState::Departed => "Departed",
            ApiState::Aborted => "Aborted",
        }
    }
}

impl fmt::Display for ApiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which OpenAI endpoint served the request: it decides the API table. In a workload file
/// (`SPEC.md` §8.1), the endpoint a two-layer request is sent to: `"chat"` or `"completions"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/v1/chat/completions` (`chatcmpl-` ids): ARRIVED → HANDOFF → FIRST_RESPONSE → DEPARTED.
    #[default]
    Chat,
    /// `/v1/completions` (`cmpl-` ids) and every other route: ARRIVED → DEPARTED | ABORTED.
    Completions,
}

impl Endpoint {
    /// The route the fork sets for chat.
    pub const CHAT_ROUTE: &'static str = "/v1/chat/completions";
    /// The route the fork sets for completions.
    pub const COMPLETIONS_ROUTE: &'static str = "/v1/completions";

    /// The endpoint a span was served by: from its `http.route`, else from its id's prefix,
    /// else chat. Routes other than chat (completions, pooling, score, …) emit no HANDOFF or
    /// FIRST_RESPONSE and are checked with the completions table.
    pub fn of(route: Option<&str>, request_id: Option<&str>) -> Endpoint {
        match (route, request_id) {
            (Some(Self::CHAT_ROUTE), _) => Endpoint::Chat,
            (Some(_), _) => Endpoint::Completions,
            (None, Some(id)) if id.starts_with("cmpl-") => Endpoint::Completions,
            (None, Some(_) | None) => Endpoint::Chat,
        }
    }

    /// The `http.route` the fork sets for the endpoint.
    pub const fn route(self) -> &'static str {
        match self {
            Endpoint::Chat => Self::CHAT_ROUTE,
            Endpoint::Completions => Self::COMPLETIONS_ROUTE,
        }
    }

    /// The prefix of the endpoint's API request ids.
    pub const fn id_prefix(self) -> &'static str {
        match self {
            Endpoint::Chat => "chatcmpl-",
            Endpoint::Completions => "cmpl-",
        }
    }

    /// `chat` or `completions`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Completions => "completions",
        }
    }
}

/// The chat endpoint's API lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChatApi;

/// The completions endpoint's API lifecycle (and every route other than chat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompletionsApi;

const API_RULES: LifecycleRules<RuleId> =
    LifecycleRules { start: RuleId::ApiLifecycle, legal: RuleId::ApiLifecycle, end: RuleId::ApiLifecycle };

/// The chat table (`SPEC.md` §9.2).
pub const CHAT_TABLE: &[Row<ChatApi>] = &[
    Row::new(ApiState::New, ApiKind::Arrived, ApiState::Arrived),
    Row::new(ApiState::Arrived, ApiKind::HandoffToCore, ApiState::HandedOff),
    Row::new(ApiState::HandedOff, ApiKind::FirstResponseFromCore, ApiState::Responding),
    Row::new(ApiState::Responding, ApiKind::Departed, ApiState::Departed),
    Row::new(ApiState::Arrived, ApiKind::Aborted, ApiState::Aborted),
    Row::new(ApiState::HandedOff, ApiKind::Aborted, ApiState::Aborted),
    Row::new(ApiState::Responding, ApiKind::Aborted, ApiState::Aborted),
];

/// The completions table (`SPEC.md` §9.2).
pub const COMPLETIONS_TABLE: &[Row<CompletionsApi>] = &[
    Row::new(ApiState::New, ApiKind::Arrived, ApiState::Arrived),
    Row::new(ApiState::Arrived, ApiKind::Departed, ApiState::Departed),
    Row::new(ApiState::Arrived, ApiKind::Aborted, ApiState::Aborted),
];

macro_rules! api_lifecycle {
    ($ty:ty, $name:literal, $table:expr) => {
        impl Lifecycle for $ty {
            type State = ApiState;
            type Label = ApiKind;
            type Kind = ApiKind;
            type Rule = RuleId;

            const NAME: &'static str = $name;
            const INITIAL: ApiState = ApiState::New;
            const TABLE: &'static [Row<Self>] = $table;
            const KINDS: &'static [ApiKind] = ApiKind::ALL;
            const RULES: LifecycleRules<RuleId> = API_RULES;

            fn kind(label: ApiKind) -> ApiKind {
                label
            }

            fn state_name(state: ApiState) -> &'static str {
                state.name()
            }

            /// The cleanup-only finalization ends a span in any state after ARRIVED.
            fn may_end_in(state: ApiState) -> bool {
                state != ApiState::New
            }
        }
    };
}

api_lifecycle!(ChatApi, "api-chat", CHAT_TABLE);
api_lifecycle!(CompletionsApi, "api-completions", COMPLETIONS_TABLE);

/// An attribute value as read from the wire, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(Box<str>),
    /// An int.
    Int(i64),
    /// A double.
    Double(f64),
    /// A bool.
    Bool(bool),
    /// Anything else (array, map, bytes, empty), named by its type.
    Other(&'static str),
}

impl AttrValue {
    /// The value's type, as errors name it.
    pub const fn type_name(&self) -> &'static str {
        match self {
            AttrValue::Str(_) => "string",
            AttrValue::Int(_) => "int",
            AttrValue::Double(_) => "double",
            AttrValue::Bool(_) => "bool",
            AttrValue::Other(t) => t,
        }
    }

    /// The string, when it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            AttrValue::Int(_) | AttrValue::Double(_) | AttrValue::Bool(_) | AttrValue::Other(_) => None,
        }
    }

    /// The int, when it is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            AttrValue::Str(_) | AttrValue::Double(_) | AttrValue::Bool(_) | AttrValue::Other(_) => None,
        }
    }
}

/// One `api.*` span event as read.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiEvent {
    /// The event's name (`api.ARRIVED`; any `api.` name, known or not).
    pub name: Box<str>,
    /// Its timestamp, ns since the Unix epoch, when known.
    pub time_unix_nano: Option<u64>,
    /// Its attributes (`event.ts.monotonic`, `reason`, `error`, anything else).
    pub attributes: Vec<(Box<str>, AttrValue)>,
}

impl ApiEvent {
    /// An event of `kind` at `time_unix_nano` with `event.ts.monotonic` = `ts_monotonic`.
    pub fn new(kind: ApiKind, time_unix_nano: u64, ts_monotonic: f64) -> ApiEvent {
        ApiEvent {
            name: format!("{API_EVENT_PREFIX}{kind}").into_boxed_str(),
            time_unix_nano: Some(time_unix_nano),
            attributes: vec![(EVENT_TS_MONOTONIC.into(), AttrValue::Double(ts_monotonic))],
        }
    }

    /// Adds an attribute.
    pub fn with(mut self, key: &str, value: AttrValue) -> ApiEvent {
        self.attributes.push((key.into(), value));
        self
    }

    /// The kind its name names.
    pub fn kind(&self) -> Option<ApiKind> {
        ApiKind::of_name(&self.name)
    }

    /// The value of attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }
}

/// An OTLP span status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCode {
    /// `STATUS_CODE_UNSET` (0).
    #[default]
    Unset,
    /// `STATUS_CODE_OK` (1).
    Ok,
    /// `STATUS_CODE_ERROR` (2).
    Error,
}

impl StatusCode {
    /// The code of an OTLP status number (anything unknown is unset).
    pub fn of_otlp(code: i32) -> StatusCode {
        match code {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }
}

/// An `llm_request` span as the API checker sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiSpan {
    /// Start, end and dropped events.
    pub span: SpanInfo,
    /// The span's attributes.
    pub attributes: Vec<(Box<str>, AttrValue)>,
    /// The status code.
    pub status: StatusCode,
    /// The status message (empty when none).
    pub status_message: String,
    /// The `api.*` events, in timestamp order.
    pub events: Vec<ApiEvent>,
}

/// The span attribute keys of `SPEC.md` §9.2.
pub mod attr {
    /// The API request id.
    pub const REQUEST_ID: &str = "gen_ai.request.id";
    /// The route.
    pub const HTTP_ROUTE: &str = "http.route";
    /// The served model.
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    /// Prompt tokens.
    pub const PROMPT_TOKENS: &str = "gen_ai.usage.prompt_tokens";
    /// Completion tokens (chat success only).
    pub const COMPLETION_TOKENS: &str = "gen_ai.usage.completion_tokens";
    /// Temperature.
    pub const TEMPERATURE: &str = "gen_ai.request.temperature";
    /// Top p.
    pub const TOP_P: &str = "gen_ai.request.top_p";
    /// The generation cap.
    pub const MAX_TOKENS: &str = "gen_ai.request.max_tokens";
    /// Parallel samples.
    pub const N: &str = "gen_ai.request.n";
}

impl ApiSpan {
    /// The value of span attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }

    /// The API request id (`gen_ai.request.id`), when it is a string.
    pub fn request_id(&self) -> Option<&str> {
        self.attribute(attr::REQUEST_ID).and_then(AttrValue::as_str)
    }

    /// The endpoint ([`Endpoint::of`] its route and id).
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::of(self.attribute(attr::HTTP_ROUTE).and_then(AttrValue::as_str), self.request_id())
    }

    /// `gen_ai.request.n`, when it is an int.
    pub fn n(&self) -> Option<i64> {
        self.attribute(attr::N).and_then(AttrValue::as_int)
    }
}

/// What [`check_api_span`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiOutcome {
    /// The endpoint whose table was used.
    pub endpoint: Endpoint,
    /// The state after each event.
    pub states: Vec<ApiState>,
    /// The verdict (violations in event order; span-level A1 findings at index `events.len()`).
    pub verdict: Verdict,
}

type Broken = (RuleId, Detail);

fn other(rule: RuleId, message: String) -> Broken {
    (rule, Detail::Other { message })
}

/// Checks one API span: A2 (the endpoint's table), A3, A4 event by event (the first broken rule
/// per event), then A1 and A3's status condition for the span as a whole.
///
/// ```
/// use journey_spec::model::api::{ApiEvent, ApiKind, ApiSpan, AttrValue, check_api_span};
/// use journey_spec::model::{RuleId, SpanInfo};
///
/// let mut span = ApiSpan {
///     span: SpanInfo { start_unix_nano: Some(10), end_unix_nano: Some(50), dropped_events: 0 },
///     attributes: vec![("gen_ai.request.id".into(), AttrValue::Str("chatcmpl-1".into())),
///                      ("http.route".into(), AttrValue::Str("/v1/chat/completions".into()))],
///     ..ApiSpan::default()
/// };
/// span.events = vec![ApiEvent::new(ApiKind::Arrived, 11, 1.0), ApiEvent::new(ApiKind::HandoffToCore, 12, 1.1)];
/// assert!(check_api_span(&span).verdict.is_conforming()); // the cleanup-only end
/// span.events.push(ApiEvent::new(ApiKind::Departed, 13, 1.2)); // DEPARTED without a response
/// let v = check_api_span(&span).verdict;
/// assert_eq!((v.violations()[0].rule, v.violations()[0].event_index), (RuleId::ApiLifecycle, 2));
/// ```
pub fn check_api_span(span: &ApiSpan) -> ApiOutcome {
    let endpoint = span.endpoint();
    let (states, mut violations) = match endpoint {
        Endpoint::Chat => events::<ChatApi>(span),
        Endpoint::Completions => events::<CompletionsApi>(span),
    };
    let request_id = span.request_id().unwrap_or_default().to_owned();
    let at_end = span.events.len();
    let last = states.last().copied().unwrap_or(ApiState::New);
    for (rule, detail, index) in attributes(span, endpoint, last).into_iter().chain(status(span)) {
        violations.push(Violation {
            rule,
            request_id: request_id.clone().into(),
            event_index: index.unwrap_or(at_end),
            detail,
        });
    }
    violations.sort_by_key(|v| v.event_index);
    ApiOutcome { endpoint, states, verdict: Verdict::from_violations(violations, span.span.dropped_events) }
}

/// A2–A4 event by event under lifecycle `L`.
fn events<L: Lifecycle<State = ApiState, Label = ApiKind, Kind = ApiKind, Rule = RuleId>>(
    span: &ApiSpan,
) -> (Vec<ApiState>, Vec<Violation>) {
    let request_id = span.request_id().unwrap_or_default().to_owned();
    let mut state = L::INITIAL;
    let mut states = Vec::with_capacity(span.events.len());
    let mut violations = Vec::new();
    let mut seen: [Option<usize>; 5] = [None; 5];
    let mut prev_ts: Option<f64> = None;
    let mut ended_at: Option<usize> = None;
    for (index, e) in span.events.iter().enumerate() {
        let kind = e.kind();
        let broken = lifecycle_rule::<L>(state, e, kind, &seen, ended_at)
            .or_else(|| clock(e, prev_ts))
            .or_else(|| within(span.span, e));
        // Adopt: follow the table where it can; an illegal event leads where its kind leads.
        if let Some(k) = kind {
            match L::next(state, k) {
                Some(to) => state = to,
                None if ended_at.is_none() => {
                    if let Some(to) = L::target(Some(k), k) {
                        state = to;
                    }
                }
                None => {}
            }
            if let Some(slot) = ApiKind::ALL.iter().position(|x| *x == k).and_then(|i| seen.get_mut(i)) {
                slot.get_or_insert(index);
            }
            if k.is_terminal() {
                ended_at.get_or_insert(index);
            }
        }
        if let Some(AttrValue::Double(t)) = e.attribute(EVENT_TS_MONOTONIC) {
            prev_ts = Some(*t);
        }
        states.push(state);
        if let Some((rule, detail)) = broken {
            violations.push(Violation { rule, request_id: request_id.clone().into(), event_index: index, detail });
        }
    }
    if let Err(detail) = lifecycle::check_end::<L>(state, span.events.len())
        && span.span.end_unix_nano.is_some()
        && span.span.dropped_events == 0
    {
        violations.push(Violation {
            rule: L::RULES.end,
            request_id: request_id.into(),
            event_index: span.events.len(),
            detail,
        });
    }
    (states, violations)
}

/// A2 for one event.
fn lifecycle_rule<L: Lifecycle<State = ApiState, Label = ApiKind, Kind = ApiKind, Rule = RuleId>>(
    state: ApiState,
    e: &ApiEvent,
    kind: Option<ApiKind>,
    seen: &[Option<usize>; 5],
    ended_at: Option<usize>,
) -> Option<Broken> {
    let rule = RuleId::ApiLifecycle;
    let Some(kind) = kind else {
        let known: Vec<String> = ApiKind::ALL.iter().map(|k| format!("{API_EVENT_PREFIX}{k}")).collect();
        return Some(other(rule, format!("{} is not an API event (expected one of {})", e.name, known.join(", "))));
    };
    if let Some(end) = ended_at {
        return Some(other(rule, format!("{kind} after the terminal event #{end}")));
    }
    let once = ApiKind::ALL.iter().position(|x| *x == kind).and_then(|i| seen.get(i).copied().flatten());
    if let Some(first) = once {
        return Some((rule, Detail::Repeated { event: kind.to_string(), first: Seen::At(first) }));
    }
    match lifecycle::check_transition::<L>(state, Some(kind), kind) {
        Ok(_) => None,
        Err(_) if state == ApiState::New => Some((
            rule,
            Detail::BadStart {
                got: kind.to_string(),
                expected: L::allowed(ApiState::New).map(|k| k.to_string()).collect(),
            },
        )),
        Err(detail) => Some((rule, detail)),
    }
}

/// A3 for one event.
fn clock(e: &ApiEvent, prev: Option<f64>) -> Option<Broken> {
    let rule = RuleId::ApiClockAndStatus;
    match e.attribute(EVENT_TS_MONOTONIC) {
        None => return Some((rule, Detail::MissingAttribute { key: EVENT_TS_MONOTONIC.to_owned() })),
        Some(AttrValue::Double(t)) => {
            if let Some(p) = prev
                && t.partial_cmp(&p).is_none_or(|o| o.is_lt())
            {
                return Some((
                    rule,
                    Detail::WentBack { field: EVENT_TS_MONOTONIC.to_owned(), from: p.to_string(), to: t.to_string() },
                ));
            }
        }
        Some(v) => {
            return Some((
                rule,
                Detail::WrongType {
                    key: EVENT_TS_MONOTONIC.to_owned(),
                    expected: "double".to_owned(),
                    found: v.type_name().to_owned(),
                },
            ));
        }
    }
    if e.kind() == Some(ApiKind::Aborted) {
        match e.attribute(REASON) {
            None => return Some((rule, Detail::MissingAttribute { key: REASON.to_owned() })),
            Some(AttrValue::Str(_)) => {}
            Some(v) => return Some((rule, wrong_type(REASON, "string", v))),
        }
        if let Some(v) = e.attribute(ERROR).filter(|v| v.as_str().is_none()) {
            return Some((rule, wrong_type(ERROR, "string", v)));
        }
    }
    None
}

fn wrong_type(key: &str, expected: &str, found: &AttrValue) -> Detail {
    Detail::WrongType { key: key.to_owned(), expected: expected.to_owned(), found: found.type_name().to_owned() }
}

/// A4 for one event.
fn within(span: SpanInfo, e: &ApiEvent) -> Option<Broken> {
    let t = e.time_unix_nano?;
    if let Some(start) = span.start_unix_nano.filter(|&s| t < s) {
        return Some((
            RuleId::ApiWithinSpan,
            Detail::OutsideSpan { time_unix_nano: t, edge: SpanEdge::Start, span_unix_nano: start },
        ));
    }
    if let Some(end) = span.end_unix_nano.filter(|&end| t > end) {
        return Some((
            RuleId::ApiWithinSpan,
            Detail::OutsideSpan { time_unix_nano: t, edge: SpanEdge::End, span_unix_nano: end },
        ));
    }
    None
}

/// A1: the span's attributes, given its endpoint and final state.
fn attributes(span: &ApiSpan, endpoint: Endpoint, last: ApiState) -> Vec<(RuleId, Detail, Option<usize>)> {
    let rule = RuleId::ApiAttributes;
    let mut out = Vec::new();
    let required = [attr::REQUEST_ID, attr::HTTP_ROUTE];
    for key in required {
        if span.attribute(key).is_none() {
            out.push((rule, Detail::MissingAttribute { key: key.to_owned() }, None));
        }
    }
    let typed: [(&str, &str); 8] = [
        (attr::REQUEST_ID, "string"),
        (attr::HTTP_ROUTE, "string"),
        (attr::RESPONSE_MODEL, "string"),
        (attr::PROMPT_TOKENS, "int"),
        (attr::TEMPERATURE, "double"),
        (attr::TOP_P, "double"),
        (attr::MAX_TOKENS, "int"),
        (attr::N, "int"),
    ];
    for (key, expected) in typed.into_iter().chain([(attr::COMPLETION_TOKENS, "int")]) {
        if let Some(v) = span.attribute(key)
            && v.type_name() != expected
        {
            out.push((rule, wrong_type(key, expected, v), None));
        }
    }
    if span.attribute(attr::COMPLETION_TOKENS).is_some() && !(endpoint == Endpoint::Chat && last == ApiState::Departed)
    {
        out.push((
            rule,
            Detail::other(format!(
                "{} on a {} span that ends in {last}: only a chat span that ends with DEPARTED has it",
                attr::COMPLETION_TOKENS,
                endpoint.as_str()
            )),
            None,
        ));
    }
    out.truncate(1);
    out
}

/// A3's span condition: the status is ERROR exactly when an ABORTED carries `error`, with its
/// message.
fn status(span: &ApiSpan) -> Option<(RuleId, Detail, Option<usize>)> {
    let rule = RuleId::ApiClockAndStatus;
    let aborted = span.events.iter().position(|e| e.kind() == Some(ApiKind::Aborted));
    let error = aborted.and_then(|i| span.events.get(i)).and_then(|e| e.attribute(ERROR)).and_then(AttrValue::as_str);
    match (error, span.status) {
        (Some(message), StatusCode::Error) if message == span.status_message => None,
        (Some(message), StatusCode::Error) => Some((
            rule,
            Detail::other(format!(
                "the span status message is {:?}, but its ABORTED carries error {message:?}",
                span.status_message
            )),
            aborted,
        )),
        (Some(message), StatusCode::Unset | StatusCode::Ok) => Some((
            rule,
            Detail::other(format!("ABORTED carries error {message:?}, but the span status is not ERROR")),
            aborted,
        )),
        (None, StatusCode::Error) => Some((
            rule,
            Detail::other(format!(
                "the span status is ERROR ({:?}) without an ABORTED that carries an error",
                span.status_message
            )),
            None,
        )),
        (None, StatusCode::Unset | StatusCode::Ok) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_kind_has_a_row_in_the_chat_table_and_completions_lack_the_middle() {
        for k in ApiKind::ALL {
            assert!(CHAT_TABLE.iter().any(|r| r.label == *k), "{k}");
        }
        for r in COMPLETIONS_TABLE {
            assert!(!matches!(r.label, ApiKind::HandoffToCore | ApiKind::FirstResponseFromCore));
        }
        assert!(ChatApi::is_terminal(ApiState::Departed) && ChatApi::is_terminal(ApiState::Aborted));
        assert!(CompletionsApi::is_terminal(ApiState::Departed));
    }

    #[test]
    fn the_diagrams_end_everywhere_after_arrived() {
        let chat = ChatApi::mermaid();
        assert!(chat.contains("[*] --> Arrived : ARRIVED"), "{chat}");
        assert!(chat.contains("    HandedOff --> [*]\n"), "{chat}");
        assert!(!chat.contains("New --> [*]"), "{chat}");
    }

    #[test]
    fn endpoints_from_route_then_id() {
        assert_eq!(Endpoint::of(Some("/v1/chat/completions"), Some("cmpl-1")), Endpoint::Chat);
        assert_eq!(Endpoint::of(Some("/v1/completions"), None), Endpoint::Completions);
        assert_eq!(Endpoint::of(Some("/pooling"), None), Endpoint::Completions);
        assert_eq!(Endpoint::of(None, Some("cmpl-x")), Endpoint::Completions);
        assert_eq!(Endpoint::of(None, Some("chatcmpl-x")), Endpoint::Chat);
    }
}
