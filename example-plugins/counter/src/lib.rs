//! Example projection `counter`: counts events per kind.
//!
//! Handles every kind (its `kinds` list is empty) and ignores the data.
//! State: `{"<kind>": n, ...}`, sorted by kind.

use std::collections::BTreeMap;

use hume_guest::{AnyEvent, EventMeta, Projection, Reject};
use serde::{Deserialize, Serialize};

/// The state: how many events of each kind were applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counter(pub BTreeMap<String, u64>);

impl Projection for Counter {
    type Event = AnyEvent;

    fn handle(&mut self, _event: AnyEvent, meta: &EventMeta<'_>) -> Result<(), Reject> {
        // Allocate the kind's name only the first time it is seen.
        match self.0.get_mut(meta.kind) {
            Some(n) => *n += 1,
            None => {
                self.0.insert(meta.kind.to_owned(), 1);
            }
        }
        Ok(())
    }
}

hume_guest::export_projection!(Counter);

#[cfg(test)]
mod tests {
    use super::*;
    use hume_guest::testing::{event, raw_event, Given};
    use serde_json::json;

    #[test]
    fn counts_every_kind() {
        Counter::given([
            event("opened", json!({"account": "1"})),
            event("deposited", json!({})),
            event("deposited", json!(null)),
            raw_event("weird kind with spaces", "not even json"),
        ])
        .then_state(json!({"deposited": 2, "opened": 1, "weird kind with spaces": 1}))
        .when([event("opened", json!({}))])
        .then_state(json!({"deposited": 2, "opened": 2, "weird kind with spaces": 1}));
    }

    #[test]
    fn starts_empty_and_handles_all_kinds() {
        Counter::given(Vec::<hume_guest::testing::TestEvent>::new()).then_state(json!({}));
        assert!(Counter::kinds().is_empty());
    }
}
