//! The embedded backend: one RocksDB under a data directory holds the
//! event log ([`RocksLog`], group commit), the snapshots and their history
//! ([`RocksSnapshots`]) and the deployments ([`RocksDeployments`]).

mod db;
mod deployments;
mod log;
mod partitions;
mod reads;
mod snapshots;
mod space;
mod writer;

use std::path::Path;
use std::sync::Arc;

/// The RocksDB crate itself, for tools that measure against raw RocksDB.
pub use ::rocksdb as engine;
pub use db::{
    Db, DbError, DbOptions, WalRecovery, CF_EVENTS, COLUMN_FAMILIES, DEFAULT_MIN_FREE_SPACE,
};
pub use deployments::RocksDeployments;
pub use log::{LogOptions, RocksLog};
pub use reads::Scan;
pub use snapshots::RocksSnapshots;
pub use space::DiskFull;

use super::memory::MemorySnapshots;
use crate::log::{checked, Limits, LogError};
use crate::storage::{StorageError, StorageErrorKind};
use crate::stores::Stores;

/// Why the embedded backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database did not open.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The log in it did not open.
    #[error("opening the event log in {path}: {source}")]
    Log {
        /// The data directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: LogError,
    },
}

/// An opened embedded backend.
pub struct RocksBackend {
    /// The stores, for the runtime.
    pub stores: Stores,
    /// The concrete log (its head, for the startup line; its scan, for tools).
    pub log: Arc<RocksLog>,
}

impl RocksBackend {
    /// Open (or create) the database in `dir` (blocking: call it off the
    /// async workers) and wrap its stores for the runtime, with `limits`
    /// checked on every append.
    pub fn open(
        dir: &Path,
        db_options: &DbOptions,
        log_options: LogOptions,
        limits: Limits,
    ) -> Result<RocksBackend, OpenError> {
        let db = Db::open(dir, db_options)?;
        let log =
            Arc::new(
                RocksLog::open(db.clone(), log_options).map_err(|source| OpenError::Log {
                    path: dir.to_path_buf(),
                    source,
                })?,
            );
        let stores = Stores {
            log: checked(log.clone(), limits),
            snapshots: Arc::new(RocksSnapshots::new(db.clone())),
            memory_snapshots: Arc::new(MemorySnapshots::default()),
            deployments: Arc::new(RocksDeployments::new(db)),
        };
        Ok(RocksBackend { stores, log })
    }
}

/// Run a RocksDB call on the blocking pool, off the async workers. A task
/// that panicked or was cancelled comes back as a storage error, wrapped by
/// `wrap` into the caller's error type.
pub(crate) async fn blocking<T: Send + 'static, E: Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
    wrap: impl FnOnce(StorageError) -> E,
) -> Result<T, E> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(join) => Err(wrap(StorageError::new(
            "running a RocksDB task",
            StorageErrorKind::Other,
            join,
        ))),
    }
}
