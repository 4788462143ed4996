//! Durable deployment records: the plugin bytes, content-addressed, in the
//! `plugins` column family (sha256 hex → wasm), and one JSON
//! [`DeploymentRecord`] per projection in `projections` (name → record).
//! A deploy writes both in one atomic, synced batch.

use futures::future::BoxFuture;

use super::blocking;
use super::db::{Db, CF_PLUGINS, CF_PROJECTIONS};
use super::log::neutral;
use crate::deployment::{DeploymentError, DeploymentRecord, DeploymentStore};

/// The deployment records of one database.
#[derive(Clone)]
pub struct RocksDeployments {
    db: Db,
}

impl std::fmt::Debug for RocksDeployments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksDeployments").finish_non_exhaustive()
    }
}

fn failed(stage: &'static str) -> impl FnOnce(rocksdb::Error) -> DeploymentError {
    move |e| DeploymentError::Storage(neutral(stage, e))
}

/// Records written by Hume 0.1 named the durable snapshot store after this
/// engine (`"snapshot_store": "rocksdb"`); it is `durable` now.
fn upgrade(mut record: serde_json::Value) -> serde_json::Value {
    for version in ["active", "pending"] {
        if let Some(store) = record
            .get_mut(version)
            .and_then(|v| v.get_mut("options"))
            .and_then(|o| o.get_mut("snapshot_store"))
        {
            if store == "rocksdb" {
                *store = "durable".into();
            }
        }
    }
    record
}

impl RocksDeployments {
    /// Records stored in `db`.
    pub fn new(db: Db) -> RocksDeployments {
        RocksDeployments { db }
    }

    fn load_all_blocking(&self) -> Result<Vec<DeploymentRecord>, DeploymentError> {
        let raw = self.db.raw();
        let mut out = Vec::new();
        for item in raw.iterator_cf(&self.db.cf(CF_PROJECTIONS), rocksdb::IteratorMode::Start) {
            let (k, v) = item.map_err(failed("scanning deployments"))?;
            let name = String::from_utf8_lossy(&k).into_owned();
            let record = serde_json::from_slice(&v)
                .map(upgrade)
                .and_then(serde_json::from_value)
                .map_err(|source| DeploymentError::Corrupt { name, source })?;
            out.push(record);
        }
        Ok(out)
    }

    fn write(
        &self,
        batch: rocksdb::WriteBatch,
        stage: &'static str,
    ) -> Result<(), DeploymentError> {
        // Removals may go below the free-space watermark (they free space
        // once compacted); saves may not.
        if stage != "removing a deployment" {
            self.db
                .check_space(stage, batch.size_in_bytes() as u64)
                .map_err(DeploymentError::Storage)?;
        }
        self.db
            .raw()
            .write_opt(batch, &Db::sync_write_options())
            .map_err(failed(stage))
    }
}

impl DeploymentStore for RocksDeployments {
    fn load_all(&self) -> BoxFuture<'_, Result<Vec<DeploymentRecord>, DeploymentError>> {
        let this = self.clone();
        Box::pin(blocking(
            move || this.load_all_blocking(),
            DeploymentError::Storage,
        ))
    }

    fn plugin(&self, hash: &str) -> BoxFuture<'_, Result<Option<Vec<u8>>, DeploymentError>> {
        let this = self.clone();
        let hash = hash.to_string();
        Box::pin(blocking(
            move || {
                this.db
                    .raw()
                    .get_cf(&this.db.cf(CF_PLUGINS), hash.as_bytes())
                    .map_err(failed("reading a plugin"))
            },
            DeploymentError::Storage,
        ))
    }

    fn save(
        &self,
        record: DeploymentRecord,
        plugin: Option<(String, Vec<u8>)>,
        unused_hashes: Vec<String>,
    ) -> BoxFuture<'_, Result<(), DeploymentError>> {
        let this = self.clone();
        Box::pin(blocking(
            move || {
                let plugins = this.db.cf(CF_PLUGINS);
                let mut batch = rocksdb::WriteBatch::default();
                if let Some((hash, wasm)) = &plugin {
                    batch.put_cf(&plugins, hash.as_bytes(), wasm);
                }
                for hash in &unused_hashes {
                    batch.delete_cf(&plugins, hash.as_bytes());
                }
                let json = serde_json::to_vec(&record).expect("a deployment record serialises");
                batch.put_cf(&this.db.cf(CF_PROJECTIONS), record.name.as_bytes(), json);
                this.write(batch, "saving a deployment")
            },
            DeploymentError::Storage,
        ))
    }

    fn remove(
        &self,
        name: &str,
        unused_hashes: Vec<String>,
    ) -> BoxFuture<'_, Result<(), DeploymentError>> {
        let this = self.clone();
        let name = name.to_string();
        Box::pin(blocking(
            move || {
                let plugins = this.db.cf(CF_PLUGINS);
                let mut batch = rocksdb::WriteBatch::default();
                batch.delete_cf(&this.db.cf(CF_PROJECTIONS), name.as_bytes());
                for hash in &unused_hashes {
                    batch.delete_cf(&plugins, hash.as_bytes());
                }
                this.write(batch, "removing a deployment")
            },
            DeploymentError::Storage,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::upgrade;
    use serde_json::json;

    #[test]
    fn records_of_hume_0_1_name_the_durable_store() {
        let old = json!({"active": {"options": {"snapshot_store": "rocksdb"}},
                         "pending": {"options": {"snapshot_store": "memory"}}});
        let new = upgrade(old);
        assert_eq!(new["active"]["options"]["snapshot_store"], "durable");
        assert_eq!(new["pending"]["options"]["snapshot_store"], "memory");
        assert_eq!(upgrade(json!({"active": {}})), json!({"active": {}}));
    }
}
