//! The `journey` command line: check OTLP JSON traces against the journey specification, draw
//! the timeline of one request, print the rule catalogue.
//!
//! ```text
//! journey check [--format text|json] [--allow RULE]... [--profile sync|async] [--complete] [--workload FILE] [--expect-journeys N] PATH...
//! journey timeline --request ID [--allow RULE]... PATH...
//! journey report [--out FILE] [--against PATH]... [--allow RULE]... [--profile sync] [--complete] PATH...
//! journey rules [--format text|json]
//! journey serve [--grpc ADDR] [--http ADDR] [--report FILE] [--findings FILE|-] [--pending-timeout S] [--max-pending N] [--expect-journeys N] [--profile sync|async] [--complete] [--workload FILE]
//! journey simulate [--workload FILE | --seed N --requests N ... [--api-sample-rate R]] [--wire-profile seed|head] [--out FILE] [--workload-out FILE]
//! journey explore --config FILE --depth N [--requests K] [--workload-out FILE]
//! journey demo [--seed N --requests N ...]
//! ```
//!
//! Findings go to stdout, diagnostics to stderr (every input problem as `path:line: message`).
//! The JSON report is specified in `journey_spec::otel::json`.
//!
//! # Exit status
//!
//! - 0: every journey conforms or is incomplete; also when stdout is closed early (broken pipe).
//! - 1: at least one journey violates a rule that is not allowed (`check`, `timeline`), or
//!   `explore` found a counterexample.
//! - 2: an input could not be read or parsed (the rest is still checked), an unknown request id
//!   (`timeline`), or a usage error. Input errors win over violations.
//!
//! The binary is glue: everything it reports is computed by `journey_spec::otel`.

mod cli;
mod expected;
mod explore;
mod input;
mod serve;
mod simulate;
mod status;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use journey_spec::model::{self, RuleId};
use journey_spec::otel::json::Report;
use journey_spec::otel::read::InputFormat;
use journey_spec::otel::report::{ReportOptions, RunData, write_html};
use journey_spec::otel::{CheckOptions, KeepEvents, ReadOptions, Summary, text};

use cli::{
    CheckArgs, Cli, ColorArg, Command, Format, InputArgs, InputFormatArg, ReportArgs, RuleArgs, RulesArgs, TimelineArgs,
};

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
        Command::Report(args) => report(args, &mut out)?,
        Command::Rules(args) => rules(args, &mut out)?,
        Command::Serve(args) => serve::run(args, &mut out)?,
        Command::Simulate(args) => simulate::run(args)?,
        Command::Explore(args) => explore::run(args, &mut out)?,
        Command::Demo(args) => simulate::demo(args, &mut out)?,
    };
    out.flush()?;
    Ok(code)
}

fn options(allow: &[RuleId]) -> CheckOptions {
    CheckOptions { allow: allow.iter().copied().collect(), ..CheckOptions::default() }
}

/// The check's options from the flags `check` and `serve` share; a named workload file is read
/// here, so both commands report a bad one the same way.
fn rule_options(rules: &RuleArgs) -> Result<CheckOptions, expected::WorkloadError> {
    let mut check = options(&rules.allow);
    check.profile = rules.profile.model();
    check.complete = rules.complete;
    // `parse_seconds` bounds it to a day, so the nanoseconds fit.
    check.horizon = Some((rules.horizon * 1e9) as u64);
    // `parse_facts_seconds` bounds it to 64 days, so the nanoseconds fit.
    check.facts_horizon = rules.facts_horizon.map(|s| (s * 1e9) as u64);
    if let Some(path) = &rules.workload {
        check.workload = Some(expected::read(path)?);
    }
    Ok(check)
}

fn reading(input: &InputArgs, allow: &[RuleId], keep: KeepEvents) -> input::Reading {
    let format = match input.input_format {
        InputFormatArg::Auto => InputFormat::Auto,
        InputFormatArg::Json => InputFormat::Json,
        InputFormatArg::Framed => InputFormat::Framed,
    };
    input::Reading {
        read: ReadOptions { format, max_record_bytes: input.max_record_bytes, ..ReadOptions::default() },
        check: options(allow),
        keep,
        window: input.window,
    }
}

fn check(args: CheckArgs, out: &mut dyn Write) -> io::Result<u8> {
    let mut reading = reading(&args.input, &args.rules.allow, KeepEvents::Violating);
    match rule_options(&args.rules) {
        Ok(check) => reading.check = check,
        Err(e) => {
            let _ = writeln!(io::stderr(), "journey: {e}");
            return Ok(ERROR);
        }
    }
    let allowed: Vec<RuleId> = reading.check.allow.iter().copied().collect();
    let mut summary = Summary::new();
    for path in &args.paths {
        let checked = input::check_input(path, &reading);
        summary.add(checked.trace, checked.errors);
        summary.add_problems(checked.problems);
    }
    let short = args.expect_journeys.filter(|&n| summary.journeys < n);
    if let Some(n) = short {
        let _ = writeln!(io::stderr(), "journey: expected at least {n} journeys, read {}", summary.journeys);
    }
    match args.format {
        Format::Text => {
            let mut text = Vec::new();
            let options = text::TextOptions { max_violations: args.max_violations };
            text::write_summary_with(&mut text, &summary, &allowed, &options)?;
            let mut text = String::from_utf8_lossy(&text).into_owned();
            let tty = io::stdout().is_terminal();
            if tty && let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size() {
                text = text::fit_width(&text, usize::from(w));
            }
            let color = match args.color {
                ColorArg::Always => true,
                ColorArg::Never => false,
                ColorArg::Auto => tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            };
            if color {
                text = text::colorize(&text);
            }
            out.write_all(text.as_bytes())?;
        }
        Format::Json => Report::new(&summary, allowed)
            .with_profile(reading.check.profile)
            .with_complete(args.rules.complete)
            .write(&mut *out)?,
    }
    Ok(if short.is_some() { ERROR } else { exit_status(&summary) })
}

fn report(args: ReportArgs, out: &mut dyn Write) -> io::Result<u8> {
    let mut reading = reading(&args.input, &args.allow, KeepEvents::All);
    reading.check.profile = args.profile.model();
    let options = reading.check.clone();
    let read = |paths: &[std::path::PathBuf]| {
        let mut run = RunData::new();
        for path in paths {
            let checked = input::check_input(path, &reading);
            run.add(checked.trace, checked.errors);
        }
        run
    };
    let run = read(&args.paths);
    let against = (!args.against.is_empty()).then(|| read(&args.against));
    let title = args.title.clone().unwrap_or_else(|| {
        let first = args.paths.first().map(|p| p.display().to_string()).unwrap_or_default();
        match args.against.first() {
            Some(b) => format!("journey report: {first} against {}", b.display()),
            None => format!("journey report: {first}"),
        }
    });
    let report_options = ReportOptions {
        title,
        allowed: options.allow.iter().copied().collect(),
        profile: args.profile.model().as_str().to_owned(),
        complete: args.complete,
    };
    let mut page = Vec::new();
    write_html(&mut page, &run, against.as_ref(), &report_options)?;
    if args.out.as_os_str() == "-" {
        out.write_all(&page)?;
    } else {
        if let Err(e) = std::fs::write(&args.out, &page) {
            let _ = writeln!(io::stderr(), "journey: cannot write {}: {e}", args.out.display());
            return Ok(ERROR);
        }
        let _ = writeln!(
            io::stderr(),
            "journey: wrote {} ({} bytes, {} journeys)",
            args.out.display(),
            page.len(),
            run.rows.len()
        );
    }
    Ok(exit_status(&run.summary))
}

/// The exit status of a check: input errors win over violations.
fn exit_status(summary: &Summary) -> u8 {
    if summary.input_errors > 0 || summary.behind_horizon > 0 {
        ERROR
    } else if summary.any_violation() {
        VIOLATION
    } else {
        SUCCESS
    }
}

fn timeline(args: TimelineArgs, out: &mut dyn Write) -> io::Result<u8> {
    let reading = reading(&args.input, &args.allow, KeepEvents::Request(args.request.clone()));
    let mut errors = 0;
    let mut shown = 0;
    let mut violating = false;
    let mut journeys = 0;
    let id = Some(args.request.as_str());
    for path in &args.paths {
        let input::Checked { trace: checked, errors: e, .. } = input::check_input(path, &reading);
        errors += e;
        journeys += checked.journey_count() + checked.api.len();
        // An API id: its span and its children. A core id: its API parent (when in the input)
        // and its journey.
        let mut apis: Vec<usize> =
            checked.api.iter().enumerate().filter(|(_, a)| a.request_id.as_deref() == id).map(|(i, _)| i).collect();
        let cores: Vec<&journey_spec::otel::JourneyReport> =
            checked.journeys.iter().filter(|j| j.request_id.as_deref() == id).collect();
        for j in &cores {
            if let Some(link) = &j.api_parent
                && !apis.contains(&link.index)
            {
                apis.push(link.index);
            }
        }
        let mut drawn: Vec<&str> = Vec::new();
        for a in apis {
            let Some(api) = checked.api.get(a) else { continue };
            let children: Vec<&journey_spec::otel::JourneyReport> =
                checked.journeys.iter().filter(|j| j.api_parent.as_ref().is_some_and(|l| l.index == a)).collect();
            let own: Vec<&journey_spec::otel::JourneyReport> = if api.request_id.as_deref() == id {
                children
            } else {
                children.into_iter().filter(|j| j.request_id.as_deref() == id).collect()
            };
            if shown > 0 {
                writeln!(out)?;
            }
            text::write_layers(out, &checked.source_name, api, &own)?;
            violating |= !api.verdict.violations().is_empty();
            shown += 1;
            for j in own {
                writeln!(out)?;
                text::write_timeline(out, &checked.source_name, j)?;
                violating |= !j.verdict.violations().is_empty();
                drawn.push(&j.span_id);
            }
        }
        for j in cores.into_iter().filter(|j| !drawn.contains(&j.span_id.as_str())) {
            if shown > 0 {
                writeln!(out)?;
            }
            text::write_timeline(out, &checked.source_name, j)?;
            if args.steps {
                writeln!(out)?;
                text::write_step_context(out, j, &checked.steps.summaries_kept, &checked.steps.snapshots_kept)?;
            }
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
                writeln!(
                    out,
                    "{:<4} {:<30} {:<6} {:<9} {}",
                    r.id.as_str(),
                    r.name,
                    r.layer.as_str(),
                    r.scope.as_str(),
                    r.statement
                )?;
            }
        }
    }
    Ok(SUCCESS)
}
