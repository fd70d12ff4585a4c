//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`, with the server
//! types `opentelemetry-proto` generates for tonic; gzip-compressed requests are accepted.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message as _;
use tonic::codec::CompressionEncoding;

use super::Shared;
use super::http::export_response;
use super::ingest::Transport;

/// The trace service: decodes nothing itself (tonic does), hands the request to the receiver.
#[derive(Debug, Clone)]
pub struct Receiver {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        let size = request.encoded_len();
        let accepted = self.shared.ingest(request, size, Transport::Grpc);
        Ok(tonic::Response::new(export_response(accepted, self.shared.max_pending())))
    }
}

/// The tonic service for `shared`, with gzip accepted and the receiver's message size limit.
pub fn service(shared: Arc<Shared>) -> TraceServiceServer<Receiver> {
    let limit = shared.max_body_bytes;
    TraceServiceServer::new(Receiver { shared })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
}
