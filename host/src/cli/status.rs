//! `hume status`: the projections as a table (or JSON), a pending
//! version as an indented row under its projection.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use hume::projection::ProjectionStatus;

use super::client::Client;
use super::output::{age, print_json};

/// Arguments of `hume status`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = COLUMNS)]
pub struct StatusArgs {
    /// One projection (default: all).
    pub name: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Refresh every SECONDS (default 2) until interrupted; on a terminal
    /// the table is redrawn in place.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<f64>,
}

/// The columns of the table, for `hume status --help`.
const COLUMNS: &str = "\
Columns:
  NAME      the projection; a version being built beside it (blue/green)
            shows as an indented `└ NAME (next)` row
  STATE     starting, catching-up, running, stopped or faulted
  OFFSET    every log position up to here has been examined: applied, or
            not for this projection (other streams, skipped events), so
            OFFSET + LAG = HEAD (`--json`: `scanned`; `offset` there is the
            position of the last event applied)
  HEAD      the position of the last event in the log
  LAG       log positions still to examine
  EV/S      events applied per second, recently
  SNAPSHOT  the offset of the last snapshot written, and its age
  PLUGIN    hash (12 digits), name and version of the running plugin
  SKIPPED   events not applied: `N unknown` kinds skipped by a --no-strict
            projection since the server started, and `skip P,Q` the
            positions stepped over with `hume skip` (kept until `reset`);
            `-` when none
  ERROR     the current error only: the fault (`at POSITION `KIND`:
            ...`) until resume, skip or reset, or another error (a failed
            snapshot write, a failed read of the log) until the projection
            moves on or writes a snapshot; `--json` keeps `last_error`

`hume status NAME` of a partitioned projection adds, under the table:
  partitions  count, how many hold a live instance now (the fold workers',
              one each while a page folds) and how many are hibernated
              (kept as snapshot bytes only), faulted ones
  workers     per worker since the server started: events folded, and
              events per second of the time it was busy
  slowest     the partitions that took the most fold time since the server
              started (at most 5), with that time
`--json` has them under `partitions` (`live_instances`, `hibernated`,
`workers_figures`, `slowest`).";

pub(super) async fn status(client: &Client, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let Some(seconds) = args.watch else {
        return once(client, &args).await;
    };
    anyhow::ensure!(
        seconds.is_finite() && seconds >= 0.1,
        "--watch takes a refresh interval in seconds of at least 0.1 (got {seconds})"
    );
    let terminal = std::io::stdout().is_terminal();
    loop {
        if terminal {
            // Home, then clear: the table is redrawn in place.
            print!("\x1b[H\x1b[2J");
        }
        once(client, &args).await?;
        if !terminal {
            println!();
        }
        std::io::stdout().flush()?;
        tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)).await;
    }
}

async fn once(client: &Client, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let list: Vec<ProjectionStatus> = match &args.name {
        Some(name) => vec![client.get_json(&["projections", name], &[]).await?],
        None => {
            #[derive(serde::Deserialize)]
            struct All {
                projections: Vec<ProjectionStatus>,
            }
            let all: All = client.get_json(&["projections"], &[]).await?;
            all.projections
        }
    };
    if args.json {
        let value = match &args.name {
            Some(_) => serde_json::to_value(&list[0])?,
            None => serde_json::to_value(&list)?,
        };
        return print_json(&value);
    }
    println!("{}", table(&list));
    if args.name.is_some() {
        if let Some(p) = list.first().and_then(|s| s.partitions.as_ref()) {
            println!("{}", super::partitions::status_lines(p));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(s: &ProjectionStatus, label: &str) -> Vec<String> {
    let mut snapshot = s
        .last_snapshot
        .map(|l| format!("{} ({} ago)", l.offset, age(l.age_ms)))
        .unwrap_or_else(|| "-".into());
    if s.snapshots_paused.is_some() {
        snapshot.push_str(" PAUSED: disk full");
    }
    let error = s.error.clone().unwrap_or_default();
    // One line, bounded: `--json` has the whole message.
    let mut error = error.lines().next().unwrap_or_default().to_string();
    if error.chars().count() > 160 {
        error = error.chars().take(157).collect::<String>() + "...";
    }
    vec![
        label.to_string(),
        s.state.to_string(),
        s.scanned.to_string(),
        s.head.to_string(),
        s.lag.to_string(),
        format!("{:.1}", s.events_per_sec),
        snapshot,
        format!(
            "{} {} {}",
            &s.plugin_hash[..s.plugin_hash.len().min(12)],
            s.plugin_name,
            s.plugin_version
        ),
        skipped(s),
        error,
    ]
}

/// The SKIPPED cell: `-`, `N unknown`, `skip P,Q` or both.
fn skipped(s: &ProjectionStatus) -> String {
    let mut parts = Vec::new();
    if s.skipped_unknown > 0 {
        parts.push(format!("{} unknown", s.skipped_unknown));
    }
    if !s.skipped_positions.is_empty() {
        let positions: Vec<String> = s.skipped_positions.iter().map(u64::to_string).collect();
        parts.push(format!("skip {}", positions.join(",")));
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

/// The status table; a pending version shows as an indented row under its
/// projection.
fn table(list: &[ProjectionStatus]) -> String {
    let header: Vec<String> = [
        "NAME", "STATE", "OFFSET", "HEAD", "LAG", "EV/S", "SNAPSHOT", "PLUGIN", "SKIPPED", "ERROR",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut rows = vec![header];
    for s in list {
        rows.push(row(s, &s.name));
        if let Some(p) = &s.pending {
            rows.push(row(p, &format!("  └ {} (next)", s.name)));
        }
    }
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if list.is_empty() {
        out.push_str("(no projections deployed: `hume deploy NAME PLUGIN.wasm --stream S`)\n");
    }
    out.trim_end().to_string()
}
