//! Starting one actor per projection version: a plain [`Actor`] or, for
//! a partitioned projection, a [`PartitionedActor`], with its routing
//! handle.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{snapshot_key, ActorHandle, Manager};
use crate::deployment::{DeploymentRecord, VersionRecord};
use crate::log::Selector;
use crate::plugin::Plugin;
use crate::projection::actor::{Actor, ActorConfig};
use crate::projection::error::ProjectionError;
use crate::projection::feed::Follow;
use crate::projection::partitioned::{PartitionedActor, PartitionedConfig};
use crate::projection::status::{Live, LiveStatus};

impl Manager {
    /// Start the actor of `version` (partitioned or not) and return its
    /// handle; `caught_up` is told when a pending version first reaches
    /// the head.
    pub(super) fn spawn_version(
        &self,
        record: &DeploymentRecord,
        version: &VersionRecord,
        plugin: Plugin,
        caught_up: Option<oneshot::Sender<()>>,
    ) -> Result<ActorHandle, ProjectionError> {
        let selector = Selector::parse(&version.streams).map_err(ProjectionError::Streams)?;
        let follow = Follow::new(selector);
        // A pending version (told when caught up) steps over its own
        // skips; the active one over the record's.
        let skipped = if caught_up.is_some() {
            version.skipped.clone()
        } else {
            record.skipped.clone()
        };
        let live: LiveStatus = Arc::new(Mutex::new(Live::new(
            version.start_offset,
            version.start_offset,
            skipped.clone(),
        )));
        let partitioning = version
            .options
            .partitioning()
            .map_err(|e| ProjectionError::Invalid(e.to_string()))?;
        if let Some(by) = partitioning {
            let workers = version.options.workers.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                |w| w as usize,
            );
            let (tx, join) = PartitionedActor::spawn(PartitionedConfig {
                name: record.name.clone(),
                key: snapshot_key(&record.name, &version.id()),
                version: version.clone(),
                plugin,
                by,
                workers,
                follow: follow.clone(),
                feed: self.inner.feed.clone(),
                store: self.store(version.options.snapshot_store),
                skipped: record.skipped.clone(),
                stopped: record.stopped,
                live: live.clone(),
                caught_up,
            });
            return Ok(ActorHandle {
                tx,
                follow,
                live,
                version: version.clone(),
                join,
            });
        }
        let (tx, join) = Actor::spawn(ActorConfig {
            name: record.name.clone(),
            key: snapshot_key(&record.name, &version.id()),
            seed_key: version
                .keep_state_from
                .as_ref()
                .map(|h| snapshot_key(&record.name, h)),
            version: version.clone(),
            plugin,
            follow: follow.clone(),
            log: self.inner.log.clone(),
            feed: self.inner.feed.clone(),
            store: self.store(version.options.snapshot_store),
            skipped,
            stopped: record.stopped,
            live: live.clone(),
            caught_up,
            builds: self.inner.builds.clone(),
            budget: self.inner.budget.clone(),
            hibernate_after: self.inner.options.hibernate_after,
        });
        Ok(ActorHandle {
            tx,
            follow,
            live,
            version: version.clone(),
            join,
        })
    }
}
