//! The command line as data: clap parses the arguments into these types, and nothing else.
//! A new subcommand is one more [`Command`] variant with its arguments struct, and one more arm
//! in `main.rs`'s dispatch.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use journey_spec::model::RuleId;

/// The EXIT STATUS section shared by the top-level help and `check`'s.
pub const EXIT_STATUS: &str = "\
EXIT STATUS:
  0  every journey conforms (or is incomplete); also when stdout is closed early (broken pipe)
  1  at least one journey violates a rule that is not allowed
  2  an input could not be read or parsed (every problem is reported on stderr as
     path:line: message, and the rest of the input is still checked), an unknown request id
     (timeline), or a usage error";

/// Checks request journeys of an LLM serving scheduler, as traced on OpenTelemetry spans,
/// against the journey specification (rules R1–R14).
#[derive(Debug, Parser)]
#[command(name = "journey", version, about, after_help = EXIT_STATUS)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every journey in OTLP JSON trace files.
    ///
    /// Input: what an OpenTelemetry Collector's file exporter writes (one ExportTraceServiceRequest
    /// or TracesData per line, in any order), or one pretty-printed JSON document. Spans with
    /// journey.* events are journeys; the same span on several lines is merged; the journeys of
    /// one file that share a resource form one scheduler instance (rules R13, R14).
    #[command(after_help = EXIT_STATUS)]
    Check(CheckArgs),
    /// Draw the journey of one request as a timeline.
    ///
    /// One line per event: step, time since QUEUED, Δt, event, state after it, progress, and a
    /// bar on a common time axis (preemptions ▼ and the first token ★ stand out), then the whole
    /// journey on one lane. Exits 0 when shown and conforming or incomplete, 1 when shown and
    /// violating, 2 when no journey has the request id.
    #[command(after_help = EXIT_STATUS)]
    Timeline(TimelineArgs),
    /// Print the rule catalogue (R1 … R14): id, name, scope, statement.
    Rules(RulesArgs),
}

/// How to print findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// For people: may change between versions.
    #[default]
    Text,
    /// One JSON object: the stable contract for scripts (new fields may appear).
    Json,
}

/// `journey check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Do not count violations of this rule (id such as R7, or name such as time-order); repeatable.
    #[arg(long = "allow", value_name = "RULE", value_parser = parse_rule)]
    pub allow: Vec<RuleId>,
    /// Trace files (OTLP JSON); `-` reads standard input.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
}

/// `journey timeline`.
#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// The request id (span attribute gen_ai.request.id).
    #[arg(long = "request", value_name = "ID")]
    pub request: String,
    /// Do not count violations of this rule (as for check); repeatable.
    #[arg(long = "allow", value_name = "RULE", value_parser = parse_rule)]
    pub allow: Vec<RuleId>,
    /// Trace files (OTLP JSON); `-` reads standard input.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
}

/// `journey rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

fn parse_rule(s: &str) -> Result<RuleId, String> {
    RuleId::lookup(s).ok_or_else(|| {
        let known: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown rule {s:?}: expected an id ({}) or a rule name (see `journey rules`)", known.join(", "))
    })
}
