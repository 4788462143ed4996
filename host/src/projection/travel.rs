//! Time travel: the state of a projection version exactly as it was after
//! every event of its streams up to and including a position.
//!
//! It starts from the newest retained snapshot of the same version at or
//! below the position (the snapshot history's retention bounds how far that
//! is), and folds the log forward to the position in a separate,
//! short-lived instance. The live projection is never touched. Positions
//! below the version's start, or before its first retained snapshot, are
//! folded from the start.

use std::sync::Arc;
use std::time::Duration;

use crate::deployment::{ProjectionOptions, VersionRecord};
use crate::event::RecordedEvent;
use crate::log::{EventLog, Selector};
use crate::plugin::{Limits, Plugin};
use crate::snapshot::{SnapshotStore, StoredSnapshot};

use super::error::ProjectionError;
use super::fold::{FoldError, Folder};

/// The sandbox limits a projection's options ask for.
pub fn limits_of(options: &ProjectionOptions) -> Limits {
    Limits {
        call_timeout: Duration::from_millis(options.call_timeout_ms),
        max_memory_bytes: usize::try_from(options.max_memory_bytes).unwrap_or(usize::MAX),
        max_snapshot_bytes: usize::try_from(options.max_snapshot_bytes).unwrap_or(usize::MAX),
    }
}

/// Instantiate `plugin` for a version and bring it to `snapshot` (or the
/// initial state): the path every live and time-travel instance takes.
pub(crate) async fn open(
    plugin: &Plugin,
    name: &str,
    version: &VersionRecord,
    snapshot: Option<&StoredSnapshot>,
) -> Result<Folder, ProjectionError> {
    let from = snapshot.map(|s| (s.offset, s.state.as_slice()));
    Folder::start_from(
        plugin,
        name,
        from,
        version.options.strict,
        limits_of(&version.options),
    )
    .await
    .map_err(|err| fold_error(name, err))
}

fn fold_error(name: &str, err: FoldError) -> ProjectionError {
    match err {
        FoldError::Instance { source, .. } | FoldError::Plugin { source, .. } => {
            ProjectionError::Plugin {
                name: name.to_string(),
                source,
            }
        }
        other => ProjectionError::Position(format!(
            "projection `{name}` cannot be folded to that position: {other}"
        )),
    }
}

/// Everything time travel needs about one projection version.
pub(crate) struct Traveller<'a> {
    pub name: &'a str,
    pub version: &'a VersionRecord,
    pub plugin: &'a Plugin,
    /// Snapshot key of the version.
    pub key: &'a str,
    pub store: &'a Arc<dyn SnapshotStore>,
    pub log: &'a Arc<dyn EventLog>,
    /// Positions stepped over by `hume skip`.
    pub skipped: &'a [u64],
}

/// The state at a position, and how it was computed.
#[derive(Debug, Clone)]
pub struct TravelView {
    /// The position asked for.
    pub at: u64,
    /// Position of the last event applied at or below `at`.
    pub offset: u64,
    /// The state.
    pub state: Vec<u8>,
    /// Offset of the snapshot the fold started from (`None`: the start).
    pub from_snapshot: Option<u64>,
    /// Events folded on top of it.
    pub replayed: u64,
    /// True when the plugin declares its state JSON.
    pub json: bool,
}

impl Traveller<'_> {
    /// Fold to `at` and hand the instance to `finish` (which reads the state
    /// or asks a query).
    async fn fold_to(&self, at: u64) -> Result<(Folder, TravelView), ProjectionError> {
        let start = self.version.start_offset;
        let snapshot = if at > start {
            self.store
                .at_or_below(self.key, at)
                .await?
                .filter(|s| s.plugin_hash == self.version.plugin_hash && s.offset >= start)
        } else {
            None
        };
        let mut folder = open(self.plugin, self.name, self.version, snapshot.as_ref()).await?;
        let base = snapshot.as_ref().map_or(start, |s| s.offset);
        let mut offset = base;
        let mut replayed = 0u64;
        let selector = Selector::parse(&self.version.streams).map_err(ProjectionError::Streams)?;
        let batch = self.version.options.batch_size.max(1) as usize;
        let mut from = base + 1;
        while from <= at {
            let page = self
                .log
                .read(from, &selector, batch)
                .await
                .map_err(ProjectionError::Log)?;
            let events: Vec<RecordedEvent> = page
                .events
                .into_iter()
                .filter(|e| e.position <= at && !self.skipped.contains(&e.position))
                .collect();
            if !events.is_empty() {
                let applied = folder
                    .apply(&events)
                    .await
                    .map_err(|err| fold_error(self.name, err))?;
                offset = offset.max(applied.offset);
                replayed += events.len() as u64;
            }
            if page.next.is_none() && page.last_scanned < at {
                // The log ends below `at` (the caller waited for it, so this
                // is the head): nothing more to fold.
                break;
            }
            from = page.last_scanned + 1;
        }
        let view = TravelView {
            at,
            offset,
            state: Vec::new(),
            from_snapshot: snapshot.map(|s| s.offset),
            replayed,
            json: self.plugin.info().is_json(),
        };
        Ok((folder, view))
    }

    /// The state after every event up to and including `at`.
    pub async fn state_at(&self, at: u64) -> Result<TravelView, ProjectionError> {
        let (mut folder, mut view) = self.fold_to(at).await?;
        view.state =
            folder
                .instance_mut()
                .snapshot()
                .await
                .map_err(|source| ProjectionError::Plugin {
                    name: self.name.to_string(),
                    source,
                })?;
        Ok(view)
    }

    /// The plugin's answer to `request` at `at`.
    pub async fn query_at(
        &self,
        at: u64,
        request: &[u8],
    ) -> Result<(Vec<u8>, TravelView), ProjectionError> {
        let (mut folder, view) = self.fold_to(at).await?;
        let answer = folder
            .instance_mut()
            .query(request)
            .await
            .map_err(|source| ProjectionError::Plugin {
                name: self.name.to_string(),
                source,
            })?;
        Ok((answer, view))
    }

    /// The events of the version's streams in `(from, to]`, at most `limit`.
    pub async fn events_between(
        &self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ProjectionError> {
        let selector = Selector::parse(&self.version.streams).map_err(ProjectionError::Streams)?;
        let mut out = Vec::new();
        let mut next = from + 1;
        while next <= to && out.len() < limit {
            let page = self
                .log
                .read(next, &selector, limit - out.len())
                .await
                .map_err(ProjectionError::Log)?;
            out.extend(page.events.into_iter().filter(|e| e.position <= to));
            match page.next {
                Some(n) if page.last_scanned < to => next = n,
                _ => break,
            }
        }
        Ok(out)
    }
}
