//! The HTML page: header, run overview, load, distributions, violations, comparison and
//! timelines, with the journeys' data, the styles and the script inline.
//!
//! Every number the check reports is in the page as `data-stat="NAME" data-value="VALUE"` on
//! the element that shows it (`NAME` as in the JSON report: `journeys`,
//! `queue_time_s.p50`, `preemptions.3`, `finish_status.stopped`, ...; `VALUE` printed so that
//! it reads back as the same number), under a `data-run` that tells the runs of a comparison
//! apart.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;

use crate::model::{FinishStatus, RuleId};
use crate::otel::summary::{Distribution, Samples, Stats};
use crate::otel::text::duration;

use super::compare::{Comparison, compare};
use super::load::load;
use super::svg::{self, HistogramScale, esc};
use super::{JourneyRow, Mark, ReportOptions, RunData, VIRTUALISE_ABOVE, VerdictClass};

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Records script errors and `console.error` calls into the page (`#page-errors`), so that a
/// test reading the DOM sees them. It runs first, before anything can fail.
const ERROR_CAPTURE: &str = r#"window.__pageErrors=[];(function(){function keep(m){window.__pageErrors.push(String(m));var e=document.getElementById('page-errors');if(e){e.textContent=window.__pageErrors.join('\n');e.setAttribute('data-count',String(window.__pageErrors.length));e.hidden=false;}}window.addEventListener('error',function(ev){keep('error: '+ev.message+' at '+ev.filename+':'+ev.lineno);});window.addEventListener('unhandledrejection',function(ev){keep('unhandled rejection: '+ev.reason);});var ce=console.error;console.error=function(){keep('console.error: '+Array.prototype.join.call(arguments,' '));return ce.apply(console,arguments);};window.__keepError=keep;})();"#;

/// Bins of the load chart.
const LOAD_BINS: usize = 240;

/// At most this many rows of the comparison table.
const DIFFERENCES_AT_MOST: usize = 1000;

/// Writes the page of `run`, compared with `against` when given.
pub fn write_html(
    out: &mut dyn Write,
    run: &RunData,
    against: Option<&RunData>,
    options: &ReportOptions,
) -> io::Result<()> {
    let runs: Vec<(&str, &RunData)> = match against {
        Some(b) => vec![("A", run), ("B", b)],
        None => vec![("A", run)],
    };
    let comparison = against.map(|b| compare(run, b));
    let mut p = String::with_capacity(1 << 16);
    let _ = write!(
        p,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><script>{ERROR_CAPTURE}</script><style>{STYLE}</style></head><body>",
        esc(&options.title)
    );
    header(&mut p, &runs, options);
    p.push_str("<main>");
    // A comparison is what its reader came for: first.
    if let (Some(c), Some(b)) = (&comparison, against) {
        comparison_section(&mut p, c, run, b);
    }
    overview(&mut p, &runs);
    load_section(&mut p, &runs);
    distributions(&mut p, &runs);
    violations(&mut p, &runs);
    timelines(&mut p, &runs);
    p.push_str("</main>");
    p.push_str(r#"<pre id="page-errors" data-count="0" hidden></pre>"#);
    let data = page_data(&runs);
    let _ = write!(
        p,
        r#"<script type="application/json" id="journey-data">{}</script><script>{SCRIPT}</script></body></html>"#,
        data
    );
    p.push('\n');
    out.write_all(p.as_bytes())
}

/// A number as an attribute value that parses back to the same `f64`.
fn value(v: f64) -> String {
    format!("{v}")
}

fn stat(p: &mut String, run: usize, name: &str, v: &str, shown: &str) {
    let _ =
        write!(p, r#"<span class="stat" data-run="{run}" data-stat="{name}" data-value="{v}">{}</span>"#, esc(shown));
}

fn header(p: &mut String, runs: &[(&str, &RunData)], options: &ReportOptions) {
    let _ = write!(p, "<header><h1>{}</h1>", esc(&options.title));
    let allowed: Vec<&str> = options.allowed.iter().map(|r| r.as_str()).collect();
    let _ = write!(
        p,
        r#"<p class="meta">profile <b>{}</b> · input {} · allowed rules: {}</p>"#,
        esc(&options.profile),
        if options.complete { "declared complete" } else { "not declared complete" },
        if allowed.is_empty() { "none".to_owned() } else { esc(&allowed.join(", ")) }
    );
    for (k, (tag, run)) in runs.iter().enumerate() {
        let s = &run.summary;
        let names: Vec<String> = s.inputs.iter().map(|i| esc(&i.name)).collect();
        let inputs = if names.len() <= 3 {
            names.join(", ")
        } else {
            format!("<details><summary>{} inputs</summary>{}</details>", names.len(), names.join("<br>"))
        };
        let _ = write!(
            p,
            r#"<div class="run-head"><span class="run-tag run-{k}">{tag}</span> <span class="inputs">{inputs}</span></div><div class="cards">"#
        );
        for (name, n, class) in [
            ("journeys", s.journeys, ""),
            ("conforming", s.conforming, "ok"),
            ("incomplete", s.incomplete, "warn"),
            ("violating", s.violating, if s.violating > 0 { "bad" } else { "" }),
            ("events", s.events, ""),
            ("spans", s.spans, ""),
            ("input_errors", s.input_errors, if s.input_errors > 0 { "bad" } else { "" }),
        ] {
            let _ = write!(p, r#"<div class="card {class}">"#);
            stat(p, k, name, &n.to_string(), &n.to_string());
            let _ = write!(p, r#"<span class="card-label">{}</span></div>"#, name.replace('_', " "));
        }
        let violations = s.violations().count() + s.api_violations().count() + s.absent.len();
        let _ = write!(p, r#"<div class="card {}">"#, if violations > 0 { "bad" } else { "" });
        stat(p, k, "violations", &violations.to_string(), &violations.to_string());
        p.push_str(r#"<span class="card-label">violations</span></div></div>"#);
    }
    p.push_str("<nav>");
    if runs.len() > 1 {
        p.push_str(r##"<a href="#comparison">Comparison</a>"##);
    }
    p.push_str(
        r##"<a href="#overview">Overview</a><a href="#load">Load</a><a href="#distributions">Distributions</a><a href="#violations">Violations</a><a href="#timelines">Timelines</a></nav></header>"##,
    );
}

fn legend(p: &mut String) {
    p.push_str(
        r#"<div class="legend"><span><i class="sw waiting"></i>waiting</span><span><i class="sw running"></i>running</span><span><i class="sw preempted"></i>preempted</span><span><i class="mk preemption"></i>preemption</span><span><i class="mk first-token"></i>first token</span><span><i class="mk finish"></i>finished</span><span><i class="mk violating"></i>violating journey</span></div>"#,
    );
}

fn overview(p: &mut String, runs: &[(&str, &RunData)]) {
    p.push_str(r#"<section id="overview"><h2>Run overview</h2><p class="hint">Every journey is a lane over time (time 0 is the input's first event). Click a lane for its events; hover for its numbers."#);
    let _ = write!(p, " Above {VIRTUALISE_ABOVE} journeys in one input, only the lanes in view are drawn.</p>");
    legend(p);
    for (k, (tag, run)) in runs.iter().enumerate() {
        for (i, input) in run.inputs.iter().enumerate() {
            let n = input.rows.len();
            let virtual_ = n > VIRTUALISE_ABOVE;
            let _ = write!(
                p,
                r#"<div class="input-overview"><h3><span class="run-tag run-{k}">{tag}</span> {} <small>{n} journeys over {}</small></h3>"#,
                esc(&input.name),
                duration(input.duration)
            );
            let id = if k == 0 && runs.len() == 1 { format!("lanes-{i}") } else { format!("lanes-{k}-{i}") };
            let _ = write!(
                p,
                r#"<div class="controls" data-for="{id}"><label>sort by <select class="sort"><option value="a">arrival</option><option value="q">queue time</option><option value="p">preemptions</option><option value="e">latency</option></select></label><label><input type="checkbox" class="desc"> descending</label><label><input type="checkbox" class="only-violating"> violating only</label></div>"#
            );
            let _ = write!(
                p,
                r#"<div class="lanes{}" id="{id}" data-run="{k}" data-input="{i}" data-journeys="{n}" data-virtual="{virtual_}"></div>"#,
                if virtual_ { " virtual" } else { "" }
            );
            p.push_str("</div>");
        }
    }
    p.push_str(r#"<div id="detail" hidden></div></section>"#);
}

fn load_section(p: &mut String, runs: &[(&str, &RunData)]) {
    p.push_str(r#"<section id="load"><h2>Load over time</h2><p class="hint">Derived from the journeys: the mean number of requests running, waiting for their first run and preempted in each of "#);
    let _ = write!(p, "{LOAD_BINS} bins, and the preemptions per second.</p>");
    p.push_str(r#"<div class="legend"><span><i class="sw running"></i>running</span><span><i class="sw waiting"></i>waiting</span><span><i class="sw preempted"></i>preempted</span></div>"#);
    for (k, (tag, run)) in runs.iter().enumerate() {
        for (i, input) in run.inputs.iter().enumerate() {
            let l = load(input.rows.iter().filter_map(|&r| run.rows.get(r)), input.duration, LOAD_BINS);
            let _ = write!(
                p,
                r#"<div class="load"><h3><span class="run-tag run-{k}">{tag}</span> {}</h3>"#,
                esc(&input.name)
            );
            if l.is_empty() {
                p.push_str("<p>No timed journey events.</p>");
            } else {
                p.push_str(&svg::load_chart(&format!("load-{k}-{i}"), &l, input.duration));
            }
            p.push_str("</div>");
        }
    }
    p.push_str("</section>");
}

/// The three duration metrics: JSON report name, title, values.
fn metrics(s: &Stats) -> [(&'static str, &'static str, &Samples); 3] {
    [
        ("queue_time_s", "queue time", &s.queue_time),
        ("time_to_first_token_s", "time to first token", &s.time_to_first_token),
        ("end_to_end_s", "end-to-end latency", &s.end_to_end),
    ]
}

/// Preemption bins shared by the runs: one per count when the largest is at most 10, else 0 to
/// 4, then 5–8, 9–16, 17–32, ...
fn preemption_bins(hists: &[&BTreeMap<u64, u64>]) -> Vec<(String, u64, u64)> {
    let max = hists.iter().filter_map(|h| h.keys().next_back().copied()).max().unwrap_or(0);
    if max <= 10 {
        return (0..=max).map(|n| (n.to_string(), n, n)).collect();
    }
    let mut bins: Vec<(String, u64, u64)> = (0..=4).map(|n| (n.to_string(), n, n)).collect();
    let mut lo = 5u64;
    while lo <= max {
        let hi = lo.saturating_sub(1).saturating_mul(2);
        bins.push((format!("{lo}–{hi}"), lo, hi));
        lo = hi.saturating_add(1);
    }
    bins
}

fn distributions(p: &mut String, runs: &[(&str, &RunData)]) {
    p.push_str(r#"<section id="distributions"><h2>Distributions</h2><p class="hint">The statistics of <code>journey check</code>, over the journeys that break no rule (nearest-rank percentiles of <code>ts.monotonic</code> differences)."#);
    if runs.len() > 1 {
        p.push_str(" A and B side by side, on the same scales.");
    }
    p.push_str("</p>");
    let stats: Vec<&Stats> = runs.iter().map(|(_, r)| &r.summary.stats).collect();
    for m in 0..3 {
        let (name, title, _) = metrics(stats[0])[m];
        let sets: Vec<&Samples> = stats.iter().map(|s| metrics(s)[m].2).collect();
        let scale = HistogramScale::of(&sets);
        let _ = write!(p, r#"<div class="dist"><h3>{title}</h3><div class="side">"#);
        for (k, values) in sets.iter().enumerate() {
            let _ = write!(p, r#"<figure><figcaption><span class="run-tag run-{k}">{}</span></figcaption>"#, runs[k].0);
            p.push_str(&svg::histogram(&format!("{name}-{k}"), title, values, scale, &format!("run-{k}")));
            p.push_str("</figure>");
        }
        p.push_str("</div></div>");
    }

    // Preemptions per request and finish statuses.
    let hists: Vec<&BTreeMap<u64, u64>> = stats.iter().map(|s| &s.preemptions).collect();
    let bins = preemption_bins(&hists);
    let binned: Vec<Vec<(String, u64)>> = hists
        .iter()
        .map(|h| bins.iter().map(|(name, lo, hi)| (name.clone(), h.range(lo..=hi).map(|(_, c)| c).sum())).collect())
        .collect();
    let most = binned.iter().flatten().map(|b| b.1).max().unwrap_or(0);
    p.push_str(r#"<div class="dist"><h3>preemptions per request</h3><div class="side">"#);
    for (k, b) in binned.iter().enumerate() {
        let _ = write!(p, r#"<figure><figcaption><span class="run-tag run-{k}">{}</span></figcaption>"#, runs[k].0);
        p.push_str(&svg::bars(&format!("preemptions-{k}"), "preemptions", b, most, &format!("run-{k}")));
        p.push_str("</figure>");
    }
    p.push_str("</div></div>");
    let statuses: Vec<Vec<(String, u64)>> = stats
        .iter()
        .map(|s| {
            let mut v: Vec<(String, u64)> =
                FinishStatus::ALL.iter().map(|st| (st.to_string(), s.finished(*st))).collect();
            // Journeys without FINISHED (`unfinished` in the JSON report).
            v.push(("none".to_owned(), s.unfinished));
            v
        })
        .collect();
    let most = statuses.iter().flatten().map(|b| b.1).max().unwrap_or(0);
    p.push_str(r#"<div class="dist"><h3>finish status</h3><div class="side">"#);
    for (k, b) in statuses.iter().enumerate() {
        let _ = write!(p, r#"<figure><figcaption><span class="run-tag run-{k}">{}</span></figcaption>"#, runs[k].0);
        p.push_str(&svg::bars(&format!("finish-status-{k}"), "finish status", b, most, &format!("run-{k}")));
        p.push_str("</figure>");
    }
    p.push_str("</div></div>");

    stats_table(p, runs);
    p.push_str("</section>");
}

fn stats_table(p: &mut String, runs: &[(&str, &RunData)]) {
    p.push_str(r#"<table class="stats" id="stats"><thead><tr><th></th><th>run</th><th>n</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>max</th><th>mean</th></tr></thead><tbody>"#);
    for m in 0..3 {
        for (k, (tag, run)) in runs.iter().enumerate() {
            let (name, title, values) = metrics(&run.summary.stats)[m];
            let _ = write!(
                p,
                r#"<tr><th>{}</th><td><span class="run-tag run-{k}">{tag}</span></td>"#,
                if k == 0 { title } else { "" }
            );
            match Distribution::of_samples(values) {
                Some(d) => {
                    p.push_str("<td>");
                    stat(p, k, &format!("{name}.count"), &d.count.to_string(), &d.count.to_string());
                    p.push_str("</td>");
                    for (field, v) in [
                        ("min", d.min),
                        ("p50", d.p50),
                        ("p90", d.p90),
                        ("p99", d.p99),
                        ("max", d.max),
                        ("mean", d.mean),
                    ] {
                        p.push_str("<td>");
                        stat(p, k, &format!("{name}.{field}"), &value(v), &duration(v));
                        p.push_str("</td>");
                    }
                }
                None => {
                    p.push_str("<td>");
                    stat(p, k, &format!("{name}.count"), "0", "0");
                    p.push_str(r#"</td><td colspan="6">no values</td>"#);
                }
            }
            p.push_str("</tr>");
        }
    }
    p.push_str("</tbody></table>");
    // The exact counts behind the two bar charts.
    p.push_str(r#"<table class="stats counts"><thead><tr><th>run</th><th>preemptions per request (journeys)</th><th>finish status (journeys)</th></tr></thead><tbody>"#);
    for (k, (tag, run)) in runs.iter().enumerate() {
        let s = &run.summary.stats;
        let _ = write!(p, r#"<tr><td><span class="run-tag run-{k}">{tag}</span></td><td>"#);
        for (n, c) in &s.preemptions {
            let _ = write!(p, r#"<span class="pair">{n}: "#);
            stat(p, k, &format!("preemptions.{n}"), &c.to_string(), &c.to_string());
            p.push_str("</span> ");
        }
        p.push_str("</td><td>");
        for (st, c) in FinishStatus::ALL.iter().map(|st| (st, s.finished(*st))) {
            let _ = write!(p, r#"<span class="pair">{st}: "#);
            stat(p, k, &format!("finish_status.{st}"), &c.to_string(), &c.to_string());
            p.push_str("</span> ");
        }
        p.push_str(r#"<span class="pair">unfinished: "#);
        stat(p, k, "unfinished", &s.unfinished.to_string(), &s.unfinished.to_string());
        p.push_str("</span></td></tr>");
    }
    p.push_str("</tbody></table>");
}

/// The anchor of a journey's timeline.
fn anchor(run: usize, row: usize) -> String {
    format!("t-{run}-{row}")
}

fn journey_link(run: usize, row: usize, r: &JourneyRow) -> String {
    format!(
        r##"<a class="journey-link" href="#{}" data-run="{run}" data-row="{row}">{}</a>"##,
        anchor(run, row),
        esc(r.display_id())
    )
}

/// A row of the violations table: a core journey's violation (row, violation), an API span's,
/// or a workload request's that has no span.
enum Finding<'a> {
    Journey(usize, usize),
    Api(usize, &'a super::super::check::ApiReport, &'a crate::model::Violation),
    Absent(usize, &'a crate::model::Violation),
}

fn violations(p: &mut String, runs: &[(&str, &RunData)]) {
    p.push_str(r#"<section id="violations"><h2>Violations</h2>"#);
    for (k, (tag, run)) in runs.iter().enumerate() {
        let mut by_rule: BTreeMap<RuleId, Vec<Finding<'_>>> = BTreeMap::new();
        for (r, row) in run.rows.iter().enumerate() {
            for (v, violation) in row.violations.iter().enumerate() {
                by_rule.entry(violation.rule).or_default().push(Finding::Journey(r, v));
            }
        }
        for (input, api, v) in run.summary.api_violations() {
            by_rule.entry(v.rule).or_default().push(Finding::Api(input, api, v));
        }
        for (input, v) in &run.summary.absent {
            by_rule.entry(v.rule).or_default().push(Finding::Absent(*input, v));
        }
        if runs.len() > 1 {
            let _ = write!(p, r#"<h3><span class="run-tag run-{k}">{tag}</span></h3>"#);
        }
        if by_rule.is_empty() {
            p.push_str(r#"<p class="none">No journey breaks a rule.</p>"#);
            continue;
        }
        let _ = write!(
            p,
            r#"<table class="violations" data-run="{k}"><thead><tr><th>request</th><th>input:line</th><th>event</th><th>what is wrong</th></tr></thead>"#
        );
        for (rule, list) in &by_rule {
            let info = rule.info();
            let _ = write!(
                p,
                r#"<tbody class="rule-group" data-rule="{id}"><tr class="rule-head"><th colspan="4"><b>{id}</b> {name} <span class="count">{n}</span><div class="statement">{st}</div></th></tr>"#,
                id = rule.as_str(),
                name = info.name,
                n = list.len(),
                st = esc(info.statement)
            );
            for finding in list {
                let (r, v) = match finding {
                    Finding::Journey(r, v) => (*r, *v),
                    Finding::Api(input, api, violation) => {
                        let name = run.inputs.get(*input).map_or("", |i| i.name.as_str());
                        let event = match api.event_of(violation) {
                            Some(kind) => format!("#{} api.{kind}", violation.event_index),
                            None => "the API span".to_owned(),
                        };
                        let _ = write!(
                            p,
                            r#"<tr class="violation" data-rule="{}" data-request="{}" data-event-index="{}"><td>{} (API span {})</td><td>{}:{}</td><td>{}</td><td>{}</td></tr>"#,
                            rule.as_str(),
                            esc(api.display_id()),
                            violation.event_index,
                            esc(api.display_id()),
                            esc(&api.span_id),
                            esc(name),
                            api.line,
                            esc(&event),
                            esc(&violation.message())
                        );
                        continue;
                    }
                    Finding::Absent(input, violation) => {
                        let name = run.inputs.get(*input).map_or("", |i| i.name.as_str());
                        let _ = write!(
                            p,
                            r#"<tr class="violation" data-rule="{}" data-request="{}" data-event-index="0"><td>{}</td><td>{}</td><td>no span</td><td>{}</td></tr>"#,
                            rule.as_str(),
                            esc(violation.request_id.as_str()),
                            esc(violation.request_id.as_str()),
                            esc(name),
                            esc(&violation.message())
                        );
                        continue;
                    }
                };
                let row = &run.rows[r];
                let violation = &row.violations[v];
                let input = run.inputs.get(row.input).map_or("", |i| i.name.as_str());
                let i = violation.event_index;
                let event = match violation.event {
                    _ if violation.rule == RuleId::UniqueLiveIds => "the span".to_owned(),
                    _ if !matches!(violation.rule.layer(), crate::model::Layer::Core) => "the span".to_owned(),
                    Some(kind) => format!("#{i} {kind}"),
                    None if i >= row.event_count => "the end of the journey".to_owned(),
                    None => format!("#{i}"),
                };
                let _ = write!(
                    p,
                    r#"<tr class="violation" data-rule="{}" data-request="{}" data-event-index="{}"><td>{}</td><td>{}:{}</td><td>{}</td><td>{}</td></tr>"#,
                    rule.as_str(),
                    esc(row.display_id()),
                    violation.event_index,
                    journey_link(k, r, row),
                    esc(input),
                    row.line,
                    esc(&event),
                    esc(&violation.message)
                );
            }
            p.push_str("</tbody>");
        }
        p.push_str("</table>");
    }
    p.push_str("</section>");
}

fn comparison_section(p: &mut String, c: &Comparison, a: &RunData, b: &RunData) {
    p.push_str(r#"<section id="comparison"><h2>Comparison</h2><p class="hint">Journeys matched by request id; two journeys agree on an event when its label and step agree (timestamps are not compared).</p><div class="cards">"#);
    for (name, n, class) in [
        ("identical", c.identical, "ok"),
        ("differing", c.differences.len(), if c.differences.is_empty() { "" } else { "warn" }),
        ("only_in_a", c.only_in_a.len(), ""),
        ("only_in_b", c.only_in_b.len(), ""),
    ] {
        let _ = write!(p, r#"<div class="card {class}">"#);
        stat(p, 0, &format!("compare.{name}"), &n.to_string(), &n.to_string());
        let _ = write!(
            p,
            r#"<span class="card-label">{}</span></div>"#,
            name.replace('_', " ").replace(" a", " A").replace(" b", " B")
        );
    }
    p.push_str("</div>");
    if !c.differences.is_empty() {
        p.push_str(r#"<table class="differences"><thead><tr><th>request</th><th>first differing event</th><th>A</th><th>B</th></tr></thead><tbody>"#);
        for d in c.differences.iter().take(DIFFERENCES_AT_MOST) {
            let (Some(ra), Some(rb)) = (a.rows.get(d.a), b.rows.get(d.b)) else { continue };
            let _ = write!(
                p,
                r#"<tr class="difference" data-request="{}"><td>{}</td><td>#{}</td><td>{} <small>{}</small></td><td>{} <small>{}</small></td></tr>"#,
                esc(&d.request_id),
                esc(&d.request_id),
                d.index,
                esc(d.a_event.as_deref().unwrap_or("(journey ended)")),
                journey_link(0, d.a, ra),
                esc(d.b_event.as_deref().unwrap_or("(journey ended)")),
                journey_link(1, d.b, rb),
            );
        }
        p.push_str("</tbody></table>");
        if c.differences.len() > DIFFERENCES_AT_MOST {
            let _ = write!(p, "<p>… and {} more.</p>", c.differences.len() - DIFFERENCES_AT_MOST);
        }
    }
    for (name, ids) in [("only in A", &c.only_in_a), ("only in B", &c.only_in_b)] {
        if !ids.is_empty() {
            let shown: Vec<String> = ids.iter().take(50).map(|s| esc(s)).collect();
            let _ = write!(p, "<p><b>{name}</b>: {}{}</p>", shown.join(", "), if ids.len() > 50 { ", …" } else { "" });
        }
    }
    p.push_str("</section>");
}

fn timelines(p: &mut String, runs: &[(&str, &RunData)]) {
    p.push_str(r#"<section id="timelines"><h2>Timelines of violating journeys</h2><p class="hint">As <code>journey timeline</code> prints them.</p>"#);
    let mut any = false;
    for (k, (tag, run)) in runs.iter().enumerate() {
        for (r, row) in run.rows.iter().enumerate() {
            let Some(t) = &row.timeline else { continue };
            any = true;
            let rules: Vec<&str> = row.violations.iter().map(|v| v.rule.as_str()).collect();
            let _ = write!(
                p,
                r#"<article class="timeline" id="{}"><h3><span class="run-tag run-{k}">{tag}</span> request {} <small>{}</small></h3><pre>{}</pre></article>"#,
                anchor(k, r),
                esc(row.display_id()),
                esc(&rules.join(", ")),
                esc(t)
            );
        }
    }
    if !any {
        p.push_str(r#"<p class="none">No journey breaks a rule.</p>"#);
    }
    p.push_str("</section>");
}

// ---- the journeys' data for the script ----

#[derive(Serialize)]
struct Data<'a> {
    /// Event labels; events refer to them by index.
    labels: Vec<Label>,
    /// State names with their segment; events refer to them by index.
    states: Vec<StateOut>,
    runs: Vec<RunOut<'a>>,
}

#[derive(Serialize)]
struct Label {
    name: String,
    mark: Option<&'static str>,
}

#[derive(Serialize)]
struct StateOut {
    name: String,
    seg: &'static str,
}

#[derive(Serialize)]
struct RunOut<'a> {
    tag: &'a str,
    inputs: Vec<InputOut<'a>>,
}

#[derive(Serialize)]
struct InputOut<'a> {
    name: &'a str,
    duration: f64,
    rows: Vec<RowOut<'a>>,
}

#[derive(Serialize)]
struct RowOut<'a> {
    /// Index in the run's rows (for links).
    k: usize,
    id: &'a str,
    /// Verdict: c, i or v.
    v: &'static str,
    /// Broken rules.
    r: Vec<&'static str>,
    /// Arrival, queue time, time to first token, end-to-end (seconds), preemptions.
    a: Option<f64>,
    q: Option<f64>,
    f: Option<f64>,
    e: Option<f64>,
    p: u64,
    /// Whether the page holds its text timeline.
    tl: bool,
    lanes: Vec<LaneOut>,
}

#[derive(Serialize)]
struct LaneOut {
    layer: &'static str,
    /// Events: [t, label index, state index, step].
    ev: Vec<(f64, usize, usize, u64)>,
}

/// Seconds rounded to nanoseconds, to keep the data short.
fn round(t: f64) -> f64 {
    (t * 1e9).round() / 1e9
}

fn page_data(runs: &[(&str, &RunData)]) -> String {
    let mut labels: Vec<Label> = Vec::new();
    let mut label_index: HashMap<String, usize> = HashMap::new();
    let mut states: Vec<StateOut> = Vec::new();
    let mut state_index: HashMap<String, usize> = HashMap::new();
    let mut out = Data { labels: Vec::new(), states: Vec::new(), runs: Vec::new() };
    for (tag, run) in runs {
        let mut inputs = Vec::new();
        for input in &run.inputs {
            let mut rows = Vec::with_capacity(input.rows.len());
            for &k in &input.rows {
                let Some(r) = run.rows.get(k) else { continue };
                let lanes = r
                    .lanes
                    .iter()
                    .map(|lane| LaneOut {
                        layer: lane.layer.as_str(),
                        ev: lane
                            .events
                            .iter()
                            .map(|e| {
                                let l = *label_index.entry(e.label.clone()).or_insert_with(|| {
                                    labels.push(Label { name: e.label.clone(), mark: e.mark.map(Mark::as_str) });
                                    labels.len() - 1
                                });
                                let s = *state_index.entry(e.state.clone()).or_insert_with(|| {
                                    states.push(StateOut { name: e.state.clone(), seg: e.segment.as_str() });
                                    states.len() - 1
                                });
                                (round(e.t), l, s, e.step)
                            })
                            .collect(),
                    })
                    .collect();
                let m = &r.metrics;
                rows.push(RowOut {
                    k,
                    id: r.display_id(),
                    v: match r.verdict {
                        VerdictClass::Conforming => "c",
                        VerdictClass::Incomplete => "i",
                        VerdictClass::Violating => "v",
                    },
                    r: r.violations.iter().map(|v| v.rule.as_str()).collect(),
                    a: r.arrival.map(round),
                    q: m.queue_time.map(round),
                    f: m.time_to_first_token.map(round),
                    e: m.end_to_end.map(round),
                    p: m.preemptions,
                    tl: r.timeline.is_some(),
                    lanes,
                });
            }
            inputs.push(InputOut { name: &input.name, duration: input.duration, rows });
        }
        out.runs.push(RunOut { tag, inputs });
    }
    out.labels = labels;
    out.states = states;
    // `<` never appears outside strings in JSON; escaped, no string can end the script element.
    serde_json::to_string(&out).unwrap_or_else(|_| "{}".to_owned()).replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preemption_bins_run_to_the_largest_count() {
        let mut h = BTreeMap::new();
        h.insert(0, 5);
        h.insert(34, 1);
        let bins = preemption_bins(&[&h]);
        let names: Vec<&str> = bins.iter().map(|b| b.0.as_str()).collect();
        assert_eq!(names, ["0", "1", "2", "3", "4", "5–8", "9–16", "17–32", "33–64"]);
        h.remove(&34);
        h.insert(3, 1);
        assert_eq!(preemption_bins(&[&h]).len(), 4);
    }
}
