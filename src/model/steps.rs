//! Step windows (`SPEC.md` §12): the scheduler's own view of a run, `scheduler_steps_<n>` spans
//! carrying a sampled `step.BATCH_SUMMARY` per step and, in some summarized steps, one
//! `step.REQUEST_SNAPSHOT` per running request; and the rules S1–S3 that hold them to themselves
//! and to the journeys of the same run.
//!
//! - [`StepWindow`], [`StepEvent`], [`BatchSummary`], [`RequestSnapshot`]: a window as data (the
//!   wire decoding is `wire::steps`).
//! - [`Window`]: the lifecycle of the events inside one window, under the model's machinery
//!   ([`Lifecycle`], [`LifecycleChecker`]): a snapshot is legal only after a summary.
//! - [`StepChecker`]: S1–S3 over the windows and journeys of one scheduler instance. It keeps
//!   compact facts, not events: per window its range and per summary a few numbers, per journey
//!   its SCHEDULED/PREEMPTED/FINISHED times; so a streaming check can let go of both.
//!
//! Times: a summary's `step.ts_start_ns`/`step.ts_end_ns` and a journey event's `ts.monotonic`
//! are readings of the same monotonic clock. The checker compares them in nanoseconds, taking a
//! journey event's time as `round(ts.monotonic × 10⁹)`, which is exactly `ts.monotonic_ns` for
//! the fork at HEAD (`ts.monotonic = ts.monotonic_ns / 1e9`, correctly rounded, is inverted
//! exactly for any clock below 10⁶ s).
//!
//! ```
//! use journey_spec::model::steps::*;
//!
//! let summary = BatchSummary { step: 3, scheduled_tokens: 8, prefill_tokens: 8, running_depth: 1,
//!     num_prefill_reqs: 1, ts_start_ns: 1_000, ts_end_ns: 3_000, duration_us: 2, ..BatchSummary::default() };
//! let window = StepWindow { sequence: Some(1), range_start: Some(1), range_end: Some(5),
//!     closure_interval: Some(10), events: vec![Ok(StepEvent::Summary(summary))], ..StepWindow::named("scheduler_steps_1") };
//! let mut checker = StepChecker::new(false);
//! checker.add_window(&window);
//! assert!(checker.finish().is_empty());
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use super::event::{EventKind, JourneyEvent, Phase};
use super::finding::{Detail, Violation};
use super::lifecycle::{Lifecycle, LifecycleChecker, LifecycleRules, Row};
use super::rules::RuleId;

/// One `step.BATCH_SUMMARY` (16 attributes, `SPEC.md` §12; research §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BatchSummary {
    /// `step.id`: the `schedule()` call.
    pub step: u64,
    /// `step.ts_start_ns`: monotonic ns at the start of `schedule()`.
    pub ts_start_ns: i64,
    /// `step.ts_end_ns`: monotonic ns when the summary was emitted.
    pub ts_end_ns: i64,
    /// `step.duration_us`: `(ts_end_ns - ts_start_ns) // 1000`.
    pub duration_us: i64,
    /// `queue.running_depth`: the running list after scheduling.
    pub running_depth: u64,
    /// `queue.waiting_depth`: the waiting queue after scheduling.
    pub waiting_depth: u64,
    /// `batch.num_prefill_reqs`: scheduled requests without output.
    pub num_prefill_reqs: u64,
    /// `batch.num_decode_reqs`: scheduled requests with output.
    pub num_decode_reqs: u64,
    /// `batch.scheduled_tokens`: the step's tokens.
    pub scheduled_tokens: u64,
    /// `batch.prefill_tokens`: tokens of the prefill requests.
    pub prefill_tokens: u64,
    /// `batch.decode_tokens`: tokens of the decode requests.
    pub decode_tokens: u64,
    /// `batch.num_finished`: requests finished since the previous step.
    pub num_finished: u64,
    /// `batch.num_preempted`: this step's preemptions.
    pub num_preempted: u64,
    /// `kv.usage_gpu_ratio`: `1 - free / total`.
    pub kv_usage_gpu_ratio: f64,
    /// `kv.blocks_total_gpu`: usable KV blocks.
    pub kv_blocks_total_gpu: u64,
    /// `kv.blocks_free_gpu`: free KV blocks after scheduling.
    pub kv_blocks_free_gpu: u64,
}

/// One `step.REQUEST_SNAPSHOT` (research §8.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestSnapshot {
    /// `step.id`.
    pub step: u64,
    /// `request.id`: the engine request id (the journey's `gen_ai.request.id`).
    pub request_id: String,
    /// `request.phase`: `PREFILL` without output, `DECODE` with.
    pub phase: Option<Phase>,
    /// `request.num_prompt_tokens`.
    pub num_prompt_tokens: u64,
    /// `request.num_computed_tokens`, before this step's tokens are added.
    pub num_computed_tokens: u64,
    /// `request.num_output_tokens`.
    pub num_output_tokens: u64,
    /// `request.num_preemptions`.
    pub num_preemptions: u64,
    /// `request.scheduled_tokens_this_step`.
    pub scheduled_tokens_this_step: u64,
    /// `kv.blocks_allocated_gpu`: blocks the request holds.
    pub kv_blocks_allocated_gpu: u64,
    /// `kv.blocks_cached_gpu`: of those, prefix-cached blocks.
    pub kv_blocks_cached_gpu: u64,
    /// `request.effective_prompt_len`, when the fork knows the cached prefix.
    pub effective_prompt_len: Option<u64>,
}

/// An event of a step window.
#[derive(Debug, Clone, PartialEq)]
pub enum StepEvent {
    /// `step.BATCH_SUMMARY`.
    Summary(BatchSummary),
    /// `step.REQUEST_SNAPSHOT`.
    Snapshot(RequestSnapshot),
}

impl StepEvent {
    /// The event's `step.id`.
    pub fn step(&self) -> u64 {
        match self {
            StepEvent::Summary(s) => s.step,
            StepEvent::Snapshot(s) => s.step,
        }
    }

    /// The event's kind.
    pub fn kind(&self) -> StepKind {
        match self {
            StepEvent::Summary(_) => StepKind::Summary,
            StepEvent::Snapshot(_) => StepKind::Snapshot,
        }
    }
}

/// A step event that could not be decoded: its name and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadStepEvent {
    /// The span event's name.
    pub name: String,
    /// What was wrong (a missing or mistyped attribute, an unknown name).
    pub problem: String,
}

/// A `scheduler_steps_<n>` span, as read or as emitted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepWindow {
    /// The span's name.
    pub name: String,
    /// Whether the span has no parent.
    pub root: bool,
    /// Whether the span is INTERNAL.
    pub internal: bool,
    /// `scheduler.span_sequence`.
    pub sequence: Option<u64>,
    /// `scheduler.step_range_start`.
    pub range_start: Option<u64>,
    /// `scheduler.closure_interval`.
    pub closure_interval: Option<u64>,
    /// `scheduler.step_range_end` (set at close).
    pub range_end: Option<u64>,
    /// Events the SDK dropped (the oldest, in the Python SDK).
    pub dropped_events: u32,
    /// The window's events in order, or why one could not be decoded.
    pub events: Vec<Result<StepEvent, BadStepEvent>>,
}

impl StepWindow {
    /// An empty root INTERNAL window called `name`.
    pub fn named(name: impl Into<String>) -> StepWindow {
        StepWindow { name: name.into(), root: true, internal: true, ..StepWindow::default() }
    }
}

/// The kinds of step events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// `step.BATCH_SUMMARY`.
    Summary,
    /// `step.REQUEST_SNAPSHOT`.
    Snapshot,
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepKind::Summary => "BATCH_SUMMARY",
            StepKind::Snapshot => "REQUEST_SNAPSHOT",
        })
    }
}

/// Where a window's events are: before any summary, or after one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowState {
    /// No summary yet.
    Open,
    /// After a summary (its snapshots may follow).
    Summarized,
}

impl fmt::Display for WindowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WindowState::Open => "Open",
            WindowState::Summarized => "Summarized",
        })
    }
}

/// The lifecycle of the events of one window: summaries at any time, snapshots only after one.
/// A window may end anywhere (an empty window is closed at shutdown).
pub struct Window;

impl Lifecycle for Window {
    type State = WindowState;
    type Label = StepKind;
    type Kind = StepKind;
    type Rule = RuleId;
    const NAME: &'static str = "step";
    const INITIAL: WindowState = WindowState::Open;
    const TABLE: &'static [Row<Self>] = &[
        Row::new(WindowState::Open, StepKind::Summary, WindowState::Summarized),
        Row::new(WindowState::Summarized, StepKind::Summary, WindowState::Summarized),
        Row::new(WindowState::Summarized, StepKind::Snapshot, WindowState::Summarized),
    ];
    const KINDS: &'static [StepKind] = &[StepKind::Summary, StepKind::Snapshot];
    const RULES: LifecycleRules<RuleId> =
        LifecycleRules { start: RuleId::StepEvents, legal: RuleId::StepEvents, end: RuleId::StepEvents };

    fn kind(label: StepKind) -> StepKind {
        label
    }

    fn state_name(state: WindowState) -> &'static str {
        match state {
            WindowState::Open => "Open",
            WindowState::Summarized => "Summarized",
        }
    }

    fn may_end_in(_: WindowState) -> bool {
        true
    }
}

/// What the cross-check keeps of one summary.
#[derive(Debug, Clone, Copy)]
struct SummaryFacts {
    window: usize,
    event: usize,
    step: u64,
    ts_start: i64,
    ts_end: i64,
    num_preempted: u64,
}

/// What the cross-check keeps of one snapshot.
#[derive(Debug, Clone)]
struct SnapshotFacts {
    window: usize,
    event: usize,
    step: u64,
    /// The time of its summary's end, when the summary was kept.
    at: Option<i64>,
    request_id: String,
    prompt: u64,
    preemptions: u64,
}

/// What S1 keeps of one window.
#[derive(Debug, Clone)]
struct WindowFacts {
    name: String,
    sequence: Option<u64>,
    start: Option<u64>,
    end: Option<u64>,
    interval: Option<u64>,
    has_events: bool,
}

/// A journey event the cross-check needs: its kind, step, time (ns) and preemption count.
#[derive(Debug, Clone, Copy)]
struct JourneyFact {
    kind: EventKind,
    step: u64,
    at: i64,
    preemptions: u64,
}

/// What the cross-check keeps of one journey.
#[derive(Debug, Clone)]
struct JourneyFacts {
    prompt: u64,
    /// The span lost events: its Running stretches cannot be trusted.
    partial: bool,
    facts: Vec<JourneyFact>,
    /// The number of the [`StepChecker::add_journey`] call that added it.
    seq: u64,
}

/// A journey event's time in monotonic nanoseconds (see the module documentation).
pub fn journey_ns(ts_monotonic: f64) -> i64 {
    // `as` saturates (NaN is 0): input cannot make it panic.
    (ts_monotonic * 1e9).round() as i64
}

/// Checks S1–S3 over the step windows and journeys of one scheduler instance.
///
/// Add windows and journeys in any order; [`finish`](Self::finish) returns every violation,
/// each naming the window (as `request_id`) and the event's index in it.
#[derive(Debug, Clone, Default)]
pub struct StepChecker {
    complete: bool,
    windows: Vec<WindowFacts>,
    summaries: Vec<SummaryFacts>,
    snapshots: Vec<SnapshotFacts>,
    journeys: HashMap<String, Vec<JourneyFacts>>,
    /// `add_journey` calls so far.
    added: u64,
    violations: Vec<Violation>,
}

impl StepChecker {
    /// A checker; `complete`: the input holds every span of the run (`journey check
    /// --complete`), so S3's counts compare for equality and a snapshot needs its journey.
    pub fn new(complete: bool) -> StepChecker {
        StepChecker { complete, ..StepChecker::default() }
    }

    /// Windows added so far.
    pub fn windows(&self) -> usize {
        self.windows.len()
    }

    /// Summaries added so far.
    pub fn summaries(&self) -> usize {
        self.summaries.len()
    }

    /// Snapshots added so far.
    pub fn snapshots(&self) -> usize {
        self.snapshots.len()
    }

    fn violation(&mut self, rule: RuleId, window: &str, event: usize, message: String) {
        self.violations.push(Violation {
            rule,
            request_id: window.into(),
            event_index: event,
            detail: Detail::other(message),
        });
    }

    /// Checks one window on its own (S1's per-window part, S2, S3's self-agreement) and keeps
    /// what the rules across windows and journeys need.
    pub fn add_window(&mut self, w: &StepWindow) {
        let index = self.windows.len();
        let name = w.name.as_str();
        let n = w.events.len();
        if !w.root {
            self.violation(RuleId::StepWindows, name, n, "the window has a parent; step windows are roots".into());
        }
        if !w.internal {
            self.violation(RuleId::StepWindows, name, n, "the window is not INTERNAL".into());
        }
        match w.sequence {
            Some(seq) if name != format!("scheduler_steps_{seq}") => self.violation(
                RuleId::StepWindows,
                name,
                n,
                format!("the window's name does not match scheduler.span_sequence {seq}"),
            ),
            Some(_) => {}
            None => self.violation(RuleId::StepWindows, name, n, "scheduler.span_sequence is missing".into()),
        }
        for (key, v) in [
            ("scheduler.step_range_start", w.range_start),
            ("scheduler.closure_interval", w.closure_interval),
            ("scheduler.step_range_end", w.range_end),
        ] {
            if v.is_none() {
                self.violation(RuleId::StepWindows, name, n, format!("{key} is missing"));
            }
        }
        if let Some(0) = w.closure_interval {
            self.violation(RuleId::StepWindows, name, n, "scheduler.closure_interval is 0".into());
        }

        let mut lifecycle = LifecycleChecker::<Window>::new(name);
        if w.dropped_events > 0 {
            // The oldest events are gone: whatever is left may start in the middle of a step.
            lifecycle.assume(WindowState::Summarized);
        }
        let mut last_summary: Option<u64> = None;
        let mut group = StepGroup::default();
        let mut summary_at: Option<i64> = None;
        for (i, e) in w.events.iter().enumerate() {
            let e = match e {
                Ok(e) => e,
                Err(bad) => {
                    self.violation(RuleId::StepEvents, name, i, format!("{}: {}", bad.name, bad.problem));
                    continue;
                }
            };
            if let Err(v) = lifecycle.push(Some(e.kind()), e.kind()) {
                self.violations.push(v);
            }
            let step = e.step();
            if let Some(start) = w.range_start
                && step < start
            {
                self.violation(
                    RuleId::StepEvents,
                    name,
                    i,
                    format!("step.id {step} is before the window's range start {start}"),
                );
            }
            if let Some(end) = w.range_end
                && step > end
            {
                self.violation(
                    RuleId::StepEvents,
                    name,
                    i,
                    format!("step.id {step} is after the window's range end {end}"),
                );
            }
            match e {
                StepEvent::Summary(s) => {
                    self.close_group(name, &group);
                    if let Some(previous) = last_summary
                        && s.step <= previous
                    {
                        let what = if s.step == previous { "a second summary for" } else { "a summary going back to" };
                        self.violation(
                            RuleId::StepEvents,
                            name,
                            i,
                            format!("{what} step {} (after step {previous})", s.step),
                        );
                    }
                    self.check_summary(name, i, s);
                    last_summary = Some(s.step);
                    summary_at = Some(s.ts_end_ns);
                    group = StepGroup {
                        step: Some(s.step),
                        depth: Some(s.running_depth),
                        first: i,
                        ..StepGroup::default()
                    };
                    self.summaries.push(SummaryFacts {
                        window: index,
                        event: i,
                        step: s.step,
                        ts_start: s.ts_start_ns,
                        ts_end: s.ts_end_ns,
                        num_preempted: s.num_preempted,
                    });
                }
                StepEvent::Snapshot(s) => {
                    match group.step {
                        Some(g) if g != s.step => {
                            self.violation(
                                RuleId::StepEvents,
                                name,
                                i,
                                format!("a snapshot of step {} after the summary of step {g}", s.step),
                            );
                        }
                        Some(_) => {}
                        None if group.ids.is_empty() => {
                            // Leading snapshots of a window that dropped events (the lifecycle
                            // reported them otherwise).
                            group.step = Some(s.step);
                            group.first = i;
                        }
                        None => {}
                    }
                    if !group.ids.insert(s.request_id.clone()) {
                        self.violation(
                            RuleId::StepEvents,
                            name,
                            i,
                            format!("a second snapshot of request {:?} in step {}", s.request_id, s.step),
                        );
                    }
                    group.count += 1;
                    let phase = if s.num_output_tokens == 0 { Phase::Prefill } else { Phase::Decode };
                    if s.phase != Some(phase) {
                        self.violation(
                            RuleId::StepEvents,
                            name,
                            i,
                            format!(
                                "request.phase is {} with {} output tokens; expected {}",
                                s.phase.map_or("missing", |p| p.as_str()),
                                s.num_output_tokens,
                                phase.as_str()
                            ),
                        );
                    }
                    self.snapshots.push(SnapshotFacts {
                        window: index,
                        event: i,
                        step: s.step,
                        at: if group.depth.is_some() { summary_at } else { None },
                        request_id: s.request_id.clone(),
                        prompt: s.num_prompt_tokens,
                        preemptions: s.num_preemptions,
                    });
                }
            }
        }
        if w.dropped_events == 0 {
            // With dropped events the last step may be cut short too: the Rust SDK drops the
            // newest events, not the oldest.
            self.close_group(name, &group);
        }
        let _ = lifecycle.finish(false);
        self.windows.push(WindowFacts {
            name: w.name.clone(),
            sequence: w.sequence,
            start: w.range_start,
            end: w.range_end,
            interval: w.closure_interval,
            has_events: !w.events.is_empty() || w.dropped_events > 0,
        });
    }

    /// S2's count: a rich step has one snapshot per running request (checked only for a
    /// step whose summary was kept, and that has snapshots at all).
    fn close_group(&mut self, window: &str, group: &StepGroup) {
        if let (Some(step), Some(depth)) = (group.step, group.depth)
            && group.count > 0
            && group.count != depth
        {
            self.violation(
                RuleId::StepEvents,
                window,
                group.first,
                format!("step {step} has {} snapshot(s) but queue.running_depth {depth}", group.count),
            );
        }
    }

    /// S3's self-agreement of one summary.
    fn check_summary(&mut self, window: &str, i: usize, s: &BatchSummary) {
        if s.prefill_tokens.checked_add(s.decode_tokens) != Some(s.scheduled_tokens) {
            self.violation(
                RuleId::StepAgreement,
                window,
                i,
                format!(
                    "step {}: batch.prefill_tokens {} + batch.decode_tokens {} != batch.scheduled_tokens {}",
                    s.step, s.prefill_tokens, s.decode_tokens, s.scheduled_tokens
                ),
            );
        }
        if s.ts_end_ns < s.ts_start_ns {
            self.violation(
                RuleId::StepAgreement,
                window,
                i,
                format!("step {}: step.ts_end_ns {} is before step.ts_start_ns {}", s.step, s.ts_end_ns, s.ts_start_ns),
            );
        } else if (s.ts_end_ns - s.ts_start_ns) / 1000 != s.duration_us {
            self.violation(
                RuleId::StepAgreement,
                window,
                i,
                format!(
                    "step {}: step.duration_us {} is not (ts_end_ns - ts_start_ns) // 1000 = {}",
                    s.step,
                    s.duration_us,
                    (s.ts_end_ns - s.ts_start_ns) / 1000
                ),
            );
        }
    }

    /// Keeps what the cross-check needs of one journey: its prompt length and the times of its
    /// SCHEDULED, PREEMPTED and FINISHED events. `partial`: its span dropped events. Returns the
    /// journey's number (counted from 0), for [`forget`](Self::forget).
    pub fn add_journey(&mut self, request_id: &str, partial: bool, events: &[JourneyEvent]) -> u64 {
        let prompt = events.first().map_or(0, |e| e.progress.prefill_total);
        let facts = events
            .iter()
            .filter(|e| match e.kind {
                EventKind::Scheduled | EventKind::Preempted | EventKind::Finished => true,
                EventKind::Queued | EventKind::FirstToken => false,
            })
            .map(|e| JourneyFact {
                kind: e.kind,
                step: e.step.0,
                at: journey_ns(e.ts_monotonic),
                preemptions: e.num_preemptions,
            })
            .collect();
        let seq = self.added;
        self.added = self.added.saturating_add(1);
        self.journeys.entry(request_id.to_owned()).or_default().push(JourneyFacts { prompt, partial, facts, seq });
        seq
    }

    /// Whether a window has been added (only then are the journeys' facts compared with anything
    /// so far).
    pub fn has_windows(&self) -> bool {
        !self.windows.is_empty()
    }

    /// Lets go of the facts of journey number `seq` (as [`add_journey`](Self::add_journey)
    /// returned it) with `request_id`: a streaming check that no longer expects a window to
    /// need them.
    pub fn forget(&mut self, request_id: &str, seq: u64) {
        if let Some(facts) = self.journeys.get_mut(request_id) {
            facts.retain(|f| f.seq != seq);
            if facts.is_empty() {
                self.journeys.remove(request_id);
            }
        }
        // A map emptied keeps its table: give it back.
        if self.journeys.len() < self.journeys.capacity() / 4 {
            self.journeys.shrink_to_fit();
        }
    }

    /// S1 across the windows and S3 against the journeys; every violation found.
    pub fn finish(mut self) -> Vec<Violation> {
        self.check_sequence();
        self.check_against_journeys();
        std::mem::take(&mut self.violations)
    }

    fn check_sequence(&mut self) {
        let mut by_seq: BTreeMap<u64, usize> = BTreeMap::new();
        let windows = std::mem::take(&mut self.windows);
        for (i, w) in windows.iter().enumerate() {
            if let Some(seq) = w.sequence
                && by_seq.insert(seq, i).is_some()
            {
                self.violation(RuleId::StepWindows, &w.name, 0, format!("a second window with sequence {seq}"));
            }
        }
        let last = by_seq.keys().next_back().copied();
        let mut previous: Option<(u64, &WindowFacts)> = None;
        for (&seq, &i) in &by_seq {
            let w = &windows[i];
            let is_last = Some(seq) == last;
            match previous {
                None if seq == 1 && w.start != Some(1) => {
                    self.violation(
                        RuleId::StepWindows,
                        &w.name,
                        0,
                        format!("window 1 starts at step {:?}, not 1", w.start),
                    );
                }
                None if seq != 1 && self.complete => {
                    self.violation(RuleId::StepWindows, &w.name, 0, format!("the first window is {seq}, not 1"));
                }
                None => {}
                Some((p, pw)) => {
                    if seq != p + 1 && self.complete {
                        self.violation(
                            RuleId::StepWindows,
                            &w.name,
                            0,
                            format!("windows {} to {} are missing", p + 1, seq - 1),
                        );
                    }
                    if seq == p + 1
                        && let (Some(end), Some(start)) = (pw.end, w.start)
                        && end.checked_add(1) != Some(start)
                    {
                        self.violation(
                            RuleId::StepWindows,
                            &w.name,
                            0,
                            format!("the window starts at step {start}, but the previous one ended at step {end}"),
                        );
                    }
                }
            }
            if let (Some(start), Some(end)) = (w.start, w.end) {
                // An empty window closed at shutdown right after a boundary ends before it starts.
                let empty_tail = is_last && !w.has_events && end.checked_add(1) == Some(start);
                if end < start && !empty_tail {
                    self.violation(
                        RuleId::StepWindows,
                        &w.name,
                        0,
                        format!("the range {start}–{end} ends before it starts"),
                    );
                }
            }
            if !is_last {
                if let (Some(end), Some(interval)) = (w.end, w.interval)
                    && interval > 0
                    && end % interval != 0
                {
                    self.violation(
                        RuleId::StepWindows,
                        &w.name,
                        0,
                        format!(
                            "the window was closed at step {end}, not a multiple of the closure interval {interval}"
                        ),
                    );
                }
                if !w.has_events {
                    self.violation(
                        RuleId::StepWindows,
                        &w.name,
                        0,
                        "the window was closed at an interval boundary without events".into(),
                    );
                }
            }
            previous = Some((seq, w));
        }
        self.windows = windows;
    }

    fn check_against_journeys(&mut self) {
        if self.journeys.is_empty() {
            return;
        }
        // PREEMPTED and SCHEDULED of each step, with their times.
        let mut by_step: HashMap<u64, (Vec<i64>, Vec<i64>)> = HashMap::new();
        let summarized: HashSet<u64> = self.summaries.iter().map(|s| s.step).collect();
        for facts in self.journeys.values().flatten() {
            for f in &facts.facts {
                if !summarized.contains(&f.step) {
                    continue;
                }
                match f.kind {
                    EventKind::Preempted => by_step.entry(f.step).or_default().0.push(f.at),
                    EventKind::Scheduled => by_step.entry(f.step).or_default().1.push(f.at),
                    EventKind::Finished | EventKind::Queued | EventKind::FirstToken => {}
                }
            }
        }
        let summaries = std::mem::take(&mut self.summaries);
        for s in &summaries {
            let name = self.windows.get(s.window).map(|w| w.name.clone()).unwrap_or_default();
            let (preempted, scheduled) = by_step.get(&s.step).map_or((&[][..], &[][..]), |(p, q)| (&p[..], &q[..]));
            let inside = preempted.iter().filter(|t| (s.ts_start..=s.ts_end).contains(*t)).count() as u64;
            if inside > s.num_preempted || (self.complete && inside != s.num_preempted) {
                self.violation(
                    RuleId::StepAgreement,
                    &name,
                    s.event,
                    format!(
                        "step {}: batch.num_preempted is {}, but the journeys have {inside} PREEMPTED of that step within [{}, {}]",
                        s.step, s.num_preempted, s.ts_start, s.ts_end
                    ),
                );
            }
            if let Some(t) = scheduled.iter().find(|t| !(s.ts_start..=s.ts_end).contains(*t)) {
                self.violation(
                    RuleId::StepAgreement,
                    &name,
                    s.event,
                    format!(
                        "step {}: a SCHEDULED of that step at {t} ns lies outside the summary's window [{}, {}]",
                        s.step, s.ts_start, s.ts_end
                    ),
                );
            }
        }
        let snapshots = std::mem::take(&mut self.snapshots);
        for s in &snapshots {
            let Some(at) = s.at else { continue };
            let name = self.windows.get(s.window).map(|w| w.name.clone()).unwrap_or_default();
            let journeys = self.journeys.get(&s.request_id).map_or(&[][..], |j| &j[..]);
            if journeys.is_empty() {
                if self.complete {
                    self.violation(
                        RuleId::StepAgreement,
                        &name,
                        s.event,
                        format!("step {}: the snapshot's request {:?} has no journey", s.step, s.request_id),
                    );
                }
                continue;
            }
            if journeys.iter().any(|j| j.partial) {
                continue;
            }
            let state = journeys.iter().find_map(|j| running_at(j, at).map(|p| (j.prompt, p)));
            let problem = match state {
                None => Some(format!("its journey is not Running at {at} ns")),
                Some((prompt, _)) if prompt != s.prompt => Some(format!(
                    "request.num_prompt_tokens is {}, its journey's prefill.total_tokens {prompt}",
                    s.prompt
                )),
                Some((_, preemptions)) if preemptions != s.preemptions => Some(format!(
                    "request.num_preemptions is {}, its journey's num_preemptions {preemptions}",
                    s.preemptions
                )),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                self.violation(
                    RuleId::StepAgreement,
                    &name,
                    s.event,
                    format!("step {}: snapshot of {:?}: {problem}", s.step, s.request_id),
                );
            }
        }
    }
}

/// The preemption count of a journey Running at `at`: after a SCHEDULED at or before `at`
/// and before the next PREEMPTED or FINISHED.
fn running_at(j: &JourneyFacts, at: i64) -> Option<u64> {
    let mut running = None;
    for f in j.facts.iter().take_while(|f| f.at <= at) {
        running = match f.kind {
            EventKind::Scheduled => Some(f.preemptions),
            EventKind::Preempted | EventKind::Finished => None,
            EventKind::Queued | EventKind::FirstToken => running,
        };
    }
    running
}

/// The snapshots of one step as they are read.
#[derive(Debug, Default)]
struct StepGroup {
    step: Option<u64>,
    /// `queue.running_depth` of its summary, when the summary was kept.
    depth: Option<u64>,
    first: usize,
    count: u64,
    ids: HashSet<String>,
}
