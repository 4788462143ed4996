//! What redeploying the plugin a projection already runs, with other
//! options, changes.
//!
//! - Options that do not change what the fold computes (limits, snapshot
//!   cadence and store, history, batch size, the catch-up poll) apply **in
//!   place**: the running version keeps its state and offset.
//! - Options that do (the streams followed, where it starts, strictness
//!   about unknown events, how it is partitioned) make a **new version**,
//!   built beside the running one and swapped in when it has caught up, as
//!   for a new plugin.
//!
//! `hume deploy --help` and the README list the same two groups.

use std::collections::BTreeSet;

use super::config::{ProjectionOptions, VersionRecord};

/// What a redeploy of the same plugin does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing differs.
    Nothing,
    /// Only these options differ; they apply to the running version.
    InPlace(Vec<&'static str>),
    /// These options change the fold: a new version is built.
    NewVersion(Vec<&'static str>),
}

/// The options that change the fold, as `hume deploy --help` names them.
pub const FOLD_OPTIONS: &[&str] = &["streams", "start_from", "strict", "partition_by"];

/// Compare a running version with a redeploy's streams and options.
pub fn classify(
    current: &VersionRecord,
    streams: &[String],
    options: &ProjectionOptions,
) -> Change {
    let old = &current.options;
    let mut fold = Vec::new();
    if as_set(&current.streams) != as_set(streams) {
        fold.push("streams");
    }
    if old.start_from != options.start_from {
        fold.push("start_from");
    }
    if old.strict != options.strict {
        fold.push("strict");
    }
    if old.partition_by != options.partition_by {
        fold.push("partition_by");
    }
    // A partitioned projection snapshots only what changed: its states
    // cannot move to another store in place.
    if old.partition_by.is_some() && old.snapshot_store != options.snapshot_store {
        fold.push("snapshot_store");
    }
    if !fold.is_empty() {
        return Change::NewVersion(fold);
    }
    let mut in_place = Vec::new();
    let mut differs = |name, changed: bool| {
        if changed {
            in_place.push(name);
        }
    };
    differs(
        "snapshot_every",
        old.snapshot_every != options.snapshot_every,
    );
    differs(
        "snapshot_after_ms",
        old.snapshot_after_ms != options.snapshot_after_ms,
    );
    differs(
        "catch_up_after_ms",
        old.catch_up_after_ms != options.catch_up_after_ms,
    );
    differs(
        "snapshot_store",
        old.snapshot_store != options.snapshot_store,
    );
    differs(
        "call_timeout_ms",
        old.call_timeout_ms != options.call_timeout_ms,
    );
    differs(
        "max_memory_bytes",
        old.max_memory_bytes != options.max_memory_bytes,
    );
    differs(
        "max_snapshot_bytes",
        old.max_snapshot_bytes != options.max_snapshot_bytes,
    );
    differs("batch_size", old.batch_size != options.batch_size);
    differs(
        "snapshot_history",
        old.snapshot_history != options.snapshot_history,
    );
    differs("workers", old.workers != options.workers);
    if in_place.is_empty() {
        Change::Nothing
    } else {
        Change::InPlace(in_place)
    }
}

/// Do the plugin's sandbox limits differ (a live instance must be rebuilt
/// to get the new ones)?
pub fn limits_differ(a: &ProjectionOptions, b: &ProjectionOptions) -> bool {
    a.call_timeout_ms != b.call_timeout_ms
        || a.max_memory_bytes != b.max_memory_bytes
        || a.max_snapshot_bytes != b.max_snapshot_bytes
}

fn as_set(streams: &[String]) -> BTreeSet<&str> {
    streams.iter().map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::config::{SnapshotStoreKind, StartFrom};

    fn version(streams: &[&str]) -> VersionRecord {
        VersionRecord {
            plugin_hash: "ab".repeat(32),
            plugin_name: "kv".into(),
            plugin_version: "1".into(),
            streams: streams.iter().map(|s| s.to_string()).collect(),
            options: ProjectionOptions::default(),
            start_offset: 0,
            deployed_at: 0,
            keep_state_from: None,
            generation: 0,
            skipped: Vec::new(),
        }
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_same_options_change_nothing_whatever_the_stream_order() {
        let v = version(&["a-*", "b"]);
        let c = classify(
            &v,
            &strings(&["b", "a-*", "b"]),
            &ProjectionOptions::default(),
        );
        assert_eq!(c, Change::Nothing);
    }

    #[test]
    fn limits_and_cadence_apply_in_place() {
        let v = version(&["a-*"]);
        let options = ProjectionOptions {
            max_memory_bytes: 512 << 20,
            snapshot_every: 1000,
            snapshot_store: SnapshotStoreKind::Memory,
            ..Default::default()
        };
        assert_eq!(
            classify(&v, &strings(&["a-*"]), &options),
            Change::InPlace(vec!["snapshot_every", "snapshot_store", "max_memory_bytes"])
        );
        assert!(limits_differ(&v.options, &options));
        let cadence_only = ProjectionOptions {
            snapshot_every: 7,
            ..Default::default()
        };
        assert!(!limits_differ(&v.options, &cadence_only));
    }

    #[test]
    fn streams_start_and_strictness_make_a_new_version() {
        let v = version(&["a-*"]);
        let options = ProjectionOptions {
            strict: false,
            start_from: StartFrom::End,
            max_memory_bytes: 512 << 20,
            ..Default::default()
        };
        assert_eq!(
            classify(&v, &strings(&["a-*", "b"]), &options),
            Change::NewVersion(vec!["streams", "start_from", "strict"])
        );
        assert_eq!(
            classify(&v, &strings(&["b-*"]), &ProjectionOptions::default()),
            Change::NewVersion(vec!["streams"])
        );
    }

    #[test]
    fn a_new_generation_has_its_own_id() {
        let mut v = version(&["a"]);
        assert_eq!(v.id(), v.plugin_hash);
        v.generation = 2;
        assert_eq!(v.id(), format!("{}.g2", v.plugin_hash));
    }
}
