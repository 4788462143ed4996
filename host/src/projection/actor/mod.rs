//! One live projection: a tokio task that owns its plugin instance (through a
//! [`Folder`]), follows the log after its cursor in bounded batches, persists
//! snapshots on its cadence and answers commands sent over its mailbox.
//!
//! The task is the only owner of the wasm store, so no lock guards the
//! instance: every read (state, query) is a command answered between two
//! batches. Status is published in a shared [`Live`] record instead, so
//! `hume status` never waits for a busy plugin.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant as TokioInstant};
use tracing::{debug, info, info_span, warn, Instrument};

use crate::log::EventLog;
use crate::plugin::{Limit, Plugin, PluginError};
use crate::snapshot::SnapshotStore;

use super::config::VersionRecord;
use super::error::ProjectionError;
use super::feed::{Feed, Follow};
use super::fold::Folder;
use super::status::{Fault, LiveStatus, RunState};
use super::telemetry::ActorMetrics;

mod commands;
mod faults;
mod snapshots;

/// The state of a projection at some offset, as a read returns it.
#[derive(Debug, Clone)]
pub struct StateView {
    /// Position of the last event applied to `state`.
    pub offset: u64,
    /// The plugin's serialised state.
    pub state: Vec<u8>,
    /// True when the plugin declares its state JSON.
    pub json: bool,
}

type Reply<T> = oneshot::Sender<Result<T, ProjectionError>>;

/// A request to a projection actor. Reads carry an optional `target`: the
/// log head at the time of the request, which the actor must have scanned
/// before it answers (a consistent read); `None` answers at once (dirty).
pub(crate) enum Command {
    /// The state (and offset).
    Read {
        target: Option<u64>,
        reply: Reply<StateView>,
    },
    /// Pass a request to the plugin's `query`.
    Query {
        target: Option<u64>,
        request: Vec<u8>,
        reply: Reply<Vec<u8>>,
    },
    /// Look at the log now instead of waiting for a wake-up or the poll.
    CatchUp,
    /// Persist a snapshot now; answers its offset.
    TakeSnapshot { reply: Reply<u64> },
    /// Stop applying events (persists a snapshot first).
    Stop { reply: Reply<()> },
    /// Start applying events again after a stop.
    Start { reply: Reply<()> },
    /// Drop the state and snapshots and rebuild from the start.
    Reset { reply: Reply<()> },
    /// Retry after a fault (re-instantiating the plugin if it was poisoned).
    Resume { reply: Reply<()> },
    /// Step over the faulted event at `position` (already recorded).
    Skip { position: u64, reply: Reply<()> },
    /// End the task, with a final snapshot when `snapshot` is true.
    Shutdown {
        snapshot: bool,
        reply: oneshot::Sender<()>,
    },
}

/// Everything an actor needs to run.
pub(crate) struct ActorConfig {
    /// Projection name.
    pub name: String,
    /// Snapshot key of this version.
    pub key: String,
    /// Key to seed from when this version has no snapshot yet (`--keep-state`).
    pub seed_key: Option<String>,
    pub version: VersionRecord,
    pub plugin: Plugin,
    pub follow: Follow,
    /// The log (for its head, in status).
    pub log: Arc<dyn EventLog>,
    /// The shared tail projections read and wake from.
    pub feed: Arc<Feed>,
    pub store: Arc<dyn SnapshotStore>,
    pub skipped: Vec<u64>,
    pub stopped: bool,
    pub live: LiveStatus,
    /// Told once, when this version first reaches the head (blue/green swap).
    pub caught_up: Option<oneshot::Sender<()>>,
    /// Bounds how many projections instantiate and restore at once (a
    /// restart of thousands would otherwise spike memory and mappings).
    pub builds: Arc<tokio::sync::Semaphore>,
}

/// Why the task should keep going or end after a command.
enum Flow {
    Continue,
    Exit,
}

/// A read waiting for the actor to scan up to `target`.
struct Waiter {
    target: u64,
    command: Command,
}

pub(crate) struct Actor {
    cfg: ActorConfig,
    rx: mpsc::Receiver<Command>,
    folder: Option<Folder>,
    offset: u64,
    scanned: u64,
    skipped: BTreeSet<u64>,
    stopped: bool,
    fault: Option<Fault>,
    /// Events applied since the last persisted snapshot.
    since_snapshot: u64,
    /// When the state first changed after the last persisted snapshot.
    dirty_since: Option<Instant>,
    /// (offset, scanned) of the last persisted snapshot.
    persisted: Option<(u64, u64)>,
    /// Whether `on-caught-up` was called for the current position.
    caught_up_reported: bool,
    /// Between a `catch_up.start` and its `catch_up.stop`.
    catching_up: bool,
    /// While faulted: re-apply events up to here after rebuilding a poisoned
    /// instance, so the state is the one just before the failing event.
    recover_to: Option<u64>,
    /// After a plugin failure inside a batch: apply the events of that batch
    /// (first, last position) one at a time, to find the one that fails.
    single_step: Option<(u64, u64)>,
    waiters: Vec<Waiter>,
    next_poll: TokioInstant,
    metrics: ActorMetrics,
}

/// Whether a plugin error leaves the instance unusable.
fn poisons(err: &PluginError) -> bool {
    match err {
        PluginError::Trap { .. } | PluginError::Poisoned { .. } => true,
        PluginError::LimitExceeded { limit, .. } => *limit != Limit::Snapshot,
        _ => false,
    }
}

impl Actor {
    /// Spawn the task; returns its mailbox.
    pub(crate) fn spawn(cfg: ActorConfig) -> (mpsc::Sender<Command>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(64);
        let metrics = ActorMetrics::new(&cfg.name);
        let skipped = cfg.skipped.iter().copied().collect();
        let stopped = cfg.stopped;
        let span =
            info_span!("projection", name = %cfg.name, plugin = %short(&cfg.version.plugin_hash));
        let actor = Actor {
            offset: cfg.version.start_offset,
            scanned: cfg.version.start_offset,
            cfg,
            rx,
            folder: None,
            skipped,
            stopped,
            fault: None,
            since_snapshot: 0,
            dirty_since: None,
            persisted: None,
            caught_up_reported: false,
            catching_up: false,
            recover_to: None,
            single_step: None,
            waiters: Vec::new(),
            next_poll: TokioInstant::now(),
            metrics,
        };
        let join = tokio::spawn(actor.run().instrument(span));
        (tx, join)
    }

    fn catch_up_after(&self) -> Duration {
        Duration::from_millis(self.cfg.version.options.catch_up_after_ms.max(1))
    }

    fn run_state(&self) -> RunState {
        if self.fault.is_some() {
            RunState::Faulted
        } else if self.stopped {
            RunState::Stopped
        } else if self.folder.is_none() {
            RunState::Starting
        } else if self.scanned < self.cfg.feed.end() {
            RunState::CatchingUp
        } else {
            RunState::Running
        }
    }

    /// Copy the actor's figures into the shared status.
    fn publish(&self) {
        let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
        live.state = self.run_state();
        live.offset = self.offset;
        live.scanned = self.scanned;
        live.fault = self.fault.clone();
        live.skipped_positions = self.skipped.iter().copied().collect();
        live.sample_rate();
        self.metrics
            .lag
            .set(self.cfg.log.head().saturating_sub(self.scanned) as f64);
    }

    /// Move the cursor over what the feed knows holds nothing for us.
    fn skip_ahead(&mut self) {
        if self.fault.is_none() && !self.stopped && self.folder.is_some() {
            self.scanned = self
                .cfg
                .feed
                .caught_up_to(self.scanned, &self.cfg.follow)
                .max(self.scanned);
        }
    }

    /// True when there is work: running, healthy and behind the head.
    fn behind(&self) -> bool {
        let target = match (&self.fault, self.recover_to) {
            (None, _) => self.cfg.feed.end(),
            (Some(_), Some(t)) => t,
            (Some(_), None) => return false,
        };
        !self.stopped && self.folder.is_some() && self.scanned < target
    }

    async fn run(mut self) {
        // Targeted wake-ups: new events of the followed streams.
        let subscription = self.cfg.feed.subscribe(&self.cfg.follow);
        // Every new batch; only listened to while a read waits for a position.
        let mut head = self.cfg.feed.watch();
        let mut head_closed = false;
        self.build().await;
        self.next_poll = TokioInstant::now() + self.catch_up_after();
        loop {
            self.skip_ahead();
            self.publish();
            let behind = self.behind();
            let snapshot_after = self.cfg.version.options.snapshot_after_ms;
            let snapshot_due = self
                .dirty_since
                .map(|t| TokioInstant::from_std(t) + Duration::from_millis(snapshot_after));
            tokio::select! {
                // `biased`: commands (including shutdown) are looked at before
                // more work, so a projection catching up on a long log still
                // answers within one batch. Backpressure: the mailbox is
                // bounded, senders wait when it is full.
                biased;
                // A command, or every sender dropped (the manager is gone):
                // treat the latter as a shutdown with a final snapshot.
                cmd = self.rx.recv() => {
                    let flow = match cmd {
                        Some(cmd) => self.handle(cmd).await,
                        None => {
                            self.final_snapshot().await;
                            Flow::Exit
                        }
                    };
                    if let Flow::Exit = flow {
                        break;
                    }
                }
                // Push: events of the followed streams landed. Only awaited
                // when idle; while behind, the work branch below runs instead.
                _ = subscription.notified(), if !behind => {}
                // A consistent read waits for a position: follow every
                // batch until it is reached. An Err means the feed is gone;
                // the poll below still runs.
                changed = head.changed(), if !behind && !head_closed && !self.waiters.is_empty() => {
                    head_closed = changed.is_err();
                }
                // Pull: the fallback poll every `catch_up_after` ms, in case a
                // wake-up was missed (or the log cannot push).
                _ = sleep_until(self.next_poll) => {
                    self.next_poll = TokioInstant::now() + self.catch_up_after();
                    self.caught_up_reported = false;
                }
                // `snapshot_after`: the state changed and has not been
                // persisted for that long.
                _ = sleep_until(snapshot_due.unwrap_or_else(TokioInstant::now)),
                    if snapshot_due.is_some() && snapshot_after > 0 => {
                    self.persist_or_fault().await;
                }
                // Work: apply one bounded batch, then loop so that commands
                // and timers get a turn between batches.
                _ = std::future::ready(()), if behind => {
                    self.step().await;
                }
            }
            if !self.behind() && self.fault.is_none() && !self.stopped && self.folder.is_some() {
                self.reached_head().await;
            }
            self.serve_waiters().await;
        }
        self.fail_waiters(|name| ProjectionError::Gone { name });
        let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
        live.state = RunState::Stopped;
    }

    /// Instantiate the plugin and load the newest snapshot (or the seed's, or
    /// the initial state). On failure the projection is faulted.
    async fn build(&mut self) {
        let started = Instant::now();
        let span = info_span!("hume.projection.init", projection = %self.cfg.name);
        let builds = self.cfg.builds.clone();
        let permit = builds.acquire().await;
        let result = self.try_build().instrument(span).await;
        drop(permit);
        match result {
            Ok(()) => {
                info!(
                    target: "hume.projection.init",
                    offset = self.offset,
                    scanned = self.scanned,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "projection ready"
                );
            }
            Err(err) => {
                self.folder = None;
                self.recover_to = None;
                self.set_fault(0, String::new(), &err, None);
            }
        }
    }

    async fn try_build(&mut self) -> Result<(), ProjectionError> {
        let plugin_err = |name: &str| {
            let name = name.to_string();
            move |source| ProjectionError::Plugin { name, source }
        };
        let mut instance = self
            .cfg
            .plugin
            .instantiate(&self.cfg.name, self.cfg.version.options.limits())
            .await
            .map_err(plugin_err(&self.cfg.name))?;
        let mut snapshot = self.cfg.store.load(&self.cfg.key)?;
        if snapshot.is_none() {
            if let Some(seed) = &self.cfg.seed_key {
                snapshot = self.cfg.store.load(seed)?;
            }
        }
        match snapshot {
            Some(s) => {
                instance
                    .restore(&s.state)
                    .await
                    .map_err(plugin_err(&self.cfg.name))?;
                self.offset = s.offset;
                self.scanned = s.scanned.max(s.offset);
                if s.plugin_hash == self.cfg.version.plugin_hash {
                    self.persisted = Some((s.offset, self.scanned));
                    let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
                    live.last_snapshot = Some((s.offset, s.taken_at));
                } else {
                    // Seeded from another version: this one has no snapshot yet.
                    self.dirty_since = Some(Instant::now());
                }
            }
            None => {
                instance
                    .init_state()
                    .await
                    .map_err(plugin_err(&self.cfg.name))?;
                self.offset = self.cfg.version.start_offset;
                self.scanned = self.cfg.version.start_offset;
            }
        }
        let options = &self.cfg.version.options;
        self.folder = Some(Folder::new(
            instance,
            self.offset,
            options.strict,
            &self.cfg.plugin.info().kinds,
        ));
        self.since_snapshot = 0;
        self.caught_up_reported = false;
        Ok(())
    }

    /// Read and apply one bounded batch after the cursor.
    async fn step(&mut self) {
        let opts = &self.cfg.version.options;
        let mut limit = opts.batch_size as usize;
        if opts.snapshot_every > 0 {
            let left = opts
                .snapshot_every
                .saturating_sub(self.since_snapshot)
                .max(1);
            limit = limit.min(left as usize);
        }
        let page = match self
            .cfg
            .feed
            .read(self.scanned + 1, &self.cfg.follow, limit)
        {
            Ok(page) => page,
            Err(err) => {
                warn!(error = %err, "reading the log failed; retrying at the next poll");
                self.cfg
                    .live
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .last_error = Some(format!("reading the log: {err}"));
                self.next_poll = TokioInstant::now() + self.catch_up_after();
                return;
            }
        };
        if !self.catching_up {
            self.catching_up = true;
            debug!(target: "hume.projection.catch_up.start", from = self.scanned + 1, head = self.cfg.log.head(), "catching up");
        }
        let mut events = page.events;
        // Bound the page: while recovering from a fault stop just before the
        // failing event; while pinpointing a failure inside a batch, apply
        // that batch's events one at a time.
        let mut cap = u64::MAX;
        if self.fault.is_some() {
            if let Some(t) = self.recover_to {
                cap = t;
            }
        }
        if let Some((first, last)) = self.single_step {
            if self.scanned >= last {
                self.single_step = None;
            } else if let Some(e) = events.first() {
                cap = cap.min(if e.position >= first {
                    e.position
                } else {
                    first - 1
                });
            }
        }
        events.retain(|e| e.position <= cap);
        let last_scanned = page.last_scanned.min(cap).max(self.scanned);
        let mut stepped_over = 0u64;
        if !self.skipped.is_empty() {
            let before = events.len();
            events.retain(|e| !self.skipped.contains(&e.position));
            stepped_over = (before - events.len()) as u64;
        }
        if events.is_empty() {
            self.scanned = last_scanned;
            if stepped_over > 0 {
                self.mark_changed(0);
            }
            return;
        }
        let Some(folder) = self.folder.as_mut() else {
            return;
        };
        let started = Instant::now();
        let outcome = folder
            .apply(&events)
            .instrument(info_span!("hume.projection.evolve", events = events.len()))
            .await;
        self.metrics.call("handle-events", started.elapsed());
        match outcome {
            Ok(applied) => {
                self.offset = applied.offset.max(self.offset);
                self.scanned = last_scanned;
                self.metrics.applied.increment(applied.applied as u64);
                self.metrics.skipped.increment(applied.skipped as u64);
                {
                    let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
                    live.applied += applied.applied as u64;
                    live.skipped_unknown += applied.skipped as u64;
                }
                if applied.skipped > 0 {
                    warn!(
                        skipped = applied.skipped,
                        "events of unknown kinds skipped (not strict)"
                    );
                }
                self.mark_changed(applied.applied as u64);
                let every = self.cfg.version.options.snapshot_every;
                if every > 0 && self.since_snapshot >= every {
                    self.persist_or_fault().await;
                }
            }
            Err(err) => self.fold_failed(err, &events).await,
        }
        if self.recover_to.is_some_and(|t| self.scanned >= t) {
            self.recover_to = None;
        }
    }

    fn mark_changed(&mut self, applied: u64) {
        self.since_snapshot += applied;
        if self.dirty_since.is_none() {
            self.dirty_since = Some(Instant::now());
        }
        self.caught_up_reported = false;
    }

    /// Reached the head: call `on-caught-up` once per position, and tell the
    /// manager the first time (blue/green).
    async fn reached_head(&mut self) {
        if self.caught_up_reported {
            return;
        }
        self.caught_up_reported = true;
        if self.catching_up {
            self.catching_up = false;
            debug!(target: "hume.projection.catch_up.stop", offset = self.offset, scanned = self.scanned, "caught up");
        }
        let offset = self.offset;
        if let Some(folder) = self.folder.as_mut() {
            let started = Instant::now();
            let result = folder
                .instance_mut()
                .on_caught_up(offset)
                .instrument(info_span!("hume.projection.on_caught_up", offset))
                .await;
            self.metrics.call("on-caught-up", started.elapsed());
            if let Err(err) = result {
                if poisons(&err) {
                    self.folder = None;
                    let limit = err.limit().map(|l| l.to_string());
                    self.set_fault(0, "on-caught-up".into(), &err, limit);
                    return;
                }
                warn!(error = %err, "on-caught-up failed");
            }
        }
        if let Some(tx) = self.cfg.caught_up.take() {
            let _ = tx.send(());
        }
    }
}

/// The first 12 hex digits of a hash, for logs and tables.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
