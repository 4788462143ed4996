//! Cluster mode: the cluster task tells the manager which projections this
//! node owns. It starts a projection it gains from its stored record and
//! stops one it loses (with a final snapshot when it gives it up, without
//! one when the lease is already gone).

use super::{stop_actor, Manager};
use crate::deployment::DeploymentRecord;
use crate::projection::error::ProjectionError;

impl Manager {
    /// The projections this node runs now.
    pub fn running(&self) -> Vec<String> {
        self.read_entries().keys().cloned().collect()
    }

    /// Does `name` run on this node now? (Without listing every name.)
    pub fn runs_here(&self, name: &str) -> bool {
        self.read_entries().contains_key(name)
    }

    /// Events applied by the projections running here, summed (each since
    /// it started on this node): the cluster's load figure per node.
    pub fn applied_here(&self) -> u64 {
        self.read_entries()
            .values()
            .map(|e| {
                e.active
                    .live
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .applied
            })
            .sum()
    }

    /// Every deployed projection's record, from the deployment store.
    pub async fn deployed(&self) -> Result<Vec<DeploymentRecord>, ProjectionError> {
        Ok(self.inner.stores.deployments.load_all().await?)
    }

    /// Start running `record`'s projection here (this node now owns it),
    /// unless it runs already.
    pub async fn own(&self, record: DeploymentRecord) -> Result<(), ProjectionError> {
        let _changes = self.inner.changes.lock().await;
        if self.read_entries().contains_key(&record.name) {
            return Ok(());
        }
        self.restart(record).await
    }

    /// Stop running `name` here. `snapshot`: persist its state first (the
    /// lease is still held); otherwise end at once, writing nothing.
    pub async fn disown(&self, name: &str, snapshot: bool) {
        let Some(entry) = self.write_entries().remove(name) else {
            return;
        };
        stop_actor(entry.active, snapshot).await;
        if let Some(pending) = entry.pending {
            stop_actor(pending, snapshot).await;
        }
    }
}
