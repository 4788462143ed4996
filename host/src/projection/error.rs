//! Errors of the live projection runtime, each saying what went wrong and
//! what to do about it.

use crate::log::LogError;
use crate::plugin::PluginError;
use crate::snapshot::SnapshotError;

use crate::deployment::DeploymentError;

/// Everything a projection command or deploy can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// No projection has this name.
    #[error("no projection named `{name}` is deployed (see `hume status` for the deployed ones)")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// Deploying the very same plugin again under the same name.
    #[error(
        "projection `{name}` already runs plugin {hash}: nothing changed. \
         To deploy a new version, build a different plugin; to rebuild, use `hume reset {name}`"
    )]
    AlreadyDeployed {
        /// The projection.
        name: String,
        /// The plugin hash it already runs.
        hash: String,
    },
    /// Bad name, options or streams in a deploy request.
    #[error("invalid deployment: {0}")]
    Invalid(String),
    /// The stream patterns are not valid.
    #[error("invalid stream selection: {0}")]
    Streams(#[source] LogError),
    /// The plugin could not be loaded (not a component, wrong world...).
    #[error("cannot deploy the plugin: {0}")]
    Load(#[source] PluginError),
    /// The projection is faulted; consistent reads cannot catch up past it.
    #[error(
        "projection `{name}` is faulted at position {position} (kind `{kind}`): {error}. \
         Fix and `hume resume {name}`, step over it with `hume skip {name}`, or read with --dirty"
    )]
    Faulted {
        /// The projection.
        name: String,
        /// Position of the event it stopped at.
        position: u64,
        /// Kind of that event.
        kind: String,
        /// What went wrong.
        error: String,
    },
    /// The projection is stopped; consistent reads cannot catch up.
    #[error("projection `{name}` is stopped: `hume start {name}` it, or read with --dirty")]
    Stopped {
        /// The projection.
        name: String,
    },
    /// A consistent read did not catch up in time.
    #[error(
        "projection `{name}` did not reach position {target} within {timeout_ms} ms \
         (it is at {scanned}); retry with a longer --timeout, or read with --dirty"
    )]
    Timeout {
        /// The projection.
        name: String,
        /// The log head at the time of the request.
        target: u64,
        /// How far it got.
        scanned: u64,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The command does not apply in the current state (e.g. resume when
    /// nothing is faulted).
    #[error("{0}")]
    Conflict(String),
    /// A plugin call for a read (snapshot, query) failed.
    #[error("projection `{name}`: {source}")]
    Plugin {
        /// The projection.
        name: String,
        /// The plugin's error.
        #[source]
        source: PluginError,
    },
    /// The projection's task ended (the server is shutting down).
    #[error("projection `{name}` is shutting down; retry after the server restarted")]
    Gone {
        /// The projection.
        name: String,
    },
    /// The log failed.
    #[error("event log: {0}")]
    Log(#[source] LogError),
    /// Persisting or loading a snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Persisting or loading deployment records failed.
    #[error(transparent)]
    Records(#[from] DeploymentError),
    /// A time-travel position is not usable.
    #[error("{0}")]
    Position(String),
    /// A time-travel position is not in the log yet and the caller asked
    /// not to wait.
    #[error(
        "projection `{name}` has examined the log up to position {scanned}, below {at}: retry \
         without --no-wait to wait for it, or ask for a position at or below {scanned}"
    )]
    NotYet {
        /// The projection.
        name: String,
        /// The position asked for.
        at: u64,
        /// How far it has examined the log.
        scanned: u64,
    },
    /// A whole-state read or query of a partitioned projection.
    #[error(
        "projection `{name}` is partitioned by {by}: read one partition with --partition KEY \
         (HTTP: partition=KEY) or every partition with --all (HTTP: all=true); \
         `hume partitions {name}` lists the keys"
    )]
    PartitionRequired {
        /// The projection.
        name: String,
        /// How it is partitioned.
        by: String,
    },
    /// No partition has this key.
    #[error(
        "projection `{name}` has no partition `{key}` (no event of it has been folded): \
         `hume partitions {name}` lists the keys it has"
    )]
    NoPartition {
        /// The projection.
        name: String,
        /// The key asked for.
        key: String,
    },
    /// A partition read of a projection that has one state.
    #[error(
        "projection `{name}` is not partitioned: read it without --partition/--all \
         (deploy with --partition-by to get one state per stream, category or key)"
    )]
    NotPartitioned {
        /// The projection.
        name: String,
    },
    /// The partition is faulted; a consistent read cannot catch up past it.
    #[error(
        "partition `{key}` of projection `{name}` is faulted at position {position} (kind \
         `{kind}`): {error}. Other partitions keep folding: fix the plugin and `hume resume \
         {name} --partition {key}`, step over the event with `hume skip {name} --partition \
         {key}`, or read with --dirty"
    )]
    PartitionFaulted {
        /// The projection.
        name: String,
        /// The partition.
        key: String,
        /// Position of the event it stopped at.
        position: u64,
        /// Kind of that event.
        kind: String,
        /// What went wrong.
        error: String,
    },
    /// A hibernated projection could not be brought back from its state.
    #[error(
        "projection `{name}` could not be woken from hibernation: restoring its state at \
         position {offset} failed: {source}. {}",
        wake_advice(name, *kept)
    )]
    Wake {
        /// The projection.
        name: String,
        /// Position of the state that failed to restore.
        offset: u64,
        /// Whether the state was kept in the snapshot store.
        kept: bool,
        /// Why the restore failed.
        #[source]
        source: Box<ProjectionError>,
    },
}

fn wake_advice(name: &str, kept: bool) -> String {
    if kept {
        format!(
            "The state is kept: `hume snapshot {name} --dirty` shows it; `hume resume {name}` \
             retries (after fixing the plugin), `hume reset {name}` rebuilds from the log"
        )
    } else {
        format!(
            "Writing the state to the snapshot store failed as well; `hume reset {name}` \
             rebuilds it from the log"
        )
    }
}
