//! The single writer thread of [`super::RocksLog`]: group commit.
//!
//! It takes everything queued, checks each request's expected revision in
//! order against its in-memory stream revisions (including earlier requests
//! of the same group), puts all accepted events into ONE `WriteBatch`,
//! writes it with `sync = true`, and only then acknowledges every request
//! and advances the head.
//!
//! How a failed write is handled depends on what failed (see
//! [`WriteHealth`]):
//! - The disk is full (the free-space watermark refused the batch before
//!   RocksDB saw it, or RocksDB met ENOSPC): the group is refused, nothing
//!   is acknowledged, and the next group is tried as usual, so appends
//!   resume by themselves once space is freed. After an ENOSPC inside
//!   RocksDB the writer re-reads the head and revisions from the database
//!   first, so it never trusts its memory of a batch that failed.
//! - Any other write or fsync error: what reached the disk is unknown, and
//!   a retried fsync may report success over lost pages ("fsyncgate"). The
//!   error is logged once, with what to do, and every later append is
//!   refused until the server restarts and reads back what is really on
//!   disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use rocksdb::WriteBatch;
use tokio::sync::watch;

use super::db::{Db, CF_EVENTS, CF_STREAMS, CF_STREAM_INDEX};
use super::log::{
    be_u64, index_key, neutral, now_ms, read_head, storage, Request, MAX_GROUP_BYTES,
};
use crate::log::{codec, AppendOutcome, LogError, Writability};
use crate::storage::{StorageError, StorageErrorKind};

/// What the writer last learnt about the disk, shared with the log's
/// [`crate::log::EventLog::writability`].
#[derive(Debug, Default)]
pub(super) struct WriteHealth {
    /// A write or fsync failed: nothing more is written until restart.
    pub(super) failed: Option<StorageError>,
    /// The last write was refused for want of space, and none succeeded
    /// since.
    pub(super) disk_full: Option<NoSpace>,
}

/// A batch refused for want of space.
#[derive(Debug)]
pub(super) struct NoSpace {
    pub(super) error: StorageError,
    /// RocksDB itself met ENOSPC (it then refuses writes until its own
    /// recovery finds 64 MiB free), rather than the watermark.
    pub(super) inside_rocksdb: bool,
    /// Size of the refused batch.
    pub(super) bytes: u64,
}

/// Where an appender waits for its outcome.
type Reply = tokio::sync::oneshot::Sender<Result<AppendOutcome, LogError>>;

impl WriteHealth {
    /// The state as the API reports it; `free` and `min_free` are the disk's
    /// free bytes now and the bytes the watermark keeps free (its reserve).
    pub(super) fn writability(&self, free: Option<u64>, min_free: u64) -> Writability {
        if let Some(err) = &self.failed {
            return Writability::Failed {
                error: format!(
                    "{err}. Appends are refused until the server restarts: check the disk \
                     (`dmesg`, SMART), then restart `hume serve`; acknowledged events are safe"
                ),
            };
        }
        let below = free.is_some_and(|f| f < min_free);
        match &self.disk_full {
            // Refused by the watermark, and there is room for that batch
            // now: it would go through.
            Some(full)
                if !full.inside_rocksdb
                    && free.is_some_and(|f| f >= min_free.saturating_add(full.bytes)) =>
            {
                Writability::Writable
            }
            Some(full) => Writability::DiskFull {
                error: full.error.to_string(),
                free_bytes: free,
            },
            None if below => Writability::DiskFull {
                error: format!(
                    "the disk holding the event log has {} bytes free, below the {min_free} \
                     bytes hume serve keeps free (--min-free-space plus what is not yet flushed \
                     from memory): appends are refused until space is freed",
                    free.unwrap_or(0)
                ),
                free_bytes: free,
            },
            None => Writability::Writable,
        }
    }
}

/// The single writer: owns the next position and the stream revisions.
pub(super) struct Writer {
    pub(super) db: Db,
    /// Current revision of every stream appended to or looked up so far.
    pub(super) revisions: HashMap<String, u64>,
    pub(super) next_position: u64,
    pub(super) head: Arc<AtomicU64>,
    pub(super) head_tx: watch::Sender<u64>,
    /// Shared with the log: failed / disk full (see the module docs).
    pub(super) health: Arc<Mutex<WriteHealth>>,
    /// RocksDB met ENOSPC: re-read head and revisions before the next batch.
    pub(super) resync: bool,
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

    fn health(&self) -> std::sync::MutexGuard<'_, WriteHealth> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forget what memory says about the log and read it back from the
    /// database (after RocksDB met ENOSPC on a batch).
    fn resync(&mut self) -> Result<(), LogError> {
        let head = read_head(&self.db)?;
        self.revisions.clear();
        self.next_position = head + 1;
        self.head.store(head, Ordering::Release);
        self.head_tx
            .send_if_modified(|h| std::mem::replace(h, head) != head);
        self.resync = false;
        Ok(())
    }

    fn refuse_all(group: Vec<Request>, err: impl Fn() -> LogError) {
        for req in group {
            let _ = req.reply.send(Err(err()));
        }
    }

    fn commit(&mut self, group: Vec<Request>, buf: &mut Vec<u8>) {
        if let Some(source) = self.health().failed.clone() {
            let stopped = StorageError {
                stage: "appending after an earlier write failure (restart the server)",
                kind: StorageErrorKind::WritesStopped,
                source: source.source.clone(),
            };
            return Self::refuse_all(group, || LogError::Storage(stopped.clone()));
        }
        if self.resync {
            if let Err(err) = self.resync() {
                return Self::refuse_all(group, || err.clone());
            }
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
            let stage = "writing appended events";
            let bytes = batch.size_in_bytes() as u64;
            let written = db.check_space(stage, bytes).and_then(|()| {
                db.raw()
                    .write_opt(batch, &Db::sync_write_options())
                    .map_err(|e| neutral(stage, e))
            });
            match written {
                Ok(()) => {
                    self.revisions.extend(pending);
                    self.next_position = next;
                    self.head.store(next - 1, Ordering::Release);
                    self.head_tx.send_replace(next - 1);
                    let mut health = self.health();
                    if health.disk_full.take().is_some() {
                        tracing::info!("the event log takes appends again: disk space was freed");
                    }
                }
                Err(err) => {
                    self.refuse_accepted(&mut replies, &err);
                    self.record_failure(err, bytes);
                }
            }
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
    }

    fn refuse_accepted(
        &self,
        replies: &mut [(Reply, Result<AppendOutcome, LogError>)],
        err: &StorageError,
    ) {
        for (_, r) in replies.iter_mut() {
            if r.is_ok() {
                *r = Err(LogError::Storage(err.clone()));
            }
        }
    }

    /// Remember a failed batch (nothing of it was acknowledged) and log it
    /// once per episode, saying what to do.
    fn record_failure(&mut self, err: StorageError, bytes: u64) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if err.kind == StorageErrorKind::NoSpace {
            // The watermark's own error is `space::DiskFull`; anything else
            // came out of RocksDB, which then holds writes until it recovers.
            let inside_rocksdb = err
                .source
                .downcast_ref::<super::space::DiskFull>()
                .is_none();
            if inside_rocksdb {
                self.resync = true;
            }
            if health.disk_full.is_none() {
                tracing::error!(
                    error = %err,
                    "the event log's disk is full: appends are refused (507) until space is \
                     freed; reads and projections keep working. Free space on the data \
                     directory's disk; appends resume without a restart"
                );
            }
            health.disk_full = Some(NoSpace {
                error: err,
                inside_rocksdb,
                bytes,
            });
        } else {
            tracing::error!(
                error = %err,
                "event log write failed (a write or fsync error): the batch was not \
                 acknowledged, and since what reached the disk is unknown the log refuses \
                 every further append until `hume serve` restarts. Check the disk (`dmesg`, \
                 SMART, free space) and restart the server; every acknowledged event is safe"
            );
            self.db.stop_writes(err.clone());
            health.failed = Some(err);
        }
    }
}
