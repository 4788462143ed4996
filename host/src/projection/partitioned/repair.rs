//! Per-partition `resume`, `skip` and `reset`: while a partition is faulted
//! the projection's offset keeps moving and that partition's later events
//! are not applied; repairing it reads its events after its last position
//! (or, for a reset, after the projection's start) up to where the
//! projection has examined the log, and folds them, so it is level with
//! the other partitions again.

use super::table::Part;
use super::work::{self, Job};
use super::PartitionedActor;
use crate::event::RecordedEvent;
use crate::projection::error::ProjectionError;

/// What to do with a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repair {
    /// Retry the faulted event (after fixing the plugin).
    Resume,
    /// Step over the faulted event.
    Skip,
    /// Drop the partition's state and fold its events again from the start.
    Reset,
}

impl PartitionedActor {
    /// Repair partition `key`; answers the position stepped over by a skip.
    pub(super) async fn repair(
        &mut self,
        key: &str,
        what: Repair,
    ) -> Result<Option<u64>, ProjectionError> {
        let name = self.cfg.name.clone();
        let part = self
            .table
            .get(key)
            .cloned()
            .ok_or_else(|| ProjectionError::NoPartition {
                name: name.clone(),
                key: key.to_string(),
            })?;
        let fault = part.fault.clone();
        if what != Repair::Reset && fault.is_none() {
            return Err(ProjectionError::Conflict(format!(
                "partition `{key}` of projection `{name}` is not faulted: nothing to {}",
                if what == Repair::Skip {
                    "skip"
                } else {
                    "resume"
                }
            )));
        }
        let step_over = match what {
            Repair::Skip => fault.as_ref().map(|f| f.position),
            _ => None,
        };
        if let Some(position) = step_over {
            // Recorded in the deployment by the manager already: a later
            // reset (of the partition or, with --keep-skips, of the whole
            // projection) steps over it again.
            self.cursor.skip(position);
        }
        let (from, base_events) = match what {
            Repair::Reset => {
                self.stats.forget(key);
                (None, 0)
            }
            _ => (Some((part.last_position, part.state.clone())), part.events),
        };
        let start = from
            .as_ref()
            .map_or(self.cfg.version.start_offset, |(p, _)| *p);
        let upto = self.cursor.scanned();
        let events = self.partition_events(key, start, upto, step_over).await?;
        let last_event = events.last().map(|e| e.position);
        let done = match events.is_empty() {
            true => None,
            false => {
                let job = Job {
                    key: key.to_string(),
                    from: from.clone(),
                    events,
                };
                work::fold_all(&self.folding, vec![job], 1)
                    .await
                    .and_then(|mut d| d.pop())
            }
        };
        let skipped_to = step_over.map(|p| p.max(part.last_position));
        let new = match done {
            Some(d) => Part {
                last_position: d.last_position.max(skipped_to.unwrap_or(0)),
                events: base_events + d.applied,
                state: d.state,
                fault: d.fault,
            },
            None if last_event.is_some() => {
                return Err(ProjectionError::Conflict(format!(
                    "refolding partition `{key}` failed (a worker stopped); retry"
                )))
            }
            None => match from {
                Some((last, state)) => Part {
                    last_position: last.max(skipped_to.unwrap_or(0)),
                    events: base_events,
                    state,
                    fault: None,
                },
                None => {
                    // Nothing of it left in the log after the start.
                    return Err(ProjectionError::NoPartition {
                        name,
                        key: key.to_string(),
                    });
                }
            },
        };
        let again = new.fault.clone();
        self.table.put(key.to_string(), new);
        self.changed_at
            .get_or_insert_with(tokio::time::Instant::now);
        self.persist_logged().await;
        match again {
            Some(f) => Err(ProjectionError::PartitionFaulted {
                name,
                key: key.to_string(),
                position: f.position,
                kind: f.kind,
                error: f.error,
            }),
            None => Ok(step_over),
        }
    }

    /// The skipped positions whose events belong to partition `key`.
    pub(super) async fn skips_of(&self, key: &str) -> Result<Vec<u64>, ProjectionError> {
        let mut out = Vec::new();
        let skipped: Vec<u64> = self.cursor.skipped().collect();
        for position in skipped {
            let page = self
                .cfg
                .feed
                .read(position, &self.cfg.follow, 1)
                .await
                .map_err(ProjectionError::Log)?;
            let ours = page.events.first().is_some_and(|e| {
                e.position == position && self.cfg.by.key_of(e).is_some_and(|k| k == key)
            });
            if ours {
                out.push(position);
            }
        }
        Ok(out)
    }

    /// The events of partition `key` after `after` up to what the
    /// projection has examined, without the positions it skips and
    /// `step_over`.
    pub(super) async fn partition_events(
        &self,
        key: &str,
        after: u64,
        upto: u64,
        step_over: Option<u64>,
    ) -> Result<Vec<RecordedEvent>, ProjectionError> {
        let end = upto.min(self.cursor.scanned());
        let skipped: std::collections::HashSet<u64> = self.cursor.skipped().collect();
        let mut next = after + 1;
        let mut out = Vec::new();
        let page_size = self.cfg.version.options.batch_size.max(1000) as usize;
        while next <= end {
            let page = self
                .cfg
                .feed
                .read(next, &self.cfg.follow, page_size)
                .await
                .map_err(ProjectionError::Log)?;
            for e in page.events {
                if e.position > end {
                    break;
                }
                if skipped.contains(&e.position) || Some(e.position) == step_over {
                    continue;
                }
                if self.cfg.by.key_of(&e).is_some_and(|k| k == key) {
                    out.push(e);
                }
            }
            if page.last_scanned < next {
                break;
            }
            next = page.last_scanned + 1;
        }
        Ok(out)
    }
}
