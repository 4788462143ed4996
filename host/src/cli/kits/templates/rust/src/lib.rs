//! Projection `{{name}}`: counts increments.
//!
//! - `incremented` `{"by": n}` (n a positive integer) adds n to the count;
//! - `reset` `{}` sets it back to 0;
//! - every other kind is unknown.
//!
//! State: `{"count": n}`. Query: `{}` answers `{"count": n}`.

use hume_guest::{reject, EventMeta, Projection, Reject};
use serde::{Deserialize, Serialize};

/// The state (serialised as JSON for snapshots).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// The running total.
    pub count: u64,
}

/// The events: the variant name is the event kind, its fields the data.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Add `by` to the count.
    Incremented {
        /// How much to add (at least 1).
        by: u64,
    },
    /// Start again from 0.
    Reset {},
}

impl Projection for State {
    type Event = Event;

    fn handle(&mut self, event: Event, _meta: &EventMeta<'_>) -> Result<(), Reject> {
        match event {
            Event::Incremented { by } => {
                if by == 0 {
                    reject!("incremented by 0: `by` must be at least 1");
                }
                self.count += by;
            }
            Event::Reset {} => self.count = 0,
        }
        Ok(())
    }

    fn query(&self, _request: &[u8]) -> Result<Vec<u8>, String> {
        Ok(serde_json::to_vec(&serde_json::json!({ "count": self.count })).unwrap())
    }
}

hume_guest::export_projection!(State);

#[cfg(test)]
mod tests {
    use super::*;
    use hume_guest::testing::{event, Given};
    use serde_json::json;

    #[test]
    fn counts_increments_and_resets() {
        State::given([
            event("incremented", json!({"by": 2})),
            event("incremented", json!({"by": 3})),
        ])
        .then_state(json!({"count": 5}));
        State::given([
            event("incremented", json!({"by": 2})),
            event("reset", json!({})),
        ])
        .then_state(json!({"count": 0}));
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        State::given([event("incremented", json!({"by": 0}))]).then_rejected(0, "at least 1");
        State::given([event("decremented", json!({"by": 1}))]).then_unknown(0);
    }
}
