//! [`StateMap`]: a fast, deterministic map for projection state whose JSON
//! is canonical (keys sorted).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::ops::{Deref, DerefMut};

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The hasher of [`StateMap`]: SipHash with fixed keys, so it needs no
/// randomness (no WASI random import) and behaves the same on every run.
pub type FixedState = BuildHasherDefault<DefaultHasher>;

/// A string-keyed hash map for large projection states: O(1) lookups where
/// a `BTreeMap` compares keys O(log n) times per event (noticeably slower in
/// wasm, where `memcmp` is a byte loop). Serialises as a JSON object with
/// sorted keys, exactly like a `BTreeMap<String, V>`, so snapshots stay
/// canonical; sorting costs O(n log n) per snapshot, not per event.
///
/// The hash keys are fixed, so a writer who chooses keys adversarially can
/// provoke collisions; prefer `BTreeMap` when event authors are untrusted
/// and states are small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMap<V>(pub HashMap<String, V, FixedState>);

impl<V> StateMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        StateMap(HashMap::default())
    }

    /// The entries sorted by key (the order of the JSON object).
    pub fn sorted(&self) -> Vec<(&String, &V)> {
        let mut entries: Vec<_> = self.0.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries
    }
}

impl<V> Default for StateMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Deref for StateMap<V> {
    type Target = HashMap<String, V, FixedState>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<V> DerefMut for StateMap<V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<V> FromIterator<(String, V)> for StateMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        StateMap(iter.into_iter().collect())
    }
}

impl<V: Serialize> Serialize for StateMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.sorted() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for StateMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        HashMap::deserialize(deserializer).map(StateMap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_sorted_like_a_btreemap() {
        let mut m = StateMap::new();
        for k in ["b", "a", "é", "A", "aa", "10", "9"] {
            m.insert(k.to_owned(), k.len());
        }
        let btree: std::collections::BTreeMap<_, _> =
            m.iter().map(|(k, v)| (k.clone(), *v)).collect();
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            serde_json::to_string(&btree).unwrap()
        );
        let back: StateMap<usize> =
            serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
