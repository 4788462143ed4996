//! `hume append`, `hume read`, `hume streams`: the event commands, talking
//! to `hume serve` over HTTP.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use hume::log::{AppendOutcome, ExpectedRevision};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::client::Client;
use super::Context;

/// Commands of this group.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Append events to a stream (one event from flags, or a file of them).
    Append(AppendArgs),
    /// Read events as NDJSON: one stream, all streams, or a category.
    Read(ReadArgs),
    /// List the streams with their current revisions (NDJSON).
    Streams,
}

/// Arguments of `hume append`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The stream to append to.
    pub stream: String,
    /// The event kind (with --data).
    #[arg(long, conflicts_with = "file")]
    pub kind: Option<String>,
    /// The event data: JSON (quote strings: --data '"text"').
    #[arg(long, conflicts_with = "file")]
    pub data: Option<String>,
    /// Optional event metadata: JSON.
    #[arg(long, conflicts_with = "file")]
    pub metadata: Option<String>,
    /// Expected current revision of the stream: any, no_stream or a number.
    /// With --batch-size it applies to the first batch and each later batch
    /// expects the revision the previous one produced.
    #[arg(long, default_value = "any")]
    pub expected_revision: ExpectedRevision,
    /// Append the events of an NDJSON file (lines `{"kind", "data",
    /// "metadata"?}`), as one atomic batch unless --batch-size is given.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Send the file in batches of this many events (each batch atomic),
    /// with a progress bar.
    #[arg(long, requires = "file")]
    pub batch_size: Option<usize>,
}

/// Arguments of `hume read`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["stream", "all", "category"])))]
pub struct ReadArgs {
    /// The stream to read.
    pub stream: Option<String>,
    /// Read every stream in position order.
    #[arg(long)]
    pub all: bool,
    /// Read every stream whose name starts with this prefix.
    #[arg(long)]
    pub category: Option<String>,
    /// First position (--all, --category) or revision (a stream) to read,
    /// inclusive.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Keep running and print new events as they land.
    #[arg(long)]
    pub follow: bool,
}

/// Run one command of this group.
pub async fn run(cmd: Command, ctx: &Context) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let client = Client::new(ctx)?;
    match cmd {
        Command::Append(args) => append(&client, args).await,
        Command::Read(args) => read(&client, args).await,
        Command::Streams => streams(&client).await,
    }
}

/// One event as sent to the server (and as a line of an NDJSON file).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventLine {
    kind: String,
    data: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Box<RawValue>>,
}

#[derive(Serialize)]
struct AppendRequest<'a> {
    events: &'a [EventLine],
    expected_revision: serde_json::Value,
}

fn expected_json(e: ExpectedRevision) -> serde_json::Value {
    match e {
        ExpectedRevision::Any => "any".into(),
        ExpectedRevision::NoStream => "no_stream".into(),
        ExpectedRevision::Exact(n) => n.into(),
    }
}

fn parse_json_arg(flag: &str, text: &str) -> anyhow::Result<Box<RawValue>> {
    serde_json::from_str(text).with_context(|| {
        format!("--{flag} is not valid JSON (quote a string: --{flag} '\"text\"')")
    })
}

async fn post_batch(
    client: &Client,
    stream: &str,
    events: &[EventLine],
    expected: ExpectedRevision,
) -> anyhow::Result<AppendOutcome> {
    client
        .post_json(
            &["streams", stream],
            &AppendRequest {
                events,
                expected_revision: expected_json(expected),
            },
        )
        .await
}

/// Check a stream name (or category prefix) before it goes into a URL,
/// where control characters would be silently dropped.
fn check_stream(what: &str, name: &str) -> anyhow::Result<()> {
    hume::log::validate_stream_name(name)
        .map_err(|reason| anyhow::anyhow!("invalid {what} {name:?}: {reason}"))
}

async fn append(client: &Client, args: AppendArgs) -> anyhow::Result<ExitCode> {
    check_stream("stream name", &args.stream)?;
    let outcome = match &args.file {
        None => {
            let (Some(kind), Some(data)) = (&args.kind, &args.data) else {
                bail!(
                    "give the event with --kind K --data JSON, or a file of events with --file F"
                );
            };
            let event = EventLine {
                kind: kind.clone(),
                data: parse_json_arg("data", data)?,
                metadata: args
                    .metadata
                    .as_deref()
                    .map(|m| parse_json_arg("metadata", m))
                    .transpose()?,
            };
            post_batch(client, &args.stream, &[event], args.expected_revision).await?
        }
        Some(path) => append_file(client, &args, path).await?,
    };
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(ExitCode::SUCCESS)
}

fn parse_line(path: &std::path::Path, number: usize, line: &str) -> anyhow::Result<EventLine> {
    serde_json::from_str(line).with_context(|| {
        format!(
            "{}:{number}: not an event line; expected {{\"kind\": \"...\", \"data\": <json>, \"metadata\": <json, optional>}}",
            path.display()
        )
    })
}

async fn append_file(
    client: &Client,
    args: &AppendArgs,
    path: &std::path::Path,
) -> anyhow::Result<AppendOutcome> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let Some(batch_size) = args.batch_size else {
        // One atomic batch: parse everything first, so a bad line sends nothing.
        let mut events = Vec::new();
        let mut line = String::new();
        let mut number = 0;
        while {
            line.clear();
            reader
                .read_line(&mut line)
                .with_context(|| format!("reading {}", path.display()))?
                > 0
        } {
            number += 1;
            if !line.trim().is_empty() {
                events.push(parse_line(path, number, &line)?);
            }
        }
        if events.is_empty() {
            bail!("{} holds no events", path.display());
        }
        return post_batch(client, &args.stream, &events, args.expected_revision).await;
    };
    if batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let bar = indicatif::ProgressBar::new(total_bytes);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut expected = args.expected_revision;
    let mut first: Option<AppendOutcome> = None;
    let mut last: Option<AppendOutcome> = None;
    let mut sent = 0u64;
    let mut batch = Vec::with_capacity(batch_size);
    let mut batch_bytes = 0u64;
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        if n > 0 {
            number += 1;
            batch_bytes += n as u64;
            if !line.trim().is_empty() {
                batch.push(parse_line(path, number, &line).inspect_err(|_| {
                    bar.abandon();
                    eprintln!("{sent} events were appended before this line; the rest were not");
                })?);
            }
        }
        if batch.len() == batch_size || (n == 0 && !batch.is_empty()) {
            let outcome = post_batch(client, &args.stream, &batch, expected)
                .await
                .inspect_err(|_| {
                    bar.abandon();
                    eprintln!(
                        "{sent} events were appended before this batch (lines up to {}); the rest were not",
                        number - batch.len()
                    );
                })?;
            sent += batch.len() as u64;
            bar.inc(batch_bytes);
            bar.set_message(format!("{sent} events"));
            batch_bytes = 0;
            batch.clear();
            if expected != ExpectedRevision::Any {
                expected = ExpectedRevision::Exact(outcome.revision);
            }
            first.get_or_insert_with(|| outcome.clone());
            last = Some(outcome);
        }
        if n == 0 {
            break;
        }
    }
    bar.finish_and_clear();
    match (first, last) {
        (Some(first), Some(last)) => Ok(AppendOutcome {
            stream: last.stream,
            first_position: first.first_position,
            last_position: last.last_position,
            revision: last.revision,
        }),
        _ => bail!("{} holds no events", path.display()),
    }
}

/// A page as the server sends it, events kept as raw JSON to print as-is.
#[derive(Deserialize)]
struct RawPage {
    events: Vec<Box<RawValue>>,
    next: Option<u64>,
    last_scanned: u64,
}

async fn read(client: &Client, args: ReadArgs) -> anyhow::Result<ExitCode> {
    let (segments, from_key): (Vec<&str>, &str) = if args.all {
        (vec!["all"], "from_position")
    } else if let Some(prefix) = &args.category {
        check_stream("category prefix", prefix)?;
        (vec!["categories", prefix.as_str()], "from_position")
    } else if let Some(stream) = &args.stream {
        check_stream("stream name", stream)?;
        (vec!["streams", stream.as_str()], "from_revision")
    } else {
        bail!("say what to read: a STREAM, --all or --category PREFIX");
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut from = args.from;
    let mut remaining = args.limit;
    let mut waiting = false;
    loop {
        let page_limit = remaining.map_or(1000, |r| r.min(1000));
        if page_limit == 0 {
            break;
        }
        let mut query = vec![
            (from_key, from.to_string()),
            ("limit", page_limit.to_string()),
        ];
        if waiting {
            query.push(("wait_ms", "25000".to_string()));
        }
        let page: RawPage = client.get_json(&segments, &query).await?;
        for event in &page.events {
            if writeln!(out, "{}", event.get()).is_err() {
                return Ok(ExitCode::SUCCESS); // reader went away (e.g. `| head`)
            }
        }
        if out.flush().is_err() {
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(r) = remaining.as_mut() {
            *r -= (page.events.len() as u64).min(*r);
        }
        from = page.next.unwrap_or(page.last_scanned + 1).max(from);
        waiting = page.next.is_none();
        if waiting && !args.follow {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn streams(client: &Client) -> anyhow::Result<ExitCode> {
    #[derive(Deserialize)]
    struct Streams {
        streams: Vec<Box<RawValue>>,
    }
    let list: Streams = client.get_json(&["streams"], &[]).await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for s in list.streams {
        if writeln!(out, "{}", s.get()).is_err() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// `hume append --file`: any line parses or is a clear error.
        #[test]
        fn any_line_parses_or_errs(line in "\\PC{0,60}") {
            let _ = parse_line(std::path::Path::new("f.ndjson"), 1, &line);
        }

        /// An event line round-trips: kind, data and metadata as written.
        #[test]
        fn event_lines_round_trip(
            kind in "\\PC{1,20}",
            data in any::<i64>(),
            text in "\\PC{0,20}",
            with_metadata in any::<bool>(),
        ) {
            let data = serde_json::json!({"n": data, "text": text});
            let mut line = serde_json::json!({"kind": kind, "data": data});
            if with_metadata {
                line["metadata"] = serde_json::json!({"by": text});
            }
            let parsed = parse_line(std::path::Path::new("f.ndjson"), 1, &line.to_string()).unwrap();
            prop_assert_eq!(&parsed.kind, &kind);
            prop_assert_eq!(serde_json::from_str::<serde_json::Value>(parsed.data.get()).unwrap(), data);
            prop_assert_eq!(parsed.metadata.is_some(), with_metadata);
        }
    }
}
