//! What a step window costs per step (`BENCHMARKS.md`, "Step windows"): one `schedule()` plus
//! `update_from_output()` of a steady decode batch (16 running requests), with the step tracer
//! on a recording SDK provider exporting to nowhere, in one run:
//!
//! - `steps/step/off`: no step tracer (one branch per `schedule()`).
//! - `steps/step/unsummarized`: a tracer whose sampled steps never come (the clock read and the
//!   closure count only).
//! - `steps/step/summarized`: every step emits a `step.BATCH_SUMMARY`; windows close every 100
//!   steps and are exported.
//! - `steps/step/rich`: every step also emits one `step.REQUEST_SNAPSHOT` per running request.
//!
//! The journey emitter is off throughout: the figures are the step tracer's alone.

#[path = "support/tracing.rs"]
mod tracing;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use journey_spec::{NewRequest, Scheduler, SchedulerConfig, Share, StepTracer, StepTracing};
use opentelemetry::trace::TracerProvider as _;

/// Steps the sampled sets cover: more than a run of the group takes (checked).
const COVERED: u64 = 1 << 23;

fn scheduler(settings: Option<StepTracing>) -> (Scheduler, opentelemetry_sdk::trace::SdkTracerProvider) {
    let config = SchedulerConfig { max_num_seqs: 16, ..SchedulerConfig::default() };
    let mut s = Scheduler::new(config).expect("valid config");
    let provider = tracing::recording_provider();
    if let Some(settings) = settings {
        s.set_step_tracer(Some(StepTracer::new(provider.tracer("vllm.scheduler.step"), settings)));
    }
    (s, provider)
}

fn settings(summary: bool, rich: bool) -> StepTracing {
    let all: Vec<u64> = (1..=COVERED).collect();
    StepTracing {
        sample_rate: Share::new(if summary { 1.0 } else { 0.0 }).unwrap(),
        rich_subsample_rate: Share::new(if rich { 1.0 } else { 0.0 }).unwrap(),
        closure_interval: 100,
        summary_steps: if summary { all.clone() } else { Vec::new() },
        rich_steps: if rich { all } else { Vec::new() },
    }
}

fn step(c: &mut Criterion) {
    let mut g = c.benchmark_group("steps/step");
    g.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    let variants: [(&str, Option<StepTracing>); 4] = [
        ("off", None),
        ("unsummarized", Some(settings(false, false))),
        ("summarized", Some(settings(true, false))),
        ("rich", Some(settings(true, true))),
    ];
    for (name, settings) in variants {
        let (mut s, _provider) = scheduler(settings);
        let mut next = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                // Keep 16 requests decoding: a finished one is replaced before the step.
                while s.num_live() < 16 {
                    s.add_request(NewRequest::new(format!("r{next}").as_str(), 16, 2000)).expect("fits");
                    next += 1;
                }
                black_box(s.schedule());
                black_box(s.update_from_output(|_| false));
            });
        });
        assert!(s.step().0 < COVERED, "{name}: the run outgrew the sampled steps");
    }
    g.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
