//! Deployments: what a deployed projection is made of ([`config`]) and the
//! store that keeps the records and the plugin bytes ([`DeploymentStore`]),
//! implemented by each backend in [`crate::backend`].

pub mod change;
pub mod config;
pub mod partition;

use futures::future::BoxFuture;

pub use partition::{PartitionBy, PartitionByError};

pub use config::{
    validate_name, DeploymentRecord, ProjectionOptions, SnapshotStoreKind, StartFrom, VersionRecord,
};

use crate::storage::StorageError;

/// Why reading or writing deployment records failed.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The backend failed.
    #[error("deployment records: {0}")]
    Storage(#[source] StorageError),
    /// A stored record is not valid JSON of the expected shape.
    #[error(
        "deployment record `{name}` is corrupt (written by another Hume version?): undeploy \
         and deploy it again"
    )]
    Corrupt {
        /// The projection name.
        name: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// Deployment records (one per projection name) and plugin bytes
/// (content-addressed by sha256 hex). Every change is one atomic write:
/// nothing is ever half-deployed.
pub trait DeploymentStore: Send + Sync + 'static {
    /// Every deployment record, by name.
    fn load_all(&self) -> BoxFuture<'_, Result<Vec<DeploymentRecord>, DeploymentError>>;

    /// The plugin bytes stored under `hash`.
    fn plugin(&self, hash: &str) -> BoxFuture<'_, Result<Option<Vec<u8>>, DeploymentError>>;

    /// Write `record`, the plugin bytes `(hash, wasm)` when given, and drop
    /// the plugin bytes of `unused_hashes`, atomically.
    fn save(
        &self,
        record: DeploymentRecord,
        plugin: Option<(String, Vec<u8>)>,
        unused_hashes: Vec<String>,
    ) -> BoxFuture<'_, Result<(), DeploymentError>>;

    /// Remove the record of `name` and the plugin bytes of `unused_hashes`,
    /// atomically.
    fn remove(
        &self,
        name: &str,
        unused_hashes: Vec<String>,
    ) -> BoxFuture<'_, Result<(), DeploymentError>>;
}
