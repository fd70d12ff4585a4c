//! Using the model as an oracle for a scheduler that is not this crate's.
//!
//! Some other server writes a plain-text event log, one line per lifecycle event:
//!
//! ```text
//! <seconds> <request> <EVENT[:qualifier]> step=<n> prefill=<done>/<total> decode=<done>/<max> preempted=<n>
//! ```
//!
//! This example turns each line into a [`JourneyEvent`], checks every request's journey with a
//! [`JourneyChecker`] and the whole log with an [`InstanceChecker`], and prints the verdicts.
//! Run it with `cargo run --example oracle` (or pass a log file of your own).

use std::collections::BTreeMap;
use std::process::ExitCode;

use journey_spec::model::{
    EventKind, FinishStatus, InstanceChecker, JourneyChecker, JourneyEvent, Label, Progress, RequestId, ScheduleKind,
    SpanInfo, Step, Verdict,
};

/// A log with two well-behaved requests and one whose server mislabels a resume.
const LOG: &str = "\
0.000 a QUEUED step=0 prefill=0/32 decode=0/2 preempted=0
0.001 b QUEUED step=0 prefill=0/64 decode=0/3 preempted=0
0.010 a SCHEDULED:FIRST step=1 prefill=0/32 decode=0/2 preempted=0
0.011 b SCHEDULED:FIRST step=1 prefill=0/64 decode=0/3 preempted=0
0.020 a FIRST_TOKEN step=1 prefill=32/32 decode=1/2 preempted=0
0.030 b PREEMPTED step=2 prefill=48/64 decode=0/3 preempted=1
0.040 a FINISHED:length step=3 prefill=32/32 decode=2/2 preempted=0
0.050 b SCHEDULED:FIRST step=4 prefill=48/64 decode=0/3 preempted=1
0.060 b FIRST_TOKEN step=4 prefill=64/64 decode=1/3 preempted=1
0.070 b FINISHED:aborted step=5 prefill=64/64 decode=1/3 preempted=1
0.080 c QUEUED step=5 prefill=0/8 decode=0/1 preempted=0
0.090 c FINISHED:ignored step=5 prefill=0/8 decode=0/1 preempted=0
";

/// A line of the log that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {what}")]
struct LogError {
    line: usize,
    what: String,
}

fn parse_line(line_no: usize, line: &str) -> Result<(RequestId, JourneyEvent), LogError> {
    let err = |what: String| LogError { line: line_no, what };
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [ts, id, event, step, prefill, decode, preempted] = fields[..] else {
        return Err(err(format!("expected 7 fields, found {}", fields.len())));
    };
    let ts: f64 = ts.parse().map_err(|_| err(format!("bad time {ts:?}")))?;
    let (kind, qualifier) = event.split_once(':').map_or((event, None), |(k, q)| (k, Some(q)));
    let kind: EventKind = kind.parse().map_err(|e| err(format!("{e}")))?;
    let label = match (kind, qualifier) {
        (EventKind::Queued, None) => Label::Queued,
        (EventKind::Preempted, None) => Label::Preempted,
        (EventKind::FirstToken, None) => Label::FirstToken,
        (EventKind::Scheduled, Some(q)) => {
            Label::Scheduled(q.parse::<ScheduleKind>().map_err(|e| err(format!("{e}")))?)
        }
        (EventKind::Finished, Some(q)) => Label::Finished(q.parse::<FinishStatus>().map_err(|e| err(format!("{e}")))?),
        (k, q) => return Err(err(format!("{k} with qualifier {q:?}"))),
    };
    let field = |text: &str, name: &str| -> Result<String, LogError> {
        text.strip_prefix(name)
            .and_then(|t| t.strip_prefix('='))
            .map(str::to_owned)
            .ok_or_else(|| err(format!("expected {name}=…, found {text:?}")))
    };
    let number = |s: &str| s.parse::<u64>().map_err(|_| err(format!("bad number {s:?}")));
    let pair = |s: String| -> Result<(u64, u64), LogError> {
        let (a, b) = s.split_once('/').ok_or_else(|| err(format!("expected done/total, found {s:?}")))?;
        Ok((number(a)?, number(b)?))
    };
    let (prefill_done, prefill_total) = pair(field(prefill, "prefill")?)?;
    let (decode_done, decode_max) = pair(field(decode, "decode")?)?;
    let progress = Progress { prefill_done, prefill_total, decode_done, decode_max };
    let event = JourneyEvent::new(
        label,
        Step(number(&field(step, "step")?)?),
        progress,
        number(&field(preempted, "preempted")?)?,
    )
    .at(ts);
    Ok((RequestId::from(id), event))
}

fn main() -> ExitCode {
    let text = match std::env::args().nth(1) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("oracle: {path}: {e}");
                return ExitCode::from(2);
            }
        },
        None => LOG.to_owned(),
    };
    let mut journeys: BTreeMap<RequestId, Vec<JourneyEvent>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match parse_line(i + 1, line) {
            Ok((id, event)) => journeys.entry(id).or_default().push(event),
            Err(e) => {
                eprintln!("oracle: {e}");
                return ExitCode::from(2);
            }
        }
    }

    let mut violating = 0;
    let mut instance = InstanceChecker::new();
    for (id, events) in &journeys {
        let mut checker = JourneyChecker::new(id.clone());
        for e in events {
            // Each push reports the first rule its event breaks; `finish` collects them all.
            let _ = checker.push(e);
        }
        match checker.finish() {
            Verdict::Conforming => println!("{id}: conforming ({} events)", events.len()),
            Verdict::Incomplete { dropped_events } => println!("{id}: incomplete ({dropped_events} events dropped)"),
            Verdict::Violating(violations) => {
                violating += 1;
                for v in violations {
                    println!("{id}: {v}");
                    println!("    at {}", events[v.event_index.min(events.len() - 1)]);
                }
            }
        }
        instance.add_journey(id.clone(), SpanInfo::default(), events);
    }
    for v in instance.finish() {
        violating += 1;
        println!("{}: {v}", v.request_id);
    }
    if violating > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
