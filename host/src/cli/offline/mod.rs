//! Offline commands that need no server: `hume validate` checks a plugin,
//! `hume replay` folds an events file through it (the seed's `replay` /
//! `evolve`; [`replay`] drives the fold, [`events_file`] reads the file
//! beside it on another thread).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use hume::plugin::{Plugin, Runtime, RuntimeConfig};

use super::Context;

mod events_file;
mod replay;

pub use replay::ReplayArgs;

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

/// Run one command of this group.
pub async fn run(cmd: Command, _ctx: &Context) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    match cmd {
        Command::Validate(args) => validate(args).await,
        Command::Replay(args) => replay::run(args).await,
    }
}

async fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let plugin = load(&args.plugin, &args.cache).await?;
    let info = plugin.info();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", plugin.description())?;
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
pub(super) async fn load(path: &Path, cache: &CacheArgs) -> anyhow::Result<Plugin> {
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

/// This user's cache of compiled plugins: `$HUME_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/hume` or `~/.cache/hume` (not created here).
pub(crate) fn user_cache_dir() -> Option<PathBuf> {
    std::env::var_os("HUME_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|base| base.join("hume"))
        })
}

/// The cache directory to use, if any (created here; unusable means none).
fn cache_dir(args: &CacheArgs) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    let dir = args.cache_dir.clone().or_else(user_cache_dir)?;
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

/// A library error as one anyhow message: their `Display` already includes
/// their cause, so walking the source chain too would repeat it.
pub(super) fn message(err: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{err}")
}
