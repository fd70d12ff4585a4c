//! Assembling a [`Trace`] from decoded OTLP messages: span records grouped by their ids, merged,
//! and checked for contradictions.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;

use crate::model::SpanInfo;
use crate::wire::keys;

use super::error::{InputError, InputErrorKind};
use super::record::{merge_records, record_event};
use super::trace::{Resource, Span, Trace, hex};

/// (trace id, span id): what identifies a span.
type SpanIds = (Box<[u8]>, Box<[u8]>);

/// Builds a [`Trace`] from parsed requests: groups span records, decodes journey events.
///
/// [`read_trace`] drives it from a reader; use it directly to feed requests obtained otherwise
/// (from an in-memory exporter, say).
#[derive(Debug, Default)]
pub struct TraceBuilder {
    pub(super) trace: Trace,
    by_ids: HashMap<SpanIds, usize>,
    by_resource: HashMap<Resource, usize>,
}

impl TraceBuilder {
    /// An empty trace for the input called `source_name`.
    pub fn new(source_name: impl Into<String>) -> TraceBuilder {
        TraceBuilder { trace: Trace { source_name: source_name.into(), ..Trace::default() }, ..Default::default() }
    }

    /// Adds every span of `request`, which was found at `line`. Records that contradict an
    /// earlier record of the same span are left out and returned as errors.
    pub fn add(&mut self, request: ExportTraceServiceRequest, line: u64) -> Vec<InputError> {
        self.trace.counts.requests += 1;
        let mut errors = Vec::new();
        for rs in request.resource_spans {
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
            for ss in rs.scope_spans {
                for span in ss.spans {
                    if let Err(kind) = self.add_span(span, resource, line) {
                        errors.push(InputError { source_name: self.trace.source_name.clone(), line: Some(line), kind });
                    }
                }
            }
        }
        errors
    }

    fn add_span(&mut self, span: ProtoSpan, resource: usize, line: u64) -> Result<(), InputErrorKind> {
        self.trace.counts.span_records += 1;
        let ProtoSpan {
            trace_id,
            span_id,
            attributes,
            events,
            start_time_unix_nano,
            end_time_unix_nano,
            dropped_events_count,
            ..
        } = span;
        let request_id = attributes.into_iter().find(|kv| kv.key == keys::REQUEST_ID).and_then(|kv| {
            match kv.value.and_then(|v| v.value) {
                Some(any_value::Value::StringValue(s)) => Some(s),
                _ => None,
            }
        });
        let info = SpanInfo {
            start_unix_nano: (start_time_unix_nano != 0).then_some(start_time_unix_nano),
            end_unix_nano: (end_time_unix_nano != 0).then_some(end_time_unix_nano),
            dropped_events: dropped_events_count,
        };
        let (trace_id, span_id) = (trace_id.into_boxed_slice(), span_id.into_boxed_slice());

        // Spans without ids cannot be told apart, so they are never merged.
        let existing = if trace_id.is_empty() && span_id.is_empty() {
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
        let span = match existing {
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
                });
                let last = self.trace.spans.len() - 1;
                &mut self.trace.spans[last]
            }
            Some(i) => {
                let s = &mut self.trace.spans[i];
                let conflict = |what, first: String, here: String| InputErrorKind::ConflictingSpan {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
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
                s
            }
        };
        let part = span.records - 1;
        for event in events {
            match record_event(event, part) {
                Some(e) => span.events.push(e),
                None => self.trace.counts.other_events += 1,
            }
        }
        Ok(())
    }

    /// The trace: every journey's events in timestamp order, records of one span merged.
    pub fn finish(mut self) -> Trace {
        let mut duplicates = 0;
        for span in &mut self.trace.spans {
            // Stable: ties keep input order.
            span.events.sort_by_key(|e| e.time_unix_nano);
            if span.records > 1 {
                duplicates += merge_records(&mut span.events);
            }
        }
        self.trace.counts.duplicate_events += duplicates;
        self.trace
    }

    /// Counts a line read (see [`ReadCounts::lines`]).
    pub(super) fn count_line(&mut self) {
        self.trace.counts.lines += 1;
    }
}

fn min_known(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
