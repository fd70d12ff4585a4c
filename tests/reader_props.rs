//! Property tests of the trace reader and checker (`journey_spec::otel`) on hostile input:
//! random bytes, and a real fixture with random in-place damage to some of its lines. Whatever
//! the input, nothing panics, every error names a line that exists, the damaged lines are the
//! only ones reported, and every journey on an undamaged line is still read.
//!
//! Bounded for `cargo test`; `PROPTEST_CASES=10000 cargo test --test reader_props` runs longer.

mod common;

use journey_spec::otel::json::Report;
use journey_spec::otel::read::ReadCounts;
use journey_spec::otel::{CheckOptions, InputError, InputErrorKind, Summary, check_trace, read_trace, text};
use proptest::prelude::*;

const FIXTURE: &str = include_str!("data/vllm-random/w1.otlp.jsonl");

/// Reads, checks and renders `input` both ways; returns the errors and the counts.
fn run(input: &[u8]) -> (Vec<InputError>, ReadCounts, u64) {
    let mut errors = Vec::new();
    let trace = read_trace("input", input, |e| errors.push(e));
    let counts = trace.counts;
    let checked = check_trace(trace, &CheckOptions::default());
    let journeys = checked.journeys.len() as u64;
    for j in &checked.journeys {
        text::write_timeline(&mut Vec::new(), "input", j).unwrap();
    }
    let mut summary = Summary::new();
    summary.add(checked, errors.len() as u64);
    text::write_summary(&mut Vec::new(), &summary, &[]).unwrap();
    Report::new(&summary, []).write(&mut Vec::new()).unwrap();
    (errors, counts, journeys)
}

/// Damage done to one line, in place (never adding or removing a line break).
#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    let byte = any::<u8>().prop_map(|b| if b == b'\n' { b' ' } else { b });
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Damage::Replace(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Damage::Insert(i, b)),
        any::<usize>().prop_map(Damage::Delete),
    ]
}

fn apply(line: &mut Vec<u8>, d: &Damage) {
    let n = line.len();
    match *d {
        Damage::Truncate(i) => line.truncate(i % n.max(1)),
        Damage::Replace(i, b) if n > 0 => line[i % n] = b,
        Damage::Insert(i, b) => line.insert(i % (n + 1), b),
        Damage::Delete(i) if n > 0 => drop(line.remove(i % n)),
        Damage::Replace(..) | Damage::Delete(_) => {}
    }
}

fn spans_on(line: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap())
        .map(|ss| ss["spans"].as_array().unwrap().len() as u64)
        .sum()
}

proptest! {
    #![proptest_config(common::config(regressions!("reader_props"), 256))]

    #[test]
    fn random_bytes_never_panic_and_errors_name_real_lines(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let lines = input.split(|&b| b == b'\n').count() as u64;
        let (errors, counts, _) = run(&input);
        prop_assert!(counts.lines <= lines);
        for e in &errors {
            if let Some(line) = e.line {
                prop_assert!((1..=lines).contains(&line), "{e} (input has {lines} lines)");
            }
            prop_assert!(e.to_string().starts_with("input"));
        }
    }

    #[test]
    fn random_json_tokens_never_panic(parts in proptest::collection::vec(prop_oneof![
        Just("{"), Just("}"), Just("["), Just("]"), Just(","), Just(":"), Just("\n"), Just("\"resourceSpans\""),
        Just("\"scopeSpans\""), Just("\"spans\""), Just("\"events\""), Just("\"name\""), Just("\"journey.QUEUED\""),
        Just("\"attributes\""), Just("\"intValue\""), Just("\"-1\""), Just("\"99999999999999999999\""), Just("1e999"),
        Just("null"), Just("\"spanId\""), Just("\"zz\""), Just("\"0011\""), Just("\"timeUnixNano\""),
    ], 0..200)) {
        let input = parts.concat();
        let lines = input.split('\n').count() as u64;
        let (errors, _, _) = run(input.as_bytes());
        for e in &errors {
            prop_assert!(e.line.is_some_and(|l| (1..=lines).contains(&l)), "{e}");
        }
    }

    #[test]
    fn damaged_lines_are_reported_and_the_rest_is_read(
        damages in proptest::collection::vec((0..FIXTURE.lines().count(), damage()), 1..6),
    ) {
        let mut lines: Vec<Vec<u8>> = FIXTURE.lines().map(|l| l.as_bytes().to_vec()).collect();
        for (i, d) in &damages {
            apply(&mut lines[*i], d);
        }
        let damaged: Vec<bool> = lines.iter().zip(FIXTURE.lines()).map(|(now, was)| now != was.as_bytes()).collect();
        let input = lines.join(&b'\n');
        let (errors, counts, journeys) = run(&input);

        let intact_spans: u64 = FIXTURE.lines().zip(&damaged).filter(|(_, d)| !**d).map(|(l, _)| spans_on(l)).sum();
        for e in &errors {
            let line = e.line.unwrap_or(0);
            prop_assert!((1..=lines.len() as u64).contains(&line), "{e}");
            // With the first line intact the input is JSON Lines, and an intact line parses.
            if !damaged[0] && matches!(e.kind, InputErrorKind::Json { .. } | InputErrorKind::Unfinished) {
                prop_assert!(damaged[line as usize - 1], "error on an intact line: {e}");
            }
        }
        if !damaged[0] {
            prop_assert!(journeys + counts.conflicting_records >= intact_spans, "{journeys} journeys, {intact_spans} intact");
        }
    }
}
