//! Durable snapshot store in the `snapshots` column family of the one RocksDB.

use crate::db::Db;

use super::{decode, encode, SnapshotError, SnapshotStore, StoredSnapshot};

/// Name of the column family holding snapshots.
pub const CF: &str = "snapshots";

/// Snapshots in RocksDB: `key 0x00 offset(BE)` → encoded record. Saving
/// writes the new record and drops the older ones in one atomic write batch,
/// so a crash leaves either the old snapshot or the new one.
#[derive(Clone)]
pub struct RocksSnapshots {
    db: Db,
}

impl std::fmt::Debug for RocksSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksSnapshots").finish_non_exhaustive()
    }
}

/// `key 0x00`: the first byte string of every record of `key`.
fn prefix(key: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(key.len() + 1);
    p.extend_from_slice(key.as_bytes());
    p.push(0);
    p
}

/// `key 0x01`: just past every record of `key` (exclusive range end).
fn prefix_end(key: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(key.len() + 1);
    p.extend_from_slice(key.as_bytes());
    p.push(1);
    p
}

impl RocksSnapshots {
    /// A store over the `snapshots` column family of `db`.
    pub fn new(db: Db) -> Result<RocksSnapshots, SnapshotError> {
        if db.raw().cf_handle(CF).is_none() {
            return Err(SnapshotError::MissingColumnFamily(CF));
        }
        Ok(RocksSnapshots { db })
    }

    fn rocks(stage: &'static str, key: &str) -> impl FnOnce(rocksdb::Error) -> SnapshotError {
        let key = key.to_string();
        move |source| SnapshotError::Rocks { stage, key, source }
    }
}

impl SnapshotStore for RocksSnapshots {
    fn save(&self, key: &str, snapshot: &StoredSnapshot) -> Result<(), SnapshotError> {
        let raw = self.db.raw();
        let cf = raw
            .cf_handle(CF)
            .ok_or(SnapshotError::MissingColumnFamily(CF))?;
        let mut record_key = prefix(key);
        record_key.extend_from_slice(&snapshot.offset.to_be_bytes());
        let mut batch = rocksdb::WriteBatch::default();
        // History bound 1: drop every older (and, after a reset, newer) record.
        batch.delete_range_cf(&cf, prefix(key), prefix_end(key));
        batch.put_cf(&cf, &record_key, encode(snapshot));
        raw.write(batch).map_err(Self::rocks("save", key))
    }

    fn load(&self, key: &str) -> Result<Option<StoredSnapshot>, SnapshotError> {
        let raw = self.db.raw();
        let cf = raw
            .cf_handle(CF)
            .ok_or(SnapshotError::MissingColumnFamily(CF))?;
        let end = prefix_end(key);
        let start = prefix(key);
        let mut it = raw.iterator_cf(
            &cf,
            rocksdb::IteratorMode::From(&end, rocksdb::Direction::Reverse),
        );
        match it.next() {
            Some(Ok((k, v))) if k.starts_with(&start) => decode(key, &v).map(Some),
            Some(Err(source)) => Err(SnapshotError::Rocks {
                stage: "load",
                key: key.to_string(),
                source,
            }),
            _ => Ok(None),
        }
    }

    fn delete(&self, key: &str) -> Result<(), SnapshotError> {
        let raw = self.db.raw();
        let cf = raw
            .cf_handle(CF)
            .ok_or(SnapshotError::MissingColumnFamily(CF))?;
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_range_cf(&cf, prefix(key), prefix_end(key));
        raw.write(batch).map_err(Self::rocks("delete", key))
    }
}
