//! The event types every part of Hume shares: what a client appends
//! ([`NewEvent`]) and what the log hands back ([`RecordedEvent`]).

use serde_json::value::RawValue;

/// One event as a client submits it: its kind, its JSON data and optional
/// JSON metadata. The log assigns position, revision and timestamp.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// What happened (e.g. `"deposited"`); must not be empty.
    pub kind: String,
    /// The event's payload: valid JSON text (guaranteed by the type).
    pub data: Box<RawValue>,
    /// Optional JSON metadata (correlation ids, user, ...).
    pub metadata: Option<Box<RawValue>>,
}

impl NewEvent {
    /// Build an event from a kind and JSON values (convenience for tests and
    /// library users; the HTTP API passes the client's raw JSON through).
    pub fn json(
        kind: impl Into<String>,
        data: &serde_json::Value,
        metadata: Option<&serde_json::Value>,
    ) -> NewEvent {
        let raw = |v: &serde_json::Value| {
            RawValue::from_string(v.to_string()).expect("a serde_json::Value is valid JSON")
        };
        NewEvent {
            kind: kind.into(),
            data: raw(data),
            metadata: metadata.map(raw),
        }
    }
}

/// One event as stored in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Global position in the log: 1, 2, 3, ... dense, never reused.
    pub position: u64,
    /// The stream the event was appended to.
    pub stream: String,
    /// Revision within its stream: 1 for the stream's first event.
    pub revision: u64,
    /// The event kind.
    pub kind: String,
    /// The event's data: JSON text as the client sent it.
    pub data: Vec<u8>,
    /// Optional metadata: JSON text as the client sent it.
    pub metadata: Option<Vec<u8>>,
    /// Append time in milliseconds since the Unix epoch.
    pub timestamp: u64,
}

/// A borrowed view of one stored event, valid while the log's iterator
/// stays on it: what [`crate::log::RocksLog::scan`] hands its visitor, so a
/// reader can filter or transform events without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// Global position.
    pub position: u64,
    /// Stream name.
    pub stream: &'a str,
    /// Revision within the stream.
    pub revision: u64,
    /// Event kind.
    pub kind: &'a str,
    /// JSON data.
    pub data: &'a [u8],
    /// Optional JSON metadata.
    pub metadata: Option<&'a [u8]>,
    /// Append time, ms since the Unix epoch.
    pub timestamp: u64,
}

impl EventRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> RecordedEvent {
        RecordedEvent {
            position: self.position,
            stream: self.stream.to_owned(),
            revision: self.revision,
            kind: self.kind.to_owned(),
            data: self.data.to_vec(),
            metadata: self.metadata.map(<[u8]>::to_vec),
            timestamp: self.timestamp,
        }
    }
}
