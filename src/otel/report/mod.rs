//! `journey report`: one self-contained HTML page of a checked run, drawn from the same check
//! as `journey check`.
//!
//! The page has no external resource: styles, scripts, data and charts are inline, and it
//! works from `file://` with the network off. The charts that do not change (load over time,
//! distributions, comparisons) are SVG written here; the lanes of the run overview are drawn
//! by a small script from the journeys' data embedded in the page, so they can be sorted and,
//! beyond [`VIRTUALISE_ABOVE`] journeys, drawn only where they are in view.
//!
//! The layers:
//!
//! 1. [`RunData`] takes one [`CheckedTrace`] at a time, like [`Summary`] (which it holds, so
//!    the page's numbers are the check's), and keeps one [`JourneyRow`] per journey: its lanes
//!    (a [`Lane`] per layer, the core lane for now), its metrics and, when it violates a rule,
//!    its text timeline as `journey timeline` prints it.
//! 2. [`load()`] derives the load over time (running, waiting and preempted counts, preemptions
//!    per second) from the lanes; [`compare()`] finds where the journeys of two runs first differ.
//! 3. [`write_html`] writes the page.
//!
//! ```
//! use journey_spec::otel::report::{ReportOptions, RunData, write_html};
//! use journey_spec::otel::{CheckOptions, check_trace, read_trace};
//!
//! let input = std::fs::read("tests/data/vllm/basic.otlp.jsonl").unwrap();
//! let trace = read_trace("basic", &input[..], |e| panic!("{e}"));
//! let mut run = RunData::new();
//! run.add(check_trace(trace, &CheckOptions::default()), 0);
//! assert_eq!(run.rows.len(), 200);
//! let mut page = Vec::new();
//! write_html(&mut page, &run, None, &ReportOptions::default()).unwrap();
//! assert!(String::from_utf8(page).unwrap().contains("id=\"lanes-0\""));
//! ```

pub mod compare;
pub mod load;
mod page;
mod svg;

use crate::model::{EventKind, FinishStatus, Layer, RuleId, ScheduleKind, State, Verdict};

use super::check::{CheckedTrace, JourneyReport};
use super::read::RecordedEvent;
use super::summary::{JourneyMetrics, Summary};
use super::text;

pub use compare::{Comparison, Difference, compare};
pub use load::{Load, load};
pub use page::write_html;

/// Above this many journeys in one input, the overview draws only the lanes in view (and
/// redraws them on scroll); at or below it, every lane is in the page.
pub const VIRTUALISE_ABOVE: usize = 2000;

/// At most this many text timelines of violating journeys are embedded; the violation table
/// still lists every violation.
pub const TIMELINES_AT_MOST: usize = 500;

/// What the page says about how it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOptions {
    /// The page's title.
    pub title: String,
    /// The rules whose violations the check dropped (`--allow`).
    pub allowed: Vec<RuleId>,
    /// The checking profile (`sync` for now). Shown on the page; the check does not read it yet.
    pub profile: String,
    /// Whether the input was declared complete (`--complete`). Shown on the page; the check
    /// does not read it yet.
    pub complete: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: "journey report".to_owned(),
            allowed: Vec::new(),
            profile: "sync".to_owned(),
            complete: false,
        }
    }
}

/// How a stretch of a lane is drawn: the state the request is in until its next event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Segment {
    /// Waiting to run for the first time.
    Waiting,
    /// Running (prefill or decode).
    Running,
    /// Preempted, waiting to resume.
    Preempted,
    /// Finished, or not known to the scheduler: nothing is drawn.
    Done,
}

impl Segment {
    /// How a lifecycle state is drawn.
    pub const fn of(state: State) -> Segment {
        match state {
            State::Waiting => Segment::Waiting,
            State::Running => Segment::Running,
            State::Preempted => Segment::Preempted,
            State::New | State::Finished(_) => Segment::Done,
        }
    }

    /// The segment's code in the page's data (and its CSS class).
    pub const fn as_str(self) -> &'static str {
        match self {
            Segment::Waiting => "waiting",
            Segment::Running => "running",
            Segment::Preempted => "preempted",
            Segment::Done => "done",
        }
    }
}

/// A mark drawn on a lane at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mark {
    /// A preemption (PREEMPTED).
    Preemption,
    /// The first token (FIRST_TOKEN).
    FirstToken,
    /// The finish (FINISHED).
    Finish,
}

impl Mark {
    /// The mark of a journey event, if it has one.
    pub const fn of(kind: EventKind) -> Option<Mark> {
        match kind {
            EventKind::Preempted => Some(Mark::Preemption),
            EventKind::FirstToken => Some(Mark::FirstToken),
            EventKind::Finished => Some(Mark::Finish),
            EventKind::Queued | EventKind::Scheduled => None,
        }
    }

    /// The mark's code in the page's data.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mark::Preemption => "preemption",
            Mark::FirstToken => "first-token",
            Mark::Finish => "finish",
        }
    }
}

/// One event on a lane.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneEvent {
    /// Seconds since the origin of the journey's input (its earliest event).
    pub t: f64,
    /// The event as a timeline shows it: `SCHEDULED(RESUME)`, `FINISHED(length)`.
    pub label: String,
    /// `scheduler.step`.
    pub step: u64,
    /// The state after the event, as the checker followed it (`Finished(stopped)`).
    pub state: String,
    /// How the lane is drawn from this event to the next.
    pub segment: Segment,
    /// The mark at this event.
    pub mark: Option<Mark>,
}

/// One layer of a request over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// Which layer of the request the lane shows (the model's [`Layer`]: the page draws a
    /// journey's lanes in its order, top to bottom).
    pub layer: Layer,
    /// The decoded events, in the order they were checked (undecodable events have no time
    /// and are left out; the journey's timeline shows them).
    pub events: Vec<LaneEvent>,
}

/// The verdict of a journey, without its violations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictClass {
    /// Breaks no rule and is complete.
    Conforming,
    /// Breaks no rule but lost events.
    Incomplete,
    /// Breaks at least one rule.
    Violating,
}

impl VerdictClass {
    /// The class of a verdict.
    pub fn of(verdict: &Verdict) -> VerdictClass {
        match verdict {
            Verdict::Conforming => VerdictClass::Conforming,
            Verdict::Incomplete { .. } => VerdictClass::Incomplete,
            Verdict::Violating(_) => VerdictClass::Violating,
        }
    }

    /// The class's name in the page.
    pub const fn as_str(self) -> &'static str {
        match self {
            VerdictClass::Conforming => "conforming",
            VerdictClass::Incomplete => "incomplete",
            VerdictClass::Violating => "violating",
        }
    }
}

/// One violation of a journey, for the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowViolation {
    /// The rule broken.
    pub rule: RuleId,
    /// The index of the offending event (the number of events for the end of the journey).
    pub event_index: usize,
    /// The kind of that event, as the JSON report's `event` field gives it.
    pub event: Option<&'static str>,
    /// What was wrong.
    pub message: String,
}

/// One journey of the run, as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyRow {
    /// Index of its input in [`RunData::inputs`].
    pub input: usize,
    /// The `gen_ai.request.id`, when the span has one.
    pub request_id: Option<String>,
    /// The trace id, lowercase hex.
    pub trace_id: String,
    /// The span id, lowercase hex.
    pub span_id: String,
    /// The line of the span's first record.
    pub line: u64,
    /// The verdict.
    pub verdict: VerdictClass,
    /// How many events it has (decodable or not): the event index of the end of the journey.
    pub event_count: usize,
    /// Its violations, in the checker's order.
    pub violations: Vec<RowViolation>,
    /// Queue time, time to first token, end-to-end latency and preemptions (computed for every
    /// journey, for sorting; the statistics leave violating journeys out, as `check` does).
    pub metrics: JourneyMetrics,
    /// The time of its first event, seconds since the input's origin (its arrival).
    pub arrival: Option<f64>,
    /// Its lanes, top to bottom.
    pub lanes: Vec<Lane>,
    /// The text timeline (`journey timeline`), for violating journeys (the first
    /// [`TIMELINES_AT_MOST`] of them).
    pub timeline: Option<String>,
}

impl JourneyRow {
    /// The request id, or `?`.
    pub fn display_id(&self) -> &str {
        self.request_id.as_deref().unwrap_or("?")
    }

    /// The core lane.
    pub fn core(&self) -> Option<&Lane> {
        self.lanes.iter().find(|l| l.layer == Layer::Core)
    }
}

/// One input of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRun {
    /// The input's name.
    pub name: String,
    /// `ts.monotonic` of its earliest journey event: time 0 of its lanes.
    pub origin: f64,
    /// Seconds from the origin to its latest journey event.
    pub duration: f64,
    /// Indices of its journeys in [`RunData::rows`].
    pub rows: Vec<usize>,
}

/// A checked run, kept for the page: the check's [`Summary`] and one row per journey.
#[derive(Debug, Clone, Default)]
pub struct RunData {
    /// The check's totals and statistics (what `journey check` reports).
    pub summary: Summary,
    /// The inputs, in the order given.
    pub inputs: Vec<InputRun>,
    /// Every journey, input by input, in order of their spans' first appearance.
    pub rows: Vec<JourneyRow>,
    /// How many violating journeys have a text timeline.
    timelines: usize,
}

impl RunData {
    /// An empty run.
    pub fn new() -> RunData {
        RunData::default()
    }

    /// Adds one checked input, for which `input_errors` problems were reported while reading.
    pub fn add(&mut self, checked: CheckedTrace, input_errors: u64) {
        let input = self.inputs.len();
        let times = || checked.journeys.iter().flat_map(|j| j.events.iter().filter_map(decoded_time));
        let origin = times().fold(f64::INFINITY, f64::min);
        let origin = if origin.is_finite() { origin } else { 0.0 };
        let end = times().fold(origin, f64::max);
        let mut rows = Vec::with_capacity(checked.journeys.len());
        for j in &checked.journeys {
            rows.push(self.rows.len());
            let timeline = (VerdictClass::of(&j.verdict) == VerdictClass::Violating
                && self.timelines < TIMELINES_AT_MOST)
                .then(|| {
                    self.timelines += 1;
                    let mut out = Vec::new();
                    // Writing to a Vec cannot fail.
                    let _ = text::write_timeline(&mut out, &checked.source_name, j);
                    String::from_utf8_lossy(&out).into_owned()
                });
            self.rows.push(row(input, origin, j, timeline));
        }
        self.inputs.push(InputRun { name: checked.source_name.clone(), origin, duration: end - origin, rows });
        self.summary.add(checked, input_errors);
    }
}

fn decoded_time(e: &RecordedEvent) -> Option<f64> {
    e.decoded.as_ref().ok().map(|d| d.ts_monotonic).filter(|t| t.is_finite())
}

fn row(input: usize, origin: f64, j: &JourneyReport, timeline: Option<String>) -> JourneyRow {
    let events: Vec<LaneEvent> = j
        .events
        .iter()
        .zip(&j.states)
        .filter_map(|(e, state)| {
            let d = e.decoded.as_ref().ok()?;
            Some(LaneEvent {
                t: d.ts_monotonic - origin,
                label: label(d.kind, d.schedule_kind, d.finish_status),
                step: d.step.0,
                state: state.to_string(),
                segment: Segment::of(*state),
                mark: Mark::of(d.kind),
            })
        })
        .collect();
    JourneyRow {
        input,
        request_id: j.request_id.clone(),
        trace_id: j.trace_id.clone(),
        span_id: j.span_id.clone(),
        line: j.line,
        verdict: VerdictClass::of(&j.verdict),
        event_count: j.events.len(),
        violations: j
            .verdict
            .violations()
            .iter()
            .map(|v| RowViolation {
                rule: v.rule,
                event_index: v.event_index,
                event: j.event_of(v),
                message: v.message(),
            })
            .collect(),
        metrics: JourneyMetrics::of(&j.events),
        arrival: events.first().map(|e| e.t),
        lanes: vec![Lane { layer: Layer::Core, events }],
        timeline,
    }
}

/// `SCHEDULED(RESUME)`, `FINISHED(length)`, `QUEUED`: the label `journey timeline` prints.
fn label(kind: EventKind, schedule: Option<ScheduleKind>, finish: Option<FinishStatus>) -> String {
    match (schedule, finish) {
        (Some(k), _) => format!("{kind}({k})"),
        (None, Some(s)) => format!("{kind}({s})"),
        (None, None) => kind.to_string(),
    }
}
