//! Proptest strategies that generate valid journeys (cargo feature `proptest`).
//!
//! A journey is generated as a *script* of moves — wait, run a step with a chunk of work (and
//! maybe EOS), preempt (inside `schedule()` or by a reset), finish with a status — that a
//! small single-request simulator plays out with vLLM's rules: chunked prefill advances the
//! prefill high-water mark, the first token comes in the step that completes the prompt,
//! preemption drops computed tokens but keeps outputs and the mark, a resumed request
//! recomputes prompt plus outputs, `max_tokens` ends the journey with `length`. Moves that do
//! not apply in the current state are skipped, so every script is valid and shrinking (which
//! deletes and simplifies moves) stays within valid journeys.
//!
//! ```
//! use journey_spec::model::{check_journey, strategy::journey};
//! use proptest::prelude::*;
//!
//! proptest!(|(j in journey())| {
//!     prop_assert!(check_journey(j.request_id.clone(), j.span, &j.events).is_conforming());
//! });
//! ```

use proptest::prelude::*;

pub mod corrupt;
pub mod lifecycle;

use super::checker::SpanInfo;
use super::core::State;
use super::event::{FinishStatus, JourneyEvent, Label, Progress, RequestId, ScheduleKind, Step};

/// A generated journey with the span it would be carried on.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedJourney {
    /// The request id.
    pub request_id: RequestId,
    /// Span start and end around the events; no dropped events.
    pub span: SpanInfo,
    /// The events, valid under every rule of the catalogue.
    pub events: Vec<JourneyEvent>,
    /// The state the request was in right before it finished.
    pub finished_from: State,
}

impl GeneratedJourney {
    /// How many `PREEMPTED` events the journey has.
    pub fn preemptions(&self) -> usize {
        self.events.iter().filter(|e| e.kind == super::EventKind::Preempted).count()
    }
}

/// Bounds for generated journeys.
#[derive(Debug, Clone)]
pub struct JourneyParams {
    /// The request id of every generated journey.
    pub request_id: String,
    /// Largest prompt length.
    pub max_prompt_len: u64,
    /// Largest generation cap.
    pub max_tokens: u64,
    /// Largest number of moves in a script (a journey has at most about two events per move).
    pub max_moves: usize,
}

impl Default for JourneyParams {
    fn default() -> Self {
        JourneyParams { request_id: "req-0".to_owned(), max_prompt_len: 600, max_tokens: 48, max_moves: 40 }
    }
}

/// One move of a journey script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    /// Some steps pass without this request.
    Idle(u64),
    /// One step of work: admit if needed, compute up to `chunk` tokens; `eos` makes a token
    /// produced in this step the last one.
    Run { chunk: u64, eos: bool },
    /// Preempt if running; `in_schedule` = inside the next `schedule()`, otherwise a reset.
    Preempt { in_schedule: bool },
    /// Finish with this status if the state allows it.
    Finish(FinishStatus),
}

fn moves() -> impl Strategy<Value = Move> {
    prop_oneof![
        2 => (0u64..4).prop_map(Move::Idle),
        8 => (1u64..=512, prop::bool::weighted(0.08)).prop_map(|(chunk, eos)| Move::Run { chunk, eos }),
        2 => any::<bool>().prop_map(|in_schedule| Move::Preempt { in_schedule }),
        1 => prop::sample::select(FinishStatus::ALL).prop_map(Move::Finish),
    ]
}

/// Valid journeys with the default [`JourneyParams`].
pub fn journey() -> impl Strategy<Value = GeneratedJourney> {
    journey_with(JourneyParams::default())
}

/// Valid journeys within `params`.
pub fn journey_with(params: JourneyParams) -> impl Strategy<Value = GeneratedJourney> {
    let JourneyParams { request_id, max_prompt_len, max_tokens, max_moves } = params;
    (
        1..=max_prompt_len.max(1),
        1..=max_tokens.max(1),
        0u64..40,
        prop::collection::vec(moves(), 0..=max_moves),
        any::<u8>(),
    )
        .prop_map(move |(prompt, max, queued_step, script, last)| {
            play(RequestId(request_id.clone()), prompt, max, queued_step, &script, last)
        })
}

/// The single-request simulator.
struct Sim {
    events: Vec<JourneyEvent>,
    state: State,
    step: u64,
    clock: f64,
    prompt: u64,
    max: u64,
    computed: u64,
    hiwater: u64,
    outputs: u64,
    preemptions: u64,
    finished_from: State,
}

impl Sim {
    fn progress(&self) -> Progress {
        Progress {
            prefill_done: self.hiwater,
            prefill_total: self.prompt,
            decode_done: self.outputs,
            decode_max: self.max,
        }
    }

    fn emit(&mut self, label: Label) {
        self.clock += 0.001 + (self.events.len() % 3) as f64 * 0.0005;
        let ev = JourneyEvent::new(label, Step(self.step), self.progress(), self.preemptions).at(self.clock);
        let wall = WALL_BASE + (self.clock * 1e9) as u64;
        self.events.push(ev.wall(wall));
        if let Label::Finished(_) = label {
            self.finished_from = self.state;
        }
    }

    fn finish(&mut self, status: FinishStatus) {
        self.emit(Label::Finished(status));
        self.state = State::Finished(status);
    }

    /// One step of work for this request (it is admitted first when not running).
    fn run(&mut self, chunk: u64, eos: bool) {
        self.step += 1;
        match self.state {
            State::Waiting => self.emit(Label::Scheduled(ScheduleKind::First)),
            State::Preempted => self.emit(Label::Scheduled(ScheduleKind::Resume)),
            State::Running => {}
            State::New | State::Finished(_) => return,
        }
        self.state = State::Running;
        let known = self.prompt + self.outputs;
        self.computed = (self.computed + chunk).min(known);
        if self.outputs == 0 {
            self.hiwater = self.hiwater.max(self.computed.min(self.prompt));
        }
        if self.computed < known {
            return;
        }
        // The step reached the end of the known tokens: the model produces one token.
        self.outputs += 1;
        if self.outputs == 1 {
            self.emit(Label::FirstToken);
        }
        if eos {
            self.finish(FinishStatus::Stopped);
        } else if self.outputs >= self.max {
            self.finish(FinishStatus::Length);
        }
    }

    fn preempt(&mut self, in_schedule: bool) {
        if self.state != State::Running {
            return;
        }
        if in_schedule {
            self.step += 1;
        }
        self.computed = 0;
        self.preemptions += 1;
        self.state = State::Preempted;
        self.emit(Label::Preempted);
    }

    fn allowed(&self, status: FinishStatus) -> bool {
        match self.state {
            State::Running => !status.is_natural() || self.outputs >= 1,
            State::Waiting | State::Preempted => !status.is_natural(),
            State::New | State::Finished(_) => false,
        }
    }
}

const WALL_BASE: u64 = 1_700_000_000_000_000_000;

fn play(request_id: RequestId, prompt: u64, max: u64, queued_step: u64, script: &[Move], last: u8) -> GeneratedJourney {
    let mut sim = Sim {
        events: Vec::new(),
        state: State::Waiting,
        step: queued_step,
        clock: 100.0,
        prompt,
        max,
        computed: 0,
        hiwater: 0,
        outputs: 0,
        preemptions: 0,
        finished_from: State::New,
    };
    sim.emit(Label::Queued);
    for m in script {
        if sim.state.is_finished() {
            break;
        }
        match *m {
            Move::Idle(n) => sim.step += n,
            Move::Run { chunk, eos } => sim.run(chunk, eos),
            Move::Preempt { in_schedule } => sim.preempt(in_schedule),
            Move::Finish(status) => {
                if sim.allowed(status) {
                    sim.finish(status);
                }
            }
        }
    }
    if !sim.state.is_finished() {
        let candidates: Vec<FinishStatus> = FinishStatus::ALL.iter().copied().filter(|s| sim.allowed(*s)).collect();
        let status = candidates[usize::from(last) % candidates.len()];
        sim.finish(status);
    }
    let first = sim.events.first().and_then(|e| e.time_unix_nano).unwrap_or(WALL_BASE);
    let last_t = sim.events.last().and_then(|e| e.time_unix_nano).unwrap_or(WALL_BASE);
    GeneratedJourney {
        request_id,
        span: SpanInfo { start_unix_nano: Some(first - 1_000), end_unix_nano: Some(last_t + 1_000), dropped_events: 0 },
        events: sim.events,
        finished_from: sim.finished_from,
    }
}
