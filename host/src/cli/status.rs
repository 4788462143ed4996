//! `hume status`: the projections as a table (or JSON), a pending
//! version as an indented row under its projection.

use std::process::ExitCode;

use hume::projection::ProjectionStatus;

use super::client::Client;
use super::output::{age, print_json};

/// Arguments of `hume status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// One projection (default: all).
    pub name: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn status(client: &Client, args: StatusArgs) -> anyhow::Result<ExitCode> {
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
    let error = match (&s.fault, &s.last_error) {
        (Some(f), _) => format!("at {} `{}`: {}", f.position, f.kind, f.error),
        (None, Some(e)) => e.clone(),
        (None, None) => String::new(),
    };
    // One line, bounded: `--json` has the whole message.
    let mut error = error.lines().next().unwrap_or_default().to_string();
    if error.chars().count() > 160 {
        error = error.chars().take(157).collect::<String>() + "...";
    }
    vec![
        label.to_string(),
        s.state.to_string(),
        s.offset.to_string(),
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
        format!("{}+{}", s.skipped_unknown, s.skipped_positions.len()),
        error,
    ]
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
