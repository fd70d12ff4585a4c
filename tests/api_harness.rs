//! Model checking of the two-layer reference system: generated operation sequences drive the
//! API front end ([`ApiFront`]) over the scheduler, with both layers on a real OpenTelemetry SDK
//! whose spans are written as OTLP JSON Lines (one span per line, so every ended span is
//! visible at once). After every operation:
//! - every exported span is read back and checked against the model, both layers and their
//!   relation (`journey check` without `--complete`: a partner span still open is unpaired,
//!   not violating);
//! - an unsampled request has no span in either layer, and only sampled engine requests have
//!   tracing state in the emitter (the `head` gate keeps nothing for the others);
//! - an API span is open exactly while its client request has no answer.
//!
//! At the end (drained, front end dropped) the whole trace is checked as complete and against
//! the workload the operations amount to (`--complete --workload`), and no tracing state is left.
//! Operations name clients by position (`pick`), resolved against the requests made so far, so
//! that shrinking can drop any operation.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use journey_spec::model::cross::{Expected, ExpectedRequest};
use journey_spec::otel::write::{OtlpJsonWriter, SeededIds};
use journey_spec::otel::{CheckOptions, CheckedTrace, check_trace, read_trace};
use journey_spec::{
    AddOp, ApiFront, ApiOutcome, Emitter, Endpoint, FinishOp, InFlight, Iteration, Op, Policy, Scheduler,
    SchedulerConfig, SimClock, Submitted, WireProfile, Workload, api_keys,
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use proptest::prelude::*;

/// A `Write` whose bytes can be read while the exporter still holds it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[derive(Debug, Clone)]
enum Action {
    /// A client request.
    Add { chat: bool, stream: bool, n: u32, prompts: Vec<u64>, max_tokens: u64, sampled: bool, traceparent: bool },
    /// A client disconnect between steps.
    Disconnect { pick: usize },
    /// One engine step: `in_flight` disconnects, EOS for the picked clients.
    Step { in_flight: Vec<usize>, eos: Vec<usize> },
    /// `reset_prefix_cache(reset_running_requests=True)`.
    Reset,
    /// A generation error of a client's engine requests.
    Fail { pick: usize },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (any::<bool>(), any::<bool>(), 1u32..=3, prop::collection::vec(1u64..60, 1..=3), 1u64..8,
              prop::bool::weighted(0.7), any::<bool>())
            .prop_map(|(chat, stream, n, prompts, max_tokens, sampled, traceparent)| {
                // Chat has one prompt.
                let prompts = if chat { prompts[..1].to_vec() } else { prompts };
                Action::Add { chat, stream, n, prompts, max_tokens, sampled, traceparent }
            }),
        2 => any::<usize>().prop_map(|pick| Action::Disconnect { pick }),
        6 => (prop::collection::vec(any::<usize>(), 0..2), prop::collection::vec(any::<usize>(), 0..3))
            .prop_map(|(in_flight, eos)| Action::Step { in_flight, eos }),
        1 => Just(Action::Reset),
        1 => any::<usize>().prop_map(|pick| Action::Fail { pick }),
    ]
}

fn config() -> impl Strategy<Value = SchedulerConfig> {
    (1usize..4, prop::sample::select(vec![16u64, 32, 64]), 12usize..30, any::<bool>()).prop_map(
        |(max_num_seqs, budget, num_blocks, priority)| SchedulerConfig {
            max_num_seqs,
            max_num_batched_tokens: budget,
            block_size: 8,
            num_blocks,
            max_model_len: 96,
            policy: if priority { Policy::Priority } else { Policy::Fcfs },
            ..SchedulerConfig::default()
        },
    )
}

fn violations(c: &CheckedTrace) -> Vec<String> {
    let mut out: Vec<String> = c
        .journeys
        .iter()
        .filter(|j| !j.verdict.is_conforming())
        .map(|j| format!("core {:?}: {:?}", j.request_id, j.verdict))
        .collect();
    out.extend(
        c.api.iter().filter(|a| !a.verdict.is_conforming()).map(|a| format!("api {:?}: {:?}", a.request_id, a.verdict)),
    );
    out.extend(c.absent.iter().map(|v| format!("absent: {v:?}")));
    out
}

fn check(bytes: &[u8], options: &CheckOptions) -> Result<CheckedTrace, TestCaseError> {
    let mut errors = Vec::new();
    let trace = read_trace("harness", bytes, |e| errors.push(e.to_string()));
    prop_assert!(errors.is_empty(), "unreadable output: {errors:?}");
    Ok(check_trace(trace, options))
}

/// The request ids any span of client `id` may carry.
fn carries(span_id: &str, id: &str) -> bool {
    span_id == format!("chatcmpl-{id}")
        || span_id == format!("cmpl-{id}")
        || span_id.contains(&format!("chatcmpl-{id}-"))
        || span_id.contains(&format!("cmpl-{id}-"))
}

fn run(config: SchedulerConfig, actions: Vec<Action>) -> Result<(), TestCaseError> {
    let out = Shared::default();
    let writer = OtlpJsonWriter::new(out.clone(), 1);
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(writer.clone())
        .with_max_events_per_span(100_000)
        .with_id_generator(SeededIds::new(7))
        .build();
    let clock = SimClock::new(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600));
    let workload_base = Workload::new(config, Vec::new());
    let mut s = Scheduler::new(config).map_err(|e| TestCaseError::fail(e.to_string()))?;
    s.set_emitter(Some(
        Emitter::new(provider.tracer("vllm.scheduler")).with_clock(clock.clone()).with_profile(WireProfile::Head),
    ));
    let mut front = ApiFront::new(s, &workload_base)
        .with_tracer(provider.tracer(api_keys::SCOPE_NAME))
        .with_clock(clock.clone())
        .with_suffix_seed(3);
    // What the operations amount to, as a workload (for the final `--workload` check).
    let mut steps: Vec<Iteration> = vec![Iteration::default()];
    let mut clients: Vec<AddOp> = Vec::new();
    let mut accepted: Vec<(AddOp, bool)> = Vec::new();
    let mut failed = false;
    for (k, a) in actions.into_iter().enumerate() {
        let iteration = steps.len() - 1;
        let name =
            |pick: usize, clients: &[AddOp]| (!clients.is_empty()).then(|| clients[pick % clients.len()].id.clone());
        match a {
            Action::Add { chat, stream, n, prompts, max_tokens, sampled, traceparent } => {
                let id = format!("c{k}");
                let add = AddOp {
                    id: id.clone(),
                    prompt_len: prompts[0],
                    max_tokens,
                    traceparent: traceparent.then(|| format!("00-{:032x}-{:016x}-01", k + 1, k + 1)),
                    sampled: Some(sampled),
                    stream: Some(stream),
                    endpoint: Some(if chat { Endpoint::Chat } else { Endpoint::Completions }),
                    n: Some(n),
                    prompts: (!chat).then_some(prompts),
                    ..AddOp::default()
                };
                let op = steps[iteration].ops.len();
                match front.submit(iteration, op, &add) {
                    Ok(Submitted::Accepted { sampled: s }) => {
                        prop_assert_eq!(s, sampled);
                        accepted.push((add.clone(), false));
                    }
                    Ok(Submitted::Rejected) => {
                        prop_assert!(add.prompt_lens().iter().any(|p| p + max_tokens > config.max_model_len));
                        accepted.push((add.clone(), true));
                    }
                    // Too big for the KV cache alone: not a two-layer question.
                    Err(e) => return Err(TestCaseError::reject(e.to_string())),
                }
                clients.push(add.clone());
                steps[iteration].ops.push(Op::Add(add));
            }
            Action::Disconnect { pick } => {
                if let Some(id) = name(pick, &clients) {
                    front.disconnect(&id, false);
                    steps[iteration]
                        .ops
                        .push(Op::Finish(FinishOp { id: id.clone(), status: journey_spec::FinishReason::Aborted }));
                    let o = front.outcome(&id);
                    prop_assert!(o != Some(ApiOutcome::Open), "{}: open after a disconnect: {:?}", id, o);
                }
            }
            Action::Reset => {
                front.scheduler_mut().reset();
                steps[iteration].ops.push(Op::Reset);
            }
            Action::Fail { pick } => {
                if let Some(id) = name(pick, &clients) {
                    failed = true;
                    front.fail(&id);
                }
            }
            Action::Step { in_flight, eos } => {
                let in_flight: Vec<InFlight> = in_flight
                    .iter()
                    .filter_map(|&p| name(p, &clients))
                    .map(|id| InFlight::Finish(FinishOp { id, status: journey_spec::FinishReason::Aborted }))
                    .collect();
                let eos: Vec<String> = eos.iter().filter_map(|&p| name(p, &clients)).collect();
                let done = front.step(iteration, &in_flight, &eos).map_err(|e| TestCaseError::fail(e.to_string()))?;
                if done == journey_spec::Iterated::Stepped {
                    clock.advance(std::time::Duration::from_millis(5));
                }
                steps[iteration].in_flight = in_flight;
                steps[iteration].eos = eos;
                steps.push(Iteration::default());
            }
        }
        after_every_operation(&front, &out, &accepted)?;
    }
    // Drain as the workload runner would.
    let mut guard = 0;
    while front.scheduler().has_requests() || front.live() > 0 {
        let iteration = steps.len() - 1;
        let done = front.step(iteration, &[], &[]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if done == journey_spec::Iterated::Stepped {
            clock.advance(std::time::Duration::from_millis(5));
        }
        steps.push(Iteration::default());
        guard += 1;
        prop_assert!(guard < 10_000, "did not drain");
        after_every_operation(&front, &out, &accepted)?;
    }
    prop_assert_eq!(front.open_spans(), 0, "every client has its answer");
    prop_assert_eq!(front.scheduler().emitter().map(Emitter::live), Some(0), "no tracing state left");
    drop(front);
    let _ = provider.shutdown();
    // The whole run, declared complete, against what was asked for (a generation error is not
    // in the workload format, so such runs are checked as complete only).
    let expected = Expected {
        requests: accepted
            .iter()
            .map(|(a, rejected)| ExpectedRequest {
                id: a.id.clone(),
                sampled: a.sampled.unwrap_or(true),
                stream: a.stream,
                endpoint: a.endpoint(),
                n: u64::from(a.n.unwrap_or(1)),
                prompts: a.prompt_lens(),
                max_tokens: a.max_tokens,
                traceparent: a.traceparent.as_ref().map(|tp| (tp[3..35].to_owned(), tp[36..52].to_owned())),
                rejected: *rejected,
            })
            .collect(),
        two_layers: true,
    };
    let options = CheckOptions { complete: true, workload: (!failed).then_some(expected), ..CheckOptions::default() };
    let checked = check(&out.bytes(), &options)?;
    let v = violations(&checked);
    prop_assert!(v.is_empty(), "complete run: {:?}", v);
    Ok(())
}

fn after_every_operation(front: &ApiFront, out: &Shared, accepted: &[(AddOp, bool)]) -> Result<(), TestCaseError> {
    let checked = check(&out.bytes(), &CheckOptions::default())?;
    let v = violations(&checked);
    prop_assert!(v.is_empty(), "after an operation: {:?}", v);
    // Unsampled (and rejected) clients leave no span in either layer.
    let ids: Vec<String> = checked
        .journeys
        .iter()
        .filter_map(|j| j.request_id.clone())
        .chain(checked.api.iter().filter_map(|a| a.request_id.clone()))
        .collect();
    for (a, rejected) in accepted {
        if a.sampled == Some(false) || *rejected {
            let found = ids.iter().find(|i| carries(i, &a.id));
            prop_assert!(found.is_none(), "{} (unsampled or rejected) has span {:?}", a.id, found);
        }
    }
    // The emitter keeps state for sampled engine requests only.
    let s = front.scheduler();
    let sampled_live = s
        .waiting()
        .chain(s.running().iter().copied())
        .filter_map(|h| s.request(h))
        .filter(|r| r.trace().is_some_and(|t| t.journey_sampled))
        .count();
    prop_assert_eq!(s.emitter().map(Emitter::live), Some(sampled_live), "tracing state of unsampled requests");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn both_layers_stay_legal_after_every_operation(
        config in config(),
        actions in prop::collection::vec(action(), 1..40),
    ) {
        run(config, actions)?;
    }
}
