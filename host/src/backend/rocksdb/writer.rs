//! The single writer thread of [`super::RocksLog`]: group commit.
//!
//! It takes everything queued, checks each request's expected revision in
//! order against its in-memory stream revisions (including earlier requests
//! of the same group), puts all accepted events into ONE `WriteBatch`,
//! writes it with `sync = true`, and only then acknowledges every request
//! and advances the head.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use rocksdb::WriteBatch;
use tokio::sync::watch;

use super::db::{Db, CF_EVENTS, CF_STREAMS, CF_STREAM_INDEX};
use super::log::{be_u64, index_key, neutral, now_ms, storage, Request, MAX_GROUP_BYTES};
use crate::log::{codec, AppendOutcome, LogError};

/// The single writer: owns the next position and the stream revisions.
pub(super) struct Writer {
    pub(super) db: Db,
    /// Current revision of every stream appended to or looked up so far.
    pub(super) revisions: HashMap<String, u64>,
    pub(super) next_position: u64,
    pub(super) head: Arc<AtomicU64>,
    pub(super) head_tx: watch::Sender<u64>,
    /// Set after a failed write: the batch may or may not be on disk, so the
    /// in-memory positions and revisions can no longer be trusted. Every
    /// later append fails until the server restarts and re-reads the log.
    pub(super) failed: Option<rocksdb::Error>,
}

impl Writer {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Request>) {
        let mut buf = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut bytes = first.bytes;
            let mut group = vec![first];
            while bytes < MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(r) => {
                        bytes += r.bytes;
                        group.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.commit(group, &mut buf);
        }
    }

    fn current_revision(&mut self, stream: &str) -> Result<u64, LogError> {
        if let Some(r) = self.revisions.get(stream) {
            return Ok(*r);
        }
        let stored = self
            .db
            .raw()
            .get_pinned_cf(&self.db.cf(CF_STREAMS), stream.as_bytes())
            .map_err(storage("reading a stream's revision"))?;
        let rev = match stored {
            Some(v) => be_u64(&v, "stream revision")?,
            None => 0,
        };
        self.revisions.insert(stream.to_string(), rev);
        Ok(rev)
    }

    fn commit(&mut self, group: Vec<Request>, buf: &mut Vec<u8>) {
        if let Some(source) = &self.failed {
            for req in group {
                let _ = req.reply.send(Err(LogError::Storage(neutral(
                    "appending after an earlier write failure (restart the server)",
                    source.clone(),
                ))));
            }
            return;
        }
        let db = self.db.clone();
        let events_cf = db.cf(CF_EVENTS);
        let index_cf = db.cf(CF_STREAM_INDEX);
        let streams_cf = db.cf(CF_STREAMS);
        let mut batch = WriteBatch::default();
        let timestamp = now_ms();
        let start = self.next_position;
        let mut next = start;
        // Revisions as they will be once this group is written.
        let mut pending: HashMap<String, u64> = HashMap::new();
        let mut replies = Vec::with_capacity(group.len());
        for req in group {
            let current = match pending.get(&req.stream) {
                Some(r) => Ok(*r),
                None => self.current_revision(&req.stream),
            };
            let current = match current {
                Ok(c) => c,
                Err(e) => {
                    replies.push((req.reply, Err(e)));
                    continue;
                }
            };
            if !req.expected.accepts(current) {
                replies.push((
                    req.reply,
                    Err(LogError::WrongExpectedRevision {
                        stream: req.stream,
                        expected: req.expected,
                        current,
                    }),
                ));
                continue;
            }
            let first_position = next;
            let mut revision = current;
            for e in &req.events {
                revision += 1;
                buf.clear();
                codec::encode(
                    buf,
                    &req.stream,
                    revision,
                    timestamp,
                    &e.kind,
                    e.data.get().as_bytes(),
                    e.metadata.as_ref().map(|m| m.get().as_bytes()),
                );
                batch.put_cf(&events_cf, next.to_be_bytes(), &buf[..]);
                batch.put_cf(
                    &index_cf,
                    index_key(req.stream.as_bytes(), revision),
                    next.to_be_bytes(),
                );
                next += 1;
            }
            batch.put_cf(&streams_cf, req.stream.as_bytes(), revision.to_be_bytes());
            let outcome = AppendOutcome {
                stream: req.stream.clone(),
                first_position,
                last_position: next - 1,
                revision,
            };
            pending.insert(req.stream, revision);
            replies.push((req.reply, Ok(outcome)));
        }
        if next > start {
            match db.raw().write_opt(batch, &Db::sync_write_options()) {
                Ok(()) => {
                    self.revisions.extend(pending);
                    self.next_position = next;
                    self.head.store(next - 1, Ordering::Release);
                    self.head_tx.send_replace(next - 1);
                }
                Err(source) => {
                    tracing::error!(
                        error = %source,
                        "event log write failed; the group was not acknowledged and the log \
                         refuses further appends until the server restarts"
                    );
                    self.failed = Some(source.clone());
                    for (_, r) in replies.iter_mut() {
                        if r.is_ok() {
                            *r = Err(LogError::Storage(neutral(
                                "writing appended events",
                                source.clone(),
                            )));
                        }
                    }
                }
            }
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
    }
}
