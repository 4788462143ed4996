//! What a deployment is made of: the options of a projection (the seed's
//! `snapshot_every`, `snapshot_after`, `catch_up_after`, `strict_online`,
//! `use_ets`, plus sandbox limits) and the durable record of each deployed
//! projection.

use serde::{Deserialize, Serialize};

use super::partition::{PartitionBy, PartitionByError};
use crate::snapshot::Retention;

/// Most partitions a partitioned projection folds at once.
pub const MAX_WORKERS: u32 = 256;

/// Default wall time of one plugin call, ms.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 5_000;
/// Default memory limit of a plugin instance, bytes: room for every
/// example in every language to fold 1,000,000 events (the JavaScript
/// engine's heap needs about 200 MiB for that), far below what a runaway
/// plugin would take.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
/// Default largest snapshot, bytes.
pub const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 16 * 1024 * 1024;

/// Where a projection keeps its snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotStoreKind {
    /// The server's durable store (default).
    #[default]
    Durable,
    /// Process memory only, lost on restart (the seed's `use_ets`).
    Memory,
}

impl std::str::FromStr for SnapshotStoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "durable" => Ok(SnapshotStoreKind::Durable),
            "memory" => Ok(SnapshotStoreKind::Memory),
            other => Err(format!(
                "unknown snapshot store `{other}`: use `durable` (the default) or `memory`"
            )),
        }
    }
}

/// Where a new projection starts reading the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// From the first event (default).
    #[default]
    Beginning,
    /// After the last event in the log at deploy time.
    End,
}

impl std::str::FromStr for StartFrom {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "0" | "beginning" | "start" => Ok(StartFrom::Beginning),
            "end" | "head" => Ok(StartFrom::End),
            other => Err(format!("unknown start `{other}`: use `0` or `end`")),
        }
    }
}

/// Options of one projection; defaults are the seed's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectionOptions {
    /// Persist a snapshot after this many applied events (0 = never by count).
    pub snapshot_every: u64,
    /// Persist a snapshot this many ms after the last one when the state
    /// changed since (0 = never by time).
    pub snapshot_after_ms: u64,
    /// Poll the log this often (ms) even without a wake-up from the head watch.
    pub catch_up_after_ms: u64,
    /// Fault on an unknown event kind (true) or skip and count it (false).
    pub strict: bool,
    /// Where snapshots go.
    pub snapshot_store: SnapshotStoreKind,
    /// Where a fresh projection starts.
    pub start_from: StartFrom,
    /// Wall time one plugin call may take, ms (default 5000).
    pub call_timeout_ms: u64,
    /// Linear memory the plugin may grow to, bytes (default 256 MiB).
    pub max_memory_bytes: u64,
    /// Largest state `snapshot()` may return, bytes (default 16 MiB).
    pub max_snapshot_bytes: u64,
    /// Events read from the log and handed to the plugin per batch.
    pub batch_size: u32,
    /// Which snapshots of the history to keep (time travel).
    pub snapshot_history: Retention,
    /// Partitioned projection: one state per `stream`, `category` or value
    /// at a JSON pointer (`/account`); `None`: one state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_by: Option<String>,
    /// Partitioned projection: how many partitions fold at once (`None`:
    /// the server's cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
}

impl Default for ProjectionOptions {
    fn default() -> Self {
        ProjectionOptions {
            snapshot_every: 100,
            snapshot_after_ms: 30_000,
            catch_up_after_ms: 30_000,
            strict: true,
            snapshot_store: SnapshotStoreKind::Durable,
            start_from: StartFrom::Beginning,
            call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            max_snapshot_bytes: DEFAULT_MAX_SNAPSHOT_BYTES,
            batch_size: 512,
            snapshot_history: Retention::default(),
            partition_by: None,
            workers: None,
        }
    }
}

impl ProjectionOptions {
    /// Check the options make sense; the message says which one does not.
    pub fn validate(&self) -> Result<(), String> {
        if self.catch_up_after_ms == 0 {
            return Err("catch_up_after must be at least 1 ms".into());
        }
        if self.call_timeout_ms == 0 {
            return Err("call_timeout must be at least 1 ms".into());
        }
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return Err("batch_size must be between 1 and 100000".into());
        }
        if self.max_memory_bytes < 1 << 16 {
            return Err("max_memory must be at least 64 KiB (one wasm page)".into());
        }
        self.partitioning().map_err(|e| e.to_string())?;
        match self.workers {
            Some(0) => {
                return Err(
                    "--workers (options.workers) must be at least 1: give the number of \
                     partitions to fold at once, or leave it out for one per core"
                        .into(),
                )
            }
            Some(n) if n > MAX_WORKERS => {
                return Err(format!(
                    "--workers (options.workers) is {n}, over the maximum of {MAX_WORKERS}"
                ))
            }
            Some(_) if self.partition_by.is_none() => {
                return Err("--workers (options.workers) only applies to a partitioned \
                     projection: add --partition-by stream|category|/json/pointer, or drop it"
                    .into())
            }
            _ => {}
        }
        Ok(())
    }

    /// How the projection is partitioned, if it is.
    pub fn partitioning(&self) -> Result<Option<PartitionBy>, PartitionByError> {
        self.partition_by
            .as_deref()
            .map(PartitionBy::parse)
            .transpose()
    }
}

/// One version of a projection: which plugin, which streams, which options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// sha256 hex of the plugin bytes (key in the `plugins` column family).
    pub plugin_hash: String,
    /// The plugin's self-declared name and version (from `describe`).
    pub plugin_name: String,
    /// The plugin's self-declared version.
    pub plugin_version: String,
    /// Stream names and categories (`account-*`) the projection follows.
    pub streams: Vec<String>,
    /// The projection's options.
    pub options: ProjectionOptions,
    /// Events at or below this position are never applied (0, or the head at
    /// deploy time with `--start-from end`).
    pub start_offset: u64,
    /// When this version was deployed (ms since the epoch).
    pub deployed_at: u64,
    /// Blue/green with `--keep-state`: the hash whose snapshot seeds this
    /// version instead of a rebuild from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_state_from: Option<String>,
    /// Counts redeploys of the same plugin with options that change the
    /// fold (streams, start, strictness): each is a new version with its
    /// own snapshots. 0 for the first version of a plugin.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
    /// Positions this version steps over from its start (`hume deploy
    /// --keep-skips` copies the running version's); only read while the
    /// version is pending: once active, the record's list is the one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl VersionRecord {
    /// What tells this version apart from every other of its projection:
    /// the plugin hash, plus the generation when the same plugin was
    /// redeployed with a different fold. Snapshots are kept under it.
    pub fn id(&self) -> String {
        if self.generation == 0 {
            self.plugin_hash.clone()
        } else {
            format!("{}.g{}", self.plugin_hash, self.generation)
        }
    }
}

/// The durable record of one deployed projection (JSON in the `projections`
/// column family, keyed by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The projection's name.
    pub name: String,
    /// The version serving reads.
    pub active: VersionRecord,
    /// A new version being built beside it (blue/green), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<VersionRecord>,
    /// Stopped by `hume stop` (stays stopped across restarts).
    #[serde(default)]
    pub stopped: bool,
    /// Positions stepped over by `hume skip`, in order.
    #[serde(default)]
    pub skipped: Vec<u64>,
}

/// Check a projection name: 1–128 characters of `A-Z a-z 0-9 . _ -`,
/// starting with a letter or digit (names appear in URLs and keys).
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok_first || !ok_rest || name.len() > 128 {
        return Err(format!(
            "invalid projection name `{name}`: use 1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit"
        ));
    }
    Ok(())
}
