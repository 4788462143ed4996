//! Fenced snapshot writes: a node writes a projection's snapshot (its state
//! and offset) only right after a successful compare-and-set renewal of its
//! lease on that projection. A node that lost the lease (it expired while
//! the node was paused, or another node took it) fails that renewal and
//! writes nothing; the projection is then stopped on this node by the
//! cluster task.
//!
//! The renewal and the write are two store operations: a node paused in
//! the few microseconds between them, for longer than the TTL, could still
//! write one snapshot. That snapshot holds a correct state for its offset
//! (folds are deterministic), and the new owner's next snapshot supersedes
//! it; no write at all follows a failed renewal.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{renew_lease, Coordinator, NotOwner, Ownership, Renewal};
use crate::snapshot::{
    PartitionRecord, PartitionedSnapshot, Retention, SnapshotError, SnapshotMeta, SnapshotStore,
    StoredSnapshot,
};
use crate::storage::{StorageError, StorageErrorKind};

/// The projection a snapshot key belongs to (`name@version`).
pub fn projection_of(key: &str) -> &str {
    key.split('@').next().unwrap_or(key)
}

/// A snapshot store whose writes need the lease.
pub struct FencedSnapshots {
    inner: Arc<dyn SnapshotStore>,
    ownership: Arc<Ownership>,
    coordinator: Arc<dyn Coordinator>,
    /// One renewal at a time: two compare-and-sets on the same revision
    /// would make the second look like a lost lease.
    renewing: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for FencedSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FencedSnapshots").finish_non_exhaustive()
    }
}

impl FencedSnapshots {
    /// Fence the writes to `inner` with the leases in `ownership`;
    /// `renewing` is shared with the cluster task.
    pub fn new(
        inner: Arc<dyn SnapshotStore>,
        ownership: Arc<Ownership>,
        coordinator: Arc<dyn Coordinator>,
        renewing: Arc<tokio::sync::Mutex<()>>,
    ) -> FencedSnapshots {
        FencedSnapshots {
            inner,
            ownership,
            coordinator,
            renewing,
        }
    }

    fn not_owner(&self, key: &str) -> SnapshotError {
        SnapshotError::Storage {
            key: key.to_string(),
            source: StorageError::new(
                "fencing a snapshot write",
                StorageErrorKind::Other,
                NotOwner {
                    name: projection_of(key).to_string(),
                    node: self.ownership.node().to_string(),
                },
            ),
        }
    }

    /// Renew the lease of `key`'s projection; `Err` when it is not ours.
    async fn fence(&self, key: &str) -> Result<(), SnapshotError> {
        let name = projection_of(key);
        match renew_lease(&*self.coordinator, &self.ownership, &self.renewing, name).await {
            Renewal::Renewed => Ok(()),
            Renewal::NotHeld | Renewal::Lost => Err(self.not_owner(key)),
            Renewal::Failed(source) => Err(SnapshotError::Storage {
                key: key.to_string(),
                source,
            }),
        }
    }
}

impl SnapshotStore for FencedSnapshots {
    fn save<'a>(
        &'a self,
        key: &'a str,
        snapshot: StoredSnapshot,
        retention: Retention,
    ) -> BoxFuture<'a, Result<(), SnapshotError>> {
        Box::pin(async move {
            self.fence(key).await?;
            self.inner.save(key, snapshot, retention).await
        })
    }

    fn latest<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, SnapshotError>> {
        self.inner.latest(key)
    }

    fn at_or_below<'a>(
        &'a self,
        key: &'a str,
        position: u64,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, SnapshotError>> {
        self.inner.at_or_below(key, position)
    }

    fn list<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<SnapshotMeta>, SnapshotError>> {
        self.inner.list(key)
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SnapshotError>> {
        self.inner.delete(key)
    }

    fn save_partitions<'a>(
        &'a self,
        key: &'a str,
        head: StoredSnapshot,
        changed: Vec<PartitionRecord>,
    ) -> BoxFuture<'a, Result<(), SnapshotError>> {
        Box::pin(async move {
            self.fence(key).await?;
            self.inner.save_partitions(key, head, changed).await
        })
    }

    fn load_partitions<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PartitionedSnapshot>, SnapshotError>> {
        self.inner.load_partitions(key)
    }
}
