//! Snapshots in the object store `hume-snapshots`: one object per retained
//! snapshot, named `<key escaped>/<offset, 20 digits>`, its description
//! (offset, scanned, plugin hash, size, time) in the object's metadata so a
//! listing reads no state.
//!
//! A save writes the new snapshot first, then drops what it replaces: a
//! crash in between leaves an extra snapshot, never none.

use std::collections::HashMap;

use async_nats::jetstream::object_store::{self, ObjectInfo, ObjectMetadata};
use futures::future::BoxFuture;
use futures::TryStreamExt;

use super::deployments::{delete_object, read_object};
use super::{failed, subject};
use crate::snapshot::{
    decode, encode, Retention, SnapshotError, SnapshotMeta, SnapshotStore, StoredSnapshot,
};

/// Snapshots on JetStream.
pub struct NatsSnapshots {
    store: object_store::ObjectStore,
    /// This node's id, kept in each snapshot's metadata (`node`): which
    /// node wrote it.
    node: String,
}

impl std::fmt::Debug for NatsSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSnapshots").finish_non_exhaustive()
    }
}

fn prefix(key: &str) -> String {
    format!("{}/", subject::escape(key))
}

fn object_name(key: &str, offset: u64) -> String {
    format!("{}{offset:020}", prefix(key))
}

fn meta_of(info: &ObjectInfo) -> Option<SnapshotMeta> {
    let field = |k: &str| info.metadata.get(k);
    let number = |k: &str| field(k)?.parse().ok();
    Some(SnapshotMeta {
        offset: number("offset")?,
        scanned: number("scanned")?,
        plugin_hash: field("plugin_hash")?.clone(),
        size: number("size")?,
        taken_at: number("taken_at")?,
    })
}

impl NatsSnapshots {
    /// Snapshots in `store`, written by node `node`.
    pub fn new(store: object_store::ObjectStore, node: String) -> NatsSnapshots {
        NatsSnapshots { store, node }
    }

    fn storage<'k, E: Into<async_nats::Error>>(
        key: &'k str,
        stage: &'static str,
    ) -> impl FnOnce(E) -> SnapshotError + 'k {
        move |e| SnapshotError::Storage {
            key: key.to_string(),
            source: failed(stage, e),
        }
    }

    /// Every retained snapshot of `key`, oldest first.
    async fn metas(&self, key: &str) -> Result<Vec<SnapshotMeta>, SnapshotError> {
        let prefix = prefix(key);
        let infos: Vec<ObjectInfo> = self
            .store
            .list()
            .await
            .map_err(Self::storage(key, "listing snapshots"))?
            .try_collect()
            .await
            .map_err(Self::storage(key, "listing snapshots"))?;
        let mut out: Vec<SnapshotMeta> = infos
            .iter()
            .filter(|i| !i.deleted && i.name.starts_with(&prefix))
            .filter_map(meta_of)
            .collect();
        out.sort_by_key(|m| m.offset);
        Ok(out)
    }

    async fn load(&self, key: &str, offset: u64) -> Result<Option<StoredSnapshot>, SnapshotError> {
        let Some(bytes) = read_object(&self.store, &object_name(key, offset))
            .await
            .map_err(Self::storage(key, "reading a snapshot"))?
        else {
            return Ok(None);
        };
        decode(key, &bytes).map(Some)
    }

    async fn save_now(
        &self,
        key: &str,
        snapshot: StoredSnapshot,
        retention: Retention,
    ) -> Result<(), SnapshotError> {
        let offset = snapshot.offset;
        let metadata = HashMap::from([
            ("offset".to_string(), offset.to_string()),
            ("scanned".to_string(), snapshot.scanned.to_string()),
            ("plugin_hash".to_string(), snapshot.plugin_hash.clone()),
            ("size".to_string(), snapshot.state.len().to_string()),
            ("taken_at".to_string(), snapshot.taken_at.to_string()),
            ("node".to_string(), self.node.clone()),
        ]);
        let bytes = encode(&snapshot);
        self.store
            .put(
                ObjectMetadata {
                    name: object_name(key, offset),
                    metadata,
                    ..Default::default()
                },
                &mut bytes.as_slice(),
            )
            .await
            .map_err(Self::storage(key, "saving a snapshot"))?;
        let offsets: Vec<u64> = self.metas(key).await?.iter().map(|m| m.offset).collect();
        let above = offsets.iter().copied().filter(|o| *o > offset);
        let kept: Vec<u64> = offsets.iter().copied().filter(|o| *o <= offset).collect();
        let drops: Vec<u64> = above.chain(retention.drops(&kept)).collect();
        for o in drops {
            delete_object(&self.store, &object_name(key, o))
                .await
                .map_err(Self::storage(key, "dropping an old snapshot"))?;
        }
        Ok(())
    }
}

impl SnapshotStore for NatsSnapshots {
    fn save<'a>(
        &'a self,
        key: &'a str,
        snapshot: StoredSnapshot,
        retention: Retention,
    ) -> BoxFuture<'a, Result<(), SnapshotError>> {
        Box::pin(self.save_now(key, snapshot, retention))
    }

    fn latest<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, SnapshotError>> {
        Box::pin(async move {
            match self.metas(key).await?.last() {
                Some(m) => self.load(key, m.offset).await,
                None => Ok(None),
            }
        })
    }

    fn at_or_below<'a>(
        &'a self,
        key: &'a str,
        position: u64,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, SnapshotError>> {
        Box::pin(async move {
            let metas = self.metas(key).await?;
            match metas.iter().rev().find(|m| m.offset <= position) {
                Some(m) => self.load(key, m.offset).await,
                None => Ok(None),
            }
        })
    }

    fn list<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<SnapshotMeta>, SnapshotError>> {
        Box::pin(self.metas(key))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SnapshotError>> {
        Box::pin(async move {
            for m in self.metas(key).await? {
                delete_object(&self.store, &object_name(key, m.offset))
                    .await
                    .map_err(Self::storage(key, "deleting snapshots"))?;
            }
            Ok(())
        })
    }
}
