//! `journey serve`: an OTLP receiver that checks journeys as they arrive (feature `serve`).
//!
//! The layers:
//!
//! 1. [`ingest`]: the core, with no sockets and no clock of its own. [`Ingest`] takes decoded
//!    export requests into the same streaming check as `journey check`
//!    ([`TraceStream`](crate::otel::TraceStream): builder and checker), keeps the pending spans
//!    (bounded) until they have been quiet for the timeout, and makes the
//!    [`Summary`](crate::otel::Summary) the report is made of. A new rule set reaches the
//!    receiver through the checker; nothing here names a rule.
//! 2. [`grpc`] and [`http`]: the transports. They decode and hand over, nothing else.
//! 3. [`Server`]: binds both listeners, decides due spans on a timer, and on shutdown stops the
//!    listeners (requests in flight are finished) and decides everything still pending.
//!
//! ```no_run
//! # async fn example() -> Result<(), journey_spec::serve::ServeError> {
//! use journey_spec::serve::{ServeConfig, Server};
//!
//! let server = Server::bind(ServeConfig::default(), None).await?;
//! eprintln!("OTLP/gRPC on {}", server.grpc_addr()?);
//! let shared = server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! shared.with(|ingest| ingest.report().write(std::io::stdout()))?;
//! # Ok(()) }
//! ```

pub mod grpc;
pub mod http;
pub mod ingest;
pub mod metrics;

use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use ingest::{Accepted, Ingest, IngestOptions, Outcome, Received, ServeReport, Transport};

/// Where to listen and how to decide.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The OTLP/gRPC listener (`--grpc`).
    pub grpc: SocketAddr,
    /// The OTLP/HTTP listener, with `/report`, `/metrics` and `/shutdown` (`--http`).
    pub http: SocketAddr,
    /// The largest request body (HTTP, before and after decompression) or gRPC message.
    pub max_body_bytes: usize,
    /// Deciding and bounding.
    pub ingest: IngestOptions,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            grpc: SocketAddr::from(([127, 0, 0, 1], 4317)),
            http: SocketAddr::from(([127, 0, 0, 1], 4318)),
            max_body_bytes: http::DEFAULT_MAX_BODY_BYTES,
            ingest: IngestOptions::default(),
        }
    }
}

/// A failure of the server itself (not of its input).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// `OTLP/gRPC` or `OTLP/HTTP`.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// A listener failed while serving.
    #[error("the {what} listener failed: {message}")]
    Serve {
        /// `OTLP/gRPC` or `OTLP/HTTP`.
        what: &'static str,
        /// The error.
        message: String,
    },
    /// Writing findings or a report failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The receiver's state as the transports share it.
pub struct Shared {
    ingest: Mutex<Ingest>,
    max_body_bytes: usize,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("max_body_bytes", &self.max_body_bytes).finish_non_exhaustive()
    }
}

impl Shared {
    /// Shared state around `ingest`.
    pub fn new(ingest: Ingest, max_body_bytes: usize) -> Shared {
        Shared { ingest: Mutex::new(ingest), max_body_bytes, shutdown: watch::Sender::new(false) }
    }

    /// Runs `f` on the receiver's state, locked.
    pub fn with<T>(&self, f: impl FnOnce(&mut Ingest) -> T) -> T {
        // A panic elsewhere cannot leave the counters half-updated in a way that matters more
        // than losing the report, so a poisoned lock is used as it is.
        let mut guard = self.ingest.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Takes in one decoded export request.
    pub fn ingest(&self, request: ExportTraceServiceRequest, bytes: usize, transport: Transport) -> Accepted {
        self.with(|i| i.ingest(request, bytes, transport, Instant::now()))
    }

    /// Counts a refused body and says why on stderr.
    pub fn reject(&self, error: &dyn std::fmt::Display) {
        let _ = writeln!(io::stderr().lock(), "journey serve: POST /v1/traces refused: {error}");
        self.with(Ingest::reject);
    }

    /// `--max-pending`.
    pub fn max_pending(&self) -> usize {
        self.with(|i| i.options().max_pending)
    }

    /// Asks the server to stop (`POST /shutdown`).
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            // An error means the sender is gone: stop as well.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

/// Both listeners, bound.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    grpc: TcpListener,
    http: TcpListener,
    poll_every: Duration,
}

/// How long the listeners get to finish requests in flight at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

impl Server {
    /// Binds the listeners of `config`; `findings` gets one JSON line per finding.
    pub async fn bind(config: ServeConfig, findings: Option<Box<dyn Write + Send>>) -> Result<Server, ServeError> {
        let grpc = TcpListener::bind(config.grpc).await.map_err(|source| ServeError::Bind {
            what: "OTLP/gRPC",
            addr: config.grpc,
            source,
        })?;
        let http = TcpListener::bind(config.http).await.map_err(|source| ServeError::Bind {
            what: "OTLP/HTTP",
            addr: config.http,
            source,
        })?;
        // Often enough that a span is decided soon after its timeout, never busy-looping.
        let poll_every = (config.ingest.pending_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let ingest = Ingest::new(config.ingest, findings);
        Ok(Server { shared: Arc::new(Shared::new(ingest, config.max_body_bytes)), grpc, http, poll_every })
    }

    /// The address the gRPC listener is bound to (useful with port 0).
    pub fn grpc_addr(&self) -> io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    /// The address the HTTP listener is bound to.
    pub fn http_addr(&self) -> io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// The shared state (for reports while running).
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Serves until `stop` completes or `POST /shutdown` arrives, then stops the listeners and
    /// decides everything pending. Returns the state, for the final report.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<Arc<Shared>, ServeError> {
        let Server { shared, grpc, http, poll_every } = self;

        let grpc_task = tokio::spawn(
            tonic::transport::Server::builder()
                // HTTP/2's default 64 KiB windows stall a client sending a batch of spans (the
                // Collector's are up to megabytes) once per window, a round trip each.
                .initial_stream_window_size(Some(1 << 20))
                .initial_connection_window_size(Some(4 << 20))
                .add_service(grpc::service(Arc::clone(&shared)))
                .serve_with_incoming_shutdown(
                    // Without TCP_NODELAY a small response waits for the client's delayed ACK
                    // (`serve_with_incoming` does not apply the builder's setting).
                    tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
                    shared.stopping(),
                ),
        );
        let http_task = tokio::spawn(
            axum::serve(http, http::router(Arc::clone(&shared)))
                .with_graceful_shutdown(shared.stopping())
                .into_future(),
        );
        let poller = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(poll_every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    // A findings output that fails stops the deciding; the error is the result.
                    if let Err(e) = shared.with(|i| i.poll(Instant::now())) {
                        return e;
                    }
                }
            })
        };

        tokio::select! {
            () = stop => {}
            () = shared.stopping() => {}
        }
        shared.request_shutdown();
        poller.abort();
        let grpc_result = tokio::time::timeout(DRAIN, grpc_task).await;
        let http_result = tokio::time::timeout(DRAIN, http_task).await;
        if let Ok(Ok(Err(e))) = grpc_result {
            return Err(ServeError::Serve { what: "OTLP/gRPC", message: e.to_string() });
        }
        if let Ok(Ok(Err(e))) = http_result {
            return Err(ServeError::Serve { what: "OTLP/HTTP", message: e.to_string() });
        }
        // Aborted (the usual case) is a join error; a finished poller carries its I/O error.
        if let Ok(e) = poller.await {
            return Err(ServeError::Io(e));
        }
        shared.with(Ingest::flush)?;
        Ok(shared)
    }
}
