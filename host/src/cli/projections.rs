//! Projection commands: deploy/undeploy, reads (`state`, `snapshot`,
//! `query`), `catch-up`, `take-snapshot`, `status` and the lifecycle
//! commands (`stop`, `start`, `reset`, `resume`, `skip`), all over the HTTP
//! API of `hume serve` (see `hume::api::projections`).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use reqwest::Method;

use super::client::Client;
use super::output::print_json;
use super::Context;

/// Commands of this group.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy a plugin as a live projection (or a new version of one:
    /// built beside the running one, swapped in when caught up).
    ///
    /// Deploying the plugin a projection already runs with other options:
    /// - limits (--max-memory, --call-timeout, --max-snapshot), the snapshot
    ///   cadence and store (--snapshot-every, --snapshot-after,
    ///   --snapshot-store, --snapshot-history), --batch-size and
    ///   --catch-up-after apply in place, at once: the state and offset are
    ///   kept (new limits take effect on a new instance: a faulted projection
    ///   gets them at `hume resume`);
    /// - --stream, --start-from and --no-strict change what the fold computes:
    ///   a new version is built beside the running one and swapped in when
    ///   caught up, as for a new plugin.
    ///
    /// The same plugin with the same options is refused ("nothing changed").
    /// A new version starts without the running one's `hume skip` positions
    /// unless --keep-skips is given.
    #[command(verbatim_doc_comment)]
    Deploy(super::deploy::DeployArgs),
    /// Stop and remove a projection with its snapshots.
    Undeploy(NameArg),
    /// Print a projection's state as JSON (consistent unless --dirty;
    /// --at N: as it was after position N).
    State(StateArgs),
    /// Print `{"offset": N, "state": ...}` (consistent unless --dirty;
    /// --at N: as it was after position N).
    Snapshot(SnapshotArgs),
    /// Ask the plugin's `query` export a question (JSON by convention;
    /// --at N: as it would have answered after position N).
    Query(QueryArgs),
    /// Make a projection look at the log now; --sync waits and prints the snapshot.
    CatchUp(CatchUpArgs),
    /// Persist a snapshot now; prints its offset.
    TakeSnapshot(NameArg),
    /// Show projections: state, offset, head, lag, events/s, snapshot,
    /// plugin, skipped events and the current error (`--help` explains each
    /// column; `--watch` refreshes).
    Status(super::status::StatusArgs),
    /// List the live nodes of a cluster: id, URL, projections each runs,
    /// live plugin instances and load (events applied per second).
    Nodes(super::nodes::NodesArgs),
    /// Stop applying events (stays stopped across restarts).
    Stop(NameArg),
    /// Start a stopped projection.
    Start(NameArg),
    /// Show a projection's recent log lines: what its plugin logged or
    /// printed, and its lifecycle (ready, caught up, snapshots, faults).
    Logs(super::logs::LogsArgs),
    /// Drop a projection's state and snapshots and rebuild it from its start
    /// (--partition KEY: only that partition, from the log).
    ///
    /// The positions stepped over with `hume skip` are forgotten (the rebuild
    /// applies them again) unless --keep-skips is given.
    Reset(ResetArgs),
    /// Retry the event a faulted projection stopped at (--partition KEY: a
    /// faulted partition, which then folds its events up to the others).
    Resume(RepairArgs),
    /// Step over the event a faulted projection stopped at (recorded;
    /// --partition KEY: the event a faulted partition stopped at).
    Skip(RepairArgs),
    /// List the partitions of a partitioned projection, by key, with their
    /// last position and event count (paged; --faulted: only faulted ones).
    Partitions(super::partitions::PartitionsArgs),
}

/// `hume reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The projection.
    pub name: String,
    /// Only this partition of a partitioned projection (refolded from the
    /// log up to the others; the skips of its events are forgotten unless
    /// --keep-skips).
    #[arg(long, value_name = "KEY")]
    pub partition: Option<String>,
    /// Keep stepping over the positions skipped so far (with --partition:
    /// those of that partition's events).
    #[arg(long)]
    pub keep_skips: bool,
}

/// Just a projection name.
#[derive(Debug, Args)]
pub struct NameArg {
    /// The projection.
    pub name: String,
}

/// A projection name and, for a partitioned projection, one partition.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The projection.
    pub name: String,
    /// Only this partition of a partitioned projection.
    #[arg(long, value_name = "KEY")]
    pub partition: Option<String>,
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
    #[command(flatten)]
    pub at: AtArgs,
    /// Partitioned projections: the state of this partition (with --at N:
    /// after its events up to N, folded from the log in a separate
    /// instance).
    #[arg(long, value_name = "KEY", conflicts_with = "all")]
    pub partition: Option<String>,
    /// Partitioned projections: every partition, one JSON line each
    /// (`{"partition": KEY, "state": ...}`).
    #[arg(long, conflicts_with_all = ["pointer", "at"])]
    pub all: bool,
}

/// Time travel: read as of a log position.
#[derive(Debug, Args)]
pub struct AtArgs {
    /// The state as it was after every event up to and including this log
    /// position (folded in a separate instance; the live projection is not
    /// touched).
    #[arg(long, value_name = "POSITION", allow_negative_numbers = true)]
    pub at: Option<String>,
    /// With --at: fail at once (409) when the projection has not reached the
    /// position yet, instead of waiting for it.
    #[arg(long, requires = "at")]
    pub no_wait: bool,
}

impl AtArgs {
    fn push(&self, q: &mut Vec<(&'static str, String)>) {
        if let Some(at) = &self.at {
            q.push(("at", at.clone()));
            q.push(("no_wait", self.no_wait.to_string()));
        }
    }
}

/// Arguments of `hume snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The projection.
    pub name: String,
    /// Partitioned projections: this partition (`offset` is the position of
    /// its last event).
    #[arg(long, value_name = "KEY")]
    pub partition: Option<String>,
    /// Answer at once, without catching up first.
    #[arg(long)]
    pub dirty: bool,
    /// How long a consistent read may wait, ms.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout: u64,
    #[command(flatten)]
    pub at: AtArgs,
}

/// Arguments of `hume query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The projection.
    pub name: String,
    /// The request, e.g. '{"account": "42"}'.
    pub request: String,
    /// Partitioned projections: ask over this partition's state.
    #[arg(long, value_name = "KEY")]
    pub partition: Option<String>,
    /// Answer at once, without catching up first.
    #[arg(long)]
    pub dirty: bool,
    /// How long a consistent query may wait, ms.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout: u64,
    #[command(flatten)]
    pub at: AtArgs,
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

/// Run one command of this group.
pub async fn run(cmd: Command, ctx: &Context) -> anyhow::Result<ExitCode> {
    let client = Client::new(ctx)?;
    match cmd {
        Command::Deploy(args) => super::deploy::deploy(&client, args).await,
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
        Command::State(a) if a.all => {
            super::partitions::print_all(&client, &a.name, a.dirty, a.timeout).await
        }
        Command::State(a) => {
            let mut q = vec![
                ("dirty", a.dirty.to_string()),
                ("timeout_ms", a.timeout.to_string()),
            ];
            if let Some(p) = a.pointer {
                q.push(("pointer", p));
            }
            if let Some(k) = a.partition {
                q.push(("partition", k));
            }
            a.at.push(&mut q);
            let state: serde_json::Value = client
                .get_json(&["projections", &a.name, "state"], &q)
                .await?;
            print_json(&state)
        }
        Command::Snapshot(a) => {
            let mut q = vec![
                ("dirty", a.dirty.to_string()),
                ("timeout_ms", a.timeout.to_string()),
            ];
            if let Some(k) = a.partition {
                q.push(("partition", k));
            }
            a.at.push(&mut q);
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
            if let Some(k) = &a.partition {
                url.query_pairs_mut().append_pair("partition", k);
            }
            let mut at = Vec::new();
            a.at.push(&mut at);
            for (k, v) in at {
                url.query_pairs_mut().append_pair(k, &v);
            }
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
        Command::Status(a) => super::status::status(&client, a).await,
        Command::Nodes(a) => super::nodes::nodes(&client, a).await,
        Command::Logs(a) => super::logs::logs(&client, a).await,
        Command::Stop(a) => lifecycle(&client, &a.name, "stop").await,
        Command::Start(a) => lifecycle(&client, &a.name, "start").await,
        Command::Reset(a) if a.partition.is_some() => {
            let kept = a.keep_skips;
            let repair = RepairArgs {
                name: a.name,
                partition: a.partition,
            };
            super::partitions::repair(&client, repair, "reset", kept).await
        }
        Command::Reset(a) => {
            let mut url = client.endpoint(&["projections", &a.name, "reset"]);
            if a.keep_skips {
                url.query_pairs_mut().append_pair("keep_skips", "true");
            }
            let request = client.request_url(Method::POST, url);
            let _: serde_json::Value = client.decode(client.send(request).await?).await?;
            let kept = if a.keep_skips { ", skips kept" } else { "" };
            println!("{}: reset done{kept}", a.name);
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume(a) => super::partitions::repair(&client, a, "resume", false).await,
        Command::Skip(a) => super::partitions::repair(&client, a, "skip", false).await,
        Command::Partitions(a) => super::partitions::list(&client, a).await,
    }
}

pub(super) async fn lifecycle(client: &Client, name: &str, what: &str) -> anyhow::Result<ExitCode> {
    let answer: serde_json::Value = client
        .post_bytes(&["projections", name, what], Vec::new())
        .await?;
    match answer.get("skipped").and_then(|s| s.as_u64()) {
        Some(p) => println!("{name}: skipped the event at position {p}"),
        None => println!("{name}: {what} done"),
    }
    Ok(ExitCode::SUCCESS)
}
