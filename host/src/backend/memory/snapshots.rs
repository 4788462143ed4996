//! In-memory snapshot store (`--snapshot-store memory`, the seed's
//! `use_ets`), history included.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::future::BoxFuture;

use crate::snapshot::{
    PartitionRecord, PartitionedSnapshot, Retention, SnapshotError, SnapshotMeta, SnapshotStore,
    StoredSnapshot,
};

/// Snapshots kept in process memory: fast, and gone when the process exits
/// (a projection using it rebuilds from its start after a restart).
#[derive(Debug, Default)]
pub struct MemorySnapshots {
    /// key → offset → snapshot.
    snapshots: Mutex<HashMap<String, BTreeMap<u64, StoredSnapshot>>>,
    /// Partitioned projections: key → (head, partition key → record).
    partitioned: Mutex<HashMap<String, Partitioned>>,
}

type Partitioned = (StoredSnapshot, BTreeMap<String, PartitionRecord>);

impl MemorySnapshots {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, BTreeMap<u64, StoredSnapshot>>) -> T,
    ) -> T {
        f(&mut self.snapshots.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl SnapshotStore for MemorySnapshots {
    fn save<'a>(
        &'a self,
        key: &'a str,
        snapshot: StoredSnapshot,
        retention: Retention,
    ) -> BoxFuture<'a, Result<(), SnapshotError>> {
        self.with(|all| {
            let history = all.entry(key.to_string()).or_default();
            history.split_off(&snapshot.offset);
            history.insert(snapshot.offset, snapshot);
            let offsets: Vec<u64> = history.keys().copied().collect();
            for offset in retention.drops(&offsets) {
                history.remove(&offset);
            }
        });
        ready(Ok(()))
    }

    fn latest<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, SnapshotError>> {
        let found = self.with(|all| {
            all.get(key)
                .and_then(|h| h.last_key_value().map(|(_, s)| s.clone()))
        });
        ready(Ok(found))
    }

    fn at_or_below<'a>(
        &'a self,
        key: &'a str,
        position: u64,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, SnapshotError>> {
        let found = self.with(|all| {
            all.get(key)
                .and_then(|h| h.range(..=position).next_back().map(|(_, s)| s.clone()))
        });
        ready(Ok(found))
    }

    fn list<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<SnapshotMeta>, SnapshotError>> {
        let list = self.with(|all| {
            all.get(key)
                .map(|h| h.values().map(StoredSnapshot::meta).collect())
                .unwrap_or_default()
        });
        ready(Ok(list))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SnapshotError>> {
        self.with(|all| all.remove(key));
        self.partitioned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        ready(Ok(()))
    }

    fn save_partitions<'a>(
        &'a self,
        key: &'a str,
        head: StoredSnapshot,
        changed: Vec<PartitionRecord>,
    ) -> BoxFuture<'a, Result<(), SnapshotError>> {
        let mut all = self.partitioned.lock().unwrap_or_else(|p| p.into_inner());
        let entry = all
            .entry(key.to_string())
            .or_insert_with(|| (head.clone(), BTreeMap::new()));
        entry.0 = StoredSnapshot {
            state: Vec::new(),
            ..head
        };
        for record in changed {
            entry.1.insert(record.key.clone(), record);
        }
        ready(Ok(()))
    }

    fn load_partitions<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PartitionedSnapshot>, SnapshotError>> {
        let all = self.partitioned.lock().unwrap_or_else(|p| p.into_inner());
        let found = all.get(key).map(|(head, parts)| PartitionedSnapshot {
            head: head.clone(),
            partitions: parts.values().cloned().collect(),
        });
        ready(Ok(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(offset: u64) -> StoredSnapshot {
        StoredSnapshot {
            offset,
            scanned: offset,
            plugin_hash: "h".into(),
            state: vec![offset as u8],
            taken_at: 0,
        }
    }

    #[tokio::test]
    async fn keeps_history_by_retention_and_finds_at_or_below() {
        let store = MemorySnapshots::default();
        let policy = Retention {
            recent: 2,
            spacing: 10,
        };
        assert!(store.latest("p").await.unwrap().is_none());
        for o in [3, 6, 9, 12, 15, 18] {
            store.save("p", snap(o), policy).await.unwrap();
        }
        let offsets: Vec<u64> = store
            .list("p")
            .await
            .unwrap()
            .iter()
            .map(|m| m.offset)
            .collect();
        assert_eq!(offsets, vec![9, 15, 18]);
        assert_eq!(store.latest("p").await.unwrap().unwrap().offset, 18);
        assert_eq!(store.at_or_below("p", 14).await.unwrap().unwrap().offset, 9);
        assert!(store.at_or_below("p", 8).await.unwrap().is_none());
        // A save below the newest (after a reset) drops what is above it.
        store.save("p", snap(5), policy).await.unwrap();
        let offsets: Vec<u64> = store
            .list("p")
            .await
            .unwrap()
            .iter()
            .map(|m| m.offset)
            .collect();
        assert_eq!(offsets, vec![5]);
        store.delete("p").await.unwrap();
        assert!(store.latest("p").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn partitions_keep_unchanged_records_and_go_with_delete() {
        let store = MemorySnapshots::default();
        let part = |key: &str, last| PartitionRecord {
            key: key.into(),
            last_position: last,
            events: 1,
            state: vec![last as u8],
            fault: None,
        };
        assert!(store.load_partitions("p").await.unwrap().is_none());
        store
            .save_partitions("p", snap(2), vec![part("a", 1), part("b", 2)])
            .await
            .unwrap();
        store
            .save_partitions("p", snap(5), vec![part("b", 5)])
            .await
            .unwrap();
        let loaded = store.load_partitions("p").await.unwrap().unwrap();
        assert_eq!(loaded.head.offset, 5);
        assert!(loaded.head.state.is_empty());
        assert_eq!(loaded.partitions, vec![part("a", 1), part("b", 5)]);
        store.delete("p").await.unwrap();
        assert!(store.load_partitions("p").await.unwrap().is_none());
    }
}
