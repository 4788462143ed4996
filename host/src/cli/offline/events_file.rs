//! The events file of `hume replay`: lines of NDJSON turned into events
//! ([`EventReader`], pure), and the reader thread that parses the file in
//! batches beside the fold ([`spawn`]), so a replay is limited by the
//! plugin rather than by the parser.
//!
//! The pipeline: one OS thread reads and parses the file and sends whole
//! batches of events through a bounded channel (at most [`IN_FLIGHT`]
//! batches ahead of the fold); the fold sends each batch back once applied,
//! and the reader refills it, so the events' memory is freed on the reader
//! thread rather than on the fold's. A bad line ends the stream with its
//! error after the batches before it: the fold applies every whole batch
//! before the bad line, as a sequential replay does, then reports it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;

use anyhow::{bail, Context as _};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc as bounded;

use hume::log::RecordedEvent;

/// Batches the reader may be ahead of the fold.
pub const IN_FLIGHT: usize = 4;

/// The read buffer of the events file.
const READ_BUFFER: usize = 1 << 20;

/// Where the fold gets its batches from: every batch in file order, then
/// either the end of the file (`None`) or the error that stopped the reader.
pub struct Batches {
    full: bounded::Receiver<anyhow::Result<Vec<RecordedEvent>>>,
    empty: mpsc::Sender<Vec<RecordedEvent>>,
}

impl Batches {
    /// The next batch (never empty); `Ok(None)` at the end of the file.
    pub async fn next(&mut self) -> anyhow::Result<Option<Vec<RecordedEvent>>> {
        self.full.recv().await.transpose()
    }

    /// Hand an applied batch back to the reader to be cleared and refilled.
    pub fn recycle(&self, batch: Vec<RecordedEvent>) {
        // The reader may have finished already; then the batch is dropped here.
        let _ = self.empty.send(batch);
    }
}

/// Open `path` and start the reader thread, `batch_size` events per batch.
/// Failing to open the file is an error here, before any batch.
pub fn spawn(path: &Path, batch_size: usize) -> anyhow::Result<Batches> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the events file {}", path.display()))?;
    let (full_tx, full) = bounded::channel(IN_FLIGHT);
    let (empty, empty_rx) = mpsc::channel();
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("hume-replay-reader".into())
        .spawn(move || {
            let reader = BufReader::with_capacity(READ_BUFFER, file);
            read_batches(reader, &path, batch_size.max(1), &full_tx, &empty_rx);
        })
        .context("cannot start the thread that reads the events file")?;
    Ok(Batches { full, empty })
}

/// The reader thread: parse lines into batches until the end, an error, or
/// the fold hanging up.
fn read_batches(
    mut input: impl BufRead,
    path: &Path,
    batch_size: usize,
    full: &bounded::Sender<anyhow::Result<Vec<RecordedEvent>>>,
    empty: &mpsc::Receiver<Vec<RecordedEvent>>,
) {
    let mut events = EventReader::default();
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        line.clear();
        let read = input.read_until(b'\n', &mut line);
        let parsed = read
            .and_then(|n| {
                if n == 0 {
                    return Ok(None);
                }
                std::str::from_utf8(&line).map(Some).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "stream did not contain valid UTF-8",
                    )
                })
            })
            .with_context(|| format!("cannot read {} (line {})", path.display(), line_no + 1));
        let text = match parsed {
            Ok(Some(text)) => text,
            Ok(None) => break,
            Err(err) => {
                let _ = full.blocking_send(Err(err));
                return;
            }
        };
        line_no += 1;
        match events.parse(text) {
            Ok(Some(event)) => batch.push(event),
            Ok(None) => continue,
            Err(err) => {
                let err = err.context(format!("{}: line {line_no}", path.display()));
                let _ = full.blocking_send(Err(err));
                return;
            }
        }
        if batch.len() == batch_size {
            let next = match empty.try_recv() {
                Ok(mut used) => {
                    used.clear();
                    used
                }
                Err(_) => Vec::with_capacity(batch_size),
            };
            if full
                .blocking_send(Ok(std::mem::replace(&mut batch, next)))
                .is_err()
            {
                return; // the fold stopped (it failed): nothing more to do
            }
        }
    }
    if !batch.is_empty() {
        let _ = full.blocking_send(Ok(batch));
    }
}

/// Turns lines of an events file into events, numbering positions and
/// revisions that the lines leave out.
#[derive(Default)]
pub struct EventReader {
    last_position: u64,
    revisions: HashMap<String, u64>,
}

/// One line of an events file (borrowing from it where it can).
#[derive(Deserialize)]
struct EventLine<'a> {
    #[serde(borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
    position: Option<u64>,
    revision: Option<u64>,
    timestamp: Option<u64>,
}

impl EventReader {
    /// Parse one line; blank lines give `None`.
    pub fn parse(&mut self, line: &str) -> anyhow::Result<Option<RecordedEvent>> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if !trimmed.starts_with('{') {
            let found = match serde_json::from_str::<serde_json::Value>(trimmed) {
                Ok(serde_json::Value::Array(_)) => "an array",
                Ok(serde_json::Value::String(_)) => "a string",
                Ok(serde_json::Value::Number(_)) => "a number",
                Ok(serde_json::Value::Bool(_)) => "a boolean",
                Ok(serde_json::Value::Null) => "null",
                Ok(serde_json::Value::Object(_)) => "an object",
                Err(_) => "text that is not JSON",
            };
            bail!(
                "expected a JSON object like {{\"stream\": \"s\", \"kind\": \"k\", \"data\": {{}}}}, found {found}"
            );
        }
        let parsed: EventLine<'_> =
            serde_json::from_str(trimmed).context("not a valid event line (bad JSON or field)")?;
        let kind = match parsed.kind {
            Some(kind) if !kind.is_empty() => kind.into_owned(),
            _ => bail!("missing \"kind\": every event needs a non-empty kind"),
        };
        let Some(data) = parsed.data else {
            bail!("missing \"data\": every event needs a JSON payload (use {{}} for none)");
        };
        let stream = parsed.stream.unwrap_or(Cow::Borrowed("replay"));
        let position = match parsed.position {
            Some(p) => p,
            None => self.last_position.checked_add(1).with_context(|| {
                format!(
                    "no \"position\" to give this event: the previous one was at {}, the last \
                     there is; give positions explicitly",
                    self.last_position
                )
            })?,
        };
        if position == 0 {
            bail!("\"position\" must be 1 or more");
        }
        let last = self.revisions.get(stream.as_ref()).copied();
        let revision = match parsed.revision {
            Some(r) => r,
            None => {
                let last = last.unwrap_or(0);
                last.checked_add(1).with_context(|| {
                    format!(
                        "no \"revision\" to give this event: the previous one of stream {stream:?} \
                         was at {last}, the last there is; give revisions explicitly"
                    )
                })?
            }
        };
        match self.revisions.get_mut(stream.as_ref()) {
            Some(slot) => *slot = revision,
            None => {
                self.revisions.insert(stream.to_string(), revision);
            }
        }
        self.last_position = position;
        Ok(Some(RecordedEvent {
            position,
            stream: stream.into_owned(),
            revision,
            kind,
            data: data.get().as_bytes().to_vec(),
            metadata: parsed.metadata.map(|m| m.get().as_bytes().to_vec()),
            timestamp: parsed.timestamp.unwrap_or(0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lines of an events file: objects with any mix of the fields (numbers
    /// at the edges of u64), other JSON, and text that is not JSON.
    fn line() -> impl Strategy<Value = String> {
        let number = prop_oneof![
            Just("0".to_string()),
            Just("1".to_string()),
            Just(u64::MAX.to_string()),
            Just((u64::MAX - 1).to_string()),
            Just("18446744073709551616".to_string()),
            Just("-1".to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
        ];
        let field = prop_oneof![
            "[a-z]{0,3}".prop_map(|s| format!("\"stream\":\"{s}\"")),
            "[a-z]{0,3}".prop_map(|s| format!("\"kind\":\"{s}\"")),
            Just("\"kind\":\"a\\\"b\"".to_string()),
            Just("\"data\":{\"a\":1}".to_string()),
            Just("\"metadata\":null".to_string()),
            number.clone().prop_map(|n| format!("\"position\":{n}")),
            number.clone().prop_map(|n| format!("\"revision\":{n}")),
            number.prop_map(|n| format!("\"timestamp\":{n}")),
            Just("\"extra\":[]".to_string()),
        ];
        let core = prop::option::weighted(0.8, Just("\"kind\":\"k\",\"data\":1".to_string()));
        prop_oneof![
            4 => (core, prop::collection::vec(field, 0..4)).prop_map(|(core, mut f)| {
                f.extend(core);
                format!("{{{}}}", f.join(","))
            }),
            1 => "[ -~]{0,20}",
            1 => Just("[1,2]".to_string()),
            1 => Just("   ".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// `hume replay --events`: any sequence of lines gives events or
        /// errors, never a panic; positions of the events it gives increase.
        #[test]
        fn event_lines_never_panic(lines in prop::collection::vec(line(), 0..8)) {
            let mut reader = EventReader::default();
            for line in &lines {
                if let Ok(Some(e)) = reader.parse(line) {
                    prop_assert!(e.position >= 1);
                    prop_assert!(!e.kind.is_empty());
                }
            }
        }

        /// The reader thread gives the same events, in the same batches of
        /// the same size, as parsing line by line, and stops at the first
        /// bad line with its number, after the whole batches before it.
        #[test]
        fn batches_are_the_lines_in_order(
            lines in prop::collection::vec(line(), 0..40),
            batch_size in 1usize..6,
        ) {
            let mut reader = EventReader::default();
            let mut expected = Vec::new();
            let mut error = None;
            for (i, line) in lines.iter().enumerate() {
                match reader.parse(line) {
                    Ok(Some(e)) => expected.push(e),
                    Ok(None) => {}
                    Err(_) => {
                        error = Some(i + 1);
                        break;
                    }
                }
            }
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let (got, got_error) = run_reader(text.as_bytes(), batch_size);
            let whole = match error {
                Some(_) => expected.len() / batch_size * batch_size,
                None => expected.len(),
            };
            prop_assert_eq!(&got.concat(), &expected[..whole]);
            for batch in got.iter().rev().skip(1) {
                prop_assert_eq!(batch.len(), batch_size);
            }
            match (error, got_error) {
                (None, None) => {}
                (Some(n), Some(message)) => {
                    prop_assert!(message.contains(&format!("file.ndjson: line {n}")), "{}", message);
                }
                (want, got) => prop_assert!(false, "error at {:?}, got {:?}", want, got),
            }
        }
    }

    /// Run the reader over `input` on this thread; the batches and the error.
    fn run_reader(input: &[u8], batch_size: usize) -> (Vec<Vec<RecordedEvent>>, Option<String>) {
        let (full_tx, mut full) = bounded::channel(usize::MAX >> 4);
        let (_empty, empty_rx) = mpsc::channel();
        read_batches(
            input,
            Path::new("file.ndjson"),
            batch_size,
            &full_tx,
            &empty_rx,
        );
        drop(full_tx);
        let mut batches = Vec::new();
        while let Ok(item) = full.try_recv() {
            match item {
                Ok(batch) => batches.push(batch),
                Err(err) => return (batches, Some(format!("{err:#}"))),
            }
        }
        (batches, None)
    }

    #[test]
    fn a_line_that_is_not_utf8_is_named() {
        let (batches, error) = run_reader(b"{\"kind\":\"k\",\"data\":1}\n\xff\xfe\n", 10);
        assert!(batches.is_empty(), "the partial batch is not applied");
        let error = error.expect("an error");
        assert!(
            error.contains("cannot read file.ndjson (line 2)") && error.contains("UTF-8"),
            "{error}"
        );
    }

    /// Found by `event_lines_never_panic`: the position or revision after
    /// one at u64::MAX overflowed (a panic in debug builds, position 0 in
    /// release).
    #[test]
    fn numbering_after_u64_max_is_an_error() {
        let mut reader = EventReader::default();
        let max = u64::MAX;
        assert!(reader
            .parse(&format!(
                r#"{{"kind":"k","data":1,"position":{max},"revision":{max}}}"#
            ))
            .unwrap()
            .is_some());
        let err = reader.parse(r#"{"kind":"k","data":1}"#).unwrap_err();
        assert!(err.to_string().contains("position"), "{err}");
        let err = reader
            .parse(r#"{"kind":"k","data":1,"position":5}"#)
            .unwrap_err();
        assert!(err.to_string().contains("revision"), "{err}");
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let mut reader = EventReader::default();
        let e = reader
            .parse(r#"{"stream":"a\"b","kind":"k\u00e9","data":{"x":"\n"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(e.stream, "a\"b");
        assert_eq!(e.kind, "ké");
        assert_eq!(e.data, br#"{"x":"\n"}"#);
        assert_eq!((e.position, e.revision), (1, 1));
    }
}
