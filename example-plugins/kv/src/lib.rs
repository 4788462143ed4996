//! Example projection `kv`, the seed's own example: a key-value map.
//!
//! - `add` `{"key": "<k>", "value": <any JSON>}` sets `state[k] = value`;
//! - `remove` `{"key": "<k>"}` deletes `k` (removing a missing key is fine);
//! - every other kind is unknown.
//!
//! State: the JSON object of keys, sorted (`{"a": 1, "b": [true]}`).
//! Query: `{"key": "<k>"}` answers `{"value": <value or null>}`.

use hume_guest::{EventMeta, Projection, Reject, StateMap};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The state: every key that was added and not removed since. A
/// [`StateMap`] (hash map, JSON with sorted keys): kv states are large and
/// updated on every event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Kv(pub StateMap<Value>);

/// The events `kv` handles.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvEvent {
    /// Set `key` to `value`.
    Add {
        /// The key.
        key: String,
        /// Any JSON value.
        value: Value,
    },
    /// Delete `key`.
    Remove {
        /// The key.
        key: String,
    },
}

#[derive(Deserialize)]
struct KeyQuery {
    key: String,
}

impl Projection for Kv {
    type Event = KvEvent;

    fn handle(&mut self, event: KvEvent, _meta: &EventMeta<'_>) -> Result<(), Reject> {
        match event {
            KvEvent::Add { key, value } => {
                self.0.insert(key, value);
            }
            KvEvent::Remove { key } => {
                self.0.remove(&key);
            }
        }
        Ok(())
    }

    fn query(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        hume_guest::query_json(request, |q: KeyQuery| {
            Ok(serde_json::json!({ "value": self.0.get(&q.key) }))
        })
    }
}

hume_guest::export_projection!(Kv);

#[cfg(test)]
mod tests {
    use super::*;
    use hume_guest::testing::{event, raw_event, Given};
    use serde_json::json;

    #[test]
    fn add_sets_and_overwrites() {
        Kv::given([
            event(
                "add",
                json!({"key": "b", "value": {"nested": [1, 2.5, null]}}),
            ),
            event("add", json!({"key": "a", "value": 1})),
            event("add", json!({"key": "a", "value": "one"})),
        ])
        .then_state(json!({"a": "one", "b": {"nested": [1, 2.5, null]}}));
    }

    #[test]
    fn remove_deletes_and_tolerates_missing_keys() {
        Kv::given([
            event("add", json!({"key": "a", "value": 1})),
            event("remove", json!({"key": "a"})),
            event("remove", json!({"key": "never"})),
        ])
        .then_state(json!({}));
    }

    #[test]
    fn state_json_is_canonical() {
        let s = Kv::given([
            event("add", json!({"key": "z", "value": {"y": 1, "x": 2}})),
            event("add", json!({"key": "a", "value": null})),
        ])
        .into_state();
        assert_eq!(
            hume_guest::snapshot(&s),
            br#"{"a":null,"z":{"x":2,"y":1}}"#.to_vec()
        );
    }

    #[test]
    fn other_kinds_are_unknown_and_change_nothing() {
        Kv::given([
            event("add", json!({"key": "a", "value": 1})),
            event("rename", json!({"key": "a"})),
        ])
        .then_unknown(1)
        .and_state(json!({"a": 1}));
        Kv::given([event("Add", json!({"key": "a", "value": 1}))]).then_unknown(0);
    }

    #[test]
    fn bad_data_is_rejected_with_the_reason() {
        Kv::given([event("add", json!({"key": "a"}))])
            .then_rejected(0, "missing field `value`")
            .and_state(json!({}));
        Kv::given([event("remove", json!({"key": 7}))])
            .then_rejected(0, "invalid type: integer `7`");
        Kv::given([raw_event("add", "{\"key\":")])
            .then_rejected(0, "invalid data for event kind `add`");
    }

    #[test]
    fn query_by_key() {
        Kv::given([event("add", json!({"key": "a", "value": [1]}))])
            .then_query(json!({"key": "a"}), json!({"value": [1]}))
            .then_query(json!({"key": "b"}), json!({"value": null}))
            .then_query_error(json!({"nope": 1}), "missing field `key`");
    }

    #[test]
    fn describes_its_kinds() {
        assert_eq!(Kv::kinds(), ["add", "remove"]);
    }
}
