//! The trace as read: spans assembled from their records, resources (scheduler instances), and
//! counts of what else the input held.

use std::fmt;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use crate::model::SpanInfo;
use crate::model::api::{ApiEvent, ApiSpan, AttrValue, StatusCode};
use crate::wire::WireValue;

use super::record::RecordedEvent;

/// Lowercase hex of an id.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// One span as assembled from its records, holding only what the checker needs.
#[derive(Debug, Clone)]
pub struct Span {
    /// The trace id (16 bytes in valid OTLP; whatever the input had otherwise).
    pub trace_id: Box<[u8]>,
    /// The span id (8 bytes in valid OTLP).
    pub span_id: Box<[u8]>,
    /// The `gen_ai.request.id` attribute, when the span has it as a string.
    pub request_id: Option<String>,
    /// Index of the span's resource in [`Trace::resources`].
    pub resource: usize,
    /// The line of the span's first record.
    pub line: u64,
    /// Start, end and dropped events, for the checker.
    pub info: SpanInfo,
    /// The span's `journey.*` events, in timestamp order once the trace is finished.
    pub events: Vec<RecordedEvent>,
    /// How many records were merged into this span.
    pub records: u32,
    /// What the layer rules need beyond the journey: name, scope, parent, kind, flags, status,
    /// and for an API span its attributes and `api.*` events (`SPEC.md` §9).
    pub layer: SpanLayer,
}

/// The scope of API spans (`llm_request`).
pub const API_SCOPE: &str = "vllm.api";
/// The name of API spans.
pub const API_SPAN_NAME: &str = "llm_request";

/// A span's identity beyond its ids, and an API span's contents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanLayer {
    /// The span's name (`llm_core`, `llm_request`, …).
    pub name: Box<str>,
    /// The instrumentation scope's name (`vllm.scheduler`, `vllm.api`, …).
    pub scope: Box<str>,
    /// The parent span id (empty for a root).
    pub parent_span_id: Box<[u8]>,
    /// OTLP span kind (1 INTERNAL, 2 SERVER, …).
    pub kind: i32,
    /// OTLP span flags (remote-parent bits 0x100, 0x200).
    pub flags: u32,
    /// The status code.
    pub status: StatusCode,
    /// The status message.
    pub status_message: String,
    /// The span's attributes: kept for API spans only.
    pub attributes: Vec<(Box<str>, AttrValue)>,
    /// The `api.*` events, in timestamp order once the trace is finished.
    pub api_events: Vec<ApiEvent>,
}

impl Span {
    /// Whether the span carries a journey (at least one `journey.*` event).
    pub fn is_journey(&self) -> bool {
        !self.events.is_empty()
    }

    /// Whether the span is an API span: scope `vllm.api`, or `api.*` events, or (when the
    /// input lost the scope) named `llm_request` without journey events.
    pub fn is_api(&self) -> bool {
        &*self.layer.scope == API_SCOPE
            || !self.layer.api_events.is_empty()
            || (self.layer.scope.is_empty() && &*self.layer.name == API_SPAN_NAME && self.events.is_empty())
    }

    /// The parent span id in lowercase hex, `None` for a root.
    pub fn parent_span_id_hex(&self) -> Option<String> {
        (!self.layer.parent_span_id.is_empty()).then(|| hex(&self.layer.parent_span_id))
    }

    /// The span as the API checker reads it.
    pub fn api_span(&self) -> ApiSpan {
        ApiSpan {
            span: self.info,
            attributes: self.layer.attributes.clone(),
            status: self.layer.status,
            status_message: self.layer.status_message.clone(),
            events: self.layer.api_events.clone(),
        }
    }

    /// The trace id in lowercase hex.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id in lowercase hex.
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }
}

/// A resource, as the list of its attributes (key and value rendered as JSON), sorted by key;
/// two resources are the same scheduler instance when their lists are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Resource(pub Vec<(String, String)>);

impl Resource {
    pub(super) fn of(attributes: &[KeyValue]) -> Resource {
        let mut attrs: Vec<(String, String)> =
            attributes.iter().map(|kv| (kv.key.clone(), render_value(kv.value.as_ref()))).collect();
        attrs.sort();
        Resource(attrs)
    }

    /// The value of `service.name`, when the resource has one.
    pub fn service_name(&self) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == "service.name").map(|(_, v)| v.trim_matches('"'))
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { "" } else { ", " })?;
        }
        f.write_str("}")
    }
}

fn render_value(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(value) => serde_json::to_string(value).unwrap_or_else(|e| format!("<{e}>")),
        None => "null".to_owned(),
    }
}

/// The attribute value, owned, as the API checker sees it.
pub(super) fn attr_value(v: Option<&AnyValue>) -> AttrValue {
    match wire_value(v) {
        WireValue::Str(s) => AttrValue::Str(s.into()),
        WireValue::Int(i) => AttrValue::Int(i),
        WireValue::Double(d) => AttrValue::Double(d),
        WireValue::Bool(b) => AttrValue::Bool(b),
        WireValue::Other(t) => AttrValue::Other(t),
    }
}

/// The attribute value as the wire decoder sees it.
pub(super) fn wire_value(v: Option<&AnyValue>) -> WireValue<'_> {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => WireValue::Str(s),
        Some(any_value::Value::IntValue(i)) => WireValue::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => WireValue::Double(*d),
        Some(any_value::Value::BoolValue(b)) => WireValue::Bool(*b),
        Some(any_value::Value::ArrayValue(_)) => WireValue::Other("array"),
        Some(any_value::Value::KvlistValue(_)) => WireValue::Other("map"),
        Some(any_value::Value::BytesValue(_)) => WireValue::Other("bytes"),
        Some(any_value::Value::StringValueStrindex(_)) => WireValue::Other("string table index"),
        None => WireValue::Other("empty value"),
    }
}

/// Counts of what an input held besides its journeys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCounts {
    /// Lines read (including blank and malformed ones), or records of a length-framed file.
    pub lines: u64,
    /// Requests (lines, or documents) parsed.
    pub requests: u64,
    /// Span records parsed (a span that appears twice counts twice).
    pub span_records: u64,
    /// Span events whose name does not start with `journey.` (ignored).
    pub other_events: u64,
    /// Journey events left out because another record of the same span carried them already.
    pub duplicate_events: u64,
    /// Span records left out because they contradict an earlier record of the same span.
    pub conflicting_records: u64,
    /// Span records left out because their span was already checked (see
    /// [`TraceBuilder::with_window`](super::TraceBuilder::with_window)).
    pub late_records: u64,
    /// Requests that hold OTLP logs (`resourceLogs`) instead of spans.
    pub logs_requests: u64,
    /// Requests that hold OTLP metrics (`resourceMetrics`) instead of spans.
    pub metrics_requests: u64,
    /// Requests that hold OTLP profiles (`resourceProfiles`) instead of spans.
    pub profiles_requests: u64,
    /// The format read: `json` or `framed`; `None` for an empty input.
    pub format: Option<&'static str>,
    /// The whole-input compression, `zstd` or `gzip`, when there was one.
    pub compression: Option<&'static str>,
}

/// The spans of one input (one run of a scheduler, or a Collector file with several instances).
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The input's name.
    pub source_name: String,
    /// Every span, in order of first appearance.
    pub spans: Vec<Span>,
    /// The distinct resources; [`Span::resource`] indexes this.
    pub resources: Vec<Resource>,
    /// What else was read.
    pub counts: ReadCounts,
}

impl Trace {
    /// The spans that carry journeys.
    pub fn journeys(&self) -> impl Iterator<Item = &Span> {
        self.spans.iter().filter(|s| s.is_journey())
    }
}
