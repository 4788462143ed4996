//! Options changed in place (`hume deploy` of the running plugin with other
//! limits, cadence or snapshot store): the state and offset stay; what
//! depends on the options follows them.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::Actor;
use crate::deployment::change::limits_differ;
use crate::deployment::ProjectionOptions;
use crate::projection::error::ProjectionError;
use crate::projection::travel::limits_of;
use crate::snapshot::SnapshotStore;

impl Actor {
    /// Take new options. New sandbox limits apply to the live instance from
    /// its next call (a hibernated or faulted-and-dropped one gets them when
    /// it is built again). A new snapshot store gets a snapshot at once, and
    /// the old store's snapshots of this version go.
    pub(super) async fn reconfigure(
        &mut self,
        options: ProjectionOptions,
        store: Arc<dyn SnapshotStore>,
    ) -> Result<(), ProjectionError> {
        let old = std::mem::replace(&mut self.cfg.version.options, options);
        let new = &self.cfg.version.options.clone();
        self.cadence.reconfigure(
            new.snapshot_every,
            (new.snapshot_after_ms > 0).then(|| Duration::from_millis(new.snapshot_after_ms)),
            new.snapshot_history.spacing,
        );
        let rebuild = limits_differ(&old, new);
        if old.snapshot_store != new.snapshot_store {
            let old_store = std::mem::replace(&mut self.cfg.store, store);
            if self.has_state() && !self.recovery.is_faulted() {
                self.persisted = None;
                self.persist().await?;
            }
            if let Err(err) = old_store.delete(&self.cfg.key).await {
                warn!(error = %err, "cannot delete the snapshots left in the old store");
            }
        }
        if rebuild {
            if let Some(folder) = self.folder.as_mut() {
                folder.instance_mut().set_limits(limits_of(new));
            }
        }
        info!(
            limits_changed = rebuild,
            "options changed in place; state and offset kept"
        );
        Ok(())
    }
}
