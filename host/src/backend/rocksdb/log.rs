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
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use tokio::sync::{oneshot, watch};

use super::blocking;
use super::db::{Db, CF_EVENTS, CF_META};
use super::reads::Scan;
use super::writer::{WriteHealth, Writer};
use crate::event::{EventRef, NewEvent};
use crate::log::{
    codec, AppendOutcome, EventLog, ExpectedRevision, LogError, Page, Selector, Writability,
};
use crate::storage::{StorageError, StorageErrorKind};

/// Key in `meta` holding the on-disk format version of the log.
const FORMAT_KEY: &[u8] = b"log.format";
/// Most bytes of payload the writer puts in one group (one WriteBatch).
pub(super) const MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// Tuning of a [`RocksLog`] (input limits are checked above the backend:
/// see [`crate::log::checked`]).
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Most positions one filtered [`EventLog::read`] examines (default
    /// 100,000) before returning a page, full or not.
    pub max_scan: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { max_scan: 100_000 }
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
    reader: Reader,
    tx: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    head_rx: watch::Receiver<u64>,
    health: Arc<Mutex<WriteHealth>>,
}

/// The read side: cheap to clone into a blocking task.
#[derive(Clone)]
pub(super) struct Reader {
    pub(super) db: Db,
    pub(super) options: LogOptions,
    pub(super) head: Arc<AtomicU64>,
}

impl std::fmt::Debug for RocksLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksLog")
            .field("db", &self.reader.db)
            .field("head", &self.head())
            .finish()
    }
}

/// A RocksDB error as the neutral [`StorageError`], with its kind.
pub(super) fn neutral(stage: &'static str, source: rocksdb::Error) -> StorageError {
    let kind = match source.kind() {
        rocksdb::ErrorKind::Corruption => StorageErrorKind::Corruption,
        rocksdb::ErrorKind::IOError if source.to_string().contains("No space left") => {
            StorageErrorKind::NoSpace
        }
        _ => StorageErrorKind::Other,
    };
    StorageError::new(stage, kind, source)
}

pub(super) fn storage(stage: &'static str) -> impl FnOnce(rocksdb::Error) -> LogError {
    move |source| LogError::Storage(neutral(stage, source))
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

/// The position of the newest event in `db` (0 = empty), checking that it
/// decodes: a cheap check that the tail of the log is sound.
pub(super) fn read_head(db: &Db) -> Result<u64, LogError> {
    let mut it = db.raw().raw_iterator_cf(&db.cf(CF_EVENTS));
    it.seek_to_last();
    it.status().map_err(storage("finding the head"))?;
    match (it.key(), it.value()) {
        (Some(k), Some(v)) => {
            let pos = be_u64(k, "last event key")?;
            codec::decode(pos, v).map_err(|e| LogError::Corrupt {
                key: format!("position {pos}"),
                reason: e.0.into(),
            })?;
            Ok(pos)
        }
        _ => Ok(0),
    }
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
        let head = read_head(&db)?;
        let head_cell = Arc::new(AtomicU64::new(head));
        let (head_tx, head_rx) = watch::channel(head);
        let (tx, rx) = mpsc::channel();
        let health = Arc::new(Mutex::new(WriteHealth::default()));
        let writer = Writer {
            db: db.clone(),
            revisions: HashMap::new(),
            next_position: head + 1,
            head: head_cell.clone(),
            head_tx,
            health: health.clone(),
            resync: false,
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
            reader: Reader {
                db,
                options,
                head: head_cell,
            },
            tx: Some(tx),
            writer: Some(handle),
            head_rx,
            health,
        })
    }

    /// The database this log lives in.
    pub fn db(&self) -> &Db {
        &self.reader.db
    }

    /// Visit up to `limit` events matching `selector` from `from_position`
    /// (inclusive) without copying them: the zero-allocation core of
    /// [`EventLog::read`], for readers that filter or encode events
    /// themselves (blocking: call it off the async workers). Bounded like
    /// `read`; the outcome says where to continue.
    pub fn scan(
        &self,
        from_position: u64,
        selector: &Selector,
        limit: usize,
        visit: impl FnMut(EventRef<'_>),
    ) -> Result<Scan, LogError> {
        self.reader.scan(from_position, selector, limit, visit)
    }

    /// [`EventLog::read`], blocking the calling thread.
    pub fn read_blocking(
        &self,
        from_position: u64,
        selector: &Selector,
        limit: usize,
    ) -> Result<Page, LogError> {
        self.reader.read(from_position, selector, limit)
    }

    /// [`EventLog::read_stream`], blocking the calling thread.
    pub fn read_stream_blocking(
        &self,
        stream: &str,
        from_revision: u64,
        limit: usize,
    ) -> Result<Page, LogError> {
        self.reader.read_stream(stream, from_revision, limit)
    }

    async fn append_inner(
        &self,
        stream: String,
        events: Vec<NewEvent>,
        expected: ExpectedRevision,
    ) -> Result<AppendOutcome, LogError> {
        let bytes = events
            .iter()
            .map(|e| {
                e.kind.len() + e.data.get().len() + e.metadata.as_ref().map_or(0, |m| m.get().len())
            })
            .sum();
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
    ) -> BoxFuture<'_, Result<Page, LogError>> {
        let reader = self.reader.clone();
        let selector = selector.clone();
        Box::pin(blocking(
            move || reader.read(from_position, &selector, limit),
            LogError::Storage,
        ))
    }

    fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, LogError>> {
        let reader = self.reader.clone();
        let stream = stream.to_string();
        Box::pin(blocking(
            move || reader.read_stream(&stream, from_revision, limit),
            LogError::Storage,
        ))
    }

    fn head(&self) -> u64 {
        self.reader.head()
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head_rx.clone()
    }

    fn streams(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, LogError>> {
        let reader = self.reader.clone();
        Box::pin(blocking(move || reader.streams(), LogError::Storage))
    }

    fn writability(&self) -> Writability {
        let db = &self.reader.db;
        let free = db.free_space();
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writability(free, db.reserve())
    }
}
