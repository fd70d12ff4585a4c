//! Feeds arbitrary bytes to the trace reader, the checker, and both report formats: none of them
//! may panic, and every error must name a line of the input.
#![no_main]

use journey_spec::otel::json::Report;
use journey_spec::otel::{CheckOptions, Summary, check_trace, read_trace, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count() as u64;
    let mut errors = 0;
    let trace = read_trace("fuzz", data, |e| {
        errors += 1;
        if let Some(line) = e.line {
            assert!((1..=lines).contains(&line), "{e}: the input has {lines} lines");
        }
    });
    let checked = check_trace(trace, &CheckOptions::default());
    for j in &checked.journeys {
        text::write_timeline(&mut Vec::new(), "fuzz", j).unwrap();
    }
    let mut summary = Summary::new();
    summary.add(checked, errors);
    text::write_summary(&mut Vec::new(), &summary, &[]).unwrap();
    Report::new(&summary, []).write(&mut Vec::new()).unwrap();
});
