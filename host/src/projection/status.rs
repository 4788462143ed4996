//! What `hume status` shows about a projection: a live view the actor keeps
//! up to date after every batch, readable without going through the actor
//! (so status never waits for a busy plugin).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::deployment::{ProjectionOptions, VersionRecord};

/// Run state of a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Loading its snapshot / instantiating the plugin.
    Starting,
    /// Up to date with the log head, waiting for events.
    Running,
    /// Behind the head, applying batches.
    CatchingUp,
    /// Stopped on a failed event; see `fault`.
    Faulted,
    /// Stopped by `hume stop`.
    Stopped,
    /// Up to date, with no live plugin instance: its state is held as
    /// snapshot bytes until the next event, read or query wakes it.
    Hibernated,
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::CatchingUp => "catching-up",
            RunState::Faulted => "faulted",
            RunState::Stopped => "stopped",
            RunState::Hibernated => "hibernated",
        })
    }
}

/// Why a projection is faulted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Position of the event that failed (0 when not tied to an event, e.g.
    /// the plugin failed to start).
    pub position: u64,
    /// Kind of that event.
    pub kind: String,
    /// What went wrong.
    pub error: String,
    /// The breached sandbox limit, if that is the cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// When it happened (ms since the epoch).
    pub at: u64,
}

/// The last persisted snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Offset it was taken at.
    pub offset: u64,
    /// When (ms since the epoch).
    pub taken_at: u64,
    /// How long ago, ms, at the time of the status request.
    pub age_ms: u64,
}

/// The status of one projection version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionStatus {
    /// The projection's name.
    pub name: String,
    /// Run state.
    pub state: RunState,
    /// Position of the last applied event.
    pub offset: u64,
    /// Every position up to this one has been examined.
    pub scanned: u64,
    /// The log head at the time of the request.
    pub head: u64,
    /// `head - scanned`: log positions still to examine.
    pub lag: u64,
    /// Events applied per second, recently.
    pub events_per_sec: f64,
    /// Events applied since the process started.
    pub applied: u64,
    /// Events of unknown kind skipped (non-strict) since the process started.
    pub skipped_unknown: u64,
    /// Positions stepped over with `hume skip`.
    pub skipped_positions: Vec<u64>,
    /// The last persisted snapshot.
    pub last_snapshot: Option<SnapshotInfo>,
    /// Plugin hash (sha256 hex).
    pub plugin_hash: String,
    /// Plugin name and version, as the plugin describes itself.
    pub plugin_name: String,
    /// Plugin version.
    pub plugin_version: String,
    /// Streams followed.
    pub streams: Vec<String>,
    /// Options.
    pub options: ProjectionOptions,
    /// The fault, when faulted.
    pub fault: Option<Fault>,
    /// The last error seen (a fault, a failed snapshot write...), current
    /// or not.
    pub last_error: Option<String>,
    /// Set while snapshots cannot be written (the disk is full): why. The
    /// projection keeps applying events and serving its state; it snapshots
    /// again once space is back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots_paused: Option<String>,
    /// The error that is current: the fault's, or the last error while the
    /// projection has neither moved on nor written a snapshot since (what
    /// the ERROR column of `hume status` shows).
    #[serde(default)]
    pub error: Option<String>,
    /// A new version being built beside this one (blue/green).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Box<ProjectionStatus>>,
    /// A partitioned projection's figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<PartitionsStatus>,
}

/// What status shows of a partitioned projection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PartitionsStatus {
    /// `stream`, `category` or the JSON pointer.
    pub by: String,
    /// Partitions folded at once.
    pub workers: u32,
    /// Partitions.
    pub count: u64,
    /// Faulted partitions (`hume partitions NAME --faulted` lists them).
    pub faulted: u64,
    /// Events without a partition key skipped (`--no-strict`) since the
    /// process started.
    pub unkeyed_skipped: u64,
    /// Plugin instances held right now by the fold workers (at most one
    /// each, while a page is folded).
    #[serde(default)]
    pub live_instances: u64,
    /// Partitions held as snapshot bytes only, with no instance.
    #[serde(default)]
    pub hibernated: u64,
    /// Events and busy time of each worker since the server started.
    #[serde(default)]
    pub workers_figures: Vec<super::partitioned::WorkerFigures>,
    /// The partitions that took the most fold time since the server
    /// started, most first (at most 5).
    #[serde(default)]
    pub slowest: Vec<super::partitioned::SlowPartition>,
}

/// Counters the actor updates and status reads.
#[derive(Debug)]
pub(crate) struct Live {
    pub state: RunState,
    pub offset: u64,
    pub scanned: u64,
    pub applied: u64,
    pub skipped_unknown: u64,
    pub skipped_positions: Vec<u64>,
    pub last_snapshot: Option<(u64, u64)>,
    pub fault: Option<Fault>,
    pub last_error: Option<String>,
    pub snapshots_paused: Option<String>,
    /// Set for a partitioned projection.
    pub partitions: Option<PartitionsStatus>,
    /// Where the projection stood (scanned) and when (ms) at the last error.
    error_at: (u64, u64),
    /// (when, applied) samples for the rate: the oldest kept is ≤ ~10 s old.
    rate_window: std::collections::VecDeque<(Instant, u64)>,
}

/// Shared handle on [`Live`].
pub(crate) type LiveStatus = Arc<Mutex<Live>>;

impl Live {
    pub fn new(offset: u64, scanned: u64, skipped_positions: Vec<u64>) -> Live {
        Live {
            state: RunState::Starting,
            offset,
            scanned,
            applied: 0,
            skipped_unknown: 0,
            skipped_positions,
            last_snapshot: None,
            fault: None,
            last_error: None,
            snapshots_paused: None,
            partitions: None,
            error_at: (0, 0),
            rate_window: std::collections::VecDeque::new(),
        }
    }

    /// Record an error (not a fault): current until the projection moves on
    /// or writes a snapshot.
    pub fn set_error(&mut self, error: String) {
        self.last_error = Some(error);
        self.error_at = (self.scanned, crate::snapshot::now_ms());
    }

    /// The error that is current, if any.
    fn current_error(&self) -> Option<String> {
        if let Some(f) = &self.fault {
            return Some(format!("at {} `{}`: {}", f.position, f.kind, f.error));
        }
        let (scanned, at) = self.error_at;
        let snapshot_since = self.last_snapshot.is_some_and(|(_, t)| t > at);
        self.last_error
            .clone()
            .filter(|_| self.scanned == scanned && !snapshot_since)
    }

    /// Record `applied` total now, for the events/s figure.
    pub fn sample_rate(&mut self) {
        let now = Instant::now();
        if self
            .rate_window
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t).as_millis() >= 1000)
        {
            self.rate_window.push_back((now, self.applied));
        }
        while self.rate_window.len() > 2 && now.duration_since(self.rate_window[0].0).as_secs() > 10
        {
            self.rate_window.pop_front();
        }
    }

    /// Forget the rate samples (a hibernating projection applies nothing;
    /// with 100,000 of them the samples would add up).
    pub fn clear_rate(&mut self) {
        self.rate_window = std::collections::VecDeque::new();
    }

    fn rate(&self) -> f64 {
        let Some((t0, a0)) = self.rate_window.front() else {
            return 0.0;
        };
        let secs = t0.elapsed().as_secs_f64();
        if secs < 0.001 {
            return 0.0;
        }
        (self.applied - a0) as f64 / secs
    }

    /// The status as `hume status` shows it.
    pub fn view(
        &self,
        name: &str,
        version: &VersionRecord,
        head: u64,
        now_ms: u64,
    ) -> ProjectionStatus {
        ProjectionStatus {
            name: name.to_string(),
            state: self.state,
            offset: self.offset,
            scanned: self.scanned,
            head,
            lag: head.saturating_sub(self.scanned),
            events_per_sec: (self.rate() * 10.0).round() / 10.0,
            applied: self.applied,
            skipped_unknown: self.skipped_unknown,
            skipped_positions: self.skipped_positions.clone(),
            last_snapshot: self.last_snapshot.map(|(offset, taken_at)| SnapshotInfo {
                offset,
                taken_at,
                age_ms: now_ms.saturating_sub(taken_at),
            }),
            plugin_hash: version.plugin_hash.clone(),
            plugin_name: version.plugin_name.clone(),
            plugin_version: version.plugin_version.clone(),
            streams: version.streams.clone(),
            options: version.options.clone(),
            fault: self.fault.clone(),
            last_error: self.last_error.clone(),
            snapshots_paused: self.snapshots_paused.clone(),
            error: self.current_error(),
            pending: None,
            partitions: self.partitions.clone(),
        }
    }
}
