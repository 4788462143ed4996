//! Partitioned projections on the command line: `hume partitions NAME`
//! (a paged listing) and `hume state NAME --all` (every partition's state,
//! streamed as NDJSON).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use hume::projection::PartitionPage;
use reqwest::Method;

use super::client::Client;

/// Arguments of `hume partitions`.
#[derive(Debug, Args)]
pub struct PartitionsArgs {
    /// The partitioned projection.
    pub name: String,
    /// Only keys starting with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only faulted partitions, with the position, kind and error.
    #[arg(long)]
    pub faulted: bool,
    /// Print one JSON object per partition (NDJSON) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many partitions (default: all, fetched in pages).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Partitions fetched per request.
    #[arg(long, default_value_t = 1000)]
    pub page: usize,
}

/// `hume partitions NAME`: every partition (or those asked for), by key,
/// with its last position and event count.
pub async fn list(client: &Client, args: PartitionsArgs) -> anyhow::Result<ExitCode> {
    let mut after: Option<String> = None;
    let mut printed = 0usize;
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(
            out,
            "{:<40} {:>12} {:>10} {:>10}  FAULT",
            "PARTITION", "LAST", "EVENTS", "SIZE"
        )?;
    }
    loop {
        let mut q = vec![
            ("limit", args.page.to_string()),
            ("faulted", args.faulted.to_string()),
        ];
        if let Some(p) = &args.prefix {
            q.push(("prefix", p.clone()));
        }
        if let Some(a) = &after {
            q.push(("after", a.clone()));
        }
        let page: PartitionPage = client
            .get_json(&["projections", &args.name, "partitions"], &q)
            .await
            .with_context(|| format!("listing the partitions of `{}`", args.name))?;
        for p in &page.partitions {
            if args.limit.is_some_and(|l| printed >= l) {
                return Ok(ExitCode::SUCCESS);
            }
            if args.json {
                writeln!(out, "{}", serde_json::to_string(p)?)?;
            } else {
                let fault = p
                    .fault
                    .as_ref()
                    .map(|f| format!("at {} `{}`: {}", f.position, f.kind, f.error))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{:<40} {:>12} {:>10} {:>10}  {fault}",
                    p.partition, p.last_position, p.events, p.size
                )?;
            }
            printed += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// `hume reset|resume|skip NAME [--partition KEY]`.
pub async fn repair(
    client: &Client,
    args: super::projections::RepairArgs,
    what: &str,
    keep_skips: bool,
) -> anyhow::Result<ExitCode> {
    let Some(key) = args.partition else {
        return super::projections::lifecycle(client, &args.name, what).await;
    };
    let mut url = client.endpoint(&["projections", &args.name, what]);
    url.query_pairs_mut().append_pair("partition", &key);
    if keep_skips {
        url.query_pairs_mut().append_pair("keep_skips", "true");
    }
    let answer: serde_json::Value = client
        .decode(client.send(client.request_url(Method::POST, url)).await?)
        .await?;
    match answer.get("skipped").and_then(|s| s.as_u64()) {
        Some(p) => println!(
            "{}: partition `{key}` skipped the event at position {p}",
            args.name
        ),
        None if keep_skips => println!("{}: partition `{key}`: {what} done, skips kept", args.name),
        None => println!("{}: partition `{key}`: {what} done", args.name),
    }
    Ok(ExitCode::SUCCESS)
}

/// `hume state NAME --all`: stream the server's NDJSON to stdout.
pub async fn print_all(
    client: &Client,
    name: &str,
    dirty: bool,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    let mut url = client.endpoint(&["projections", name, "state"]);
    url.query_pairs_mut()
        .append_pair("all", "true")
        .append_pair("dirty", &dirty.to_string())
        .append_pair("timeout_ms", &timeout.to_string());
    let mut response = client.send(client.request_url(Method::GET, url)).await?;
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = response
        .chunk()
        .await
        .context("reading the partition states")?
    {
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The lines `hume status NAME` prints under the table for a partitioned
/// projection.
pub fn status_lines(p: &hume::projection::PartitionsStatus) -> String {
    let mut out = format!(
        "partitions: {} by {} ({} live, {} hibernated, {} faulted)",
        p.count, p.by, p.live_instances, p.hibernated, p.faulted
    );
    let workers: Vec<String> = p
        .workers_figures
        .iter()
        .map(|w| {
            format!(
                "#{} {} events, {} ev/s busy",
                w.worker, w.events, w.events_per_sec
            )
        })
        .collect();
    if !workers.is_empty() {
        out.push_str(&format!(
            "\nworkers ({}): {}",
            p.workers,
            workers.join("; ")
        ));
    }
    let slowest: Vec<String> = p
        .slowest
        .iter()
        .map(|s| format!("{} {:.1} ms", s.partition, s.fold_us as f64 / 1000.0))
        .collect();
    if !slowest.is_empty() {
        out.push_str(&format!("\nslowest: {}", slowest.join(", ")));
    }
    out
}
