//! What a NATS failure means for the storage traits: its kind (nothing
//! written and worth retrying, outcome unknown, other), with the NATS error
//! kept as the source.

use crate::storage::{StorageError, StorageErrorKind};

/// Wrap a NATS error for the storage traits: a request nobody answered
/// (no leader, no server) is [`StorageErrorKind::Unavailable`]. For reads,
/// and for writes that were not sent; see [`write_failed`] for the others.
pub(crate) fn failed(stage: &'static str, e: impl Into<async_nats::Error>) -> StorageError {
    let e = e.into();
    let kind = match answer(&*e) {
        Some(Answer::NoLeader | Answer::TimedOut) => StorageErrorKind::Unavailable,
        _ => StorageErrorKind::Other,
    };
    StorageError::new(stage, kind, Boxed(e))
}

/// Wrap the failure of a write that was sent: refused for want of a leader
/// ([`StorageErrorKind::Unavailable`], nothing written), or not
/// acknowledged in time ([`StorageErrorKind::OutcomeUnknown`]).
pub(crate) fn write_failed(stage: &'static str, e: impl Into<async_nats::Error>) -> StorageError {
    let e = e.into();
    let kind = match answer(&*e) {
        Some(Answer::NoLeader) => StorageErrorKind::Unavailable,
        Some(Answer::TimedOut) => StorageErrorKind::OutcomeUnknown,
        None => StorageErrorKind::Other,
    };
    StorageError::new(stage, kind, Boxed(e))
}

/// How a request to JetStream went wrong, when that says something about
/// its outcome.
pub(super) enum Answer {
    /// Nobody took it (no responders: the stream has no leader right now),
    /// or the cluster said it cannot serve it: nothing was done.
    NoLeader,
    /// No answer in time: it may have been done.
    TimedOut,
}

/// The first error in `e`'s chain that tells [`Answer`].
pub(super) fn answer(e: &(dyn std::error::Error + 'static)) -> Option<Answer> {
    use async_nats::jetstream::context::{
        PublishError, PublishErrorKind, RequestError as JsRequestError, RequestErrorKind as JsKind,
    };
    use async_nats::{RequestError, RequestErrorKind};
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(p) = err.downcast_ref::<PublishError>() {
            match p.kind() {
                PublishErrorKind::StreamNotFound => return Some(Answer::NoLeader),
                PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => {
                    return Some(Answer::TimedOut)
                }
                _ => {}
            }
        }
        if let Some(r) = err.downcast_ref::<JsRequestError>() {
            match r.kind() {
                JsKind::NoResponders => return Some(Answer::NoLeader),
                JsKind::TimedOut => return Some(Answer::TimedOut),
                _ => {}
            }
        }
        if let Some(r) = err.downcast_ref::<RequestError>() {
            match r.kind() {
                RequestErrorKind::NoResponders => return Some(Answer::NoLeader),
                RequestErrorKind::TimedOut => return Some(Answer::TimedOut),
                _ => {}
            }
        }
        if let Some(api) = err.downcast_ref::<async_nats::jetstream::Error>() {
            if cluster_busy(api.error_code()) {
                return Some(Answer::NoLeader);
            }
        }
        cur = err.source();
    }
    None
}

/// Does this JetStream error code say the cluster cannot serve right now
/// (no leader, no quorum) rather than that the request was wrong?
pub(super) fn cluster_busy(code: async_nats::jetstream::ErrorCode) -> bool {
    use async_nats::jetstream::ErrorCode;
    [
        ErrorCode::CLUSTER_NOT_AVAILABLE,
        ErrorCode::CLUSTER_NOT_LEADER,
        ErrorCode::CLUSTER_NOT_ACTIVE,
    ]
    .contains(&code)
}

/// Did JetStream refuse to place a stream's replicas (too few servers)?
pub(super) fn short_of_peers(e: &(dyn std::error::Error + 'static)) -> bool {
    use async_nats::jetstream::ErrorCode;
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(api) = err.downcast_ref::<async_nats::jetstream::Error>() {
            let code = api.error_code();
            return code == ErrorCode::CLUSTER_NO_PEERS
                || code == ErrorCode::INSUFFICIENT_RESOURCES;
        }
        cur = err.source();
    }
    false
}

/// A boxed NATS error as an [`std::error::Error`] with its own source chain.
#[derive(Debug)]
struct Boxed(async_nats::Error);

impl std::fmt::Display for Boxed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Boxed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Too many concurrent writers kept moving a stream under an `any` append.
#[derive(Debug, thiserror::Error)]
#[error(
    "stream {stream:?} kept moving under {tries} tries of this append (other writers); retry it"
)]
pub struct Contention {
    pub(super) stream: String,
    pub(super) tries: usize,
}
