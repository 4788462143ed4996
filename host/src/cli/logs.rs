//! `hume logs NAME [--follow]`: a projection's recent log lines (its
//! plugin's output and its lifecycle), from `GET /projections/{name}/logs`.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::Client;

/// How long one follow request waits for a new line, ms.
const FOLLOW_WAIT_MS: u64 = 30_000;

/// One line, as the server sends it.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    seq: u64,
    at: u64,
    level: String,
    source: String,
    message: String,
}

/// One answer of the server.
#[derive(Debug, Deserialize)]
struct Page {
    lines: Vec<Line>,
    next: u64,
    dropped: u64,
}

/// Arguments of `hume logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The projection.
    pub name: String,
    /// Keep printing lines as they come (until Ctrl-C).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the last N lines kept (the server keeps the last 500 per
    /// projection).
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// One JSON object per line ({"seq", "at", "level", "source",
    /// "message"}) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Print the lines, then follow when asked.
pub async fn logs(client: &Client, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let mut page = fetch(client, &args.name, 0, None).await?;
    if let Some(n) = args.tail {
        let skip = page.lines.len().saturating_sub(n);
        page.lines.drain(..skip);
    }
    loop {
        if page.dropped > 0 && args.follow {
            eprintln!(
                "({} lines dropped: the server keeps only the newest)",
                page.dropped
            );
        }
        for line in &page.lines {
            print_line(line, args.json)?;
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        page = fetch(client, &args.name, page.next, Some(FOLLOW_WAIT_MS)).await?;
    }
}

async fn fetch(
    client: &Client,
    name: &str,
    after: u64,
    wait_ms: Option<u64>,
) -> anyhow::Result<Page> {
    let mut url = client.endpoint(&["projections", name, "logs"]);
    url.query_pairs_mut()
        .append_pair("after", &after.to_string());
    if let Some(ms) = wait_ms {
        url.query_pairs_mut()
            .append_pair("wait_ms", &ms.to_string());
    }
    let response = client.send(client.request_url(Method::GET, url)).await?;
    client.decode(response).await
}

fn print_line(line: &Line, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(line)?);
    } else {
        let at = UNIX_EPOCH + Duration::from_millis(line.at);
        println!(
            "{} {:<5} {:<6} {}",
            humantime::format_rfc3339_millis(at),
            line.level,
            line.source,
            line.message
        );
    }
    Ok(())
}
