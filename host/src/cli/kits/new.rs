//! `hume new NAME --lang L`: scaffold a plugin project.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::build::Language;

/// Arguments of `hume new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Name of the projection; also the project's directory (unless --dir).
    name: String,
    /// The language of the plugin.
    #[arg(long, value_enum)]
    lang: Language,
    /// Where to create the project (default: ./NAME).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Run `hume new`.
pub fn run(args: NewArgs) -> anyhow::Result<std::process::ExitCode> {
    let _ = (&args.name, args.lang, &args.dir);
    bail!("`hume new` is not implemented yet")
}
