//! OTLP/HTTP (`POST /v1/traces`) and the receiver's own endpoints, on one axum router.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/traces` | an `ExportTraceServiceRequest`, `application/x-protobuf` or `application/json`, optionally `Content-Encoding: gzip`; answered with an `ExportTraceServiceResponse` in the same encoding (`partial_success.rejected_spans` counts what was shed) |
//! | `GET /report` | the report so far: `journey check --format json`'s object plus `serve` |
//! | `GET /metrics` | Prometheus text ([`super::metrics`]) |
//! | `POST /shutdown` | decide everything pending, write the final report, exit |
//!
//! Errors follow the OTLP/HTTP specification: `400` with a `google.rpc.Status` body (in the
//! request's encoding) for a body that cannot be decoded, `413` for a body over the limit
//! (before or after decompression), `415` for another content type or content encoding.

use std::io::Read as _;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

use super::Shared;
use super::ingest::{Accepted, Transport};

/// The body limit of `POST /v1/traces`, as the Collector's OTLP receiver has it: 20 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 20 << 20;

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (the OTLP JSON mapping).
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    fn transport(self) -> Transport {
        match self {
            Encoding::Protobuf => Transport::HttpProtobuf,
            Encoding::Json => Transport::HttpJson,
        }
    }
}

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The content type is neither protobuf nor JSON.
    #[error("unsupported content type {0:?}: expected application/x-protobuf or application/json")]
    ContentType(String),
    /// The content encoding is neither absent, `identity` nor `gzip`.
    #[error("unsupported content encoding {0:?}: expected gzip or none")]
    ContentEncoding(String),
    /// The body, or what it decompresses to, is larger than the limit.
    #[error("the request body is larger than {limit} bytes{}", if *.decompressed { " once decompressed" } else { "" })]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
        /// Whether the limit was passed while decompressing.
        decompressed: bool,
    },
    /// The gzip stream is broken.
    #[error("the body is not valid gzip: {0}")]
    Gzip(std::io::Error),
    /// The protobuf message is broken.
    #[error("the body is not a valid protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The JSON is broken, or not an OTLP request.
    #[error("the body is not a valid OTLP JSON ExportTraceServiceRequest: {0}")]
    Json(#[from] serde_json::Error),
}

impl BodyError {
    /// The HTTP status the OTLP/HTTP specification gives this error.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::ContentType(_) | BodyError::ContentEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Gzip(_) | BodyError::Protobuf(_) | BodyError::Json(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// The encoding a `Content-Type` names (parameters such as `charset` are ignored).
pub fn encoding_of(content_type: Option<&str>) -> Result<Encoding, BodyError> {
    let essence = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(BodyError::ContentType(content_type.unwrap_or("").to_owned())),
    }
}

/// Decodes an OTLP/HTTP trace export body: what the receiver does between the socket and the
/// checker (and what the fuzz target drives). Returns the request and its uncompressed size.
///
/// ```
/// use journey_spec::serve::http::{Encoding, decode_body};
///
/// let (request, encoding, bytes) = decode_body(Some("application/json"), None, br#"{"resourceSpans":[]}"#, 1 << 20)?;
/// assert_eq!((request.resource_spans.len(), encoding, bytes), (0, Encoding::Json, 20));
/// assert!(decode_body(Some("text/plain"), None, b"", 1 << 20).is_err());
/// # Ok::<(), journey_spec::serve::http::BodyError>(())
/// ```
pub fn decode_body(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<(ExportTraceServiceRequest, Encoding, usize), BodyError> {
    let encoding = encoding_of(content_type)?;
    if body.len() > limit {
        return Err(BodyError::TooLarge { limit, decompressed: false });
    }
    let inflated;
    let bytes: &[u8] = match content_encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => body,
        Some("gzip") => {
            let mut out = Vec::new();
            // One byte past the limit tells a body that fits from one that does not.
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::GzDecoder::new(body).take(cap).read_to_end(&mut out).map_err(BodyError::Gzip)?;
            if out.len() > limit {
                return Err(BodyError::TooLarge { limit, decompressed: true });
            }
            inflated = out;
            &inflated
        }
        Some(_) => return Err(BodyError::ContentEncoding(content_encoding.unwrap_or("").to_owned())),
    };
    let request = match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(bytes)?,
        Encoding::Json => serde_json::from_slice(bytes)?,
    };
    Ok((request, encoding, bytes.len()))
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses. The OTLP protos import it but
/// `opentelemetry-proto` does not generate it; these are its first two fields.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    /// The gRPC status code (3: INVALID_ARGUMENT, 8: RESOURCE_EXHAUSTED).
    #[prost(int32, tag = "1")]
    code: i32,
    /// What was wrong.
    #[prost(string, tag = "2")]
    message: String,
}

/// The router of the HTTP listener.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/report", get(report))
        .route("/metrics", get(metrics))
        .route("/shutdown", post(shutdown))
        .with_state(shared)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn traces(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let limit = shared.max_body_bytes;
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    // The error body's encoding: the request's when it names one we know.
    let reply_encoding = encoding_of(content_type).unwrap_or(Encoding::Json);
    let bytes: Bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let error = if e.downcast_ref::<LengthLimitError>().is_some() {
                BodyError::TooLarge { limit, decompressed: false }
            } else {
                // The connection broke while the body was read: nothing to answer.
                return StatusCode::BAD_REQUEST.into_response();
            };
            return refuse(&shared, &error, reply_encoding);
        }
    };
    let content_encoding = header_str(&headers, header::CONTENT_ENCODING);
    match decode_body(content_type, content_encoding, &bytes, limit) {
        Ok((request, encoding, size)) => {
            let accepted = shared.ingest(request, size, encoding.transport());
            let max_pending = shared.max_pending();
            respond(StatusCode::OK, encoding, &export_response(accepted, max_pending))
        }
        Err(e) => refuse(&shared, &e, reply_encoding),
    }
}

/// The OTLP response for `accepted`: a partial success when spans were left out.
pub(super) fn export_response(accepted: Accepted, max_pending: usize) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (accepted.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(accepted.rejected).unwrap_or(i64::MAX),
            error_message: accepted.message(max_pending),
        }),
    }
}

fn refuse(shared: &Shared, error: &BodyError, encoding: Encoding) -> Response {
    shared.reject(error);
    let code = match error {
        BodyError::TooLarge { .. } => 8,
        BodyError::ContentType(_)
        | BodyError::ContentEncoding(_)
        | BodyError::Gzip(_)
        | BodyError::Protobuf(_)
        | BodyError::Json(_) => 3,
    };
    let status = RpcStatus { code, message: error.to_string() };
    respond(error.status(), encoding, &status)
}

fn respond<M: prost::Message + serde::Serialize>(status: StatusCode, encoding: Encoding, message: &M) -> Response {
    let body = match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(message).unwrap_or_default(),
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(encoding.content_type()));
    response
}

async fn report(State(shared): State<Arc<Shared>>) -> Response {
    let mut body = Vec::new();
    match shared.with(|ingest| ingest.report().write(&mut body)) {
        Ok(()) => {
            let mut response = body.into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = shared.with(|ingest| ingest.prometheus());
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

async fn shutdown(State(shared): State<Arc<Shared>>) -> Response {
    shared.request_shutdown();
    (StatusCode::ACCEPTED, "journey serve: shutting down\n").into_response()
}
