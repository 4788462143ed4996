//! The `hume` command line: clap commands that either talk to a running
//! `hume serve` over HTTP or work offline on plugin files.
//!
//! Each group of commands lives in its own module with its own clap enum,
//! flattened into [`Command`] here.

use std::process::ExitCode;

use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use hume::journal::capture::JournalLayer;
use hume::journal::Journals;

mod backend;
pub mod client;
mod deploy;
mod deploy_wait;
mod events;
mod follows;
mod heap;
mod history;
mod kits;
mod logs;
mod nodes;
mod offline;
mod output;
mod partitions;
mod projections;
mod serve;
mod status;

/// Default address of `hume serve`.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7171";

#[derive(Debug, Parser)]
#[command(
    name = "hume",
    version,
    about = "Event-sourced projections as sandboxed WebAssembly components"
)]
struct Cli {
    /// Address of the `hume serve` to talk to; only for commands that talk
    /// to a server.
    #[arg(long, env = "HUME_URL", default_value = DEFAULT_URL, global = true)]
    url: String,

    /// Token to send to a `hume serve` that requires one (`Authorization:
    /// Bearer TOKEN`); only for commands that talk to a server.
    #[arg(long, env = "HUME_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Hume daemon: the event log, live projections, the HTTP API and
    /// the operator web UI (open http://ADDRESS/ui/ in a browser).
    Serve(serve::ServeArgs),
    #[command(flatten)]
    Offline(offline::Command),
    #[command(flatten)]
    Events(events::Command),
    #[command(flatten)]
    Projections(projections::Command),
    #[command(flatten)]
    History(history::Command),
    #[command(flatten)]
    Kits(kits::Command),
    /// Print shell completions for hume, e.g. `hume completions bash >
    /// ~/.local/share/bash-completion/completions/hume`.
    Completions {
        /// The shell: bash, elvish, fish, powershell or zsh.
        shell: clap_complete::Shell,
    },
}

/// What every command gets besides its own arguments.
#[derive(Debug, Clone)]
pub struct Context {
    /// Base URL of the `hume serve` HTTP API.
    pub url: String,
    /// Bearer token for the server, if it requires one.
    pub token: Option<String>,
}

/// Parse the command line, run the command, and turn its outcome into an
/// exit code (errors are printed with their whole chain of causes).
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let talks_to_a_server = matches!(
        cli.command,
        Command::Events(_) | Command::Projections(_) | Command::History(_)
    );
    for flag in ["url", "token"] {
        let given = matches.value_source(flag) == Some(clap::parser::ValueSource::CommandLine);
        if given && !talks_to_a_server {
            let what = if flag == "url" {
                "the address of the server a client talks to"
            } else {
                "what a client sends to a server"
            };
            eprintln!(
                "error: --{flag} is {what}, and this command talks to none{}",
                match (flag, matches!(cli.command, Command::Serve(_))) {
                    ("token", true) => {
                        "; to make `hume serve` require a token, use --auth-token-file FILE or \
                         the HUME_AUTH_TOKEN environment variable"
                    }
                    ("url", true) => "; to choose where `hume serve` listens, use --listen ADDR",
                    _ => "",
                }
            );
            return ExitCode::from(2);
        }
    }
    let ctx = Context {
        url: cli.url.trim_end_matches('/').to_string(),
        token: cli.token.filter(|t| !t.is_empty()),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Offline(cmd) => offline::run(cmd, &ctx).await,
            Command::Events(cmd) => events::run(cmd, &ctx).await,
            Command::Projections(cmd) => projections::run(cmd, &ctx).await,
            Command::History(cmd) => history::run(cmd, &ctx).await,
            Command::Kits(cmd) => kits::run(cmd, &ctx).await,
            Command::Completions { shell } => {
                clap_complete::generate(shell, &mut Cli::command(), "hume", &mut std::io::stdout());
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Install the `tracing` subscriber writing to stderr. `default` is the
/// filter used when `RUST_LOG` is not set (e.g. `warn` for client commands,
/// `info` for the server).
pub fn init_tracing(default: &str) {
    init_tracing_with(default, None);
}

/// [`init_tracing`], and for `hume serve` also the layer that keeps each
/// projection's log lines for `hume logs` (under its own filter: `RUST_LOG`
/// governs only what the server prints).
pub fn init_tracing_with(default: &str, journals: Option<Arc<Journals>>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal: logs sent to a file or a collector stay
    // plain text.
    let printed = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter);
    let kept = journals.map(|j| JournalLayer::new(j).with_filter(JournalLayer::filter()));
    let _ = tracing_subscriber::registry()
        .with(printed)
        .with(kept)
        .try_init();
}
