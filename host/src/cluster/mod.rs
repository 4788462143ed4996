//! Cluster ownership: which node applies which projection.
//!
//! Several `hume serve --cluster` nodes share one store (see
//! `backend::nats`); each projection must be applied by exactly one node at
//! a time. There is no consensus protocol of Hume's own: the store keeps
//! - a **node registry** (one key per live node, refreshed every third of
//!   the lease TTL; a key not refreshed for a TTL disappears), and
//! - one **lease** per projection (owner node id and epoch), taken with a
//!   create-if-absent and renewed with a compare-and-set against the
//!   revision the owner last wrote; a lease not renewed for a TTL expires.
//!
//! Every node computes the same target assignment from the sorted live
//! nodes ([`assign`]); it takes only free (or expired) leases the target
//! gives it, and releases the ones it should no longer hold. A node whose
//! renewal fails, or whose lease outlived its TTL by the local clock (it was
//! paused), stops those projections at once. Snapshot writes are fenced
//! ([`FencedSnapshots`]): each is preceded by a successful compare-and-set
//! of the writer's lease, so a node that lost a lease never writes a
//! snapshot (that is, an offset) for that projection again.
//!
//! The pure parts ([`assign`], [`lease`]) are unit-tested; [`driver`] is
//! the thin task that drives them against a [`Coordinator`] (the store's
//! side, implemented by the backend) and the projection manager.

pub mod assign;
pub mod directory;
pub mod driver;
pub mod fenced;
pub mod lease;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use directory::Directory;
pub use driver::{ClusterConfig, ClusterHandle};
pub use fenced::FencedSnapshots;
pub use lease::{Held, Ownership};

use crate::storage::StorageError;

/// What a node says about itself in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node id (`hume serve --node-id`).
    pub id: String,
    /// Where its HTTP API answers (`http://host:port`).
    pub url: String,
    /// Projections it owns now.
    pub projections: usize,
    /// Plugin instances it keeps live now.
    #[serde(default)]
    pub live_instances: usize,
    /// Its load: events its projections applied per second, over the last
    /// registry refresh (a third of the lease TTL).
    #[serde(default)]
    pub events_per_sec: f64,
}

/// The value of a lease key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The owner node id.
    pub node: String,
    /// Grows with every new owner: the store's revision of the create that
    /// took the lease.
    pub epoch: u64,
}

/// A lease as read from the store: owner and the revision to compare with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLease {
    /// The projection.
    pub name: String,
    /// Owner and epoch.
    pub lease: Lease,
    /// The store's revision of this value.
    pub revision: u64,
}

/// The store's side of ownership: the node registry and the leases. The
/// TTL is the store's (keys not refreshed within it disappear).
pub trait Coordinator: Send + Sync + 'static {
    /// Register or refresh `node` in the registry.
    fn heartbeat<'a>(&'a self, node: &'a NodeInfo) -> BoxFuture<'a, Result<(), StorageError>>;
    /// Every live node.
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, StorageError>>;
    /// Remove `node` from the registry (at shutdown).
    fn leave<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), StorageError>>;
    /// Every lease held now.
    fn leases(&self) -> BoxFuture<'_, Result<Vec<StoredLease>, StorageError>>;
    /// The lease of `name`, if someone holds it (the default lists them
    /// all; a store with keyed reads answers with one).
    fn lease<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Lease>, StorageError>> {
        Box::pin(async move {
            Ok(self
                .leases()
                .await?
                .into_iter()
                .find(|l| l.name == name)
                .map(|l| l.lease))
        })
    }
    /// Take the lease of `name` for `node` if nobody holds it: its epoch
    /// and revision, or `None` when it is held.
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        node: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, StorageError>>;
    /// Renew the lease of `name` (compare-and-set on `revision`): the new
    /// revision, or `None` when it is no longer this holder's.
    fn renew<'a>(
        &'a self,
        name: &'a str,
        lease: &'a Lease,
        revision: u64,
    ) -> BoxFuture<'a, Result<Option<u64>, StorageError>>;
    /// Give the lease of `name` up (only if still at `revision`).
    fn release<'a>(
        &'a self,
        name: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, Result<(), StorageError>>;
}

/// What one compare-and-set renewal of a lease found.
#[derive(Debug)]
pub enum Renewal {
    /// Renewed: still ours for another TTL.
    Renewed,
    /// This node holds no valid lease on it (never had, or it expired by
    /// the local clock).
    NotHeld,
    /// Someone else holds it now (the compare-and-set failed); it was
    /// removed from `ownership`.
    Lost,
    /// The store could not be asked; the lease stands until its TTL.
    Failed(StorageError),
}

/// Renew `name`'s lease with a compare-and-set on the revision this node
/// last wrote. `renewing` serialises renewals (the cluster task and fenced
/// snapshot writes both renew): two compare-and-sets on one revision would
/// make the second look like a lost lease.
pub async fn renew_lease(
    coordinator: &dyn Coordinator,
    ownership: &Ownership,
    renewing: &tokio::sync::Mutex<()>,
    name: &str,
) -> Renewal {
    let _one = renewing.lock().await;
    let sent = std::time::Instant::now();
    let Some(held) = ownership.get(name, sent) else {
        return Renewal::NotHeld;
    };
    match coordinator.renew(name, &held.lease, held.revision).await {
        Ok(Some(revision)) => {
            ownership.renewed(name, held.revision, revision, sent);
            Renewal::Renewed
        }
        Ok(None) => {
            ownership.remove(name);
            Renewal::Lost
        }
        Err(err) => Renewal::Failed(err),
    }
}

/// A snapshot write refused because this node does not hold the lease.
#[derive(Debug, thiserror::Error)]
#[error("node `{node}` does not own projection `{name}` (its lease expired or moved to another node), so it may not write its snapshot; the owner does")]
pub struct NotOwner {
    /// The projection.
    pub name: String,
    /// This node.
    pub node: String,
}

#[cfg(test)]
mod renew_tests {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::*;

    /// A store whose renewals answer what the test says: the new revision,
    /// or `None` (another node's compare-and-set won).
    struct Scripted {
        answer: Mutex<Option<u64>>,
        asked: Mutex<Vec<u64>>,
    }

    fn unused<T: Send + 'static>() -> BoxFuture<'static, Result<T, StorageError>> {
        Box::pin(async { unreachable!("not used by renew_lease") })
    }

    impl Coordinator for Scripted {
        fn heartbeat<'a>(&'a self, _: &'a NodeInfo) -> BoxFuture<'a, Result<(), StorageError>> {
            unused()
        }
        fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, StorageError>> {
            unused()
        }
        fn leave<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
            unused()
        }
        fn leases(&self) -> BoxFuture<'_, Result<Vec<StoredLease>, StorageError>> {
            unused()
        }
        fn acquire<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<u64>, StorageError>> {
            unused()
        }
        fn renew<'a>(
            &'a self,
            _: &'a str,
            _: &'a Lease,
            revision: u64,
        ) -> BoxFuture<'a, Result<Option<u64>, StorageError>> {
            self.asked.lock().unwrap().push(revision);
            let answer = *self.answer.lock().unwrap();
            Box::pin(async move { Ok(answer) })
        }
        fn release<'a>(&'a self, _: &'a str, _: u64) -> BoxFuture<'a, Result<(), StorageError>> {
            unused()
        }
    }

    #[tokio::test]
    async fn a_renewal_compares_with_the_last_revision_and_a_lost_one_is_dropped() {
        let store = Scripted {
            answer: Mutex::new(Some(8)),
            asked: Mutex::default(),
        };
        let ownership = Ownership::new("a", Duration::from_secs(60));
        let one = tokio::sync::Mutex::new(());
        let lease = Lease {
            node: "a".into(),
            epoch: 3,
        };
        ownership.insert(
            "p",
            Held {
                lease,
                revision: 5,
                sent: Instant::now(),
            },
        );
        let renewed = renew_lease(&store, &ownership, &one, "p").await;
        assert!(matches!(renewed, Renewal::Renewed), "{renewed:?}");
        assert_eq!(ownership.get("p", Instant::now()).unwrap().revision, 8);

        // Another node's compare-and-set won: the lease is gone here, and
        // the next renewal does not even ask the store.
        *store.answer.lock().unwrap() = None;
        let lost = renew_lease(&store, &ownership, &one, "p").await;
        assert!(matches!(lost, Renewal::Lost), "{lost:?}");
        assert!(ownership.get("p", Instant::now()).is_none());
        let again = renew_lease(&store, &ownership, &one, "p").await;
        assert!(matches!(again, Renewal::NotHeld), "{again:?}");
        assert_eq!(
            *store.asked.lock().unwrap(),
            [5, 8],
            "compared with the last revision"
        );
    }
}
