//! [`RocksLog`]: the embedded event log on RocksDB, with group commit.
//!
//! One writer thread owns every write. Appenders validate their input on
//! their own task, queue the request and wait. The writer takes everything
//! queued, checks each request's expected revision in order against its
//! in-memory stream revisions (including earlier requests of the same
//! group), puts all accepted events into ONE `WriteBatch`, writes it with
//! `sync = true`, and only then acknowledges every request and advances the
//! head. So N concurrent appenders share one fsync, a rejected request
//! writes nothing, and an acknowledged one is on disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use rocksdb::ReadOptions;
use tokio::sync::{oneshot, watch};

use super::validate::{validate_append, validate_stream_name, Limits};
use super::writer::Writer;
use super::{
    codec, AppendOutcome, EventLog, EventRef, ExpectedRevision, LogError, NewEvent, Page,
    RecordedEvent, Selector,
};
use crate::db::{Db, CF_EVENTS, CF_META, CF_STREAMS, CF_STREAM_INDEX};

/// Key in `meta` holding the on-disk format version of the log.
const FORMAT_KEY: &[u8] = b"log.format";
/// Most bytes of payload the writer puts in one group (one WriteBatch).
pub(super) const MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// Limits and tuning of a [`RocksLog`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Largest event (kind + data + metadata) in bytes (default 1 MiB).
    pub max_event_bytes: usize,
    /// Most events in one append (default 10,000).
    pub max_batch_events: usize,
    /// Most bytes in one append (default 16 MiB).
    pub max_batch_bytes: usize,
    /// Most positions one filtered [`EventLog::read`] examines (default
    /// 100,000) before returning a page, full or not.
    pub max_scan: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            max_event_bytes: 1024 * 1024,
            max_batch_events: 10_000,
            max_batch_bytes: 16 * 1024 * 1024,
            max_scan: 100_000,
        }
    }
}

pub(super) struct Request {
    pub(super) stream: String,
    pub(super) events: Vec<NewEvent>,
    pub(super) expected: ExpectedRevision,
    pub(super) bytes: usize,
    pub(super) reply: oneshot::Sender<Result<AppendOutcome, LogError>>,
}

/// The RocksDB event log. Dropping it stops the writer after it has
/// finished everything queued.
pub struct RocksLog {
    db: Db,
    options: LogOptions,
    tx: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    head: Arc<AtomicU64>,
    head_rx: watch::Receiver<u64>,
}

impl std::fmt::Debug for RocksLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksLog")
            .field("db", &self.db)
            .field("head", &self.head())
            .finish()
    }
}

pub(super) fn storage(stage: &'static str) -> impl FnOnce(rocksdb::Error) -> LogError {
    move |source| LogError::Storage { stage, source }
}

pub(super) fn be_u64(bytes: &[u8], what: &str) -> Result<u64, LogError> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| LogError::Corrupt {
            key: what.to_string(),
            reason: format!("expected 8 bytes, found {}", bytes.len()),
        })
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Key of one stream-index entry: name, 0x00, revision big-endian. Names
/// never contain control characters, so 0x00 cleanly ends the name.
pub(super) fn index_key(stream: &[u8], revision: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 9);
    k.extend_from_slice(stream);
    k.push(0);
    k.extend_from_slice(&revision.to_be_bytes());
    k
}

impl RocksLog {
    /// Open the log stored in `db`: find the head, start the writer.
    pub fn open(db: Db, options: LogOptions) -> Result<RocksLog, LogError> {
        let raw = db.raw();
        match raw
            .get_cf(&db.cf(CF_META), FORMAT_KEY)
            .map_err(storage("reading the log format"))?
        {
            None => raw
                .put_cf_opt(
                    &db.cf(CF_META),
                    FORMAT_KEY,
                    [codec::FORMAT],
                    &Db::sync_write_options(),
                )
                .map_err(storage("writing the log format"))?,
            Some(v) if v.as_slice() == [codec::FORMAT] => {}
            Some(v) => {
                return Err(LogError::Corrupt {
                    key: "meta log.format".into(),
                    reason: format!(
                        "format {v:?} is not the supported {} (written by another Hume version?)",
                        codec::FORMAT
                    ),
                })
            }
        }
        let head = {
            let mut it = raw.raw_iterator_cf(&db.cf(CF_EVENTS));
            it.seek_to_last();
            it.status().map_err(storage("finding the head"))?;
            match (it.key(), it.value()) {
                (Some(k), Some(v)) => {
                    let pos = be_u64(k, "last event key")?;
                    // The newest event must decode: a cheap check that the
                    // tail of the log is sound before accepting appends.
                    codec::decode(pos, v).map_err(|e| LogError::Corrupt {
                        key: format!("position {pos}"),
                        reason: e.0.into(),
                    })?;
                    pos
                }
                _ => 0,
            }
        };
        let head_cell = Arc::new(AtomicU64::new(head));
        let (head_tx, head_rx) = watch::channel(head);
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            db: db.clone(),
            revisions: HashMap::new(),
            next_position: head + 1,
            head: head_cell.clone(),
            head_tx,
            failed: None,
        };
        let handle = std::thread::Builder::new()
            .name("hume-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LogError::Corrupt {
                key: "writer thread".into(),
                reason: format!("cannot start: {e}"),
            })?;
        tracing::info!(head, "event log opened");
        Ok(RocksLog {
            db,
            options,
            tx: Some(tx),
            writer: Some(handle),
            head: head_cell,
            head_rx,
        })
    }

    /// The database this log lives in.
    pub fn db(&self) -> &Db {
        &self.db
    }

    fn limits(&self) -> Limits {
        Limits {
            max_event_bytes: self.options.max_event_bytes,
            max_batch_events: self.options.max_batch_events,
            max_batch_bytes: self.options.max_batch_bytes,
        }
    }

    fn decode(position: u64, value: &[u8]) -> Result<RecordedEvent, LogError> {
        codec::decode(position, value).map_err(|e| LogError::Corrupt {
            key: format!("position {position}"),
            reason: e.0.into(),
        })
    }

    async fn append_inner(
        &self,
        stream: String,
        events: Vec<NewEvent>,
        expected: ExpectedRevision,
    ) -> Result<AppendOutcome, LogError> {
        let bytes = validate_append(&stream, &events, self.limits())?;
        let (reply, rx) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or(LogError::Closed)?;
        tx.send(Request {
            stream,
            events,
            expected,
            bytes,
            reply,
        })
        .map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// Visit up to `limit` events matching `selector` from `from_position`
    /// (inclusive) without copying them: the zero-allocation core of
    /// [`EventLog::read`], for readers that filter or encode events
    /// themselves. Bounded like `read`; the outcome says where to continue.
    pub fn scan(
        &self,
        from_position: u64,
        selector: &Selector,
        limit: usize,
        mut visit: impl FnMut(EventRef<'_>),
    ) -> Result<Scan, LogError> {
        let head = self.head();
        let from = from_position.max(1);
        let mut out = Scan {
            matched: 0,
            last_scanned: from - 1,
            next: None,
        };
        if from > head || limit == 0 {
            out.next = (limit == 0 && from <= head).then_some(from);
            return Ok(out);
        }
        let budget = if selector.is_all() {
            limit
        } else {
            self.options.max_scan.max(limit)
        };
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound((head + 1).to_be_bytes().to_vec());
        // No explicit readahead: each page opens a fresh iterator, and a
        // fixed readahead would re-read megabytes per page; RocksDB's own
        // auto-readahead grows as a long scan proceeds.
        // RocksDB counts perf statistics per thread on every step by
        // default (thread-local updates that cost ~5% of a scan); Hume does
        // not read them.
        rocksdb::perf::set_perf_stats(rocksdb::perf::PerfStatsLevel::Disable);
        let cf = self.db.cf(CF_EVENTS);
        let mut it = self.db.raw().raw_iterator_cf_opt(&cf, opts);
        it.seek(from.to_be_bytes());
        let mut expect = from;
        let mut scanned = 0usize;
        let mut stopped = false;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let pos = be_u64(k, "event key")?;
            if pos != expect {
                return Err(LogError::Corrupt {
                    key: format!("position {expect}"),
                    reason: format!("missing: the next stored event is at position {pos}"),
                });
            }
            expect += 1;
            let corrupt = |e: codec::DecodeError| LogError::Corrupt {
                key: format!("position {pos}"),
                reason: e.0.into(),
            };
            let stream = codec::peek_stream(v).map_err(corrupt)?;
            if selector.matches_bytes(stream) {
                visit(codec::decode_ref(pos, v).map_err(corrupt)?);
                out.matched += 1;
            }
            out.last_scanned = pos;
            scanned += 1;
            if out.matched >= limit || scanned >= budget {
                stopped = true;
                break;
            }
            it.next();
        }
        it.status().map_err(storage("reading events"))?;
        if out.last_scanned < head {
            if !stopped {
                // The iterator ended before the head it was bounded by.
                return Err(LogError::Corrupt {
                    key: format!("position {expect}"),
                    reason: format!("missing below the head {head}"),
                });
            }
            out.next = Some(out.last_scanned + 1);
        }
        Ok(out)
    }
}

/// What a [`RocksLog::scan`] covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Events handed to the visitor.
    pub matched: usize,
    /// Every position up to this one was examined (see [`Page::last_scanned`]).
    pub last_scanned: u64,
    /// Where to continue, or `None` when the scan reached the head.
    pub next: Option<u64>,
}

impl Drop for RocksLog {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl EventLog for RocksLog {
    fn append(
        &self,
        stream: &str,
        events: Vec<NewEvent>,
        expected: ExpectedRevision,
    ) -> BoxFuture<'_, Result<AppendOutcome, LogError>> {
        Box::pin(self.append_inner(stream.to_string(), events, expected))
    }

    fn read(
        &self,
        from_position: u64,
        selector: &Selector,
        limit: usize,
    ) -> Result<Page, LogError> {
        let mut events = Vec::new();
        let head = self.head();
        if from_position.max(1) <= head {
            events.reserve(
                limit
                    .min(16_384)
                    .min((head + 1 - from_position.max(1)) as usize),
            );
        }
        let scan = self.scan(from_position, selector, limit, |e| {
            events.push(e.to_owned())
        })?;
        Ok(Page {
            events,
            last_scanned: scan.last_scanned,
            next: scan.next,
        })
    }

    fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
        limit: usize,
    ) -> Result<Page, LogError> {
        validate_stream_name(stream).map_err(|reason| LogError::InvalidStream {
            stream: stream.to_string(),
            reason,
        })?;
        let head = self.head();
        let from = from_revision.max(1);
        let prefix_len = stream.len() + 1;
        let mut opts = ReadOptions::default();
        let mut upper = stream.as_bytes().to_vec();
        upper.push(1);
        opts.set_iterate_upper_bound(upper);
        let cf = self.db.cf(CF_STREAM_INDEX);
        let mut it = self.db.raw().raw_iterator_cf_opt(&cf, opts);
        it.seek(index_key(stream.as_bytes(), from));
        let mut positions = Vec::new();
        let mut more = false;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k.len() != prefix_len + 8 {
                return Err(LogError::Corrupt {
                    key: format!("stream index of {stream:?}"),
                    reason: "key of the wrong length".into(),
                });
            }
            let pos = be_u64(v, "stream index value")?;
            if pos > head {
                break; // written but not yet acknowledged
            }
            if positions.len() == limit {
                more = true;
                break;
            }
            positions.push(pos);
            it.next();
        }
        it.status().map_err(storage("reading the stream index"))?;
        let events_cf = self.db.cf(CF_EVENTS);
        let keys: Vec<[u8; 8]> = positions.iter().map(|p| p.to_be_bytes()).collect();
        let values = self
            .db
            .raw()
            .batched_multi_get_cf(&events_cf, keys.iter(), true);
        let mut events = Vec::with_capacity(positions.len());
        for (i, (pos, value)) in positions.iter().zip(values).enumerate() {
            let value = value.map_err(storage("reading stream events"))?;
            let value = value.ok_or_else(|| LogError::Corrupt {
                key: format!("position {pos}"),
                reason: format!(
                    "indexed as {stream:?} revision {} but missing",
                    from + i as u64
                ),
            })?;
            let e = Self::decode(*pos, &value)?;
            if e.stream != stream || e.revision != from + i as u64 {
                return Err(LogError::Corrupt {
                    key: format!("position {pos}"),
                    reason: format!(
                        "indexed as {stream:?} revision {} but holds {:?} revision {}",
                        from + i as u64,
                        e.stream,
                        e.revision
                    ),
                });
            }
            events.push(e);
        }
        let last = events.last().map_or(from - 1, |e| e.revision);
        Ok(Page {
            events,
            last_scanned: last,
            next: more.then_some(last + 1),
        })
    }

    fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head_rx.clone()
    }

    fn streams(&self) -> Result<Vec<(String, u64)>, LogError> {
        let cf = self.db.cf(CF_STREAMS);
        let mut it = self.db.raw().raw_iterator_cf(&cf);
        it.seek_to_first();
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let name = String::from_utf8(k.to_vec()).map_err(|_| LogError::Corrupt {
                key: "streams".into(),
                reason: "a stream name is not UTF-8".into(),
            })?;
            out.push((name, be_u64(v, "stream revision")?));
            it.next();
        }
        it.status().map_err(storage("listing streams"))?;
        Ok(out)
    }
}
