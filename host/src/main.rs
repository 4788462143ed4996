//! The `hume` binary: the command line over the `hume` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
