//! Rules across the layers (`SPEC.md` §9.3, X1–X6) and against the workload (§10: C3, W1, X5,
//! X6), over compact summaries of the spans of one input: [`ApiSide`] for each `llm_request`,
//! [`CoreSide`] for each `llm_core`.
//!
//! Pairs are joined by trace id and parent span id — a core span's parent is its API span —
//! never by request id (the ids differ: `chatcmpl-<id>` above, `chatcmpl-<id>-<8 hex>` below).
//! A rule about a partner that is not in the input applies only when the input is declared
//! complete ([`CrossOptions::complete`]); otherwise the span is counted as unpaired.
//!
//! # What the code decides where `SPEC.md` is silent
//!
//! - Which span a finding is about: X1–X4 and W1 the core span (the child), X5 about the number
//!   of children or a missing child the API span, X5 about a missing parent the core span, X6
//!   each span itself; a workload request without any span is reported by its workload id.
//! - An API span *expects* a core child when it is chat and emitted HANDOFF_TO_CORE, or
//!   completions (and every non-chat route) not ABORTED with reason `validation_error`; only
//!   then is its missing child unpaired (or X5 under `--complete`). A chat span with a child
//!   but no HANDOFF_TO_CORE breaks X3.
//! - X3's last inequality (core span start ≤ QUEUED) is the core journey's own R7 and is
//!   reported there, not twice.
//! - X4's non-streaming condition (FIRST_RESPONSE after the core FINISHED) needs the client's
//!   `stream` flag, which only a workload records; with several children the earliest FINISHED
//!   counts, as the earliest FIRST_TOKEN does.
//! - X2: a `<j>_` prefix is required when `gen_ai.request.n > 1`, refused when it is 1, and
//!   allowed either way when the span has no `n`; the children of one prompt share a suffix only
//!   when `n > 1` (more children than `n` allows is X5's).
//! - X6's flag part applies only when the span's flags carry the has-is-remote bit (0x100): then
//!   the is-remote bit (0x200) must equal having a parent, since both layers' parents come from
//!   headers.
//! - With a workload: a two-layer run is one whose `add`s carry `stream`, `endpoint`, `n` or
//!   `prompts`, or whose input has API spans; its requests are matched to API spans by
//!   `chatcmpl-<id>` / `cmpl-<id>`, a one-layer run's to core spans by the id itself. A request
//!   refused before any span (two layers: `prompt_len + max_tokens > max_model_len`; one layer:
//!   `prompt_len ≥ max_model_len`) is not expected. Presence against `sampled` is X5 in a
//!   two-layer run and C3 in a one-layer run; W1 (the journey totals) is a rule id the spec does
//!   not name.
//!
//! ```
//! use journey_spec::model::cross::{ApiSide, CoreSide, CrossOptions, check_layers};
//! use journey_spec::model::api::Endpoint;
//!
//! let api = ApiSide { trace_id: "t".into(), span_id: "a".into(), request_id: Some("chatcmpl-1".into()),
//!                     arrived: Some(10), handoff: Some(11), start: Some(9), end: Some(40), departed: Some(39),
//!                     ..ApiSide::default() };
//! let core = CoreSide { trace_id: "t".into(), span_id: "c".into(), parent_span_id: Some("a".into()),
//!                       request_id: Some("chatcmpl-1-0123abcd".into()), start: Some(12), end: Some(30),
//!                       queued: Some(13), finished: Some((29, None)), ..CoreSide::default() };
//! let checked = check_layers(&[api], &[core], &CrossOptions::default());
//! assert!(checked.findings.is_empty(), "{:?}", checked.findings);
//! assert_eq!(checked.pairs, 1);
//! ```

use std::collections::{HashMap, HashSet};

use super::api::Endpoint;
use super::event::{FinishStatus, RequestId};
use super::finding::{Detail, Violation};
use super::rules::RuleId;

/// The span flag bit that says whether the parent's remoteness is known (OTLP `SpanFlags`).
pub const FLAG_HAS_IS_REMOTE: u32 = 0x100;
/// The span flag bit that says the parent is remote.
pub const FLAG_IS_REMOTE: u32 = 0x200;
/// The scope of the core spans.
pub const CORE_SCOPE: &str = "vllm.scheduler";
/// OTLP's `SPAN_KIND_INTERNAL`.
pub const KIND_INTERNAL: i32 = 1;

/// What the cross-layer rules need of one `llm_request` span.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiSide {
    /// Trace id, lowercase hex.
    pub trace_id: String,
    /// Span id, lowercase hex.
    pub span_id: String,
    /// Parent span id, lowercase hex, when the span has a parent.
    pub parent_span_id: Option<String>,
    /// The API request id.
    pub request_id: Option<String>,
    /// The endpoint.
    pub endpoint: Option<Endpoint>,
    /// `gen_ai.request.n`.
    pub n: Option<i64>,
    /// Span start, ns since the epoch.
    pub start: Option<u64>,
    /// Span end.
    pub end: Option<u64>,
    /// OTLP span flags.
    pub flags: u32,
    /// ARRIVED's timestamp.
    pub arrived: Option<u64>,
    /// HANDOFF_TO_CORE's timestamp.
    pub handoff: Option<u64>,
    /// FIRST_RESPONSE_FROM_CORE's timestamp.
    pub first_response: Option<u64>,
    /// DEPARTED's timestamp.
    pub departed: Option<u64>,
    /// ABORTED's timestamp and `reason`.
    pub aborted: Option<(u64, Option<String>)>,
}

/// What the cross-layer rules need of one `llm_core` span.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoreSide {
    /// Trace id, lowercase hex.
    pub trace_id: String,
    /// Span id, lowercase hex.
    pub span_id: String,
    /// Parent span id, lowercase hex, when the span has a parent.
    pub parent_span_id: Option<String>,
    /// The core request id.
    pub request_id: Option<String>,
    /// OTLP span kind (1 = INTERNAL).
    pub kind: i32,
    /// The instrumentation scope's name.
    pub scope: String,
    /// Span start, ns since the epoch.
    pub start: Option<u64>,
    /// Span end.
    pub end: Option<u64>,
    /// OTLP span flags.
    pub flags: u32,
    /// QUEUED's timestamp.
    pub queued: Option<u64>,
    /// FIRST_TOKEN's timestamp.
    pub first_token: Option<u64>,
    /// FINISHED's timestamp and status.
    pub finished: Option<(u64, Option<FinishStatus>)>,
    /// `prefill.total_tokens` and `decode.max_tokens` of the first decoded event.
    pub totals: Option<(u64, u64)>,
}

/// One request of the workload that produced the trace, as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExpectedRequest {
    /// The workload id.
    pub id: String,
    /// Whether the API layer sampled it (`sampled`, default true).
    pub sampled: bool,
    /// Whether the client streamed, when recorded.
    pub stream: Option<bool>,
    /// Chat or completions.
    pub endpoint: Endpoint,
    /// Parallel samples.
    pub n: u64,
    /// The prompt lengths (one for a single prompt).
    pub prompts: Vec<u64>,
    /// The generation cap.
    pub max_tokens: u64,
    /// The client's trace id and parent span id, lowercase hex, from its `traceparent`.
    pub traceparent: Option<(String, String)>,
    /// Refused before any span exists (too long for the model).
    pub rejected: bool,
}

/// The workload's requests, and whether the run had an API layer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expected {
    /// Every request added.
    pub requests: Vec<ExpectedRequest>,
    /// Whether the run had the API layer above the engine (a two-layer workload).
    pub two_layers: bool,
}

/// What to assume.
#[derive(Debug, Clone, Default)]
pub struct CrossOptions {
    /// The input holds every span of every request (`--complete`).
    pub complete: bool,
    /// The workload that produced the input (`--workload`).
    pub workload: Option<Expected>,
    /// Span ids (trace hex, span hex) of the input's other spans (neither API nor core), so
    /// that a core span whose parent is one of them is told from one whose parent is absent.
    pub other_spans: HashSet<(String, String)>,
    /// The input has an API layer even when `apis` holds none of its API spans (a streaming
    /// check decides a part of the input at a time).
    pub api_layer: bool,
}

/// Which span (or request) a finding is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    /// The API span at this index.
    Api(usize),
    /// The core span at this index.
    Core(usize),
    /// A workload request with no span at all.
    Request(String),
}

/// One finding of the cross-layer or workload rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossFinding {
    /// The span it is about.
    pub about: About,
    /// The violation (its `event_index` is the span's event count: it concerns the span).
    pub violation: Violation,
}

/// What [`check_layers`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrossChecked {
    /// The findings, API spans first, then core spans, then absent requests.
    pub findings: Vec<CrossFinding>,
    /// API spans with at least one core child.
    pub pairs: u64,
    /// API spans whose core child is expected but not in the input (not a violation without
    /// `--complete`).
    pub unpaired_api: u64,
    /// Core spans whose API parent is not in the input, in an input with an API layer.
    pub unpaired_core: u64,
    /// For each core span, the index of its API parent.
    pub parent_of: Vec<Option<usize>>,
}

/// The parts of a core id: `[<j>_]<api id>[-<prompt>]-<8 hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreIdParts<'a> {
    /// The `n > 1` child index.
    pub child: Option<u64>,
    /// The prompt index (completions).
    pub prompt: Option<u64>,
    /// The 8-hex suffix.
    pub suffix: &'a str,
}

/// Splits a core id against its API id, or says why it does not relate (X2).
///
/// ```
/// use journey_spec::model::cross::core_id_parts;
/// use journey_spec::model::api::Endpoint;
/// let p = core_id_parts("1_cmpl-b-0-98dd9de3", "cmpl-b", Endpoint::Completions).unwrap();
/// assert_eq!((p.child, p.prompt, p.suffix), (Some(1), Some(0), "98dd9de3"));
/// assert!(core_id_parts("chatcmpl-b-98DD9DE3", "chatcmpl-b", Endpoint::Chat).is_err());
/// ```
pub fn core_id_parts<'a>(core: &'a str, api: &str, endpoint: Endpoint) -> Result<CoreIdParts<'a>, String> {
    let (child, rest) = match core.split_once('_') {
        Some((j, rest)) if !j.is_empty() && j.bytes().all(|b| b.is_ascii_digit()) && rest.starts_with(api) => {
            (j.parse::<u64>().ok(), rest)
        }
        Some(_) | None => (None, core),
    };
    let Some(tail) = rest.strip_prefix(api) else {
        return Err(format!("core id {core:?} does not start with the API id {api:?}"));
    };
    let Some(tail) = tail.strip_prefix('-') else {
        return Err(format!("core id {core:?} has no `-` after the API id {api:?}"));
    };
    let (prompt, suffix) = match endpoint {
        Endpoint::Completions => match tail.split_once('-') {
            Some((i, s)) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => (i.parse::<u64>().ok(), s),
            Some(_) | None => {
                return Err(format!("completions core id {core:?} has no `-<prompt index>` after {api:?}"));
            }
        },
        Endpoint::Chat => (None, tail),
    };
    if suffix.len() != 8 || !suffix.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("core id {core:?} does not end in `-` and 8 lowercase hex digits (got {suffix:?})"));
    }
    Ok(CoreIdParts { child, prompt, suffix })
}

/// The API id of a workload id: `chatcmpl-<id>` or `cmpl-<id>`.
pub fn api_id(endpoint: Endpoint, id: &str) -> String {
    format!("{}{id}", endpoint.id_prefix())
}

/// Checks X1–X6 (and, with a workload, C3, W1 and the workload parts of X5 and X6) over the
/// API and core spans of one input.
pub fn check_layers(apis: &[ApiSide], cores: &[CoreSide], options: &CrossOptions) -> CrossChecked {
    let mut out = Findings::default();
    let by_ids: HashMap<(&str, &str), usize> =
        apis.iter().enumerate().map(|(i, a)| ((a.trace_id.as_str(), a.span_id.as_str()), i)).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); apis.len()];
    let mut parent_of = vec![None; cores.len()];
    let mut unpaired_core = 0;
    let has_api_layer =
        options.api_layer || !apis.is_empty() || options.workload.as_ref().is_some_and(|w| w.two_layers);
    for (c, core) in cores.iter().enumerate() {
        let parent = core.parent_span_id.as_deref().and_then(|p| by_ids.get(&(core.trace_id.as_str(), p)).copied());
        match parent {
            Some(a) => {
                children[a].push(c);
                parent_of[c] = Some(a);
                // An input that lost the scope (an empty name) or the kind (0, unspecified) says
                // nothing about it.
                let kind_wrong = core.kind != 0 && core.kind != KIND_INTERNAL;
                if kind_wrong || (!core.scope.is_empty() && core.scope != CORE_SCOPE) {
                    out.core(
                        c,
                        RuleId::ParentIsApiSpan,
                        format!(
                            "the core span of an llm_request has kind {} in scope {:?}: expected INTERNAL (1) in {CORE_SCOPE:?}",
                            core.kind, core.scope
                        ),
                    );
                }
            }
            None if !has_api_layer => {}
            None => {
                let in_input = core
                    .parent_span_id
                    .as_ref()
                    .is_some_and(|p| options.other_spans.contains(&(core.trace_id.clone(), p.clone())));
                if in_input {
                    out.core(
                        c,
                        RuleId::ParentIsApiSpan,
                        format!(
                            "the core span's parent {}/{} is in the input but is not an llm_request",
                            core.trace_id,
                            core.parent_span_id.as_deref().unwrap_or_default()
                        ),
                    );
                } else if options.complete {
                    out.core(
                        c,
                        RuleId::SamplingAtomicity,
                        match &core.parent_span_id {
                            Some(p) => format!("the core span's API parent {}/{p} is not in the complete input", core.trace_id),
                            None => "the core span is a root in a run with an API layer: its llm_request is missing from the complete input".to_owned(),
                        },
                    );
                } else {
                    unpaired_core += 1;
                }
            }
        }
    }
    let mut pairs = 0;
    let mut unpaired_api = 0;
    for (a, api) in apis.iter().enumerate() {
        let kids = &children[a];
        if kids.is_empty() {
            if expects_core(api) {
                if options.complete {
                    out.api(
                        a,
                        RuleId::SamplingAtomicity,
                        "the sampled API span has no core child in the complete input".to_owned(),
                    );
                } else {
                    unpaired_api += 1;
                }
            }
            continue;
        }
        pairs += 1;
        pair_rules(&mut out, a, api, kids, cores, stream_of(options, api));
    }
    for (i, a) in apis.iter().enumerate() {
        flags_rule(&mut out, About::Api(i), (a.flags, &a.parent_span_id));
    }
    for (i, c) in cores.iter().enumerate() {
        flags_rule(&mut out, About::Core(i), (c.flags, &c.parent_span_id));
    }
    if let Some(w) = &options.workload {
        workload_rules(&mut out, apis, cores, &parent_of, w);
    }
    let mut findings = out.0;
    findings.sort_by_key(|f| match &f.about {
        About::Api(i) => (0, *i),
        About::Core(i) => (1, *i),
        About::Request(_) => (2, 0),
    });
    CrossChecked { findings, pairs, unpaired_api, unpaired_core, parent_of }
}

/// Whether an API span should have a core child: chat after HANDOFF_TO_CORE, completions
/// unless refused by validation before the engine call.
fn expects_core(api: &ApiSide) -> bool {
    match api.endpoint.unwrap_or_default() {
        Endpoint::Chat => api.handoff.is_some(),
        Endpoint::Completions => {
            api.arrived.is_some() && api.aborted.as_ref().is_none_or(|(_, r)| r.as_deref() != Some("validation_error"))
        }
    }
}

fn stream_of(options: &CrossOptions, api: &ApiSide) -> Option<bool> {
    let w = options.workload.as_ref()?;
    let id = api.request_id.as_deref()?;
    w.requests.iter().find(|r| api_id(r.endpoint, &r.id) == id).and_then(|r| r.stream)
}

#[derive(Default)]
struct Findings(Vec<CrossFinding>);

impl Findings {
    fn push(&mut self, about: About, rule: RuleId, message: String) {
        self.0.push(CrossFinding {
            about,
            violation: Violation {
                rule,
                request_id: RequestId::from(""),
                event_index: 0,
                detail: Detail::other(message),
            },
        });
    }
    fn api(&mut self, a: usize, rule: RuleId, message: String) {
        self.push(About::Api(a), rule, message);
    }
    fn core(&mut self, c: usize, rule: RuleId, message: String) {
        self.push(About::Core(c), rule, message);
    }
}

/// X2–X5 for one API span and its core children.
fn pair_rules(out: &mut Findings, a: usize, api: &ApiSide, kids: &[usize], cores: &[CoreSide], stream: Option<bool>) {
    let endpoint = api.endpoint.unwrap_or_default();
    let n = api.n.unwrap_or(1);
    // X5: how many children.
    if n <= 1 && kids.len() > 1 {
        out.api(
            a,
            RuleId::SamplingAtomicity,
            format!("{} core children for a request with n = {n}: a single prompt has at most one", kids.len()),
        );
    } else if n > 1 && kids.len() as i64 > n {
        out.api(a, RuleId::SamplingAtomicity, format!("{} core children for a request with n = {n}", kids.len()));
    }
    // X2: the ids, and the children of one prompt share a suffix.
    let mut suffixes: HashMap<Option<u64>, (String, usize)> = HashMap::new();
    let mut child_indices: HashSet<(Option<u64>, u64)> = HashSet::new();
    if let Some(api_id) = api.request_id.as_deref() {
        for &c in kids {
            let Some(core_id) = cores[c].request_id.as_deref() else {
                out.core(c, RuleId::IdRelation, "the core span has no request id".to_owned());
                continue;
            };
            match core_id_parts(core_id, api_id, endpoint) {
                Err(message) => out.core(c, RuleId::IdRelation, message),
                Ok(p) => {
                    let problem = match (p.child, n) {
                        (Some(j), n) if n > 1 && (j as i64) >= n => {
                            Some(format!("child index {j} of {core_id:?} is not below n = {n}"))
                        }
                        (Some(j), n) if n <= 1 && api.n.is_some() => {
                            Some(format!("child prefix {j}_ on {core_id:?} for a request with n = {n}"))
                        }
                        (None, n) if n > 1 => {
                            Some(format!("core id {core_id:?} lacks the `<j>_` prefix of a request with n = {n}"))
                        }
                        (Some(j), _) if !child_indices.insert((p.prompt, j)) => {
                            Some(format!("a second child {j} of prompt {:?}", p.prompt))
                        }
                        (Some(_) | None, _) => None,
                    };
                    let shared = suffixes.entry(p.prompt).or_insert_with(|| (p.suffix.to_owned(), c));
                    let problem = problem.or_else(|| {
                        // Siblings exist only with n > 1; more children than that is X5's.
                        (n > 1 && shared.0 != p.suffix).then(|| {
                            format!("core id {core_id:?} has suffix {}, its sibling's is {}: the children of one prompt share it", p.suffix, shared.0)
                        })
                    });
                    if let Some(message) = problem {
                        out.core(c, RuleId::IdRelation, message);
                    }
                }
            }
        }
    }
    // X3: ARRIVED ≤ HANDOFF ≤ core start (core start ≤ QUEUED is R7's within-span check too).
    // A chat request reaches the engine only through the call HANDOFF_TO_CORE follows.
    if endpoint == Endpoint::Chat
        && api.handoff.is_none()
        && let Some(&c) = kids.first()
    {
        out.core(c, RuleId::HandoffBeforeCore, "the chat API span has a core child but no HANDOFF_TO_CORE".to_owned());
    }
    for &c in kids {
        let core = &cores[c];
        let chain = [
            ("ARRIVED", api.arrived),
            ("HANDOFF_TO_CORE", api.handoff),
            ("the core span's start", core.start),
            ("QUEUED", core.queued),
        ];
        let known: Vec<(&str, u64)> = chain.iter().filter_map(|(n, t)| t.map(|t| (*n, t))).collect();
        if let Some(w) = known.windows(2).find(|w| w[1].1 < w[0].1) {
            out.core(
                c,
                RuleId::HandoffBeforeCore,
                format!("{} at {} ns is before {} at {} ns", w[1].0, w[1].1, w[0].0, w[0].1),
            );
        }
    }
    // X4.
    let disconnect = api.aborted.as_ref().filter(|(_, r)| r.as_deref() == Some("client_disconnect")).map(|(t, _)| *t);
    for &c in kids {
        let core = &cores[c];
        let finished = core.finished.map(|(t, _)| t);
        if let Some(d) = api.departed {
            if let Some(f) = finished.filter(|&f| d < f) {
                out.core(
                    c,
                    RuleId::ResponseAfterCore,
                    format!("DEPARTED at {d} ns is before the core FINISHED at {f} ns"),
                );
                continue;
            }
            if let Some(e) = core.end.filter(|&e| d < e) {
                out.core(
                    c,
                    RuleId::ResponseAfterCore,
                    format!("DEPARTED at {d} ns is before the core span's end at {e} ns"),
                );
                continue;
            }
        }
        if let (Some(t), Some((f, Some(FinishStatus::Aborted)))) = (disconnect, core.finished) {
            if t > f {
                out.core(c, RuleId::ResponseAfterCore, format!("ABORTED(client_disconnect) at {t} ns is after the core FINISHED(aborted) at {f} ns: the API span ends first"));
                continue;
            }
            if let Some(e) = api.end.filter(|&e| e > f) {
                out.core(c, RuleId::ResponseAfterCore, format!("the API span ends at {e} ns, after the core FINISHED(aborted) at {f} ns, on a client disconnect"));
                continue;
            }
        }
    }
    if let Some(r) = api.first_response {
        let first_token = kids.iter().filter_map(|&c| cores[c].first_token).min();
        let first_finish = kids.iter().filter_map(|&c| cores[c].finished.map(|(t, _)| t)).min();
        let earliest =
            kids.iter().copied().min_by_key(|&c| cores[c].first_token.unwrap_or(u64::MAX)).unwrap_or(kids[0]);
        match first_token {
            None => out.core(
                earliest,
                RuleId::ResponseAfterCore,
                "FIRST_RESPONSE_FROM_CORE without any core FIRST_TOKEN".to_owned(),
            ),
            Some(t) if r < t => out.core(
                earliest,
                RuleId::ResponseAfterCore,
                format!("FIRST_RESPONSE_FROM_CORE at {r} ns is before the first core FIRST_TOKEN at {t} ns"),
            ),
            Some(_) => {
                if let (Some(false), Some(f)) = (stream, first_finish)
                    && r < f
                {
                    out.core(earliest, RuleId::ResponseAfterCore, format!("FIRST_RESPONSE_FROM_CORE at {r} ns of a non-streaming request is before the core FINISHED at {f} ns"));
                }
            }
        }
    }
}

/// X6's flag part for one span.
fn flags_rule(out: &mut Findings, about: About, (flags, parent): (u32, &Option<String>)) {
    if flags & FLAG_HAS_IS_REMOTE == 0 {
        return;
    }
    let remote = flags & FLAG_IS_REMOTE != 0;
    if remote != parent.is_some() {
        let message = if remote {
            format!("flags {flags:#x} say the parent is remote, but the span is a root")
        } else {
            format!(
                "flags {flags:#x} say the parent is not remote, but the span's parent comes from a traceparent header"
            )
        };
        out.push(about, RuleId::ClientParent, message);
    }
}

/// C3, W1, and the workload parts of X5 and X6.
fn workload_rules(out: &mut Findings, apis: &[ApiSide], cores: &[CoreSide], parent_of: &[Option<usize>], w: &Expected) {
    let two = w.two_layers || !apis.is_empty();
    let api_by_id: HashMap<&str, usize> =
        apis.iter().enumerate().filter_map(|(i, a)| Some((a.request_id.as_deref()?, i))).collect();
    let core_by_id: HashMap<&str, usize> =
        cores.iter().enumerate().filter_map(|(i, c)| Some((c.request_id.as_deref()?, i))).collect();
    for r in w.requests.iter().filter(|r| !r.rejected) {
        if two {
            let id = api_id(r.endpoint, &r.id);
            match (api_by_id.get(id.as_str()), r.sampled) {
                (Some(&a), true) => {
                    client_parent(out, About::Api(a), &apis[a].trace_id, &apis[a].parent_span_id, r);
                    for (c, _) in parent_of.iter().enumerate().filter(|(_, p)| **p == Some(a)) {
                        totals(out, c, &cores[c], r, &id);
                    }
                }
                (Some(&a), false) => out.api(
                    a,
                    RuleId::SamplingAtomicity,
                    format!("request {:?} was not sampled, but has an API span", r.id),
                ),
                (None, true) => out.push(
                    About::Request(r.id.clone()),
                    RuleId::SamplingAtomicity,
                    format!("sampled request {:?} has no API span ({id:?})", r.id),
                ),
                (None, false) => {}
            }
        } else {
            match (core_by_id.get(r.id.as_str()), r.sampled) {
                (Some(&c), true) => {
                    client_parent(out, About::Core(c), &cores[c].trace_id, &cores[c].parent_span_id, r);
                    totals(out, c, &cores[c], r, &r.id);
                }
                (Some(&c), false) => out.core(
                    c,
                    RuleId::AbsentCoreSpan,
                    format!("request {:?} was not sampled, but has a core span", r.id),
                ),
                (None, true) => out.push(
                    About::Request(r.id.clone()),
                    RuleId::AbsentCoreSpan,
                    format!("sampled request {:?} has no core span", r.id),
                ),
                (None, false) => {}
            }
        }
    }
}

/// X6's workload part: the top span's trace id and parent are the client's.
fn client_parent(out: &mut Findings, about: About, trace_id: &str, parent: &Option<String>, r: &ExpectedRequest) {
    match (&r.traceparent, parent) {
        (Some((t, p)), got) if trace_id != t || got.as_deref() != Some(p.as_str()) => out.push(
            about,
            RuleId::ClientParent,
            format!(
                "the client sent traceparent {t}/{p}, but the span is {trace_id} with parent {}",
                got.as_deref().unwrap_or("none")
            ),
        ),
        (None, Some(p)) => out.push(
            about,
            RuleId::ClientParent,
            format!("the client sent no traceparent, but the span has parent {p}"),
        ),
        (Some(_) | None, _) => {}
    }
}

/// W1 for one core span of request `r` (`api` is the id its core id starts from).
fn totals(out: &mut Findings, c: usize, core: &CoreSide, r: &ExpectedRequest, api: &str) {
    let Some((prompt, cap)) = core.totals else { return };
    let index = core
        .request_id
        .as_deref()
        .and_then(|id| core_id_parts(id, api, r.endpoint).ok())
        .and_then(|p| p.prompt)
        .unwrap_or(0);
    let expected = usize::try_from(index).ok().and_then(|i| r.prompts.get(i)).copied();
    if let Some(e) = expected.filter(|&e| e != prompt) {
        out.core(
            c,
            RuleId::WorkloadTotals,
            format!("prefill.total_tokens is {prompt}, but request {:?} prompt {index} has {e} tokens", r.id),
        );
    } else if cap != r.max_tokens {
        out.core(
            c,
            RuleId::WorkloadTotals,
            format!("decode.max_tokens is {cap}, but request {:?} has max_tokens {}", r.id, r.max_tokens),
        );
    }
}
