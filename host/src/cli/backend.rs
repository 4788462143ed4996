//! The one place that picks the storage backend of `hume serve`: RocksDB
//! under --data (the default), or NATS JetStream with --cluster, with the
//! cluster ownership parts (leases, fenced snapshot writes) it needs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hume::backend::nats::{ClusterOptions, NatsBackend};
use hume::backend::rocksdb::{DbOptions, LogOptions, RocksBackend};
use hume::log::Limits;
use hume::stores::Stores;

use super::serve::ServeArgs;

/// What the cluster task needs, in cluster mode.
pub(super) struct ClusterParts {
    pub node: String,
    pub coordinator: Arc<dyn hume::cluster::Coordinator>,
    pub ownership: Arc<hume::cluster::Ownership>,
    pub renewing: Arc<tokio::sync::Mutex<()>>,
}

/// The backend the server runs on: RocksDB under --data (the default), or
/// NATS JetStream with --cluster (snapshot writes then fenced by the
/// node's leases). The returned guard keeps it open.
pub(super) async fn open_backend(
    args: &ServeArgs,
    db_options: DbOptions,
    limits: Limits,
) -> anyhow::Result<(Stores, Box<dyn std::any::Any + Send>, Option<ClusterParts>)> {
    if args.cluster.is_empty() {
        let data = args.data.clone();
        let backend = tokio::task::spawn_blocking(move || {
            RocksBackend::open(&data, &db_options, LogOptions::default(), limits)
        })
        .await
        .context("opening the data directory")??;
        return Ok((backend.stores.clone(), Box::new(backend), None));
    }
    std::fs::create_dir_all(&args.data).with_context(|| {
        format!(
            "cannot create {} (the compiled-plugin cache): pick a writable --data",
            args.data.display()
        )
    })?;
    let node_id = args.node_id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let options = ClusterOptions {
        urls: args.cluster.clone(),
        node_id: node_id.clone(),
        connect_timeout: Duration::from_secs(5),
        lease_ttl: Duration::from_millis(args.lease_ttl),
    };
    let backend = NatsBackend::connect(&options, limits)
        .await
        .context("opening the cluster storage (--cluster)")?;
    tracing::info!(
        node = %node_id,
        server = %backend.server,
        replicas = backend.replicas,
        "cluster mode: storage on NATS JetStream"
    );
    if backend.lease_ttl != options.lease_ttl {
        tracing::warn!(
            lease_ttl_ms = backend.lease_ttl.as_millis() as u64,
            "the cluster's lease TTL was set when its buckets were created; --lease-ttl is ignored"
        );
    }
    let ownership = Arc::new(hume::cluster::Ownership::new(
        node_id.clone(),
        backend.lease_ttl,
    ));
    let renewing = Arc::new(tokio::sync::Mutex::new(()));
    let coordinator: Arc<dyn hume::cluster::Coordinator> = backend.coordinator.clone();
    let mut stores = backend.stores.clone();
    stores.snapshots = Arc::new(hume::cluster::FencedSnapshots::new(
        stores.snapshots.clone(),
        ownership.clone(),
        coordinator.clone(),
        renewing.clone(),
    ));
    let parts = ClusterParts {
        node: node_id,
        coordinator,
        ownership,
        renewing,
    };
    Ok((stores, Box::new(backend.stores), Some(parts)))
}

/// The host name of an advertised URL (`http://NAME:PORT/...`).
pub(super) fn advertised_host(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    hume::api::guard::normalize_host_name(url.host_str()?).ok()
}
