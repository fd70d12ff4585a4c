//! Parsing one OTLP JSON request with the tolerance the protobuf JSON mapping asks for, and
//! errors that name the field.
//!
//! The fast path is `serde_json` into `opentelemetry-proto`'s types. Only when that fails does
//! the reader look closer:
//!
//! - The protobuf JSON mapping writes non-finite doubles as the strings `"NaN"`, `"Infinity"`
//!   and `"-Infinity"`, and any integer as a number or a string. `opentelemetry-proto` takes
//!   neither for `doubleValue` nor for its 32-bit counters, so such a line would lose every span
//!   on it. The reader rewrites those values (a non-finite double into a string value marked
//!   with a NUL prefix no real attribute has, turned back into the double after parsing; a
//!   quoted counter into the number) and parses again.
//! - An error is reported with the path of the field it is in, and the messages of
//!   `opentelemetry-proto`'s internal types are put in words
//!   (`timeUnixNano: invalid digit found in string (at resourceSpans[0]...)`).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use super::error::InputErrorKind;

/// Marks a string value that stands for a non-finite double during the second parse.
const SENTINEL: &str = "\u{0}journey-double:";

/// Parses one request (a line, a framed JSON record).
pub(crate) fn parse_request(text: &[u8]) -> Result<ExportTraceServiceRequest, InputErrorKind> {
    let first = match serde_json::from_slice::<ExportTraceServiceRequest>(text) {
        Ok(request) => return Ok(request),
        Err(e) => e,
    };
    if first.classify() == serde_json::error::Category::Data
        && let Some(rewritten) = rewrite(text)
    {
        return match serde_json::from_slice::<ExportTraceServiceRequest>(&rewritten) {
            Ok(mut request) => {
                restore_doubles(&mut request);
                Ok(request)
            }
            // What is left wrong after the rewrite; its column is the rewritten text's, so
            // it is not given.
            Err(e) => Err(match explain(&rewritten, &e) {
                InputErrorKind::Json { message, .. } => InputErrorKind::Json { message, column: None },
                other => other,
            }),
        };
    }
    Err(explain(text, &first))
}

/// The error of `text` with the path of the field it is in (data errors only: a syntax error's
/// column says where it is).
fn explain(text: &[u8], e: &serde_json::Error) -> InputErrorKind {
    let base = InputErrorKind::json(e);
    if e.classify() != serde_json::error::Category::Data {
        return base;
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    let Err(err) = serde_path_to_error::deserialize::<_, ExportTraceServiceRequest>(&mut de) else {
        return base;
    };
    let path = err.path().to_string();
    let inner = InputErrorKind::json(err.inner());
    let (message, column) = match inner {
        InputErrorKind::Json { message, column } => (message, column),
        other => return other,
    };
    let message = words(&message);
    let field = err.path().iter().next_back().and_then(|s| match s {
        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
        serde_path_to_error::Segment::Seq { .. }
        | serde_path_to_error::Segment::Enum { .. }
        | serde_path_to_error::Segment::Unknown => None,
    });
    let message = match field {
        Some(field) if path != "." => format!("{field}: {message} (at {path})"),
        Some(_) | None if path != "." => format!("{message} (at {path})"),
        Some(_) | None => message,
    };
    InputErrorKind::Json { message, column }
}

/// `opentelemetry-proto`'s internal messages in words.
fn words(message: &str) -> String {
    if message.contains("untagged enum StringOrInt") {
        "expected an integer (a number or a string of digits)".to_owned()
    } else {
        message.to_owned()
    }
}

/// Keys whose value is a 32-bit counter that the mapping allows as a string.
const COUNTERS: [&[u8]; 4] = [b"droppedAttributesCount", b"droppedEventsCount", b"droppedLinksCount", b"flags"];

/// `text` with non-finite doubles and quoted counters rewritten (see the module
/// documentation), `None` when there is nothing to rewrite.
fn rewrite(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() + 64);
    let mut changed = false;
    let mut i = 0;
    while i < text.len() {
        if text[i] != b'"' {
            out.push(text[i]);
            i += 1;
            continue;
        }
        // A string token: copy it whole (escapes included), then look at what follows a key.
        let end = string_end(text, i);
        let token = &text[i..end];
        let key = &token[1..token.len().saturating_sub(1).max(1)];
        let after_colon = skip_ws(text, end).filter(|&j| text[j] == b':').and_then(|j| skip_ws(text, j + 1));
        if let Some(v) = after_colon
            && text[v] == b'"'
        {
            let vend = string_end(text, v);
            let value = &text[v + 1..vend.saturating_sub(1).max(v + 1)];
            if key == b"doubleValue" && matches!(value, b"NaN" | b"Infinity" | b"-Infinity") {
                out.extend_from_slice(b"\"stringValue\":\"\\u0000journey-double:");
                out.extend_from_slice(value);
                out.push(b'"');
                i = vend;
                changed = true;
                continue;
            }
            if COUNTERS.contains(&key) && !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
                out.extend_from_slice(token);
                out.push(b':');
                out.extend_from_slice(value);
                i = vend;
                changed = true;
                continue;
            }
        }
        out.extend_from_slice(token);
        i = end;
    }
    changed.then_some(out)
}

/// The index just past the string token that starts at `start` (a `"`), or the end of `text`.
fn string_end(text: &[u8], start: usize) -> usize {
    let mut j = start + 1;
    while j < text.len() {
        match text[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    text.len()
}

/// The first index at or after `i` that is not JSON whitespace.
fn skip_ws(text: &[u8], i: usize) -> Option<usize> {
    (i..text.len()).find(|&j| !matches!(text[j], b' ' | b'\t' | b'\n' | b'\r'))
}

/// Turns the marked string values of [`rewrite`] back into doubles.
fn restore_doubles(request: &mut ExportTraceServiceRequest) {
    for rs in &mut request.resource_spans {
        if let Some(r) = &mut rs.resource {
            restore_all(&mut r.attributes);
        }
        for ss in &mut rs.scope_spans {
            if let Some(scope) = &mut ss.scope {
                restore_all(&mut scope.attributes);
            }
            for span in &mut ss.spans {
                restore_all(&mut span.attributes);
                for e in &mut span.events {
                    restore_all(&mut e.attributes);
                }
                for l in &mut span.links {
                    restore_all(&mut l.attributes);
                }
            }
        }
    }
}

fn restore_all(attributes: &mut [KeyValue]) {
    for kv in attributes {
        if let Some(v) = &mut kv.value {
            restore(v);
        }
    }
}

fn restore(v: &mut AnyValue) {
    match &mut v.value {
        Some(any_value::Value::StringValue(s)) => {
            let d = match s.strip_prefix(SENTINEL) {
                Some("NaN") => f64::NAN,
                Some("Infinity") => f64::INFINITY,
                Some("-Infinity") => f64::NEG_INFINITY,
                Some(_) | None => return,
            };
            v.value = Some(any_value::Value::DoubleValue(d));
        }
        Some(any_value::Value::ArrayValue(a)) => a.values.iter_mut().for_each(restore),
        Some(any_value::Value::KvlistValue(kv)) => restore_all(&mut kv.values),
        Some(
            any_value::Value::BoolValue(_)
            | any_value::Value::IntValue(_)
            | any_value::Value::DoubleValue(_)
            | any_value::Value::BytesValue(_)
            | any_value::Value::StringValueStrindex(_),
        )
        | None => {}
    }
}

/// What binary input looks like, when `bytes` is not text: `None` for text.
pub(crate) fn looks_binary(bytes: &[u8]) -> Option<&'static str> {
    let head = &bytes[..bytes.len().min(64)];
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("the input looks zstd-compressed")
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Some("the input looks gzip-compressed")
    } else if head.contains(&0) {
        Some("the input holds NUL bytes: binary data, not JSON (protobuf?)")
    } else if head.iter().any(|&b| b < 0x09 || (0x0e..0x20).contains(&b)) {
        Some("the input holds control bytes: binary data, not JSON (protobuf?)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(attr_value: &str) -> String {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"01","spanId":"02","droppedEventsCount":"3","events":[{{"name":"x","attributes":[{{"key":"ts.monotonic","value":{attr_value}}}]}}]}}]}}]}}]}}"#
        )
    }

    fn value(r: &ExportTraceServiceRequest) -> Option<any_value::Value> {
        r.resource_spans[0].scope_spans[0].spans[0].events[0].attributes[0].value.clone()?.value
    }

    #[test]
    fn non_finite_doubles_and_quoted_counters_are_read() {
        for (text, want) in [("NaN", f64::NAN), ("Infinity", f64::INFINITY), ("-Infinity", f64::NEG_INFINITY)] {
            let r = parse_request(line(&format!(r#"{{"doubleValue":"{text}"}}"#)).as_bytes()).unwrap();
            match value(&r) {
                Some(any_value::Value::DoubleValue(d)) => assert!(d.total_cmp(&want).is_eq(), "{d}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(r.resource_spans[0].scope_spans[0].spans[0].dropped_events_count, 3);
        }
    }

    #[test]
    fn errors_name_the_field() {
        let bad = line(r#"{"intValue":1.5}"#).replace(r#""name":"x""#, r#""name":"x","timeUnixNano":"12a""#);
        let e = parse_request(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("timeUnixNano: invalid digit found in string (at resourceSpans[0]."), "{e}");
        let e = parse_request(line(r#"{"intValue":true}"#).as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("value: expected an integer (a number or a string of digits)"), "{e}");
    }
}
