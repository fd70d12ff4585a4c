//! A fixed amount of scheduler work under one tracing configuration, for instruction counts
//! (`BENCHMARKS.md`, "Zero cost when off").
//!
//! ```sh
//! cargo build --release --example cost_probe [--no-default-features]
//! valgrind --tool=callgrind --toggle-collect='cost_probe::measured*' \
//!     target/release/examples/cost_probe <workload> <tracing>
//! ```
//!
//! Everything except the work itself (parsing, building the scheduler and the SDK pipeline,
//! warming the load up, dropping it all) happens outside `measured`, so counting only inside it
//! (`--toggle-collect`) leaves the setup out. Workloads:
//!
//! - `steady-<live>` (e.g. `steady-256`): 1000 engine iterations of a warmed-up steady load of
//!   `live` requests (`benches/support/steady.rs`), the legacy buffer drained after each.
//! - `kv-pressure`: the `kv_pressure` fixture replayed from its first step to the drain.
//! - `kv-pressure-async`: the same workload with `config.async_scheduling` on (`SPEC.md` §8.1):
//!   another run of the same requests (batch queue of depth 2, output placeholders).
//! - `preemption-cycles`: 6400 preemption cycles of one running request (`reset()`, then
//!   `schedule()`: PREEMPTED and SCHEDULED(RESUME)), in journeys of 64 cycles, as in
//!   `benches/emitter.rs`: 12,800 events plus 100 spans.
//!
//! Tracing: `off` (no emitter; the only choice when tracing is compiled out), `buffer-only`,
//! `sampled-out`, `sampled-out+buffer`, `recording`, `recording+buffer`
//! (`benches/support/tracing.rs`). Prints what it did, for the record.

#[path = "../benches/support/steady.rs"]
mod steady;
#[path = "../benches/support/traced.rs"]
mod traced;
#[cfg(feature = "tracing")]
#[path = "../benches/support/tracing.rs"]
mod tracing;

use std::hint::black_box;
use std::process::ExitCode;

use journey_spec::{Engine, FinishReason, Iterated, NewRequest, Scheduler, SchedulerConfig, Workload};
use steady::Steady;
use traced::traced;

const STEADY_ITERATIONS: usize = 1000;
const JOURNEYS: usize = 100;
const CYCLES: usize = 64;

enum Work {
    Steady(Steady),
    Replay(Engine, Workload),
    Cycles(Scheduler),
}

/// The counted part.
#[inline(never)]
fn measured(work: &mut Work) -> u64 {
    match work {
        Work::Steady(load) => {
            let mut finished = 0;
            for _ in 0..STEADY_ITERATIONS {
                finished += load.iterate() as u64;
                drain(load.scheduler_mut());
            }
            finished
        }
        // With no emitter there is nothing to drain: the probe's own check stays out of the count.
        Work::Replay(engine, w) if !has_emitter(engine.scheduler()) => {
            engine.run(w, |_, _, _| {}).map_or(0, |summary| summary.steps)
        }
        Work::Replay(engine, w) => engine.run(w, |_, _, s| drain(s)).map_or(0, |summary| summary.steps),
        Work::Cycles(s) => {
            for j in 0..JOURNEYS {
                let id = format!("c{j}");
                if s.add_request(NewRequest::new(id.as_str(), 16, 16)).is_err() {
                    return 0;
                }
                s.schedule();
                for _ in 0..CYCLES {
                    black_box(s.reset());
                    black_box(s.schedule());
                }
                s.finish_requests([id.as_str()], FinishReason::Aborted, None);
                drain(s);
            }
            (JOURNEYS * CYCLES) as u64
        }
    }
}

fn has_emitter(s: &Scheduler) -> bool {
    #[cfg(feature = "tracing")]
    return s.emitter().is_some();
    #[cfg(not(feature = "tracing"))]
    {
        let _ = s;
        false
    }
}

fn drain(s: &mut Scheduler) {
    #[cfg(feature = "tracing")]
    if let Some(e) = s.emitter_mut() {
        black_box(e.drain().len());
    }
    #[cfg(not(feature = "tracing"))]
    let _ = s;
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (workload, tracing_name) = match args.as_slice() {
        [w] => (w.as_str(), "off"),
        [w, t] => (w.as_str(), t.as_str()),
        _ => return usage(),
    };
    let config = if let Some(live) = workload.strip_prefix("steady-") {
        match live.parse() {
            Ok(live) if live > 0 => steady::config(live),
            _ => return usage(),
        }
    } else if workload == "kv-pressure" {
        kv_pressure().config
    } else if workload == "kv-pressure-async" {
        kv_pressure_async().config
    } else if workload == "preemption-cycles" {
        SchedulerConfig::default()
    } else {
        return usage();
    };
    let Ok(scheduler) = Scheduler::new(config) else { return usage() };
    let Some((scheduler, _provider)) = traced(scheduler, tracing_name) else { return usage() };

    let mut work = if workload.starts_with("steady-") {
        let mut load = Steady::new(scheduler, 1);
        for _ in 0..steady::WARM_UP {
            load.iterate();
            drain(load.scheduler_mut());
        }
        Work::Steady(load)
    } else if workload == "kv-pressure" {
        Work::Replay(Engine::new(scheduler), kv_pressure())
    } else if workload == "kv-pressure-async" {
        Work::Replay(Engine::new(scheduler), kv_pressure_async())
    } else {
        Work::Cycles(scheduler)
    };
    let units = measured(&mut work);
    let what = match &work {
        Work::Steady(_) => format!("{STEADY_ITERATIONS} iterations, {units} requests finished"),
        Work::Replay(_, w) => format!("{units} steps; {}", Done::of(w)),
        Work::Cycles(_) => format!("{units} preemption cycles"),
    };
    let compiled = if cfg!(feature = "tracing") { "compiled in" } else { "compiled out" };
    println!("cost_probe {workload}: {what}; tracing {compiled}, {tracing_name}");
    ExitCode::SUCCESS
}

/// The work a replay does, counted on a second, uncounted run of it: the units that the
/// instruction counts are normalised by (`BENCHMARKS.md`, "Async scheduling").
#[derive(Default)]
struct Done {
    /// `schedule()` calls.
    steps: u64,
    /// Requests given tokens, summed over the steps.
    request_steps: u64,
    /// Tokens scheduled, summed over the steps.
    tokens: u64,
    /// Preemptions by `schedule()`.
    preemptions: u64,
}

impl Done {
    fn of(w: &Workload) -> Done {
        let mut done = Done::default();
        let Ok(s) = Scheduler::new(w.config) else { return done };
        let run = Engine::new(s).run(w, |_, it, s| {
            if it == Iterated::Stepped {
                let out = s.last_step();
                done.steps += 1;
                done.request_steps += out.scheduled.len() as u64;
                done.tokens += out.total_tokens;
                done.preemptions += out.preempted.len() as u64;
            }
        });
        if run.is_err() {
            return Done::default();
        }
        done
    }
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "uncounted rerun: {} steps, {} scheduled request-steps, {} scheduled tokens, {} preemptions",
            self.steps, self.request_steps, self.tokens, self.preemptions
        )
    }
}

fn kv_pressure() -> Workload {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vllm/kv_pressure.workload.json");
    let text = std::fs::read_to_string(path).expect("fixture readable");
    Workload::from_json(&text).expect("fixture parses")
}

fn kv_pressure_async() -> Workload {
    let mut w = kv_pressure();
    w.config.async_scheduling = true;
    w
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: cost_probe steady-<live>|kv-pressure|kv-pressure-async|preemption-cycles \
         [off|buffer-only|sampled-out|sampled-out+buffer|recording|recording+buffer]"
    );
    ExitCode::from(2)
}
