//! Length-framed records, as the OpenTelemetry Collector's file exporter writes them with
//! `format: proto` or with `compression: zstd`: each record is a 4-byte big-endian length
//! followed by that many bytes of payload. A payload is an OTLP `TracesData` (or, the same on
//! the wire, an `ExportTraceServiceRequest`) in protobuf or in JSON, possibly zstd- or
//! gzip-compressed on its own.
//!
//! The payload is decoded with `prost` into `opentelemetry-proto`'s types. A length above
//! `--max-record-bytes`, a payload that decompresses beyond it, or a record cut short ends the
//! input with an error: after a broken length there is no way to find the next record.

use std::io::{self, BufRead, Read};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

use super::error::{InputErrorKind, Unit};
use super::otlp_json::parse_request;
use super::{Context, GZIP_MAGIC, ZSTD_MAGIC};

/// Reads every record of `input` into the context.
pub(super) fn read_records(ctx: &mut Context<'_>, mut input: impl BufRead) -> io::Result<()> {
    let limit = ctx.options.max_record_bytes;
    let mut record = 0u64;
    let mut payload = Vec::new();
    let mut plain = Vec::new();
    loop {
        let mut prefix = [0u8; 4];
        let got = read_full(&mut input, &mut prefix)?;
        if got == 0 {
            return Ok(());
        }
        record += 1;
        ctx.counts().lines += 1;
        if got < prefix.len() {
            ctx.error(Some(record), InputErrorKind::TruncatedRecord { expected: 4, found: got as u64 });
            return Ok(());
        }
        let len = u32::from_be_bytes(prefix) as usize;
        if len > limit {
            let hint = Some("its length prefix announces more (a corrupt or non-framed file?)");
            ctx.error(Some(record), InputErrorKind::TooLong { unit: Unit::Record, limit, hint });
            return Ok(());
        }
        payload.clear();
        (&mut input).take(len as u64).read_to_end(&mut payload)?;
        if payload.len() < len {
            let kind = InputErrorKind::TruncatedRecord { expected: len as u64, found: payload.len() as u64 };
            ctx.error(Some(record), kind);
            return Ok(());
        }
        let bytes = match decompress(&payload, &mut plain, limit) {
            Ok(Some(())) => &plain[..],
            Ok(None) => &payload[..],
            Err(kind) => {
                let stop = matches!(kind, InputErrorKind::TooLong { .. });
                ctx.error(Some(record), kind);
                if stop {
                    return Ok(());
                }
                continue;
            }
        };
        match decode(bytes) {
            Ok((request, json)) => ctx.add(&request, json.then_some(bytes), record),
            Err(kind) => ctx.error(Some(record), kind),
        }
    }
}

/// Reads until `buf` is full or the input ends; how many bytes were read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Decompresses a compressed payload into `out` (at most `limit` bytes): `Ok(None)` when the
/// payload is not compressed.
pub(crate) fn decompress(payload: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<Option<()>, InputErrorKind> {
    out.clear();
    let (compression, result) = if payload.starts_with(&ZSTD_MAGIC) {
        let result = zstd::stream::read::Decoder::new(payload).and_then(|d| d.take(limit as u64 + 1).read_to_end(out));
        ("zstd", result)
    } else if payload.starts_with(&GZIP_MAGIC) {
        let result = flate2::read::MultiGzDecoder::new(payload).take(limit as u64 + 1).read_to_end(out);
        ("gzip", result)
    } else {
        return Ok(None);
    };
    match result {
        Ok(n) if n > limit => {
            Err(InputErrorKind::TooLong { unit: Unit::Record, limit, hint: Some("after decompression") })
        }
        Ok(_) => Ok(Some(())),
        Err(e) => Err(InputErrorKind::Decompress { compression, message: e.to_string() }),
    }
}

/// Decodes a payload: JSON when it starts (after whitespace) with `{`, protobuf otherwise.
/// Returns the request and whether it was JSON.
pub(crate) fn decode(bytes: &[u8]) -> Result<(ExportTraceServiceRequest, bool), InputErrorKind> {
    if bytes.trim_ascii_start().starts_with(b"{") {
        return parse_request(bytes).map(|r| (r, true));
    }
    ExportTraceServiceRequest::decode(bytes)
        .map(|r| (r, false))
        .map_err(|e| InputErrorKind::Protobuf { message: e.to_string() })
}
