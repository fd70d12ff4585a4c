//! The JSON report of `journey check --format json`: the wire format scripts depend on.
//!
//! The report is **one JSON object** (followed by a newline). Fields are never renamed or
//! removed within a `version`; **new fields may appear** at any level, so readers must ignore
//! fields they do not know. Counts are integers, durations are seconds (floating point),
//! ids are lowercase hex strings.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `version` | int | the format version, `1` |
//! | `profile` | string | the scheduling profile the journeys were checked under: `sync` or `async` (`SPEC.md` §10–§11) |
//! | `inputs` | array | per input: `path`, `lines`, `spans`, `journeys`, `errors` (problems reported on stderr) |
//! | `spans` | int | distinct spans (trace id, span id) over all inputs |
//! | `journeys` | int | spans with at least one `journey.*` event |
//! | `events` | int | journey events checked |
//! | `conforming` | int | journeys that break no rule and are complete |
//! | `incomplete` | int | journeys that break no rule but whose span dropped events |
//! | `violating` | int | journeys that break at least one rule not `--allow`ed |
//! | `input_errors` | int | problems reported while reading (malformed lines, ...) |
//! | `allowed` | array of string | the rule ids given with `--allow` |
//! | `violations` | array | every violation, by input, then journey, then rule order of the checker (below) |
//! | `incomplete_journeys` | array | `path`, `request_id`, `trace_id`, `span_id`, `dropped_events`, `events` (kept) |
//! | `stats` | object | statistics over the non-violating journeys (below) |
//! | `violations_by_rule` | object | rule id → number of violations, for the rules that have any |
//! | `behind_horizon` | int | present when not 0: spans and step windows that arrived behind the horizon (`--horizon`), after the spans they could relate to were decided; their relations were not checked, and the exit status is 2 |
//! | `problems` | array | the input errors themselves (at most 1000 per input): `input` (the input as given), `path` (the file), `line` or `record` (`null` when none applies), `message` |
//!
//! Two-layer fields (`SPEC.md` §9–§10): `complete` (bool, `--complete` given), `api_spans`
//! (`llm_request` spans), `api_violating` (API spans that break a rule), `pairs` (API spans with
//! a core child in the input), `unpaired_api` (API spans whose expected core child is absent),
//! `unpaired_core` (core spans whose API parent is absent, in an input with an API layer; both
//! unpaired counts are violations of X5 instead under `--complete`), `absent_requests`
//! (workload requests without the span they should have, `--workload`).
//!
//! Each input also has `format` (`"json"`, `"framed"`, or `null` when nothing was read) and
//! `compression` (`"zstd"`, `"gzip"` or `null`).
//!
//! A violation: `path` (its input), `line` (of the span's first record), `request_id` (string, or
//! `null` when the span has no `gen_ai.request.id`), `trace_id`, `span_id` (the span the violation is about: the `llm_core` span for the core
//! rules and for X1–X4 and W1, the `llm_request` span for A1–A4 and X5/X6 about it; `""` for a
//! workload request that has no span), `rule` (`"R1"` … `"R14"`, `"C2"`, `"A1"`, `"X5"`, ...),
//! `rule_name` (`"queued-first"`, ...), `layer` (`"core"`, `"api"` or `"cross"`), `event_index` (0-based index of the event in the
//! journey in timestamp order; the number of events for a missing FINISHED), `event` (that
//! event's kind such as `"PREEMPTED"`, or `null` when the violation concerns the whole journey:
//! R3 at the end, R14), `message`, and `detail`: the same finding as structured data, an object
//! whose `kind` names its shape (`illegal_transition` with `from`, `got`, `allowed`; `counter`
//! with `field`, `expected`, `found`; `went_back` and `changed` with `field`, `from`, `to`;
//! `exceeds`; `outside_span`; `repeated`; `bad_start`; `unfinished`; `missing_attribute`;
//! `wrong_type`; `other` with `message`). New kinds and fields may appear.
//!
//! `stats`: `queue_time_s` (QUEUED → first SCHEDULED), `time_to_first_token_s` (QUEUED →
//! FIRST_TOKEN), `end_to_end_s` (QUEUED → FINISHED), each `null` or an object with `count`,
//! `min`, `p50`, `p90`, `p99`, `max`, `mean` (nearest-rank percentiles of `ts.monotonic`
//! differences; past [`Samples::EXACT_LIMIT`](super::summary::Samples::EXACT_LIMIT) journeys
//! the percentiles and mean come from buckets, within ±0.05%, and the object says
//! `"approximate":true`); `preemptions`, an array of `{"preemptions": n, "journeys": count}` in increasing
//! `n`; `finish_status`, an object with a count for each of `stopped`, `length`, `aborted`,
//! `error`, `ignored`; `unfinished` (journeys without FINISHED); `other_events` (non-journey span
//! events, ignored); `duplicate_events` (merged away); `without_request_id`.
//!
//! ```json
//! {"version":1,"profile":"sync","inputs":[{"path":"run.jsonl","lines":3,"spans":4,"journeys":4,"errors":0}],
//!  "spans":4,"journeys":4,"events":16,"conforming":3,"incomplete":0,"violating":1,
//!  "input_errors":0,"allowed":[],
//!  "violations":[{"path":"run.jsonl","line":2,"request_id":"r7","trace_id":"42d6…","span_id":"a091…",
//!                 "rule":"R9","rule_name":"preemption-count","event_index":3,"event":"PREEMPTED",
//!                 "message":"num_preemptions is 2, but 1 PREEMPTED event(s) happened so far",
//!                 "detail":{"kind":"counter","field":"num_preemptions","expected":1,"found":2,
//!                           "counts":"PREEMPTED event(s)"}}],
//!  "incomplete_journeys":[],
//!  "stats":{"queue_time_s":{"count":3,"min":0.0003,"p50":0.0004,"p90":0.0009,"p99":0.0009,"max":0.0009,"mean":0.0005},
//!           "time_to_first_token_s":null,"end_to_end_s":null,
//!           "preemptions":[{"preemptions":0,"journeys":3}],
//!           "finish_status":{"stopped":2,"length":1,"aborted":0,"error":0,"ignored":0},
//!           "unfinished":0,"other_events":0,"duplicate_events":0,"without_request_id":0}}
//! ```
//!
//! The structs here only serialize; the tests read the output back into their own mirror types,
//! so any change of the format shows up as a failing test.

use std::io;

use serde::Serialize;

use crate::model::{Detail, FinishStatus, Profile, RuleId};

use super::summary::{Distribution, Summary};

/// The report (see the [module documentation](self)).
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    version: u32,
    profile: &'static str,
    inputs: Vec<Input<'a>>,
    spans: u64,
    journeys: u64,
    events: u64,
    conforming: u64,
    incomplete: u64,
    violating: u64,
    input_errors: u64,
    allowed: Vec<&'static str>,
    violations: Vec<ViolationOut<'a>>,
    incomplete_journeys: Vec<Incomplete<'a>>,
    stats: Stats,
    violations_by_rule: std::collections::BTreeMap<&'static str, u64>,
    problems: Vec<ProblemOut<'a>>,
    complete: bool,
    api_spans: u64,
    api_violating: u64,
    pairs: u64,
    unpaired_api: u64,
    unpaired_core: u64,
    absent_requests: u64,
    /// Present when not 0 (see [`Summary::behind_horizon`]).
    #[serde(skip_serializing_if = "is_zero")]
    behind_horizon: u64,
    /// Present when the inputs had step windows (`SPEC.md` §12).
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<StepsOut<'a>>,
}

#[derive(Debug, Serialize)]
struct StepsOut<'a> {
    windows: u64,
    summaries: u64,
    snapshots: u64,
    violations: Vec<StepViolationOut<'a>>,
}

#[derive(Debug, Serialize)]
struct StepViolationOut<'a> {
    path: &'a str,
    window: &'a str,
    rule: RuleId,
    rule_name: &'static str,
    event_index: usize,
    message: String,
}

#[derive(Debug, Serialize)]
struct Input<'a> {
    path: &'a str,
    lines: u64,
    spans: u64,
    journeys: u64,
    errors: u64,
    format: Option<&'static str>,
    compression: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct ProblemOut<'a> {
    input: &'a str,
    path: &'a str,
    line: Option<u64>,
    record: Option<u64>,
    message: &'a str,
}

#[derive(Debug, Serialize)]
struct ViolationOut<'a> {
    path: &'a str,
    line: u64,
    request_id: Option<&'a str>,
    trace_id: &'a str,
    span_id: &'a str,
    rule: RuleId,
    rule_name: &'static str,
    layer: &'static str,
    event_index: usize,
    event: Option<&'static str>,
    message: String,
    detail: &'a Detail,
}

#[derive(Debug, Serialize)]
struct Incomplete<'a> {
    path: &'a str,
    request_id: Option<&'a str>,
    trace_id: &'a str,
    span_id: &'a str,
    dropped_events: u32,
    events: usize,
}

#[derive(Debug, Serialize)]
struct Stats {
    queue_time_s: Option<Distribution>,
    time_to_first_token_s: Option<Distribution>,
    end_to_end_s: Option<Distribution>,
    preemptions: Vec<PreemptionBin>,
    finish_status: FinishStatusCounts,
    unfinished: u64,
    other_events: u64,
    duplicate_events: u64,
    without_request_id: u64,
}

#[derive(Debug, Serialize)]
struct PreemptionBin {
    preemptions: u64,
    journeys: u64,
}

#[derive(Debug, Serialize)]
struct FinishStatusCounts {
    stopped: u64,
    length: u64,
    aborted: u64,
    error: u64,
    ignored: u64,
}

impl<'a> Report<'a> {
    /// Says whether the input was declared complete (`--complete`).
    pub fn with_complete(mut self, complete: bool) -> Report<'a> {
        self.complete = complete;
        self
    }

    /// Names the profile the journeys were checked under (`sync` unless set).
    pub fn with_profile(mut self, profile: Profile) -> Report<'a> {
        self.profile = profile.as_str();
        self
    }

    /// The report of `summary`, for a check that allowed the rules `allowed`.
    pub fn new(summary: &'a Summary, allowed: impl IntoIterator<Item = RuleId>) -> Report<'a> {
        let path = |input: usize| summary.inputs.get(input).map_or("", |i| i.name.as_str());
        let count = |s: FinishStatus| summary.stats.finished(s);
        Report {
            version: 1,
            profile: Profile::Sync.as_str(),
            inputs: summary
                .inputs
                .iter()
                .map(|i| Input {
                    path: &i.name,
                    lines: i.lines,
                    spans: i.spans,
                    journeys: i.journeys,
                    errors: i.errors,
                    format: i.format,
                    compression: i.compression,
                })
                .collect(),
            spans: summary.spans,
            journeys: summary.journeys,
            events: summary.events,
            conforming: summary.conforming,
            incomplete: summary.incomplete,
            violating: summary.violating,
            input_errors: summary.input_errors,
            allowed: allowed.into_iter().map(RuleId::as_str).collect(),
            violations: summary
                .violations()
                .map(|(input, j, v)| ViolationOut {
                    path: path(input),
                    line: j.line,
                    request_id: j.request_id.as_deref(),
                    trace_id: &j.trace_id,
                    span_id: &j.span_id,
                    rule: v.rule,
                    rule_name: v.rule.info().name,
                    layer: v.rule.layer().as_str(),
                    event_index: v.event_index,
                    event: j.event_of(v),
                    message: v.message(),
                    detail: &v.detail,
                })
                .chain(summary.api_violations().map(|(input, a, v)| ViolationOut {
                    path: path(input),
                    line: a.line,
                    request_id: a.request_id.as_deref(),
                    trace_id: &a.trace_id,
                    span_id: &a.span_id,
                    rule: v.rule,
                    rule_name: v.rule.info().name,
                    layer: v.rule.layer().as_str(),
                    event_index: v.event_index,
                    event: a.event_of(v),
                    message: v.message(),
                    detail: &v.detail,
                }))
                .chain(summary.absent.iter().map(|(input, v)| ViolationOut {
                    path: path(*input),
                    line: 0,
                    request_id: Some(v.request_id.as_str()),
                    trace_id: "",
                    span_id: "",
                    rule: v.rule,
                    rule_name: v.rule.info().name,
                    layer: v.rule.layer().as_str(),
                    event_index: 0,
                    event: None,
                    message: v.message(),
                    detail: &v.detail,
                }))
                .collect(),
            incomplete_journeys: summary
                .incomplete_journeys
                .iter()
                .map(|i| Incomplete {
                    path: path(i.input),
                    request_id: i.request_id.as_deref(),
                    trace_id: &i.trace_id,
                    span_id: &i.span_id,
                    dropped_events: i.dropped_events,
                    events: i.events,
                })
                .collect(),
            stats: Stats {
                queue_time_s: Distribution::of_samples(&summary.stats.queue_time),
                time_to_first_token_s: Distribution::of_samples(&summary.stats.time_to_first_token),
                end_to_end_s: Distribution::of_samples(&summary.stats.end_to_end),
                preemptions: summary
                    .stats
                    .preemptions
                    .iter()
                    .map(|(&preemptions, &journeys)| PreemptionBin { preemptions, journeys })
                    .collect(),
                finish_status: FinishStatusCounts {
                    stopped: count(FinishStatus::Stopped),
                    length: count(FinishStatus::Length),
                    aborted: count(FinishStatus::Aborted),
                    error: count(FinishStatus::Error),
                    ignored: count(FinishStatus::Ignored),
                },
                unfinished: summary.stats.unfinished,
                other_events: summary.other_events,
                duplicate_events: summary.duplicate_events,
                without_request_id: summary.without_request_id,
            },
            violations_by_rule: summary.violations_by_rule().into_iter().map(|(r, n)| (r.as_str(), n)).collect(),
            problems: summary
                .problems
                .iter()
                .map(|p| ProblemOut {
                    input: path(p.input),
                    path: &p.path,
                    line: p.line,
                    record: p.record,
                    message: &p.message,
                })
                .collect(),
            complete: false,
            api_spans: summary.api_spans,
            api_violating: summary.api_violating,
            pairs: summary.pairs,
            unpaired_api: summary.unpaired_api,
            unpaired_core: summary.unpaired_core,
            absent_requests: summary.absent.len() as u64,
            behind_horizon: summary.behind_horizon,
            steps: (summary.step_windows > 0).then(|| StepsOut {
                windows: summary.step_windows,
                summaries: summary.step_summaries,
                snapshots: summary.step_snapshots,
                violations: summary
                    .step_violations
                    .iter()
                    .map(|(input, v)| StepViolationOut {
                        path: path(*input),
                        window: v.request_id.as_str(),
                        rule: v.rule,
                        rule_name: v.rule.info().name,
                        event_index: v.event_index,
                        message: v.message(),
                    })
                    .collect(),
            }),
        }
    }

    /// Writes the report as one line of JSON.
    pub fn write(&self, mut out: impl io::Write) -> io::Result<()> {
        serde_json::to_writer(&mut out, self).map_err(io::Error::from)?;
        out.write_all(b"\n")
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
