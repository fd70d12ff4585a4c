//! What one journey event costs (`BENCHMARKS.md`, "Emitter cost"), through the public scheduler
//! API, under every tracing configuration of `support/tracing.rs`.
//!
//! - `emitter/event/<tracing>`: one iteration is one preemption cycle of a running request:
//!   `reset()` emits PREEMPTED, the next `schedule()` admits it again with SCHEDULED(RESUME):
//!   two events. A journey runs [`CYCLES`] cycles, so its span holds 131 events (QUEUED,
//!   SCHEDULED(FIRST), the cycles, FINISHED), about as many as the most preempted request of
//!   the `kv_pressure` fixture has ever had, and 3 more than the SDK's default event limit,
//!   which the recording provider raises. Timed: the cycles and the draining of the legacy
//!   buffer. Not timed: adding the request (the span starts) and finishing it (the span ends
//!   and is exported), which `emitter/request` measures. With tracing `off` the figure is the
//!   scheduler's own work for the two calls; subtracting it gives the emitter's share.
//! - `emitter/request/<tracing>`: a whole short journey, span included: `add_request`
//!   (QUEUED), `schedule()` (SCHEDULED(FIRST)), `update_from_output` with an EOS token
//!   (FIRST_TOKEN, FINISHED(stopped)), the legacy buffer drained.
//!
//! - `emitter/profile/event/<seed|head>`: the preemption cycle of `emitter/event` on a
//!   recording span without the legacy buffer, under the `seed` and the `head` wire profile
//!   (`ts.monotonic_ns` from the same clock read, the sampling header set), in the same run.
//! - `emitter/profile/request/<off|head-unsampled|head-sampled>`: the short journey of
//!   `emitter/request` with no emitter, and under `head` for a request without the sampling
//!   header (no span, no state: the gate's one header lookup) and with it.
//!
//! Events carry the system clocks' readings, as in production.

#[path = "support/tracing.rs"]
mod tracing;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use journey_spec::{Emitter, FinishReason, NewRequest, Scheduler, SchedulerConfig, WireProfile};
use opentelemetry::trace::TracerProvider as _;
use tracing::Tracing;

/// Preemption cycles per journey in `emitter/event`.
const CYCLES: u64 = 64;

fn drain(s: &mut Scheduler) {
    if let Some(e) = s.emitter_mut() {
        black_box(e.drain().len());
    }
}

/// How [`preemption_cycles`] runs: `Drained` drains the legacy buffer inside the timing (the
/// `emitter/event` rows); `Sampled` marks each request with the sampling header and has no
/// buffer to drain (the `emitter/profile/event` rows).
#[derive(Clone, Copy, PartialEq)]
enum Cycles {
    Drained,
    Sampled,
}

/// `iters` preemption cycles of running requests, `reset()` (PREEMPTED) then `schedule()`
/// (SCHEDULED(RESUME)), at most `CYCLES` per journey; each journey is aborted after its cycles.
/// Returns the time of the cycles alone.
fn preemption_cycles(s: &mut Scheduler, journeys: &mut u64, iters: u64, how: Cycles) -> Duration {
    let mut timed = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let id = format!("e{journeys}");
        *journeys += 1;
        let request = NewRequest::new(id.as_str(), 16, 16);
        let request = if how == Cycles::Sampled { request.journey_sampled(true) } else { request };
        s.add_request(request).expect("fits");
        s.schedule();
        let n = CYCLES.min(iters - done);
        let start = Instant::now();
        for _ in 0..n {
            black_box(s.reset());
            black_box(s.schedule());
        }
        if how == Cycles::Drained {
            drain(s);
        }
        timed += start.elapsed();
        s.finish_requests([id.as_str()], FinishReason::Aborted, None);
        if how == Cycles::Drained {
            drain(s);
        }
        done += n;
    }
    timed
}

fn event(c: &mut Criterion) {
    let mut g = c.benchmark_group("emitter/event");
    g.throughput(Throughput::Elements(2));
    for tracing in Tracing::ALL {
        let mut s = Scheduler::new(SchedulerConfig::default()).expect("valid config");
        let _provider = tracing.attach(&mut s);
        let mut journeys = 0u64;
        g.bench_function(tracing.name(), |b| {
            b.iter_custom(|iters| preemption_cycles(&mut s, &mut journeys, iters, Cycles::Drained));
        });
        assert_eq!(s.num_live(), 0);
        assert_eq!(s.emitter().map_or(0, |e| e.live()), 0, "{}: tracing state leaked", tracing.name());
    }
    g.finish();
}

fn request(c: &mut Criterion) {
    let mut g = c.benchmark_group("emitter/request");
    g.throughput(Throughput::Elements(1));
    for tracing in Tracing::ALL {
        let mut s = Scheduler::new(SchedulerConfig::default()).expect("valid config");
        let _provider = tracing.attach(&mut s);
        let mut n = 0u64;
        g.bench_function(tracing.name(), |b| {
            b.iter(|| {
                n += 1;
                s.add_request(NewRequest::new(format!("r{n}"), 16, 16)).expect("fits");
                black_box(s.schedule());
                black_box(s.update_from_output(|_| true));
                drain(&mut s);
            });
        });
        assert_eq!(s.num_live(), 0);
        assert_eq!(s.emitter().map_or(0, |e| e.live()), 0, "{}: tracing state leaked", tracing.name());
    }
    g.finish();
}

/// A scheduler with a recording emitter without the buffer, under `profile`.
fn profiled(profile: WireProfile) -> (Scheduler, opentelemetry_sdk::trace::SdkTracerProvider) {
    let mut s = Scheduler::new(SchedulerConfig::default()).expect("valid config");
    let p = tracing::recording_provider();
    s.set_emitter(Some(Emitter::new(p.tracer("vllm.scheduler")).with_legacy_buffer(false).with_profile(profile)));
    (s, p)
}

fn profile(c: &mut Criterion) {
    let mut g = c.benchmark_group("emitter/profile/event");
    g.throughput(Throughput::Elements(2));
    for profile in [WireProfile::Seed, WireProfile::Head] {
        let (mut s, _provider) = profiled(profile);
        let mut journeys = 0u64;
        g.bench_function(profile.as_str(), |b| {
            b.iter_custom(|iters| preemption_cycles(&mut s, &mut journeys, iters, Cycles::Sampled));
        });
        assert_eq!(s.emitter().map_or(0, |e| e.live()), 0, "{}: tracing state leaked", profile.as_str());
    }
    g.finish();

    let mut g = c.benchmark_group("emitter/profile/request");
    g.throughput(Throughput::Elements(1));
    for (name, emitter, sampled) in
        [("off", false, false), ("head-unsampled", true, false), ("head-sampled", true, true)]
    {
        let (mut s, _provider) = profiled(WireProfile::Head);
        if !emitter {
            s.set_emitter(None);
        }
        let mut n = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                s.add_request(NewRequest::new(format!("r{n}"), 16, 16).journey_sampled(sampled)).expect("fits");
                black_box(s.schedule());
                black_box(s.update_from_output(|_| true));
            });
        });
        assert_eq!(s.num_live(), 0);
        assert_eq!(s.emitter().map_or(0, |e| e.live()), 0, "{name}: tracing state leaked");
    }
    g.finish();
}

criterion_group!(benches, event, request, profile);
criterion_main!(benches);
