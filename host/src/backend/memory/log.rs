//! An event log in process memory: the same semantics as the durable one
//! (atomic batches, expected revisions, dense positions, bounded pages), no
//! durability. For tests of the layers above the log, and for tools that
//! fold a log they loaded themselves.

use std::collections::BTreeMap;
use std::sync::RwLock;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::event::{NewEvent, RecordedEvent};
use crate::log::{AppendOutcome, EventLog, ExpectedRevision, LogError, Page, Selector};
use crate::snapshot::now_ms;

/// Positions examined by one filtered read at most.
const MAX_SCAN: usize = 100_000;

#[derive(Default)]
struct State {
    events: Vec<RecordedEvent>,
    /// Stream → positions of its events, in revision order.
    streams: BTreeMap<String, Vec<u64>>,
}

/// The in-memory log.
pub struct MemoryLog {
    state: RwLock<State>,
    head: watch::Sender<u64>,
}

impl Default for MemoryLog {
    fn default() -> Self {
        MemoryLog {
            state: RwLock::default(),
            head: watch::channel(0).0,
        }
    }
}

impl std::fmt::Debug for MemoryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLog")
            .field("head", &self.head())
            .finish()
    }
}

impl MemoryLog {
    fn append_now(
        &self,
        stream: &str,
        events: Vec<NewEvent>,
        expected: ExpectedRevision,
    ) -> Result<AppendOutcome, LogError> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let current = state.streams.get(stream).map_or(0, |p| p.len() as u64);
        if !expected.accepts(current) {
            return Err(LogError::WrongExpectedRevision {
                stream: stream.to_string(),
                expected,
                current,
            });
        }
        let first = state.events.len() as u64 + 1;
        let timestamp = now_ms();
        let mut revision = current;
        for e in events {
            revision += 1;
            let position = state.events.len() as u64 + 1;
            state.events.push(RecordedEvent {
                position,
                stream: stream.to_string(),
                revision,
                kind: e.kind,
                data: e.data.get().as_bytes().to_vec(),
                metadata: e.metadata.map(|m| m.get().as_bytes().to_vec()),
                timestamp,
            });
            state
                .streams
                .entry(stream.to_string())
                .or_default()
                .push(position);
        }
        let last = state.events.len() as u64;
        drop(state);
        self.head.send_replace(last);
        Ok(AppendOutcome {
            stream: stream.to_string(),
            first_position: first,
            last_position: last,
            revision,
        })
    }

    fn read_now(&self, from: u64, selector: &Selector, limit: usize) -> Page {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let head = state.events.len() as u64;
        let from = from.max(1);
        let mut page = Page {
            events: Vec::new(),
            last_scanned: from - 1,
            next: None,
        };
        let budget = if selector.is_all() {
            limit
        } else {
            MAX_SCAN.max(limit)
        };
        for (scanned, e) in state.events.iter().skip((from - 1) as usize).enumerate() {
            if page.events.len() >= limit || scanned >= budget {
                page.next = Some(page.last_scanned + 1);
                break;
            }
            if selector.matches(&e.stream) {
                page.events.push(e.clone());
            }
            page.last_scanned = e.position;
        }
        if page.next.is_none() && page.last_scanned < head {
            page.next = Some(page.last_scanned + 1);
        }
        page
    }

    fn read_stream_now(&self, stream: &str, from: u64, limit: usize) -> Page {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let from = from.max(1);
        let positions = state.streams.get(stream).map_or(&[][..], |p| p.as_slice());
        let rest = positions.get((from - 1) as usize..).unwrap_or(&[]);
        let events: Vec<RecordedEvent> = rest
            .iter()
            .take(limit)
            .map(|p| state.events[(*p - 1) as usize].clone())
            .collect();
        let last = events.last().map_or(from - 1, |e| e.revision);
        Page {
            next: (rest.len() > events.len()).then_some(last + 1),
            events,
            last_scanned: last,
        }
    }
}

impl EventLog for MemoryLog {
    fn append(
        &self,
        stream: &str,
        events: Vec<NewEvent>,
        expected: ExpectedRevision,
    ) -> BoxFuture<'_, Result<AppendOutcome, LogError>> {
        Box::pin(std::future::ready(
            self.append_now(stream, events, expected),
        ))
    }

    fn read(
        &self,
        from_position: u64,
        selector: &Selector,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, LogError>> {
        Box::pin(std::future::ready(Ok(self.read_now(
            from_position,
            selector,
            limit,
        ))))
    }

    fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, LogError>> {
        Box::pin(std::future::ready(Ok(self.read_stream_now(
            stream,
            from_revision,
            limit,
        ))))
    }

    fn head(&self) -> u64 {
        *self.head.borrow()
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    fn streams(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, LogError>> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let list = state
            .streams
            .iter()
            .map(|(s, p)| (s.clone(), p.len() as u64))
            .collect();
        Box::pin(std::future::ready(Ok(list)))
    }
}
