//! The OTLP/HTTP body decoder of `journey serve` and the receiver core behind it: the first
//! byte picks the content type and encoding, the rest is the body. Nothing may panic; a
//! decoded request goes through the pending set, the checks and both reports.
#![no_main]

use std::time::{Duration, Instant};

use journey_spec::serve::http::decode_body;
use journey_spec::serve::{Ingest, IngestOptions, Transport};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&select, body)) = data.split_first() else { return };
    let content_type = ["application/x-protobuf", "application/json", "application/json; charset=utf-8", "text/plain"]
        [usize::from(select & 3)];
    let encoding = [None, Some("gzip"), Some("identity"), Some("br")][usize::from((select >> 2) & 3)];
    match decode_body(Some(content_type), encoding, body, LIMIT) {
        Ok((request, _, size)) => {
            assert!(size <= LIMIT);
            let options = IngestOptions { pending_timeout: Duration::ZERO, max_pending: 8, ..IngestOptions::default() };
            let mut ingest = Ingest::new(options, None);
            let now = Instant::now();
            let accepted = ingest.ingest(request.clone(), size, Transport::HttpJson, now);
            // The same request again: merged into pending spans, or late, or shed; never lost silently.
            let again = ingest.ingest(request, size, Transport::HttpJson, now);
            assert_eq!(accepted.records + accepted.rejected, again.records + again.rejected);
            ingest.poll(now).expect("no findings output");
            ingest.flush().expect("no findings output");
            assert_eq!(ingest.pending(), 0);
            let mut out = Vec::new();
            ingest.report().write(&mut out).expect("report");
            serde_json::from_slice::<serde_json::Value>(&out).expect("the report is JSON");
            let _ = ingest.prometheus();
        }
        Err(e) => {
            let _ = (e.status(), e.to_string());
        }
    }
});
