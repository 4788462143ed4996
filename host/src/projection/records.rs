//! Durable deployment records: the plugin bytes, content-addressed, in the
//! `plugins` column family (sha256 hex → wasm), and one JSON
//! [`DeploymentRecord`] per projection in `projections` (name → record).
//! A deploy writes both in one atomic batch: nothing is half-deployed.

use crate::db::Db;

use super::config::DeploymentRecord;

/// Column family of plugin bytes.
pub const PLUGINS_CF: &str = "plugins";
/// Column family of deployment records.
pub const PROJECTIONS_CF: &str = "projections";

/// Why reading or writing deployment records failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// RocksDB refused.
    #[error("deployment records: RocksDB {stage} failed")]
    Rocks {
        /// What was being done.
        stage: &'static str,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// A column family is missing from the opened database.
    #[error("deployment records: column family `{0}` is missing")]
    MissingColumnFamily(&'static str),
    /// A stored record is not valid JSON of the expected shape.
    #[error("deployment record `{name}` is corrupt")]
    Corrupt {
        /// The projection name.
        name: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// Access to the deployment records of one database.
#[derive(Clone)]
pub struct Records {
    db: Db,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").finish_non_exhaustive()
    }
}

fn rocks(stage: &'static str) -> impl FnOnce(rocksdb::Error) -> RecordError {
    move |source| RecordError::Rocks { stage, source }
}

impl Records {
    /// Records stored in `db` (which must have both column families).
    pub fn new(db: Db) -> Result<Records, RecordError> {
        for cf in [PLUGINS_CF, PROJECTIONS_CF] {
            if db.raw().cf_handle(cf).is_none() {
                return Err(RecordError::MissingColumnFamily(cf));
            }
        }
        Ok(Records { db })
    }

    /// Every deployment record, by name.
    pub fn load_all(&self) -> Result<Vec<DeploymentRecord>, RecordError> {
        let raw = self.db.raw();
        let cf = raw
            .cf_handle(PROJECTIONS_CF)
            .ok_or(RecordError::MissingColumnFamily(PROJECTIONS_CF))?;
        let mut out = Vec::new();
        for item in raw.iterator_cf(&cf, rocksdb::IteratorMode::Start) {
            let (k, v) = item.map_err(rocks("scan projections"))?;
            let name = String::from_utf8_lossy(&k).into_owned();
            let record = serde_json::from_slice(&v)
                .map_err(|source| RecordError::Corrupt { name, source })?;
            out.push(record);
        }
        Ok(out)
    }

    /// The plugin bytes stored under `hash`.
    pub fn plugin(&self, hash: &str) -> Result<Option<Vec<u8>>, RecordError> {
        let raw = self.db.raw();
        let cf = raw
            .cf_handle(PLUGINS_CF)
            .ok_or(RecordError::MissingColumnFamily(PLUGINS_CF))?;
        raw.get_cf(&cf, hash.as_bytes())
            .map_err(rocks("read plugin"))
    }

    /// Write `record`, the plugin bytes `(hash, wasm)` when given, and drop
    /// the plugin bytes of `unused_hashes`, in one atomic batch.
    pub fn save(
        &self,
        record: &DeploymentRecord,
        plugin: Option<(&str, &[u8])>,
        unused_hashes: &[String],
    ) -> Result<(), RecordError> {
        let raw = self.db.raw();
        let projections = raw
            .cf_handle(PROJECTIONS_CF)
            .ok_or(RecordError::MissingColumnFamily(PROJECTIONS_CF))?;
        let plugins = raw
            .cf_handle(PLUGINS_CF)
            .ok_or(RecordError::MissingColumnFamily(PLUGINS_CF))?;
        let mut batch = rocksdb::WriteBatch::default();
        if let Some((hash, wasm)) = plugin {
            batch.put_cf(&plugins, hash.as_bytes(), wasm);
        }
        for hash in unused_hashes {
            batch.delete_cf(&plugins, hash.as_bytes());
        }
        let json = serde_json::to_vec(record).expect("a deployment record serialises");
        batch.put_cf(&projections, record.name.as_bytes(), json);
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(true);
        raw.write_opt(batch, &opts)
            .map_err(rocks("save deployment"))
    }

    /// Remove the record of `name`, and the plugin bytes of `unused_hashes`
    /// (hashes no other record refers to), in one atomic batch.
    pub fn remove(&self, name: &str, unused_hashes: &[String]) -> Result<(), RecordError> {
        let raw = self.db.raw();
        let projections = raw
            .cf_handle(PROJECTIONS_CF)
            .ok_or(RecordError::MissingColumnFamily(PROJECTIONS_CF))?;
        let plugins = raw
            .cf_handle(PLUGINS_CF)
            .ok_or(RecordError::MissingColumnFamily(PLUGINS_CF))?;
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_cf(&projections, name.as_bytes());
        for hash in unused_hashes {
            batch.delete_cf(&plugins, hash.as_bytes());
        }
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(true);
        raw.write_opt(batch, &opts)
            .map_err(rocks("remove deployment"))
    }
}
