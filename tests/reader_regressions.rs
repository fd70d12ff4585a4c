//! Every hostile input in `tests/data/fuzz/` (fuzzer crashes and hand-made edge cases) goes
//! through the reader, the checker and both reports without a panic, and every input error
//! names a line of its file.

use journey_spec::otel::json::Report;
use journey_spec::otel::{CheckOptions, Summary, check_trace, read_trace, text};

#[test]
fn hostile_inputs_are_handled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        inputs += 1;
        let data = std::fs::read(&path).unwrap();
        let lines = data.split(|&b| b == b'\n').count() as u64;
        let mut errors = Vec::new();
        let trace = read_trace("input", &data[..], |e| errors.push(e));
        for e in &errors {
            assert!(e.line.is_some_and(|l| (1..=lines).contains(&l)), "{}: {e}", path.display());
        }
        let checked = check_trace(trace, &CheckOptions::default());
        for j in &checked.journeys {
            text::write_timeline(&mut Vec::new(), "input", j).unwrap();
        }
        let mut summary = Summary::new();
        summary.add(checked, errors.len() as u64);
        text::write_summary(&mut Vec::new(), &summary, &[]).unwrap();
        Report::new(&summary, []).write(&mut Vec::new()).unwrap();
    }
    assert!(inputs >= 3);
}
