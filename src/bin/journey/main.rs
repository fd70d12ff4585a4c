//! The `journey` command line: check OTLP JSON traces against the journey specification, draw
//! the timeline of one request, print the rule catalogue.
//!
//! ```text
//! journey check [--format text|json] [--allow RULE]... PATH...
//! journey timeline --request ID [--allow RULE]... PATH...
//! journey rules [--format text|json]
//! journey serve [--grpc ADDR] [--http ADDR] [--report FILE] [--findings FILE|-] [--pending-timeout S] [--max-pending N] [--expect-journeys N]
//! journey simulate [--workload FILE | --seed N --requests N ...] [--out FILE] [--workload-out FILE]
//! journey demo [--seed N --requests N ...]
//! ```
//!
//! Findings go to stdout, diagnostics to stderr (every input problem as `path:line: message`).
//! The JSON report is specified in `journey_spec::otel::json`.
//!
//! # Exit status
//!
//! - 0: every journey conforms or is incomplete; also when stdout is closed early (broken pipe).
//! - 1: at least one journey violates a rule that is not allowed (`check`, `timeline`).
//! - 2: an input could not be read or parsed (the rest is still checked), an unknown request id
//!   (`timeline`), or a usage error. Input errors win over violations. For `serve`, also:
//!   records shed or late, fewer journeys than `--expect-journeys`, a listener not bound.
//!
//! The binary is glue: everything it reports is computed by `journey_spec::otel`.

mod cli;
mod input;
mod serve;
mod simulate;
mod status;

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;
use journey_spec::model::{self, RuleId};
use journey_spec::otel::json::Report;
use journey_spec::otel::{CheckOptions, Summary, text};

use cli::{CheckArgs, Cli, Command, Format, RulesArgs, TimelineArgs};

/// Exit status: no violation.
const SUCCESS: u8 = 0;
/// Exit status: a violation.
const VIOLATION: u8 = 1;
/// Exit status: an error (input, usage, unknown request).
const ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" that print to stdout and exit 0.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { ERROR } else { SUCCESS });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        // Like ripgrep: a reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(SUCCESS),
        Err(e) => {
            let _ = writeln!(io::stderr(), "journey: {e}");
            ExitCode::from(ERROR)
        }
    }
}

/// Runs a command; `Err` only for failures to write the output.
fn run(cli: Cli) -> io::Result<u8> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let code = match cli.command {
        Command::Check(args) => check(args, &mut out)?,
        Command::Timeline(args) => timeline(args, &mut out)?,
        Command::Rules(args) => rules(args, &mut out)?,
        Command::Serve(args) => serve::run(args, &mut out)?,
        Command::Simulate(args) => simulate::run(args)?,
        Command::Demo(args) => simulate::demo(args, &mut out)?,
    };
    out.flush()?;
    Ok(code)
}

fn options(allow: &[RuleId]) -> CheckOptions {
    CheckOptions { allow: allow.iter().copied().collect() }
}

fn check(args: CheckArgs, out: &mut dyn Write) -> io::Result<u8> {
    let options = options(&args.allow);
    let allowed: Vec<RuleId> = options.allow.iter().copied().collect();
    let mut summary = Summary::new();
    for path in &args.paths {
        let (checked, errors) = input::check_input(path, &options);
        summary.add(checked, errors);
    }
    match args.format {
        Format::Text => text::write_summary(out, &summary, &allowed)?,
        Format::Json => Report::new(&summary, allowed).write(&mut *out)?,
    }
    Ok(exit_status(&summary))
}

/// The exit status of a check: input errors win over violations.
fn exit_status(summary: &Summary) -> u8 {
    if summary.input_errors > 0 {
        ERROR
    } else if summary.violating > 0 {
        VIOLATION
    } else {
        SUCCESS
    }
}

fn timeline(args: TimelineArgs, out: &mut dyn Write) -> io::Result<u8> {
    let options = options(&args.allow);
    let mut errors = 0;
    let mut shown = 0;
    let mut violating = false;
    let mut journeys = 0;
    for path in &args.paths {
        let (checked, e) = input::check_input(path, &options);
        errors += e;
        journeys += checked.journeys.len();
        for j in checked.journeys.iter().filter(|j| j.request_id.as_deref() == Some(args.request.as_str())) {
            if shown > 0 {
                writeln!(out)?;
            }
            text::write_timeline(out, &checked.source_name, j)?;
            violating |= !j.verdict.violations().is_empty();
            shown += 1;
        }
    }
    if shown == 0 {
        out.flush()?;
        let inputs: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        let _ = writeln!(
            io::stderr(),
            "journey: no journey has request id {:?} in {} ({journeys} journeys read)",
            args.request,
            inputs.join(", ")
        );
        return Ok(ERROR);
    }
    Ok(if errors > 0 {
        ERROR
    } else if violating {
        VIOLATION
    } else {
        SUCCESS
    })
}

/// The catalogue as `journey rules --format json` prints it: `{"rules": [...]}`.
#[derive(serde::Serialize)]
struct Catalogue {
    rules: Vec<model::RuleInfo>,
}

fn rules(args: RulesArgs, out: &mut dyn Write) -> io::Result<u8> {
    match args.format {
        Format::Json => {
            serde_json::to_writer(&mut *out, &Catalogue { rules: model::catalogue().collect() })?;
            writeln!(out)?;
        }
        Format::Text => {
            for r in model::catalogue() {
                let scope = match r.scope {
                    model::Scope::Journey => "journey",
                    model::Scope::Wire => "wire",
                    model::Scope::Instance => "instance",
                };
                writeln!(out, "{:<4} {:<30} {:<9} {}", r.id.as_str(), r.name, scope, r.statement)?;
            }
        }
    }
    Ok(SUCCESS)
}
