//! `hume nodes`: the live nodes of a cluster, with what each runs and its
//! load, as a table (or JSON).

use std::process::ExitCode;

use serde::Deserialize;

use super::client::Client;
use super::output::print_json;

/// Arguments of `hume nodes`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = COLUMNS)]
pub struct NodesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

const COLUMNS: &str = "\
Columns (as each node last reported, every third of the lease TTL):
  NODE         the node id (`hume serve --node-id`); `*` marks the node asked
  URL          where its API answers (`--advertise`)
  PROJECTIONS  projections it runs (holds the lease of)
  LIVE         plugin instances it keeps live
  EV/S         its load: events its projections applied per second since
               its previous report

A server started without --cluster is no cluster: it says so, and runs
every projection itself.";

#[derive(Debug, Deserialize)]
struct Node {
    id: String,
    url: String,
    projections: usize,
    #[serde(default)]
    live_instances: usize,
    #[serde(default)]
    events_per_sec: f64,
}

#[derive(Debug, Deserialize)]
struct Nodes {
    cluster: bool,
    #[serde(default)]
    node: Option<String>,
    nodes: Vec<Node>,
}

pub(super) async fn nodes(client: &Client, args: NodesArgs) -> anyhow::Result<ExitCode> {
    let answer: serde_json::Value = client.get_json(&["nodes"], &[]).await?;
    if args.json {
        return print_json(&answer);
    }
    let nodes: Nodes = serde_json::from_value(answer)?;
    if !nodes.cluster {
        println!(
            "this server is not part of a cluster (`hume serve` without --cluster): it runs \
             every projection itself; see `hume status`"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![["NODE", "URL", "PROJECTIONS", "LIVE", "EV/S"].map(String::from)];
    for n in &nodes.nodes {
        let me = if nodes.node.as_deref() == Some(n.id.as_str()) {
            " *"
        } else {
            ""
        };
        rows.push([
            format!("{}{me}", n.id),
            n.url.clone(),
            n.projections.to_string(),
            n.live_instances.to_string(),
            format!("{:.1}", n.events_per_sec),
        ]);
    }
    print!("{}", super::output::columns(&rows));
    if nodes.nodes.is_empty() {
        println!(
            "(no live node in the registry yet: nodes register within a third of the lease TTL)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
