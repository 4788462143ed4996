//! Snapshots of partitioned projections in the `snapshots` column family:
//! `key 0x02` → the head (offset, scanned), `key 0x03 partition` → one
//! partition's record. A save writes the head and the changed partitions in
//! one write batch; a load reads them from one RocksDB snapshot, so a crash
//! or a concurrent save never mixes an offset with partitions of another.

use super::db::{Db, CF_SNAPSHOTS};
use super::log::neutral;
use crate::snapshot::{
    decode, decode_partition, encode, encode_partition, PartitionRecord, PartitionedSnapshot,
    SnapshotError, StoredSnapshot,
};

/// `key 0x02`: the head record.
fn head_key(key: &str) -> Vec<u8> {
    let mut k = key.as_bytes().to_vec();
    k.push(2);
    k
}

/// `key 0x03`: the first byte string of every partition record.
fn partitions_prefix(key: &str) -> Vec<u8> {
    let mut k = key.as_bytes().to_vec();
    k.push(3);
    k
}

/// `key 0x04`: just past every partition record (and every record of
/// `key`: plain snapshots use `key 0x00`).
pub(super) fn all_end(key: &str) -> Vec<u8> {
    let mut k = key.as_bytes().to_vec();
    k.push(4);
    k
}

fn failed(stage: &'static str, key: &str) -> impl FnOnce(rocksdb::Error) -> SnapshotError {
    let key = key.to_string();
    move |e| SnapshotError::Storage {
        key,
        source: neutral(stage, e),
    }
}

/// Write the head and the changed partitions atomically (blocking).
pub(super) fn save(
    db: &Db,
    key: &str,
    head: &StoredSnapshot,
    changed: &[PartitionRecord],
) -> Result<(), SnapshotError> {
    let cf = db.cf(CF_SNAPSHOTS);
    let mut batch = rocksdb::WriteBatch::default();
    let head = StoredSnapshot {
        state: Vec::new(),
        ..head.clone()
    };
    batch.put_cf(&cf, head_key(key), encode(&head));
    for record in changed {
        let mut k = partitions_prefix(key);
        k.extend_from_slice(record.key.as_bytes());
        batch.put_cf(&cf, k, encode_partition(record));
    }
    db.check_space("saving partition snapshots", batch.size_in_bytes() as u64)
        .map_err(|source| SnapshotError::Storage {
            key: key.to_string(),
            source,
        })?;
    db.raw()
        .write(batch)
        .map_err(failed("saving partition snapshots", key))
}

/// Read the head and every partition from one consistent view (blocking).
pub(super) fn load(db: &Db, key: &str) -> Result<Option<PartitionedSnapshot>, SnapshotError> {
    let raw = db.raw();
    let cf = db.cf(CF_SNAPSHOTS);
    let view = raw.snapshot();
    let mut opts = rocksdb::ReadOptions::default();
    opts.set_snapshot(&view);
    let Some(head) = raw
        .get_cf_opt(&cf, head_key(key), &opts)
        .map_err(failed("loading partition snapshots", key))?
    else {
        return Ok(None);
    };
    let head = decode(key, &head)?;
    let mut opts = rocksdb::ReadOptions::default();
    opts.set_snapshot(&view);
    opts.set_iterate_upper_bound(all_end(key));
    let prefix = partitions_prefix(key);
    let mut it = raw.raw_iterator_cf_opt(&cf, opts);
    it.seek(&prefix);
    let mut partitions = Vec::new();
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        let name = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
        partitions.push(decode_partition(key, name, v)?);
        it.next();
    }
    it.status()
        .map_err(failed("loading partition snapshots", key))?;
    Ok(Some(PartitionedSnapshot { head, partitions }))
}
