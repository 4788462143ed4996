//! Native test harness: given events (then more events), then expect a state,
//! a rejection, an unknown event or a query answer. Runs the projection
//! through the same code as the wasm component ([`apply_batch`], [`snapshot`],
//! [`restore`]), with plain `cargo test`.
//!
//! ```
//! # use hume_guest::{EventMeta, Projection, Reject, AnyEvent};
//! # #[derive(Default, serde::Serialize, serde::Deserialize)]
//! # struct Count(u64);
//! # impl Projection for Count {
//! #     type Event = AnyEvent;
//! #     fn handle(&mut self, _: AnyEvent, meta: &EventMeta<'_>) -> Result<(), Reject> {
//! #         if meta.kind == "bad" { return Err(Reject::new("bad event")); }
//! #         self.0 += 1; Ok(())
//! #     }
//! # }
//! use hume_guest::testing::{event, Given};
//! use serde_json::json;
//!
//! Count::given([event("a", json!({})), event("b", json!({}))])
//!     .then_state(json!(2))
//!     .when([event("c", json!({})), event("bad", json!({}))])
//!     .then_rejected(1, "bad event")
//!     .and_state(json!(3));
//! ```

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{apply_batch, restore, snapshot, EventError, EventMeta, Failure, Projection};

/// An event to feed the harness. Positions (1, 2, 3, ...) and per-stream
/// revisions are assigned in order unless set; the stream defaults to `test`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestEvent {
    kind: String,
    data: Vec<u8>,
    stream: String,
    metadata: Vec<u8>,
    position: Option<u64>,
    timestamp: u64,
}

/// An event of `kind` whose data is `data` serialised as JSON.
pub fn event(kind: &str, data: Value) -> TestEvent {
    raw_event(kind, data.to_string())
}

/// An event of `kind` whose data is exactly these bytes (e.g. malformed JSON).
pub fn raw_event(kind: &str, data: impl Into<Vec<u8>>) -> TestEvent {
    TestEvent {
        kind: kind.to_owned(),
        data: data.into(),
        stream: "test".to_owned(),
        metadata: Vec::new(),
        position: None,
        timestamp: 0,
    }
}

impl TestEvent {
    /// Append the event to this stream.
    pub fn stream(mut self, stream: &str) -> Self {
        self.stream = stream.to_owned();
        self
    }

    /// Give the event this metadata.
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata.to_string().into_bytes();
        self
    }

    /// Put the event at this global position (later events follow it).
    pub fn position(mut self, position: u64) -> Self {
        self.position = Some(position);
        self
    }

    /// Stamp the event with this time (ms since the Unix epoch).
    pub fn timestamp(mut self, timestamp: u64) -> Self {
        self.timestamp = timestamp;
        self
    }
}

impl<K: AsRef<str>> From<(K, Value)> for TestEvent {
    fn from((kind, data): (K, Value)) -> Self {
        event(kind.as_ref(), data)
    }
}

/// `P::given(events)`: the harness as a method of every projection type.
pub trait Given: Projection + Sized {
    /// Start from the initial state and apply `events` as one batch.
    fn given<E: Into<TestEvent>>(events: impl IntoIterator<Item = E>) -> Scenario<Self> {
        given(events)
    }
}

impl<P: Projection> Given for P {}

/// Start `P` from its initial state (deployed as `test`) and apply `events`
/// as one batch.
pub fn given<P: Projection, E: Into<TestEvent>>(
    events: impl IntoIterator<Item = E>,
) -> Scenario<P> {
    Scenario::from_state(P::init("test")).when(events)
}

/// A projection under test and the outcome of its last batch.
pub struct Scenario<P> {
    state: P,
    outcome: Result<(), Failure>,
    last_batch: Vec<TestEvent>,
    next_position: u64,
    revisions: BTreeMap<String, u64>,
}

impl<P: Projection> Scenario<P> {
    /// Start from this state instead of the initial one.
    pub fn from_state(state: P) -> Self {
        Scenario {
            state,
            outcome: Ok(()),
            last_batch: Vec::new(),
            next_position: 1,
            revisions: BTreeMap::new(),
        }
    }

    /// Apply more events as one batch. Panics if the previous batch failed
    /// (as the host would, a failed projection receives nothing more).
    #[track_caller]
    pub fn when<E: Into<TestEvent>>(mut self, events: impl IntoIterator<Item = E>) -> Self {
        if let Err(failure) = &self.outcome {
            panic!("`when` after a failed batch ({failure}); expect the failure first");
        }
        let batch: Vec<TestEvent> = events.into_iter().map(Into::into).collect();
        let mut metas = Vec::with_capacity(batch.len());
        for ev in &batch {
            let position = ev.position.unwrap_or(self.next_position);
            assert!(
                position >= self.next_position,
                "event positions must increase: {position} comes after {}",
                self.next_position - 1
            );
            self.next_position = position + 1;
            let revision = self.revisions.entry(ev.stream.clone()).or_insert(0);
            *revision += 1;
            metas.push((position, *revision));
        }
        self.outcome = apply_batch(
            &mut self.state,
            batch
                .iter()
                .zip(&metas)
                .map(|(ev, &(position, revision))| EventMeta {
                    position,
                    stream: &ev.stream,
                    revision,
                    kind: &ev.kind,
                    data: &ev.data,
                    metadata: &ev.metadata,
                    timestamp: ev.timestamp,
                }),
        );
        self.last_batch = batch;
        self
    }

    /// Tell the projection it has caught up at `offset`.
    pub fn caught_up(mut self, offset: u64) -> Self {
        self.state.on_caught_up(offset);
        self
    }

    /// Assert every event applied and the state's JSON equals `expected`;
    /// also checks that the snapshot restores to the same state.
    #[track_caller]
    pub fn then_state(self, expected: Value) -> Self {
        self.then_ok().and_state(expected)
    }

    /// Assert every event of the last batch applied.
    #[track_caller]
    pub fn then_ok(self) -> Self {
        if let Err(failure) = &self.outcome {
            panic!(
                "expected every event to apply, but {}",
                self.describe(failure)
            );
        }
        self
    }

    /// Assert the state's JSON equals `expected`, whatever the outcome of the
    /// last batch (e.g. after a rejection: the events before it applied).
    #[track_caller]
    pub fn and_state(self, expected: Value) -> Self {
        let actual = self.state_json();
        assert!(
            actual == expected,
            "state differs\n  expected: {}\n  actual:   {}",
            expected,
            actual
        );
        let bytes = snapshot(&self.state);
        let restored: P = restore(&bytes).unwrap_or_else(|err| {
            panic!(
                "the snapshot does not restore: {err}\n  snapshot: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert!(
            snapshot(&restored) == bytes,
            "snapshot -> restore -> snapshot changed the state\n  before: {}\n  after:  {}",
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&snapshot(&restored))
        );
        self
    }

    /// Assert the event at `index` of the last batch was rejected with a
    /// message containing `message_part`.
    #[track_caller]
    pub fn then_rejected(self, index: u32, message_part: &str) -> Self {
        match &self.outcome {
            Err(Failure {
                index: i,
                error: EventError::Rejected(message),
            }) if *i == index && message.contains(message_part) => {}
            Err(failure) => panic!(
                "expected event {index} to be rejected with a message containing {message_part:?}, \
                 but {}",
                self.describe(failure)
            ),
            Ok(()) => panic!("expected event {index} to be rejected, but every event applied"),
        }
        self
    }

    /// Assert the event at `index` of the last batch was an unknown kind.
    #[track_caller]
    pub fn then_unknown(self, index: u32) -> Self {
        match &self.outcome {
            Err(Failure {
                index: i,
                error: EventError::UnknownEvent,
            }) if *i == index => {}
            Err(failure) => panic!(
                "expected event {index} to be unknown, but {}",
                self.describe(failure)
            ),
            Ok(()) => panic!("expected event {index} to be unknown, but every event applied"),
        }
        self
    }

    /// Assert `query(request)` answers `expected` (both JSON).
    #[track_caller]
    pub fn then_query(self, request: Value, expected: Value) -> Self {
        let answer = self
            .state
            .query(request.to_string().as_bytes())
            .unwrap_or_else(|err| panic!("query {request} failed: {err}"));
        let answer: Value = serde_json::from_slice(&answer).unwrap_or_else(|err| {
            panic!(
                "query {request} answered invalid JSON ({err}): {}",
                String::from_utf8_lossy(&answer)
            )
        });
        assert!(
            answer == expected,
            "query {request} answered differently\n  expected: {expected}\n  actual:   {answer}"
        );
        self
    }

    /// Assert `query(request)` fails with a message containing `message_part`.
    #[track_caller]
    pub fn then_query_error(self, request: Value, message_part: &str) -> Self {
        match self.state.query(request.to_string().as_bytes()) {
            Err(err) if err.contains(message_part) => {}
            Err(err) => panic!("query {request} failed with {err:?}, not {message_part:?}"),
            Ok(answer) => panic!(
                "query {request} should fail but answered {}",
                String::from_utf8_lossy(&answer)
            ),
        }
        self
    }

    /// The outcome of the last batch.
    pub fn outcome(&self) -> &Result<(), Failure> {
        &self.outcome
    }

    /// The current state.
    pub fn state(&self) -> &P {
        &self.state
    }

    /// The current state, by value.
    pub fn into_state(self) -> P {
        self.state
    }

    /// The current state as JSON (what `snapshot()` returns, parsed).
    pub fn state_json(&self) -> Value {
        let bytes = snapshot(&self.state);
        serde_json::from_slice(&bytes).expect("snapshot() produced invalid JSON")
    }

    fn describe(&self, failure: &Failure) -> String {
        let ev = self.last_batch.get(failure.index as usize);
        match ev {
            Some(ev) => format!(
                "event {} (kind {:?}, data {}) failed: {}",
                failure.index,
                ev.kind,
                String::from_utf8_lossy(&ev.data),
                failure.error
            ),
            None => format!("{failure}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AnyEvent, Reject};
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Default, Serialize, Deserialize)]
    struct Seen {
        kinds: Vec<String>,
        positions: Vec<u64>,
        revisions: Vec<(String, u64)>,
        caught_up: Option<u64>,
    }

    impl Projection for Seen {
        type Event = AnyEvent;
        fn handle(&mut self, _: AnyEvent, meta: &EventMeta<'_>) -> Result<(), Reject> {
            if meta.kind == "bad" {
                return Err(Reject::new(format!("bad at {}", meta.position)));
            }
            self.kinds.push(meta.kind.to_owned());
            self.positions.push(meta.position);
            self.revisions.push((meta.stream.to_owned(), meta.revision));
            Ok(())
        }
        fn on_caught_up(&mut self, offset: u64) {
            self.caught_up = Some(offset);
        }
    }

    #[test]
    fn positions_and_revisions_are_assigned() {
        Seen::given([
            event("a", json!({})),
            event("b", json!({})).stream("other"),
            event("c", json!({})).position(10),
        ])
        .when([("d", json!(null))])
        .caught_up(11)
        .then_state(json!({
            "kinds": ["a", "b", "c", "d"],
            "positions": [1, 2, 10, 11],
            "revisions": [["test", 1], ["other", 1], ["test", 2], ["test", 3]],
            "caught_up": 11
        }));
    }

    #[test]
    fn rejection_keeps_earlier_events() {
        given::<Seen, _>([
            event("a", json!({})),
            event("bad", json!({})),
            event("c", json!({})),
        ])
        .then_rejected(1, "bad at 2")
        .and_state(json!({
            "kinds": ["a"], "positions": [1], "revisions": [["test", 1]], "caught_up": null
        }));
    }

    #[test]
    #[should_panic(expected = "expected every event to apply, but event 0 (kind \"bad\"")]
    fn then_state_reports_the_failing_event() {
        Seen::given([event("bad", json!({"x": 1}))]).then_state(json!({}));
    }

    #[test]
    #[should_panic(expected = "state differs")]
    fn then_state_reports_a_different_state() {
        Seen::given([event("a", json!({}))]).then_state(json!({}));
    }

    #[test]
    #[should_panic(expected = "expected event 0 to be unknown, but every event applied")]
    fn then_unknown_reports_success() {
        Seen::given([event("a", json!({}))]).then_unknown(0);
    }

    #[test]
    #[should_panic(expected = "`when` after a failed batch")]
    fn when_after_failure_panics() {
        Seen::given([event("bad", json!({}))]).when([event("a", json!({}))]);
    }
}
