//! Snapshot stores: where a live projection persists `(offset, plugin hash,
//! state)` so that it restarts from there instead of from the beginning.
//!
//! Two stores implement [`SnapshotStore`]:
//! - [`RocksSnapshots`]: durable, in the `snapshots` column family of the one
//!   RocksDB (`--snapshot-store rocksdb`, the default);
//! - [`MemorySnapshots`]: in process memory only, lost on restart (the seed's
//!   `use_ets`, `--snapshot-store memory`).
//!
//! A snapshot is always written as one unit: a reader sees the old snapshot or
//! the new one, never an offset of one with the state of the other. Keys leave
//! room for a bounded history per projection (time travel, planned): a record
//! lives under `key 0x00 offset(BE)`, and today only the newest is kept.

mod memory;
mod rocks;

use std::time::{SystemTime, UNIX_EPOCH};

pub use memory::MemorySnapshots;
pub use rocks::RocksSnapshots;

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

/// Why a snapshot store failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// RocksDB refused a read or a write.
    #[error("snapshot store: RocksDB {stage} failed for `{key}`")]
    Rocks {
        /// What the store was doing (`save`, `load`, `delete`).
        stage: &'static str,
        /// The snapshot key.
        key: String,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// The column family is missing: the database was opened without it.
    #[error("snapshot store: column family `{0}` is missing (open the data directory with `hume::db::Db::open`)")]
    MissingColumnFamily(&'static str),
    /// A stored record could not be decoded.
    #[error("snapshot store: the record for `{key}` is corrupt: {reason}")]
    Corrupt {
        /// The snapshot key.
        key: String,
        /// What was wrong with it.
        reason: &'static str,
    },
}

/// A place to keep the newest snapshot of each projection.
///
/// Keys are opaque to the store (the projection runtime uses one key per
/// projection version). Implementations are cheap to share (`Arc<dyn
/// SnapshotStore>`) and their calls are short and synchronous.
pub trait SnapshotStore: Send + Sync + 'static {
    /// Replace the snapshot under `key` with `snapshot`, atomically.
    fn save(&self, key: &str, snapshot: &StoredSnapshot) -> Result<(), SnapshotError>;
    /// The newest snapshot under `key`, if any.
    fn load(&self, key: &str) -> Result<Option<StoredSnapshot>, SnapshotError>;
    /// Forget every snapshot under `key` (no error when there is none).
    fn delete(&self, key: &str) -> Result<(), SnapshotError>;
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
pub(crate) fn encode(s: &StoredSnapshot) -> Vec<u8> {
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
pub(crate) fn decode(key: &str, bytes: &[u8]) -> Result<StoredSnapshot, SnapshotError> {
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

    #[test]
    fn memory_store_keeps_newest() {
        let store = MemorySnapshots::default();
        assert!(store.load("p").unwrap().is_none());
        let mut s = StoredSnapshot {
            offset: 1,
            scanned: 1,
            plugin_hash: "h".into(),
            state: vec![1],
            taken_at: 0,
        };
        store.save("p", &s).unwrap();
        s.offset = 2;
        store.save("p", &s).unwrap();
        assert_eq!(store.load("p").unwrap().unwrap().offset, 2);
        store.delete("p").unwrap();
        assert!(store.load("p").unwrap().is_none());
    }
}
