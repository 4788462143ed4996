//! Snapshot stores: where a live projection persists `(offset, plugin hash,
//! state)` so that it restarts from there instead of from the beginning,
//! and keeps a bounded history of them so that the state at any earlier
//! position can be rebuilt by replaying a bounded number of events (time
//! travel, [`crate::projection::travel`]).
//!
//! [`SnapshotStore`] is the trait; implementations live in
//! [`crate::backend`] (durable: RocksDB; in process: memory). A snapshot is
//! always written as one unit together with the pruning of the history that
//! its [`Retention`] asks for: a reader sees the old set or the new one,
//! never an offset of one with the state of another.

mod partitions;
mod retention;

use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

pub use partitions::{decode_partition, encode_partition, PartitionRecord, PartitionedSnapshot};
pub use retention::{Retention, RetentionParseError};

use crate::storage::StorageError;

/// One persisted snapshot of a projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// Global position of the last event applied to `state` (0 = none).
    pub offset: u64,
    /// Every log position up to this one has been examined (`>= offset`): a
    /// projection following few streams restarts reading after it.
    pub scanned: u64,
    /// Content hash (sha256 hex) of the plugin that produced `state`.
    pub plugin_hash: String,
    /// The plugin's serialised state, as returned by its `snapshot()`.
    pub state: Vec<u8>,
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub taken_at: u64,
}

impl StoredSnapshot {
    /// What a listing shows of this snapshot.
    pub fn meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            offset: self.offset,
            scanned: self.scanned,
            plugin_hash: self.plugin_hash.clone(),
            size: self.state.len() as u64,
            taken_at: self.taken_at,
        }
    }
}

/// A retained snapshot without its state (what `hume snapshots` lists).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotMeta {
    /// Offset of the snapshot.
    pub offset: u64,
    /// Positions examined up to.
    pub scanned: u64,
    /// Plugin that produced it.
    pub plugin_hash: String,
    /// Size of the state in bytes.
    pub size: u64,
    /// When it was taken (ms since the Unix epoch).
    pub taken_at: u64,
}

/// Why a snapshot store failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The backend failed.
    #[error("snapshot store, `{key}`: {source}")]
    Storage {
        /// The snapshot key.
        key: String,
        /// The backend's failure.
        #[source]
        source: StorageError,
    },
    /// A stored record could not be decoded.
    #[error("snapshot store: the record for `{key}` is corrupt: {reason}")]
    Corrupt {
        /// The snapshot key.
        key: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The store cannot keep what was asked of it.
    #[error(
        "snapshot store, `{key}`: this store does not keep {what}; deploy with the durable or \
         the memory snapshot store"
    )]
    Unsupported {
        /// The snapshot key.
        key: String,
        /// What it cannot keep.
        what: &'static str,
    },
}

/// A place to keep the snapshots of each projection version, newest and
/// history.
///
/// Keys are opaque to the store (the projection runtime uses one key per
/// projection version). Every call is async: durable implementations do
/// their I/O off the async workers.
pub trait SnapshotStore: Send + Sync + 'static {
    /// Write `snapshot` under `key` and, in the same atomic write, drop the
    /// records `retention` no longer keeps, and every record at or above
    /// `snapshot.offset` (left over from before a reset).
    fn save<'a>(
        &'a self,
        key: &'a str,
        snapshot: StoredSnapshot,
        retention: Retention,
    ) -> BoxFuture<'a, Result<(), SnapshotError>>;

    /// The newest snapshot under `key`, if any.
    fn latest<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, SnapshotError>>;

    /// The newest snapshot under `key` whose offset is at or below
    /// `position`, if any.
    fn at_or_below<'a>(
        &'a self,
        key: &'a str,
        position: u64,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, SnapshotError>>;

    /// Every retained snapshot under `key`, oldest first, without states.
    fn list<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<SnapshotMeta>, SnapshotError>>;

    /// Forget every snapshot under `key`, partitions included (no error
    /// when there is none).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SnapshotError>>;

    /// Partitioned projections: write `head` (offset and scanned; its
    /// state is ignored) and the `changed` partitions under `key` in ONE
    /// atomic write. Partitions not given keep their records.
    fn save_partitions<'a>(
        &'a self,
        key: &'a str,
        head: StoredSnapshot,
        changed: Vec<PartitionRecord>,
    ) -> BoxFuture<'a, Result<(), SnapshotError>> {
        let _ = (head, changed);
        Box::pin(std::future::ready(Err(SnapshotError::Unsupported {
            key: key.to_string(),
            what: "partitioned projections",
        })))
    }

    /// Partitioned projections: the head and every partition under `key`,
    /// as one consistent read; `None` when nothing was saved.
    fn load_partitions<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PartitionedSnapshot>, SnapshotError>> {
        Box::pin(std::future::ready(Err(SnapshotError::Unsupported {
            key: key.to_string(),
            what: "partitioned projections",
        })))
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const FORMAT_V1: u8 = 1;

/// Encode a snapshot record: version byte, offset, scanned, taken_at (u64 BE
/// each), hash length (u16 BE), hash, then the state bytes.
pub fn encode(s: &StoredSnapshot) -> Vec<u8> {
    let hash = s.plugin_hash.as_bytes();
    let mut out = Vec::with_capacity(1 + 24 + 2 + hash.len() + s.state.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&s.offset.to_be_bytes());
    out.extend_from_slice(&s.scanned.to_be_bytes());
    out.extend_from_slice(&s.taken_at.to_be_bytes());
    out.extend_from_slice(&(hash.len() as u16).to_be_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(&s.state);
    out
}

/// Decode what [`encode`] wrote.
pub fn decode(key: &str, bytes: &[u8]) -> Result<StoredSnapshot, SnapshotError> {
    let corrupt = |reason| SnapshotError::Corrupt {
        key: key.to_string(),
        reason,
    };
    if bytes.first() != Some(&FORMAT_V1) {
        return Err(corrupt("unknown format version"));
    }
    if bytes.len() < 27 {
        return Err(corrupt("record too short"));
    }
    let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let hash_len = u16::from_be_bytes([bytes[25], bytes[26]]) as usize;
    let hash_end = 27 + hash_len;
    if bytes.len() < hash_end {
        return Err(corrupt("plugin hash truncated"));
    }
    let plugin_hash = std::str::from_utf8(&bytes[27..hash_end])
        .map_err(|_| corrupt("plugin hash is not UTF-8"))?
        .to_string();
    Ok(StoredSnapshot {
        offset: u64_at(1),
        scanned: u64_at(9),
        taken_at: u64_at(17),
        plugin_hash,
        state: bytes[hash_end..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let s = StoredSnapshot {
            offset: 42,
            scanned: 50,
            plugin_hash: "ab".repeat(32),
            state: br#"{"a":1}"#.to_vec(),
            taken_at: 1_700_000_000_000,
        };
        assert_eq!(decode("k", &encode(&s)).unwrap(), s);
        assert!(decode("k", &[9, 9]).is_err());
        assert!(decode("k", &encode(&s)[..20]).is_err());
    }
}
