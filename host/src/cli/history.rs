//! History commands: the retained snapshots of a projection (`snapshots`)
//! and what a range of events did to its state (`diff`). The `--at` reads
//! are options of `state`, `snapshot` and `query`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use hume::snapshot::{now_ms, SnapshotMeta};

use super::client::Client;
use super::output::{age, print_json};
use super::Context;

/// Commands of this group.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the snapshots retained for time travel: offset, size, age.
    Snapshots(SnapshotsArgs),
    /// Print the JSON Patch (RFC 6902) from the state at --from to the
    /// state at --to; --events adds the events in between.
    Diff(DiffArgs),
}

/// Arguments of `hume snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// The projection.
    pub name: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `hume diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The projection.
    pub name: String,
    /// The first log position.
    #[arg(long, value_name = "POSITION", allow_negative_numbers = true)]
    pub from: String,
    /// The second log position.
    #[arg(long, value_name = "POSITION", allow_negative_numbers = true)]
    pub to: String,
    /// Also list the events of the projection's streams in between: prints
    /// `{"patch": [...], "events": [...], "truncated": bool}`.
    #[arg(long)]
    pub events: bool,
    /// Fail at once (409) when the projection has not reached a position yet.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for a position, ms.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout: u64,
}

/// Run one command of this group.
pub async fn run(cmd: Command, ctx: &Context) -> anyhow::Result<ExitCode> {
    let client = Client::new(ctx)?;
    match cmd {
        Command::Snapshots(a) => snapshots(&client, a).await,
        Command::Diff(a) => {
            let q = [
                ("from", a.from),
                ("to", a.to),
                ("events", a.events.to_string()),
                ("no_wait", a.no_wait.to_string()),
                ("timeout_ms", a.timeout.to_string()),
            ];
            let diff: serde_json::Value = client
                .get_json(&["projections", &a.name, "diff"], &q)
                .await?;
            if a.events {
                print_json(&serde_json::json!({
                    "patch": diff["patch"],
                    "events": diff["events"],
                    "truncated": diff["truncated"],
                }))
            } else {
                print_json(&diff["patch"])
            }
        }
    }
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Listing {
    snapshots: Vec<SnapshotMeta>,
    retention: String,
    replay_bound: Option<u64>,
}

async fn snapshots(client: &Client, a: SnapshotsArgs) -> anyhow::Result<ExitCode> {
    let listing: Listing = client
        .get_json(&["projections", &a.name, "snapshots"], &[])
        .await?;
    if a.json {
        return print_json(&serde_json::to_value(&listing)?);
    }
    let now = now_ms();
    println!(
        "{}: {} snapshot(s) retained, history {}{}",
        a.name,
        listing.snapshots.len(),
        listing.retention,
        listing
            .replay_bound
            .map(|b| format!(" (any position is at most {b} positions from one)"))
            .unwrap_or_default()
    );
    println!("{:>12}  {:>12}  {:>10}  AGE", "OFFSET", "SCANNED", "SIZE");
    for s in &listing.snapshots {
        println!(
            "{:>12}  {:>12}  {:>10}  {}",
            s.offset,
            s.scanned,
            s.size,
            age(now.saturating_sub(s.taken_at))
        );
    }
    Ok(ExitCode::SUCCESS)
}
