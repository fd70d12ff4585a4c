//! The command line as data: clap parses the arguments into these types, and nothing else.
//! A new subcommand is one more [`Command`] variant with its arguments struct, and one more arm
//! in `main.rs`'s dispatch.

use std::net::SocketAddr;
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

/// The EXIT STATUS section of `serve`.
pub const SERVE_EXIT_STATUS: &str = "\
EXIT STATUS (after SIGINT, SIGTERM or POST /shutdown):
  0  every journey received conforms (or is incomplete because its span dropped events)
  1  at least one journey violates a rule that is not allowed
  2  input was lost or unreadable: records shed (--max-pending) or late, request bodies that
     could not be decoded, fewer journeys than --expect-journeys; or a listener could not be
     bound. Lost input wins over violations, as for check.";

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
    /// Receive spans over OTLP (gRPC and HTTP) and check journeys as they arrive.
    ///
    /// Listens for OTLP/gRPC TraceService/Export (--grpc) and OTLP/HTTP POST /v1/traces
    /// (--http; protobuf or JSON; gzip accepted on both). The HTTP listener also serves
    /// GET /report (the `check --format json` object for everything decided so far, plus a
    /// `serve` object), GET /metrics (Prometheus text) and POST /shutdown. A span is decided
    /// --pending-timeout after its last record; at most --max-pending spans wait, and records of
    /// new spans beyond that are shed (counted, and the verdict becomes incomplete). On SIGINT,
    /// SIGTERM or POST /shutdown everything pending is decided and the final report is written
    /// (JSON, to stdout or --report).
    #[command(after_help = SERVE_EXIT_STATUS)]
    Serve(ServeArgs),
    /// Run the reference scheduler with the journey emitter on the OpenTelemetry SDK and write
    /// the spans as OTLP JSON Lines.
    ///
    /// Either replays a workload file exactly (--workload) or generates a seeded synthetic
    /// workload (--seed, --requests, ...; --workload-out saves it so the run can be replayed).
    /// Time is simulated: each step costs --step-ms plus --token-us per scheduled token, so the
    /// output is the same bytes for the same workload. A summary goes to stderr.
    Simulate(SimulateArgs),
    /// The one-command tour: simulate a busy default workload (preemptions, aborts), check every
    /// journey, print the summary and the timeline of the most-preempted request.
    Demo(DemoArgs),
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

/// `journey serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the OTLP/gRPC listener.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4317")]
    pub grpc: SocketAddr,
    /// Address of the OTLP/HTTP listener (also /report, /metrics, /shutdown).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4318")]
    pub http: SocketAddr,
    /// Write the final report here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write one JSON line per finding (violating or incomplete journey) as it is decided;
    /// `-` is standard output.
    #[arg(long, value_name = "FILE")]
    pub findings: Option<PathBuf>,
    /// Seconds a span waits after its last record before it is decided.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_seconds)]
    pub pending_timeout: f64,
    /// The most spans waiting to be decided; records of new spans beyond it are shed.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending: u64,
    /// Fail (exit status 2) when fewer journeys than this arrive.
    #[arg(long, value_name = "N")]
    pub expect_journeys: Option<u64>,
    /// Do not count violations of this rule (as for check); repeatable.
    #[arg(long = "allow", value_name = "RULE", value_parser = parse_rule)]
    pub allow: Vec<RuleId>,
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

/// The synthetic workload of `journey simulate` and `journey demo`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Seed of the generator: same seed and options, same workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Requests to generate.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Mean arrivals per engine iteration.
    #[arg(long, default_value_t = 0.25)]
    pub arrival_rate: f64,
    /// Median prompt length (log-normal).
    #[arg(long, default_value_t = 300)]
    pub prompt_median: u64,
    /// Median output length at which a request emits EOS (log-normal).
    #[arg(long, default_value_t = 60)]
    pub output_median: u64,
    /// Share of requests aborted or failed from outside.
    #[arg(long, default_value_t = 0.08)]
    pub abort_share: f64,
    /// Priority levels (priorities 0..N).
    #[arg(long, default_value_t = 1)]
    pub priorities: u32,
    /// Scheduling policy.
    #[arg(long, value_enum, default_value_t = PolicyArg::Fcfs)]
    pub policy: PolicyArg,
    /// Usable KV blocks.
    #[arg(long, default_value_t = 159)]
    pub num_blocks: usize,
    /// Tokens per KV block.
    #[arg(long, default_value_t = 16)]
    pub block_size: u64,
    /// Most running requests.
    #[arg(long, default_value_t = 32)]
    pub max_num_seqs: usize,
    /// Token budget per step.
    #[arg(long, default_value_t = 256)]
    pub max_num_batched_tokens: u64,
    /// Longest sequence.
    #[arg(long, default_value_t = 2048)]
    pub max_model_len: u64,
    /// Most tokens per request and step (0 = no limit).
    #[arg(long, default_value_t = 0)]
    pub long_prefill_token_threshold: u64,
    /// Turn chunked prefill off.
    #[arg(long)]
    pub no_chunked_prefill: bool,
}

/// Scheduling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// First come, first served.
    Fcfs,
    /// Lower priority value first.
    Priority,
}

/// `journey simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Replay this workload file exactly (the synthetic options are then not allowed).
    #[arg(long, value_name = "FILE", conflicts_with_all = SYNTH_OPTIONS)]
    pub workload: Option<PathBuf>,
    /// The synthetic workload.
    #[command(flatten)]
    pub synth: SynthArgs,
    /// Where to write the spans (OTLP JSON Lines); `-` is standard output.
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub out: PathBuf,
    /// Also write the workload that ran (replayable with --workload).
    #[arg(long, value_name = "FILE")]
    pub workload_out: Option<PathBuf>,
    /// Span event limit of the SDK provider (the SDK default, 128, cuts long journeys).
    #[arg(long, default_value_t = 1_000_000)]
    pub event_limit: u32,
    /// Seed of trace and span ids.
    #[arg(long, default_value_t = 0)]
    pub id_seed: u64,
    /// Modelled cost of a step, in milliseconds.
    #[arg(long, default_value_t = 8.0)]
    pub step_ms: f64,
    /// Modelled cost of a scheduled token, in microseconds.
    #[arg(long, default_value_t = 40.0)]
    pub token_us: f64,
}

/// The synthetic options, which `--workload` excludes.
const SYNTH_OPTIONS: [&str; 15] = [
    "seed",
    "requests",
    "arrival_rate",
    "prompt_median",
    "output_median",
    "abort_share",
    "priorities",
    "policy",
    "num_blocks",
    "block_size",
    "max_num_seqs",
    "max_num_batched_tokens",
    "max_model_len",
    "long_prefill_token_threshold",
    "no_chunked_prefill",
];

/// `journey demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The synthetic workload (defaults: a busy cache with preemptions and aborts).
    #[command(flatten)]
    pub synth: SynthArgs,
}

fn parse_rule(s: &str) -> Result<RuleId, String> {
    RuleId::lookup(s).ok_or_else(|| {
        let known: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown rule {s:?}: expected an id ({}) or a rule name (see `journey rules`)", known.join(", "))
    })
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!("{s:?} is out of range: expected seconds between 0 and 86400")),
        Err(e) => Err(format!("{s:?} is not a number of seconds: {e}")),
    }
}
