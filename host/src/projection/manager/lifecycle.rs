//! Lifecycle commands: stop and start (durable), reset, resume, and skip
//! (the skipped position recorded durably before the actor steps over it).

use super::{not_found, Command, Manager};
use crate::deployment::DeploymentRecord;
use crate::projection::error::ProjectionError;

impl Manager {
    /// The record of `name` as it stands.
    pub(super) fn record_of(&self, name: &str) -> Result<DeploymentRecord, ProjectionError> {
        self.read_entries()
            .get(name)
            .map(|e| e.record.clone())
            .ok_or_else(|| not_found(name))
    }

    /// Save a changed record durably, then make it the one in use (under
    /// the `changes` lock, held by the caller).
    pub(super) async fn store_record(
        &self,
        record: DeploymentRecord,
    ) -> Result<(), ProjectionError> {
        self.inner
            .stores
            .deployments
            .save(record.clone(), None, Vec::new())
            .await?;
        if let Some(e) = self.write_entries().get_mut(&record.name) {
            e.record = record;
        }
        Ok(())
    }

    /// Stop applying events (durably: stays stopped across restarts).
    pub async fn stop(&self, name: &str) -> Result<(), ProjectionError> {
        self.set_stopped(name, true).await
    }

    /// Start applying events again.
    pub async fn start_projection(&self, name: &str) -> Result<(), ProjectionError> {
        self.set_stopped(name, false).await
    }

    async fn set_stopped(&self, name: &str, stopped: bool) -> Result<(), ProjectionError> {
        let _changes = self.inner.changes.lock().await;
        let mut record = self.record_of(name)?;
        record.stopped = stopped;
        self.store_record(record).await?;
        if stopped {
            self.ask(name, None, |reply| Command::Stop { reply }).await
        } else {
            self.ask(name, None, |reply| Command::Start { reply }).await
        }
    }

    /// Drop the state and snapshots and rebuild from the start. The
    /// positions stepped over with `skip` are forgotten (durably, first)
    /// unless `keep_skips`: a reset refolds what the plugin computes.
    pub async fn reset(&self, name: &str, keep_skips: bool) -> Result<(), ProjectionError> {
        let _changes = self.inner.changes.lock().await;
        let mut record = self.record_of(name)?;
        if !keep_skips && !record.skipped.is_empty() {
            record.skipped.clear();
            self.store_record(record).await?;
        }
        self.ask(name, None, |reply| Command::Reset { keep_skips, reply })
            .await
    }

    /// Retry the faulted event (re-instantiating the plugin if needed).
    pub async fn resume(&self, name: &str) -> Result<(), ProjectionError> {
        self.ask(name, None, |reply| Command::Resume { reply })
            .await
    }

    /// Step over the faulted event: record its position durably, then go on
    /// after it. Returns the position skipped.
    pub async fn skip(&self, name: &str) -> Result<u64, ProjectionError> {
        let _changes = self.inner.changes.lock().await;
        let (mut record, fault) = {
            let entries = self.read_entries();
            let entry = entries.get(name).ok_or_else(|| not_found(name))?;
            let fault = entry
                .active
                .live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .fault
                .clone();
            (entry.record.clone(), fault)
        };
        let position = match fault {
            Some(f) if f.position > 0 => f.position,
            Some(f) => {
                return Err(ProjectionError::Conflict(format!(
                    "projection `{name}` is faulted outside any event ({}): use `hume resume {name}` or `hume reset {name}`",
                    f.error
                )))
            }
            None => {
                return Err(ProjectionError::Conflict(format!(
                    "projection `{name}` is not faulted: nothing to skip"
                )))
            }
        };
        if !record.skipped.contains(&position) {
            record.skipped.push(position);
        }
        self.store_record(record).await?;
        self.ask(name, None, |reply| Command::Skip { position, reply })
            .await?;
        Ok(position)
    }
}
