//! `hume serve`: the daemon (placeholder until the event-log issue lands).

use std::process::ExitCode;

/// Arguments of `hume serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Run the daemon until SIGTERM / Ctrl-C.
pub async fn run(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hume serve` is not built yet")
}
