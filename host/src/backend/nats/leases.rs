//! Cluster ownership on JetStream key-value buckets (see `crate::cluster`):
//!
//! - `hume-nodes`: one key per live node, its [`NodeInfo`] as JSON;
//! - `hume-leases`: one key per owned projection, its [`Lease`] as JSON.
//!
//! Both buckets keep one value per key for `max_age` = the lease TTL, so a
//! node or a lease not refreshed within a TTL disappears. A lease is taken
//! with `create` (succeeds only when the key is absent, deleted or
//! expired), renewed with `update` against the revision its holder last
//! wrote (JetStream's expected last subject sequence: a compare-and-set on
//! the server) and released with a delete at that revision.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::TryStreamExt;

use super::{failed, subject, ConnectError};
use crate::cluster::{Coordinator, Lease, NodeInfo, StoredLease};
use crate::storage::StorageError;

/// The bucket of live nodes.
pub const NODES_BUCKET: &str = "hume-nodes";
/// The bucket of projection leases.
pub const LEASES_BUCKET: &str = "hume-leases";

/// Ownership on JetStream.
pub struct NatsCoordinator {
    nodes: kv::Store,
    leases: kv::Store,
}

impl std::fmt::Debug for NatsCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsCoordinator").finish_non_exhaustive()
    }
}

/// A key-value key for a name: the subject escaping, with `=` for `%`.
fn key_of(name: &str) -> String {
    subject::escape(name).replace('%', "=")
}

fn name_of(key: &str) -> Option<String> {
    subject::unescape(&key.replace('=', "%"))
}

/// Open (or create) a bucket whose values live `ttl`; an existing bucket
/// keeps its own TTL, which is returned.
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    ttl: Duration,
    replicas: usize,
) -> Result<(kv::Store, Duration), ConnectError> {
    let setup = |source: async_nats::Error| ConnectError::Setup {
        what: format!("opening key-value bucket {name}"),
        source,
    };
    let store = match js.get_key_value(name).await {
        Ok(store) => store,
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: name.to_string(),
                history: 1,
                max_age: ttl,
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(e.into()))?,
    };
    let age = store.status().await.map_err(|e| setup(e.into()))?.max_age();
    Ok((store, if age.is_zero() { ttl } else { age }))
}

impl NatsCoordinator {
    /// Open the buckets; the lease TTL in force (an existing bucket's, or
    /// `ttl` for new ones).
    pub(super) async fn open(
        js: &jetstream::Context,
        ttl: Duration,
        replicas: usize,
    ) -> Result<(NatsCoordinator, Duration), ConnectError> {
        let (leases, in_force) = bucket(js, LEASES_BUCKET, ttl, replicas).await?;
        let (nodes, _) = bucket(js, NODES_BUCKET, in_force, replicas).await?;
        Ok((NatsCoordinator { nodes, leases }, in_force))
    }

    async fn values(
        store: &kv::Store,
        stage: &'static str,
    ) -> Result<Vec<kv::Entry>, StorageError> {
        let keys: Vec<String> = store
            .keys()
            .await
            .map_err(|e| failed(stage, e))?
            .try_collect()
            .await
            .map_err(|e| failed(stage, e))?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match store.entry(key).await.map_err(|e| failed(stage, e))? {
                Some(e) if e.operation == kv::Operation::Put => out.push(e),
                _ => {}
            }
        }
        Ok(out)
    }
}

fn json<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("plain data serializes"))
}

impl Coordinator for NatsCoordinator {
    fn heartbeat<'a>(&'a self, node: &'a NodeInfo) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            self.nodes
                .put(key_of(&node.id), json(node))
                .await
                .map_err(|e| failed("registering the node", e))?;
            Ok(())
        })
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, StorageError>> {
        Box::pin(async move {
            let entries = Self::values(&self.nodes, "listing the nodes").await?;
            Ok(entries
                .iter()
                .filter_map(|e| serde_json::from_slice(&e.value).ok())
                .collect())
        })
    }

    fn leave<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            self.nodes
                .delete(key_of(node))
                .await
                .map_err(|e| failed("leaving the node registry", e))
        })
    }

    fn leases(&self) -> BoxFuture<'_, Result<Vec<StoredLease>, StorageError>> {
        Box::pin(async move {
            let entries = Self::values(&self.leases, "listing the leases").await?;
            Ok(entries
                .iter()
                .filter_map(|e| {
                    let mut lease: Lease = serde_json::from_slice(&e.value).ok()?;
                    if lease.epoch == 0 {
                        lease.epoch = e.revision;
                    }
                    Some(StoredLease {
                        name: name_of(&e.key)?,
                        lease,
                        revision: e.revision,
                    })
                })
                .collect())
        })
    }

    fn lease<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Lease>, StorageError>> {
        Box::pin(async move {
            let entry = self
                .leases
                .entry(key_of(name))
                .await
                .map_err(|e| failed("reading a lease", e))?;
            Ok(entry.and_then(|e| {
                let mut lease: Lease = serde_json::from_slice(&e.value).ok()?;
                if lease.epoch == 0 {
                    lease.epoch = e.revision;
                }
                Some(lease)
            }))
        })
    }

    fn acquire<'a>(
        &'a self,
        name: &'a str,
        node: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StorageError>> {
        Box::pin(async move {
            // Epoch 0 stands for "the revision of this very write".
            let value = json(&Lease {
                node: node.to_string(),
                epoch: 0,
            });
            match self.leases.create(key_of(name), value).await {
                Ok(revision) => Ok(Some(revision)),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(failed("taking a lease", e)),
            }
        })
    }

    fn renew<'a>(
        &'a self,
        name: &'a str,
        lease: &'a Lease,
        revision: u64,
    ) -> BoxFuture<'a, Result<Option<u64>, StorageError>> {
        Box::pin(async move {
            match self
                .leases
                .update(key_of(name), json(lease), revision)
                .await
            {
                Ok(revision) => Ok(Some(revision)),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
                Err(e) => Err(failed("renewing a lease", e)),
            }
        })
    }

    fn release<'a>(
        &'a self,
        name: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            // A lease that moved on meanwhile is someone else's: left alone.
            let _ = self
                .leases
                .delete_expect_revision(key_of(name), Some(revision))
                .await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for name in ["kv", "bank-1", "a.b", "x%y=z", "ünï"] {
            let key = key_of(name);
            assert!(key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)));
            assert_eq!(name_of(&key).as_deref(), Some(name));
        }
    }
}
