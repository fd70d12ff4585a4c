//! Assembling a [`Trace`] from decoded OTLP messages: span records grouped by their ids, merged,
//! and checked for contradictions.
//!
//! # Entry points
//!
//! Whatever decoded the messages (the file readers here, an OTLP receiver, an in-memory
//! exporter), spans enter through [`TraceBuilder::add_export_request`] or
//! [`TraceBuilder::add_traces_data`] (the same message on the wire), or through the
//! [`Assemble`] trait, which the streaming [`TraceStream`](crate::otel::TraceStream) implements
//! too. Each call gives the position (line, record, or request number) the message came from.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span as ProtoSpan, TracesData};

use crate::model::SpanInfo;
use crate::model::steps::StepWindow;
use crate::wire::{self, keys};

use super::error::{InputError, InputErrorKind, Unit};
use super::record::{merge_records, record_event};
use super::trace::{API_SCOPE, ReadCounts, ReadWindow, Resource, Span, SpanLayer, Trace, attr_value, hex, wire_value};
use crate::model::api::{API_EVENT_PREFIX, ApiEvent, StatusCode};

/// (trace id, span id): what identifies a span.
type SpanIds = (Box<[u8]>, Box<[u8]>);

/// Something decoded OTLP trace messages are assembled into.
pub trait Assemble {
    /// Adds every span of `request`, found at `position` (a line, record or request number);
    /// records that cannot be used are left out and returned as errors.
    fn add_request(&mut self, request: &ExportTraceServiceRequest, position: u64) -> Vec<InputError>;
    /// The counts of what was read, for the reader to add to.
    fn counts_mut(&mut self) -> &mut ReadCounts;
    /// Whether positions are lines or records (for the wording of errors).
    fn set_unit(&mut self, unit: Unit);
}

/// Builds a [`Trace`] from parsed requests: groups span records, decodes journey events.
///
/// [`read_trace`](super::read_trace) drives it from a reader; use it directly to feed requests
/// obtained otherwise (from an in-memory exporter, an OTLP receiver).
///
/// By default every span is held until [`finish`](Self::finish). With a
/// [window](Self::with_window) of `n` spans, the builder holds at most about `n`: when more are
/// held, the half touched least recently are let go, to be taken with
/// [`take_released`](Self::take_released) and checked. A record of a span that was let go
/// arrives too late to be merged: it is left out and reported
/// ([`InputErrorKind::LateRecord`]). Since a span is exported once, when it ends, the records
/// of one span are close together in every real trace, and a window of thousands of spans
/// changes nothing but the memory used.
#[derive(Debug, Default)]
pub struct TraceBuilder {
    pub(super) trace: Trace,
    by_ids: HashMap<SpanIds, usize>,
    by_resource: HashMap<Resource, usize>,
    /// For each held span: its order of first appearance and the record count when it was last
    /// touched (parallel to `trace.spans`).
    touched: Vec<(u64, u64)>,
    /// Spans seen so far, and records added so far (the clock of `touched`).
    seen: u64,
    clock: u64,
    window: Option<usize>,
    released: Vec<Span>,
    /// Fingerprints of the ids of released spans, to recognise their late records.
    released_ids: HashSet<u64>,
    unit: Unit,
    /// Step windows read and not yet taken; fingerprints of every window seen.
    step_windows: Vec<ReadWindow>,
    window_ids: HashSet<u64>,
}

impl TraceBuilder {
    /// An empty trace for the input called `source_name`.
    pub fn new(source_name: impl Into<String>) -> TraceBuilder {
        TraceBuilder { trace: Trace { source_name: source_name.into(), ..Trace::default() }, ..Default::default() }
    }

    /// Holds at most about `spans` spans (at least 2), letting go of the least recently
    /// touched ones (see the type's documentation).
    pub fn with_window(mut self, spans: usize) -> TraceBuilder {
        self.window = Some(spans.max(2));
        self
    }

    /// The spans let go since the last call, in order of first appearance within each batch:
    /// complete as far as this builder is concerned (events sorted, records merged).
    pub fn take_released(&mut self) -> std::vec::IntoIter<Span> {
        std::mem::take(&mut self.released).into_iter()
    }

    /// The input's name.
    pub fn source_name(&self) -> &str {
        &self.trace.source_name
    }

    /// What was read so far besides the spans.
    pub fn counts(&self) -> &ReadCounts {
        &self.trace.counts
    }

    /// The resources seen so far; [`Span::resource`] indexes this.
    pub fn resources(&self) -> &[Resource] {
        &self.trace.resources
    }

    /// Adds every span of `request`, which was found at `line`. Records that contradict an
    /// earlier record of the same span are left out and returned as errors.
    pub fn add(&mut self, request: ExportTraceServiceRequest, line: u64) -> Vec<InputError> {
        self.add_export_request(&request, line)
    }

    /// Adds every span of an OTLP `ExportTraceServiceRequest` (as a gRPC or HTTP receiver
    /// decodes it), found at `position`.
    pub fn add_export_request(&mut self, request: &ExportTraceServiceRequest, position: u64) -> Vec<InputError> {
        self.add_resource_spans(&request.resource_spans, position)
    }

    /// Adds every span of an OTLP `TracesData` (as the Collector's file exporter writes it),
    /// found at `position`.
    pub fn add_traces_data(&mut self, data: &TracesData, position: u64) -> Vec<InputError> {
        self.add_resource_spans(&data.resource_spans, position)
    }

    fn add_resource_spans(&mut self, resource_spans: &[ResourceSpans], position: u64) -> Vec<InputError> {
        self.trace.counts.requests += 1;
        let mut errors = Vec::new();
        for rs in resource_spans {
            let resource = Resource::of(rs.resource.as_ref().map_or(&[][..], |r| &r.attributes));
            let next = self.trace.resources.len();
            let resource = match self.by_resource.entry(resource) {
                Entry::Occupied(o) => *o.get(),
                Entry::Vacant(v) => {
                    self.trace.resources.push(v.key().clone());
                    v.insert(next);
                    next
                }
            };
            for ss in &rs.scope_spans {
                let scope = ss.scope.as_ref().map_or("", |s| s.name.as_str());
                for span in &ss.spans {
                    if wire::steps::is_window(scope, &span.name) {
                        self.add_window(span, resource, position);
                        continue;
                    }
                    let mut notes = Vec::new();
                    if let Err(kind) = self.add_span(span, scope, resource, position, &mut notes) {
                        notes.push(kind);
                    }
                    for kind in notes {
                        errors.push(InputError::at(&self.trace.source_name, self.unit, Some(position), kind));
                    }
                }
            }
        }
        self.evict_if_full();
        errors
    }

    /// Adds one span record; `Err` when it is left out, `notes` for problems with parts of it.
    fn add_span(
        &mut self,
        span: &ProtoSpan,
        scope: &str,
        resource: usize,
        line: u64,
        notes: &mut Vec<InputErrorKind>,
    ) -> Result<(), InputErrorKind> {
        self.trace.counts.span_records += 1;
        self.clock += 1;
        let request_id = span.attributes.iter().find(|kv| kv.key == keys::REQUEST_ID).and_then(|kv| {
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            }
        });
        let info = SpanInfo {
            start_unix_nano: (span.start_time_unix_nano != 0).then_some(span.start_time_unix_nano),
            end_unix_nano: (span.end_time_unix_nano != 0).then_some(span.end_time_unix_nano),
            dropped_events: span.dropped_events_count,
        };
        let (trace_id, span_id): SpanIds = (span.trace_id.clone().into(), span.span_id.clone().into());

        // Spans without ids cannot be told apart, so they are never merged.
        let anonymous = trace_id.is_empty() && span_id.is_empty();
        if !anonymous && !self.released_ids.is_empty() && self.released_ids.contains(&fingerprint(&trace_id, &span_id))
        {
            self.trace.counts.late_records += 1;
            return Err(InputErrorKind::LateRecord {
                trace_id: hex(&trace_id),
                span_id: hex(&span_id),
                window: self.window.unwrap_or(0),
            });
        }
        let existing = if anonymous {
            None
        } else {
            match self.by_ids.entry((trace_id.clone(), span_id.clone())) {
                Entry::Occupied(o) => Some(*o.get()),
                Entry::Vacant(v) => {
                    v.insert(self.trace.spans.len());
                    None
                }
            }
        };
        let (index, span_ref) = match existing {
            None => {
                self.trace.spans.push(Span {
                    trace_id,
                    span_id,
                    request_id,
                    resource,
                    line,
                    info,
                    events: Vec::new(),
                    records: 1,
                    layer: SpanLayer::default(),
                });
                self.touched.push((self.seen, self.clock));
                self.seen += 1;
                let last = self.trace.spans.len() - 1;
                (last, &mut self.trace.spans[last])
            }
            Some(i) => {
                let s = &mut self.trace.spans[i];
                let unit = self.unit;
                let conflict = |what, first: String, here: String| InputErrorKind::ConflictingSpan {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    unit,
                    first_line: s.line,
                    what,
                    first,
                    here,
                };
                if let (Some(first), Some(here)) = (&s.request_id, &request_id)
                    && first != here
                {
                    self.trace.counts.conflicting_records += 1;
                    return Err(conflict("request id", format!("{first:?}"), format!("{here:?}")));
                }
                if s.resource != resource {
                    self.trace.counts.conflicting_records += 1;
                    let resources = &self.trace.resources;
                    return Err(conflict(
                        "resource",
                        resources[s.resource].to_string(),
                        resources[resource].to_string(),
                    ));
                }
                if s.request_id.is_none() {
                    s.request_id = request_id;
                }
                s.info.start_unix_nano = min_known(s.info.start_unix_nano, info.start_unix_nano);
                s.info.end_unix_nano = s.info.end_unix_nano.max(info.end_unix_nano);
                s.info.dropped_events = s.info.dropped_events.max(info.dropped_events);
                s.records += 1;
                (i, s)
            }
        };
        let part = span_ref.records - 1;
        merge_layer(&mut span_ref.layer, span, scope);
        let mut previous = 0;
        for event in &span.events {
            if event.name.starts_with(API_EVENT_PREFIX) {
                let api = ApiEvent {
                    name: event.name.clone().into_boxed_str(),
                    time_unix_nano: (event.time_unix_nano != 0).then_some(event.time_unix_nano),
                    attributes: event
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone().into_boxed_str(), attr_value(kv.value.as_ref())))
                        .collect(),
                };
                // Another record of the same span carrying the same event: once.
                if part == 0 || !span_ref.layer.api_events.contains(&api) {
                    span_ref.layer.api_events.push(api);
                } else {
                    self.trace.counts.duplicate_events += 1;
                }
                continue;
            }
            match record_event(event, part, previous) {
                Some(e) => {
                    if e.time_unix_nano == 0 {
                        notes.push(InputErrorKind::NoTimestamp {
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            name: event.name.clone(),
                        });
                    }
                    previous = e.order();
                    span_ref.events.push(e);
                }
                None => self.trace.counts.other_events += 1,
            }
        }
        if let Some(t) = self.touched.get_mut(index) {
            t.1 = self.clock;
        }
        Ok(())
    }

    /// Keeps a step window apart from the journeys (a repeated record of one is left out).
    fn add_window(&mut self, span: &ProtoSpan, resource: usize, line: u64) {
        self.trace.counts.span_records += 1;
        if !self.window_ids.insert(fingerprint(&span.trace_id, &span.span_id)) {
            return;
        }
        let attribute = |key: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| wire::steps::window_attribute(wire_value(kv.value.as_ref())))
        };
        let events = span
            .events
            .iter()
            .map(|e| {
                wire::steps::decode(
                    &e.name,
                    e.attributes.iter().map(|kv| (kv.key.as_str(), wire_value(kv.value.as_ref()))),
                )
            })
            .collect();
        let window = StepWindow {
            name: span.name.clone(),
            root: span.parent_span_id.is_empty(),
            internal: span.kind == SpanKind::Internal as i32,
            sequence: attribute(wire::steps::SPAN_SEQUENCE),
            range_start: attribute(wire::steps::RANGE_START),
            closure_interval: attribute(wire::steps::CLOSURE_INTERVAL),
            range_end: attribute(wire::steps::RANGE_END),
            dropped_events: span.dropped_events_count,
            events,
        };
        self.step_windows.push(ReadWindow {
            resource,
            line,
            trace_id: span.trace_id.clone().into(),
            span_id: span.span_id.clone().into(),
            start_unix_nano: span.start_time_unix_nano,
            end_unix_nano: span.end_time_unix_nano,
            window,
        });
    }

    /// The step windows read since the last call, in input order.
    pub fn take_step_windows(&mut self) -> std::vec::IntoIter<ReadWindow> {
        std::mem::take(&mut self.step_windows).into_iter()
    }

    /// With a window, lets go of the least recently touched half of the held spans once more
    /// than the window are held.
    fn evict_if_full(&mut self) {
        let Some(window) = self.window else { return };
        if self.trace.spans.len() <= window {
            return;
        }
        let mut by_touch: Vec<(u64, usize)> = self.touched.iter().enumerate().map(|(i, t)| (t.1, i)).collect();
        by_touch.sort_unstable();
        let mut release = vec![false; self.trace.spans.len()];
        for &(_, i) in &by_touch[..self.trace.spans.len() - window / 2] {
            release[i] = true;
        }
        self.release(release);
    }

    /// How many spans are held (not yet released).
    pub fn held(&self) -> usize {
        self.trace.spans.len()
    }

    /// Whether the span with these ids is held (a later record of it merges).
    pub fn holds(&self, trace_id: &[u8], span_id: &[u8]) -> bool {
        self.by_ids.contains_key(&(Box::from(trace_id), Box::from(span_id)))
    }

    /// Whether the span with these ids was released (a record of it now is late).
    pub fn was_released(&self, trace_id: &[u8], span_id: &[u8]) -> bool {
        !self.released_ids.is_empty() && self.released_ids.contains(&fingerprint(trace_id, span_id))
    }

    /// The builder's clock: span records added so far. A receiver notes it with the time, to
    /// [release](Self::release_untouched_since) the spans that have been quiet long enough.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Lets go of every held span whose last record came at or before `clock` (see
    /// [`clock`](Self::clock)), to be taken with [`take_released`](Self::take_released): how
    /// `journey serve` decides a span once no record has come for it for a while.
    pub fn release_untouched_since(&mut self, clock: u64) {
        if !self.touched.iter().any(|t| t.1 <= clock) {
            return;
        }
        let release = self.touched.iter().map(|t| t.1 <= clock).collect();
        self.release(release);
    }

    /// Lets go of the held spans marked in `release` (parallel to the held spans).
    fn release(&mut self, release: Vec<bool>) {
        let spans = std::mem::take(&mut self.trace.spans);
        let touched = std::mem::take(&mut self.touched);
        let mut out = Vec::new();
        for ((span, t), go) in spans.into_iter().zip(touched).zip(release) {
            if go {
                out.push((t.0, span));
            } else {
                self.trace.spans.push(span);
                self.touched.push(t);
            }
        }
        out.sort_by_key(|(seen, _)| *seen);
        self.by_ids.clear();
        for (i, s) in self.trace.spans.iter().enumerate() {
            if !(s.trace_id.is_empty() && s.span_id.is_empty()) {
                self.by_ids.insert((s.trace_id.clone(), s.span_id.clone()), i);
            }
        }
        for (_, mut span) in out {
            if !(span.trace_id.is_empty() && span.span_id.is_empty()) {
                self.released_ids.insert(fingerprint(&span.trace_id, &span.span_id));
            }
            self.trace.counts.duplicate_events += settle(&mut span);
            self.released.push(span);
        }
    }

    /// The trace: every journey's events in timestamp order, records of one span merged. With
    /// a window, the spans not yet released.
    pub fn finish(mut self) -> Trace {
        let mut duplicates = 0;
        for span in &mut self.trace.spans {
            duplicates += settle(span);
        }
        self.trace.counts.duplicate_events += duplicates;
        self.trace.step_windows.append(&mut self.step_windows);
        self.trace
    }
}

impl Assemble for TraceBuilder {
    fn add_request(&mut self, request: &ExportTraceServiceRequest, position: u64) -> Vec<InputError> {
        self.add_export_request(request, position)
    }

    fn counts_mut(&mut self) -> &mut ReadCounts {
        &mut self.trace.counts
    }

    fn set_unit(&mut self, unit: Unit) {
        self.unit = unit;
    }
}

/// Takes what a record says about the span's identity (the first record that says it wins),
/// and an API span's attributes (by key, the first record's value wins).
fn merge_layer(layer: &mut SpanLayer, span: &ProtoSpan, scope: &str) {
    if layer.name.is_empty() && !span.name.is_empty() {
        layer.name = span.name.as_str().into();
    }
    if layer.scope.is_empty() && !scope.is_empty() {
        layer.scope = scope.into();
    }
    if layer.parent_span_id.is_empty() && !span.parent_span_id.is_empty() {
        layer.parent_span_id = span.parent_span_id.clone().into();
    }
    if layer.kind == 0 {
        layer.kind = span.kind;
    }
    layer.flags |= span.flags;
    if let Some(status) = &span.status
        && layer.status == StatusCode::Unset
    {
        layer.status = StatusCode::of_otlp(status.code);
        layer.status_message.clone_from(&status.message);
    }
    let is_api = &*layer.scope == API_SCOPE
        || span.name == super::trace::API_SPAN_NAME
        || span.events.iter().any(|e| e.name.starts_with(API_EVENT_PREFIX));
    if is_api {
        for kv in &span.attributes {
            if !layer.attributes.iter().any(|(k, _)| **k == *kv.key) {
                layer.attributes.push((kv.key.clone().into_boxed_str(), attr_value(kv.value.as_ref())));
            }
        }
    }
}

/// Sorts a span's events and merges its records; returns how many events were merged away.
fn settle(span: &mut Span) -> u64 {
    // Stable: ties keep input order; events without a timestamp stay where they were.
    span.layer.api_events.sort_by_key(|e| e.time_unix_nano.unwrap_or(0));
    span.events.sort_by_key(|e| e.order());
    if span.records > 1 { merge_records(&mut span.events) } else { 0 }
}

fn fingerprint(trace_id: &[u8], span_id: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    (trace_id, span_id).hash(&mut h);
    h.finish()
}

fn min_known(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
