//! The command line as data: clap parses the arguments into these types, and nothing else.
//! A new subcommand is one more [`Command`] variant with its arguments struct, and one more arm
//! in `main.rs`'s dispatch.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use journey_spec::model::RuleId;
use journey_spec::otel::CheckOptions;

/// The EXIT STATUS section shared by the top-level help and `check`'s.
pub const EXIT_STATUS: &str = "\
EXIT STATUS:
  0  every journey conforms (or is incomplete); also when stdout is closed early (broken pipe)
  1  at least one journey violates a rule that is not allowed; explore: a counterexample
  2  an input could not be read or parsed (every problem is reported on stderr as
     path:line: message, and the rest of the input is still checked), fewer journeys than
     --expect-journeys, an unknown request id (timeline), or a usage error";

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
    /// Check every journey in OTLP trace files.
    ///
    /// Input: what an OpenTelemetry Collector's file exporter writes: JSON Lines (one
    /// ExportTraceServiceRequest or TracesData per line, in any order), one pretty-printed JSON
    /// document, length-framed protobuf records (format: proto), zstd or gzip compression,
    /// detected from the content; a directory of rotated files is one input. Spans with
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
    /// Write one self-contained HTML page of a check: every journey as a lane over time, the
    /// load, the distributions, the violations with their timelines.
    ///
    /// The page is built from the same check as `journey check` (same numbers) and needs
    /// nothing else to be opened: styles, scripts and data are inline, it works from file://.
    /// With --against, a second run of the same workload is compared request by request.
    /// Exits as `check` does on the inputs given as PATH; the page is written either way.
    #[command(after_help = EXIT_STATUS)]
    Report(ReportArgs),
    /// Print the rule catalogue (R1 … R14, C2, C3, W1, A1 … A4, X1 … X6): id, name, layer,
    /// scope, statement.
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
    /// Explore every sequence of operations up to a depth on a configuration, breadth first.
    ///
    /// The configuration file is JSON: {"name": ..., "scheduler": {the workload config},
    /// "shapes": [{"prompt_len": 3, "max_tokens": 2, "priority": 0}], "max_requests": 3}.
    /// Operations: add a request of each shape, a step with every EOS choice and every in-flight
    /// abort, finish each live request with each external reason, finish a finished or unknown
    /// id, reset. Every state is checked (scheduler invariants, emitted journeys against the
    /// model, traced and untraced decisions equal) and drained. Exits 1 with the shortest
    /// counterexample when a property breaks.
    #[command(after_help = EXIT_STATUS)]
    Explore(ExploreArgs),
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

/// How to read the inputs of `check` and `timeline`.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Input format: auto detects JSON, length-framed protobuf records and zstd/gzip from the
    /// first bytes; json and framed force one.
    #[arg(long, value_enum, default_value_t = InputFormatArg::Auto)]
    pub input_format: InputFormatArg,
    /// The longest line, document or record read (after decompression); a longer one is an
    /// error that ends its input.
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20)]
    pub max_record_bytes: usize,
    /// Spans held in memory at once; beyond it the least recently touched are checked and let
    /// go (a later record of such a span is reported).
    #[arg(long, value_name = "SPANS", default_value_t = 4096)]
    pub window: usize,
}

/// `--input-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormatArg {
    /// From the first bytes.
    Auto,
    /// OTLP JSON (JSON Lines or documents).
    Json,
    /// 4-byte big-endian length-framed records (protobuf or JSON, possibly compressed).
    Framed,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// When stdout is a terminal (and NO_COLOR is not set).
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The options `journey check` and `journey serve` share: which rules count, under which
/// profile, and what the input is checked against. One struct, so the two commands cannot drift.
#[derive(Debug, Args)]
pub struct RuleArgs {
    /// Do not count violations of this rule (id such as R7, or name such as time-order); repeatable.
    #[arg(long = "allow", value_name = "RULE", value_parser = parse_rule)]
    pub allow: Vec<RuleId>,
    /// The scheduling profile that produced the journeys (`async`: late outputs in Preempted
    /// are legal, SPEC.md §11).
    #[arg(long, value_enum, default_value_t = Profile::Sync)]
    pub profile: Profile,
    /// Declare the input complete: it holds every span of every request of the run (nothing
    /// sampled out, nothing lost; SPEC.md §10). Then a sampled API span without its core child,
    /// or a core span without its API parent, is a violation (X5) instead of counted as unpaired,
    /// and step windows' counts (S3) compare for equality.
    #[arg(long)]
    pub complete: bool,
    /// Check the trace against the workload file that produced it (SPEC.md §10): every request
    /// present unless unsampled, the client's traceparent on its top span, prompt lengths and
    /// caps against the journeys' totals.
    #[arg(long, value_name = "FILE")]
    pub workload: Option<PathBuf>,
    /// How far back in trace time (seconds) the relations between spans stay open: a span's
    /// relations (R13, R14, the cross-layer pairs) are decided, and what is kept of it let go,
    /// once the latest span end seen is this far past its end (spans still held are checked
    /// against it first). A span that starts before that and arrives later may relate to one
    /// let go: it is counted as behind the horizon, and the check is incomplete (exit 2). Set it
    /// above the longest journey to check every relation. Ignored with --workload.
    #[arg(long, value_name = "SECONDS", default_value_t = CheckOptions::DEFAULT_HORIZON_NS as f64 / 1e9, value_parser = parse_seconds)]
    pub horizon: f64,
    /// How far back in trace time (seconds) the facts of the spans let go behind the horizon
    /// stay (default: 64 horizons, 38400 with the default horizon): a span arriving behind the
    /// horizon is still checked against what R13, R14 and the cross-layer pairs need of them (a
    /// few words per span and step), until the latest span end seen is this far past their
    /// letting go. A span that starts before what was dropped ended is counted as behind the
    /// horizon (exit 2). It bounds memory by the spans of the last facts horizon; set it above
    /// the longest journey to check every relation. At most 64 days.
    #[arg(long, value_name = "SECONDS", value_parser = parse_facts_seconds)]
    pub facts_horizon: Option<f64>,
}

/// `journey check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Which rules apply, and to what (shared with `journey serve`).
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Fail (exit 2) when fewer journeys than this were read, over all inputs.
    #[arg(long, value_name = "N")]
    pub expect_journeys: Option<u64>,
    /// Show at most this many violating journeys in the text output (all are counted).
    #[arg(long, value_name = "N")]
    pub max_violations: Option<usize>,
    /// Colour in the text output.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// How to read the inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Trace files (OTLP JSON Lines or documents, length-framed protobuf, zstd or gzip), or
    /// directories or globs of rotated files (read in name order as one input); `-` reads
    /// standard input.
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
    /// Which rules apply, and to what (as for check).
    #[command(flatten)]
    pub rules: RuleArgs,
}

/// `journey timeline`.
#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// The request id (span attribute gen_ai.request.id) of either layer: an API id
    /// (`chatcmpl-…`) draws its span and its core children, a core id its journey and its API
    /// parent.
    #[arg(long = "request", value_name = "ID")]
    pub request: String,
    /// Also show the step windows' summaries (and the request's snapshots) at the journey's
    /// steps (`SPEC.md` §12).
    #[arg(long)]
    pub steps: bool,
    /// Do not count violations of this rule (as for check); repeatable.
    #[arg(long = "allow", value_name = "RULE", value_parser = parse_rule)]
    pub allow: Vec<RuleId>,
    /// How to read the inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Trace files, directories or globs (as for check); `-` reads standard input.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
}

/// The checking profile (`SPEC.md` §10): never inferred from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Profile {
    /// The synchronous engine.
    #[default]
    Sync,
    /// Async scheduling (`SPEC.md` §11): late outputs in Preempted are legal.
    Async,
}

impl Profile {
    /// The model's profile.
    pub fn model(self) -> journey_spec::model::Profile {
        match self {
            Profile::Sync => journey_spec::model::Profile::Sync,
            Profile::Async => journey_spec::model::Profile::Async,
        }
    }
}

/// `journey report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where to write the page; `-` is standard output.
    #[arg(long, value_name = "FILE", default_value = "report.html")]
    pub out: PathBuf,
    /// A second run of the same workload to compare with (repeatable: its inputs together).
    #[arg(long, value_name = "PATH")]
    pub against: Vec<PathBuf>,
    /// Do not count violations of this rule (as for check); repeatable.
    #[arg(long = "allow", value_name = "RULE", value_parser = parse_rule)]
    pub allow: Vec<RuleId>,
    /// The scheduling profile the journeys are checked under (as for check); shown on the page.
    #[arg(long, value_enum, default_value_t = Profile::Sync)]
    pub profile: Profile,
    /// Declare the input complete (every span of every request); shown on the page.
    #[arg(long)]
    pub complete: bool,
    /// The page's title (default: the first input's name).
    #[arg(long)]
    pub title: Option<String>,
    /// How to read the inputs.
    #[command(flatten)]
    pub input: InputArgs,
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
    #[arg(long, default_value_t = 0.25, allow_negative_numbers = true)]
    pub arrival_rate: f64,
    /// Median prompt length (log-normal).
    #[arg(long, default_value_t = 300)]
    pub prompt_median: u64,
    /// Median output length at which a request emits EOS (log-normal).
    #[arg(long, default_value_t = 60)]
    pub output_median: u64,
    /// Share of requests aborted or failed from outside.
    #[arg(long, default_value_t = 0.08, allow_negative_numbers = true)]
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
    /// Turn step windows on (`SPEC.md` §12): the chance that a step is summarized. The drawn
    /// steps are recorded in the workload (`--workload-out`), so replays are exact.
    #[arg(long, value_name = "RATE", allow_negative_numbers = true)]
    pub step_tracing_sample_rate: Option<f64>,
    /// With step windows: the chance that a summarized step also has request snapshots.
    #[arg(long, value_name = "RATE", default_value_t = 0.001, allow_negative_numbers = true)]
    pub step_tracing_rich_subsample_rate: f64,
    /// With step windows: steps per window before a closure is considered.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub step_tracing_closure_interval: u64,
    /// Make a two-layer workload (`SPEC.md` §8.1): the API front end above the engine, each
    /// request sampled with this chance (recorded in the workload; needs `--wire-profile head`).
    #[arg(long, value_name = "RATE", allow_negative_numbers = true)]
    pub api_sample_rate: Option<f64>,
    /// With `--api-sample-rate`: the chance that a client streams.
    #[arg(long, value_name = "SHARE", default_value_t = 0.5, allow_negative_numbers = true)]
    pub stream_fraction: f64,
}

/// Scheduling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// First come, first served.
    Fcfs,
    /// Lower priority value first.
    Priority,
}

/// The emitter's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum WireProfileArg {
    /// The fork at the seed: a core span for every request, `ts.monotonic` in seconds.
    #[default]
    Seed,
    /// The fork at HEAD: `ts.monotonic_ns`, the sampling gate, and for two-layer workloads the
    /// API layer (`llm_request` spans).
    Head,
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
    #[arg(long, value_name = "MS", default_value = "8", allow_negative_numbers = true, value_parser = parse_millis)]
    pub step_ms: Duration,
    /// Modelled cost of a scheduled token, in microseconds.
    #[arg(long, value_name = "US", default_value = "40", allow_negative_numbers = true, value_parser = parse_micros)]
    pub token_us: Duration,
    /// The wire format (a two-layer workload needs `head`).
    #[arg(long, value_enum, default_value_t = WireProfileArg::Seed)]
    pub wire_profile: WireProfileArg,
}

/// The synthetic options, which `--workload` excludes.
const SYNTH_OPTIONS: [&str; 17] = [
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
    "step_tracing_sample_rate",
    "api_sample_rate",
];

/// `journey explore`.
#[derive(Debug, Args)]
pub struct ExploreArgs {
    /// The configuration to explore (JSON, see above).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Most operations along one path.
    #[arg(long, value_name = "N")]
    pub depth: usize,
    /// Most requests added along one path (default: the file's, else 3).
    #[arg(long, value_name = "K")]
    pub requests: Option<usize>,
    /// Do not drain every explored state.
    #[arg(long)]
    pub no_drain: bool,
    /// Where to write the counterexample as a workload file.
    #[arg(long, value_name = "FILE")]
    pub workload_out: Option<PathBuf>,
}

/// `journey demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The synthetic workload (defaults: a busy cache with preemptions and aborts).
    #[command(flatten)]
    pub synth: SynthArgs,
}

/// A duration given as a number of `1 / per_second` seconds: finite, at least 0, and at most
/// `Duration::MAX`.
fn parse_duration(s: &str, per_second: f64) -> Result<Duration, String> {
    let value: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(value.is_finite() && value >= 0.0) {
        return Err("must be a finite number, at least 0".to_owned());
    }
    Duration::try_from_secs_f64(value / per_second)
        .map_err(|_| format!("is too long: at most {} s", Duration::MAX.as_secs()))
}

fn parse_millis(s: &str) -> Result<Duration, String> {
    parse_duration(s, 1e3)
}

fn parse_micros(s: &str) -> Result<Duration, String> {
    parse_duration(s, 1e6)
}

fn parse_rule(s: &str) -> Result<RuleId, String> {
    RuleId::lookup(s).ok_or_else(|| {
        let known: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown rule {s:?}: expected an id ({}) or a rule name (see `journey rules`)", known.join(", "))
    })
}

/// Seconds of `--facts-horizon`: up to 64 days, the default with the longest horizon.
fn parse_facts_seconds(s: &str) -> Result<f64, String> {
    const MAX: f64 = 64.0 * 86_400.0;
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=MAX).contains(&v) => Ok(v),
        Ok(_) => Err(format!("{s:?} is out of range: expected seconds between 0 and {MAX}")),
        Err(e) => Err(format!("{s:?} is not a number of seconds: {e}")),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!("{s:?} is out of range: expected seconds between 0 and 86400")),
        Err(e) => Err(format!("{s:?} is not a number of seconds: {e}")),
    }
}
