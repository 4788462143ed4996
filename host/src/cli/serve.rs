//! `hume serve`: the daemon. Opens the data directory, the event log and
//! the HTTP API, and runs until SIGTERM / Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use hume::api::{self, AppState};
// The one place that picks storage backends.
use hume::backend::rocksdb::{DbOptions, LogOptions, RocksBackend, WalRecovery};
use hume::log::Limits;

/// Arguments of `hume serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Data directory (the RocksDB database); created when missing.
    #[arg(long, env = "HUME_DATA", default_value = "./hume-data")]
    pub data: PathBuf,

    /// Address to listen on. Port 0 picks a free port (the address is
    /// printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7171")]
    pub listen: SocketAddr,

    /// Allow a non-loopback `--listen` address. The API has no
    /// authentication: only expose it on a network you trust.
    #[arg(long)]
    pub allow_remote: bool,

    /// Largest event (kind + data + metadata) in bytes.
    #[arg(long, default_value_t = Limits::default().max_event_bytes)]
    pub max_event_bytes: usize,

    /// Most events in one append.
    #[arg(long, default_value_t = Limits::default().max_batch_events)]
    pub max_batch_events: usize,

    /// Most bytes (sum of event sizes) in one append.
    #[arg(long, default_value_t = Limits::default().max_batch_bytes)]
    pub max_batch_bytes: usize,

    /// What to do with a damaged write-ahead log: `strict` refuses to open
    /// (default); `point-in-time` keeps the events before the damage and
    /// drops everything after it, acknowledged or not.
    #[arg(long, value_enum, default_value = "strict")]
    pub wal_recovery: WalRecoveryArg,
}

/// `--wal-recovery` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WalRecoveryArg {
    /// Refuse to open a damaged log.
    Strict,
    /// Salvage the events before the damage.
    PointInTime,
}

/// Run the daemon until SIGTERM / Ctrl-C.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    super::init_tracing("info");
    if !args.listen.ip().is_loopback() {
        if !args.allow_remote {
            bail!(
                "refusing to listen on {} (not a loopback address): the API has no \
                 authentication. Pass --allow-remote to expose it anyway, or listen on 127.0.0.1",
                args.listen
            );
        }
        tracing::warn!(
            listen = %args.listen,
            "listening on a non-loopback address: anyone who can reach it can read and append events"
        );
    }

    let db_options = DbOptions {
        wal_recovery: match args.wal_recovery {
            WalRecoveryArg::Strict => WalRecovery::Strict,
            WalRecoveryArg::PointInTime => {
                tracing::warn!("opening with --wal-recovery point-in-time: events after any WAL damage are dropped");
                WalRecovery::PointInTime
            }
        },
        ..DbOptions::default()
    };
    let limits = Limits {
        max_event_bytes: args.max_event_bytes,
        max_batch_events: args.max_batch_events,
        max_batch_bytes: args.max_batch_bytes,
    };
    let data = args.data.clone();
    let backend = tokio::task::spawn_blocking(move || {
        RocksBackend::open(&data, &db_options, LogOptions::default(), limits)
    })
    .await
    .context("opening the data directory")??;
    let stores = backend.stores.clone();
    let log = stores.log.clone();

    let mut state = AppState::new(log.clone());
    // Room for the JSON envelope around a maximal batch.
    state.limits.max_body_bytes = args.max_batch_bytes.saturating_mul(2) + 1024 * 1024;
    // Projection runtime: one plugin runtime (compiled components cached
    // under the data directory), the Prometheus recorder behind /metrics,
    // and the manager, which starts every deployed projection from its last
    // snapshot.
    hume::projection::telemetry::install_metrics();
    let runtime = hume::plugin::Runtime::new(hume::plugin::RuntimeConfig {
        cache_dir: Some(args.data.join("compiled")),
        ..Default::default()
    })
    .context("starting the plugin runtime")?;
    let manager = Arc::new(
        hume::projection::Manager::start(stores, runtime)
            .await
            .context("starting the deployed projections")?,
    );
    state.projections = Some(manager.clone());

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is another `hume serve` running? Pick another address \
                 with --listen",
                args.listen
            )
        })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, data = %args.data.display(), head = log.head(), "hume serve listening");
    // Tools (and the tests) read the address from this line.
    println!("hume listening on http://{addr}");

    let shutdown = state.shutdown.clone();
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Release long-polling readers so the shutdown does not wait on them.
            shutdown.send_replace(true);
        })
        .await
        .context("serving HTTP")?;

    tracing::info!("shutting down");
    // Final snapshots of every projection, before the log closes.
    manager.shutdown().await;
    drop(manager);
    drop(log);
    drop(backend);
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}
