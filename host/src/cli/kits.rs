//! `hume build` and `hume new`: the language kits' side of the command line.
//!
//! `hume build DIR` recognises a plugin project's language from its files and
//! runs that language's toolchain to produce a component of the
//! `hume:projection` world; `hume new NAME --lang L` scaffolds a project that
//! builds as is and has a passing test in the language's own test runner.
//! The WIT contract, the Python/JS/C kits and the templates are embedded in
//! the binary, so both commands work outside the Hume repository.

use std::process::ExitCode;

use clap::Subcommand;

use super::Context;

mod assets;
mod build;
mod new;
mod toolchain;

/// Commands of this group.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a plugin project (Rust, Python, JavaScript or C) into a
    /// WebAssembly component; prints the path of the component.
    Build(build::BuildArgs),
    /// Create a new plugin project that builds with `hume build` and has a
    /// passing test in its language's test runner.
    New(new::NewArgs),
}

/// Run one command of this group.
pub async fn run(cmd: Command, _ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Build(args) => tokio::task::spawn_blocking(move || build::run(args)).await?,
        Command::New(args) => tokio::task::spawn_blocking(move || new::run(args)).await?,
    }
}
