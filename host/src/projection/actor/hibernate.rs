//! Hibernation: a projection with nothing to do gives its plugin instance
//! up and keeps its state as snapshot bytes; the next event, read or query
//! brings an instance back from them.
//!
//! - When: idle (nothing to fold, no read waiting) for `--hibernate-after`,
//!   or asked by the [`InstanceBudget`](crate::projection::instances) because
//!   every live slot is taken and this instance is the least recently used.
//!   An instance asked while it catches up first folds one batch, so two
//!   projections cannot take the slot from each other without progress.
//! - Where the state goes: the bytes of the plugin's `snapshot()` stay in
//!   memory ([`Hibernated::Held`]); a state over [`HELD_MAX_BYTES`] is
//!   written to the snapshot store instead, as an ordinary snapshot
//!   ([`Hibernated::Stored`]). Nothing else changes: the cadence, the
//!   offset and what counts as persisted are as they were, so the crash
//!   bound is the same as for a live projection.
//! - Waking: the bytes are restored into a new instance. When that fails
//!   (the plugin traps or refuses its own snapshot) the projection is
//!   faulted with the cause, the bytes are written to the snapshot store so
//!   `hume snapshot NAME` shows them, and nothing is retried until `hume
//!   resume` or `hume reset`.

use tokio::time::Instant as TokioInstant;
use tracing::{debug, warn};

use super::Actor;
use crate::projection::error::ProjectionError;
use crate::snapshot::{now_ms, StoredSnapshot};

/// States up to this size stay in memory while hibernating; larger ones go
/// to the snapshot store.
pub(crate) const HELD_MAX_BYTES: usize = 64 << 10;

/// Where a hibernating projection's state is.
pub(crate) enum Hibernated {
    /// In memory: the plugin's snapshot bytes at the cursor's position.
    Held(StoredSnapshot),
    /// The newest snapshot in the store is at the cursor's position.
    Stored,
}

impl Actor {
    /// Hibernating is possible now: an instance with nothing to do and no
    /// read waiting for it.
    pub(super) fn can_hibernate(&self) -> bool {
        self.folder.is_some() && !self.behind() && self.waiters.is_empty()
    }

    /// Asked by the budget: hibernate at once when idle, or after at least
    /// one batch since this instance was built.
    pub(super) fn should_yield_slot(&self) -> bool {
        self.hibernate_asked
            && self.folder.is_some()
            && self.waiters.is_empty()
            && (self.batches_since_build > 0 || !self.behind())
    }

    /// When an idle instance hibernates, if it may.
    pub(super) fn idle_deadline(&self) -> Option<TokioInstant> {
        let after = self.cfg.hibernate_after?;
        self.can_hibernate().then(|| self.last_used + after)
    }

    /// Give the instance up, keeping the state as snapshot bytes. A failed
    /// `snapshot()` keeps the instance (and faults, as a snapshot failure
    /// does, when it broke the instance).
    pub(super) async fn hibernate(&mut self) {
        self.hibernate_asked = false;
        let Some(folder) = self.folder.as_mut() else {
            return;
        };
        let state = match folder.instance_mut().snapshot().await {
            Ok(state) => state,
            Err(source) => {
                let err = ProjectionError::Plugin {
                    name: self.cfg.name.clone(),
                    source,
                };
                warn!(error = %err, "cannot hibernate: the plugin's snapshot() failed");
                if let ProjectionError::Plugin { source, .. } = &err {
                    if super::poisons(source) {
                        self.drop_instance();
                        let limit = source.limit().map(|l| l.to_string());
                        self.fault_now(0, "snapshot".into(), &err, limit, None);
                    }
                }
                return;
            }
        };
        let snapshot = StoredSnapshot {
            offset: self.cursor.offset(),
            scanned: self.cursor.scanned(),
            plugin_hash: self.cfg.version.plugin_hash.clone(),
            state,
            taken_at: now_ms(),
        };
        let held = if snapshot.state.len() > HELD_MAX_BYTES {
            match self.save(snapshot.clone()).await {
                Ok(()) => Hibernated::Stored,
                Err(err) => {
                    warn!(error = %err, "hibernating: writing the state to the snapshot store failed; holding it in memory");
                    Hibernated::Held(snapshot)
                }
            }
        } else {
            Hibernated::Held(snapshot)
        };
        debug!(
            offset = self.cursor.offset(),
            "hibernating: plugin instance dropped"
        );
        self.drop_instance();
        self.hibernated = Some(held);
        self.cfg
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear_rate();
        self.metrics.hibernations.increment(1);
    }

    /// At start, when the live-instance bound is already reached: a
    /// projection whose newest snapshot covers the log (for its streams)
    /// starts asleep, with no instance until an event, a read or a query
    /// needs one (`on-caught-up` is called then, not at start). A restart of
    /// more projections than the bound then reads one snapshot record for
    /// each beyond it instead of instantiating a plugin that would have to
    /// hibernate at once. Not with hibernation off, and not for a new
    /// version waiting to be swapped in (it must report reaching the head).
    /// False: build an instance now.
    pub(super) async fn start_asleep(&mut self) -> bool {
        if self.cfg.hibernate_after.is_none() || self.cfg.caught_up.is_some() {
            return false;
        }
        // Bounded like builds: 100,000 projections starting at once must not
        // read their snapshots all at the same time.
        let permit = self.cfg.builds.clone().acquire_owned().await;
        let latest = self.cfg.store.latest(&self.cfg.key).await;
        drop(permit);
        let snapshot = match latest {
            Ok(Some(s)) if s.plugin_hash == self.cfg.version.plugin_hash => s,
            _ => return false,
        };
        let end = self.cfg.feed.end();
        let scanned = self
            .cfg
            .feed
            .caught_up_to(snapshot.scanned.max(snapshot.offset), &self.cfg.follow);
        if scanned < end {
            return false;
        }
        self.cursor.reset_to(snapshot.offset, snapshot.scanned);
        self.cadence.restart(snapshot.offset);
        self.persisted = Some((snapshot.offset, self.cursor.scanned()));
        self.cfg
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_snapshot = Some((snapshot.offset, snapshot.taken_at));
        self.hibernated = Some(Hibernated::Stored);
        self.caught_up_reported = false;
        debug!(
            offset = snapshot.offset,
            "started asleep: the snapshot covers the log"
        );
        true
    }

    /// Bring the instance back from the hibernated state. False when it is
    /// not live afterwards (the projection is then faulted).
    pub(super) async fn wake(&mut self) -> bool {
        let Some(held) = self.hibernated.take() else {
            return self.folder.is_some();
        };
        let snapshot = match held {
            Hibernated::Held(s) => Some(s),
            Hibernated::Stored => match self.cfg.store.latest(&self.cfg.key).await {
                Ok(s) => s,
                Err(err) => {
                    self.hibernated = Some(Hibernated::Stored);
                    self.fault_now(0, "restore".into(), &err, None, None);
                    return false;
                }
            },
        };
        let Some(snapshot) = snapshot else {
            // The stored state is gone (deleted under us): rebuild.
            self.build().await;
            return self.folder.is_some();
        };
        let caught_up_reported = self.caught_up_reported;
        let slot = self.take_slot().await;
        self.hibernate_asked = false;
        let permit = self.cfg.builds.clone().acquire_owned().await;
        let opened = crate::projection::travel::open(
            &self.cfg.plugin,
            &self.cfg.name,
            &self.cfg.version,
            Some(&snapshot),
        )
        .await;
        drop(permit);
        match opened {
            Ok(folder) => {
                self.folder = Some(folder);
                self.slot = Some(slot);
                self.batches_since_build = 0;
                self.caught_up_reported = caught_up_reported;
                self.metrics.wakes.increment(1);
                debug!(offset = self.cursor.offset(), "woken from hibernation");
                true
            }
            Err(err) => {
                drop(slot);
                let offset = snapshot.offset;
                let kept = self.keep_for_inspection(&snapshot).await;
                // Still hibernated (dirty reads show the state), but
                // faulted: nothing wakes it again until resume or reset.
                self.hibernated = Some(if kept {
                    Hibernated::Stored
                } else {
                    Hibernated::Held(snapshot)
                });
                let err = ProjectionError::Wake {
                    name: self.cfg.name.clone(),
                    offset,
                    kept,
                    source: Box::new(err),
                };
                self.fault_now(0, "restore".into(), &err, None, None);
                false
            }
        }
    }

    /// A state that failed to restore: write it to the store (unless it is
    /// the newest snapshot there already) so it can be looked at.
    async fn keep_for_inspection(&mut self, snapshot: &StoredSnapshot) -> bool {
        let newest = self.cfg.store.latest(&self.cfg.key).await.ok().flatten();
        if newest.is_some_and(|s| &s == snapshot) {
            return true;
        }
        self.save(snapshot.clone()).await.is_ok()
    }

    /// The hibernated state's bytes (for a dirty read of a projection that
    /// could not be woken).
    pub(super) async fn hibernated_state(
        &mut self,
    ) -> Result<Option<StoredSnapshot>, ProjectionError> {
        match &self.hibernated {
            Some(Hibernated::Held(s)) => Ok(Some(s.clone())),
            Some(Hibernated::Stored) => Ok(self.cfg.store.latest(&self.cfg.key).await?),
            None => Ok(None),
        }
    }

    /// Write a snapshot taken while hibernating (or held) to the store.
    pub(super) async fn save(&mut self, snapshot: StoredSnapshot) -> Result<(), ProjectionError> {
        let (offset, scanned, taken_at) = (snapshot.offset, snapshot.scanned, snapshot.taken_at);
        self.cfg
            .store
            .save(
                &self.cfg.key,
                snapshot,
                self.cfg.version.options.snapshot_history,
            )
            .await?;
        self.metrics.snapshots.increment(1);
        self.persisted = Some((offset, scanned));
        self.cadence
            .persisted(offset, std::time::Instant::now(), Default::default());
        self.cfg
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_snapshot = Some((offset, taken_at));
        Ok(())
    }

    /// Persist the hibernated state (a snapshot on request, on time, or at
    /// shutdown), without waking. Returns its offset. The snapshot carries
    /// the cursor's `scanned`, which moved on while it slept (nothing of
    /// its streams arrived, or it would have woken): a restart then starts
    /// at the head instead of scanning the log from where it fell asleep.
    pub(super) async fn persist_hibernated(&mut self) -> Result<u64, ProjectionError> {
        let (offset, scanned) = (self.cursor.offset(), self.cursor.scanned());
        if self.persisted == Some((offset, scanned)) {
            return Ok(offset);
        }
        let snapshot = match self.hibernated.take() {
            Some(Hibernated::Held(s)) => Some(s),
            Some(Hibernated::Stored) => {
                self.hibernated = Some(Hibernated::Stored);
                self.cfg.store.latest(&self.cfg.key).await?
            }
            None => None,
        };
        let Some(mut snapshot) = snapshot else {
            return Ok(offset);
        };
        let held = self.hibernated.is_none();
        if snapshot.offset == offset {
            snapshot.scanned = snapshot.scanned.max(scanned);
        }
        match self.save(snapshot.clone()).await {
            Ok(()) => {
                self.hibernated = Some(Hibernated::Stored);
                Ok(offset)
            }
            Err(err) => {
                if held {
                    self.hibernated = Some(Hibernated::Held(snapshot));
                }
                Err(err)
            }
        }
    }

    /// Record a use of the instance (for the least-recently-used choice and
    /// the idle timer).
    pub(super) fn touch(&mut self) {
        self.last_used = TokioInstant::now();
        if let Some(slot) = &self.slot {
            slot.touch();
        }
    }
}
