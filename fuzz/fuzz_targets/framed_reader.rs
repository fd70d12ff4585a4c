//! Feeds arbitrary bytes to the reader as length-framed records (the Collector's protobuf file
//! format), then to the streaming checker with a small window, and renders both reports: nothing
//! may panic, every error must name a record that can exist, and memory stays within the record
//! limit.
#![no_main]

use journey_spec::otel::json::Report;
use journey_spec::otel::read::{InputFormat, ReadOptions, read_into};
use journey_spec::otel::{CheckOptions, Summary, TraceStream, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // At most one record per 4-byte prefix.
    let records = (data.len() / 4 + 1) as u64;
    for format in [InputFormat::Framed, InputFormat::Auto] {
        let options = ReadOptions { format, max_record_bytes: 1 << 16, ..ReadOptions::default() };
        let mut stream = TraceStream::new("fuzz", CheckOptions::default()).with_window(4);
        let mut errors = 0;
        read_into("fuzz", data, &options, &mut stream, &mut |e| {
            errors += e.count();
            if let Some(r) = e.record {
                assert!((1..=records).contains(&r), "{e}: at most {records} records");
            }
        });
        let checked = stream.finish();
        for j in &checked.journeys {
            text::write_timeline(&mut Vec::new(), "fuzz", j).unwrap();
        }
        let mut summary = Summary::new();
        summary.add(checked, errors);
        text::write_summary(&mut Vec::new(), &summary, &[]).unwrap();
        Report::new(&summary, []).write(&mut Vec::new()).unwrap();
    }
});
