//! The durable event log: atomic appends with optimistic concurrency, reads
//! in bounded pages, and an observable head position.
//!
//! [`EventLog`] is the small trait the rest of Hume reads and writes
//! through; every call is async, reads included, so no storage call blocks
//! an async worker. Backends live in [`crate::backend`]. Input validation
//! (stream names, events, limits) sits above the trait in [`checked`], so
//! every backend gets it and none can forget it.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::storage::StorageError;

mod checked;
pub mod codec;
pub mod coverage;
pub mod json_check;
mod validate;

pub use crate::event::{EventRef, NewEvent, RecordedEvent};
pub use checked::{checked, Limits};
pub use validate::{validate_append, validate_stream_name};

/// What the writer expects the stream's current revision to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpectedRevision {
    /// No check.
    #[default]
    Any,
    /// The stream must not exist yet (same as `Exact(0)`).
    NoStream,
    /// The stream's current revision (its last event's revision) must be
    /// exactly this; 0 means the stream does not exist.
    Exact(u64),
}

impl ExpectedRevision {
    /// Does a stream at `current` revision (0 = missing) satisfy this?
    pub fn accepts(self, current: u64) -> bool {
        match self {
            ExpectedRevision::Any => true,
            ExpectedRevision::NoStream => current == 0,
            ExpectedRevision::Exact(n) => current == n,
        }
    }
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedRevision::Any => f.write_str("any"),
            ExpectedRevision::NoStream => f.write_str("no_stream"),
            ExpectedRevision::Exact(n) => write!(f, "{n}"),
        }
    }
}

impl std::str::FromStr for ExpectedRevision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "any" => Ok(ExpectedRevision::Any),
            "no_stream" => Ok(ExpectedRevision::NoStream),
            n => n.parse().map(ExpectedRevision::Exact).map_err(|_| {
                format!(
                    "`{s}` is not an expected revision: use `any`, `no_stream` or the stream's \
                     current revision (a non-negative integer)"
                )
            }),
        }
    }
}

/// The result of a successful append.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppendOutcome {
    /// The stream appended to.
    pub stream: String,
    /// Global position of the batch's first event.
    pub first_position: u64,
    /// Global position of the batch's last event.
    pub last_position: u64,
    /// The stream's revision after the append (its last event's revision).
    pub revision: u64,
}

/// Whether the log takes appends right now, for `/health`, `/metrics` and
/// the operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Writability {
    /// Appends are accepted.
    Writable,
    /// The disk is full (or below the free-space watermark): appends are
    /// refused with a 507 until space is freed, then resume on their own.
    /// Reads keep working.
    DiskFull {
        /// What the last refused write reported, with what to do.
        error: String,
        /// Bytes free on the log's disk, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        free_bytes: Option<u64>,
    },
    /// A write or fsync failed, so what reached the disk is unknown: every
    /// append is refused until the server restarts and reads the log back.
    /// Reads keep working.
    Failed {
        /// The failure, with what to do.
        error: String,
    },
}

impl Writability {
    /// Is it [`Writability::Writable`]?
    pub fn is_writable(&self) -> bool {
        matches!(self, Writability::Writable)
    }
}

/// A page of events from a bounded read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The events, in position (or, for a stream read, revision) order.
    pub events: Vec<RecordedEvent>,
    /// For [`EventLog::read`]: every position up to and including this one
    /// was examined, so a filtered reader can move its cursor past it even
    /// when nothing matched. For [`EventLog::read_stream`]: the last revision
    /// returned (or `from_revision - 1`).
    pub last_scanned: u64,
    /// Where to continue (`from_position` / `from_revision` of the next
    /// page) when the page stopped early (limit or scan budget); `None` when
    /// it reached the end of what is in the log right now.
    pub next: Option<u64>,
}

/// What a reader follows: every stream, or a set of exact stream names
/// and/or categories (`"account-*"` = every stream starting with `account-`).
/// Cheap to clone (shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    inner: Arc<SelectorInner>,
}

#[derive(Debug, PartialEq, Eq)]
struct SelectorInner {
    all: bool,
    streams: HashSet<Box<[u8]>>,
    prefixes: Vec<Box<[u8]>>,
}

impl Selector {
    /// Every stream.
    pub fn all() -> Selector {
        Selector {
            inner: Arc::new(SelectorInner {
                all: true,
                streams: HashSet::new(),
                prefixes: Vec::new(),
            }),
        }
    }

    /// Parse entries: `"*"` = all, `"prefix-*"` = a category, anything else
    /// an exact stream name.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Selector, LogError> {
        if entries.is_empty() {
            return Err(LogError::InvalidSelector {
                entry: String::new(),
                reason: "no streams given: name at least one stream, `category-*` or `*`".into(),
            });
        }
        let mut sel = SelectorInner {
            all: false,
            streams: HashSet::new(),
            prefixes: Vec::new(),
        };
        for entry in entries {
            let entry = entry.as_ref();
            if entry == "*" {
                return Ok(Selector::all());
            }
            let invalid = |reason: String| LogError::InvalidSelector {
                entry: entry.to_string(),
                reason,
            };
            if let Some(prefix) = entry.strip_suffix('*') {
                validate_stream_name(prefix).map_err(invalid)?;
                if prefix.contains('*') {
                    return Err(invalid("`*` is only allowed at the end".into()));
                }
                sel.prefixes.push(prefix.as_bytes().into());
            } else {
                validate_stream_name(entry).map_err(invalid)?;
                sel.streams.insert(entry.as_bytes().into());
            }
        }
        Ok(Selector {
            inner: Arc::new(sel),
        })
    }

    /// Parse the entries of a new deployment: as [`Selector::parse`], but a
    /// `*` anywhere but at the end, and `[` or `]`, are refused instead of
    /// being taken as part of a literal stream name (`'*-1'` and
    /// `'cart-[0-9]'` are patterns only a shell knows). Stored deployments
    /// are read with the lenient [`Selector::parse`].
    pub fn parse_patterns<S: AsRef<str>>(entries: &[S]) -> Result<Selector, LogError> {
        for entry in entries {
            check_pattern(entry.as_ref())?;
        }
        Selector::parse(entries)
    }

    /// One exact stream.
    pub fn stream(name: &str) -> Result<Selector, LogError> {
        Selector::parse(&[name])
    }

    /// One category: every stream whose name starts with `prefix`.
    pub fn category(prefix: &str) -> Result<Selector, LogError> {
        Selector::parse(&[format!("{prefix}*")])
    }

    /// Does this selector match every stream?
    pub fn is_all(&self) -> bool {
        self.inner.all
    }

    /// Does `stream` match?
    pub fn matches(&self, stream: &str) -> bool {
        self.matches_bytes(stream.as_bytes())
    }

    /// Does the stream named by these bytes match?
    #[inline]
    pub fn matches_bytes(&self, stream: &[u8]) -> bool {
        let s = &self.inner;
        s.all || s.streams.contains(stream) || s.prefixes.iter().any(|p| stream.starts_with(p))
    }

    /// The entries in their textual form (sorted), e.g. for display or
    /// to store in a configuration and [`Selector::parse`] again.
    pub fn entries(&self) -> Vec<String> {
        if self.inner.all {
            return vec!["*".to_string()];
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut out: Vec<String> = self.inner.streams.iter().map(|s| text(s)).collect();
        out.extend(self.inner.prefixes.iter().map(|p| format!("{}*", text(p))));
        out.sort();
        out
    }

    /// The exact stream names (no categories), when this selector names
    /// only exact streams: such a reader can use per-stream reads.
    pub fn exact_streams(&self) -> Option<Vec<String>> {
        let s = &self.inner;
        (!s.all && s.prefixes.is_empty()).then(|| {
            let mut v: Vec<String> = s
                .streams
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
            v.sort();
            v
        })
    }
}

/// Refuse what looks like a glob but is not one of ours: `*` other than at
/// the end, `[` and `]`.
fn check_pattern(entry: &str) -> Result<(), LogError> {
    let invalid = |reason: &str| LogError::InvalidSelector {
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    let body = entry.strip_suffix('*').unwrap_or(entry);
    if body.contains('*') {
        return Err(invalid(
            "`*` may only end an entry (`cart-*`: every stream whose name starts with `cart-`; \
             `*`: every stream); to follow streams that end alike, name each one",
        ));
    }
    if entry.contains(['[', ']']) {
        return Err(invalid(
            "`[` and `]` are not supported: a selector is an exact stream name, a prefix \
             followed by `*` (`cart-*`) or `*`; name each stream, or use their common prefix",
        ));
    }
    Ok(())
}

/// Errors of the event log. Input errors name the field; each message says
/// what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// The stream name is not acceptable.
    #[error("invalid stream name {stream:?}: {reason}")]
    InvalidStream {
        /// The name as given.
        stream: String,
        /// Why it was refused.
        reason: String,
    },
    /// An entry of a selector is not acceptable.
    #[error("invalid stream selector {entry:?}: {reason}")]
    InvalidSelector {
        /// The entry as given.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// The batch holds no events.
    #[error("`events` is empty: send at least one event")]
    EmptyBatch,
    /// A field of one event is not acceptable.
    #[error("`events[{index}].{field}` {reason}")]
    InvalidEvent {
        /// Index of the event in the batch.
        index: usize,
        /// The field (`kind`, `data`, `metadata`).
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// One event is larger than the configured limit.
    #[error(
        "`events[{index}]` is {size} bytes (kind + data + metadata), over the limit of {max} \
         bytes per event: make the event smaller or raise the server's --max-event-bytes"
    )]
    EventTooLarge {
        /// Index of the event in the batch.
        index: usize,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The batch has too many events or bytes.
    #[error(
        "`events` holds {events} events / {bytes} bytes, over the limit of {max_events} events / \
         {max_bytes} bytes per append: split it into several appends (e.g. `hume append --file \
         F --batch-size N`)"
    )]
    BatchTooLarge {
        /// Events in the batch.
        events: usize,
        /// Bytes in the batch.
        bytes: usize,
        /// Limit on events.
        max_events: usize,
        /// Limit on bytes.
        max_bytes: usize,
    },
    /// Optimistic concurrency check failed; nothing was written.
    #[error(
        "wrong expected revision for stream {stream:?}: expected {expected}, but its current \
         revision is {current}; nothing was written. Read the stream again and retry with \
         expected revision {current}"
    )]
    WrongExpectedRevision {
        /// The stream.
        stream: String,
        /// What the writer expected.
        expected: ExpectedRevision,
        /// The stream's current revision (0 = does not exist).
        current: u64,
    },
    /// The storage backend failed.
    #[error("the event log's {0}")]
    Storage(#[source] StorageError),
    /// A stored value does not decode: the data directory is damaged.
    #[error(
        "the event log is damaged at {key}: {reason}. Stop the server and restore the data \
         directory from a backup"
    )]
    Corrupt {
        /// Where (e.g. `position 42`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The log is shutting down (or its writer stopped after an error).
    #[error("the event log is closed (the server is shutting down or its writer failed); retry against a running server")]
    Closed,
}

impl LogError {
    /// The request field an input error is about (`stream`, `events[2].kind`,
    /// `expected_revision`, ...), for the HTTP API's 400 responses.
    pub fn field(&self) -> Option<String> {
        match self {
            LogError::InvalidStream { .. } => Some("stream".into()),
            LogError::InvalidSelector { .. } => Some("streams".into()),
            LogError::EmptyBatch | LogError::BatchTooLarge { .. } => Some("events".into()),
            LogError::InvalidEvent { index, field, .. } => Some(format!("events[{index}].{field}")),
            LogError::EventTooLarge { index, .. } => Some(format!("events[{index}]")),
            LogError::WrongExpectedRevision { .. } => Some("expected_revision".into()),
            _ => None,
        }
    }
}

/// The event log as the rest of Hume sees it. Dyn-compatible:
/// `Arc<dyn EventLog>`.
pub trait EventLog: Send + Sync + 'static {
    /// Append `events` to `stream` as one atomic batch, after checking
    /// `expected`. Resolves once the batch is durable (fsynced); on any
    /// error nothing was written.
    fn append(
        &self,
        stream: &str,
        events: Vec<NewEvent>,
        expected: ExpectedRevision,
    ) -> BoxFuture<'_, Result<AppendOutcome, LogError>>;

    /// Up to `limit` events matching `selector` from `from_position`
    /// (inclusive; 0 and 1 both mean the start), in position order. The
    /// scan itself is bounded too; see [`Page`].
    fn read(
        &self,
        from_position: u64,
        selector: &Selector,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, LogError>>;

    /// Up to `limit` events of one stream from `from_revision` (inclusive;
    /// 0 and 1 both mean the start), in revision order.
    fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, LogError>>;

    /// Position of the last durable event (0 = empty log).
    fn head(&self) -> u64;

    /// The head as the store knows it now, asked at call time: for a log
    /// shared by several nodes, [`EventLog::head`] may lag the events other
    /// nodes acknowledged; this does not, and moves `head` (and its watch)
    /// up to it. Consistent reads wait for this position, and a
    /// projection's `catch_up_after` poll asks for it (the safety net under
    /// a missed head update).
    fn fresh_head(&self) -> BoxFuture<'_, Result<u64, LogError>> {
        let head = self.head();
        Box::pin(async move { Ok(head) })
    }

    /// A watch on [`EventLog::head`]: wakes when new events are durable.
    fn watch_head(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Every stream with its current revision, sorted by name.
    fn streams(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, LogError>>;

    /// Whether appends are accepted right now (cheap: one `statvfs` at
    /// most). Backends that cannot fill a disk are always writable.
    fn writability(&self) -> Writability {
        Writability::Writable
    }
}
