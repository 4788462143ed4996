//! The one error type that crosses the storage traits.
//!
//! Backends ([`crate::backend`]) turn their own failures into a
//! [`StorageError`] that keeps the original error as its source, so a
//! message printed with its chain still says what the engine reported, while
//! no layer above the backends depends on an engine's types.

use std::error::Error;
use std::sync::Arc;

/// What kind of storage failure happened, so callers can answer it well
/// (a full disk is a 507, a damaged store needs an operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The disk (or the backend's quota) is full.
    NoSpace,
    /// Stored data is damaged or was written by something else.
    Corruption,
    /// An earlier write failed in a way that leaves its durability unknown
    /// (an fsync or write error): the store refuses every write until the
    /// server restarts and reads back what is really on disk. That failure
    /// was logged when it happened; this one is only its echo.
    WritesStopped,
    /// The store cannot serve this right now (a cluster with no leader for
    /// it, e.g. during an election, or no server answering); nothing was
    /// written, and retrying shortly is safe.
    Unavailable,
    /// A write was sent but its acknowledgement never came: it may or may
    /// not have been stored.
    OutcomeUnknown,
    /// Any other failure (I/O, the engine refused, ...).
    Other,
}

/// A backend failure, neutral of the engine, with the engine's error as its
/// source.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage failed while {stage}: {source}")]
pub struct StorageError {
    /// What the store was doing (`reading events`, `saving a snapshot`, ...).
    pub stage: &'static str,
    /// The kind of failure.
    pub kind: StorageErrorKind,
    /// The engine's own error.
    #[source]
    pub source: Arc<dyn Error + Send + Sync + 'static>,
}

impl StorageError {
    /// Wrap an engine error.
    pub fn new(
        stage: &'static str,
        kind: StorageErrorKind,
        source: impl Error + Send + Sync + 'static,
    ) -> StorageError {
        StorageError {
            stage,
            kind,
            source: Arc::new(source),
        }
    }
}

/// Is there a [`StorageError`] of `kind` anywhere in `err`'s source chain?
pub fn has_kind(err: &(dyn Error + 'static), kind: StorageErrorKind) -> bool {
    let mut cur: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<StorageError>()
            .is_some_and(|s| s.kind == kind)
        {
            return true;
        }
        cur = e.source();
    }
    false
}
