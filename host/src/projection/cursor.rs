//! Where a projection stands in the log: the one owner of its offset.
//!
//! - `offset`: the position of the last event applied to the state (0 =
//!   none). Only a fold moves it, and only forward.
//! - `scanned`: every position up to here has been examined; nothing after
//!   `offset` and up to `scanned` is for this projection (other streams,
//!   skipped positions, an idle tail). Reading resumes at `scanned + 1`.
//! - `skipped`: positions stepped over by `hume skip`, never applied.

use std::collections::BTreeSet;

use crate::event::RecordedEvent;

/// A projection's position in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    offset: u64,
    scanned: u64,
    skipped: BTreeSet<u64>,
}

/// What one page of the log means for a projection, after skipped
/// positions and a cap are applied.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The events to apply, in position order.
    pub events: Vec<RecordedEvent>,
    /// The page covered every position up to here (capped).
    pub last_scanned: u64,
    /// Events of the page left out because they were skipped.
    pub stepped_over: u64,
}

impl Cursor {
    /// At `offset`, having examined up to `scanned` (clamped to at least
    /// `offset`), stepping over `skipped`.
    pub fn new(offset: u64, scanned: u64, skipped: impl IntoIterator<Item = u64>) -> Cursor {
        Cursor {
            offset,
            scanned: scanned.max(offset),
            skipped: skipped.into_iter().collect(),
        }
    }

    /// Position of the last applied event.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Every position up to here has been examined.
    pub fn scanned(&self) -> u64 {
        self.scanned
    }

    /// Where the next read starts.
    pub fn next(&self) -> u64 {
        self.scanned + 1
    }

    /// Has every position up to `target` been examined?
    pub fn reached(&self, target: u64) -> bool {
        self.scanned >= target
    }

    /// The positions stepped over.
    pub fn skipped(&self) -> impl Iterator<Item = u64> + '_ {
        self.skipped.iter().copied()
    }

    /// Step over `position` from now on.
    pub fn skip(&mut self, position: u64) {
        self.skipped.insert(position);
    }

    /// Apply `position` again from now on (a partition reset that forgets
    /// the skips of that partition).
    pub fn unskip(&mut self, position: u64) {
        self.skipped.remove(&position);
    }

    /// Forget every skipped position (a reset that rebuilds the fold as the
    /// plugin computes it over the whole log).
    pub fn forget_skips(&mut self) {
        self.skipped.clear();
    }

    /// Move to a new place (a snapshot was restored, or the projection was
    /// reset): offset and scanned are set as given.
    pub fn reset_to(&mut self, offset: u64, scanned: u64) {
        self.offset = offset;
        self.scanned = scanned.max(offset);
    }

    /// Nothing of ours lies up to `scanned` (an idle tail, a page without
    /// our events): move the scan forward, never back.
    pub fn scanned_to(&mut self, scanned: u64) {
        self.scanned = self.scanned.max(scanned);
    }

    /// Events up to `offset` were applied and the log was examined up to
    /// `scanned`.
    pub fn applied_to(&mut self, offset: u64, scanned: u64) {
        self.offset = self.offset.max(offset);
        self.scanned = self.scanned.max(scanned).max(self.offset);
    }

    /// Turn a page (events from `next()`, examined up to `last_scanned`)
    /// into what to apply: drop positions above `cap` and skipped ones.
    pub fn batch(&self, mut events: Vec<RecordedEvent>, last_scanned: u64, cap: u64) -> Batch {
        events.retain(|e| e.position <= cap && e.position > self.scanned);
        let before = events.len();
        if !self.skipped.is_empty() {
            events.retain(|e| !self.skipped.contains(&e.position));
        }
        Batch {
            stepped_over: (before - events.len()) as u64,
            events,
            last_scanned: last_scanned.min(cap).max(self.scanned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgotten_skips_are_applied_again() {
        let mut c = Cursor::new(0, 0, [2]);
        assert_eq!(c.skipped().collect::<Vec<_>>(), vec![2]);
        c.forget_skips();
        assert_eq!(c.skipped().count(), 0);
    }

    #[test]
    fn an_unskipped_position_is_applied_again_and_the_others_stay_skipped() {
        let mut c = Cursor::new(0, 0, [2, 4]);
        c.unskip(2);
        let b = c.batch((1..=5).map(ev).collect(), 5, u64::MAX);
        let got: Vec<u64> = b.events.iter().map(|e| e.position).collect();
        assert_eq!((got, b.stepped_over), (vec![1, 2, 3, 5], 1));
    }

    fn ev(position: u64) -> RecordedEvent {
        RecordedEvent {
            position,
            stream: "s".into(),
            revision: position,
            kind: "k".into(),
            data: b"{}".to_vec(),
            metadata: None,
            timestamp: 0,
        }
    }

    #[test]
    fn scanned_never_goes_back_and_never_below_offset() {
        let mut c = Cursor::new(5, 3, []);
        assert_eq!((c.offset(), c.scanned(), c.next()), (5, 5, 6));
        c.scanned_to(9);
        c.scanned_to(7);
        assert_eq!(c.scanned(), 9);
        c.applied_to(12, 11);
        assert_eq!((c.offset(), c.scanned()), (12, 12));
        c.applied_to(10, 20);
        assert_eq!((c.offset(), c.scanned()), (12, 20));
        assert!(c.reached(20) && !c.reached(21));
        c.reset_to(0, 0);
        assert_eq!((c.offset(), c.scanned()), (0, 0));
    }

    #[test]
    fn batches_drop_skipped_capped_and_already_scanned_events() {
        let mut c = Cursor::new(0, 2, [4]);
        c.skip(6);
        let b = c.batch((1..=8).map(ev).collect(), 8, 7);
        let positions: Vec<u64> = b.events.iter().map(|e| e.position).collect();
        assert_eq!(positions, vec![3, 5, 7]);
        assert_eq!(b.stepped_over, 2);
        assert_eq!(b.last_scanned, 7);
        let b = c.batch(vec![], 1, u64::MAX);
        assert_eq!(b.last_scanned, 2, "a page never moves the scan back");
        assert_eq!(c.skipped().collect::<Vec<_>>(), vec![4, 6]);
    }
}
