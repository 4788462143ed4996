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
  NODE      cluster mode: the node that runs it (any node lists every
            projection, asking the others for their figures); `-` on a
            server without --cluster. A projection no node answered for
            (moving between nodes, its node unreachable) shows STATE
            `unavailable` and why under ERROR
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

/// A row of `GET /projections`: a status and, in cluster mode, the node
/// that runs it.
#[derive(Debug, serde::Deserialize)]
struct Row {
    #[serde(flatten)]
    status: ProjectionStatus,
    #[serde(default)]
    node: Option<String>,
}

/// A deployed projection no node gave figures for (cluster mode).
#[derive(Debug, serde::Deserialize)]
struct Unavailable {
    name: String,
    node: Option<String>,
    reason: String,
}

async fn once(client: &Client, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let (answer, list, unavailable) = match &args.name {
        Some(name) => {
            let v: serde_json::Value = client.get_json(&["projections", name], &[]).await?;
            let row: Row = serde_json::from_value(v.clone())?;
            (v, vec![row], Vec::new())
        }
        None => {
            #[derive(serde::Deserialize)]
            struct All {
                projections: Vec<Row>,
                #[serde(default)]
                unavailable: Vec<Unavailable>,
            }
            let v: serde_json::Value = client.get_json(&["projections"], &[]).await?;
            let all: All = serde_json::from_value(v.clone())?;
            (v, all.projections, all.unavailable)
        }
    };
    if args.json {
        let value = match &args.name {
            Some(_) => answer,
            // The statuses as an array (each with `node` in cluster mode);
            // the projections no node answered for go to stderr.
            None => {
                for u in &unavailable {
                    eprintln!("{}: unavailable: {}", u.name, u.reason);
                }
                answer["projections"].clone()
            }
        };
        return print_json(&value);
    }
    println!("{}", table(&list, &unavailable));
    if args.name.is_some() {
        if let Some(p) = list.first().and_then(|r| r.status.partitions.as_ref()) {
            println!("{}", super::partitions::status_lines(p));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(s: &ProjectionStatus, label: &str, node: &str) -> Vec<String> {
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
        node.to_string(),
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
/// projection, a projection no node answered for as a `-` row with why.
fn table(list: &[Row], unavailable: &[Unavailable]) -> String {
    let header: Vec<String> = [
        "NAME", "NODE", "STATE", "OFFSET", "HEAD", "LAG", "EV/S", "SNAPSHOT", "PLUGIN", "SKIPPED",
        "ERROR",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut named: Vec<(&str, Vec<Vec<String>>)> = Vec::new();
    for r in list {
        let s = &r.status;
        let node = r.node.as_deref().unwrap_or("-");
        let mut rows = vec![row(s, &s.name, node)];
        if let Some(p) = &s.pending {
            rows.push(row(p, &format!("  └ {} (next)", s.name), node));
        }
        named.push((&s.name, rows));
    }
    for u in unavailable {
        let mut cells = vec!["-".to_string(); header.len()];
        cells[0] = u.name.clone();
        cells[1] = u.node.clone().unwrap_or_else(|| "-".into());
        cells[2] = "unavailable".into();
        cells[header.len() - 1] = u.reason.clone();
        named.push((&u.name, vec![cells]));
    }
    named.sort_by(|a, b| a.0.cmp(b.0));
    let mut rows = vec![header];
    rows.extend(named.into_iter().flat_map(|(_, r)| r));
    let mut out = super::output::columns(&rows);
    if list.is_empty() && unavailable.is_empty() {
        out.push_str("(no projections deployed: `hume deploy NAME PLUGIN.wasm --stream S`)\n");
    }
    out.trim_end().to_string()
}
