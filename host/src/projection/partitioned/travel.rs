//! Time travel of one partition: its state after its events up to a
//! position, folded from `init-state` over the partition's events read
//! from the log (from the projection's start: the cost grows with the log;
//! partitions keep no snapshot history).

use super::work::{self, Job};
use super::PartitionedActor;
use crate::projection::error::ProjectionError;
use crate::projection::StateView;

impl PartitionedActor {
    /// The state of partition `key` after its events up to and including
    /// `at` (the projection has examined the log up to `at`: the command
    /// waited for it). Positions stepped over with `hume skip NAME` are
    /// left out, as the projection left them out.
    pub(super) async fn state_at(&self, key: &str, at: u64) -> Result<StateView, ProjectionError> {
        let name = self.cfg.name.clone();
        if self.table.get(key).is_none() {
            return Err(ProjectionError::NoPartition {
                name,
                key: key.to_string(),
            });
        }
        let start = self.cfg.version.start_offset;
        let events = self.partition_events(key, start, at, None).await?;
        let job = Job {
            key: key.to_string(),
            from: None,
            events,
        };
        let done = work::fold_all(&self.folding, vec![job], 1)
            .await
            .and_then(|mut d| d.pop())
            .ok_or_else(|| {
                ProjectionError::Conflict(format!(
                    "folding partition `{key}` up to {at} failed (a worker stopped); retry"
                ))
            })?;
        if let Some(f) = done.fault {
            return Err(ProjectionError::PartitionFaulted {
                name,
                key: key.to_string(),
                position: f.position,
                kind: f.kind,
                error: f.error,
            });
        }
        Ok(StateView {
            offset: done.last_position,
            state: done.state,
            json: self.cfg.plugin.info().is_json(),
        })
    }
}
