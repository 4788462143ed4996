//! `hume` commands: projections (placeholder until its issue lands).

use std::process::ExitCode;

use clap::Subcommand;

use super::Context;

/// Commands of this group.
#[derive(Debug, Subcommand)]
pub enum Command {}

/// Run one command of this group.
pub async fn run(cmd: Command, _ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {}
}
