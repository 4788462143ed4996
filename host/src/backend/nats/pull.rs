//! The task behind a reader ahead ([`super::ahead::Reader`]): it creates
//! an ephemeral pull consumer (no acks, in memory, one replica), pulls it
//! over a lean connection of its own ([`super::wire`]), decodes what
//! arrives and hands it over in chunks, never holding more than the
//! [`Room`] allows.
//!
//! It never decides anything about the log: a consumer sequence out of
//! order, a status it does not expect, a protocol surprise or the end of
//! what the server had (a pull that expires) ends the task, and the scan
//! goes on page by page from where the reader stood.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::stream::Stream;
use tokio::sync::{mpsc, Notify, Semaphore};

use super::ahead::{Body, Delivered};
use super::subject;
use super::wire::{self, Endpoint, Frame, Wire, WireError};
use crate::log::codec;

/// Messages a reader buffers beyond what was asked for.
const BUFFER_MESSAGES: usize = 16384;
/// Payload bytes a reader buffers: no new pull is asked for above this
/// (so at most this plus two pulls' [`PULL_BYTES`]).
const BUFFER_BYTES: usize = 8 << 20;
/// Messages one pull asks for (two are in flight while there is room).
const PULL: usize = 4096;
/// Bytes one pull brings at most.
const PULL_BYTES: usize = 4 << 20;
/// A pull the server cannot fill (the scan reached the end of the log)
/// waits this long at most; its expiry ends the reader's task.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// The server removes a reader's consumer unused this long (a reader
/// removes it itself when it goes; one left in the pool after its scan
/// ended goes this way).
const INACTIVE: Duration = Duration::from_secs(10);

/// What the task sends at once: messages and their payload bytes.
pub(super) struct Chunk {
    pub messages: Vec<Delivered>,
    pub bytes: usize,
}

/// Room in a reader's buffer, shared by its task (which takes it before
/// asking the server for more) and the reader (which gives it back as it
/// takes messages).
pub(super) struct Room {
    messages: Semaphore,
    bytes: AtomicUsize,
    freed: Notify,
}

impl Room {
    pub(super) fn new() -> Room {
        Room {
            messages: Semaphore::new(BUFFER_MESSAGES),
            bytes: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }

    /// The reader took `chunk` out of the channel.
    pub(super) fn give_back(&self, chunk: &Chunk) {
        self.messages.add_permits(chunk.messages.len());
        self.bytes.fetch_sub(chunk.bytes, Ordering::Relaxed);
        self.freed.notify_one();
    }

    /// A pull ended `unsent` messages short: the room taken for them is
    /// free again.
    fn pull_ended(&self, unsent: usize) {
        self.messages.add_permits(unsent);
    }

    fn bytes_full(&self) -> bool {
        self.bytes.load(Ordering::Relaxed) >= BUFFER_BYTES
    }

    /// Wait until another pull's worth of messages fits, and its bytes
    /// (`false`: the reader is gone).
    async fn take_pull(&self) -> bool {
        while self.bytes_full() {
            // A notification between the test and here is kept: no wait
            // is missed.
            self.freed.notified().await;
        }
        match self.messages.acquire_many(PULL as u32).await {
            Ok(permits) => {
                permits.forget();
                true
            }
            Err(_) => false,
        }
    }
}

/// Why a reader's task stopped (it never decides anything: the scan reads
/// page by page after it).
#[derive(Debug, thiserror::Error)]
pub(super) enum PullError {
    #[error("creating the read-ahead consumer")]
    Consumer(#[source] async_nats::Error),
    #[error("on the read-ahead connection")]
    Wire(#[from] WireError),
    #[error("the read-ahead consumer answered status {0}")]
    Status(u16),
    #[error("a read-ahead message out of order (consumer sequence {got}, expected {expected})")]
    Gap { got: u64, expected: u64 },
    #[error("a read-ahead message without a JetStream reply subject")]
    NotJetStream,
}

/// What a reader's task pulls.
pub(super) struct Pull {
    pub stream: Stream,
    pub endpoints: Vec<Endpoint>,
    pub inbox: String,
    pub consumer: String,
    /// The filter applied here ([`super::ahead::Filtering::Here`]), if any.
    pub here: Option<String>,
    pub filter: String,
    pub from: u64,
}

impl Pull {
    /// Create the consumer, then keep up to two pulls of [`PULL`] messages
    /// in flight while the buffer has room for what is asked.
    pub(super) async fn run(
        self,
        tx: mpsc::UnboundedSender<Chunk>,
        room: Arc<Room>,
    ) -> Result<(), PullError> {
        let config = pull::Config {
            name: Some(self.consumer.clone()),
            filter_subject: match self.here {
                Some(_) => String::new(), // the stream holds only the log
                None => self.filter.clone(),
            },
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: self.from,
            },
            ack_policy: AckPolicy::None,
            inactive_threshold: INACTIVE,
            num_replicas: 1,
            memory_storage: true,
            ..Default::default()
        };
        self.stream
            .create_consumer(config)
            .await
            .map_err(|e| PullError::Consumer(Box::new(e)))?;
        let mut wire =
            Wire::connect(&self.endpoints, "hume-read-ahead", self.inbox.clone()).await?;
        let next = format!(
            "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
            self.stream.cached_info().config.name,
            self.consumer
        );
        let ask = format!(
            "{{\"batch\":{PULL},\"max_bytes\":{PULL_BYTES},\"expires\":{}}}",
            PULL_EXPIRES.as_nanos()
        );
        // Messages asked for and not yet delivered (nor given up on by the
        // server), and the consumer sequence of the next message.
        let mut owed = 0usize;
        let mut expected = 1u64;
        let mut chunk = Chunk {
            messages: Vec::new(),
            bytes: 0,
        };
        loop {
            // Up to two pulls in flight, each with room for all it brings;
            // waiting for room only with nothing owed (the server sends
            // nothing meanwhile).
            while owed <= PULL
                && (owed == 0 || (room.messages.available_permits() >= PULL && !room.bytes_full()))
            {
                if !room.take_pull().await {
                    return Ok(()); // the reader is gone
                }
                wire.request(&next, ask.as_bytes()).await?;
                owed += PULL;
            }
            // What has arrived goes to the reader before waiting for more.
            let frame = match wire.ready()? {
                Some(frame) => frame,
                None => {
                    if !chunk.messages.is_empty() {
                        let full = std::mem::replace(
                            &mut chunk,
                            Chunk {
                                messages: Vec::new(),
                                bytes: 0,
                            },
                        );
                        room.bytes.fetch_add(full.bytes, Ordering::Relaxed);
                        if tx.send(full).is_err() {
                            return Ok(()); // the reader is gone
                        }
                    }
                    wire.next().await?
                }
            };
            let Frame::Msg {
                subject,
                reply,
                headers,
                payload,
            } = frame
            else {
                if let Frame::Err(e) = frame {
                    return Err(WireError::Server(e).into());
                }
                continue;
            };
            if let Some(code) = wire::status(&headers) {
                match code {
                    100 => continue, // a heartbeat
                    // A pull ended before its batch (its bytes were
                    // reached): the server says how many it did not send.
                    409 => match wire::pull_ended(&headers) {
                        Some(unsent) => {
                            owed = owed.saturating_sub(unsent);
                            room.pull_ended(unsent);
                            continue;
                        }
                        None => return Err(PullError::Status(code)),
                    },
                    // 408: a pull expired, at the end of the log.
                    _ => return Err(PullError::Status(code)),
                }
            }
            let d = wire::delivery(&reply).ok_or(PullError::NotJetStream)?;
            if d.consumer_sequence != expected {
                return Err(PullError::Gap {
                    got: d.consumer_sequence,
                    expected,
                });
            }
            expected += 1;
            owed = owed.saturating_sub(1);
            let keep = match &self.here {
                Some(f) => subject::matches_bytes(f, &subject),
                None => true,
            };
            let body = keep.then(|| match codec::decode(d.stream_sequence, &payload) {
                Ok(event) => Body::Event(event),
                Err(_) => Body::Raw(payload.clone()),
            });
            chunk.bytes += payload.len();
            chunk.messages.push(Delivered {
                sequence: d.stream_sequence,
                pending: d.pending,
                body,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(messages: usize, bytes: usize) -> Chunk {
        Chunk {
            messages: (0..messages as u64)
                .map(|sequence| Delivered {
                    sequence,
                    body: None,
                    pending: 0,
                })
                .collect(),
            bytes,
        }
    }

    #[tokio::test]
    async fn room_taken_for_a_pull_comes_back_as_delivered_or_unsent() {
        let room = Room::new();
        for _ in 0..BUFFER_MESSAGES / PULL {
            assert!(room.take_pull().await);
        }
        assert_eq!(room.messages.available_permits(), 0);
        // One pull ends after 669 big messages, the reader takes them.
        room.pull_ended(PULL - 669);
        let got = chunk(669, 669 * 12 * 1024);
        room.bytes.fetch_add(got.bytes, Ordering::Relaxed);
        room.give_back(&got);
        assert_eq!(room.messages.available_permits(), PULL);
        assert_eq!(room.bytes.load(Ordering::Relaxed), 0);
        assert!(room.take_pull().await, "room for another pull");
    }

    #[tokio::test]
    async fn no_pull_is_asked_for_while_the_buffer_is_full_of_bytes() {
        let room = Arc::new(Room::new());
        let full = chunk(10, BUFFER_BYTES);
        room.bytes.fetch_add(full.bytes, Ordering::Relaxed);
        let waiting = tokio::spawn({
            let room = room.clone();
            async move { room.take_pull().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "asked with the buffer full");
        room.give_back(&full);
        assert!(waiting.await.unwrap());
    }
}
