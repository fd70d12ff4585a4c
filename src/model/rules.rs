//! The rule catalogue (`SPEC.md` §5): what the oracle checks, one stable id per rule.
//!
//! Ids (`R1` … `R14`) follow the numbering of `SPEC.md` and are never renumbered or reused; a new
//! rule gets the next free number. Every rule has a targeted corruption in the test suite that
//! makes the checker report exactly that id (`tests/model_rules.rs`).

use std::fmt;

/// Which part of the crate checks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One journey, event by event ([`JourneyChecker`](super::JourneyChecker)).
    Journey,
    /// One journey, when its attributes are decoded from the wire ([`crate::wire`]).
    Wire,
    /// All journeys of one scheduler instance ([`InstanceChecker`](super::InstanceChecker)).
    Instance,
    /// One API span (`llm_request`) on its own ([`check_api_span`](super::check_api_span)).
    Span,
    /// An API span and its core children, joined by trace id and parent span id
    /// ([`cross`](super::cross)).
    Pair,
    /// The trace against the workload that produced it (`journey check --workload`).
    Workload,
}

impl Scope {
    /// The scope's name in reports: `journey`, `wire`, `instance`, `span`, `pair`, `workload`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Journey => "journey",
            Scope::Wire => "wire",
            Scope::Instance => "instance",
            Scope::Span => "span",
            Scope::Pair => "pair",
            Scope::Workload => "workload",
        }
    }
}

/// Which layer of a request a rule (or a lane of `journey report`) is about: the namespace of a
/// rule id (`R`/`C` core, `A` API, `X` across the layers, `S` step windows; `SPEC.md` §5, §9,
/// §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Layer {
    /// The `llm_core` span: the request in the scheduler.
    Core,
    /// The `llm_request` span: the request in the OpenAI serving layer (`SPEC.md` §9.2).
    Api,
    /// The relation between an `llm_request` and its `llm_core` children (`SPEC.md` §9.3).
    Cross,
}

impl Layer {
    /// The layer's name in reports: `core`, `api`, `cross`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Layer::Core => "core",
            Layer::Api => "api",
            Layer::Cross => "cross",
        }
    }
}

/// A rule of the oracle. The variant docs are the one-line statements of `SPEC.md` §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RuleId {
    /// R1: the first event is QUEUED, and there is exactly one QUEUED.
    QueuedFirst,
    /// R2: each event is legal in the current state; nothing follows FINISHED.
    LegalTransition,
    /// R3: a journey whose span has ended finishes with exactly one FINISHED, unless the span
    /// reports dropped events (then it is incomplete).
    EndsFinished,
    /// R4: `schedule.kind` exactly on SCHEDULED (FIRST from Waiting, RESUME from Preempted);
    /// `finish.status` exactly on FINISHED, from the set; natural statuses only from Running.
    Qualifiers,
    /// R5: `event.type` equals the name's suffix; every mandatory attribute is present with its type.
    WellFormed,
    /// R6: `scheduler.step` never decreases; SCHEDULED/PREEMPTED steps are ≥ 1; RESUME's step is
    /// after the PREEMPTED before it.
    StepOrder,
    /// R7: `ts.monotonic` never decreases; event timestamps lie within the span.
    TimeOrder,
    /// R8: totals never change; done counters never decrease and never exceed their totals.
    ProgressBounds,
    /// R9: `num_preemptions` equals the number of PREEMPTED events so far.
    PreemptionCount,
    /// R10: `phase` follows `SPEC.md` §3; QUEUED reports zero progress and zero preemptions;
    /// SCHEDULED(FIRST) reports `prefill.done_tokens == 0`.
    PhaseAndSnapshot,
    /// R11: FIRST_TOKEN at most once, in Running, with output ≥ 1 and the whole prompt done, and
    /// no output before it.
    FirstToken,
    /// R12: `stopped` and `length` imply `decode.done_tokens ≥ 1`.
    NaturalFinishHasOutput,
    /// R13: within one step, no SCHEDULED event comes after a PREEMPTED event.
    NoAdmissionAfterPreemption,
    /// R14: request ids are unique among live requests (no two spans with the same id overlap).
    UniqueLiveIds,
    /// C2: `ts.monotonic_ns` is an int on every event of a journey or on none, never decreases,
    /// and `ts.monotonic == ts.monotonic_ns / 1e9`.
    MonotonicNs,
    /// C3: a request without an `llm_core` span is not a journey; with a workload, a request has
    /// a core span exactly when it was sampled.
    AbsentCoreSpan,
    /// W1: with a workload, every journey's `prefill.total_tokens` and `decode.max_tokens` are the
    /// prompt length and cap of its request.
    WorkloadTotals,
    /// A1: the API span's attributes are present with their types; `completion_tokens` only on a
    /// chat span that ends with DEPARTED.
    ApiAttributes,
    /// A2: the API events follow the API lifecycle of the span's endpoint.
    ApiLifecycle,
    /// A3: `event.ts.monotonic` on every API event, a double, never decreasing; ABORTED has
    /// `reason`; the span status is ERROR exactly when an ABORTED carries `error`.
    ApiClockAndStatus,
    /// A4: API event timestamps lie within the API span.
    ApiWithinSpan,
    /// X1: a core span's parent, when in the input, is an `llm_request` of the same trace; the
    /// core span is INTERNAL in scope `vllm.scheduler`.
    ParentIsApiSpan,
    /// X2: core id = API id (+ `-<prompt index>` for completions) + `-` + 8 lowercase hex digits;
    /// `n > 1` children are `<j>_<core id>` sharing one suffix.
    IdRelation,
    /// X3: ARRIVED ≤ HANDOFF_TO_CORE ≤ core span start ≤ QUEUED.
    HandoffBeforeCore,
    /// X4: DEPARTED after the core FINISHED and span end; FIRST_RESPONSE_FROM_CORE after the first
    /// FIRST_TOKEN; on a client disconnect the API side ends before the core FINISHED.
    ResponseAfterCore,
    /// X5: sampling is atomic for a single-prompt `n = 1` request: both spans or neither.
    SamplingAtomicity,
    /// X6: remote-parent flags agree with the parent; with a workload, the top span carries the
    /// client's trace id and parent.
    ClientParent,
}

/// Everything the catalogue says about one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RuleInfo {
    /// The rule.
    pub id: RuleId,
    /// A short kebab-case name, accepted wherever an id is.
    pub name: &'static str,
    /// Who checks it.
    pub scope: Scope,
    /// The layer it is about (the namespace of its id).
    pub layer: Layer,
    /// The one-line statement.
    pub statement: &'static str,
    /// Why the rule holds and what it means in practice.
    pub doc: &'static str,
}

impl serde::Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl RuleId {
    /// Every rule, in catalogue order.
    pub const ALL: &'static [RuleId] = &[
        RuleId::QueuedFirst,
        RuleId::LegalTransition,
        RuleId::EndsFinished,
        RuleId::Qualifiers,
        RuleId::WellFormed,
        RuleId::StepOrder,
        RuleId::TimeOrder,
        RuleId::ProgressBounds,
        RuleId::PreemptionCount,
        RuleId::PhaseAndSnapshot,
        RuleId::FirstToken,
        RuleId::NaturalFinishHasOutput,
        RuleId::NoAdmissionAfterPreemption,
        RuleId::UniqueLiveIds,
        RuleId::MonotonicNs,
        RuleId::AbsentCoreSpan,
        RuleId::WorkloadTotals,
        RuleId::ApiAttributes,
        RuleId::ApiLifecycle,
        RuleId::ApiClockAndStatus,
        RuleId::ApiWithinSpan,
        RuleId::ParentIsApiSpan,
        RuleId::IdRelation,
        RuleId::HandoffBeforeCore,
        RuleId::ResponseAfterCore,
        RuleId::SamplingAtomicity,
        RuleId::ClientParent,
    ];

    /// The stable id: `R1` … `R14`, `C2`, `C3`, `W1`, `A1` … `A4`, `X1` … `X6`.
    pub const fn as_str(self) -> &'static str {
        self.entry().id_str
    }

    /// The rule's number within its namespace (`SPEC.md` §5, §9): 7 for `R7` and for `X7`.
    pub const fn number(self) -> u8 {
        self.entry().number
    }

    /// The layer the rule is about.
    pub const fn layer(self) -> Layer {
        self.entry().info.layer
    }

    /// The catalogue entry.
    pub const fn info(self) -> RuleInfo {
        self.entry().info
    }

    const fn entry(self) -> Entry {
        match self {
            RuleId::QueuedFirst => Entry::new(
                1,
                "R1",
                "queued-first",
                Scope::Journey,
                self,
                "The first event is QUEUED, and there is exactly one QUEUED.",
                "A request enters the scheduler once, through `add_request`, which emits QUEUED before anything else can happen to it. A second QUEUED means two requests were merged into one span or an id was reused while live.",
            ),
            RuleId::LegalTransition => Entry::new(
                2,
                "R2",
                "legal-transition",
                Scope::Journey,
                self,
                "Each event is legal in the current state (SPEC §2); nothing follows FINISHED.",
                "The transition table is the lifecycle: SCHEDULED only from Waiting or Preempted, PREEMPTED and FIRST_TOKEN only in Running, FINISHED from any live state, and no event after FINISHED because the request and its span are gone.",
            ),
            RuleId::EndsFinished => Entry::new(
                3,
                "R3",
                "ends-finished",
                Scope::Journey,
                self,
                "A journey whose span has ended finishes with exactly one FINISHED, unless the span reports dropped events.",
                "Every termination path emits FINISHED right before it ends the span. A span that reports dropped events (SDK event limits: Python drops the oldest, Rust the newest) is incomplete, not violating; the checker still checks what is left.",
            ),
            RuleId::Qualifiers => Entry::new(
                4,
                "R4",
                "qualifiers",
                Scope::Journey,
                self,
                "`schedule.kind` is present exactly on SCHEDULED, FIRST from Waiting and RESUME from Preempted; `finish.status` exactly on FINISHED, with a value from the set; natural statuses only from Running.",
                "RESUME is decided by the previous status alone, so a RESUME without a PREEMPTED (or a FIRST after one) is mislabelled. `stopped` and `length` come from the model's tokens, which only a running request receives.",
            ),
            RuleId::WellFormed => Entry::new(
                5,
                "R5",
                "well-formed",
                Scope::Wire,
                self,
                "`event.type` equals the name's suffix; every mandatory attribute is present with its type.",
                "The nine mandatory attributes (`event.type`, `ts.monotonic`, `scheduler.step`, `phase`, the four progress counters, `num_preemptions`) are on every event with the types of SPEC §3; an event that lacks one cannot be checked further.",
            ),
            RuleId::StepOrder => Entry::new(
                6,
                "R6",
                "step-order",
                Scope::Journey,
                self,
                "`scheduler.step` never decreases; SCHEDULED/PREEMPTED steps are ≥ 1; RESUME's step is strictly greater than the step of the PREEMPTED before it.",
                "The step counter is incremented at the start of every `schedule()` and never reset. A request preempted in a step is not re-admitted in the same step, because the waiting phase runs only when nothing was preempted.",
            ),
            RuleId::TimeOrder => Entry::new(
                7,
                "R7",
                "time-order",
                Scope::Journey,
                self,
                "`ts.monotonic` never decreases; event timestamps lie within the span's start and end.",
                "Events of one request are emitted in program order from a single-threaded scheduler, and the span starts before QUEUED and ends right after FINISHED.",
            ),
            RuleId::ProgressBounds => Entry::new(
                8,
                "R8",
                "progress-bounds",
                Scope::Journey,
                self,
                "`prefill.total_tokens` and `decode.max_tokens` never change; `prefill.done_tokens` never decreases and never exceeds the total; `decode.done_tokens` never decreases and never exceeds the max.",
                "The prefill mark is a high-water mark that survives preemption, and output tokens are kept across preemption (recompute policy).",
            ),
            RuleId::PreemptionCount => Entry::new(
                9,
                "R9",
                "preemption-count",
                Scope::Journey,
                self,
                "`num_preemptions` equals the number of PREEMPTED events so far.",
                "The count is incremented before PREEMPTED is emitted, so PREEMPTED carries its own preemption and every event carries the running total.",
            ),
            RuleId::PhaseAndSnapshot => Entry::new(
                10,
                "R10",
                "phase-and-snapshot",
                Scope::Journey,
                self,
                "`phase` follows SPEC §3; QUEUED reports zero progress and zero preemptions; SCHEDULED(FIRST) reports `prefill.done_tokens == 0`.",
                "`phase` is WAITING on QUEUED only, otherwise PREFILL without output and DECODE with output. SCHEDULED reports the prefill mark from before the step's work, which is 0 on first admission. A QUEUED with preemptions is reported as R9, which every event's count must satisfy and which is checked first.",
            ),
            RuleId::FirstToken => Entry::new(
                11,
                "R11",
                "first-token",
                Scope::Journey,
                self,
                "FIRST_TOKEN happens at most once, in Running, with `decode.done_tokens ≥ 1`, `prefill.done_tokens == prefill.total_tokens`, and every earlier event at `decode.done_tokens == 0`.",
                "FIRST_TOKEN marks the 0→N transition of the output and is deduplicated per request; the first token needs the whole prompt computed.",
            ),
            RuleId::NaturalFinishHasOutput => Entry::new(
                12,
                "R12",
                "natural-finish-has-output",
                Scope::Journey,
                self,
                "`stopped` and `length` imply `decode.done_tokens ≥ 1`.",
                "Stop conditions are checked on appended output tokens, so a natural finish always follows at least one token.",
            ),
            RuleId::NoAdmissionAfterPreemption => Entry::new(
                13,
                "R13",
                "no-admission-after-preemption",
                Scope::Instance,
                self,
                "Within one step, no SCHEDULED event comes (by `ts.monotonic`) after a PREEMPTED event.",
                "vLLM admits waiting requests only when the same `schedule()` preempted nothing, and a reset's preemptions come after that step's admissions. Checked across the journeys of one scheduler instance.",
            ),
            RuleId::UniqueLiveIds => Entry::new(
                14,
                "R14",
                "unique-live-ids",
                Scope::Instance,
                self,
                "Request ids are unique among live requests (no two spans with the same id overlap in time).",
                "Adding a request whose id is live is rejected; an id may be reused only after its request finished.",
            ),
            RuleId::MonotonicNs => Entry::new(
                2,
                "C2",
                "monotonic-ns",
                Scope::Journey,
                self,
                "`ts.monotonic_ns`, when present, is an int on every event of the journey (or on none), never decreases, and `ts.monotonic == ts.monotonic_ns / 1e9`.",
                "From the fork's `eb838d911` on, the scheduler reads `time.monotonic_ns()` once per event and derives `ts.monotonic` from that reading, so the two agree exactly in IEEE double and the nanosecond clock is as monotonic as the seconds.",
            ),
            RuleId::AbsentCoreSpan => Entry::new(
                3,
                "C3",
                "absent-core-span",
                Scope::Workload,
                self,
                "A request with no `llm_core` span is not a journey and not a violation; with a workload, a request has core spans exactly when it was sampled.",
                "At HEAD the scheduler creates `llm_core` only when the trace headers carry `x-vllm-journey-sampled: 1`; scheduling does not change. Without a workload an absent span is never a finding (rules over all journeys then see a subset); with one, a sampled request without a core span, or an unsampled one with a core span, contradicts the run.",
            ),
            RuleId::WorkloadTotals => Entry::new(
                1,
                "W1",
                "workload-totals",
                Scope::Workload,
                self,
                "With a workload, every journey's `prefill.total_tokens` and `decode.max_tokens` equal its request's prompt length (`prompts[i]` for prompt i of a batch) and `max_tokens`.",
                "The journey's totals are the request as the scheduler received it; the workload is what the client sent (SPEC §10).",
            ),
            RuleId::ApiAttributes => Entry::new(
                1,
                "A1",
                "api-attributes",
                Scope::Span,
                self,
                "`gen_ai.request.id` and `http.route` are strings; `gen_ai.response.model` a string, `gen_ai.usage.prompt_tokens`, `gen_ai.request.max_tokens`, `gen_ai.request.n` ints, `gen_ai.request.temperature`, `gen_ai.request.top_p` doubles when present; `gen_ai.usage.completion_tokens` (int) only on a chat span that ends with DEPARTED.",
                "`_create_api_span` sets the id and route, the endpoint sets the request attributes it knows, and the chat success paths set `completion_tokens` just before the DEPARTED finalization.",
            )
            .in_layer(Layer::Api),
            RuleId::ApiLifecycle => Entry::new(
                2,
                "A2",
                "api-lifecycle",
                Scope::Span,
                self,
                "ARRIVED first and once; for chat HANDOFF_TO_CORE second and FIRST_RESPONSE_FROM_CORE at most once after it; at most one terminal event (DEPARTED | ABORTED) and nothing after it; completions have neither HANDOFF nor FIRST_RESPONSE; no other `api.*` name.",
                "The table of SPEC §9.2. A span may end without a terminal event: every outer `finally` calls the cleanup-only finalization, which ends a span no earlier call ended.",
            )
            .in_layer(Layer::Api),
            RuleId::ApiClockAndStatus => Entry::new(
                3,
                "A3",
                "api-clock-and-status",
                Scope::Span,
                self,
                "`event.ts.monotonic` on every API event, a double, never decreasing; ABORTED has `reason`; the span status is ERROR exactly when an ABORTED carries `error`, with that message.",
                "Every API event is stamped with `time.monotonic()` (seconds, not ns); `_finalize_api_span` sets the ERROR status from the abort's message and only then.",
            )
            .in_layer(Layer::Api),
            RuleId::ApiWithinSpan => Entry::new(
                4,
                "A4",
                "api-within-span",
                Scope::Span,
                self,
                "API event timestamps lie within the API span's start and end.",
                "ARRIVED is added right after the span starts, and the span is ended in a `finally` after its last event.",
            )
            .in_layer(Layer::Api),
            RuleId::ParentIsApiSpan => Entry::new(
                1,
                "X1",
                "parent-is-api-span",
                Scope::Pair,
                self,
                "A core span's parent, when in the input, is an `llm_request` of the same trace; such a core span is INTERNAL in scope `vllm.scheduler`.",
                "The API layer injects its own span's context into the engine request's trace headers, and the scheduler extracts it as the parent of `llm_core`. Pairs are joined by trace id and parent span id, never by request id.",
            )
            .in_layer(Layer::Cross),
            RuleId::IdRelation => Entry::new(
                2,
                "X2",
                "id-relation",
                Scope::Pair,
                self,
                "core id = API id, plus `-<prompt index>` for completions, plus `-` and 8 lowercase hex digits; with `n > 1` the children are `<j>_<core id>` (j < n) sharing one suffix.",
                "`InputProcessor.assign_request_id` appends a random 8-hex suffix; completions number their prompts; `AsyncLLM.add_request` fans `n > 1` out into child requests that copy the parent's id.",
            )
            .in_layer(Layer::Cross),
            RuleId::HandoffBeforeCore => Entry::new(
                3,
                "X3",
                "handoff-before-core",
                Scope::Pair,
                self,
                "ARRIVED ≤ HANDOFF_TO_CORE ≤ core span start ≤ QUEUED (wall-clock timestamps).",
                "HANDOFF_TO_CORE is emitted when the async generator `engine_client.generate` is called, before anything reaches the engine, which then starts the core span and emits QUEUED.",
            )
            .in_layer(Layer::Cross),
            RuleId::ResponseAfterCore => Entry::new(
                4,
                "X4",
                "response-after-core",
                Scope::Pair,
                self,
                "DEPARTED after every child's FINISHED and span end; FIRST_RESPONSE_FROM_CORE after the earliest child FIRST_TOKEN (after FINISHED when the client did not stream) and never without one; on a client disconnect ABORTED and the API span's end come before the core FINISHED(aborted).",
                "The endpoint responds from the engine's outputs, so it cannot finish before them; a disconnect ends the API span first and then aborts the engine request, so the child outlives its parent and \"child within parent\" is not a rule.",
            )
            .in_layer(Layer::Cross),
            RuleId::SamplingAtomicity => Entry::new(
                5,
                "X5",
                "sampling-atomicity",
                Scope::Pair,
                self,
                "A single-prompt `n = 1` request has both spans or neither: never more than one core child; under --complete no sampled API span without a core child and no core span without its API parent; with a workload, spans exactly for the sampled requests.",
                "The API layer decides sampling once and passes it on in the `x-vllm-journey-sampled` header. Documented holes (real behaviour, not violations): a batch completion traces prompt 0 only, and `n > 1` gives `n` children. Without --complete a missing partner is counted as unpaired.",
            )
            .in_layer(Layer::Cross),
            RuleId::ClientParent => Entry::new(
                6,
                "X6",
                "client-parent",
                Scope::Pair,
                self,
                "The OTLP span flags' remote-parent bits agree with whether the span has a parent; with a workload, the request's top span has the client's trace id and parent span, and is a root when the client sent none.",
                "Both parents are extracted from headers (the client's `traceparent`, the injected one), so they are remote; the SDK records that in the span's flags.",
            )
            .in_layer(Layer::Cross),
        }
    }

    /// Looks a rule up by id (`R7`, case-insensitive) or name (`time-order`).
    ///
    /// ```
    /// use journey_spec::model::RuleId;
    /// assert_eq!(RuleId::lookup("r7"), Some(RuleId::TimeOrder));
    /// assert_eq!(RuleId::lookup("time-order"), Some(RuleId::TimeOrder));
    /// assert_eq!(RuleId::lookup("R99"), None);
    /// ```
    pub fn lookup(s: &str) -> Option<RuleId> {
        RuleId::ALL.iter().copied().find(|r| r.as_str().eq_ignore_ascii_case(s) || r.info().name == s)
    }
}

/// A catalogue entry: the public [`RuleInfo`] plus the id string and number.
#[derive(Clone, Copy)]
struct Entry {
    number: u8,
    id_str: &'static str,
    info: RuleInfo,
}

impl Entry {
    const fn new(
        number: u8,
        id_str: &'static str,
        name: &'static str,
        scope: Scope,
        id: RuleId,
        statement: &'static str,
        doc: &'static str,
    ) -> Entry {
        Entry { number, id_str, info: RuleInfo { id, name, scope, layer: Layer::Core, statement, doc } }
    }

    /// The entry of a rule about `layer`.
    const fn in_layer(self, layer: Layer) -> Entry {
        let mut e = self;
        e.info.layer = layer;
        e
    }
}

impl super::lifecycle::Rule for RuleId {
    fn name(self) -> &'static str {
        self.info().name
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole catalogue, in order: what `journey rules` prints.
pub fn catalogue() -> impl Iterator<Item = RuleInfo> {
    RuleId::ALL.iter().map(|r| r.info())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_numbered_in_order_and_unique() {
        for (i, r) in RuleId::ALL.iter().take(14).enumerate() {
            assert_eq!(usize::from(r.number()), i + 1);
            assert_eq!(r.as_str(), format!("R{}", i + 1));
        }
        let mut seen = std::collections::HashSet::new();
        for r in RuleId::ALL {
            assert_eq!(r.as_str(), format!("{}{}", &r.as_str()[..1], r.number()));
            assert!(seen.insert(r.as_str()), "{r} twice");
            assert!(seen.insert(r.info().name), "{} twice", r.info().name);
            assert_eq!(r.info().id, *r);
            assert_eq!(RuleId::lookup(r.as_str()), Some(*r));
            assert_eq!(RuleId::lookup(r.info().name), Some(*r));
        }
    }

    #[test]
    fn the_namespace_letter_follows_the_layer() {
        for r in RuleId::ALL {
            let letter = &r.as_str()[..1];
            let layer = match letter {
                "R" | "C" | "W" => Layer::Core,
                "A" => Layer::Api,
                "X" => Layer::Cross,
                other => panic!("unknown namespace {other}"),
            };
            assert_eq!(r.layer(), layer, "{r}");
        }
    }

    #[test]
    fn the_catalogue_lists_every_rule_in_order_and_ids_print_as_themselves() {
        let listed: Vec<RuleId> = catalogue().map(|r| r.id).collect();
        assert_eq!(listed, RuleId::ALL);
        for r in RuleId::ALL {
            assert_eq!(r.to_string(), r.as_str());
        }
    }
}
