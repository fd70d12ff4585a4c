//! Text output for people: the summary of `journey check` and the timeline of one journey.
//!
//! This format is for reading, not parsing, and may change; scripts use the JSON report
//! ([`super::json`]).

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::model::api::{ApiKind, ApiState};
use crate::model::{EventKind, FinishStatus, JourneyEvent, Layer, RuleId, State, Verdict, Violation};

use super::check::{ApiReport, JourneyReport};
use super::read::RecordedEvent;
use super::summary::{Distribution, Samples, Summary};

/// A duration in seconds, in the unit that suits it: `850 µs`, `12.40 ms`, `3.201 s`.
///
/// ```
/// use journey_spec::otel::text::duration;
/// assert_eq!(duration(0.0124), "12.40 ms");
/// assert_eq!(duration(0.00085), "850 µs");
/// assert_eq!(duration(3.2014), "3.201 s");
/// ```
pub fn duration(seconds: f64) -> String {
    let a = seconds.abs();
    if a < 1e-3 {
        format!("{:.0} µs", seconds * 1e6)
    } else if a < 1.0 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{seconds:.3} s")
    }
}

/// An id, or `-` when the span has none.
fn or_dash(id: &str) -> &str {
    if id.is_empty() { "-" } else { id }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How many events of a violating journey `journey check` shows around each violation.
const CONTEXT: usize = 2;

/// How the summary is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextOptions {
    /// Show at most this many violating journeys (all are counted).
    pub max_violations: Option<usize>,
}

/// Writes the summary of a check: totals, every violating journey with its broken rules and a
/// compact timeline, the incomplete journeys, then the statistics.
pub fn write_summary(out: &mut dyn Write, summary: &Summary, allowed: &[RuleId]) -> io::Result<()> {
    write_summary_with(out, summary, allowed, &TextOptions::default())
}

/// [`write_summary`] laid out as `options` say.
pub fn write_summary_with(
    out: &mut dyn Write,
    summary: &Summary,
    allowed: &[RuleId],
    options: &TextOptions,
) -> io::Result<()> {
    let inputs = summary.inputs.len() as u64;
    writeln!(
        out,
        "checked {}: {}, {}, {}",
        plural(inputs, "input", "inputs"),
        plural(summary.spans, "span", "spans"),
        plural(summary.journeys, "journey", "journeys"),
        plural(summary.events, "journey event", "journey events"),
    )?;
    writeln!(
        out,
        "  conforming {}, incomplete {}, violating {}",
        summary.conforming, summary.incomplete, summary.violating
    )?;
    if summary.step_windows > 0 {
        writeln!(
            out,
            "  step windows {}: {}, {}, violations {}",
            summary.step_windows,
            plural(summary.step_summaries, "summary", "summaries"),
            plural(summary.step_snapshots, "snapshot", "snapshots"),
            summary.step_violations.len()
        )?;
    }
    let by_rule = summary.violations_by_rule();
    if !by_rule.is_empty() {
        let counts: Vec<String> = by_rule.iter().map(|(r, n)| format!("{r} {n}")).collect();
        writeln!(out, "  violations by rule: {}", counts.join(", "))?;
    }
    if !allowed.is_empty() {
        let ids: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        writeln!(out, "  allowed rules (violations not counted): {}", ids.join(", "))?;
    }
    if summary.input_errors > 0 {
        writeln!(out, "  {} while reading (see stderr)", plural(summary.input_errors, "problem", "problems"))?;
    }
    if summary.behind_horizon > 0 {
        writeln!(
            out,
            "  {} behind the horizon: came after the spans they could relate to were decided; relations not checked (--horizon)",
            plural(summary.behind_horizon, "span", "spans")
        )?;
    }
    if summary.without_request_id > 0 {
        writeln!(
            out,
            "  {} without a gen_ai.request.id attribute",
            plural(summary.without_request_id, "span", "spans")
        )?;
    }
    if summary.duplicate_events > 0 {
        writeln!(
            out,
            "  {} carried by more than one record of its span, counted once",
            plural(summary.duplicate_events, "event", "events")
        )?;
    }
    if summary.api_spans > 0 || summary.unpaired_core > 0 {
        writeln!(
            out,
            "  API layer: {}, {} violating; {} with their core spans; unpaired: {} without their core span, {} without their API span",
            plural(summary.api_spans, "llm_request span", "llm_request spans"),
            summary.api_violating,
            summary.pairs,
            summary.unpaired_api,
            summary.unpaired_core,
        )?;
    }

    if !summary.violating_journeys.is_empty() {
        writeln!(out, "\nviolating journeys")?;
        let shown = options.max_violations.unwrap_or(usize::MAX);
        for (input, journey) in summary.violating_journeys.iter().take(shown) {
            let name = summary.inputs.get(*input).map_or("", |i| i.name.as_str());
            write_violating(out, name, journey)?;
        }
        let hidden = summary.violating_journeys.len().saturating_sub(shown);
        if hidden > 0 {
            writeln!(
                out,
                "\n  … and {} not shown (--max-violations)",
                plural(hidden as u64, "violating journey", "violating journeys")
            )?;
        }
    }

    if !summary.step_violations.is_empty() {
        writeln!(out, "\nstep windows")?;
        let shown = options.max_violations.unwrap_or(usize::MAX);
        for (input, v) in summary.step_violations.iter().take(shown) {
            let name = summary.inputs.get(*input).map_or("", |i| i.name.as_str());
            writeln!(
                out,
                "  {} {} in {name}: window {}, event #{}: {}",
                v.rule,
                v.rule.info().name,
                v.request_id.as_str(),
                v.event_index,
                v.message()
            )?;
        }
        let hidden = summary.step_violations.len().saturating_sub(shown);
        if hidden > 0 {
            writeln!(out, "  … and {} not shown (--max-violations)", plural(hidden as u64, "violation", "violations"))?;
        }
    }

    if !summary.incomplete_journeys.is_empty() {
        writeln!(out, "\nincomplete journeys (the span dropped events; what is left breaks no rule)")?;
        for i in &summary.incomplete_journeys {
            let name = summary.inputs.get(i.input).map_or("", |x| x.name.as_str());
            writeln!(
                out,
                "  request {:?} in {name} (span {}): {} kept, {} dropped",
                i.request_id.as_deref().unwrap_or("?"),
                i.span_id,
                plural(i.events as u64, "event", "events"),
                i.dropped_events
            )?;
        }
    }
    if !summary.violating_api.is_empty() {
        writeln!(out, "\nviolating API spans")?;
        let shown = options.max_violations.unwrap_or(usize::MAX);
        for (input, api) in summary.violating_api.iter().take(shown) {
            let name = summary.inputs.get(*input).map_or("", |i| i.name.as_str());
            write_violating_api(out, name, api)?;
        }
    }
    if !summary.absent.is_empty() {
        writeln!(out, "\nrequests of the workload missing from the trace")?;
        for (input, v) in &summary.absent {
            let name = summary.inputs.get(*input).map_or("", |i| i.name.as_str());
            writeln!(out, "  ✗ {} {} in {name}: {}", v.rule, v.rule.info().name, v.detail)?;
        }
    }
    write_stats(out, summary)
}

/// The API events of a span, as `ARRIVED → HANDOFF_TO_CORE → …`.
fn api_chain(kinds: &[Option<ApiKind>]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.map_or("api.?", ApiKind::as_str)).collect();
    if names.is_empty() { "no API events".to_owned() } else { names.join(" → ") }
}

fn write_violating_api(out: &mut dyn Write, input: &str, a: &ApiReport) -> io::Result<()> {
    writeln!(
        out,
        "\n✗ API request {:?} ({})  {input}:{}  trace {} span {}",
        a.display_id(),
        a.endpoint.as_str(),
        a.line,
        a.trace_id,
        a.span_id
    )?;
    for v in a.verdict.violations() {
        let at = match a.events.get(v.event_index) {
            Some(e) => format!("event #{} {}", v.event_index, e.name),
            None => "the span".to_owned(),
        };
        writeln!(out, "  {} {} ({}) at {at}: {}", v.rule, v.rule.info().name, v.rule.layer().as_str(), v.detail)?;
    }
    writeln!(out, "     api:  {}", api_chain(&a.kinds))?;
    if a.children.is_empty() {
        writeln!(out, "     core: no core span in the input")?;
    }
    for (span_id, id) in &a.children {
        writeln!(out, "     core: request {:?} span {span_id}", id.as_deref().unwrap_or("?"))?;
    }
    Ok(())
}

fn write_violating(out: &mut dyn Write, input: &str, j: &JourneyReport) -> io::Result<()> {
    let violations = j.verdict.violations();
    writeln!(out, "\n✗ request {:?}  {input}:{}  trace {} span {}", j.display_id(), j.line, j.trace_id, j.span_id)?;
    if let Some(api) = &j.api_parent {
        writeln!(
            out,
            "  API request {:?} ({}) span {}: {}",
            api.request_id.as_deref().unwrap_or("?"),
            api.endpoint.as_str(),
            api.span_id,
            api_chain(&api.kinds)
        )?;
    }
    for v in violations {
        let at = match j.events.get(v.event_index) {
            _ if v.rule == RuleId::UniqueLiveIds => "span".to_owned(),
            _ if !matches!(v.rule.layer(), Layer::Core) => "the span".to_owned(),
            Some(e) => format!("event #{} {}", v.event_index, label(e)),
            None => "the end of the journey".to_owned(),
        };
        let layer = match v.rule.layer() {
            Layer::Core => String::new(),
            other => format!(" ({})", other.as_str()),
        };
        writeln!(out, "  {} {}{layer} at {at}: {}", v.rule, v.rule.info().name, v.detail)?;
    }
    if j.events.is_empty() && j.num_events > 0 {
        writeln!(
            out,
            "     ({} checked and let go before the instance or cross-layer rules found this; --window keeps more)",
            plural(j.num_events as u64, "event", "events")
        )?;
        return Ok(());
    }
    // The events around each violation, the first and the last.
    let n = j.events.len();
    let mut shown = vec![false; n];
    for i in [0, n.saturating_sub(1)].into_iter().chain(violations.iter().flat_map(|v| {
        let i = v.event_index.min(n.saturating_sub(1));
        i.saturating_sub(CONTEXT)..=(i + CONTEXT).min(n.saturating_sub(1))
    })) {
        if let Some(s) = shown.get_mut(i) {
            *s = true;
        }
    }
    let t0 = first_time(&j.events);
    writeln!(out, "     {:>4} {:>6} {:>11}  {:<20} {:<10}", "#", "step", "+t", "event", "state")?;
    let mut skipped = 0;
    for (i, e) in j.events.iter().enumerate() {
        if !shown[i] {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            writeln!(out, "     {:>4}  ({} not shown)", "⋮", plural(skipped, "event", "events"))?;
            skipped = 0;
        }
        let marks = marks_at(violations, i);
        let mark = if marks.is_empty() { String::new() } else { format!("  ← {}", marks.join(", ")) };
        let state = j.states.get(i).map_or(String::new(), State::to_string);
        let (step, t) = match &e.decoded {
            Ok(d) => (d.step.to_string(), t0.map_or(String::new(), |t0| format!("+{}", duration(d.ts_monotonic - t0)))),
            Err(_) => ("?".to_owned(), String::new()),
        };
        writeln!(out, "     {i:>4} {step:>6} {t:>11}  {:<20} {state:<10}{mark}", label(e))?;
    }
    let at_end: Vec<&str> = violations
        .iter()
        .filter(|v| v.event_index >= n && v.rule != RuleId::UniqueLiveIds)
        .map(|v| v.rule.as_str())
        .collect();
    if !at_end.is_empty() {
        writeln!(out, "     {:>4}  (end of the span)  ← {}", n, at_end.join(", "))?;
    }
    Ok(())
}

fn write_stats(out: &mut dyn Write, summary: &Summary) -> io::Result<()> {
    let s = &summary.stats;
    let judged = summary.conforming + summary.incomplete;
    if judged == 0 {
        return Ok(());
    }
    writeln!(out, "\nstatistics over {} that break no rule (ts.monotonic)", plural(judged, "journey", "journeys"))?;
    writeln!(out, "  {:<22} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10}", "", "n", "min", "p50", "p90", "p99", "max")?;
    let mut approximate = false;
    for (name, values) in [
        ("queue time", &s.queue_time),
        ("time to first token", &s.time_to_first_token),
        ("end-to-end latency", &s.end_to_end),
    ] {
        approximate |= !values.is_exact();
        match Distribution::of_samples(values) {
            Some(d) => writeln!(
                out,
                "  {name:<22} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10}",
                d.count,
                duration(d.min),
                duration(d.p50),
                duration(d.p90),
                duration(d.p99),
                duration(d.max)
            )?,
            None => writeln!(out, "  {name:<22} {:>6}", 0)?,
        }
    }
    if approximate {
        writeln!(
            out,
            "  (percentiles from buckets, within ±0.05%: more than {} values of one duration)",
            Samples::EXACT_LIMIT
        )?;
    }
    writeln!(out, "  preemptions per request")?;
    let bins = preemption_bins(&s.preemptions);
    let most = bins.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    for (range, count) in bins {
        let bar = "█".repeat(((count * 40).div_ceil(most)) as usize);
        writeln!(out, "    {range:>7}  {count:>6}  {bar}")?;
    }
    let mut statuses = String::new();
    for (status, count) in FinishStatus::ALL.iter().map(|st| (st, s.finished(*st))) {
        let _ = write!(statuses, "  {status} {count}");
    }
    if s.unfinished > 0 {
        let _ = write!(statuses, "  (no FINISHED: {})", s.unfinished);
    }
    writeln!(out, "  finish status{statuses}")
}

/// The ids of the rules broken at event `i` (R14 concerns the span, not an event).
fn marks_at(violations: &[Violation], i: usize) -> Vec<&'static str> {
    violations
        .iter()
        .filter(|v| v.event_index == i && v.rule != RuleId::UniqueLiveIds)
        .map(|v| v.rule.as_str())
        .collect()
}

/// The preemption histogram as printed: one bin per value when there are few, otherwise 0, 1,
/// 2, then power-of-two ranges (3–4, 5–8, 9–16, ...), empty bins included up to the largest.
fn preemption_bins(histogram: &std::collections::BTreeMap<u64, u64>) -> Vec<(String, u64)> {
    if histogram.len() <= 10 {
        return histogram.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    }
    let max = histogram.keys().next_back().copied().unwrap_or(0);
    let mut bins = vec![("0".to_owned(), 0, 0), ("1".to_owned(), 1, 1), ("2".to_owned(), 2, 2)];
    let mut lo = 3u64;
    while lo <= max {
        let hi = (lo - 1).saturating_mul(2);
        bins.push((format!("{lo}–{hi}"), lo, hi));
        lo = hi.saturating_add(1);
    }
    bins.into_iter().map(|(name, lo, hi)| (name, histogram.range(lo..=hi).map(|(_, c)| c).sum())).collect()
}

/// The label of an event in a timeline: `SCHEDULED(RESUME)`, `FINISHED(length)`, or the name of
/// an event that could not be decoded, with a `?`.
fn label(e: &RecordedEvent) -> String {
    match &e.decoded {
        Ok(d) => match (d.schedule_kind, d.finish_status) {
            (Some(k), _) => format!("{}({k})", d.kind),
            (None, Some(s)) => format!("{}({s})", d.kind),
            (None, None) => d.kind.to_string(),
        },
        Err(u) => format!("? {}", u.name),
    }
}

fn first_time(events: &[RecordedEvent]) -> Option<f64> {
    events.iter().find_map(|e| e.decoded.as_ref().ok().map(|d| d.ts_monotonic))
}

/// `text` with every line longer than `width` columns (at least 20) wrapped at spaces (continuation lines
/// indented under the line's text), or cut where it has none: what a terminal of that width
/// shows without wrapping on its own.
///
/// ```
/// use journey_spec::otel::text::fit_width;
/// assert_eq!(fit_width("  R9 aaaa bbbb cccc dddd eeee\n", 20), "  R9 aaaa bbbb cccc\n      dddd eeee\n");
/// ```
pub fn fit_width(text: &str, width: usize) -> String {
    let width = width.max(20);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        if body.chars().count() <= width {
            out.push_str(line);
            continue;
        }
        let indent = body.chars().take_while(|c| *c == ' ').count() + 4;
        let mut rest: Vec<char> = body.chars().collect();
        let mut first = true;
        while !rest.is_empty() {
            let room = if first { width } else { width.saturating_sub(indent).max(10) };
            if !first {
                out.extend(std::iter::repeat_n(' ', indent));
            }
            if rest.len() <= room {
                out.extend(rest.drain(..));
                break;
            }
            let cut = rest[..=room].iter().rposition(|c| *c == ' ').filter(|&i| i > 0).unwrap_or(room);
            out.extend(rest.drain(..cut));
            while rest.first() == Some(&' ') {
                rest.remove(0);
            }
            out.push('\n');
            first = false;
        }
        out.push_str(newline);
    }
    out
}

/// `text` (the summary's lines) with the marks of violations in red and the verdict counts in
/// colour, with ANSI escapes; for a terminal.
pub fn colorize(text: &str) -> String {
    const RED: &str = "\x1b[31m";
    const GREEN: &str = "\x1b[32m";
    const BOLD: &str = "\x1b[1m";
    const RESET: &str = "\x1b[0m";
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let is_rule = trimmed.starts_with('R')
            && trimmed[1..].chars().take_while(char::is_ascii_digit).count() > 0
            && trimmed.split_whitespace().nth(1).is_some_and(|w| w.contains('-'));
        if line.starts_with('✗') {
            out.push_str(&format!(
                "{RED}{BOLD}{}{RESET}{}",
                line.trim_end_matches('\n'),
                &line[line.trim_end_matches('\n').len()..]
            ));
        } else if is_rule {
            let lead = line.len() - trimmed.len();
            let id_end = lead + trimmed.find(' ').unwrap_or(trimmed.len());
            out.push_str(&format!("{}{RED}{}{RESET}{}", &line[..lead], &line[lead..id_end], &line[id_end..]));
        } else if let Some(rest) = line.strip_prefix("  conforming ") {
            out.push_str(&format!("  {GREEN}conforming{RESET} {rest}"));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Width of the time axis of a timeline, in columns.
const AXIS: usize = 48;

/// Width of a timeline row before its bar, in columns.
const PREFIX: usize = 98;

/// The column of `x` on an axis from `lo` to `hi`.
fn scale(x: f64, lo: f64, hi: f64) -> usize {
    let last = (AXIS - 1) as f64;
    if hi > lo && x.is_finite() { (((x - lo) / (hi - lo)) * last).round().clamp(0.0, last) as usize } else { 0 }
}

/// The journey on one line: the state at each column of an axis (`at` gives an event's column),
/// with preemptions, the first token and the finish marked.
fn lane(j: &JourneyReport, at: &dyn Fn(&JourneyEvent) -> usize) -> String {
    let mut lane = vec![' '; AXIS];
    let mut marks = Vec::new();
    let points: Vec<(usize, State, EventKind)> = j
        .events
        .iter()
        .zip(&j.states)
        .filter_map(|(e, s)| e.decoded.as_ref().ok().map(|d| (at(d), *s, d.kind)))
        .collect();
    for (k, &(from, state, kind)) in points.iter().enumerate() {
        let to = points.get(k + 1).map_or(from + 1, |n| n.0.max(from + 1));
        for c in lane.iter_mut().take(to).skip(from) {
            *c = glyph(state);
        }
        match kind {
            EventKind::FirstToken => marks.push((from, '★')),
            EventKind::Preempted => marks.push((from, '▼')),
            EventKind::Finished => marks.push((from, '┃')),
            EventKind::Queued | EventKind::Scheduled => {}
        }
    }
    for (c, m) in marks {
        if let Some(slot) = lane.get_mut(c) {
            *slot = m;
        }
    }
    lane.into_iter().collect::<String>().trim_end().to_owned()
}

/// The glyph of a state on the time axis.
fn glyph(state: State) -> char {
    match state {
        State::New => ' ',
        State::Waiting => '·',
        State::Running => '█',
        State::Preempted => '░',
        State::Finished(_) => '┃',
    }
}

/// The glyph of an API state on the time axis.
fn api_glyph(state: ApiState) -> char {
    match state {
        ApiState::New => ' ',
        ApiState::Arrived => '·',
        ApiState::HandedOff => '▒',
        ApiState::Responding => '█',
        ApiState::Departed | ApiState::Aborted => '┃',
    }
}

/// One lane over `points` (column, glyph from there on), up to column `end`.
fn lane_of(points: &[(usize, char)], end: usize) -> String {
    let mut lane = vec![' '; AXIS];
    for (k, &(from, g)) in points.iter().enumerate() {
        let to = points.get(k + 1).map_or(end.max(from + 1), |n| n.0.max(from + 1));
        for c in lane.iter_mut().take(to).skip(from) {
            *c = g;
        }
    }
    lane.into_iter().collect::<String>().trim_end().to_owned()
}

/// Writes a request's two layers together: the `llm_request` span and its `llm_core` children
/// (`cores`, those of them in the input), their events merged in wall-clock order, one lane per
/// span on a common axis, and the API span's violations. The core journeys' own timelines
/// ([`write_timeline`]) follow it in `journey timeline`.
pub fn write_layers(out: &mut dyn Write, input: &str, api: &ApiReport, cores: &[&JourneyReport]) -> io::Result<()> {
    writeln!(
        out,
        "API request {:?} ({})  trace {}  span {}  parent {}",
        api.display_id(),
        api.endpoint.as_str(),
        or_dash(&api.trace_id),
        or_dash(&api.span_id),
        api.parent_span_id.as_deref().unwrap_or("none (root)")
    )?;
    writeln!(out, "read from {input}, line {}", api.line)?;
    let verdict = match &api.verdict {
        Verdict::Conforming => "conforming".to_owned(),
        Verdict::Incomplete { dropped_events } => format!("incomplete: the span dropped {dropped_events} events"),
        Verdict::Violating(v) => format!("violating ({})", plural(v.len() as u64, "violation", "violations")),
    };
    let children = if cores.is_empty() {
        "no core span in the input".to_owned()
    } else {
        let ids: Vec<String> = cores.iter().map(|c| format!("{:?}", c.display_id())).collect();
        format!("core {}", ids.join(", "))
    };
    writeln!(out, "API verdict: {verdict} · {children}\n")?;

    // (time, lane, index, event name, state)
    let mut rows: Vec<(u64, usize, usize, String, String)> = Vec::new();
    for (i, e) in api.events.iter().enumerate() {
        let state = api.states.get(i).map_or(String::new(), ApiState::to_string);
        rows.push((e.time_unix_nano.unwrap_or(0), 0, i, e.name.to_string(), state));
    }
    for (k, c) in cores.iter().enumerate() {
        for (i, e) in c.events.iter().enumerate() {
            let state = c.states.get(i).map_or(String::new(), State::to_string);
            rows.push((e.time_unix_nano, k + 1, i, format!("journey.{}", label(e)), state));
        }
    }
    rows.sort_by_key(|r| (r.0, r.1, r.2));
    let t0 = rows.iter().map(|r| r.0).filter(|&t| t > 0).min().unwrap_or(0);
    let t1 = rows.iter().map(|r| r.0).max().unwrap_or(t0);
    let secs = |t: u64| t.saturating_sub(t0) as f64 / 1e9;
    let col = |t: u64| scale(secs(t), 0.0, secs(t1));
    let lane_name = |l: usize| {
        if l == 0 {
            "api".to_owned()
        } else if cores.len() == 1 {
            "core".to_owned()
        } else {
            format!("core {}", l - 1)
        }
    };
    writeln!(out, "{:>4}  {:<7} {:>11}  {:<36} {:<16}", "#", "layer", "+t (wall)", "event", "state")?;
    for (t, l, i, name, state) in &rows {
        let marks = if *l == 0 { marks_at(api.verdict.violations(), *i) } else { Vec::new() };
        let mark = if marks.is_empty() { String::new() } else { format!("  ✗ {}", marks.join(", ")) };
        writeln!(
            out,
            "{i:>4}  {:<7} {:>11}  {name:<36} {state:<16}{mark}",
            lane_name(*l),
            format!("+{}", duration(secs(*t)))
        )?;
    }
    let api_points: Vec<(usize, char)> =
        api.events.iter().zip(&api.states).map(|(e, s)| (col(e.time_unix_nano.unwrap_or(t0)), api_glyph(*s))).collect();
    let end = api.span.end_unix_nano.map_or(AXIS, |e| col(e) + 1);
    writeln!(out, "\n{:>9}  │{}", "api lane", lane_of(&api_points, end))?;
    for (k, c) in cores.iter().enumerate() {
        let points: Vec<(usize, char)> =
            c.events.iter().zip(&c.states).map(|(e, s)| (col(e.time_unix_nano), glyph(*s))).collect();
        let end = c.span.end_unix_nano.map_or(AXIS, |e| col(e) + 1);
        let name = if cores.len() == 1 { "core lane".to_owned() } else { format!("core {k}") };
        writeln!(out, "{name:>9}  │{}", lane_of(&points, end))?;
    }
    writeln!(
        out,
        "{:>9}   api: · arrived  ▒ handed off  █ responding  ┃ departed/aborted; core as below, time {}",
        "",
        duration(secs(t1))
    )?;
    for v in api.verdict.violations() {
        let at = match api.events.get(v.event_index) {
            Some(e) => format!("event #{} {}", v.event_index, e.name),
            None => "the span".to_owned(),
        };
        writeln!(out, "✗ {} {} ({}) at {at}: {}", v.rule, v.rule.info().name, v.rule.layer().as_str(), v.detail)?;
    }
    Ok(())
}

/// Writes the timeline of one journey: a header with what the journey did, one line per event
/// (index, step, time since the first event, Δt, event, state after it, progress, and a bar
/// on a common time axis showing the state until the next event), then a one-line lane of the
/// whole journey and the violations. `input` names where the journey was read.
pub fn write_timeline(out: &mut dyn Write, input: &str, j: &JourneyReport) -> io::Result<()> {
    writeln!(out, "request {:?}  trace {}  span {}", j.display_id(), or_dash(&j.trace_id), or_dash(&j.span_id))?;
    writeln!(out, "read from {input}, line {}", j.line)?;

    let decoded: Vec<_> = j.events.iter().filter_map(|e| e.decoded.as_ref().ok()).collect();
    let t0 = first_time(&j.events).unwrap_or(0.0);
    let t_end = decoded.iter().map(|d| d.ts_monotonic).fold(t0, f64::max);
    let span = t_end - t0;
    let col = |t: f64| scale(t, t0, t_end);

    // What happened, in one line.
    let mut facts = Vec::new();
    if let Some(first) = decoded.first() {
        let p = first.progress;
        facts.push(format!("prompt {} tokens, max_tokens {}", p.prefill_total, p.decode_max));
    }
    let preemptions = decoded.iter().map(|d| d.num_preemptions).max().unwrap_or(0);
    facts.push(plural(preemptions, "preemption", "preemptions"));
    if let Some(ft) = decoded.iter().find(|d| d.kind == EventKind::FirstToken) {
        facts.push(format!("first token at +{} (step {})", duration(ft.ts_monotonic - t0), ft.step));
    }
    if let Some(f) = decoded.iter().find(|d| d.kind == EventKind::Finished) {
        let status = f.finish_status.map_or("?".to_owned(), |s| s.to_string());
        facts.push(format!("finished {status} at +{} (step {})", duration(f.ts_monotonic - t0), f.step));
    }
    writeln!(out, "{}", facts.join(" · "))?;
    let verdict = match &j.verdict {
        Verdict::Conforming => "conforming".to_owned(),
        Verdict::Incomplete { dropped_events } => {
            format!("incomplete: the span dropped {dropped_events} events; the kept ones break no rule")
        }
        Verdict::Violating(v) => format!("violating ({})", plural(v.len() as u64, "violation", "violations")),
    };
    writeln!(out, "verdict: {verdict}\n")?;

    let axis_head = {
        let left = "0";
        let right = format!("{} ┤", duration(span));
        let fill = AXIS.saturating_sub(left.len() + right.chars().count() + 2);
        format!("├{left} {}{right}", "─".repeat(fill))
    };
    writeln!(
        out,
        "{:>4} {:>6} {:>11} {:>11}  {:<20} {:<16} {:>11} {:>9}  {axis_head}",
        "#", "step", "+t", "Δt", "event", "state", "prefill", "decode"
    )?;
    let mut prev_t: Option<f64> = None;
    for (i, e) in j.events.iter().enumerate() {
        let state = j.states.get(i).copied().unwrap_or(State::New);
        let marks = marks_at(j.verdict.violations(), i);
        let mark = if marks.is_empty() { String::new() } else { format!("  ✗ {}", marks.join(", ")) };
        let Ok(d) = &e.decoded else {
            writeln!(out, "{i:>4} {:>6} {:>11} {:>11}  {:<20} {:<16}{mark}", "?", "", "", label(e), state.to_string())?;
            continue;
        };
        let dt = prev_t.map_or("—".to_owned(), |p| format!("+{}", duration(d.ts_monotonic - p)));
        prev_t = Some(d.ts_monotonic);
        let next_t = j.events[i + 1..].iter().find_map(|e| e.decoded.as_ref().ok()).map(|n| n.ts_monotonic);
        let (from, to) = (col(d.ts_monotonic), col(next_t.unwrap_or(d.ts_monotonic)));
        let mut bar: Vec<char> = vec![' '; AXIS];
        for c in bar.iter_mut().take(to.max(from + 1)).skip(from) {
            *c = glyph(state);
        }
        match d.kind {
            EventKind::FirstToken => bar[from] = '★',
            EventKind::Preempted => bar[from] = '▼',
            EventKind::Finished => bar[from] = '┃',
            EventKind::Queued | EventKind::Scheduled => {}
        }
        let bar: String = bar.into_iter().collect::<String>().trim_end().to_owned();
        let note = match d.kind {
            EventKind::FirstToken => " ★",
            EventKind::Preempted => " ▼",
            EventKind::Queued | EventKind::Scheduled | EventKind::Finished => "",
        };
        let p = d.progress;
        writeln!(
            out,
            "{i:>4} {:>6} {:>11} {dt:>11}  {:<20} {:<16} {:>11} {:>9}  │{bar}{mark}",
            d.step,
            format!("+{}", duration(d.ts_monotonic - t0)),
            format!("{}{note}", label(e)),
            state.to_string(),
            format!("{}/{}", p.prefill_done, p.prefill_total),
            format!("{}/{}", p.decode_done, p.decode_max),
        )?;
    }

    // The whole journey on one lane per axis: the state at each column, with the marks on top.
    let steps: Vec<f64> = decoded.iter().map(|d| d.step.0 as f64).collect();
    let (s0, s1) = (steps.iter().copied().fold(f64::INFINITY, f64::min), steps.iter().copied().fold(0.0, f64::max));
    let by_step = |d: &JourneyEvent| scale(d.step.0 as f64, s0, s1);
    let by_time = |d: &JourneyEvent| scale(d.ts_monotonic, t0, t_end);
    for (name, axis) in [("time", &by_time as &dyn Fn(&JourneyEvent) -> usize), ("steps", &by_step)] {
        let label = format!("{name} lane");
        writeln!(out, "{}{label:>w$}  │{}", if name == "time" { "\n" } else { "" }, lane(j, axis), w = PREFIX - 3)?;
    }
    writeln!(
        out,
        "{:>w$}   · waiting  █ running  ░ preempted  ▼ preemption  ★ first token  ┃ finished",
        "",
        w = PREFIX - 3
    )?;

    let violations: &[Violation] = j.verdict.violations();
    if !violations.is_empty() {
        writeln!(out)?;
        for v in violations {
            let at = if v.rule == RuleId::UniqueLiveIds {
                "span".to_owned()
            } else if v.event_index < j.events.len() {
                format!("event #{}", v.event_index)
            } else {
                "the end of the journey".to_owned()
            };
            writeln!(out, "✗ {} {} at {at}: {}", v.rule, v.rule.info().name, v.detail)?;
        }
    }
    Ok(())
}

/// The step windows' view of a journey's steps (`journey timeline --steps`): for every step one
/// of its events carries and every step with a snapshot of the request, the step's
/// `step.BATCH_SUMMARY` when one was sampled, and the request's own `step.REQUEST_SNAPSHOT`.
pub fn write_step_context(
    out: &mut dyn Write,
    j: &JourneyReport,
    summaries: &[crate::model::steps::BatchSummary],
    snapshots: &[crate::model::steps::RequestSnapshot],
) -> io::Result<()> {
    let mut steps: Vec<u64> = j.events.iter().filter_map(|e| e.decoded.as_ref().ok()).map(|e| e.step.0).collect();
    steps.extend(snapshots.iter().map(|s| s.step));
    steps.sort_unstable();
    steps.dedup();
    let mut shown = 0;
    writeln!(out, "step windows at this journey's steps")?;
    for step in steps {
        let Some(b) = summaries.iter().find(|b| b.step == step) else { continue };
        shown += 1;
        writeln!(
            out,
            "  step {step}: running {}, waiting {}, prefill {} req / {} tok, decode {} req / {} tok, finished {}, preempted {}, KV {:.1}% ({} of {} blocks free)",
            b.running_depth,
            b.waiting_depth,
            b.num_prefill_reqs,
            b.prefill_tokens,
            b.num_decode_reqs,
            b.decode_tokens,
            b.num_finished,
            b.num_preempted,
            b.kv_usage_gpu_ratio * 100.0,
            b.kv_blocks_free_gpu,
            b.kv_blocks_total_gpu
        )?;
        for s in snapshots.iter().filter(|s| s.step == step) {
            writeln!(
                out,
                "    this request: {}, computed {}, output {}, preemptions {}, scheduled {}, {} KV blocks",
                s.phase.map_or("?", |p| p.as_str()),
                s.num_computed_tokens,
                s.num_output_tokens,
                s.num_preemptions,
                s.scheduled_tokens_this_step,
                s.kv_blocks_allocated_gpu
            )?;
        }
    }
    if shown == 0 {
        writeln!(out, "  (no summarized step among them)")?;
    }
    Ok(())
}
