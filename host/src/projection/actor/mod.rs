//! One live projection: a tokio task that owns its plugin instance (through a
//! [`Folder`]), follows the log after its [`Cursor`] in bounded batches,
//! persists snapshots on its [`Cadence`] and answers commands sent over its
//! mailbox.
//!
//! The task is the only owner of the wasm store, so no lock guards the
//! instance: every read (state, query) is a command answered between two
//! batches. Status is published in a shared [`Live`] record instead, so
//! `hume status` never waits for a busy plugin. The decisions live in small
//! pure types ([`Cursor`], [`Cadence`], [`recovery::Recovery`],
//! [`waiters::Waiters`]); this task only drives them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant as TokioInstant};
use tracing::{info, info_span, Instrument};

use crate::deployment::VersionRecord;
use crate::log::EventLog;
use crate::plugin::{Limit, Plugin, PluginError};
use crate::snapshot::SnapshotStore;

use super::cadence::Cadence;
use super::cursor::Cursor;
use super::error::ProjectionError;
use super::feed::{Feed, Follow};
use super::fold::Folder;
use super::instances::{InstanceBudget, Slot};
use super::status::{LiveStatus, RunState};
use super::telemetry::ActorMetrics;

mod commands;
mod hibernate;
mod mailbox;
mod persist;
mod reconfigure;
mod recovery;
mod step;
mod waiters;

pub(crate) use mailbox::Command;
pub use mailbox::StateView;

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
    /// The bound on live instances of the server.
    pub budget: Arc<InstanceBudget>,
    /// Hibernate after this long with nothing to do (`None`: only when the
    /// budget asks).
    pub hibernate_after: Option<Duration>,
}

/// Why the task should keep going or end after a command.
enum Flow {
    Continue,
    Exit,
}

pub(crate) struct Actor {
    cfg: ActorConfig,
    rx: mpsc::Receiver<Box<Command>>,
    /// The instance; `None` while starting, hibernating or after it was lost.
    folder: Option<Folder>,
    /// The budget slot held while `folder` is live.
    slot: Option<Slot>,
    /// Where the state is while hibernating.
    hibernated: Option<hibernate::Hibernated>,
    /// The budget asked for the slot back.
    hibernate_asked: bool,
    /// Batches folded since the instance was built or woken.
    batches_since_build: u64,
    /// Last fold or read (for the idle timer).
    last_used: TokioInstant,
    /// This actor's own mailbox, for the budget to ask it to hibernate.
    mailbox: mpsc::WeakSender<Box<Command>>,
    cursor: Cursor,
    cadence: Cadence,
    recovery: recovery::Recovery,
    waiters: waiters::Waiters,
    stopped: bool,
    /// (offset, scanned) of the last persisted snapshot.
    persisted: Option<(u64, u64)>,
    /// Whether `on-caught-up` was called for the current position.
    caught_up_reported: bool,
    /// Between a `catch_up.start` and its `catch_up.stop`.
    catching_up: bool,
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
    pub(crate) fn spawn(
        cfg: ActorConfig,
    ) -> (mpsc::Sender<Box<Command>>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(64);
        let metrics = ActorMetrics::new(&cfg.name);
        let options = &cfg.version.options;
        let cadence = Cadence::new(
            options.snapshot_every,
            (options.snapshot_after_ms > 0)
                .then(|| Duration::from_millis(options.snapshot_after_ms)),
            options.snapshot_history.spacing,
        );
        let start = cfg.version.start_offset;
        let cursor = Cursor::new(start, start, cfg.skipped.iter().copied());
        let span =
            info_span!("projection", name = %cfg.name, plugin = %short(&cfg.version.plugin_hash));
        let actor = Actor {
            stopped: cfg.stopped,
            cfg,
            rx,
            folder: None,
            slot: None,
            hibernated: None,
            hibernate_asked: false,
            batches_since_build: 0,
            last_used: TokioInstant::now(),
            mailbox: tx.downgrade(),
            cursor,
            cadence,
            recovery: Default::default(),
            waiters: Default::default(),
            persisted: None,
            caught_up_reported: false,
            catching_up: false,
            next_poll: TokioInstant::now(),
            metrics,
        };
        // Boxed: an `async fn` taking `self` by value keeps the argument
        // and the moved local both inside its future, so an unboxed actor
        // took twice its size in every projection's task (100,000 mostly
        // idle projections pay for each byte 100 kB).
        let join = tokio::spawn(Box::new(actor).run().instrument(span));
        (tx, join)
    }

    fn catch_up_after(&self) -> Duration {
        Duration::from_millis(self.cfg.version.options.catch_up_after_ms.max(1))
    }

    fn run_state(&self) -> RunState {
        if self.recovery.is_faulted() {
            RunState::Faulted
        } else if self.stopped {
            RunState::Stopped
        } else if self.hibernated.is_some() {
            RunState::Hibernated
        } else if self.folder.is_none() {
            RunState::Starting
        } else if !self.cursor.reached(self.cfg.feed.end()) {
            RunState::CatchingUp
        } else {
            RunState::Running
        }
    }

    /// Copy the actor's figures into the shared status.
    fn publish(&self) {
        let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
        live.state = self.run_state();
        live.offset = self.cursor.offset();
        live.scanned = self.cursor.scanned();
        live.fault = self.recovery.fault().cloned();
        live.skipped_positions = self.cursor.skipped().collect();
        if self.hibernated.is_none() {
            live.sample_rate();
        }
        self.metrics
            .lag
            .set(self.cfg.log.head().saturating_sub(self.cursor.scanned()) as f64);
    }

    /// Move the cursor over what the feed knows holds nothing for us.
    fn skip_ahead(&mut self) {
        if !self.recovery.is_faulted() && !self.stopped && self.has_state() {
            let to = self
                .cfg
                .feed
                .caught_up_to(self.cursor.scanned(), &self.cfg.follow);
            self.cursor.scanned_to(to);
        }
    }

    /// True when there is work: running, healthy (or recovering) and behind.
    fn behind(&self) -> bool {
        match self.recovery.target(self.cfg.feed.end()) {
            Some(target) => !self.stopped && self.has_state() && !self.cursor.reached(target),
            None => false,
        }
    }

    /// A live instance, or a hibernated state to wake.
    fn has_state(&self) -> bool {
        self.folder.is_some() || self.hibernated.is_some()
    }

    /// Drop the instance and give its budget slot back.
    fn drop_instance(&mut self) {
        self.folder = None;
        self.slot = None;
    }

    /// A budget slot for a new instance (waits while the budget is full).
    async fn take_slot(&mut self) -> Slot {
        match self.slot.take() {
            Some(slot) => slot,
            None => self.cfg.budget.acquire(self.mailbox.clone()).await,
        }
    }

    fn idle_and_healthy(&self) -> bool {
        !self.behind() && !self.recovery.is_faulted() && !self.stopped && self.folder.is_some()
    }

    /// The task. Every step is boxed: the task's own future then stays a
    /// few hundred bytes, whatever the plugin calls inside need (a server
    /// keeps one per projection, hibernated ones included).
    async fn run(mut self: Box<Self>) {
        // Targeted wake-ups: new events of the followed streams.
        let subscription = self.cfg.feed.subscribe(&self.cfg.follow);
        // Every new batch; only listened to while a read waits for a position.
        let mut head = self.cfg.feed.watch();
        let mut head_closed = false;
        // A free slot: build the instance. The bound reached: one whose
        // snapshot covers the log starts asleep instead of making another
        // hibernate (see `hibernate.rs`).
        let asleep = match self.cfg.budget.try_acquire(self.mailbox.clone()) {
            Some(slot) => {
                self.slot = Some(slot);
                false
            }
            None => Box::pin(self.start_asleep()).await,
        };
        if !asleep {
            Box::pin(self.build()).await;
        }
        self.next_poll = TokioInstant::now() + self.catch_up_after();
        loop {
            self.skip_ahead();
            // Already at the head (a start, a restore, a reset on an idle
            // log): report it now, not at the next wake-up.
            if self.idle_and_healthy() {
                Box::pin(self.reached_head()).await;
            }
            // Work for a hibernated projection: bring its instance back.
            if self.hibernated.is_some() && self.behind() && !Box::pin(self.wake()).await {
                continue;
            }
            if self.should_yield_slot() {
                Box::pin(self.hibernate()).await;
            }
            self.publish();
            let behind = self.behind();
            let snapshot_due = self.cadence.due_at().map(TokioInstant::from_std);
            let idle_deadline = self.idle_deadline();
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
                        Some(cmd) => Box::pin(self.handle(*cmd)).await,
                        None => {
                            Box::pin(self.final_snapshot()).await;
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
                    self.cfg.feed.refresh_head();
                }
                // `snapshot_after`: the state changed and has not been
                // persisted for that long.
                _ = sleep_until(snapshot_due.unwrap_or_else(TokioInstant::now)),
                    if snapshot_due.is_some() => {
                    Box::pin(self.persist_or_fault()).await;
                }
                // Idle for `--hibernate-after`: give the instance up.
                _ = sleep_until(idle_deadline.unwrap_or_else(TokioInstant::now)),
                    if idle_deadline.is_some() => {
                    Box::pin(self.hibernate()).await;
                }
                // Work: apply one bounded batch, then loop so that commands
                // and timers get a turn between batches.
                _ = std::future::ready(()), if behind => {
                    Box::pin(self.step()).await;
                    self.batches_since_build += 1;
                    self.touch();
                }
            }
            if self.idle_and_healthy() {
                Box::pin(self.reached_head()).await;
            }
            if !self.waiters.is_empty() {
                Box::pin(self.serve_waiters()).await;
            }
        }
        let name = self.cfg.name.clone();
        self.waiters
            .fail_all(|| ProjectionError::Gone { name: name.clone() });
        let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
        live.state = RunState::Stopped;
    }

    /// Bring up an instance at the newest snapshot of this version (or the
    /// seed's, or the initial state): the one path for a fresh start, a
    /// restart, a reset and a rebuild after a fault. On failure the
    /// projection is faulted.
    async fn build(&mut self) {
        let started = Instant::now();
        let span = info_span!("hume.projection.init", projection = %self.cfg.name);
        self.hibernated = None;
        self.folder = None;
        let slot = self.take_slot().await;
        self.hibernate_asked = false;
        let builds = self.cfg.builds.clone();
        let permit = builds.acquire().await;
        let result = self.try_build().instrument(span).await;
        drop(permit);
        self.slot = Some(slot);
        self.batches_since_build = 0;
        self.touch();
        match result {
            Ok(()) => {
                info!(
                    target: "hume.projection.init",
                    offset = self.cursor.offset(),
                    scanned = self.cursor.scanned(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "projection ready"
                );
            }
            Err(err) => {
                self.drop_instance();
                self.fault_now(0, String::new(), &err, None, None);
            }
        }
    }

    async fn try_build(&mut self) -> Result<(), ProjectionError> {
        let mut snapshot = self.cfg.store.latest(&self.cfg.key).await?;
        let mut seeded = false;
        if snapshot.is_none() {
            if let Some(seed) = &self.cfg.seed_key {
                snapshot = self.cfg.store.latest(seed).await?;
                seeded = snapshot.is_some();
            }
        }
        let folder = super::travel::open(
            &self.cfg.plugin,
            &self.cfg.name,
            &self.cfg.version,
            snapshot.as_ref(),
        )
        .await?;
        let start = self.cfg.version.start_offset;
        match &snapshot {
            Some(s) => {
                self.cursor.reset_to(s.offset, s.scanned);
                self.cadence.restart(s.offset);
                if !seeded {
                    self.persisted = Some((s.offset, self.cursor.scanned()));
                    let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
                    live.last_snapshot = Some((s.offset, s.taken_at));
                } else {
                    // Seeded from another version: this one has no snapshot yet.
                    self.cadence.changed(0, Instant::now());
                }
            }
            None => {
                self.cursor.reset_to(start, start);
                self.cadence.restart(start);
            }
        }
        self.folder = Some(folder);
        self.caught_up_reported = false;
        Ok(())
    }
}

/// The first 12 hex digits of a hash, for logs and tables.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
