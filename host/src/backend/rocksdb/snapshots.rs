//! Durable snapshot store, history included, in the `snapshots` column
//! family of the one RocksDB.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::blocking;
use super::db::{Db, CF_SNAPSHOTS};
use super::log::neutral;
use crate::snapshot::{
    decode, encode, PartitionRecord, PartitionedSnapshot, Retention, SnapshotError, SnapshotMeta,
    SnapshotStore, StoredSnapshot,
};

/// Snapshots in RocksDB: `key 0x00 offset(BE)` → encoded record, so the
/// records of one key iterate in offset order. Saving writes the new record
/// and deletes what the retention drops in one atomic write batch, so a
/// crash leaves either the old set or the new one.
#[derive(Clone)]
pub struct RocksSnapshots {
    db: Db,
    /// The offsets stored under each key seen so far (ascending), so a save
    /// can apply retention without reading the records back.
    offsets: Arc<Mutex<HashMap<String, Vec<u64>>>>,
}

impl std::fmt::Debug for RocksSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksSnapshots").finish_non_exhaustive()
    }
}

/// `key 0x00`: the first byte string of every record of `key`.
fn prefix(key: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(key.len() + 9);
    p.extend_from_slice(key.as_bytes());
    p.push(0);
    p
}

/// `key 0x01`: just past every record of `key` (exclusive range end).
fn prefix_end(key: &str) -> Vec<u8> {
    let mut p = prefix(key);
    *p.last_mut().expect("prefix ends with 0") = 1;
    p
}

fn record_key(key: &str, offset: u64) -> Vec<u8> {
    let mut k = prefix(key);
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

fn failed(stage: &'static str, key: &str) -> impl FnOnce(rocksdb::Error) -> SnapshotError {
    let key = key.to_string();
    move |e| SnapshotError::Storage {
        key,
        source: neutral(stage, e),
    }
}

/// The storage error of a task for `key`.
fn task_failed(key: &str) -> impl FnOnce(crate::storage::StorageError) -> SnapshotError {
    let key = key.to_string();
    move |source| SnapshotError::Storage { key, source }
}

impl RocksSnapshots {
    /// A store over the `snapshots` column family of `db`.
    pub fn new(db: Db) -> RocksSnapshots {
        RocksSnapshots {
            db,
            offsets: Arc::default(),
        }
    }

    /// Every record of `key`, oldest first (blocking).
    fn records(&self, key: &str) -> Result<Vec<StoredSnapshot>, SnapshotError> {
        let raw = self.db.raw();
        let cf = self.db.cf(CF_SNAPSHOTS);
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_iterate_upper_bound(prefix_end(key));
        let mut it = raw.raw_iterator_cf_opt(&cf, opts);
        it.seek(prefix(key));
        let mut out = Vec::new();
        while let Some(v) = it.value() {
            out.push(decode(key, v)?);
            it.next();
        }
        it.status().map_err(failed("listing snapshots", key))?;
        Ok(out)
    }

    /// The offsets under `key`, from the cache or read once.
    fn offsets_of(&self, key: &str) -> Result<Vec<u64>, SnapshotError> {
        if let Some(o) = self
            .offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Ok(o.clone());
        }
        let offsets: Vec<u64> = self.records(key)?.iter().map(|s| s.offset).collect();
        self.offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), offsets.clone());
        Ok(offsets)
    }

    fn save_blocking(
        &self,
        key: &str,
        snapshot: &StoredSnapshot,
        retention: Retention,
    ) -> Result<(), SnapshotError> {
        let mut offsets = self.offsets_of(key)?;
        let cf = self.db.cf(CF_SNAPSHOTS);
        let mut batch = rocksdb::WriteBatch::default();
        // Records above the new offset are left from before a reset; one
        // at the same offset (a projection that fell asleep saves again
        // with a later `scanned`) is overwritten by the put below. Point
        // deletes of the offsets known to exist, never a range tombstone:
        // RocksDB 7.x fragments every range tombstone in the memtable each
        // time an iterator is created, so one per save made every later
        // snapshot read slower (100,000 projections falling asleep made a
        // shutdown take minutes of CPU).
        let stale_from = offsets.partition_point(|o| *o < snapshot.offset);
        for offset in &offsets[stale_from..] {
            if *offset != snapshot.offset {
                batch.delete_cf(&cf, record_key(key, *offset));
            }
        }
        offsets.truncate(stale_from);
        offsets.push(snapshot.offset);
        let drops = retention.drops(&offsets);
        for offset in &drops {
            batch.delete_cf(&cf, record_key(key, *offset));
        }
        offsets.retain(|o| !drops.contains(o));
        batch.put_cf(&cf, record_key(key, snapshot.offset), encode(snapshot));
        // Below the free-space watermark nothing is written: the projection
        // keeps its state in memory and snapshots again once space is back.
        self.db
            .check_space("saving a snapshot", batch.size_in_bytes() as u64)
            .map_err(|source| SnapshotError::Storage {
                key: key.to_string(),
                source,
            })?;
        let result = self
            .db
            .raw()
            .write(batch)
            .map_err(failed("saving a snapshot", key));
        let mut cache = self.offsets.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Ok(()) => {
                cache.insert(key.to_string(), offsets);
            }
            // Unknown what reached the disk: read it again next time.
            Err(_) => {
                cache.remove(key);
            }
        }
        result
    }

    fn at_or_below_blocking(
        &self,
        key: &str,
        position: u64,
    ) -> Result<Option<StoredSnapshot>, SnapshotError> {
        let raw = self.db.raw();
        let cf = self.db.cf(CF_SNAPSHOTS);
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_iterate_lower_bound(prefix(key));
        let mut it = raw.raw_iterator_cf_opt(&cf, opts);
        it.seek_for_prev(record_key(key, position));
        let found = match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.starts_with(&prefix(key)) => Some(decode(key, v)?),
            _ => None,
        };
        it.status().map_err(failed("loading a snapshot", key))?;
        Ok(found)
    }

    fn delete_blocking(&self, key: &str) -> Result<(), SnapshotError> {
        let cf = self.db.cf(CF_SNAPSHOTS);
        let mut batch = rocksdb::WriteBatch::default();
        // Plain records, and a partitioned projection's head and partitions.
        batch.delete_range_cf(&cf, prefix(key), super::partitions::all_end(key));
        let result = self
            .db
            .raw()
            .write(batch)
            .map_err(failed("deleting snapshots", key));
        self.offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        result
    }
}

impl SnapshotStore for RocksSnapshots {
    fn save<'a>(
        &'a self,
        key: &'a str,
        snapshot: StoredSnapshot,
        retention: Retention,
    ) -> BoxFuture<'a, Result<(), SnapshotError>> {
        let this = self.clone();
        let owned = key.to_string();
        Box::pin(blocking(
            move || this.save_blocking(&owned, &snapshot, retention),
            task_failed(key),
        ))
    }

    fn latest<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, SnapshotError>> {
        self.at_or_below(key, u64::MAX)
    }

    fn at_or_below<'a>(
        &'a self,
        key: &'a str,
        position: u64,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, SnapshotError>> {
        let this = self.clone();
        let owned = key.to_string();
        Box::pin(blocking(
            move || this.at_or_below_blocking(&owned, position),
            task_failed(key),
        ))
    }

    fn list<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<SnapshotMeta>, SnapshotError>> {
        let this = self.clone();
        let owned = key.to_string();
        Box::pin(blocking(
            move || {
                Ok(this
                    .records(&owned)?
                    .iter()
                    .map(StoredSnapshot::meta)
                    .collect())
            },
            task_failed(key),
        ))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SnapshotError>> {
        let this = self.clone();
        let owned = key.to_string();
        Box::pin(blocking(
            move || this.delete_blocking(&owned),
            task_failed(key),
        ))
    }

    fn save_partitions<'a>(
        &'a self,
        key: &'a str,
        head: StoredSnapshot,
        changed: Vec<PartitionRecord>,
    ) -> BoxFuture<'a, Result<(), SnapshotError>> {
        let db = self.db.clone();
        let owned = key.to_string();
        Box::pin(blocking(
            move || super::partitions::save(&db, &owned, &head, &changed),
            task_failed(key),
        ))
    }

    fn load_partitions<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PartitionedSnapshot>, SnapshotError>> {
        let db = self.db.clone();
        let owned = key.to_string();
        Box::pin(blocking(
            move || super::partitions::load(&db, &owned),
            task_failed(key),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::rocksdb::DbOptions;

    fn snap(offset: u64, scanned: u64) -> StoredSnapshot {
        StoredSnapshot {
            offset,
            scanned,
            plugin_hash: "h".into(),
            state: format!("{offset}/{scanned}").into_bytes(),
            taken_at: 0,
        }
    }

    #[tokio::test]
    async fn a_save_replaces_the_same_offset_and_drops_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), &DbOptions::default()).unwrap();
        let store = RocksSnapshots::new(db);
        let keep = Retention::default();
        for offset in [10, 20, 30] {
            store.save("p", snap(offset, offset), keep).await.unwrap();
        }
        store.save("other", snap(25, 25), keep).await.unwrap();
        // Asleep at 20 with a later `scanned`, after a reset left 30 behind.
        store.save("p", snap(20, 40), keep).await.unwrap();
        let offsets: Vec<u64> = store
            .records("p")
            .unwrap()
            .iter()
            .map(|s| s.offset)
            .collect();
        assert_eq!(offsets, [10, 20]);
        let latest = store.latest("p").await.unwrap().unwrap();
        assert_eq!((latest.offset, latest.scanned), (20, 40));
        assert_eq!(latest.state, b"20/40");
        assert_eq!(
            store.records("other").unwrap().len(),
            1,
            "other keys untouched"
        );
        // A fresh store (no cached offsets) sees the same.
        let again = RocksSnapshots::new(store.db.clone());
        assert_eq!(again.records("p").unwrap().len(), 2);
    }
}
