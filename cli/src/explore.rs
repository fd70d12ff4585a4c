//! `journey explore`: every operation sequence up to a depth on a user's configuration, and
//! the shortest counterexample as a workload file.

use std::io::{self, Write};

use journey_spec::explore::{ExploreConfig, explore};

use super::cli::ExploreArgs;
use super::status::StatusLine;
use super::{ERROR, SUCCESS, VIOLATION};

pub fn run(args: ExploreArgs, out: &mut dyn Write) -> io::Result<u8> {
    let fail = |what: String| {
        let _ = writeln!(io::stderr(), "journey: {what}");
        Ok(ERROR)
    };
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: {e}", args.config.display())),
    };
    let mut config = match ExploreConfig::from_json(&text) {
        Ok(c) => c,
        Err(e) => return fail(format!("{}: {e}", args.config.display())),
    };
    config.depth = args.depth;
    if let Some(k) = args.requests {
        config.max_requests = k;
    }
    config.drain = !args.no_drain;
    if let Err(e) = config.validate() {
        return fail(format!("{}: {e}", args.config.display()));
    }
    let mut status = StatusLine::new();
    let report = explore(&config, &mut |p| {
        status.show(|| {
            let secs = p.elapsed.as_secs_f64().max(1e-9);
            let (rate, per_transition) = (p.states as f64 / secs, p.transitions as f64 / secs);
            format!(
                "depth {}, {} states, {} transitions, {rate:.0} states/s, {per_transition:.0} transitions/s",
                p.depth, p.states, p.transitions
            )
        });
    });
    drop(status);
    let report = match report {
        Ok(r) => r,
        Err(e) => return fail(format!("{}: {e}", args.config.display())),
    };
    let name = if report.name.is_empty() { args.config.display().to_string() } else { report.name.clone() };
    writeln!(
        out,
        "{name}: {} unique states, max depth {} of {}{}, {} transitions in {:.2} s ({:.0} states/s, {:.0} transitions/s)",
        report.unique_states,
        report.max_depth,
        config.depth,
        if report.exhausted { " (every state)" } else { "" },
        report.transitions,
        report.elapsed.as_secs_f64(),
        report.states_per_second(),
        report.transitions_per_second()
    )?;
    let Some(c) = &report.counterexample else {
        let missing = report.coverage.missing();
        if !missing.is_empty() {
            writeln!(out, "never reached: {}", missing.join("; "))?;
        }
        return Ok(SUCCESS);
    };
    writeln!(out, "{c}")?;
    if let Some(path) = &args.workload_out {
        let text = serde_json::to_string_pretty(&c.workload).unwrap_or_default() + "\n";
        if let Err(e) = std::fs::write(path, text) {
            return fail(format!("{}: {e}", path.display()));
        }
        writeln!(out, "workload: {} (replay with `journey simulate --workload`)", path.display())?;
    }
    Ok(VIOLATION)
}
