//! Offline commands that need no server: `hume validate` checks a plugin,
//! `hume replay` folds an events file through it (the seed's `replay` /
//! `evolve`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::AsyncBufReadExt;

use hume::log::RecordedEvent;
use hume::plugin::{Limits, Plugin, PluginInfo, Runtime, RuntimeConfig};
use hume::projection::{FoldError, Folder, Snapshot, DEFAULT_BATCH_SIZE};

use super::Context;

/// Commands of this group.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that a file is a Hume plugin: prints what it says about itself,
    /// the world version it implements and its hash.
    Validate(ValidateArgs),
    /// Fold an events file through a plugin, offline, and print the final
    /// `{"offset": N, "state": ...}` on stdout.
    Replay(ReplayArgs),
}

/// Where compiled plugins are cached between runs.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Directory caching compiled plugins (default: $XDG_CACHE_HOME/hume or
    /// ~/.cache/hume); large plugins take seconds to compile.
    #[arg(long, env = "HUME_CACHE_DIR", global = true)]
    cache_dir: Option<PathBuf>,
    /// Do not read or write the compiled-plugin cache.
    #[arg(long, global = true)]
    no_cache: bool,
}

/// Arguments of `hume validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The plugin: a WebAssembly component of the world hume:projection.
    plugin: PathBuf,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

/// Arguments of `hume replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The plugin: a WebAssembly component of the world hume:projection.
    plugin: PathBuf,
    /// Events, one JSON object per line: {"stream", "kind", "data"} plus
    /// optional "metadata", "position", "revision", "timestamp". Positions
    /// default to the previous line's + 1 (1, 2, 3... in file order).
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
    /// Wall-time limit per plugin call, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    call_timeout_ms: u64,
    /// Memory limit of the plugin, in MiB.
    #[arg(long, default_value_t = 64)]
    max_memory_mib: usize,
    /// Name the projection runs under (tags the plugin's log lines).
    #[arg(long, default_value = "replay")]
    projection: String,
    #[command(flatten)]
    cache: CacheArgs,
}

/// Run one command of this group.
pub async fn run(cmd: Command, _ctx: &Context) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    match cmd {
        Command::Validate(args) => validate(args).await,
        Command::Replay(args) => replay(args).await,
    }
}

async fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let plugin = load(&args.plugin, &args.cache).await?;
    let info = plugin.info();
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "name": info.name,
            "version": info.version,
            "kinds": info.kinds,
            "state_encoding": info.state_encoding,
            "world": plugin.world_version(),
            "hash": plugin.hash(),
        });
        writeln!(out, "{value}")?;
    } else {
        let kinds = if info.kinds.is_empty() {
            "(every kind)".to_string()
        } else {
            info.kinds.join(", ")
        };
        writeln!(out, "plugin:         {} {}", info.name, info.version)?;
        writeln!(out, "world:          {}", plugin.world_version())?;
        writeln!(out, "kinds:          {kinds}")?;
        writeln!(out, "state encoding: {}", info.state_encoding)?;
        writeln!(out, "hash:           sha256:{}", plugin.hash())?;
        writeln!(out, "ok: {} is a valid Hume plugin", args.plugin.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Read, validate and compile a plugin (on a blocking thread: compiling a
/// big component takes seconds).
async fn load(path: &Path, cache: &CacheArgs) -> anyhow::Result<Plugin> {
    let wasm = tokio::fs::read(path)
        .await
        .with_context(|| format!("cannot read the plugin file {}", path.display()))?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: cache_dir(cache),
        ..RuntimeConfig::default()
    })
    .map_err(message)
    .context("cannot start the plugin runtime")?;
    let plugin = tokio::task::spawn_blocking(move || runtime.load(&wasm))
        .await
        .context("the plugin loader crashed")?
        .map_err(message)
        .with_context(|| format!("{} is not a valid Hume plugin", path.display()))?;
    Ok(plugin)
}

/// The cache directory to use, if any (created here; unusable means none).
fn cache_dir(args: &CacheArgs) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    let dir = args.cache_dir.clone().or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|base| base.join("hume"))
    })?;
    match std::fs::create_dir_all(&dir) {
        Ok(()) => Some(dir),
        Err(err) => {
            tracing::warn!(
                "not caching compiled plugins: cannot create {}: {err}",
                dir.display()
            );
            None
        }
    }
}

async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let plugin = load(&args.plugin, &args.cache).await?;
    let info = plugin.info().clone();
    let snapshot = match &args.from_snapshot {
        Some(path) => Some(read_snapshot(path, &info).await?),
        None => None,
    };
    let limits = Limits {
        call_timeout: Duration::from_millis(args.call_timeout_ms),
        max_memory_bytes: args.max_memory_mib.saturating_mul(1024 * 1024),
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

    let file = tokio::fs::File::open(&args.events)
        .await
        .with_context(|| format!("cannot open the events file {}", args.events.display()))?;
    let mut lines = tokio::io::BufReader::new(file).lines();
    let mut reader = EventReader::default();
    let batch_size = if args.trace {
        1
    } else {
        args.batch_size as usize
    };
    let mut batch = Vec::with_capacity(batch_size);
    let mut line_no = 0u64;
    let failed = |err: FoldError| {
        message(err).context(format!("replay of {} failed", args.events.display()))
    };
    loop {
        let line = lines.next_line().await.with_context(|| {
            format!(
                "cannot read {} (line {})",
                args.events.display(),
                line_no + 1
            )
        })?;
        let Some(line) = line else { break };
        line_no += 1;
        let Some(event) = reader
            .parse(&line)
            .with_context(|| format!("{}: line {line_no}", args.events.display()))?
        else {
            continue;
        };
        batch.push(event);
        if batch.len() < batch_size {
            continue;
        }
        if args.trace {
            trace_apply(&mut folder, &batch[0], &info)
                .await
                .map_err(failed)?;
        } else {
            folder.apply(&batch).await.map_err(failed)?;
        }
        batch.clear();
    }
    if !batch.is_empty() {
        folder.apply(&batch).await.map_err(failed)?;
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

/// A library error as one anyhow message: their `Display` already includes
/// their cause, so walking the source chain too would repeat it.
fn message(err: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{err}")
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

/// Turns lines of an events file into events, numbering positions and
/// revisions that the lines leave out.
#[derive(Default)]
struct EventReader {
    last_position: u64,
    revisions: HashMap<String, u64>,
}

/// One line of an events file.
#[derive(Deserialize)]
struct EventLine {
    stream: Option<String>,
    kind: Option<String>,
    data: Option<Box<RawValue>>,
    metadata: Option<Box<RawValue>>,
    position: Option<u64>,
    revision: Option<u64>,
    timestamp: Option<u64>,
}

impl EventReader {
    /// Parse one line; blank lines give `None`.
    fn parse(&mut self, line: &str) -> anyhow::Result<Option<RecordedEvent>> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if !trimmed.starts_with('{') {
            let found = match serde_json::from_str::<serde_json::Value>(trimmed) {
                Ok(serde_json::Value::Array(_)) => "an array",
                Ok(serde_json::Value::String(_)) => "a string",
                Ok(serde_json::Value::Number(_)) => "a number",
                Ok(serde_json::Value::Bool(_)) => "a boolean",
                Ok(serde_json::Value::Null) => "null",
                Ok(serde_json::Value::Object(_)) => "an object",
                Err(_) => "text that is not JSON",
            };
            bail!(
                "expected a JSON object like {{\"stream\": \"s\", \"kind\": \"k\", \"data\": {{}}}}, found {found}"
            );
        }
        let parsed: EventLine =
            serde_json::from_str(trimmed).context("not a valid event line (bad JSON or field)")?;
        let kind = match parsed.kind {
            Some(kind) if !kind.is_empty() => kind,
            _ => bail!("missing \"kind\": every event needs a non-empty kind"),
        };
        let Some(data) = parsed.data else {
            bail!("missing \"data\": every event needs a JSON payload (use {{}} for none)");
        };
        let stream = parsed.stream.unwrap_or_else(|| "replay".to_string());
        let position = match parsed.position {
            Some(p) => p,
            None => self.last_position.checked_add(1).with_context(|| {
                format!(
                    "no \"position\" to give this event: the previous one was at {}, the last \
                     there is; give positions explicitly",
                    self.last_position
                )
            })?,
        };
        if position == 0 {
            bail!("\"position\" must be 1 or more");
        }
        let revision = match parsed.revision {
            Some(r) => r,
            None => {
                let last = self.revisions.get(&stream).copied().unwrap_or(0);
                last.checked_add(1).with_context(|| {
                    format!(
                        "no \"revision\" to give this event: the previous one of stream {stream:?} \
                         was at {last}, the last there is; give revisions explicitly"
                    )
                })?
            }
        };
        self.revisions.insert(stream.clone(), revision);
        self.last_position = position;
        Ok(Some(RecordedEvent {
            position,
            stream,
            revision,
            kind,
            data: data.get().as_bytes().to_vec(),
            metadata: parsed.metadata.map(|m| m.get().as_bytes().to_vec()),
            timestamp: parsed.timestamp.unwrap_or(0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lines of an events file: objects with any mix of the fields (numbers
    /// at the edges of u64), other JSON, and text that is not JSON.
    fn line() -> impl Strategy<Value = String> {
        let number = prop_oneof![
            Just("0".to_string()),
            Just("1".to_string()),
            Just(u64::MAX.to_string()),
            Just((u64::MAX - 1).to_string()),
            Just("18446744073709551616".to_string()),
            Just("-1".to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
        ];
        let field = prop_oneof![
            "[a-z]{0,3}".prop_map(|s| format!("\"stream\":\"{s}\"")),
            "[a-z]{0,3}".prop_map(|s| format!("\"kind\":\"{s}\"")),
            Just("\"data\":{\"a\":1}".to_string()),
            Just("\"metadata\":null".to_string()),
            number.clone().prop_map(|n| format!("\"position\":{n}")),
            number.clone().prop_map(|n| format!("\"revision\":{n}")),
            number.prop_map(|n| format!("\"timestamp\":{n}")),
            Just("\"extra\":[]".to_string()),
        ];
        let core = prop::option::weighted(0.8, Just("\"kind\":\"k\",\"data\":1".to_string()));
        prop_oneof![
            4 => (core, prop::collection::vec(field, 0..4)).prop_map(|(core, mut f)| {
                f.extend(core);
                format!("{{{}}}", f.join(","))
            }),
            1 => "[ -~]{0,20}",
            1 => Just("[1,2]".to_string()),
            1 => Just("   ".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// `hume replay --events`: any sequence of lines gives events or
        /// errors, never a panic; positions of the events it gives increase.
        #[test]
        fn event_lines_never_panic(lines in prop::collection::vec(line(), 0..8)) {
            let mut reader = EventReader::default();
            for line in &lines {
                if let Ok(Some(e)) = reader.parse(line) {
                    prop_assert!(e.position >= 1);
                    prop_assert!(!e.kind.is_empty());
                }
            }
        }
    }

    /// Found by `event_lines_never_panic`: the position or revision after
    /// one at u64::MAX overflowed (a panic in debug builds, position 0 in
    /// release).
    #[test]
    fn numbering_after_u64_max_is_an_error() {
        let mut reader = EventReader::default();
        let max = u64::MAX;
        assert!(reader
            .parse(&format!(
                r#"{{"kind":"k","data":1,"position":{max},"revision":{max}}}"#
            ))
            .unwrap()
            .is_some());
        let err = reader.parse(r#"{"kind":"k","data":1}"#).unwrap_err();
        assert!(err.to_string().contains("position"), "{err}");
        let err = reader
            .parse(r#"{"kind":"k","data":1,"position":5}"#)
            .unwrap_err();
        assert!(err.to_string().contains("revision"), "{err}");
    }
}
