//! The read side of history: retained snapshots, the state (or a query's
//! answer) at any position, and the change between two positions. Each
//! call folds in its own short-lived instance; the live actor is only asked
//! to confirm it has examined the position (a consistent read's wait).

use std::sync::Arc;
use std::time::Duration;

use super::{not_found, snapshot_key, Command, Manager};
use crate::deployment::VersionRecord;
use crate::event::RecordedEvent;
use crate::projection::error::ProjectionError;
use crate::projection::travel::{TravelView, Traveller};
use crate::snapshot::{SnapshotMeta, SnapshotStore};

/// Most events `diff --events` lists.
pub const MAX_DIFF_EVENTS: usize = 10_000;

/// What `hume diff` shows.
#[derive(Debug, Clone)]
pub struct DiffView {
    /// The state at the first position.
    pub from: TravelView,
    /// The state at the second position.
    pub to: TravelView,
    /// RFC 6902 JSON Patch from the first state to the second.
    pub patch: serde_json::Value,
    /// The events of the projection's streams in between, when asked for.
    pub events: Option<Vec<RecordedEvent>>,
    /// True when `events` stopped at [`MAX_DIFF_EVENTS`].
    pub truncated: bool,
}

/// How a history read waits for its position.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    /// Wait (up to this long) until the projection has examined it.
    UpTo(Duration),
    /// Answer `NotYet` at once when it has not.
    No,
}

struct Version {
    version: VersionRecord,
    key: String,
    store: Arc<dyn SnapshotStore>,
    skipped: Vec<u64>,
}

impl Manager {
    fn active_version(&self, name: &str) -> Result<Version, ProjectionError> {
        let entries = self.read_entries();
        let entry = entries.get(name).ok_or_else(|| not_found(name))?;
        let version = entry.active.version.clone();
        if let Some(by) = &version.options.partition_by {
            return Err(ProjectionError::Invalid(format!(
                "projection `{name}` is partitioned by {by}: time travel (--at, diff, \
                 snapshots) is not available for partitioned projections yet; read the current \
                 state with --partition KEY"
            )));
        }
        Ok(Version {
            key: snapshot_key(name, &version.id()),
            store: self.store(version.options.snapshot_store),
            skipped: entry.record.skipped.clone(),
            version,
        })
    }

    /// Make sure the projection has examined the log up to `at`.
    async fn reach(&self, name: &str, at: u64, wait: Wait) -> Result<(), ProjectionError> {
        match wait {
            Wait::UpTo(timeout) => {
                self.ask(name, Some((timeout, at)), |reply| Command::Wait {
                    target: at,
                    reply,
                })
                .await?;
            }
            Wait::No => {
                let scanned = self.status(name)?.scanned;
                if scanned < at {
                    return Err(ProjectionError::NotYet {
                        name: name.to_string(),
                        at,
                        scanned,
                    });
                }
            }
        }
        Ok(())
    }

    /// The snapshots retained for the active version, oldest first.
    pub async fn snapshots(&self, name: &str) -> Result<Vec<SnapshotMeta>, ProjectionError> {
        let v = self.active_version(name)?;
        Ok(v.store.list(&v.key).await?)
    }

    async fn with_traveller<T>(
        &self,
        name: &str,
        at: &[u64],
        wait: Wait,
        f: impl AsyncFnOnce(&Traveller<'_>) -> Result<T, ProjectionError>,
    ) -> Result<T, ProjectionError> {
        if let Some(top) = at.iter().max() {
            self.reach(name, *top, wait).await?;
        }
        let v = self.active_version(name)?;
        let plugin = self.stored_plugin(&v.version.plugin_hash).await?;
        let log = self.inner.log.clone();
        let traveller = Traveller {
            name,
            version: &v.version,
            plugin: &plugin,
            key: &v.key,
            store: &v.store,
            log: &log,
            skipped: &v.skipped,
        };
        let _permit = self.inner.builds.acquire().await;
        f(&traveller).await
    }

    /// The state after every event of the projection's streams up to and
    /// including `at`.
    pub async fn state_at(
        &self,
        name: &str,
        at: u64,
        wait: Wait,
    ) -> Result<TravelView, ProjectionError> {
        self.with_traveller(name, &[at], wait, async |t| t.state_at(at).await)
            .await
    }

    /// The plugin's answer to `request` at `at`.
    pub async fn query_at(
        &self,
        name: &str,
        at: u64,
        request: Vec<u8>,
        wait: Wait,
    ) -> Result<(Vec<u8>, TravelView), ProjectionError> {
        self.with_traveller(name, &[at], wait, async |t| t.query_at(at, &request).await)
            .await
    }

    /// What changed between `from` and `to`: a JSON Patch, and the events
    /// in between when `events` is set.
    pub async fn diff(
        &self,
        name: &str,
        from: u64,
        to: u64,
        events: bool,
        wait: Wait,
    ) -> Result<DiffView, ProjectionError> {
        self.with_traveller(name, &[from, to], wait, async |t| {
            let a = t.state_at(from).await?;
            let b = t.state_at(to).await?;
            let json = |v: &TravelView| {
                serde_json::from_slice::<serde_json::Value>(&v.state).map_err(|e| {
                    ProjectionError::Position(format!(
                        "projection `{name}` does not keep a JSON state, so there is no JSON Patch \
                         between positions: {e}"
                    ))
                })
            };
            let patch = json_patch::diff(&json(&a)?, &json(&b)?);
            let patch = serde_json::to_value(patch).expect("a JSON Patch serialises");
            let (events, truncated) = if events {
                let (lo, hi) = (from.min(to), from.max(to));
                let list = t.events_between(lo, hi, MAX_DIFF_EVENTS + 1).await?;
                let truncated = list.len() > MAX_DIFF_EVENTS;
                (
                    Some(list.into_iter().take(MAX_DIFF_EVENTS).collect()),
                    truncated,
                )
            } else {
                (None, false)
            };
            Ok(DiffView {
                from: a,
                to: b,
                patch,
                events,
                truncated,
            })
        })
        .await
    }
}
