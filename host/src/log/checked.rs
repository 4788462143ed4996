//! The validation every backend gets: [`checked`] wraps a backend's
//! [`EventLog`] so that stream names, events and batch limits are checked
//! before a request reaches it. Bad input is refused whole, nothing written.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

pub use super::validate::Limits;
use super::validate::{validate_append, validate_stream_name};
use super::{
    AppendOutcome, EventLog, ExpectedRevision, LogError, NewEvent, Page, Selector, Writability,
};

/// A log that validates every request, then hands it to `backend`.
struct Checked {
    backend: Arc<dyn EventLog>,
    limits: Limits,
}

/// Wrap `backend` so every append and stream read is validated first.
/// Backends assume valid input; the wiring always hands the runtime a
/// checked log.
pub fn checked(backend: Arc<dyn EventLog>, limits: Limits) -> Arc<dyn EventLog> {
    Arc::new(Checked { backend, limits })
}

fn invalid_stream(stream: &str) -> impl FnOnce(String) -> LogError + '_ {
    move |reason| LogError::InvalidStream {
        stream: stream.to_string(),
        reason,
    }
}

impl EventLog for Checked {
    fn append(
        &self,
        stream: &str,
        events: Vec<NewEvent>,
        expected: ExpectedRevision,
    ) -> BoxFuture<'_, Result<AppendOutcome, LogError>> {
        if let Err(err) = validate_append(stream, &events, self.limits) {
            return Box::pin(std::future::ready(Err(err)));
        }
        self.backend.append(stream, events, expected)
    }

    fn read(
        &self,
        from_position: u64,
        selector: &Selector,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, LogError>> {
        // A selector is validated when it is parsed (`Selector::parse`).
        self.backend.read(from_position, selector, limit)
    }

    fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, LogError>> {
        if let Err(err) = validate_stream_name(stream).map_err(invalid_stream(stream)) {
            return Box::pin(std::future::ready(Err(err)));
        }
        self.backend.read_stream(stream, from_revision, limit)
    }

    fn head(&self) -> u64 {
        self.backend.head()
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.backend.watch_head()
    }

    fn refresh_head(&self) -> BoxFuture<'_, Result<u64, LogError>> {
        self.backend.refresh_head()
    }

    fn streams(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, LogError>> {
        self.backend.streams()
    }

    fn writability(&self) -> Writability {
        self.backend.writability()
    }
}
