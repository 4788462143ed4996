//! The event log on one JetStream stream: positions are the stream's
//! sequence numbers, each Hume stream is one subject ([`super::subject`]).
//!
//! An append reads the stream's last message (its revision and sequence;
//! or takes them from what this node's last append to the stream left,
//! [`Tails`]), checks the expected revision, and publishes with
//! `Nats-Expected-Last-Subject-Sequence` set to that sequence, so JetStream
//! itself refuses the write when anything was appended to the stream in
//! between (the append then reads again: a wrong revision is reported, an
//! `any` append retries). Several events go in one atomic batch (all or
//! none). Reads are subject-filtered batch gets (`DIRECT.GET`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::{self, message::OutboundMessage, stream::DirectGetErrorKind};
use async_nats::HeaderMap;
use futures::future::BoxFuture;
use jetstream_extra::batch_publish::{BatchPublishErrorKind, BatchPublishExt};
use tokio::sync::watch;

use super::ahead::Pool;
use super::read::decode;
use super::subject;
use super::tails::Tails;
use super::{failed, write_failed, Contention};
use crate::event::NewEvent;
use crate::log::{codec, AppendOutcome, EventLog, ExpectedRevision, LogError, Page, Selector};
use crate::snapshot::now_ms;

/// Conflicting writes an `any` append retries through before giving up.
const MAX_RETRIES: usize = 1000;
/// Atomic batches this node has in flight at once: the server takes 50
/// per stream (1,000 per server), and refuses more with "too many
/// inflight"; that answer, when other nodes fill the rest, is retried.
const MAX_INFLIGHT_BATCHES: usize = 32;
/// Pause before retrying a batch the server had no room for.
const BUSY_PAUSE: Duration = Duration::from_millis(2);
/// Streams whose tail an append remembers (see [`Tails`]).
const MAX_TAILS: usize = 65_536;
/// How often the head is refreshed from the server (appends by this node
/// move it at once).
const HEAD_POLL: Duration = Duration::from_millis(100);
/// Overrides [`HEAD_POLL`] in milliseconds; `0` turns the polling off, so
/// this node learns of other nodes' appends only through
/// [`EventLog::fresh_head`] (the `catch_up_after` safety net). For tests
/// of that safety net; not a user setting.
const HEAD_POLL_ENV: &str = "HUME_HEAD_POLL_MS";

/// The head polling interval in force (`None`: off).
fn head_poll() -> Option<Duration> {
    match std::env::var(HEAD_POLL_ENV).ok().map(|v| v.parse::<u64>()) {
        None => Some(HEAD_POLL),
        Some(Ok(0)) => {
            tracing::warn!("{HEAD_POLL_ENV}=0: not following the log's head; only catch_up_after polls find other nodes' appends");
            None
        }
        Some(Ok(ms)) => Some(Duration::from_millis(ms)),
        Some(Err(_)) => {
            tracing::warn!("{HEAD_POLL_ENV} is not a number of milliseconds; ignored");
            Some(HEAD_POLL)
        }
    }
}

pub(super) fn storage(stage: &'static str) -> impl FnOnce(async_nats::Error) -> LogError {
    move |e| LogError::Storage(failed(stage, e))
}

pub(super) fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> async_nats::Error {
    Box::new(e)
}

/// The JetStream event log.
pub struct NatsLog {
    pub(super) js: jetstream::Context,
    pub(super) stream: jetstream::stream::Stream,
    pub(super) name: String,
    head: Arc<watch::Sender<u64>>,
    batch_slots: tokio::sync::Semaphore,
    tails: Tails,
    /// Readers ahead of scans in progress ([`super::ahead`]).
    pub(super) ahead: Pool,
}

impl std::fmt::Debug for NatsLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsLog")
            .field("stream", &self.name)
            .field("head", &self.head())
            .finish()
    }
}

enum PublishFailure {
    /// Something was appended to the stream since it was read.
    Conflict,
    /// The server had no room for another atomic batch right now.
    Busy,
    Failed(LogError),
}

impl NatsLog {
    /// The log on the (checked) JetStream stream `stream`; follows its head.
    pub(super) async fn open(
        js: jetstream::Context,
        mut stream: jetstream::stream::Stream,
    ) -> Result<NatsLog, LogError> {
        let info = stream
            .info()
            .await
            .map_err(|e| storage("reading the log stream's state")(boxed(e)))?;
        let name = info.config.name.clone();
        let head = Arc::new(watch::channel(info.state.last_sequence).0);
        if let Some(every) = head_poll() {
            tokio::spawn(follow_head(stream.clone(), Arc::downgrade(&head), every));
        }
        Ok(NatsLog {
            js,
            stream,
            name,
            head,
            batch_slots: tokio::sync::Semaphore::new(MAX_INFLIGHT_BATCHES),
            tails: Tails::new(MAX_TAILS),
            ahead: Pool::from_env(),
        })
    }

    /// Scans read ahead on lean connections to these servers (none: page
    /// by page).
    pub(super) fn read_ahead_through(&mut self, endpoints: Vec<super::wire::Endpoint>) {
        self.ahead.connect_to(endpoints);
    }

    fn advance_head(&self, to: u64) {
        self.head.send_if_modified(|h| {
            let moved = to > *h;
            *h = (*h).max(to);
            moved
        });
    }

    /// The sequence and revision of `subject`'s last event ((0, 0): none).
    pub(super) async fn last_of(&self, subject: &str) -> Result<(u64, u64), LogError> {
        match self.stream.direct_get_last_for_subject(subject).await {
            Ok(m) => Ok((m.sequence, decode(m.sequence, &m.payload)?.revision)),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok((0, 0)),
            Err(e) => Err(storage("reading a stream's revision")(boxed(e))),
        }
    }

    async fn append_now(
        &self,
        stream: &str,
        events: Vec<NewEvent>,
        expected: ExpectedRevision,
    ) -> Result<AppendOutcome, LogError> {
        let subject = subject::subject(stream);
        let count = events.len() as u64;
        let mut cached = self.tails.get(&subject);
        for _ in 0..MAX_RETRIES {
            let from_cache = cached.is_some();
            let (last_seq, current) = match cached.take() {
                Some(tail) => tail,
                None => self.last_of(&subject).await?,
            };
            if !expected.accepts(current) {
                if from_cache {
                    continue; // decide on what the server says, not the cache
                }
                return Err(LogError::WrongExpectedRevision {
                    stream: stream.to_string(),
                    expected,
                    current,
                });
            }
            let timestamp = now_ms();
            let mut messages: Vec<OutboundMessage> = events
                .iter()
                .zip(current + 1..)
                .map(|(e, revision)| {
                    let mut payload = Vec::new();
                    codec::encode(
                        &mut payload,
                        stream,
                        revision,
                        timestamp,
                        &e.kind,
                        e.data.get().as_bytes(),
                        e.metadata.as_ref().map(|m| m.get().as_bytes()),
                    );
                    OutboundMessage::new(subject.clone().into(), payload.into(), None)
                })
                .collect();
            let mut headers = HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                last_seq.to_string().as_str(),
            );
            messages[0].headers = Some(headers);
            match self.publish(messages).await {
                Ok(last) => {
                    self.advance_head(last);
                    self.tails.record(&subject, last, current + count);
                    return Ok(AppendOutcome {
                        stream: stream.to_string(),
                        first_position: last + 1 - count,
                        last_position: last,
                        revision: current + count,
                    });
                }
                Err(PublishFailure::Conflict) => continue,
                Err(PublishFailure::Busy) => tokio::time::sleep(BUSY_PAUSE).await,
                Err(PublishFailure::Failed(e)) => return Err(e),
            }
        }
        Err(LogError::Storage(failed(
            "appending events",
            Contention {
                stream: stream.to_string(),
                tries: MAX_RETRIES,
            },
        )))
    }

    /// Publish `messages` (one, or an atomic batch); the last one's sequence.
    async fn publish(&self, mut messages: Vec<OutboundMessage>) -> Result<u64, PublishFailure> {
        use jetstream::context::PublishErrorKind;
        if messages.len() == 1 {
            let m = messages.pop().expect("one message");
            let sent = self
                .js
                .publish_with_headers(m.subject, m.headers.unwrap_or_default(), m.payload)
                .await;
            let acked = match sent {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            return match acked {
                Ok(ack) => Ok(ack.sequence),
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    Err(PublishFailure::Conflict)
                }
                Err(e) => Err(PublishFailure::Failed(LogError::Storage(write_failed(
                    "appending events",
                    e,
                )))),
            };
        }
        let _slot = self.batch_slots.acquire().await.expect("never closed");
        let result = self
            .js
            .batch_publish_all()
            .publish(futures::stream::iter(messages))
            .await;
        match result {
            Ok(ack) => Ok(ack.sequence),
            Err(e) if is_wrong_last_sequence(&e) => Err(PublishFailure::Conflict),
            Err(e) if e.kind() == BatchPublishErrorKind::BatchPublishTooManyInflight => {
                Err(PublishFailure::Busy)
            }
            Err(e) => Err(PublishFailure::Failed(LogError::Storage(write_failed(
                "appending a batch of events",
                e,
            )))),
        }
    }
}

/// Did the server refuse a batch because the stream moved since it was read?
fn is_wrong_last_sequence(e: &jetstream_extra::batch_publish::BatchPublishError) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(api) = err.downcast_ref::<jetstream::Error>() {
            if api.error_code() == jetstream::ErrorCode::STREAM_WRONG_LAST_SEQUENCE {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// Keep `head` at the stream's last sequence until the log is dropped.
async fn follow_head(
    mut stream: jetstream::stream::Stream,
    head: Weak<watch::Sender<u64>>,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let Some(head) = head.upgrade() else { return };
        match stream.info().await {
            Ok(info) => {
                let last = info.state.last_sequence;
                head.send_if_modified(|h| {
                    let moved = last > *h;
                    *h = (*h).max(last);
                    moved
                });
            }
            Err(e) => tracing::debug!(error = %e, "reading the log stream's head"),
        }
    }
}

impl EventLog for NatsLog {
    fn append(
        &self,
        stream: &str,
        events: Vec<NewEvent>,
        expected: ExpectedRevision,
    ) -> BoxFuture<'_, Result<AppendOutcome, LogError>> {
        let stream = stream.to_string();
        Box::pin(async move { self.append_now(&stream, events, expected).await })
    }

    fn read(
        &self,
        from_position: u64,
        selector: &Selector,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, LogError>> {
        let selector = selector.clone();
        Box::pin(async move { self.read_now(from_position, &selector, limit).await })
    }

    fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, LogError>> {
        let stream = stream.to_string();
        Box::pin(async move { self.read_stream_now(&stream, from_revision, limit).await })
    }

    fn head(&self) -> u64 {
        *self.head.borrow()
    }

    fn fresh_head(&self) -> BoxFuture<'_, Result<u64, LogError>> {
        Box::pin(async move {
            // One stream-info request: includes every append any node had
            // acknowledged before it (the polled head may be 100 ms behind).
            let mut stream = self.stream.clone();
            let info = stream
                .info()
                .await
                .map_err(|e| storage("reading the log stream's head")(boxed(e)))?;
            let last = info.state.last_sequence;
            self.advance_head(last);
            Ok(last.max(self.head()))
        })
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    fn streams(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, LogError>> {
        Box::pin(self.streams_now())
    }
}
