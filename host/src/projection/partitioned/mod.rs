//! Partitioned projections: one state per stream, category or key (see
//! [`crate::deployment::PartitionBy`]), folded in parallel.
//!
//! One task per projection version reads pages of the log in order after
//! its one [`Cursor`], splits each page by partition key, folds the groups
//! on up to `workers` threads ([`work`]), and only then moves the cursor to
//! the end of the page. The states live as snapshot bytes in a [`Table`]
//! (no live instance between pages). A persist writes the changed
//! partitions and the cursor in one atomic write, so after a crash every
//! partition is exactly as it was at the persisted offset.
//!
//! Events without a key: a strict projection faults as a whole at the first
//! one (`hume skip` steps over it); `--no-strict` skips and counts them.
//! An event a partition's plugin rejects (or, strict, does not know)
//! faults that partition only: it keeps the state before the event and
//! folds nothing more, the others go on.

mod commands;
mod grouping;
mod repair;
mod stats;
mod travel;
pub(crate) use commands::PartitionCommand;
pub(crate) use repair::Repair;
pub use stats::{SlowPartition, WorkerFigures};
pub(crate) mod table;
mod work;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant as TokioInstant};
use tracing::{info, info_span, warn, Instrument};

use super::actor::Command;
use super::cursor::Cursor;
use super::feed::{Feed, Follow};
use super::status::{Fault, LiveStatus, PartitionsStatus, RunState};
use crate::deployment::{PartitionBy, VersionRecord};
use crate::plugin::Plugin;
use crate::snapshot::{now_ms, SnapshotStore, StoredSnapshot};

pub use table::{ListQuery, PartitionInfo, PartitionPage};
use table::{Part, Table};
use work::{Folding, Job};

/// Everything a partitioned actor needs.
pub(crate) struct PartitionedConfig {
    pub name: String,
    /// Snapshot key of this version.
    pub key: String,
    pub version: VersionRecord,
    pub plugin: Plugin,
    pub by: PartitionBy,
    /// Partitions folded at once.
    pub workers: usize,
    pub follow: Follow,
    pub feed: Arc<Feed>,
    pub store: Arc<dyn SnapshotStore>,
    pub skipped: Vec<u64>,
    pub stopped: bool,
    pub live: LiveStatus,
    /// Told once, when this version first reaches the head (blue/green).
    pub caught_up: Option<oneshot::Sender<()>>,
}

/// Events folded between persists while rebuilding, at least: the lesser
/// of this and [`REBUILD_PERSIST_PAGES`] pages.
const REBUILD_PERSIST_EVENTS: u64 = 50_000;
/// Pages (of `batch_size` events) folded between persists while rebuilding.
const REBUILD_PERSIST_PAGES: u64 = 80;

/// While more than a page behind, one step reads and folds this many pages
/// at once (at most [`MAX_STEP_EVENTS`]): more groups per step keeps every
/// worker busy until the end of the step (the workers wait for each other
/// at each step's end). 8 pages left the second of two workers with a
/// third of the events; 32 splits them about evenly.
const REBUILD_PAGES: usize = 32;
/// Events one step holds at most (twice that with the next page read
/// ahead), unless the batch size itself is larger.
const MAX_STEP_EVENTS: usize = 32_768;

pub(crate) struct PartitionedActor {
    cfg: PartitionedConfig,
    rx: mpsc::Receiver<Box<Command>>,
    table: Table,
    cursor: Cursor,
    folding: Folding,
    /// Fold figures per worker and partition.
    stats: stats::Stats,
    /// Loaded from the store (or started fresh).
    loaded: bool,
    stopped: bool,
    /// A projection-wide fault (an event without a key, strict).
    fault: Option<Fault>,
    /// Events applied since the last persist.
    since_persist: u64,
    /// When the state first changed after the last persist.
    changed_at: Option<TokioInstant>,
    /// Consistent reads waiting for a position.
    waiters: Vec<(u64, Command)>,
    unkeyed_skipped: u64,
    next_poll: TokioInstant,
    /// The next page, read while the previous one was folded: (where it
    /// starts, the page).
    prefetched: Option<(u64, crate::log::Page)>,
}

impl PartitionedActor {
    /// Spawn the task; returns its mailbox.
    pub(crate) fn spawn(
        cfg: PartitionedConfig,
    ) -> (mpsc::Sender<Box<Command>>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(64);
        let start = cfg.version.start_offset;
        let options = &cfg.version.options;
        let folding = Folding {
            plugin: cfg.plugin.clone(),
            name: cfg.name.clone(),
            strict: options.strict,
            limits: super::travel::limits_of(options),
            live: cfg.live.clone(),
            spares: Default::default(),
        };
        let stats = stats::Stats::new(&cfg.name, true);
        let span = info_span!("projection", name = %cfg.name, partitioned = %cfg.by);
        let actor = PartitionedActor {
            cursor: Cursor::new(start, start, cfg.skipped.iter().copied()),
            stopped: cfg.stopped,
            cfg,
            rx,
            table: Table::default(),
            folding,
            stats,
            loaded: false,
            fault: None,
            since_persist: 0,
            changed_at: None,
            waiters: Vec::new(),
            unkeyed_skipped: 0,
            next_poll: TokioInstant::now(),
            prefetched: None,
        };
        let join = tokio::spawn(actor.run().instrument(span));
        (tx, join)
    }

    fn catch_up_after(&self) -> Duration {
        Duration::from_millis(self.cfg.version.options.catch_up_after_ms.max(1))
    }

    fn behind(&self) -> bool {
        self.loaded
            && !self.stopped
            && self.fault.is_none()
            && !self.cursor.reached(self.cfg.feed.end())
    }

    fn run_state(&self) -> RunState {
        if self.fault.is_some() {
            RunState::Faulted
        } else if self.stopped {
            RunState::Stopped
        } else if !self.loaded {
            RunState::Starting
        } else if !self.cursor.reached(self.cfg.feed.end()) {
            RunState::CatchingUp
        } else {
            RunState::Running
        }
    }

    fn publish(&self) {
        let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
        live.state = self.run_state();
        live.offset = self.cursor.offset();
        live.scanned = self.cursor.scanned();
        live.fault = self.fault.clone();
        live.skipped_positions = self.cursor.skipped().collect();
        let count = self.table.len() as u64;
        let live_instances = live.partitions.as_ref().map_or(0, |p| p.live_instances);
        live.partitions = Some(PartitionsStatus {
            by: self.cfg.by.to_string(),
            workers: self.cfg.workers as u32,
            count,
            faulted: self.table.faulted() as u64,
            unkeyed_skipped: self.unkeyed_skipped,
            live_instances,
            hibernated: count.saturating_sub(live_instances),
            workers_figures: self.stats.workers(),
            slowest: self.stats.slowest(),
        });
        self.stats.set_count(count);
        live.sample_rate();
    }

    /// Move the cursor over what the feed knows holds nothing for us.
    fn skip_ahead(&mut self) {
        if self.loaded && self.fault.is_none() && !self.stopped {
            let to = self
                .cfg
                .feed
                .caught_up_to(self.cursor.scanned(), &self.cfg.follow);
            self.cursor.scanned_to(to);
        }
    }

    /// Events one step reads: `batch_size`, or [`REBUILD_PAGES`] times that
    /// while more than a page behind.
    fn page_limit(&self) -> usize {
        let batch = self.cfg.version.options.batch_size as usize;
        let behind = self.cfg.feed.end().saturating_sub(self.cursor.scanned());
        if behind > batch as u64 {
            batch
                .saturating_mul(REBUILD_PAGES)
                .min(MAX_STEP_EVENTS)
                .max(batch)
        } else {
            batch
        }
    }

    /// A persist is due: by count (coalesced while rebuilding) or by time.
    fn persist_due(&self) -> bool {
        let options = &self.cfg.version.options;
        if self.since_persist == 0 && !self.table.is_dirty() {
            return false;
        }
        let every = options.snapshot_every;
        let rebuilding = self.behind();
        let threshold = if rebuilding {
            let pages = REBUILD_PERSIST_PAGES.saturating_mul(options.batch_size as u64);
            every.max(REBUILD_PERSIST_EVENTS.min(pages))
        } else {
            every
        };
        every > 0 && self.since_persist >= threshold
    }

    fn snapshot_due_at(&self) -> Option<TokioInstant> {
        let after = self.cfg.version.options.snapshot_after_ms;
        (after > 0 && self.table.is_dirty())
            .then(|| self.changed_at.map(|t| t + Duration::from_millis(after)))
            .flatten()
    }

    async fn run(mut self) {
        let subscription = self.cfg.feed.subscribe(&self.cfg.follow);
        let mut head = self.cfg.feed.watch();
        let mut head_closed = false;
        self.load().await;
        self.next_poll = TokioInstant::now() + self.catch_up_after();
        loop {
            self.skip_ahead();
            if !self.behind() && self.loaded && self.fault.is_none() {
                if let Some(tx) = self.cfg.caught_up.take() {
                    let _ = tx.send(());
                }
            }
            self.publish();
            let behind = self.behind();
            let snapshot_due = self.snapshot_due_at();
            tokio::select! {
                biased;
                cmd = self.rx.recv() => {
                    match cmd {
                        Some(cmd) => {
                            if self.handle(*cmd).await {
                                break;
                            }
                        }
                        None => {
                            self.persist_logged().await;
                            break;
                        }
                    }
                }
                _ = subscription.notified(), if !behind => {}
                changed = head.changed(), if !behind && !head_closed && !self.waiters.is_empty() => {
                    head_closed = changed.is_err();
                }
                _ = sleep_until(self.next_poll) => {
                    self.next_poll = TokioInstant::now() + self.catch_up_after();
                    self.cfg.feed.refresh_head();
                    if !self.loaded {
                        self.load().await;
                    }
                }
                _ = sleep_until(snapshot_due.unwrap_or_else(TokioInstant::now)), if snapshot_due.is_some() => {
                    self.persist_logged().await;
                }
                _ = std::future::ready(()), if behind => {
                    self.step().await;
                    if self.persist_due() {
                        self.persist_logged().await;
                    }
                }
            }
            self.serve_waiters().await;
        }
        let name = self.cfg.name.clone();
        for (_, cmd) in self.waiters.drain(..) {
            commands::fail(
                cmd,
                super::error::ProjectionError::Gone { name: name.clone() },
            );
        }
        let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
        live.state = RunState::Stopped;
    }

    /// Load the partitions and the cursor from the store (or start fresh).
    async fn load(&mut self) {
        match self.cfg.store.load_partitions(&self.cfg.key).await {
            Ok(found) => {
                let start = self.cfg.version.start_offset;
                match found {
                    Some(snap) => {
                        self.cursor.reset_to(snap.head.offset, snap.head.scanned);
                        self.table = Table::from_records(snap.partitions);
                        let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
                        live.last_snapshot = Some((snap.head.offset, snap.head.taken_at));
                    }
                    None => {
                        self.cursor.reset_to(start, start);
                        self.table = Table::default();
                    }
                }
                self.loaded = true;
                info!(
                    target: "hume.projection.init",
                    offset = self.cursor.offset(),
                    partitions = self.table.len(),
                    "partitioned projection ready"
                );
            }
            Err(err) => {
                warn!(error = %err, "cannot load the partitions; retrying at the next poll");
                self.cfg
                    .live
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set_error(format!("loading the partitions: {err}"));
            }
        }
    }

    /// Read one page, fold its groups in parallel, then move the cursor.
    async fn step(&mut self) {
        let options = &self.cfg.version.options;
        let limit = self.page_limit();
        let next = self.cursor.next();
        let prefetched = match self.prefetched.take() {
            Some((from, page)) if from == next => Some(Ok(page)),
            _ => None,
        };
        let read = match prefetched {
            Some(page) => page,
            None => self.cfg.feed.read(next, &self.cfg.follow, limit).await,
        };
        let page = match read {
            Ok(page) => page,
            Err(err) => {
                warn!(error = %err, "reading the log failed; retrying at the next poll");
                self.cfg
                    .live
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set_error(format!("reading the log: {err}"));
                self.next_poll = TokioInstant::now() + self.catch_up_after();
                return;
            }
        };
        let batch = self.cursor.batch(page.events, page.last_scanned, u64::MAX);
        let mut upto = batch.last_scanned;
        let table = &self.table;
        let grouped = grouping::group_page(batch.events, &self.cfg.by, options.strict, |key| {
            table.get(key).is_some_and(|p| p.fault.is_some())
        });
        self.unkeyed_skipped += grouped.unkeyed_skipped;
        let fault = grouped.stopped_at.map(|event| {
            upto = event.position - 1;
            Fault {
                position: event.position,
                kind: event.kind.clone(),
                error: format!(
                    "the event has no partition key ({} of stream `{}`): a strict \
                     partitioned projection stops here; `hume skip` steps over it, \
                     or deploy with --no-strict to skip and count such events",
                    self.cfg.by, event.stream
                ),
                limit: None,
                at: now_ms(),
            }
        });
        let jobs: Vec<Job> = grouped
            .groups
            .into_iter()
            .map(|(key, events)| Job {
                from: self
                    .table
                    .get(&key)
                    .map(|p| (p.last_position, p.state.clone())),
                key,
                events,
            })
            .collect();
        let mut applied = 0;
        let mut skipped = 0;
        let mut last = self.cursor.offset();
        if !jobs.is_empty() {
            // Read the next page while this one folds (the log only grows:
            // it stays valid; skipped positions are dropped when it is used).
            let ahead = upto + 1;
            let prefetch = async {
                match fault.is_none() && ahead <= self.cfg.feed.end() {
                    true => self
                        .cfg
                        .feed
                        .read(ahead, &self.cfg.follow, limit)
                        .await
                        .ok(),
                    false => None,
                }
            };
            let (done, page) = tokio::join!(
                work::fold_all(&self.folding, jobs, self.cfg.workers),
                prefetch
            );
            self.prefetched = page.map(|p| (ahead, p));
            let Some(done) = done else {
                self.next_poll = TokioInstant::now() + self.catch_up_after();
                return;
            };
            for d in done {
                self.stats.record(stats::Folded {
                    key: &d.key,
                    worker: d.worker,
                    events: d.applied + d.skipped,
                    took_us: d.took_us,
                });
                applied += d.applied;
                skipped += d.skipped;
                last = last.max(d.last_position);
                let events = self.table.get(&d.key).map_or(0, |p| p.events) + d.applied;
                self.table.put(
                    d.key,
                    Part {
                        last_position: d.last_position,
                        events,
                        state: d.state,
                        fault: d.fault,
                    },
                );
            }
            self.changed_at.get_or_insert_with(TokioInstant::now);
        }
        self.cursor.applied_to(last.min(upto), upto);
        if upto >= self.cfg.feed.end() {
            // At the head: nothing more to fold right away.
            self.folding.release();
        }
        self.since_persist += applied;
        {
            let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
            live.applied += applied;
            live.skipped_unknown += skipped;
        }
        if let Some(fault) = fault {
            warn!(
                position = fault.position,
                "partitioned projection faulted: an event without a key"
            );
            self.fail_waiters(&fault);
            self.fault = Some(fault);
        }
    }

    /// Persist the changed partitions and the cursor in one write.
    async fn persist(&mut self) -> Result<u64, super::error::ProjectionError> {
        let changed = self.table.take_changed();
        let keys: Vec<String> = changed.iter().map(|r| r.key.clone()).collect();
        let head = StoredSnapshot {
            offset: self.cursor.offset(),
            scanned: self.cursor.scanned(),
            plugin_hash: self.cfg.version.plugin_hash.clone(),
            state: Vec::new(),
            taken_at: now_ms(),
        };
        let (offset, taken_at) = (head.offset, head.taken_at);
        match self
            .cfg
            .store
            .save_partitions(&self.cfg.key, head, changed)
            .await
        {
            Ok(()) => {
                self.since_persist = 0;
                self.changed_at = None;
                let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
                live.last_snapshot = Some((offset, taken_at));
                live.snapshots_paused = None;
                Ok(offset)
            }
            Err(err) => {
                self.table.mark_changed(keys);
                self.changed_at = Some(TokioInstant::now());
                Err(err.into())
            }
        }
    }

    async fn persist_logged(&mut self) {
        if !self.loaded {
            return;
        }
        if let Err(err) = self.persist().await {
            warn!(error = %err, "cannot persist the partitions; retrying later");
            self.cfg
                .live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set_error(format!("persisting the partitions: {err}"));
        }
    }
}
