//! Reading ahead for scans of the log: a projection rebuilding from far
//! behind reads page after page on the same subject filter. Each page as
//! its own batch get costs a round trip to the server, with nothing in
//! flight while the page folds. A [`Reader`] is an ordered pull consumer
//! on the filter that keeps pulling into a bounded buffer, so the next
//! page is usually already here when it is asked for.
//!
//! A reader only ever supplies messages in sequence order without gaps
//! (the ordered consumer recreates itself on any gap), and it never
//! decides where the log ends: when it has nothing buffered and the server
//! said nothing more was pending, the caller goes back to batch gets,
//! which answer the end exactly. Readers are kept in a small pool keyed by
//! (filter, next sequence); one idle for [`IDLE`] is dropped (the server
//! removes its consumer after the consumer's inactivity threshold).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::stream::Stream;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::subject;

/// Messages a reader buffers beyond what was asked for.
const BUFFER: usize = 16384;
/// Readers kept at once (the least recently used goes first).
const MAX_READERS: usize = 16;
/// A reader not used for this long is dropped.
const IDLE: Duration = Duration::from_secs(10);
/// How long to wait for a message the server said is pending before
/// going back to batch gets.
const PENDING_WAIT: Duration = Duration::from_secs(2);

/// One message as delivered: its sequence, payload (`None`: it does not
/// match, see [`Filtering::Here`]), and how many messages the consumer
/// still had after it at that moment.
struct Delivered {
    sequence: u64,
    payload: Option<Bytes>,
    pending: u64,
}

/// Where a reader's subject filter is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filtering {
    /// By the server (the consumer's filter subject).
    OnServer,
    /// Here: the consumer takes every subject and the reader drops what
    /// does not match. Cheaper overall when most messages match, since a
    /// filtered consumer costs the server about as much again per message.
    Here,
}

/// An ordered consumer reading `filter` ahead from a sequence.
pub(super) struct Reader {
    filter: String,
    /// The sequence the next message handed out must start from.
    next: u64,
    /// Messages taken from the channel but given back, in order.
    held: VecDeque<Delivered>,
    rx: mpsc::Receiver<Delivered>,
    /// `pending` of the last message taken (`None`: none yet).
    pending: Option<u64>,
    used: Instant,
    task: JoinHandle<()>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reader {
    /// Start reading `filter` from sequence `from` (the consumer is created
    /// by the reader's task; a failure shows as a reader with nothing to
    /// give, and the caller reads with batch gets).
    pub(super) fn start(stream: &Stream, filter: &str, from: u64, how: Filtering) -> Reader {
        let (tx, rx) = mpsc::channel(BUFFER);
        let stream = stream.clone();
        let here = (how == Filtering::Here).then(|| filter.to_string());
        let config = pull::OrderedConfig {
            filter_subject: match how {
                Filtering::OnServer => filter.to_string(),
                // No filter at all: the stream holds only the log.
                Filtering::Here => String::new(),
            },
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        };
        let task = tokio::spawn(async move {
            let consumer = match stream.create_consumer(config).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "creating a read-ahead consumer; reading page by page");
                    return;
                }
            };
            let mut messages = match consumer.messages().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(error = %e, "starting a read-ahead consumer; reading page by page");
                    return;
                }
            };
            while let Some(message) = messages.next().await {
                let delivered = match message {
                    Ok(m) => match m.info() {
                        Ok(info) => Delivered {
                            sequence: info.stream_sequence,
                            pending: info.pending,
                            payload: match &here {
                                Some(f) if !subject::matches(f, &m.message.subject) => None,
                                _ => Some(m.message.payload.clone()),
                            },
                        },
                        Err(e) => {
                            tracing::debug!(error = %e, "a read-ahead message without metadata");
                            return;
                        }
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "the read-ahead consumer failed; reading page by page");
                        return;
                    }
                };
                // A full buffer waits here (and pulls nothing more); a
                // dropped reader ends the task.
                if tx.send(delivered).await.is_err() {
                    return;
                }
            }
        });
        Reader {
            filter: filter.to_string(),
            next: from,
            held: VecDeque::new(),
            rx,
            pending: None,
            used: Instant::now(),
            task,
        }
    }

    /// The sequence the next message handed out starts from.
    pub(super) fn next(&self) -> u64 {
        self.next
    }

    /// Up to `want` messages from `from` on, in order, and the sequence up
    /// to which every matching message is among them: what is buffered
    /// (waiting for more only while the server said more is pending).
    /// `None`: this reader cannot serve `from` (it is past it, its consumer
    /// failed, or it reached the end of what the server had): read with a
    /// batch get instead, and drop the reader.
    pub(super) async fn take(
        &mut self,
        from: u64,
        want: usize,
    ) -> Option<(Vec<(u64, Bytes)>, u64)> {
        if self.next > from {
            return None;
        }
        self.used = Instant::now();
        let mut out = Vec::new();
        while out.len() < want.max(1) {
            let delivered = match self.held.pop_front() {
                Some(d) => d,
                None => match self.rx.try_recv() {
                    Ok(d) => d,
                    Err(mpsc::error::TryRecvError::Disconnected) if out.is_empty() => return None,
                    Err(mpsc::error::TryRecvError::Empty) if out.is_empty() => {
                        if self.pending == Some(0) {
                            return None; // at what was the end: batch gets know it exactly
                        }
                        match tokio::time::timeout(PENDING_WAIT, self.rx.recv()).await {
                            Ok(Some(d)) => d,
                            _ => return None,
                        }
                    }
                    Err(_) => break,
                },
            };
            self.next = delivered.sequence + 1;
            self.pending = Some(delivered.pending);
            if let Some(payload) = delivered.payload {
                if delivered.sequence >= from {
                    out.push((delivered.sequence, payload));
                }
            }
        }
        Some((out, self.next - 1))
    }

    /// Hand back the unused tail of what [`Reader::take`] returned (in
    /// order): the next take starts with them.
    pub(super) fn give_back(&mut self, unused: &[(u64, Bytes)]) {
        let Some(first) = unused.first() else { return };
        for (sequence, payload) in unused.iter().rev() {
            self.held.push_front(Delivered {
                sequence: *sequence,
                payload: Some(payload.clone()),
                // Not the end: later messages were already delivered.
                pending: 1,
            });
        }
        self.next = first.0;
    }
}

/// Turns reading ahead off when `0`: every page is its own batch get, as
/// before readers existed. For benchmarks comparing the two; not a user
/// setting.
const READ_AHEAD_ENV: &str = "HUME_READ_AHEAD";

/// The readers not in use right now.
pub(super) struct Pool {
    readers: Mutex<Vec<Reader>>,
    enabled: bool,
}

impl Pool {
    /// A pool; reading ahead is on unless [`READ_AHEAD_ENV`] is `0`.
    pub(super) fn from_env() -> Pool {
        let enabled = std::env::var(READ_AHEAD_ENV).map_or(true, |v| v != "0");
        if !enabled {
            tracing::warn!(
                "{READ_AHEAD_ENV}=0: reading the log page by page, without reading ahead"
            );
        }
        Pool {
            readers: Mutex::new(Vec::new()),
            enabled,
        }
    }

    /// Are readers started at all?
    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    fn readers(&self) -> std::sync::MutexGuard<'_, Vec<Reader>> {
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reader of `filter` whose next message is `from`, if one is kept.
    pub(super) fn take(&self, filter: &str, from: u64) -> Option<Reader> {
        let mut readers = self.readers();
        readers.retain(|r| r.used.elapsed() < IDLE);
        let i = readers
            .iter()
            .position(|r| r.filter == filter && r.next == from)?;
        Some(readers.swap_remove(i))
    }

    /// Keep `reader` for the read that continues where it stands.
    pub(super) fn put(&self, reader: Reader) {
        let mut readers = self.readers();
        readers.retain(|r| r.used.elapsed() < IDLE);
        if readers.len() >= MAX_READERS {
            if let Some(oldest) = readers
                .iter()
                .enumerate()
                .min_by_key(|(_, r)| r.used)
                .map(|(i, _)| i)
            {
                readers.swap_remove(oldest);
            }
        }
        readers.push(reader);
    }
}
