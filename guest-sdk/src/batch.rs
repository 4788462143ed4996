//! The SDK's core, independent of the component ABI: apply events (one or a
//! batch, stopping at the first failure), snapshot and restore the state.

use std::fmt;

use crate::decode::{decode, DecodeError};
use crate::{Projection, Reject};

/// One event as the projection sees it, borrowed from the batch. Handlers get
/// it next to the decoded event (for the position, stream, timestamp, or the
/// raw data of an [`AnyEvent`](crate::AnyEvent)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta<'a> {
    /// Global position in the log (the projection's offset once applied).
    pub position: u64,
    /// Name of the stream the event was appended to.
    pub stream: &'a str,
    /// Revision of the event within its stream.
    pub revision: u64,
    /// The event's kind, e.g. `deposited`.
    pub kind: &'a str,
    /// The event's payload: UTF-8 JSON by convention.
    pub data: &'a [u8],
    /// The event's metadata: UTF-8 JSON, or empty.
    pub metadata: &'a [u8],
    /// Milliseconds since the Unix epoch when the event was appended.
    pub timestamp: u64,
}

/// Why one event could not be applied (the WIT `event-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// The projection does not handle this kind; the state is untouched.
    UnknownEvent,
    /// The event is invalid (bad data, or refused by the projection).
    Rejected(String),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::UnknownEvent => f.write_str("unknown event"),
            EventError::Rejected(msg) => write!(f, "rejected: {msg}"),
        }
    }
}

impl std::error::Error for EventError {}

impl From<Reject> for EventError {
    fn from(reject: Reject) -> Self {
        EventError::Rejected(reject.0)
    }
}

/// The first event of a batch that failed (the WIT `failure`): every event
/// before `index` was applied, it and the rest were not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Zero-based index within the batch.
    pub index: u32,
    /// What went wrong.
    pub error: EventError,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {} of the batch: {}", self.index, self.error)
    }
}

impl std::error::Error for Failure {}

/// Decode one event and apply it to `state`.
#[inline]
pub fn apply<P: Projection>(state: &mut P, event: &EventMeta<'_>) -> Result<(), EventError> {
    let typed = match decode::<P::Event>(event.kind, event.data) {
        Ok(typed) => typed,
        Err(DecodeError::UnknownKind) => return Err(EventError::UnknownEvent),
        Err(DecodeError::BadData(msg)) => {
            return Err(EventError::Rejected(format!(
                "invalid data for event kind `{}`: {msg}",
                event.kind
            )))
        }
    };
    state.handle(typed, event).map_err(EventError::from)
}

/// Apply a batch in order, stopping at the first event that fails.
pub fn apply_batch<'a, P: Projection>(
    state: &mut P,
    events: impl IntoIterator<Item = EventMeta<'a>>,
) -> Result<(), Failure> {
    for (index, event) in events.into_iter().enumerate() {
        if let Err(error) = apply(state, &event) {
            return Err(Failure {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                error,
            });
        }
    }
    Ok(())
}

/// The state as [canonical JSON](crate::canonical) bytes: keys sorted
/// whatever the state's type, no whitespace, numbers as every Hume kit
/// writes them. Serialising a well-formed state cannot fail; a state that
/// cannot be JSON (e.g. a map with non-string keys) is a bug in the
/// projection and panics with a message saying so.
pub fn snapshot<P: Projection>(state: &P) -> Vec<u8> {
    match crate::canonical::to_vec(state) {
        Ok(bytes) => bytes,
        Err(err) => panic!(
            "the projection state cannot be serialised as JSON: {err} \
             (use string keys in maps and finite numbers)"
        ),
    }
}

/// Parse a state produced earlier by [`snapshot`].
pub fn restore<P: Projection>(bytes: &[u8]) -> Result<P, String> {
    serde_json::from_slice(bytes).map_err(|err| {
        format!("the snapshot is not a state of this projection (expected its JSON state): {err}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
    struct Sum {
        total: i64,
        last_position: u64,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum SumEvent {
        Added { n: i64 },
        Boom,
    }

    impl Projection for Sum {
        type Event = SumEvent;
        fn handle(&mut self, event: SumEvent, meta: &EventMeta<'_>) -> Result<(), Reject> {
            match event {
                SumEvent::Added { n } => {
                    self.total += n;
                    self.last_position = meta.position;
                    Ok(())
                }
                SumEvent::Boom => Err(Reject::new("boom at once")),
            }
        }
    }

    fn ev<'a>(position: u64, kind: &'a str, data: &'a [u8]) -> EventMeta<'a> {
        EventMeta {
            position,
            stream: "s",
            revision: position,
            kind,
            data,
            metadata: b"",
            timestamp: 0,
        }
    }

    #[test]
    fn batch_applies_in_order() {
        let mut s = Sum::default();
        apply_batch(
            &mut s,
            [ev(1, "added", b"{\"n\":2}"), ev(2, "added", b"{\"n\":3}")],
        )
        .unwrap();
        assert_eq!(
            s,
            Sum {
                total: 5,
                last_position: 2
            }
        );
    }

    #[test]
    fn batch_stops_at_first_failure_with_its_index() {
        let mut s = Sum::default();
        let err = apply_batch(
            &mut s,
            [
                ev(1, "added", b"{\"n\":2}"),
                ev(2, "nope", b"{}"),
                ev(3, "added", b"{\"n\":3}"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err,
            Failure {
                index: 1,
                error: EventError::UnknownEvent
            }
        );
        assert_eq!(
            s,
            Sum {
                total: 2,
                last_position: 1
            }
        );

        let err = apply_batch(&mut s, [ev(3, "added", b"{\"n\":\"x\"}")]).unwrap_err();
        assert_eq!(err.index, 0);
        match err.error {
            EventError::Rejected(m) => {
                assert!(
                    m.starts_with("invalid data for event kind `added`: invalid type"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }

        let err =
            apply_batch(&mut s, [ev(3, "added", b"{\"n\":1}"), ev(4, "boom", b"")]).unwrap_err();
        assert_eq!(
            err,
            Failure {
                index: 1,
                error: EventError::Rejected("boom at once".into())
            }
        );
        assert_eq!(
            s,
            Sum {
                total: 3,
                last_position: 3
            }
        );
    }

    #[test]
    fn snapshot_round_trips_and_restore_explains_bad_bytes() {
        let s = Sum {
            total: -4,
            last_position: 9,
        };
        let bytes = snapshot(&s);
        // fields sorted, not in declaration order
        assert_eq!(bytes, br#"{"last_position":9,"total":-4}"#);
        assert_eq!(restore::<Sum>(&bytes).unwrap(), s);
        let err = restore::<Sum>(br#"{"total":"x"}"#).unwrap_err();
        assert!(err.contains("not a state of this projection"), "{err}");
        assert!(restore::<Sum>(b"").is_err());
    }

    #[test]
    fn kinds_default_to_variant_names() {
        assert_eq!(Sum::kinds(), ["added", "boom"]);
    }

    #[test]
    fn query_json_helper() {
        #[derive(Deserialize)]
        struct Q {
            x: u32,
        }
        let out =
            crate::query_json(br#"{"x":2}"#, |q: Q| Ok(serde_json::json!({"y": q.x * 2}))).unwrap();
        assert_eq!(out, br#"{"y":4}"#);
        let err = crate::query_json(b"{}", |q: Q| Ok(q.x)).unwrap_err();
        assert!(err.starts_with("bad query: missing field `x`"), "{err}");
        assert_eq!(
            Sum::default().query(b"{}").unwrap_err(),
            "this projection answers no queries"
        );
    }

    #[test]
    fn reject_macro_returns_early() {
        fn check(n: i64) -> Result<(), Reject> {
            if n < 0 {
                crate::reject!("negative amount {n}");
            }
            Ok(())
        }
        assert_eq!(check(-1), Err(Reject::new("negative amount -1")));
        assert_eq!(check(1), Ok(()));
    }
}
