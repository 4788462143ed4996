//! Folding events through a plugin instance with the seed's semantics:
//! events come in strictly increasing position (an event at or below the
//! offset is stale), unknown kinds fault a strict projection and are skipped
//! (counted, logged) by a non-strict one, a rejection always faults.
//!
//! [`Folder`] is shared by the offline `evolve`/`replay` below and by the
//! live projection actors.

use std::collections::HashSet;

use tracing::Instrument;

use crate::event::RecordedEvent;
use crate::plugin::{BatchError, EventError, Instance, Limits, Plugin, PluginError};

/// A projection's state at an offset: what `hume replay` prints as
/// `{"offset": N, "state": ...}` and what `--from-snapshot` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Position of the last applied event (0: none).
    pub offset: u64,
    /// The state as `snapshot()` returned it (JSON text for JSON plugins).
    pub state: Vec<u8>,
}

/// Why folding stopped. Every variant names the event involved.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    /// The event is at or below the offset: already applied, never again.
    #[error(
        "stale event at position {position}: the projection is already at offset {offset} \
         (events must come in strictly increasing position)"
    )]
    StaleEvent {
        /// The event's position.
        position: u64,
        /// The offset it should have been above.
        offset: u64,
    },
    /// A strict projection got a kind it does not handle.
    #[error(
        "event at position {position} of kind `{kind}` is unknown to the projection \
         (strict mode; `hume replay --no-strict` / `hume deploy --no-strict` skip unknown kinds)"
    )]
    Unknown {
        /// The event's position.
        position: u64,
        /// Its kind.
        kind: String,
    },
    /// The plugin rejected the event.
    #[error(
        "event at position {position} of kind `{kind}` was rejected by the projection: {message}"
    )]
    Rejected {
        /// The event's position.
        position: u64,
        /// Its kind.
        kind: String,
        /// The plugin's reason.
        message: String,
    },
    /// The plugin failed (trap, limit) while handling the batch starting at
    /// this event; the instance is poisoned.
    #[error(
        "the plugin failed on the batch starting at position {position} (kind `{kind}`): {source}"
    )]
    Plugin {
        /// Position of the first event of the failing batch.
        position: u64,
        /// Its kind.
        kind: String,
        /// What went wrong.
        #[source]
        source: PluginError,
    },
    /// Setting up or reading the instance failed (instantiate, init-state,
    /// restore, snapshot).
    #[error("{stage}: {source}")]
    Instance {
        /// What the host was doing.
        stage: &'static str,
        /// What went wrong.
        #[source]
        source: PluginError,
    },
}

impl FoldError {
    /// Position of the event the error is about, if it is about one.
    pub fn position(&self) -> Option<u64> {
        match self {
            FoldError::StaleEvent { position, .. }
            | FoldError::Unknown { position, .. }
            | FoldError::Rejected { position, .. }
            | FoldError::Plugin { position, .. } => Some(*position),
            FoldError::Instance { .. } => None,
        }
    }
}

/// What one [`Folder::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// Events the plugin applied.
    pub applied: usize,
    /// Events skipped (non-strict: kinds the plugin does not handle).
    pub skipped: usize,
    /// The offset after the batch.
    pub offset: u64,
}

/// Folds batches of events through one instance, tracking the offset.
#[derive(Debug)]
pub struct Folder {
    instance: Instance,
    offset: u64,
    strict: bool,
    /// Kinds the plugin handles; `None` = every kind.
    kinds: Option<HashSet<String>>,
    applied: u64,
    skipped: u64,
}

impl Folder {
    /// Wrap an instance whose state (fresh or restored) is at `offset`.
    /// `kinds` is the plugin's `describe().kinds` (empty: every kind); a
    /// non-strict folder drops other kinds before calling the plugin.
    pub fn new(instance: Instance, offset: u64, strict: bool, kinds: &[String]) -> Folder {
        Folder {
            instance,
            offset,
            strict,
            kinds: (!kinds.is_empty()).then(|| kinds.iter().cloned().collect()),
            applied: 0,
            skipped: 0,
        }
    }

    /// Instantiate `plugin` for `projection` and start it from `snapshot`
    /// (`restore`) or from its initial state (`init-state`).
    pub async fn start(
        plugin: &Plugin,
        projection: &str,
        snapshot: Option<&Snapshot>,
        strict: bool,
        limits: Limits,
    ) -> Result<Folder, FoldError> {
        let from = snapshot.map(|s| (s.offset, s.state.as_slice()));
        Folder::start_from(plugin, projection, from, strict, limits).await
    }

    /// [`Folder::start`] from `(offset, state bytes)`: the one way every
    /// instance is brought up, offline, live, after a fault and for time
    /// travel. `None` starts from the initial state at offset 0.
    pub async fn start_from(
        plugin: &Plugin,
        projection: &str,
        from: Option<(u64, &[u8])>,
        strict: bool,
        limits: Limits,
    ) -> Result<Folder, FoldError> {
        let stage = |stage| move |source| FoldError::Instance { stage, source };
        let mut instance = plugin
            .instantiate(projection, limits)
            .await
            .map_err(stage("cannot instantiate the plugin"))?;
        let offset = match from {
            Some((offset, state)) => {
                instance
                    .restore(state)
                    .await
                    .map_err(stage("cannot restore the snapshot"))?;
                offset
            }
            None => {
                instance
                    .init_state()
                    .await
                    .map_err(stage("init-state failed"))?;
                0
            }
        };
        Ok(Folder::new(instance, offset, strict, &plugin.info().kinds))
    }

    /// Position of the last event applied or skipped (0: none).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether unknown kinds fault (true) or are skipped.
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// Events applied since the folder was created.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Events skipped since the folder was created.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The instance (for `query`, `on_caught_up`...).
    pub fn instance_mut(&mut self) -> &mut Instance {
        &mut self.instance
    }

    /// Give the instance back.
    pub fn into_instance(self) -> Instance {
        self.instance
    }

    /// Mark `position` as handled without applying it (an operator's
    /// explicit `skip` of a faulting event). It must be above the offset.
    pub fn skip_to(&mut self, position: u64) -> Result<(), FoldError> {
        if position <= self.offset {
            return Err(FoldError::StaleEvent {
                position,
                offset: self.offset,
            });
        }
        self.offset = position;
        self.skipped += 1;
        Ok(())
    }

    /// The state now, with its offset.
    pub async fn snapshot(&mut self) -> Result<Snapshot, FoldError> {
        let state = self
            .instance
            .snapshot()
            .await
            .map_err(|source| FoldError::Instance {
                stage: "snapshot failed",
                source,
            })?;
        Ok(Snapshot {
            offset: self.offset,
            state,
        })
    }

    /// Apply a batch (in increasing position, all above the offset) with
    /// one plugin call, or a few when a non-strict projection skips unknown
    /// events mid-batch. On error, the offset is that of the last event
    /// applied or skipped before the failing one.
    pub async fn apply(&mut self, events: &[RecordedEvent]) -> Result<Applied, FoldError> {
        let mut previous = self.offset;
        for event in events {
            if event.position <= previous {
                return Err(FoldError::StaleEvent {
                    position: event.position,
                    offset: previous,
                });
            }
            previous = event.position;
        }
        let mut outcome = Applied {
            offset: self.offset,
            ..Applied::default()
        };
        let rest: Vec<&RecordedEvent> = match (&self.kinds, self.strict) {
            (Some(kinds), false) => events
                .iter()
                .filter(|e| {
                    let keep = kinds.contains(&e.kind);
                    if !keep {
                        outcome.skipped += 1;
                    }
                    keep
                })
                .collect(),
            _ => events.iter().collect(),
        };
        let mut start = 0;
        while start < rest.len() {
            let batch = &rest[start..];
            match self.instance.handle_event_refs(batch).await {
                Ok(()) => {
                    outcome.applied += batch.len();
                    break;
                }
                Err(BatchError::Failed { index, error }) => {
                    let event = batch[index];
                    outcome.applied += index;
                    match error {
                        EventError::UnknownEvent if !self.strict => {
                            tracing::warn!(
                                position = event.position,
                                kind = %event.kind,
                                "skipping an event of a kind the projection does not handle"
                            );
                            outcome.skipped += 1;
                            start += index + 1;
                        }
                        error => {
                            self.record_partial(events, event.position, &outcome);
                            return Err(match error {
                                EventError::UnknownEvent => FoldError::Unknown {
                                    position: event.position,
                                    kind: event.kind.clone(),
                                },
                                EventError::Rejected(message) => FoldError::Rejected {
                                    position: event.position,
                                    kind: event.kind.clone(),
                                    message,
                                },
                            });
                        }
                    }
                }
                Err(BatchError::Plugin(source)) => {
                    let event = batch[0];
                    self.record_partial(events, event.position, &outcome);
                    return Err(FoldError::Plugin {
                        position: event.position,
                        kind: event.kind.clone(),
                        source,
                    });
                }
            }
        }
        self.applied += outcome.applied as u64;
        self.skipped += outcome.skipped as u64;
        if let Some(last) = events.last() {
            self.offset = last.position;
        }
        outcome.offset = self.offset;
        Ok(outcome)
    }

    /// After a failure at `failed`: the offset moves to the last event
    /// before it (applied or skipped), and the counters take what was done.
    fn record_partial(&mut self, events: &[RecordedEvent], failed: u64, done: &Applied) {
        self.applied += done.applied as u64;
        self.skipped += done.skipped as u64;
        if let Some(before) = events.iter().take_while(|e| e.position < failed).last() {
            self.offset = before.position;
        }
    }
}

/// Options of [`evolve`] and [`replay`].
#[derive(Debug, Clone)]
pub struct FoldOptions {
    /// Name the instance runs under (tags its log lines).
    pub projection: String,
    /// Unknown kinds fault (true, the default) or are skipped.
    pub strict: bool,
    /// Sandbox limits of the instance.
    pub limits: Limits,
    /// Events per plugin call.
    pub batch_size: usize,
}

impl Default for FoldOptions {
    fn default() -> Self {
        FoldOptions {
            projection: "replay".to_string(),
            strict: true,
            limits: Limits::default(),
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

/// Events per plugin call when nothing else is asked for.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// The result of [`replay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// The final state and offset.
    pub snapshot: Snapshot,
    /// Events applied.
    pub applied: u64,
    /// Events skipped (non-strict).
    pub skipped: u64,
}

/// Apply one event to a snapshot (`None`: the initial state), the seed's
/// `evolve`: a stale event (position at or below the offset) is an error.
pub async fn evolve(
    plugin: &Plugin,
    snapshot: Option<&Snapshot>,
    event: &RecordedEvent,
    options: &FoldOptions,
) -> Result<Snapshot, FoldError> {
    let span = tracing::info_span!(
        "hume.projection.evolve",
        projection = %options.projection,
        position = event.position,
        kind = %event.kind
    );
    evolve_inner(plugin, snapshot, event, options)
        .instrument(span)
        .await
}

async fn evolve_inner(
    plugin: &Plugin,
    snapshot: Option<&Snapshot>,
    event: &RecordedEvent,
    options: &FoldOptions,
) -> Result<Snapshot, FoldError> {
    if let Some(s) = snapshot {
        if event.position <= s.offset {
            return Err(FoldError::StaleEvent {
                position: event.position,
                offset: s.offset,
            });
        }
    }
    let mut folder = Folder::start(
        plugin,
        &options.projection,
        snapshot,
        options.strict,
        options.limits,
    )
    .await?;
    folder.apply(std::slice::from_ref(event)).await?;
    folder.snapshot().await
}

/// Fold `events` into a snapshot (`None`: the initial state), the seed's
/// `replay`, in batches of `options.batch_size`.
pub async fn replay<I>(
    plugin: &Plugin,
    snapshot: Option<&Snapshot>,
    events: I,
    options: &FoldOptions,
) -> Result<ReplayOutcome, FoldError>
where
    I: IntoIterator<Item = RecordedEvent>,
{
    let span = tracing::info_span!(
        "hume.projection.replay",
        projection = %options.projection,
        from = snapshot.map_or(0, |s| s.offset)
    );
    replay_inner(plugin, snapshot, events.into_iter(), options)
        .instrument(span)
        .await
}

async fn replay_inner(
    plugin: &Plugin,
    snapshot: Option<&Snapshot>,
    events: impl Iterator<Item = RecordedEvent>,
    options: &FoldOptions,
) -> Result<ReplayOutcome, FoldError> {
    let mut folder = Folder::start(
        plugin,
        &options.projection,
        snapshot,
        options.strict,
        options.limits,
    )
    .await?;
    let batch_size = options.batch_size.max(1);
    let mut batch = Vec::with_capacity(batch_size);
    for event in events {
        batch.push(event);
        if batch.len() == batch_size {
            folder.apply(&batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        folder.apply(&batch).await?;
    }
    let snapshot = folder.snapshot().await?;
    tracing::debug!(
        offset = snapshot.offset,
        applied = folder.applied(),
        skipped = folder.skipped(),
        "replay done"
    );
    Ok(ReplayOutcome {
        snapshot,
        applied: folder.applied(),
        skipped: folder.skipped(),
    })
}
