//! What the scheduler costs (`BENCHMARKS.md`, "Scheduler cost" and "Scaling").
//!
//! - `scheduler/iteration/<live>`: one engine iteration of a steady load of `live` requests
//!   (`support/steady.rs`: every request decodes, finished requests are replaced, so the live
//!   count never changes), tracing compiled in but off. Measured at 16, 64, 256, 1024 and 4096.
//! - `scheduler/iteration-traced/256`: the same at 256 live requests, with recording spans on
//!   an SDK provider exporting to nowhere and the legacy buffer on (drained every iteration).
//! - `scheduler/replay/kv_pressure[-traced]`: the `kv_pressure` fixture (150 requests, 3796
//!   steps, 790 preemptions) replayed from a fresh scheduler, without and with tracing as
//!   above; throughput is in steps, so the time per step is the time per element.
//!
//! With `--no-default-features` (tracing compiled out) the untraced benchmarks still run.

#[path = "support/steady.rs"]
mod steady;
#[cfg(feature = "tracing")]
#[path = "support/tracing.rs"]
mod tracing;

use std::hint::black_box;
use std::time::Duration;

#[cfg(feature = "tracing")]
use criterion::BatchSize;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
#[cfg(feature = "tracing")]
use journey_spec::{Engine, Scheduler};
use journey_spec::{Workload, replay};
use steady::Steady;

/// Live request counts of the scaling table.
const LIVE: [usize; 5] = [16, 64, 256, 1024, 4096];

fn iteration(c: &mut Criterion) {
    let mut g = c.benchmark_group("scheduler/iteration");
    for live in LIVE {
        let mut load = Steady::warm(live, 1);
        g.bench_function(live.to_string(), |b| b.iter(|| black_box(load.iterate())));
        assert_eq!(load.scheduler().num_live() + load.due(), live, "the live count stays constant");
    }
    g.finish();
}

#[cfg(feature = "tracing")]
fn iteration_traced(c: &mut Criterion) {
    let mut g = c.benchmark_group("scheduler/iteration-traced");
    let live = 256;
    let mut s = Scheduler::new(steady::config(live)).expect("valid config");
    let _provider = tracing::Tracing::Recording { buffer: true }.attach(&mut s);
    let mut load = Steady::new(s, 1);
    let mut iterate = move || {
        let finished = load.iterate();
        if let Some(e) = load.scheduler_mut().emitter_mut() {
            black_box(e.drain().len());
        }
        finished
    };
    for _ in 0..steady::WARM_UP {
        iterate();
    }
    g.bench_function(live.to_string(), |b| b.iter(|| black_box(iterate())));
    g.finish();
}

#[cfg(not(feature = "tracing"))]
fn iteration_traced(_: &mut Criterion) {}

fn kv_pressure() -> Workload {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vllm/kv_pressure.workload.json");
    let text = std::fs::read_to_string(path).expect("fixture readable");
    Workload::from_json(&text).expect("fixture parses")
}

fn replay_fixture(c: &mut Criterion) {
    let w = kv_pressure();
    let (_, summary) = replay(&w).expect("fixture drains");
    let mut g = c.benchmark_group("scheduler/replay");
    g.throughput(Throughput::Elements(summary.steps));
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("kv_pressure", |b| b.iter(|| black_box(replay(&w).expect("fixture drains").1)));

    #[cfg(feature = "tracing")]
    g.bench_function("kv_pressure-traced", |b| {
        b.iter_batched(
            || {
                let mut s = Scheduler::new(w.config).expect("valid config");
                let provider = tracing::Tracing::Recording { buffer: true }.attach(&mut s);
                (Engine::new(s), provider)
            },
            |(mut engine, provider)| {
                let summary = engine.run(&w, |_, _, s| {
                    if let Some(e) = s.emitter_mut() {
                        black_box(e.drain().len());
                    }
                });
                // Dropped outside the timing: the scheduler, the emitter and the provider.
                (engine, provider, summary.expect("fixture drains"))
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

criterion_group!(benches, iteration, iteration_traced, replay_fixture);
criterion_main!(benches);
