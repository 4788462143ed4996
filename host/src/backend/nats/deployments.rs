//! Deployment records in the key-value bucket `hume-deployments` (one JSON
//! record per projection) and plugin bytes in the object store
//! `hume-plugins` (named by their sha256, so each is stored once).
//!
//! A save writes the plugin bytes first, then the record: a crash in
//! between leaves unreferenced bytes, never a record without its plugin.

use async_nats::jetstream::{kv, object_store};
use futures::future::BoxFuture;
use futures::TryStreamExt;
use tokio::io::AsyncReadExt;

use super::{failed, subject};
use crate::deployment::{DeploymentError, DeploymentRecord, DeploymentStore};

/// Deployment records and plugin bytes on JetStream.
pub struct NatsDeployments {
    records: kv::Store,
    plugins: object_store::ObjectStore,
}

impl std::fmt::Debug for NatsDeployments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsDeployments").finish_non_exhaustive()
    }
}

fn storage<E: Into<async_nats::Error>>(stage: &'static str) -> impl FnOnce(E) -> DeploymentError {
    move |e| DeploymentError::Storage(failed(stage, e))
}

/// A key-value key for a projection name (keys take `[-/_=.A-Za-z0-9]`).
pub(super) fn kv_key(name: &str) -> String {
    subject::escape(name).replace('%', "=")
}

fn name_of(key: &str) -> Option<String> {
    subject::unescape(&key.replace('=', "%"))
}

/// Read a whole object, `None` when there is none.
pub(super) async fn read_object(
    store: &object_store::ObjectStore,
    name: &str,
) -> Result<Option<Vec<u8>>, async_nats::Error> {
    let mut object = match store.get(name).await {
        Ok(o) => o,
        Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::with_capacity(object.info().size);
    object.read_to_end(&mut bytes).await?;
    Ok(Some(bytes))
}

/// Delete an object; one that is already gone is fine.
pub(super) async fn delete_object(
    store: &object_store::ObjectStore,
    name: &str,
) -> Result<(), async_nats::Error> {
    match store.delete(name).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == object_store::DeleteErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl NatsDeployments {
    /// Records in `records`, plugin bytes in `plugins`.
    pub fn new(records: kv::Store, plugins: object_store::ObjectStore) -> NatsDeployments {
        NatsDeployments { records, plugins }
    }

    async fn load_all_now(&self) -> Result<Vec<DeploymentRecord>, DeploymentError> {
        let keys: Vec<String> = self
            .records
            .keys()
            .await
            .map_err(storage("listing deployments"))?
            .try_collect()
            .await
            .map_err(storage("listing deployments"))?;
        let mut out = Vec::new();
        for key in keys {
            let Some(value) = self
                .records
                .get(key.as_str())
                .await
                .map_err(storage("reading a deployment"))?
            else {
                continue;
            };
            let name = name_of(&key).unwrap_or(key);
            let record = serde_json::from_slice(&value)
                .map_err(|source| DeploymentError::Corrupt { name, source })?;
            out.push(record);
        }
        Ok(out)
    }

    async fn drop_plugins(&self, hashes: &[String]) -> Result<(), DeploymentError> {
        for hash in hashes {
            delete_object(&self.plugins, hash)
                .await
                .map_err(storage("dropping unused plugin bytes"))?;
        }
        Ok(())
    }
}

impl DeploymentStore for NatsDeployments {
    fn load_all(&self) -> BoxFuture<'_, Result<Vec<DeploymentRecord>, DeploymentError>> {
        Box::pin(self.load_all_now())
    }

    fn plugin(&self, hash: &str) -> BoxFuture<'_, Result<Option<Vec<u8>>, DeploymentError>> {
        let hash = hash.to_string();
        Box::pin(async move {
            read_object(&self.plugins, &hash)
                .await
                .map_err(storage("reading plugin bytes"))
        })
    }

    fn save(
        &self,
        record: DeploymentRecord,
        plugin: Option<(String, Vec<u8>)>,
        unused_hashes: Vec<String>,
    ) -> BoxFuture<'_, Result<(), DeploymentError>> {
        Box::pin(async move {
            if let Some((hash, wasm)) = plugin {
                self.plugins
                    .put(hash.as_str(), &mut wasm.as_slice())
                    .await
                    .map_err(storage("writing plugin bytes"))?;
            }
            let value = serde_json::to_vec(&record).expect("a deployment record serializes");
            self.records
                .put(kv_key(&record.name), value.into())
                .await
                .map_err(storage("writing a deployment"))?;
            self.drop_plugins(&unused_hashes).await
        })
    }

    fn remove(
        &self,
        name: &str,
        unused_hashes: Vec<String>,
    ) -> BoxFuture<'_, Result<(), DeploymentError>> {
        let key = kv_key(name);
        Box::pin(async move {
            self.records
                .purge(key)
                .await
                .map_err(storage("removing a deployment"))?;
            self.drop_plugins(&unused_hashes).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_keys() {
        for name in ["kv", "bank_1", "a.b", "ünï"] {
            let key = kv_key(name);
            assert!(key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=".contains(c)));
            assert_eq!(name_of(&key).as_deref(), Some(name));
        }
    }
}
