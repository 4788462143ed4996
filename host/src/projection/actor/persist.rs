//! Snapshots: take the plugin's state and persist it with offset and hash
//! (on cadence, on request, on shutdown), history kept as the deployment's
//! retention says.

use std::time::Instant;

use tracing::{debug, info_span, warn, Instrument};

use super::{poisons, Actor};
use crate::projection::error::ProjectionError;
use crate::snapshot::{now_ms, StoredSnapshot};
use crate::storage::StorageErrorKind;

impl Actor {
    /// Persist a snapshot; a plugin failure faults the projection.
    pub(super) async fn persist_or_fault(&mut self) {
        if let Err(err) = self.persist().await {
            if let ProjectionError::Plugin { source, .. } = &err {
                let limit = source.limit().map(|l| l.to_string());
                if poisons(source) {
                    self.drop_instance();
                }
                self.fault_now(0, "snapshot".into(), &err, limit, None);
            } else {
                if !crate::storage::has_kind(&err, StorageErrorKind::NoSpace) {
                    warn!(error = %err, "persisting a snapshot failed");
                }
                self.cfg
                    .live
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set_error(err.to_string());
            }
            // Do not retry at once: the time trigger or the next count does
            // (or `resume`, after a fault).
            self.cadence.failed(Instant::now());
        }
    }

    /// Take the plugin's state and write it with offset and hash, atomically.
    pub(super) async fn persist(&mut self) -> Result<u64, ProjectionError> {
        if self.hibernated.is_some() {
            return self.persist_hibernated().await;
        }
        let Some(folder) = self.folder.as_mut() else {
            return Err(ProjectionError::Conflict(format!(
                "projection `{}` has no usable plugin instance (faulted); `hume resume` or `hume reset` it first",
                self.cfg.name
            )));
        };
        let started = Instant::now();
        let (offset, scanned) = (self.cursor.offset(), self.cursor.scanned());
        let span = info_span!("hume.projection.snapshot", offset);
        let state = folder
            .instance_mut()
            .snapshot()
            .instrument(span.clone())
            .await
            .map_err(|source| ProjectionError::Plugin {
                name: self.cfg.name.clone(),
                source,
            })?;
        self.metrics.call("snapshot", started.elapsed());
        let snapshot = StoredSnapshot {
            offset,
            scanned,
            plugin_hash: self.cfg.version.plugin_hash.clone(),
            state,
            taken_at: now_ms(),
        };
        let (bytes, taken_at) = (snapshot.state.len(), snapshot.taken_at);
        let saved = self
            .cfg
            .store
            .save(
                &self.cfg.key,
                snapshot,
                self.cfg.version.options.snapshot_history,
            )
            .await;
        if let Err(err) = saved {
            let err = ProjectionError::from(err);
            if crate::storage::has_kind(&err, StorageErrorKind::NoSpace) {
                // The state stays in memory and is served as usual; the
                // next snapshot due is tried again, and succeeds once space
                // is back.
                let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
                if live.snapshots_paused.is_none() {
                    warn!(error = %err, "snapshots paused: the disk is full");
                }
                live.snapshots_paused = Some(format!("disk full: {err}"));
            }
            return Err(err);
        }
        let elapsed = started.elapsed();
        self.metrics.snapshots.increment(1);
        self.metrics.snapshot_duration.record(elapsed.as_secs_f64());
        span.in_scope(|| {
            debug!(
                target: "hume.projection.snapshot",
                offset,
                bytes,
                elapsed_us = elapsed.as_micros() as u64,
                "snapshot persisted"
            )
        });
        self.persisted = Some((offset, scanned));
        self.cadence.persisted(offset, Instant::now(), elapsed);
        let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.snapshots_paused.take().is_some() {
            tracing::info!("snapshots resumed: disk space was freed");
        }
        live.last_snapshot = Some((offset, taken_at));
        Ok(offset)
    }

    /// On shutdown: persist when anything moved since the last snapshot.
    pub(super) async fn final_snapshot(&mut self) {
        let now = (self.cursor.offset(), self.cursor.scanned());
        if self.has_state() && self.persisted != Some(now) {
            if let Err(err) = self.persist().await {
                warn!(error = %err, "final snapshot failed");
            }
        }
    }
}
