//! Projection commands: deploy/undeploy, reads (`state`, `snapshot`,
//! `query`), `catch-up`, `take-snapshot`, `status` and the lifecycle
//! commands (`stop`, `start`, `reset`, `resume`, `skip`), all over the HTTP
//! API of `hume serve` (see `hume::api::projections`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Args, Subcommand};
use hume::projection::{
    DeployOutcome, ProjectionOptions, ProjectionStatus, SnapshotStoreKind, StartFrom,
};
use reqwest::Method;

use super::client::Client;
use super::Context;

/// Commands of this group.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy a plugin as a live projection (or a new version of one:
    /// built beside the running one, swapped in when caught up).
    Deploy(DeployArgs),
    /// Stop and remove a projection with its snapshots.
    Undeploy(NameArg),
    /// Print a projection's state as JSON (consistent unless --dirty).
    State(StateArgs),
    /// Print `{"offset": N, "state": ...}` (consistent unless --dirty).
    Snapshot(SnapshotArgs),
    /// Ask the plugin's `query` export a question (JSON by convention).
    Query(QueryArgs),
    /// Make a projection look at the log now; --sync waits and prints the snapshot.
    CatchUp(CatchUpArgs),
    /// Persist a snapshot now; prints its offset.
    TakeSnapshot(NameArg),
    /// Show projections: state, offset, head, lag, events/s, snapshot, plugin, faults.
    Status(StatusArgs),
    /// Stop applying events (stays stopped across restarts).
    Stop(NameArg),
    /// Start a stopped projection.
    Start(NameArg),
    /// Drop a projection's state and snapshots and rebuild it from its start.
    Reset(NameArg),
    /// Retry the event a faulted projection stopped at.
    Resume(NameArg),
    /// Step over the event a faulted projection stopped at (recorded).
    Skip(NameArg),
}

/// Just a projection name.
#[derive(Debug, Args)]
pub struct NameArg {
    /// The projection.
    pub name: String,
}

/// Arguments of `hume deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Projection name (A-Z a-z 0-9 . _ -).
    pub name: String,
    /// The plugin: a WebAssembly component of the `hume:projection` world.
    pub plugin: PathBuf,
    /// A stream to follow; repeat for several; `category-*` for a category,
    /// `*` for every stream.
    #[arg(long = "stream", required = true)]
    pub streams: Vec<String>,
    /// Persist a snapshot every N applied events (0: never by count).
    #[arg(long, default_value_t = 100)]
    pub snapshot_every: u64,
    /// Persist a snapshot MS after the last one when the state changed (0: never by time).
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub snapshot_after: u64,
    /// Poll the log every MS even without a wake-up.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub catch_up_after: u64,
    /// Skip (and count) unknown event kinds instead of faulting.
    #[arg(long)]
    pub no_strict: bool,
    /// Where snapshots go: rocksdb (durable) or memory (lost on restart).
    #[arg(long, default_value = "rocksdb")]
    pub snapshot_store: SnapshotStoreKind,
    /// Where a new projection starts: 0 (the first event) or end (after the current head).
    #[arg(long, default_value = "0")]
    pub start_from: StartFrom,
    /// Wall time one plugin call may take, ms.
    #[arg(long, value_name = "MS")]
    pub call_timeout: Option<u64>,
    /// Linear memory the plugin may use, bytes (suffixes K, M, G allowed).
    #[arg(long, value_parser = parse_bytes)]
    pub max_memory: Option<u64>,
    /// Largest state snapshot, bytes (suffixes K, M, G allowed).
    #[arg(long, value_parser = parse_bytes)]
    pub max_snapshot: Option<u64>,
    /// Events per batch handed to the plugin.
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// New version only: start from the running version's snapshot instead
    /// of rebuilding from the start.
    #[arg(long)]
    pub keep_state: bool,
}

/// `64M`, `1G`, `65536`.
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or(())
        .map_err(|_| format!("`{s}` is not a size: use bytes, or a number with K, M or G"))
}

/// Arguments of `hume state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The projection.
    pub name: String,
    /// Answer at once with the current state, without catching up first.
    #[arg(long)]
    pub dirty: bool,
    /// Print only this part of a JSON state (a JSON pointer: /accounts/42).
    #[arg(long)]
    pub pointer: Option<String>,
    /// How long a consistent read may wait, ms.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout: u64,
}

/// Arguments of `hume snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The projection.
    pub name: String,
    /// Answer at once, without catching up first.
    #[arg(long)]
    pub dirty: bool,
    /// How long a consistent read may wait, ms.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout: u64,
}

/// Arguments of `hume query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The projection.
    pub name: String,
    /// The request, e.g. '{"account": "42"}'.
    pub request: String,
    /// Answer at once, without catching up first.
    #[arg(long)]
    pub dirty: bool,
    /// How long a consistent query may wait, ms.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout: u64,
}

/// Arguments of `hume catch-up`.
#[derive(Debug, Args)]
pub struct CatchUpArgs {
    /// The projection.
    pub name: String,
    /// Wait until caught up with the current head and print the snapshot.
    #[arg(long)]
    pub sync: bool,
    /// How long --sync may wait, ms.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub timeout: u64,
}

/// Arguments of `hume status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One projection (default: all).
    pub name: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run one command of this group.
pub async fn run(cmd: Command, ctx: &Context) -> anyhow::Result<ExitCode> {
    let client = Client::new(ctx)?;
    match cmd {
        Command::Deploy(args) => deploy(&client, args).await,
        Command::Undeploy(a) => {
            let _: serde_json::Value = client
                .decode(
                    client
                        .send(client.request(Method::DELETE, &["projections", &a.name]))
                        .await?,
                )
                .await?;
            println!("undeployed {}", a.name);
            Ok(ExitCode::SUCCESS)
        }
        Command::State(a) => {
            let mut q = vec![
                ("dirty", a.dirty.to_string()),
                ("timeout_ms", a.timeout.to_string()),
            ];
            if let Some(p) = a.pointer {
                q.push(("pointer", p));
            }
            let state: serde_json::Value = client
                .get_json(&["projections", &a.name, "state"], &q)
                .await?;
            print_json(&state)
        }
        Command::Snapshot(a) => {
            let q = [
                ("dirty", a.dirty.to_string()),
                ("timeout_ms", a.timeout.to_string()),
            ];
            let snap: serde_json::Value = client
                .get_json(&["projections", &a.name, "snapshot"], &q)
                .await?;
            print_json(&snap)
        }
        Command::Query(a) => {
            let mut url = client.endpoint(&["projections", &a.name, "query"]);
            url.query_pairs_mut()
                .append_pair("dirty", &a.dirty.to_string())
                .append_pair("timeout_ms", &a.timeout.to_string());
            let response = client
                .send(
                    client
                        .request_url(Method::POST, url)
                        .body(a.request.into_bytes()),
                )
                .await?;
            let bytes = response.bytes().await.context("reading the answer")?;
            match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(v) => print_json(&v),
                Err(_) => {
                    println!("{}", String::from_utf8_lossy(&bytes));
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::CatchUp(a) => {
            let mut url = client.endpoint(&["projections", &a.name, "catch-up"]);
            url.query_pairs_mut()
                .append_pair("sync", &a.sync.to_string())
                .append_pair("timeout_ms", &a.timeout.to_string());
            let answer: serde_json::Value = client
                .decode(client.send(client.request_url(Method::POST, url)).await?)
                .await?;
            if a.sync {
                print_json(&answer)
            } else {
                eprintln!("catch-up requested for {}", a.name);
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::TakeSnapshot(a) => {
            let answer: serde_json::Value = client
                .post_bytes(&["projections", &a.name, "take-snapshot"], Vec::new())
                .await?;
            print_json(&answer)
        }
        Command::Status(a) => status(&client, a).await,
        Command::Stop(a) => lifecycle(&client, &a.name, "stop").await,
        Command::Start(a) => lifecycle(&client, &a.name, "start").await,
        Command::Reset(a) => lifecycle(&client, &a.name, "reset").await,
        Command::Resume(a) => lifecycle(&client, &a.name, "resume").await,
        Command::Skip(a) => lifecycle(&client, &a.name, "skip").await,
    }
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

async fn lifecycle(client: &Client, name: &str, what: &str) -> anyhow::Result<ExitCode> {
    let answer: serde_json::Value = client
        .post_bytes(&["projections", name, what], Vec::new())
        .await?;
    match answer.get("skipped").and_then(|s| s.as_u64()) {
        Some(p) => println!("{name}: skipped the event at position {p}"),
        None => println!("{name}: {what} done"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn deploy(client: &Client, args: DeployArgs) -> anyhow::Result<ExitCode> {
    let wasm = std::fs::read(&args.plugin)
        .with_context(|| format!("cannot read the plugin {}", args.plugin.display()))?;
    let mut options = ProjectionOptions {
        snapshot_every: args.snapshot_every,
        snapshot_after_ms: args.snapshot_after,
        catch_up_after_ms: args.catch_up_after,
        strict: !args.no_strict,
        snapshot_store: args.snapshot_store,
        start_from: args.start_from,
        ..ProjectionOptions::default()
    };
    if let Some(v) = args.call_timeout {
        options.call_timeout_ms = v;
    }
    if let Some(v) = args.max_memory {
        options.max_memory_bytes = v;
    }
    if let Some(v) = args.max_snapshot {
        options.max_snapshot_bytes = v;
    }
    if let Some(v) = args.batch_size {
        options.batch_size = v;
    }
    let body = serde_json::json!({
        "name": args.name,
        "plugin": base64::engine::general_purpose::STANDARD.encode(&wasm),
        "streams": args.streams,
        "options": options,
        "keep_state": args.keep_state,
    });
    let outcome: DeployOutcome = client
        .post_json(&["projections"], &body)
        .await
        .with_context(|| format!("deploying {} as `{}`", args.plugin.display(), args.name))?;
    if outcome.status == "building" {
        println!(
            "{}: building {} {} ({}) beside the running version; it takes over when caught up",
            outcome.name,
            outcome.plugin_name,
            outcome.plugin_version,
            &outcome.plugin_hash[..12]
        );
    } else {
        println!(
            "{}: deployed {} {} ({})",
            outcome.name,
            outcome.plugin_name,
            outcome.plugin_version,
            &outcome.plugin_hash[..12]
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(client: &Client, args: StatusArgs) -> anyhow::Result<ExitCode> {
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

fn age(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m", ms / 60_000),
        _ => format!("{}h", ms / 3_600_000),
    }
}

fn row(s: &ProjectionStatus, label: &str) -> Vec<String> {
    let snapshot = s
        .last_snapshot
        .map(|l| format!("{} ({} ago)", l.offset, age(l.age_ms)))
        .unwrap_or_else(|| "-".into());
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
