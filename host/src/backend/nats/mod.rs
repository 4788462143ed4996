//! The cluster backend: the event log, deployments, plugin bytes and
//! snapshots on a NATS JetStream server or cluster, so any number of Hume
//! nodes can share them. Nothing outside this folder knows NATS.
//!
//! - the log: one stream (`HUME_LOG`, subjects `hume.log.>`, atomic batch
//!   publish and direct gets allowed), see [`NatsLog`];
//! - deployment records: the key-value bucket `hume-deployments`;
//! - plugin bytes (by sha256) and snapshots: the object stores
//!   `hume-plugins` and `hume-snapshots`.
//!
//! Opening checks before it writes anything: the servers answer, JetStream
//! is enabled, and a `HUME_LOG` stream that already exists has the settings
//! Hume needs.

mod ahead;
mod deployments;
mod errors;
mod leases;
mod log;
mod pull;
mod read;
mod snapshots;
pub mod subject;
mod tails;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};

pub use deployments::NatsDeployments;
pub(crate) use errors::{failed, write_failed, Contention};
pub use leases::{NatsCoordinator, LEASES_BUCKET, NODES_BUCKET};
pub use log::NatsLog;
pub use snapshots::NatsSnapshots;

use super::memory::MemorySnapshots;
use crate::log::{checked, Limits};
use crate::stores::Stores;

/// The JetStream stream that holds the log.
pub const LOG_STREAM: &str = "HUME_LOG";
/// The key-value bucket of deployment records.
pub const DEPLOYMENTS_BUCKET: &str = "hume-deployments";
/// The object store of plugin bytes, by sha256.
pub const PLUGINS_BUCKET: &str = "hume-plugins";
/// The object store of snapshots.
pub const SNAPSHOTS_BUCKET: &str = "hume-snapshots";
/// Most events in one atomic batch (the server's limit).
pub const MAX_BATCH_EVENTS: usize = 1000;
/// Room in a message for the encoded event's envelope (stream name,
/// revision, timestamp, lengths).
const ENVELOPE_BYTES: usize = 1024;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Server URLs (`nats://host:port`), any of the cluster's servers.
    pub urls: Vec<String>,
    /// This node's name (the NATS connection name).
    pub node_id: String,
    /// How long to wait for a server to answer.
    pub connect_timeout: Duration,
    /// How long a projection lease and a node's registration live without
    /// renewal (for buckets created now; existing ones keep theirs).
    pub lease_ttl: Duration,
}

/// Why the cluster backend could not be opened. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A URL is not a NATS server address.
    #[error("`{url}` is not a NATS server address: {source}. Give --cluster URLs like nats://127.0.0.1:4222")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        #[source]
        source: std::io::Error,
    },
    /// No server answered.
    #[error("cannot reach a NATS server at {urls}: {source}. Start nats-server there (with JetStream: `nats-server -js`), or fix --cluster")]
    Unreachable {
        /// The URLs tried.
        urls: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// The server runs without JetStream.
    #[error("the NATS server at {urls} does not offer JetStream ({source}): start it with JetStream enabled (`nats-server -js`, or `jetstream {{}}` in its configuration)")]
    NoJetStream {
        /// The URLs connected to.
        urls: String,
        /// The server's answer.
        #[source]
        source: jetstream::context::AccountError,
    },
    /// JetStream kept answering that it cannot serve yet.
    #[error("JetStream had no leader for {waited:?} (its servers cannot reach a quorum): start the cluster's other servers, or check that their routes connect; then start this node again")]
    NotReady {
        /// How long this node waited.
        waited: Duration,
        /// The last failure.
        #[source]
        source: Box<ConnectError>,
    },
    /// `HUME_LOG` exists but is not what Hume needs.
    #[error("the JetStream stream {LOG_STREAM} already exists with other settings ({differences}); Hume changed nothing. If it is not Hume's log, remove it (`nats stream rm {LOG_STREAM}`) or use another NATS account or server; if it is, restore these settings")]
    StreamMismatch {
        /// What differs, `setting: found, need` each.
        differences: String,
    },
    /// Creating or reading one of Hume's streams or buckets failed.
    #[error("JetStream refused {what}: {source}. Check that this NATS account may create streams and has room for them")]
    Setup {
        /// Which stream or bucket, and the operation.
        what: String,
        /// The server's error.
        #[source]
        source: async_nats::Error,
    },
}

impl ConnectError {
    /// JetStream refused to place replicas: too few servers.
    fn short_of_peers(&self) -> bool {
        match self {
            ConnectError::Setup { source, .. } => errors::short_of_peers(&**source),
            _ => false,
        }
    }

    /// A failure that goes away once JetStream has a leader.
    fn is_transient(&self) -> bool {
        use jetstream::context::AccountErrorKind;
        match self {
            ConnectError::Setup { source, .. } => errors::answer(&**source).is_some(),
            // JetStream is there but has no leader yet (no responders at
            // all would mean a server without JetStream: not transient).
            ConnectError::NoJetStream { source, .. } => match source.kind() {
                AccountErrorKind::TimedOut => true,
                AccountErrorKind::JetStream(e) => errors::cluster_busy(e.error_code()),
                _ => false,
            },
            _ => false,
        }
    }
}

/// An opened cluster backend.
pub struct NatsBackend {
    /// The stores, for the runtime.
    pub stores: Stores,
    /// The limits actually enforced (the given ones, lowered to what the
    /// server takes: its max payload, 1,000 events per atomic batch).
    pub limits: Limits,
    /// The server this node is connected to (`host:port`, version).
    pub server: String,
    /// Replicas of the log stream.
    pub replicas: usize,
    /// The node registry and projection leases.
    pub coordinator: Arc<NatsCoordinator>,
    /// The lease TTL in force (the leases bucket's).
    pub lease_ttl: Duration,
}

fn log_config(replicas: usize) -> stream::Config {
    stream::Config {
        name: LOG_STREAM.to_string(),
        subjects: vec![subject::LOG_SUBJECTS.to_string()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: replicas,
        allow_direct: true,
        allow_atomic_publish: true,
        ..Default::default()
    }
}

/// What in an existing log stream differs from what Hume needs.
fn differences(found: &stream::Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, ok: bool, found: String, need: &str| {
        if !ok {
            out.push(format!("{what}: {found}, need {need}"));
        }
    };
    check(
        "subjects",
        found.subjects == [subject::LOG_SUBJECTS],
        format!("{:?}", found.subjects),
        subject::LOG_SUBJECTS,
    );
    check(
        "retention",
        found.retention == stream::RetentionPolicy::Limits,
        format!("{:?}", found.retention),
        "limits",
    );
    check(
        "storage",
        found.storage == stream::StorageType::File,
        format!("{:?}", found.storage),
        "file",
    );
    check("allow_direct", found.allow_direct, "false".into(), "true");
    check(
        "allow_atomic",
        found.allow_atomic_publish,
        "false".into(),
        "true",
    );
    let unlimited = found.max_messages <= 0
        && found.max_bytes <= 0
        && found.max_age.is_zero()
        && found.max_messages_per_subject <= 0;
    check(
        "limits",
        unlimited,
        format!(
            "max_msgs {} max_bytes {} max_age {:?} max_msgs_per_subject {}",
            found.max_messages, found.max_bytes, found.max_age, found.max_messages_per_subject
        ),
        "none (events are never dropped)",
    );
    check(
        "sealed/deny_delete/mirror",
        !found.sealed && found.mirror.is_none(),
        "set".into(),
        "unset",
    );
    out
}

impl NatsBackend {
    /// Connect, check JetStream, and open (or create) Hume's streams and
    /// buckets; `limits` are lowered to what the server accepts.
    pub async fn connect(
        options: &ClusterOptions,
        limits: Limits,
    ) -> Result<NatsBackend, ConnectError> {
        let urls = options.urls.join(",");
        let addrs = options
            .urls
            .iter()
            .map(|u| {
                u.parse::<async_nats::ServerAddr>()
                    .map_err(|source| ConnectError::BadUrl {
                        url: u.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = async_nats::ConnectOptions::new()
            .name(format!("hume-{}", options.node_id))
            .connection_timeout(options.connect_timeout)
            .connect(addrs.clone())
            .await
            .map_err(|source| ConnectError::Unreachable {
                urls: urls.clone(),
                source,
            })?;
        let info = client.server_info();
        let js = jetstream::new(client.clone());
        // A cluster that has just started (or lost its quorum) has no
        // JetStream leader yet: wait for one rather than give up.
        let deadline = tokio::time::Instant::now() + SETUP_PATIENCE;
        // A cluster's log is R3 (R1 on a lone server). While servers are
        // missing, creating it R3 is refused: wait for them a while, then
        // settle for the servers in sight.
        let clustered = info.cluster.is_some();
        let mut short_of_peers_since: Option<tokio::time::Instant> = None;
        let (replicas, opened) = loop {
            let visible = client.server_info().connect_urls.len().clamp(1, 3);
            let replicas = match short_of_peers_since {
                _ if !clustered => 1,
                Some(since) if since.elapsed() >= PEERS_GRACE => {
                    tracing::warn!(
                        replicas = visible,
                        "fewer than three JetStream servers answer: creating Hume's streams \
                         with {visible} replica(s); they keep that count when more servers join"
                    );
                    visible
                }
                _ => 3,
            };
            let attempt = async {
                js.query_account()
                    .await
                    .map_err(|source| ConnectError::NoJetStream {
                        urls: urls.clone(),
                        source,
                    })?;
                open_stores(&js, replicas, options).await
            };
            match attempt.await {
                Err(e) if e.short_of_peers() && tokio::time::Instant::now() < deadline => {
                    short_of_peers_since.get_or_insert_with(tokio::time::Instant::now);
                    tracing::warn!(error = %e, "JetStream has too few servers for three replicas; waiting");
                    tokio::time::sleep(SETUP_RETRY).await;
                }
                Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "JetStream is not ready (no leader yet?); retrying");
                    tokio::time::sleep(SETUP_RETRY).await;
                }
                Err(e) if e.is_transient() => {
                    return Err(ConnectError::NotReady {
                        waited: SETUP_PATIENCE,
                        source: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
                Ok(opened) => break (replicas, opened),
            }
        };
        let room = info.max_payload.saturating_sub(ENVELOPE_BYTES);
        let enforced = Limits {
            max_event_bytes: limits.max_event_bytes.min(room),
            max_batch_events: limits.max_batch_events.min(MAX_BATCH_EVENTS),
            max_batch_bytes: limits.max_batch_bytes,
        };
        if enforced != limits {
            tracing::warn!(
                max_event_bytes = enforced.max_event_bytes,
                max_batch_events = enforced.max_batch_events,
                "lowered the append limits to what the NATS server takes (its max_payload, \
                 {MAX_BATCH_EVENTS} events per atomic batch)"
            );
        }
        let mut log = opened.log;
        log.read_ahead_through(wire::Endpoint::for_urls(&addrs, info.tls_required));
        let stores = Stores {
            log: checked(Arc::new(log), enforced),
            snapshots: Arc::new(NatsSnapshots::new(
                opened.snapshots,
                options.node_id.clone(),
            )),
            memory_snapshots: Arc::new(MemorySnapshots::default()),
            deployments: Arc::new(NatsDeployments::new(opened.kv, opened.plugins)),
        };
        Ok(NatsBackend {
            stores,
            limits: enforced,
            server: format!("{}:{} (nats-server {})", info.host, info.port, info.version),
            replicas,
            coordinator: Arc::new(opened.coordinator),
            lease_ttl: opened.lease_ttl,
        })
    }
}

/// Hume's streams and buckets, opened (or created) and checked.
struct Opened {
    kv: jetstream::kv::Store,
    plugins: jetstream::object_store::ObjectStore,
    snapshots: jetstream::object_store::ObjectStore,
    coordinator: NatsCoordinator,
    lease_ttl: Duration,
    log: NatsLog,
}

/// How long a node waits for JetStream to have a leader at start.
const SETUP_PATIENCE: Duration = Duration::from_secs(60);
/// How long a node waits for three JetStream servers before creating
/// Hume's streams with fewer replicas.
const PEERS_GRACE: Duration = Duration::from_secs(10);
/// Pause between two tries of the setup.
const SETUP_RETRY: Duration = Duration::from_millis(500);

/// Open (or create) every stream and bucket; safe to run again after a
/// failure part of the way (each step gets or creates).
async fn open_stores(
    js: &jetstream::Context,
    replicas: usize,
    options: &ClusterOptions,
) -> Result<Opened, ConnectError> {
    let setup = |what: &str| {
        let what = what.to_string();
        move |e: async_nats::Error| ConnectError::Setup { what, source: e }
    };
    let stream = match js.get_stream(LOG_STREAM).await {
        Ok(mut stream) => {
            let config = stream
                .info()
                .await
                .map_err(|e| setup("reading stream HUME_LOG")(e.into()))?
                .config
                .clone();
            let diff = differences(&config);
            if !diff.is_empty() {
                return Err(ConnectError::StreamMismatch {
                    differences: diff.join("; "),
                });
            }
            stream
        }
        Err(e) if is_not_found(&e) => js
            .create_stream(log_config(replicas))
            .await
            .map_err(|e| setup("creating stream HUME_LOG")(e.into()))?,
        Err(e) => return Err(setup("reading stream HUME_LOG")(e.into())),
    };
    let kv = js
        .create_key_value(jetstream::kv::Config {
            bucket: DEPLOYMENTS_BUCKET.to_string(),
            history: 1,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| setup("creating key-value bucket hume-deployments")(e.into()))?;
    let object_store = |bucket: &'static str| {
        let js = js.clone();
        async move {
            js.create_object_store(jetstream::object_store::Config {
                bucket: bucket.to_string(),
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| ConnectError::Setup {
                what: format!("creating object store {bucket}"),
                source: e.into(),
            })
        }
    };
    let plugins = object_store(PLUGINS_BUCKET).await?;
    let snapshots = object_store(SNAPSHOTS_BUCKET).await?;
    let (coordinator, lease_ttl) = NatsCoordinator::open(js, options.lease_ttl, replicas).await?;
    let log = NatsLog::open(js.clone(), stream)
        .await
        .map_err(|e| setup("reading stream HUME_LOG")(e.into()))?;

    Ok(Opened {
        kv,
        plugins,
        snapshots,
        coordinator,
        lease_ttl,
        log,
    })
}

fn is_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(
        e.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(err)
            if err.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_stream_is_described() {
        assert!(differences(&log_config(1)).is_empty());
        let mut other = log_config(1);
        other.subjects = vec!["orders.>".into()];
        other.max_age = Duration::from_secs(60);
        let diff = differences(&other);
        assert_eq!(diff.len(), 2, "{diff:?}");
        assert!(diff[0].contains("orders.>") && diff[1].contains("max_age"));
    }
}
