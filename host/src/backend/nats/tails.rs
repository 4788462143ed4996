//! The last known tail (sequence and revision of the last event) of the
//! streams this node appended to, so an append can publish on that
//! expectation at once instead of reading the tail first. A stale entry
//! costs one refused publish (JetStream checks the expected sequence) and
//! a fresh read; it never decides an append's outcome.

use std::collections::HashMap;
use std::sync::Mutex;

/// Tails by subject, at most `cap` of them (all forgotten when full).
#[derive(Debug)]
pub(super) struct Tails {
    map: Mutex<HashMap<String, (u64, u64)>>,
    cap: usize,
}

impl Tails {
    pub(super) fn new(cap: usize) -> Tails {
        Tails {
            map: Mutex::new(HashMap::new()),
            cap,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, u64)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last known `(sequence, revision)` of `subject`.
    pub(super) fn get(&self, subject: &str) -> Option<(u64, u64)> {
        self.map().get(subject).copied()
    }

    /// `subject`'s tail is at `sequence`/`revision`, unless a later one is
    /// already known (appends finish out of order).
    pub(super) fn record(&self, subject: &str, sequence: u64, revision: u64) {
        let mut map = self.map();
        if map.len() >= self.cap && !map.contains_key(subject) {
            map.clear();
        }
        let entry = map.entry(subject.to_string()).or_insert((0, 0));
        if sequence > entry.0 {
            *entry = (sequence, revision);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_tail_and_a_bounded_size() {
        let tails = Tails::new(2);
        assert_eq!(tails.get("a"), None);
        tails.record("a", 5, 2);
        tails.record("a", 3, 1);
        assert_eq!(tails.get("a"), Some((5, 2)), "an older tail does not win");
        tails.record("b", 6, 1);
        tails.record("c", 7, 1);
        assert_eq!((tails.get("a"), tails.get("c")), (None, Some((7, 1))));
    }
}
