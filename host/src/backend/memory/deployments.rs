//! Deployment records and plugin bytes in process memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::future::BoxFuture;

use crate::deployment::{DeploymentError, DeploymentRecord, DeploymentStore};

#[derive(Debug, Default)]
struct State {
    records: BTreeMap<String, DeploymentRecord>,
    plugins: BTreeMap<String, Vec<u8>>,
}

/// Deployments kept in memory: each change applies whole, under one lock.
#[derive(Debug, Default)]
pub struct MemoryDeployments {
    state: Mutex<State>,
}

impl MemoryDeployments {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl DeploymentStore for MemoryDeployments {
    fn load_all(&self) -> BoxFuture<'_, Result<Vec<DeploymentRecord>, DeploymentError>> {
        let all = self.with(|s| s.records.values().cloned().collect());
        Box::pin(std::future::ready(Ok(all)))
    }

    fn plugin(&self, hash: &str) -> BoxFuture<'_, Result<Option<Vec<u8>>, DeploymentError>> {
        let wasm = self.with(|s| s.plugins.get(hash).cloned());
        Box::pin(std::future::ready(Ok(wasm)))
    }

    fn save(
        &self,
        record: DeploymentRecord,
        plugin: Option<(String, Vec<u8>)>,
        unused_hashes: Vec<String>,
    ) -> BoxFuture<'_, Result<(), DeploymentError>> {
        self.with(|s| {
            if let Some((hash, wasm)) = plugin {
                s.plugins.insert(hash, wasm);
            }
            for hash in &unused_hashes {
                s.plugins.remove(hash);
            }
            s.records.insert(record.name.clone(), record);
        });
        Box::pin(std::future::ready(Ok(())))
    }

    fn remove(
        &self,
        name: &str,
        unused_hashes: Vec<String>,
    ) -> BoxFuture<'_, Result<(), DeploymentError>> {
        self.with(|s| {
            s.records.remove(name);
            for hash in &unused_hashes {
                s.plugins.remove(hash);
            }
        });
        Box::pin(std::future::ready(Ok(())))
    }
}
