//! `hume deploy`: the arguments, the request, and what it prints (what
//! the projection follows, progress with `--wait`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Args;
use hume::log::coverage::Coverage;
use hume::projection::{DeployOutcome, ProjectionOptions, SnapshotStoreKind, StartFrom};
use hume::snapshot::Retention;

use super::client::Client;
use super::follows::{local_glob_warnings, print_follows};
use super::projections::parse_bytes;

/// Arguments of `hume deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Projection name (A-Z a-z 0-9 . _ -).
    pub name: String,
    /// The plugin: a WebAssembly component of the `hume:projection` world.
    pub plugin: PathBuf,
    /// A stream to follow; repeat for several; `category-*` for a category,
    /// `*` for every stream. Quote patterns ('cart-*'): `*` anywhere but at
    /// the end, `[` and `]` are refused. The deploy prints what the streams
    /// match today, and warns about an entry that matches nothing or names
    /// the streams of a category one by one (as a shell expands `cart-*`).
    #[arg(long = "stream", required = true)]
    pub streams: Vec<String>,
    /// Persist a snapshot every N applied events (0: never by count). At the
    /// head this applies exactly; while catching up (a rebuild), snapshots
    /// due by count are coalesced so that snapshotting takes at most 10% of
    /// the time (a crash then refolds at most what was folded in ~9 times
    /// one snapshot's cost, and at most one history spacing).
    #[arg(long, default_value_t = 100, verbatim_doc_comment)]
    pub snapshot_every: u64,
    /// Which snapshots to keep for time travel: RECENT:SPACING keeps the
    /// RECENT newest and, before them, the newest snapshot of every SPACING
    /// log positions (at most RECENT + head/SPACING snapshots); the state at
    /// any position is then rebuilt by replaying at most 2 x SPACING
    /// positions. `off` keeps only the newest snapshot.
    #[arg(long, default_value_t = Retention::default(), verbatim_doc_comment)]
    pub snapshot_history: Retention,
    /// Persist a snapshot MS after the last one when the state changed (0: never by time).
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub snapshot_after: u64,
    /// Poll the log every MS even without a wake-up.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub catch_up_after: u64,
    /// Skip (and count) unknown event kinds instead of faulting.
    #[arg(long)]
    pub no_strict: bool,
    /// Where snapshots go: durable (the server's store) or memory (lost on
    /// restart).
    #[arg(long, default_value = "durable")]
    pub snapshot_store: SnapshotStoreKind,
    /// Where a new projection starts: 0 (the first event) or end (after the current head).
    #[arg(long, default_value = "0")]
    pub start_from: StartFrom,
    /// Wall time one plugin call may take, ms.
    #[arg(long, value_name = "MS")]
    pub call_timeout: Option<u64>,
    /// Memory the plugin may use, bytes (suffixes K, M, G allowed): all its
    /// linear memories and tables together. Default 256M, in which every
    /// example plugin in every language folds 1,000,000 events.
    #[arg(long, value_parser = parse_bytes)]
    pub max_memory: Option<u64>,
    /// Largest state snapshot, bytes (suffixes K, M, G allowed).
    #[arg(long, value_parser = parse_bytes)]
    pub max_snapshot: Option<u64>,
    /// Events per batch handed to the plugin.
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// New version only: start from the running version's snapshot instead
    /// of rebuilding from the start.
    #[arg(long)]
    pub keep_state: bool,
    /// New version only: keep stepping over the positions skipped (`hume
    /// skip`) in the running version.
    #[arg(long)]
    pub keep_skips: bool,
    /// Return only once the projection (or the new version, once swapped
    /// in) has caught up with the log, showing its progress; exit non-zero
    /// with the fault if it faults.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up waiting after this many seconds (the projection
    /// goes on catching up in the background).
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    pub wait_timeout: Option<u64>,
    /// One state per partition instead of one for the projection: `stream`
    /// (one per stream), `category` (one per stream name before its last
    /// `-`) or a JSON pointer into the event data such as `/account` (one per
    /// value found there: strings as they are, numbers and booleans as JSON
    /// text). An event without a key faults the projection (strict) or is
    /// skipped and counted (--no-strict). Read with `hume state NAME
    /// --partition KEY` or `--all`; list with `hume partitions NAME`.
    #[arg(long, value_name = "MODE", verbatim_doc_comment)]
    pub partition_by: Option<String>,
    /// With --partition-by: how many partitions fold at once (default: the
    /// server's cores).
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
}

/// What `POST /projections` answers.
#[derive(Debug, serde::Deserialize)]
struct DeployReply {
    #[serde(flatten)]
    outcome: DeployOutcome,
    #[serde(default)]
    follows: Option<Coverage>,
}

pub(super) async fn deploy(client: &Client, args: DeployArgs) -> anyhow::Result<ExitCode> {
    let wasm = std::fs::read(&args.plugin)
        .with_context(|| format!("cannot read the plugin {}", args.plugin.display()))?;
    let mut options = ProjectionOptions {
        snapshot_every: args.snapshot_every,
        snapshot_after_ms: args.snapshot_after,
        catch_up_after_ms: args.catch_up_after,
        strict: !args.no_strict,
        snapshot_store: args.snapshot_store,
        start_from: args.start_from,
        snapshot_history: args.snapshot_history,
        ..ProjectionOptions::default()
    };
    if let Some(v) = args.call_timeout {
        options.call_timeout_ms = v;
    }
    if let Some(v) = args.max_memory {
        options.max_memory_bytes = v;
    }
    if let Some(v) = args.max_snapshot {
        options.max_snapshot_bytes = v;
    }
    if let Some(v) = args.batch_size {
        options.batch_size = v;
    }
    options.partition_by = args.partition_by.clone();
    options.workers = args.workers;
    let body = serde_json::json!({
        "name": args.name,
        "plugin": base64::engine::general_purpose::STANDARD.encode(&wasm),
        "streams": args.streams,
        "options": options,
        "keep_state": args.keep_state,
        "keep_skips": args.keep_skips,
    });
    for warning in local_glob_warnings(&args.streams) {
        eprintln!("warning: {warning}");
    }
    let spinner = super::deploy_wait::spinner(format!(
        "{}: uploading {} ({} KiB) and compiling it on the server",
        args.name,
        args.plugin.display(),
        wasm.len().div_ceil(1024)
    ));
    let reply: Result<DeployReply, _> = client.post_json(&["projections"], &body).await;
    spinner.finish_and_clear();
    let reply =
        reply.with_context(|| format!("deploying {} as `{}`", args.plugin.display(), args.name))?;
    let outcome = reply.outcome;
    if outcome.status == "updated" {
        println!(
            "{}: {} {} ({}) updated in place ({}); state and offset kept",
            outcome.name,
            outcome.plugin_name,
            outcome.plugin_version,
            &outcome.plugin_hash[..12],
            outcome.changed.join(", ")
        );
    } else if outcome.status == "building" && !outcome.changed.is_empty() {
        println!(
            "{}: building a new version of {} {} ({}) with other {} beside the running one; it takes over when caught up",
            outcome.name,
            outcome.plugin_name,
            outcome.plugin_version,
            &outcome.plugin_hash[..12],
            outcome.changed.join(", ")
        );
    } else if outcome.status == "building" {
        println!(
            "{}: building {} {} ({}) beside the running version; it takes over when caught up",
            outcome.name,
            outcome.plugin_name,
            outcome.plugin_version,
            &outcome.plugin_hash[..12]
        );
    } else {
        println!(
            "{}: deployed {} {} ({})",
            outcome.name,
            outcome.plugin_name,
            outcome.plugin_version,
            &outcome.plugin_hash[..12]
        );
    }
    if let Some(follows) = reply.follows {
        print_follows(&follows);
    }
    if args.wait {
        return super::deploy_wait::wait(
            client,
            &outcome.name,
            &outcome.plugin_hash,
            outcome.status == "building",
            args.wait_timeout.map(std::time::Duration::from_secs),
        )
        .await;
    }
    Ok(ExitCode::SUCCESS)
}
