//! Reading ahead for scans of the log: a projection rebuilding from far
//! behind reads page after page on the same subject filter. Each page as
//! its own batch get costs a round trip to the server, with nothing in
//! flight while the page folds. A [`Reader`] has a task ([`super::pull`])
//! that keeps pulling a consumer on the filter into a bounded buffer, so
//! the next page is usually already here (and decoded) when it is asked
//! for.
//!
//! A reader only ever supplies messages in sequence order without gaps
//! (its task stops at any gap), and it never decides where the log ends:
//! when it has nothing buffered and the server said nothing more was
//! pending, the caller goes back to batch gets, which answer the end
//! exactly. Readers are kept in a small pool keyed by (filter, next
//! sequence); one idle for [`IDLE`] is dropped, and its consumer removed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::stream::Stream;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::pull::{Chunk, Pull, Room};
use super::wire::Endpoint;
use crate::event::RecordedEvent;
use crate::log::LogError;

/// Readers kept at once (the least recently used goes first): enough for
/// every projection of a busy node catching up at the same time (an
/// evicted reader costs its scan a new consumer). Each holds at most
/// 16,384 messages and about 16 MiB ([`super::pull`]).
const MAX_READERS: usize = 64;
/// A reader not used for this long is dropped.
const IDLE: Duration = Duration::from_secs(10);
/// How long to wait for a message the server said is pending before
/// going back to batch gets.
const PENDING_WAIT: Duration = Duration::from_secs(2);

/// One message as delivered: its sequence, body (`None`: it does not
/// match, see [`Filtering::Here`]), and how many messages the consumer
/// still had after it at that moment.
pub(super) struct Delivered {
    pub sequence: u64,
    pub body: Option<Body>,
    pub pending: u64,
}

/// What a message holds: decoded by a reader's task (so the projection
/// reading the page does not spend its time on that), or the payload as a
/// batch get returned it (or as it failed to decode: the read reports it).
pub(super) enum Body {
    Event(RecordedEvent),
    Raw(Bytes),
}

impl Body {
    pub(super) fn into_event(self, position: u64) -> Result<RecordedEvent, LogError> {
        match self {
            Body::Event(e) => Ok(e),
            Body::Raw(payload) => super::read::decode(position, &payload),
        }
    }
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

/// A consumer reading `filter` ahead from a sequence.
pub(super) struct Reader {
    filter: String,
    /// The sequence the next message handed out must start from.
    next: u64,
    /// Messages taken from the channel but given back, in order.
    held: VecDeque<Delivered>,
    rx: mpsc::UnboundedReceiver<Chunk>,
    /// Room in the buffer: the task takes it before asking the server for
    /// more, [`Reader::take`] gives it back.
    room: Arc<Room>,
    /// `pending` of the last message taken (`None`: none yet).
    pending: Option<u64>,
    used: Instant,
    task: JoinHandle<()>,
    /// Where its consumer is, to remove it when the reader goes.
    stream: Stream,
    consumer: String,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
        // The server would remove the consumer after INACTIVE anyway.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (stream, consumer) = (self.stream.clone(), std::mem::take(&mut self.consumer));
            rt.spawn(async move {
                let _ = stream.delete_consumer(&consumer).await;
            });
        }
    }
}

impl Reader {
    /// Start reading `filter` from sequence `from` on a lean connection to
    /// one of `endpoints` (the consumer and the connection are made by the
    /// reader's task; a failure shows as a reader with nothing to give,
    /// and the caller reads with batch gets).
    pub(super) fn start(
        stream: &Stream,
        endpoints: Vec<Endpoint>,
        inbox: String,
        filter: &str,
        from: u64,
        how: Filtering,
    ) -> Reader {
        let (tx, rx) = mpsc::unbounded_channel();
        let room = Arc::new(Room::new());
        // The inbox's unique tail names the consumer too.
        let consumer = format!(
            "hume-read-ahead-{}",
            inbox.rsplit('.').next().unwrap_or("x")
        );
        let pull = Pull {
            stream: stream.clone(),
            endpoints,
            inbox,
            consumer: consumer.clone(),
            here: (how == Filtering::Here).then(|| filter.to_string()),
            filter: filter.to_string(),
            from,
        };
        let space = room.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = pull.run(tx, space).await {
                tracing::debug!(error = %e, "reading ahead stopped; reading page by page");
            }
        });
        Reader {
            filter: filter.to_string(),
            next: from,
            held: VecDeque::new(),
            rx,
            room,
            pending: None,
            used: Instant::now(),
            task,
            stream: stream.clone(),
            consumer,
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
    pub(super) async fn take(&mut self, from: u64, want: usize) -> Option<(Vec<(u64, Body)>, u64)> {
        if self.next > from {
            return None;
        }
        self.used = Instant::now();
        let mut out = Vec::new();
        while out.len() < want.max(1) {
            let delivered = match self.held.pop_front() {
                Some(d) => d,
                None => {
                    let chunk = match self.rx.try_recv() {
                        Ok(chunk) => chunk,
                        Err(mpsc::error::TryRecvError::Disconnected) if out.is_empty() => {
                            return None
                        }
                        Err(mpsc::error::TryRecvError::Empty) if out.is_empty() => {
                            if self.pending == Some(0) {
                                return None; // at what was the end: batch gets know it exactly
                            }
                            match tokio::time::timeout(PENDING_WAIT, self.rx.recv()).await {
                                Ok(Some(chunk)) => chunk,
                                _ => return None,
                            }
                        }
                        Err(_) => break,
                    };
                    self.room.give_back(&chunk);
                    self.held.extend(chunk.messages);
                    continue;
                }
            };
            self.next = delivered.sequence + 1;
            self.pending = Some(delivered.pending);
            if let Some(body) = delivered.body {
                if delivered.sequence >= from {
                    out.push((delivered.sequence, body));
                }
            }
        }
        Some((out, self.next - 1))
    }

    /// Hand back the unused tail of what [`Reader::take`] returned (in
    /// order): the next take starts with them.
    pub(super) fn give_back(&mut self, unused: Vec<(u64, Body)>) {
        let Some(first) = unused.first().map(|m| m.0) else {
            return;
        };
        for (sequence, body) in unused.into_iter().rev() {
            self.held.push_front(Delivered {
                sequence,
                body: Some(body),
                // Not the end: later messages were already delivered.
                pending: 1,
            });
        }
        self.next = first;
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
    /// Where readers connect (none: no reading ahead).
    endpoints: Vec<Endpoint>,
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
            endpoints: Vec::new(),
        }
    }

    /// Readers connect to these (without any, none is started).
    pub(super) fn connect_to(&mut self, endpoints: Vec<Endpoint>) {
        if self.enabled && endpoints.is_empty() {
            tracing::info!(
                "the NATS connection needs TLS: scans read page by page, without reading ahead"
            );
        }
        self.endpoints = endpoints;
    }

    /// Are readers started at all?
    pub(super) fn enabled(&self) -> bool {
        self.enabled && !self.endpoints.is_empty()
    }

    /// A new reader of `filter` from `from` (answers go to `inbox`).
    pub(super) fn start(
        &self,
        stream: &Stream,
        inbox: String,
        filter: &str,
        from: u64,
        how: Filtering,
    ) -> Reader {
        Reader::start(stream, self.endpoints.clone(), inbox, filter, from, how)
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
