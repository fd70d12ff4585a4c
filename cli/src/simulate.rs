//! `journey simulate` and `journey demo`: the reference scheduler with the emitter on the
//! OpenTelemetry SDK, its spans as OTLP JSON Lines.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use journey_spec::model::EventKind;
use journey_spec::otel::simulate::{SimulateOptions, SimulateProgress, SimulateStats, simulate};
use journey_spec::otel::{CheckOptions, Summary, check_trace, read_trace, text};
use journey_spec::synth::{
    ApiSampling, LengthDist, StepSampling, SynthError, SynthParams, generate, with_step_tracing,
};
use journey_spec::{ConfigError, Policy, SchedulerConfig, Workload};

use super::cli::{DemoArgs, PolicyArg, SimulateArgs, SynthArgs, WireProfileArg};
use super::status::StatusLine;
use super::{ERROR, SUCCESS};

fn params(a: &SynthArgs) -> SynthParams {
    let d = SynthParams::default();
    SynthParams {
        seed: a.seed,
        requests: a.requests,
        arrival_rate: a.arrival_rate,
        prompt_len: LengthDist { median: a.prompt_median as f64, ..d.prompt_len },
        output_len: LengthDist { median: a.output_median as f64, ..d.output_len },
        abort_share: a.abort_share,
        priorities: a.priorities,
        config: SchedulerConfig {
            max_num_seqs: a.max_num_seqs,
            max_num_batched_tokens: a.max_num_batched_tokens,
            block_size: a.block_size,
            num_blocks: a.num_blocks,
            max_model_len: a.max_model_len,
            long_prefill_token_threshold: a.long_prefill_token_threshold,
            enable_chunked_prefill: !a.no_chunked_prefill,
            policy: match a.policy {
                PolicyArg::Fcfs => Policy::Fcfs,
                PolicyArg::Priority => Policy::Priority,
            },
            async_scheduling: false,
        },
        api: a.api_sample_rate.map(|sample_rate| ApiSampling { sample_rate, stream_fraction: a.stream_fraction }),
        ..d
    }
}

/// The command-line flag of a synthetic-workload parameter or configuration field.
fn flag(field: &str) -> String {
    match field {
        "prompt_len.median" => "--prompt-median".to_owned(),
        "output_len.median" => "--output-median".to_owned(),
        "step_tracing.sample_rate" => "--step-tracing-sample-rate".to_owned(),
        "step_tracing.rich_subsample_rate" => "--step-tracing-rich-subsample-rate".to_owned(),
        "step_tracing.closure_interval" => "--step-tracing-closure-interval".to_owned(),
        "api.sample_rate" => "--api-sample-rate".to_owned(),
        "api.stream_fraction" => "--stream-fraction".to_owned(),
        _ => format!("--{}", field.replace('_', "-")),
    }
}

/// A generator error in terms of the flags that caused it.
fn synth_error(e: &SynthError) -> String {
    match e {
        SynthError::Param { field, value, expected } => format!("{} {value}: must be {expected}", flag(field)),
        SynthError::Config(ConfigError::TooSmall { field, value, min }) => {
            format!("{} {value}: must be at least {min}", flag(field))
        }
        SynthError::Config(ConfigError::TooLarge { field, value, max }) => {
            format!("{} {value}: must be at most {max}", flag(field))
        }
        SynthError::TooSparse { .. } => format!("--arrival-rate: {e}"),
        SynthError::EmptyLengths { .. }
        | SynthError::Config(ConfigError::BudgetBelowModelLen { .. })
        | SynthError::Engine(_) => format!("cannot generate the workload: {e}"),
    }
}

/// Reports an error on stderr; always the error exit status.
fn fail(what: impl std::fmt::Display) -> u8 {
    let _ = writeln!(io::stderr(), "journey: {what}");
    ERROR
}

/// The status line of a simulation.
fn progress(status: &mut StatusLine, p: SimulateProgress) {
    status.show(|| {
        let phase = if p.iterations <= p.planned { "replaying" } else { "draining" };
        format!("{phase}: iteration {} of {} planned, {} live", p.iterations, p.planned, p.live)
    });
}

fn options(a: &SimulateArgs) -> SimulateOptions {
    SimulateOptions {
        event_limit: a.event_limit,
        id_seed: a.id_seed,
        step_base: a.step_ms,
        step_per_token: a.token_us,
        wire_profile: match a.wire_profile {
            WireProfileArg::Seed => journey_spec::WireProfile::Seed,
            WireProfileArg::Head => journey_spec::WireProfile::Head,
        },
        ..SimulateOptions::default()
    }
}

fn describe(stats: &SimulateStats) -> String {
    format!(
        "{} requests, {} steps ({} iterations), {} preemptions, {:.1} s simulated; {} spans in {} lines, {} bytes",
        stats.requests,
        stats.steps,
        stats.iterations,
        stats.preemptions,
        stats.simulated.as_secs_f64(),
        stats.write.spans,
        stats.write.lines,
        stats.write.bytes
    )
}

/// The generated workload with step windows, when `--step-tracing-sample-rate` asks for them.
fn step_tracing(w: Workload, a: &SynthArgs) -> Result<Workload, SynthError> {
    match a.step_tracing_sample_rate {
        None => Ok(w),
        Some(sample_rate) => {
            let sampling = StepSampling {
                sample_rate,
                rich_subsample_rate: a.step_tracing_rich_subsample_rate,
                closure_interval: a.step_tracing_closure_interval,
            };
            with_step_tracing(w, a.seed, &sampling)
        }
    }
}

/// `journey simulate`.
pub fn run(args: SimulateArgs) -> io::Result<u8> {
    let workload = match &args.workload {
        Some(path) => match Workload::from_file(path) {
            Ok(w) => w,
            Err(e) => return Ok(fail(e)),
        },
        None => match generate(&params(&args.synth)).and_then(|w| step_tracing(w, &args.synth)) {
            Ok(w) => w,
            Err(e) => return Ok(fail(synth_error(&e))),
        },
    };
    if let Some(path) = &args.workload_out
        && let Err(e) = std::fs::write(path, workload.to_json() + "\n")
    {
        return Ok(fail(format_args!("{}: {e}", path.display())));
    }
    let out: Box<dyn Write + Send> = if args.out == Path::new("-") {
        Box::new(BufWriter::new(io::stdout()))
    } else {
        match File::create(&args.out) {
            Ok(f) => Box::new(BufWriter::new(f)),
            Err(e) => return Ok(fail(format_args!("{}: {e}", args.out.display()))),
        }
    };
    let mut status = StatusLine::new();
    match simulate(&workload, out, &options(&args), |p| progress(&mut status, p)) {
        Ok((mut out, stats)) => {
            out.flush()?;
            drop(status);
            let _ = writeln!(io::stderr(), "journey: simulated {}", describe(&stats));
            Ok(SUCCESS)
        }
        // A closed standard output is not an error (like ripgrep).
        Err(journey_spec::otel::simulate::SimulateError::Io(e)) => Err(e),
        // A run error of a workload file names the file.
        Err(e) => Ok(match &args.workload {
            Some(path) => fail(format_args!("{}: {e}", path.display())),
            None => fail(e),
        }),
    }
}

/// `journey demo`.
pub fn demo(args: DemoArgs, out: &mut dyn Write) -> io::Result<u8> {
    let params = params(&args.synth);
    let workload = match generate(&params) {
        Ok(w) => w,
        Err(e) => return Ok(fail(synth_error(&e))),
    };
    let c = params.config;
    writeln!(
        out,
        "Simulating {} requests on the reference scheduler (vLLM v1 semantics): {} KV blocks of {} tokens, \
         a {}-token budget, up to {} running, {} policy; journey events on OpenTelemetry spans.",
        params.requests, c.num_blocks, c.block_size, c.max_num_batched_tokens, c.max_num_seqs, c.policy
    )?;
    let mut status = StatusLine::new();
    let (bytes, stats) =
        match simulate(&workload, Vec::new(), &SimulateOptions::default(), |p| progress(&mut status, p)) {
            Ok(r) => r,
            Err(e) => return Ok(fail(e)),
        };
    drop(status);
    writeln!(out, "Simulated {}.", describe(&stats))?;
    writeln!(out, "Checking every journey against the specification (rules R1–R14):\n")?;
    let mut errors = 0;
    let trace = read_trace("demo", &bytes[..], |e| {
        errors += 1;
        let _ = writeln!(io::stderr(), "{e}");
    });
    let checked = check_trace(trace, &CheckOptions::default());
    let busiest = checked
        .journeys
        .iter()
        .max_by_key(|j| (j.events.iter().filter(|e| e.kind() == Some(EventKind::Preempted)).count(), j.events.len()))
        .cloned();
    let mut summary = Summary::new();
    summary.add(checked, errors);
    text::write_summary(out, &summary, &[])?;
    if let Some(j) = busiest {
        writeln!(out, "\nThe most-preempted request:\n")?;
        text::write_timeline(out, "demo", &j)?;
    }
    writeln!(
        out,
        "\nReproduce: journey simulate --seed {} --requests {} --out demo.otlp.jsonl && journey check demo.otlp.jsonl",
        params.seed, params.requests
    )?;
    Ok(super::exit_status(&summary))
}
