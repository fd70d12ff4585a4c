//! Simulated serving throughput and memory over a long run (`BENCHMARKS.md`, "Scaling").
//!
//! ```sh
//! cargo build --release --example throughput
//! /usr/bin/time -v target/release/examples/throughput [requests] [live] [tracing]
//! ```
//!
//! Runs the steady load of `benches/support/steady.rs` (`live` requests at all times, 256 by
//! default; every finished request replaced) until `requests` requests (10⁶ by default) have
//! finished, under one tracing configuration of `benches/support/tracing.rs` (`off` by
//! default; `recording+buffer` is the default emitter on an SDK pipeline exporting to nowhere,
//! its legacy buffer drained after every iteration as an engine would). Prints, every tenth of
//! the run, the requests finished, the iterations, the resident memory (`VmRSS`) and the
//! throughput of that tenth; then the totals and the peak resident memory (`VmHWM`).

#[path = "../benches/support/steady.rs"]
mod steady;
#[path = "../benches/support/traced.rs"]
mod traced;
#[cfg(feature = "tracing")]
#[path = "../benches/support/tracing.rs"]
mod tracing;

use std::process::ExitCode;
use std::time::Instant;

use journey_spec::Scheduler;
use steady::Steady;
use traced::traced;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| args.get(i).map_or(Some(default), |a| a.replace('_', "").parse().ok());
    let (Some(requests), Some(live)) = (number(0, 1_000_000), number(1, 256)) else { return usage() };
    let tracing_name = args.get(2).map_or("off", String::as_str);
    if requests == 0 || live == 0 {
        return usage();
    }
    let Ok(scheduler) = Scheduler::new(steady::config(live as usize)) else { return usage() };
    let Some((scheduler, _provider)) = traced(scheduler, tracing_name) else { return usage() };

    println!("throughput: {requests} requests, {live} live, tracing {tracing_name}");
    println!("{:>10} {:>10} {:>9} {:>12} {:>12}", "finished", "iterations", "rss_mib", "steps/s", "requests/s");
    let start = Instant::now();
    let mut load = Steady::new(scheduler, 1);
    let (mut finished, mut iterations) = (0u64, 0u64);
    let (mut mark, mut mark_finished, mut mark_iterations) = (start, 0u64, 0u64);
    let tenth = requests.div_ceil(10);
    while finished < requests {
        finished += load.iterate() as u64;
        iterations += 1;
        drain(load.scheduler_mut());
        if finished >= mark_finished + tenth || finished >= requests {
            let dt = mark.elapsed().as_secs_f64();
            println!(
                "{finished:>10} {iterations:>10} {:>9.1} {:>12.0} {:>12.0}",
                kib("VmRSS") as f64 / 1024.0,
                (iterations - mark_iterations) as f64 / dt,
                (finished - mark_finished) as f64 / dt
            );
            (mark, mark_finished, mark_iterations) = (Instant::now(), finished, iterations);
        }
    }
    let dt = start.elapsed().as_secs_f64();
    println!(
        "total: {finished} requests in {iterations} iterations, {dt:.2} s: {:.0} steps/s, {:.0} requests/s; \
         peak RSS {:.1} MiB",
        iterations as f64 / dt,
        finished as f64 / dt,
        kib("VmHWM") as f64 / 1024.0
    );
    ExitCode::SUCCESS
}

/// A `kB` field of `/proc/self/status` (0 where there is none).
fn kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

fn drain(s: &mut Scheduler) {
    #[cfg(feature = "tracing")]
    if let Some(e) = s.emitter_mut() {
        e.drain();
    }
    #[cfg(not(feature = "tracing"))]
    let _ = s;
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: throughput [requests (1000000)] [live (256)] \
         [off|buffer-only|sampled-out|sampled-out+buffer|recording|recording+buffer]"
    );
    ExitCode::from(2)
}
