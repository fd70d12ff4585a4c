//! `journey serve`: binds the receiver, waits for SIGINT, SIGTERM or `POST /shutdown`, then
//! writes the final report. Everything it reports is computed by `journey_spec::serve`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use journey_spec::serve::{IngestOptions, Outcome, ServeConfig, Server};

use super::cli::ServeArgs;
use super::{ERROR, rule_options};

/// Runs the receiver; the exit status is `check`'s (see `SERVE_EXIT_STATUS`).
pub fn run(args: ServeArgs, out: &mut dyn Write) -> io::Result<u8> {
    let findings: Option<Box<dyn Write + Send>> = match &args.findings {
        None => None,
        Some(p) if p == Path::new("-") => Some(Box::new(io::stdout())),
        Some(p) => match File::create(p) {
            Ok(f) => Some(Box::new(BufWriter::new(f))),
            Err(e) => {
                let _ = writeln!(io::stderr(), "journey serve: cannot create {}: {e}", p.display());
                return Ok(ERROR);
            }
        },
    };
    let check = match rule_options(&args.rules) {
        Ok(check) => check,
        Err(e) => {
            let _ = writeln!(io::stderr(), "journey serve: {e}");
            return Ok(ERROR);
        }
    };
    let config = ServeConfig {
        grpc: args.grpc,
        http: args.http,
        ingest: IngestOptions {
            check,
            pending_timeout: Duration::from_secs_f64(args.pending_timeout),
            max_pending: usize::try_from(args.max_pending).unwrap_or(usize::MAX),
            expect_journeys: args.expect_journeys,
        },
        ..ServeConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async move {
        let server = Server::bind(config, findings).await?;
        // Tests and scripts read the bound addresses from this line (useful with port 0).
        let _ = writeln!(
            io::stderr(),
            "journey serve: OTLP/gRPC on {}, OTLP/HTTP on {} (POST /v1/traces, GET /report, GET /metrics, POST /shutdown)",
            server.grpc_addr()?,
            server.http_addr()?
        );
        server.run(stop_signal()).await
    });
    let shared = match result {
        Ok(shared) => shared,
        Err(e) => {
            let _ = writeln!(io::stderr(), "journey serve: {e}");
            return Ok(ERROR);
        }
    };
    let (code, outcome, journeys, expected, lost) = shared.with(|ingest| {
        let r = *ingest.received();
        (
            ingest.exit_status(),
            ingest.outcome(),
            ingest.summary().journeys,
            ingest.options().expect_journeys,
            (r.shed_records, r.late_records),
        )
    });
    match &args.report {
        None => shared.with(|ingest| ingest.report().write(&mut *out))?,
        Some(p) => {
            let mut file = BufWriter::new(File::create(p)?);
            shared.with(|ingest| ingest.report().write(&mut file))?;
            file.flush()?;
        }
    }
    let mut err = io::stderr().lock();
    if outcome == Outcome::NoJourneys {
        let _ = writeln!(err, "journey serve: no journey was received");
    }
    if let Some(n) = expected.filter(|n| journeys < *n) {
        let _ = writeln!(
            err,
            "journey serve: {journeys} journeys received, fewer than the {n} expected (--expect-journeys)"
        );
    }
    if lost.0 > 0 {
        let _ = writeln!(err, "journey serve: {} span records shed (--max-pending): the verdict is incomplete", lost.0);
    }
    if lost.1 > 0 {
        let _ = writeln!(
            err,
            "journey serve: {} span records came after their span was decided (--pending-timeout)",
            lost.1
        );
    }
    Ok(code)
}

/// SIGINT or SIGTERM (SIGINT only where there is no SIGTERM).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
