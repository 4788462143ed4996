//! What the runtime is given to store things in: one of each store,
//! behind its trait. A backend builds it; `hume serve` picks the backend.

use std::sync::Arc;

use crate::deployment::DeploymentStore;
use crate::log::EventLog;
use crate::snapshot::SnapshotStore;

/// The stores one server runs on: chosen by the wiring in `hume serve`,
/// used by the runtime through their traits only.
#[derive(Clone)]
pub struct Stores {
    /// The event log (validated: see [`crate::log::checked`]).
    pub log: Arc<dyn EventLog>,
    /// Durable snapshots (`--snapshot-store durable`, the default).
    pub snapshots: Arc<dyn SnapshotStore>,
    /// Snapshots in process memory (`--snapshot-store memory`).
    pub memory_snapshots: Arc<dyn SnapshotStore>,
    /// Deployment records and plugin bytes.
    pub deployments: Arc<dyn DeploymentStore>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
