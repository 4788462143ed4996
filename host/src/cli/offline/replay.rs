//! `hume replay`: fold an events file through a plugin offline and print
//! the final `{"offset", "state"}`; `--trace` shows each event with the
//! state before and after it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use base64::Engine as _;
use clap::Args;
use serde::Deserialize;

use hume::log::RecordedEvent;
use hume::plugin::{Limits, PluginInfo};
use hume::projection::{FoldError, Folder, Snapshot, DEFAULT_BATCH_SIZE};

use super::{events_file, load, message, CacheArgs};

/// Arguments of `hume replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The plugin: a WebAssembly component of the world hume:projection.
    plugin: PathBuf,
    /// Events, one JSON object per line: {"stream", "kind", "data"} plus
    /// optional "metadata", "position", "revision", "timestamp". Positions
    /// default to the previous line's + 1 (1, 2, 3... in file order). The
    /// file is read and parsed on a thread of its own, a few batches ahead
    /// of the plugin, so the replay runs at the plugin's speed.
    #[arg(long, value_name = "FILE.ndjson")]
    events: PathBuf,
    /// Start from this snapshot (the output of an earlier replay) instead of
    /// the initial state; events at or below its offset are stale (an error).
    #[arg(long, value_name = "SNAP.json")]
    from_snapshot: Option<PathBuf>,
    /// Skip events of kinds the plugin does not handle instead of failing.
    #[arg(long)]
    no_strict: bool,
    /// Show each event on stderr with the state before and after it.
    #[arg(long)]
    trace: bool,
    /// Events per plugin call.
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch_size: u64,
    /// Wall time one plugin call may take, ms (as `hume deploy`).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 5000,
        alias = "call-timeout-ms"
    )]
    call_timeout: u64,
    /// Memory the plugin may use, bytes (suffixes K, M, G allowed; as
    /// `hume deploy`): all its linear memories and tables together.
    #[arg(long, default_value = "256M", value_parser = crate::cli::projections::parse_bytes)]
    max_memory: u64,
    /// Name the projection runs under (tags the plugin's log lines).
    #[arg(long, default_value = "replay")]
    projection: String,
    #[command(flatten)]
    cache: CacheArgs,
}

/// `hume replay`: the file is read and parsed on another thread
/// ([`events_file::spawn`]) while this task folds the batches it sends.
pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let plugin = load(&args.plugin, &args.cache).await?;
    let info = plugin.info().clone();
    let snapshot = match &args.from_snapshot {
        Some(path) => Some(read_snapshot(path, &info).await?),
        None => None,
    };
    let limits = Limits {
        call_timeout: Duration::from_millis(args.call_timeout),
        max_memory_bytes: usize::try_from(args.max_memory).unwrap_or(usize::MAX),
        ..Limits::default()
    };
    let mut folder = Folder::start(
        &plugin,
        &args.projection,
        snapshot.as_ref(),
        !args.no_strict,
        limits,
    )
    .await
    .map_err(message)
    .context("cannot start the plugin")?;

    let batch_size = if args.trace {
        1
    } else {
        args.batch_size as usize
    };
    let mut batches = events_file::spawn(&args.events, batch_size)?;
    let failed = |err: FoldError| {
        message(err).context(format!("replay of {} failed", args.events.display()))
    };
    while let Some(batch) = batches.next().await? {
        if args.trace {
            for event in &batch {
                trace_apply(&mut folder, event, &info)
                    .await
                    .map_err(failed)?;
            }
        } else {
            folder.apply(&batch).await.map_err(failed)?;
        }
        batches.recycle(batch);
    }
    let snapshot = folder.snapshot().await.map_err(failed)?;
    if folder.skipped() > 0 {
        tracing::warn!(
            skipped = folder.skipped(),
            "skipped events of unhandled kinds"
        );
    }
    let output = serde_json::json!({
        "offset": snapshot.offset,
        "state": state_to_json(&snapshot.state, &info),
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{output}")?;
    Ok(ExitCode::SUCCESS)
}

/// Apply one event, printing it with the state before and after on stderr.
async fn trace_apply(
    folder: &mut Folder,
    event: &RecordedEvent,
    info: &PluginInfo,
) -> Result<(), FoldError> {
    let before = folder.snapshot().await?;
    let data = String::from_utf8_lossy(&event.data);
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "event {} stream={} revision={} kind={} data={}",
        event.position, event.stream, event.revision, event.kind, data
    );
    let _ = writeln!(err, "  before: {}", state_to_json(&before.state, info));
    drop(err);
    let applied = match folder.apply(std::slice::from_ref(event)).await {
        Ok(applied) => applied,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "  failed: {e}");
            return Err(e);
        }
    };
    let after = folder.snapshot().await?;
    let mut err = std::io::stderr().lock();
    if applied.skipped > 0 {
        let _ = writeln!(err, "  skipped (kind not handled)");
    }
    let _ = writeln!(err, "  after:  {}", state_to_json(&after.state, info));
    Ok(())
}

/// A snapshot's state as JSON: embedded when the plugin's state is JSON,
/// base64 text otherwise.
fn state_to_json(state: &[u8], info: &PluginInfo) -> serde_json::Value {
    if info.is_json() {
        if let Ok(value) = serde_json::from_slice(state) {
            return value;
        }
    }
    serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(state))
}

/// Read `{"offset": N, "state": ...}` (the output of `hume replay`).
async fn read_snapshot(path: &Path, info: &PluginInfo) -> anyhow::Result<Snapshot> {
    #[derive(Deserialize)]
    struct SnapshotFile {
        offset: u64,
        state: serde_json::Value,
    }
    let text = tokio::fs::read(path)
        .await
        .with_context(|| format!("cannot read the snapshot file {}", path.display()))?;
    let file: SnapshotFile = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a snapshot: expected {{\"offset\": N, \"state\": ...}} as `hume replay` prints",
            path.display()
        )
    })?;
    let state = if info.is_json() {
        serde_json::to_vec(&file.state)?
    } else {
        let serde_json::Value::String(text) = &file.state else {
            bail!(
                "{}: \"state\" must be base64 text for a plugin whose state encoding is `{}`",
                path.display(),
                info.state_encoding
            );
        };
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .with_context(|| format!("{}: \"state\" is not valid base64", path.display()))?
    };
    Ok(Snapshot {
        offset: file.offset,
        state,
    })
}
