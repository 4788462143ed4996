//! `hume serve`: the daemon. Opens the data directory, the event log and
//! the HTTP API, and runs until SIGTERM / Ctrl-C.
//!
//! What the server trusts is set here: the token (`--auth-token-file` or
//! `HUME_AUTH_TOKEN`, required for a non-loopback `--listen`), the extra
//! host names and origins (`--allow-host`, `--allow-origin`), the connection
//! limits and the maximums a deploy may ask for.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use hume::api::guard::{self, SecurityConfig, Token};
use hume::api::projections::DeployMaximums;
use hume::api::server::ConnectionLimits;
use hume::api::{self, AppState};
use hume::backend::rocksdb::{DbOptions, WalRecovery};
use hume::log::Limits;

use super::backend::open_backend;

/// Arguments of `hume serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Data directory (the RocksDB database; with --cluster only a cache of
    /// compiled plugins); created when missing.
    #[arg(long, env = "HUME_DATA", default_value = "./hume-data")]
    pub data: PathBuf,

    /// Address to listen on. Port 0 picks a free port (the address is
    /// printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7171")]
    pub listen: SocketAddr,

    /// Removed: a non-loopback `--listen` now needs a token instead.
    #[arg(long, hide = true)]
    pub allow_remote: bool,

    /// Require `Authorization: Bearer TOKEN` on every endpoint but /health,
    /// TOKEN being this file's content (at least 16 visible ASCII
    /// characters, e.g. from `openssl rand -hex 32`). The environment
    /// variable HUME_AUTH_TOKEN can give the token instead. Required to
    /// listen on a non-loopback address.
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Also answer requests whose `Host` is this name (repeatable): the
    /// server answers only to localhost, loopback addresses and the address
    /// it listens on, against DNS rebinding.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,

    /// Let web pages of this origin (`https://app.example:8443`) use the API
    /// from a browser (CORS; repeatable). By default no other site may.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,

    /// Most connections served at once; more are answered with a 503.
    #[arg(long, default_value_t = ConnectionLimits::default().max_connections)]
    pub max_connections: usize,

    /// A connection must send a whole request head within MS of opening or
    /// of its previous answer; idle keep-alive connections close after it.
    #[arg(long, value_name = "MS", default_value_t = ConnectionLimits::default().header_read_timeout.as_millis() as u64)]
    pub header_read_timeout: u64,

    /// A request body must arrive whole within MS (408 otherwise).
    #[arg(long, value_name = "MS", default_value_t = SecurityConfig::default().body_read_timeout.as_millis() as u64)]
    pub body_read_timeout: u64,

    /// Largest `--call-timeout` a deploy may ask for, ms.
    #[arg(long, value_name = "MS", default_value_t = DeployMaximums::default().call_timeout_ms)]
    pub max_call_timeout: u64,

    /// Largest `--max-memory` a deploy may ask for, bytes (K, M, G allowed).
    #[arg(long, value_parser = super::projections::parse_bytes, default_value = "1G")]
    pub max_memory: u64,

    /// Largest `--max-snapshot` a deploy may ask for, bytes (K, M, G allowed).
    #[arg(long, value_parser = super::projections::parse_bytes, default_value = "256M")]
    pub max_snapshot: u64,

    /// Largest `--batch-size` (events per plugin call) a deploy may ask for.
    #[arg(long, default_value_t = DeployMaximums::default().batch_size)]
    pub max_batch_size: u32,

    /// Largest event (kind + data + metadata) in bytes.
    #[arg(long, default_value_t = Limits::default().max_event_bytes)]
    pub max_event_bytes: usize,

    /// Most events in one append.
    #[arg(long, default_value_t = Limits::default().max_batch_events)]
    pub max_batch_events: usize,

    /// Most bytes (sum of event sizes) in one append.
    #[arg(long, default_value_t = Limits::default().max_batch_bytes)]
    pub max_batch_bytes: usize,

    /// Most plugin instances live at once (1 to 1,000,000). Beyond it the
    /// least recently used projections hibernate: their instance is dropped
    /// and their state kept as snapshot bytes until the next event, read or
    /// query. The default keeps well under Linux's default
    /// `vm.max_map_count` (65,530; about 7 mappings per instance).
    #[arg(long, value_name = "N", default_value_t = hume::projection::DEFAULT_MAX_LIVE_INSTANCES, value_parser = parse_max_live)]
    pub max_live_instances: usize,

    /// A projection with nothing to do (at the head, no read waiting)
    /// hibernates after MS milliseconds; `off` hibernates only when
    /// `--max-live-instances` is reached.
    #[arg(long, value_name = "MS|off", default_value = "60000", value_parser = parse_hibernate_after)]
    pub hibernate_after: HibernateAfter,

    /// Keep at least this many bytes free on the data directory's disk (K,
    /// M, G allowed; 0 = off). A write that would go below is refused: an
    /// append gets a 507 "disk is full" and writes nothing, projections keep
    /// serving their state and pause snapshots, `/health` says `disk_full`.
    /// Appends resume on their own once space is freed, without a restart.
    /// The margin keeps RocksDB from ever meeting a full disk mid-write and
    /// leaves it room to flush and compact; room for what is not yet flushed
    /// from memory is kept on top of it, so a restart can always write it out.
    #[arg(long, value_name = "BYTES", value_parser = super::projections::parse_bytes, default_value = "256M")]
    pub min_free_space: u64,

    /// What to do with a damaged write-ahead log when opening.
    /// `tolerate-tail` (default) drops an incomplete last record, the write
    /// a crash, power loss or full disk cut off (never acknowledged: every
    /// acknowledged append was fsynced whole), and refuses any other damage;
    /// `strict` refuses a torn tail too; `point-in-time` keeps the events
    /// before any damage and drops everything after it, acknowledged or not.
    #[arg(long, value_enum, default_value = "tolerate-tail")]
    pub wal_recovery: WalRecoveryArg,

    /// Cluster mode: keep the event log, deployments, plugin bytes and
    /// snapshots on NATS JetStream (server 2.12 or later, with `-js`) at
    /// these URLs (`nats://host:port`, comma-separated or repeated) instead
    /// of in RocksDB under --data, which then holds only a cache of compiled
    /// plugins. An append is acknowledged once JetStream stored it on its
    /// replicas. Any number of nodes may share one JetStream: each
    /// projection runs on one node at a time, spread evenly, and moves to
    /// another node when its node stops (see README, "Cluster mode").
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    pub cluster: Vec<String>,

    /// This node's name in the cluster (its NATS connection is named
    /// `hume-ID`); default: `HOSTNAME-PID`.
    #[arg(long, value_name = "ID", requires = "cluster")]
    pub node_id: Option<String>,

    /// Cluster mode: a projection's lease (and a node's registration) lives
    /// this long without renewal, in milliseconds; nodes renew every third
    /// of it. A node that dies has its projections running elsewhere
    /// within about 1.3x this. Set when the cluster's buckets are created
    /// (the first node started); later nodes use the TTL in force.
    #[arg(long, value_name = "MS", default_value_t = 6000, requires = "cluster", value_parser = clap::value_parser!(u64).range(300..=60_000))]
    pub lease_ttl: u64,

    /// Cluster mode: the URL other nodes use to reach this node's API
    /// (forwarded reads; `hume nodes`). Default: `http://` + the address
    /// it listens on.
    #[arg(long, value_name = "URL", requires = "cluster")]
    pub advertise: Option<String>,
}

/// `--hibernate-after` value.
#[derive(Debug, Clone, Copy)]
pub struct HibernateAfter(pub Option<Duration>);

/// Longest `--hibernate-after`: a week.
const MAX_HIBERNATE_AFTER_MS: u64 = 7 * 24 * 3600 * 1000;

fn parse_hibernate_after(s: &str) -> Result<HibernateAfter, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(HibernateAfter(None));
    }
    let ms: u64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of milliseconds; give e.g. 60000, or `off`"))?;
    if ms > MAX_HIBERNATE_AFTER_MS {
        return Err(format!(
            "{ms} ms is more than a week; give at most {MAX_HIBERNATE_AFTER_MS}, or `off` to hibernate only when --max-live-instances is reached"
        ));
    }
    Ok(HibernateAfter(Some(Duration::from_millis(ms))))
}

fn parse_max_live(s: &str) -> Result<usize, String> {
    let max = hume::projection::MAX_MAX_LIVE_INSTANCES;
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number; give 1 to {max}"))?;
    if n == 0 {
        return Err("0 live instances could run no projection at all; give at least 1".into());
    }
    if n > max {
        return Err(format!(
            "{n} is more than any machine can keep live; give at most {max}"
        ));
    }
    Ok(n)
}

/// `--wal-recovery` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WalRecoveryArg {
    /// Drop a torn (incomplete) last record; refuse any other damage.
    TolerateTail,
    /// Refuse to open a damaged log, a torn tail included.
    Strict,
    /// Salvage the events before the damage.
    PointInTime,
}

/// Run the daemon until SIGTERM / Ctrl-C.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let journals = hume::journal::Journals::new();
    super::init_tracing_with("info", Some(journals.clone()));
    super::heap::limit_arenas();
    super::heap::spawn_trimmer();
    if args.allow_remote {
        bail!(
            "--allow-remote is gone: to listen on a non-loopback address, require a token with \
             --auth-token-file FILE (or the HUME_AUTH_TOKEN environment variable)"
        );
    }
    let token = load_token(args.auth_token_file.as_deref())?;
    if !args.listen.ip().is_loopback() {
        if token.is_none() {
            bail!(
                "refusing to listen on {} (not a loopback address) without a token: anyone who \
                 can reach it could read and append events and run code. Require a token with \
                 --auth-token-file FILE (or the HUME_AUTH_TOKEN environment variable), or listen \
                 on a loopback address (--listen 127.0.0.1:7171)",
                args.listen
            );
        }
        tracing::warn!(
            listen = %args.listen,
            "listening on a non-loopback address over plain HTTP: the token and the events cross \
             the network unencrypted; put a TLS-terminating proxy in front on untrusted networks"
        );
    }
    let allow_hosts = args
        .allow_hosts
        .iter()
        .map(|h| guard::normalize_host_name(h).map_err(|e| anyhow!("--allow-host {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let allow_origins = args
        .allow_origins
        .iter()
        .map(|o| guard::normalize_origin(o).map_err(|e| anyhow!("--allow-origin {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.max_connections == 0 || args.header_read_timeout == 0 || args.body_read_timeout == 0 {
        bail!(
            "--max-connections, --header-read-timeout and --body-read-timeout must be at least 1"
        );
    }
    let connection_limits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(args.header_read_timeout),
        max_connections: args.max_connections,
    };
    if let Some(files) = raise_open_files_limit() {
        if (files as usize) < args.max_connections.saturating_add(256) {
            tracing::warn!(
                open_files_limit = files,
                max_connections = args.max_connections,
                "the open-files limit is low for --max-connections: connections beyond it fail \
                 to be accepted; raise `ulimit -n` or lower --max-connections"
            );
        }
    }

    let db_options = DbOptions {
        wal_recovery: match args.wal_recovery {
            WalRecoveryArg::TolerateTail => WalRecovery::TolerateTail,
            WalRecoveryArg::Strict => WalRecovery::Strict,
            WalRecoveryArg::PointInTime => {
                tracing::warn!("opening with --wal-recovery point-in-time: events after any WAL damage are dropped");
                WalRecovery::PointInTime
            }
        },
        min_free_space: args.min_free_space,
        ..DbOptions::default()
    };
    let limits = Limits {
        max_event_bytes: args.max_event_bytes,
        max_batch_events: args.max_batch_events,
        max_batch_bytes: args.max_batch_bytes,
    };
    let (stores, backend, cluster) = open_backend(&args, db_options, limits).await?;
    let log = stores.log.clone();

    let mut state = AppState::new(log.clone());
    state.journals = journals;
    // Room for the JSON envelope around a maximal batch.
    state.limits.max_body_bytes = args.max_batch_bytes.saturating_mul(2) + 1024 * 1024;
    state.limits.deploy = DeployMaximums {
        call_timeout_ms: args.max_call_timeout,
        max_memory_bytes: args.max_memory,
        max_snapshot_bytes: args.max_snapshot,
        batch_size: args.max_batch_size,
    };
    // Projection runtime: one plugin runtime (compiled components cached
    // under the data directory), the Prometheus recorder behind /metrics,
    // and the manager, which starts every deployed projection from its last
    // snapshot.
    hume::projection::telemetry::install_metrics();
    let runtime = hume::plugin::Runtime::new(hume::plugin::RuntimeConfig {
        cache_dir: Some(args.data.join("compiled")),
        read_only_cache_dirs: shared_compile_cache(&args.data).into_iter().collect(),
        ..Default::default()
    })
    .context("starting the plugin runtime")?;
    let manager = Arc::new(
        hume::projection::Manager::start(
            stores,
            runtime,
            hume::projection::ManagerOptions {
                max_live_instances: args.max_live_instances,
                hibernate_after: args.hibernate_after.0,
                start_deployed: cluster.is_none(),
            },
        )
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
    state.security = SecurityConfig {
        listen: Some(addr),
        allow_hosts,
        allow_origins,
        token,
        body_read_timeout: Duration::from_millis(args.body_read_timeout),
    };
    tracing::info!(
        %addr,
        data = %args.data.display(),
        head = log.head(),
        token = state.security.token.is_some(),
        max_connections = connection_limits.max_connections,
        "hume serve listening"
    );
    let mut cluster_task = cluster.map(|c| {
        let url = args
            .advertise
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        tracing::info!(node = %c.node, %url, lease_ttl_ms = c.ownership.ttl().as_millis() as u64, "joining the cluster");
        let directory = hume::cluster::Directory::new(
            c.node.clone(),
            url.clone(),
            c.coordinator.clone(),
            c.ownership.clone(),
        );
        state.cluster = Some(api::forward::Cluster::new(Arc::new(directory)));
        if let Some(host) = super::backend::advertised_host(&url) {
            // Other nodes pass requests on with this name as `Host`.
            state.security.allow_hosts.push(host);
        }
        hume::cluster::ClusterHandle::spawn(
            (*manager).clone(),
            c.coordinator,
            c.ownership,
            c.renewing,
            hume::cluster::ClusterConfig { node: c.node, url },
        )
    });
    // Tools (and the tests) read the address from this line.
    println!("hume listening on http://{addr}");
    println!("web UI: http://{addr}/ui/");

    let shutdown = state.shutdown.clone();
    api::server::serve(
        listener,
        api::router(state),
        connection_limits,
        async move {
            shutdown_signal().await;
            // Release long-polling readers so the shutdown does not wait on them.
            shutdown.send_replace(true);
        },
    )
    .await;

    tracing::info!("shutting down");
    if let Some(task) = cluster_task.as_mut() {
        task.stop().await;
    }
    // Final snapshots of every projection, before the log closes.
    manager.shutdown().await;
    if let Some(task) = cluster_task.as_ref() {
        // Other nodes take over at once instead of after the lease TTL.
        task.leave().await;
    }
    drop(manager);
    drop(log);
    drop(backend);
    Ok(ExitCode::SUCCESS)
}

/// The CLI's compiled-plugin cache of the user running the server, when it
/// is safe to load native code from it: a directory owned by the owner of
/// the data directory and writable by no one else. Then a plugin `hume
/// validate` compiled is not compiled again at deploy.
fn shared_compile_cache(data: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let dir = super::offline::user_cache_dir()?;
    let meta = std::fs::metadata(&dir).ok()?;
    let owner = std::fs::metadata(data).ok()?.uid();
    let private = meta.permissions().mode() & 0o022 == 0;
    (meta.is_dir() && meta.uid() == owner && private).then_some(dir)
}

/// The server's token, from `--auth-token-file` or `HUME_AUTH_TOKEN` (not
/// both). Errors name the source, never the token.
fn load_token(file: Option<&Path>) -> anyhow::Result<Option<Token>> {
    let from_env = std::env::var("HUME_AUTH_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    match (file, from_env) {
        (Some(_), Some(_)) => {
            bail!("both --auth-token-file and HUME_AUTH_TOKEN give a token: give it one way only")
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?;
            warn_if_readable_by_others(path);
            Token::new(&text)
                .map(Some)
                .map_err(|e| anyhow!("the token file {}: {e}", path.display()))
        }
        (None, Some(text)) => Token::new(&text)
            .map(Some)
            .map_err(|e| anyhow!("HUME_AUTH_TOKEN: {e}")),
        (None, None) => Ok(None),
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the token file can be read by other users: `chmod 600` it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Raise the soft limit on open files to the hard limit (every connection
/// is a file descriptor); returns the limit in force.
#[cfg(unix)]
fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    Some(limit.rlim_cur as u64)
}

#[cfg(not(unix))]
fn raise_open_files_limit() -> Option<u64> {
    None
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
