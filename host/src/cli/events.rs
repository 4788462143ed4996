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
    /// Append events to a stream (one event from flags, or a file of them),
    /// or import a file of events into their own streams (`hume read
    /// --all` output).
    Append(AppendArgs),
    /// Read events as NDJSON: one stream, all streams, or a category.
    Read(ReadArgs),
    /// List the streams with their current revisions (NDJSON).
    Streams,
}

/// Arguments of `hume append`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The stream to append to. With --file it may be left out: each line
    /// then goes to the stream its `"stream"` names (an import).
    #[arg(required_unless_present = "file")]
    pub stream: Option<String>,
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
    /// Append the events of an NDJSON file: the lines `hume read` prints
    /// (`{"stream", "kind", "data", "metadata", ...}`; `position`,
    /// `revision` and `timestamp` are accepted and ignored: the server
    /// assigns them), or just `{"kind", "data", "metadata"?}` with a STREAM.
    /// With STREAM, a line naming another stream is refused and the file is
    /// one atomic batch unless --batch-size is given; without STREAM, each
    /// line is appended to its own `"stream"`, each run of lines of one
    /// stream an atomic batch. A bad line sends nothing (without
    /// --batch-size).
    #[arg(long, verbatim_doc_comment)]
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
    /// Read every stream whose name starts with this prefix (`cart-`, no
    /// `*`: `--category cart-` reads what `--stream 'cart-*'` follows).
    #[arg(long, value_name = "PREFIX")]
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

/// One event as sent to the server, and a line of an NDJSON file: the
/// format `hume read` prints and `hume replay --events` reads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventLine {
    /// The stream (files only; the URL names it when sending).
    #[serde(default, skip_serializing)]
    stream: Option<String>,
    kind: String,
    data: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Box<RawValue>>,
    // What `hume read` prints besides: accepted, never sent (the server
    // assigns them).
    #[allow(dead_code)]
    #[serde(default, skip_serializing)]
    position: Option<u64>,
    #[allow(dead_code)]
    #[serde(default, skip_serializing)]
    revision: Option<u64>,
    #[allow(dead_code)]
    #[serde(default, skip_serializing)]
    timestamp: Option<u64>,
}

impl EventLine {
    fn new(kind: String, data: Box<RawValue>, metadata: Option<Box<RawValue>>) -> EventLine {
        EventLine {
            stream: None,
            kind,
            data,
            metadata,
            position: None,
            revision: None,
            timestamp: None,
        }
    }
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
    if let Some(stream) = &args.stream {
        check_stream("stream name", stream)?;
    }
    let Some(path) = &args.file else {
        let (Some(stream), Some(kind), Some(data)) = (&args.stream, &args.kind, &args.data) else {
            bail!("give the event with STREAM --kind K --data JSON, or a file of events with --file F");
        };
        let event = EventLine::new(
            kind.clone(),
            parse_json_arg("data", data)?,
            args.metadata
                .as_deref()
                .map(|m| parse_json_arg("metadata", m))
                .transpose()?,
        );
        let outcome = post_batch(client, stream, &[event], args.expected_revision).await?;
        println!("{}", serde_json::to_string(&outcome)?);
        return Ok(ExitCode::SUCCESS);
    };
    if args.stream.is_none() && args.expected_revision != ExpectedRevision::Any {
        bail!(
            "--expected-revision needs a STREAM: without one the file's lines go to several streams"
        );
    }
    let imported = append_file(client, &args, path).await?;
    match imported.single {
        Some(outcome) if args.stream.is_some() => {
            println!("{}", serde_json::to_string(&outcome)?)
        }
        _ => println!(
            "{}",
            serde_json::json!({
                "events": imported.events,
                "streams": imported.streams.len(),
                "first_position": imported.first_position,
                "last_position": imported.last_position,
            })
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Parse line `number` of `path`; its stream: `stream` (which the line
/// may repeat but not contradict) or the line's own.
fn parse_line(
    path: &std::path::Path,
    number: usize,
    line: &str,
    stream: Option<&str>,
) -> anyhow::Result<(String, EventLine)> {
    let mut event: EventLine = serde_json::from_str(line).with_context(|| {
        format!(
            "{}:{number}: not an event line; expected {{\"stream\": \"...\", \"kind\": \"...\", \"data\": <json>, \"metadata\": <json, optional>}} (what `hume read` prints; \"stream\" optional with a STREAM argument)",
            path.display()
        )
    })?;
    if event.metadata.as_ref().is_some_and(|m| m.get() == "null") {
        event.metadata = None;
    }
    let target = match (stream, &event.stream) {
        (Some(given), Some(own)) if own != given => bail!(
            "{}:{number}: the line names stream `{own}`, not `{given}`: leave out the STREAM \
             argument to append each line to its own stream, or fix the line",
            path.display()
        ),
        (Some(given), _) => given.to_string(),
        (None, Some(own)) => {
            check_stream("stream name", own)
                .with_context(|| format!("{}:{number}", path.display()))?;
            own.clone()
        }
        (None, None) => bail!(
            "{}:{number}: the line has no \"stream\": give a STREAM argument to append every \
             line to it, or name each line's stream",
            path.display()
        ),
    };
    Ok((target, event))
}

/// What appending a file did.
#[derive(Default)]
struct Imported {
    events: u64,
    streams: std::collections::BTreeSet<String>,
    first_position: Option<u64>,
    last_position: Option<u64>,
    /// The outcome when everything went in one batch or to one stream.
    single: Option<AppendOutcome>,
}

/// Sends runs of lines of one stream, each an atomic batch.
struct Sender<'a> {
    client: &'a Client,
    expected: ExpectedRevision,
    done: Imported,
    first: Option<AppendOutcome>,
}

impl Sender<'_> {
    async fn send(&mut self, stream: &str, batch: &[EventLine]) -> anyhow::Result<()> {
        let outcome = post_batch(self.client, stream, batch, self.expected)
            .await
            .inspect_err(|_| {
                eprintln!(
                    "{} events were appended before this batch; the rest were not",
                    self.done.events
                )
            })?;
        if self.expected != ExpectedRevision::Any {
            self.expected = ExpectedRevision::Exact(outcome.revision);
        }
        self.done.events += batch.len() as u64;
        self.done.streams.insert(stream.to_string());
        self.done
            .first_position
            .get_or_insert(outcome.first_position);
        self.done.last_position = Some(outcome.last_position);
        let first = self.first.get_or_insert_with(|| outcome.clone());
        self.done.single = Some(AppendOutcome {
            stream: outcome.stream,
            first_position: first.first_position,
            last_position: outcome.last_position,
            revision: outcome.revision,
        });
        Ok(())
    }
}

async fn append_file(
    client: &Client,
    args: &AppendArgs,
    path: &std::path::Path,
) -> anyhow::Result<Imported> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    if args.batch_size == Some(0) {
        bail!("--batch-size must be at least 1");
    }
    let batch_size = args.batch_size.unwrap_or(usize::MAX);
    let bar = match args.batch_size {
        Some(_) => indicatif::ProgressBar::new(total_bytes),
        None => indicatif::ProgressBar::hidden(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut next_line = {
        let mut number = 0;
        let mut line = String::new();
        move |reader: &mut BufReader<std::fs::File>| -> anyhow::Result<Option<(usize, usize, String)>> {
            loop {
                line.clear();
                let n = reader
                    .read_line(&mut line)
                    .with_context(|| format!("reading {}", path.display()))?;
                if n == 0 {
                    return Ok(None);
                }
                number += 1;
                if !line.trim().is_empty() {
                    return Ok(Some((number, n, line.clone())));
                }
            }
        }
    };
    // Without --batch-size everything is parsed first: a bad line sends nothing.
    let mut parsed = std::collections::VecDeque::new();
    if args.batch_size.is_none() {
        while let Some((number, n, line)) = next_line(&mut reader)? {
            parsed.push_back((n, parse_line(path, number, &line, args.stream.as_deref())?));
        }
    }
    let mut sender = Sender {
        client,
        expected: args.expected_revision,
        done: Imported::default(),
        first: None,
    };
    let mut batch: Vec<EventLine> = Vec::new();
    let mut batch_stream = String::new();
    let mut batch_bytes = 0u64;
    loop {
        let next = match args.batch_size {
            None => parsed.pop_front(),
            Some(_) => match next_line(&mut reader)? {
                Some((number, n, line)) => Some((
                    n,
                    parse_line(path, number, &line, args.stream.as_deref()).inspect_err(|_| {
                        bar.abandon();
                        eprintln!(
                            "{} events were appended before this line; the rest were not",
                            sender.done.events
                        );
                    })?,
                )),
                None => None,
            },
        };
        let flush = match &next {
            Some((_, (stream, _))) => {
                !batch.is_empty() && (*stream != batch_stream || batch.len() >= batch_size)
            }
            None => !batch.is_empty(),
        };
        if flush {
            sender
                .send(&batch_stream, &batch)
                .await
                .inspect_err(|_| bar.abandon())?;
            bar.inc(batch_bytes);
            bar.set_message(format!("{} events", sender.done.events));
            batch.clear();
            batch_bytes = 0;
        }
        let Some((n, (stream, event))) = next else {
            break;
        };
        batch_stream = stream;
        batch_bytes += n as u64;
        batch.push(event);
    }
    bar.finish_and_clear();
    if sender.done.events == 0 {
        bail!("{} holds no events", path.display());
    }
    Ok(sender.done)
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
        if let Some(stem) = prefix.strip_suffix('*') {
            bail!(
                "--category takes the prefix itself, not a pattern: `hume read --category {stem}` \
                 reads every stream whose name starts with `{stem}`"
            );
        }
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
            let _ = parse_line(std::path::Path::new("f.ndjson"), 1, &line, Some("s"));
            let _ = parse_line(std::path::Path::new("f.ndjson"), 1, &line, None);
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
            let (_, parsed) = parse_line(std::path::Path::new("f.ndjson"), 1, &line.to_string(), Some("s")).unwrap();
            prop_assert_eq!(&parsed.kind, &kind);
            prop_assert_eq!(serde_json::from_str::<serde_json::Value>(parsed.data.get()).unwrap(), data);
            prop_assert_eq!(parsed.metadata.is_some(), with_metadata);
        }
    }
}
