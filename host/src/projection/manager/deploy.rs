//! Deploying and undeploying: validation before anything is written, the
//! atomic record write, and the blue/green swap of a new version.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::{
    not_found, short, snapshot_key, stop_actor, ActorHandle, Command, DeployOutcome, DeployRequest,
    Entry, Inner, Manager,
};
use crate::deployment::change::{classify, Change};
use crate::deployment::{
    validate_name, DeploymentRecord, ProjectionOptions, SnapshotStoreKind, StartFrom, VersionRecord,
};
use crate::log::Selector;
use crate::plugin::Plugin;
use crate::projection::error::ProjectionError;
use crate::projection::travel::limits_of;
use crate::snapshot::now_ms;

impl Manager {
    /// Spawn a pending (green) version and the task that swaps it in once it
    /// has caught up.
    pub(super) fn spawn_pending(
        &self,
        record: &DeploymentRecord,
        version: &VersionRecord,
        plugin: Plugin,
    ) -> Result<ActorHandle, ProjectionError> {
        let (tx, rx) = oneshot::channel();
        let handle = self.spawn_version(record, version, plugin, Some(tx))?;
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let name = record.name.clone();
        let id = version.id();
        tokio::spawn(async move {
            // Err: the pending actor ended before catching up (replaced,
            // undeployed, shut down): nothing to swap.
            if rx.await.is_ok() {
                if let Some(inner) = weak.upgrade() {
                    let manager = Manager { inner };
                    if let Err(err) = manager.swap(&name, &id).await {
                        error!(projection = %name, error = %err, "blue/green swap failed");
                    }
                }
            }
        });
        Ok(handle)
    }

    /// Make the pending version `id` of `name` the active one.
    async fn swap(&self, name: &str, id: &str) -> Result<(), ProjectionError> {
        let _changes = self.inner.changes.lock().await;
        if self
            .inner
            .shutting_down
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let (mut record, old_hash, old_id) = {
            let entries = self.read_entries();
            let Some(entry) = entries.get(name) else {
                return Ok(());
            };
            match &entry.pending {
                Some(p) if p.version.id() == id => {}
                _ => return Ok(()),
            }
            (
                entry.record.clone(),
                entry.record.active.plugin_hash.clone(),
                entry.record.active.id(),
            )
        };
        let pending = record.pending.take().expect("checked above");
        record.active = pending;
        // The new version's own skips become the record's.
        record.skipped = std::mem::take(&mut record.active.skipped);
        let unused = self.unused_hashes(name, std::slice::from_ref(&old_hash), Some(&record));
        self.inner
            .stores
            .deployments
            .save(record.clone(), None, unused)
            .await?;
        let old = {
            let mut entries = self.write_entries();
            let entry = entries.get_mut(name).expect("checked above");
            let new_active = entry.pending.take().expect("checked above");
            entry.record = record;
            std::mem::replace(&mut entry.active, new_active)
        };
        stop_actor(old, false).await;
        self.delete_snapshots(name, &old_id).await;
        info!(projection = %name, from = %short(&old_hash), to = %short(id), "new version swapped in");
        Ok(())
    }

    /// Delete the snapshots of version `id` of `name`, in both stores.
    pub(super) async fn delete_snapshots(&self, name: &str, id: &str) {
        let key = snapshot_key(name, id);
        for store in [
            self.store(SnapshotStoreKind::Durable),
            self.store(SnapshotStoreKind::Memory),
        ] {
            if let Err(err) = store.delete(&key).await {
                warn!(projection = %name, error = %err, "cannot delete old snapshots");
            }
        }
    }

    /// Hashes among `candidates` that no record (other than `name`'s, whose
    /// future is `replacement`) refers to any more.
    fn unused_hashes(
        &self,
        name: &str,
        candidates: &[String],
        replacement: Option<&DeploymentRecord>,
    ) -> Vec<String> {
        let entries = self.read_entries();
        let mut used: HashSet<&str> = HashSet::new();
        for (n, e) in entries.iter() {
            if n == name {
                continue;
            }
            used.insert(&e.record.active.plugin_hash);
            if let Some(p) = &e.record.pending {
                used.insert(&p.plugin_hash);
            }
        }
        if let Some(r) = replacement {
            used.insert(&r.active.plugin_hash);
            if let Some(p) = &r.pending {
                used.insert(&p.plugin_hash);
            }
        }
        candidates
            .iter()
            .filter(|h| !used.contains(h.as_str()))
            .cloned()
            .collect()
    }

    /// Deploy a projection, or a new version of one (blue/green), or new
    /// options for the plugin it runs (see [`crate::deployment::change`]).
    /// Everything is checked before anything is written.
    pub async fn deploy(&self, req: DeployRequest) -> Result<DeployOutcome, ProjectionError> {
        validate_name(&req.name).map_err(ProjectionError::Invalid)?;
        req.options.validate().map_err(ProjectionError::Invalid)?;
        if req.keep_state && req.options.partition_by.is_some() {
            return Err(ProjectionError::Invalid(
                "--keep-state is not available for a partitioned projection (--partition-by): \
                 deploy without --keep-state; the new version rebuilds its partitions from the \
                 log beside the running one"
                    .into(),
            ));
        }
        Selector::parse_patterns(&req.streams).map_err(ProjectionError::Streams)?;
        let plugin = self.load_plugin(req.wasm.clone()).await?;
        // Smoke test: the plugin must start from its initial state.
        let mut probe = plugin
            .instantiate(&req.name, limits_of(&req.options))
            .await
            .map_err(ProjectionError::Load)?;
        probe.init_state().await.map_err(ProjectionError::Load)?;
        drop(probe);

        let _changes = self.inner.changes.lock().await;
        let hash = plugin.hash().to_string();
        let info = plugin.info().clone();
        let existing = self.read_entries().get(&req.name).map(|e| e.record.clone());
        let mut generation = 0;
        let mut changed = Vec::new();
        if let Some(rec) = &existing {
            // The same plugin as the newest version: only the options differ.
            let pending_same = rec.pending.as_ref().filter(|p| p.plugin_hash == hash);
            let newest = pending_same.or((rec.active.plugin_hash == hash).then_some(&rec.active));
            if let Some(newest) = newest {
                match classify(newest, &req.streams, &req.options) {
                    Change::Nothing => {
                        return Err(ProjectionError::AlreadyDeployed {
                            name: req.name,
                            hash,
                        })
                    }
                    Change::InPlace(names) => {
                        let outcome = DeployOutcome {
                            name: req.name.clone(),
                            plugin_hash: hash,
                            plugin_name: info.name.clone(),
                            plugin_version: info.version.clone(),
                            status: "updated".into(),
                            replaces: None,
                            changed: names.iter().map(|n| n.to_string()).collect(),
                        };
                        let pending = pending_same.is_some();
                        self.reconfigure(rec.clone(), pending, req.options).await?;
                        info!(projection = %req.name, changed = ?names, "options changed in place");
                        return Ok(outcome);
                    }
                    Change::NewVersion(names) => {
                        changed = names.iter().map(|n| n.to_string()).collect();
                        generation = [Some(&rec.active), rec.pending.as_ref()]
                            .into_iter()
                            .flatten()
                            .filter(|v| v.plugin_hash == hash)
                            .map(|v| v.generation + 1)
                            .max()
                            .unwrap_or(0);
                    }
                }
            }
        }
        let version = VersionRecord {
            plugin_hash: hash.clone(),
            plugin_name: info.name.clone(),
            plugin_version: info.version.clone(),
            streams: req.streams.clone(),
            options: req.options.clone(),
            start_offset: match req.options.start_from {
                StartFrom::Beginning => 0,
                StartFrom::End => self.inner.log.head(),
            },
            deployed_at: now_ms(),
            keep_state_from: None,
            generation,
            skipped: match (&existing, req.keep_skips) {
                (Some(rec), true) => rec.skipped.clone(),
                _ => Vec::new(),
            },
        };
        let id = version.id();
        let outcome = DeployOutcome {
            name: req.name.clone(),
            plugin_hash: hash.clone(),
            plugin_name: info.name.clone(),
            plugin_version: info.version.clone(),
            status: if existing.is_some() {
                "building"
            } else {
                "deployed"
            }
            .to_string(),
            replaces: existing.as_ref().map(|r| r.active.plugin_hash.clone()),
            changed,
        };
        match existing {
            None => {
                let record = DeploymentRecord {
                    name: req.name.clone(),
                    active: version.clone(),
                    pending: None,
                    stopped: false,
                    skipped: Vec::new(),
                };
                // Leftovers of an earlier deployment under this name must not
                // seed this one.
                self.delete_snapshots(&req.name, &id).await;
                self.inner
                    .stores
                    .deployments
                    .save(record.clone(), Some((hash.clone(), req.wasm)), Vec::new())
                    .await?;
                let active = self.spawn_version(&record, &version, plugin, None)?;
                self.write_entries().insert(
                    req.name.clone(),
                    Box::new(Entry {
                        record,
                        active,
                        pending: None,
                    }),
                );
                info!(projection = %req.name, plugin = %short(&hash), "projection deployed");
            }
            Some(mut record) => {
                let mut version = version;
                if req.keep_state {
                    version.keep_state_from = Some(record.active.id());
                    // Seed from the state as it is now, not from an older snapshot.
                    if let Err(err) = self
                        .ask(&req.name, None, |reply| Command::TakeSnapshot { reply })
                        .await
                    {
                        warn!(projection = %req.name, error = %err, "cannot snapshot the running version; the new one starts from its last snapshot");
                    }
                }
                let replaced = record.pending.take();
                let unused = match &replaced {
                    Some(p) => {
                        self.unused_hashes(&req.name, std::slice::from_ref(&p.plugin_hash), None)
                    }
                    None => Vec::new(),
                };
                record.pending = Some(version.clone());
                let unused: Vec<String> = unused.into_iter().filter(|h| *h != hash).collect();
                self.delete_snapshots(&req.name, &id).await;
                self.inner
                    .stores
                    .deployments
                    .save(record.clone(), Some((hash.clone(), req.wasm)), unused)
                    .await?;
                let handle = self.spawn_pending(&record, &version, plugin)?;
                let old_pending = {
                    let mut entries = self.write_entries();
                    let entry = entries.get_mut(&req.name).expect("exists");
                    entry.record = record;
                    entry.pending.replace(handle)
                };
                if let Some(old) = old_pending {
                    let old_id = old.version.id();
                    stop_actor(old, false).await;
                    self.delete_snapshots(&req.name, &old_id).await;
                }
                info!(projection = %req.name, plugin = %short(&hash), "new version building beside the running one");
            }
        }
        Ok(outcome)
    }

    /// New options for the running (or pending) version that keep its
    /// fold: saved first, then handed to its actor.
    async fn reconfigure(
        &self,
        mut record: DeploymentRecord,
        pending: bool,
        options: ProjectionOptions,
    ) -> Result<(), ProjectionError> {
        let name = record.name.clone();
        let version = match record.pending.as_mut() {
            Some(p) if pending => p,
            _ => &mut record.active,
        };
        version.options = options.clone();
        let version = version.clone();
        self.inner
            .stores
            .deployments
            .save(record.clone(), None, Vec::new())
            .await?;
        let tx = {
            let mut entries = self.write_entries();
            let entry = entries.get_mut(&name).ok_or_else(|| not_found(&name))?;
            entry.record = record;
            let handle = match entry.pending.as_mut() {
                Some(p) if pending => p,
                _ => &mut entry.active,
            };
            handle.version = version;
            handle.tx.clone()
        };
        let store = self.store(options.snapshot_store);
        let (reply, rx) = oneshot::channel();
        let gone = || ProjectionError::Gone { name: name.clone() };
        tx.send(Box::new(Command::Reconfigure {
            options: Box::new(options),
            store,
            reply,
        }))
        .await
        .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Stop and remove a projection, its records and snapshots.
    pub async fn undeploy(&self, name: &str) -> Result<(), ProjectionError> {
        let _changes = self.inner.changes.lock().await;
        let Some(entry) = self.write_entries().remove(name) else {
            return Err(not_found(name));
        };
        let mut hashes = vec![entry.record.active.plugin_hash.clone()];
        let mut ids = vec![entry.record.active.id()];
        if let Some(p) = &entry.record.pending {
            hashes.push(p.plugin_hash.clone());
            ids.push(p.id());
        }
        stop_actor(entry.active, false).await;
        if let Some(p) = entry.pending {
            stop_actor(p, false).await;
        }
        for id in &ids {
            self.delete_snapshots(name, id).await;
        }
        let unused = self.unused_hashes(name, &hashes, None);
        self.inner.stores.deployments.remove(name, unused).await?;
        info!(projection = %name, "projection undeployed");
        Ok(())
    }
}
