//! When a live projection persists a snapshot.
//!
//! The rule, as `hume deploy --help` and the README state it:
//! - **At the head** (caught up, or within one batch of it),
//!   `snapshot_every` applies exactly as written: a snapshot after every
//!   `snapshot_every` applied events.
//! - **While catching up** (more than one batch behind), count-triggered snapshots are coalesced so that
//!   snapshotting takes at most [`CATCH_UP_SHARE`] percent of the time: once
//!   `snapshot_every` events are due, the next snapshot waits until the
//!   time since the last one is at least `(1 - share) / share` times what
//!   the last one cost. With history kept, a snapshot is still taken at
//!   least every `spacing` log positions, so time travel's replay bound
//!   holds for positions passed during a rebuild too.
//! - `snapshot_after`: the state changed and has not been persisted for that
//!   long (independent of the above).
//!
//! What it means for a crash: at the head, at most `snapshot_every` events
//! are refolded; during a rebuild, at most the events folded in about nine
//! times the cost of one snapshot (bounded by `spacing` positions when
//! history is kept).

use std::time::{Duration, Instant};

/// Most of the catch-up time snapshots may take, in percent.
pub const CATCH_UP_SHARE: u32 = 10;

/// The snapshot schedule of one projection.
#[derive(Debug, Clone)]
pub(crate) struct Cadence {
    every: u64,
    after: Option<Duration>,
    /// Most positions between two snapshots while catching up (0: none).
    spacing: u64,
    /// Events applied since the last snapshot.
    since: u64,
    /// When the state first changed after the last snapshot.
    dirty_since: Option<Instant>,
    /// Offset of the last snapshot (or of the start).
    last_offset: u64,
    /// When the last snapshot was taken and what it cost.
    last_at: Option<Instant>,
    last_cost: Duration,
}

impl Cadence {
    /// `every` events (0: never by count), `after` (None: never by time),
    /// `spacing` positions at most between snapshots while catching up.
    pub fn new(every: u64, after: Option<Duration>, spacing: u64) -> Cadence {
        Cadence {
            every,
            after,
            spacing,
            since: 0,
            dirty_since: None,
            last_offset: 0,
            last_at: None,
            last_cost: Duration::ZERO,
        }
    }

    /// New parameters (options changed in place); what was counted since the
    /// last snapshot still counts.
    pub fn reconfigure(&mut self, every: u64, after: Option<Duration>, spacing: u64) {
        self.every = every;
        self.after = after;
        self.spacing = spacing;
    }

    /// Start counting from a state at `offset` that is persisted as it is.
    pub fn restart(&mut self, offset: u64) {
        self.since = 0;
        self.dirty_since = None;
        self.last_offset = offset;
        self.last_at = None;
    }

    /// The state changed (`applied` events, possibly 0 for a skip).
    pub fn changed(&mut self, applied: u64, now: Instant) {
        self.since += applied;
        self.dirty_since.get_or_insert(now);
    }

    /// A snapshot at `offset` was persisted at `now`, costing `cost`.
    pub fn persisted(&mut self, offset: u64, now: Instant, cost: Duration) {
        self.since = 0;
        self.dirty_since = None;
        self.last_offset = offset;
        self.last_at = Some(now);
        self.last_cost = cost;
    }

    /// A snapshot failed at `now`: stop asking by count until more events
    /// come, but keep the state marked changed so that `snapshot_after`
    /// tries again that long from now.
    pub fn failed(&mut self, now: Instant) {
        self.since = 0;
        self.dirty_since = Some(now);
    }

    /// Most events to read in the next batch: at the head, no further than
    /// the next count-triggered snapshot, so it lands where it is due.
    pub fn batch_limit(&self, batch_size: usize, at_head: bool) -> usize {
        if at_head && self.every > 0 {
            let left = self.every.saturating_sub(self.since).max(1);
            batch_size.min(usize::try_from(left).unwrap_or(usize::MAX))
        } else {
            batch_size
        }
    }

    /// Is a count-triggered snapshot due after a batch that left the
    /// projection at `offset`? `catching_up`: more of the log is waiting.
    pub fn due(&self, offset: u64, catching_up: bool, now: Instant) -> bool {
        if self.since == 0 {
            return false;
        }
        if self.spacing > 0 && offset.saturating_sub(self.last_offset) >= self.spacing {
            return true;
        }
        if self.every == 0 || self.since < self.every {
            return false;
        }
        if !catching_up {
            return true;
        }
        let Some(last_at) = self.last_at else {
            // No snapshot cost known yet: take one to learn it.
            return true;
        };
        let budget = self.last_cost * (100 - CATCH_UP_SHARE) / CATCH_UP_SHARE;
        now.duration_since(last_at) >= budget
    }

    /// When the time trigger (`snapshot_after`) fires, if it is armed.
    pub fn due_at(&self) -> Option<Instant> {
        Some(self.dirty_since? + self.after?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_snapshot_is_retried_by_time_not_at_once() {
        let t = Instant::now();
        let mut c = Cadence::new(1, Some(Duration::from_secs(30)), 0);
        c.restart(0);
        c.changed(1, t);
        assert!(c.due(1, false, t));
        let later = t + Duration::from_secs(5);
        c.failed(later);
        assert!(!c.due(1, false, later), "not again at once by count");
        assert_eq!(c.due_at(), Some(later + Duration::from_secs(30)));
        c.changed(1, later);
        assert!(c.due(2, false, later), "the next event asks again");
    }

    #[test]
    fn new_parameters_keep_what_was_counted() {
        let t = Instant::now();
        let mut c = Cadence::new(100, None, 0);
        c.restart(0);
        c.changed(40, t);
        assert!(!c.due(40, false, t));
        c.reconfigure(30, Some(Duration::from_secs(1)), 0);
        assert!(c.due(40, false, t), "40 events counted, 30 now due");
        assert_eq!(c.due_at(), Some(t + Duration::from_secs(1)));
        c.reconfigure(1000, None, 0);
        assert!(!c.due(40, false, t));
        assert_eq!(c.due_at(), None);
    }

    #[test]
    fn at_the_head_every_applies_as_written() {
        let t = Instant::now();
        let mut c = Cadence::new(100, None, 0);
        assert_eq!(c.batch_limit(512, true), 100);
        c.changed(60, t);
        assert_eq!(c.batch_limit(512, true), 40);
        assert!(!c.due(60, false, t));
        c.changed(40, t);
        assert!(c.due(100, false, t));
        c.persisted(100, t, Duration::from_secs(10));
        assert!(!c.due(100, false, t));
        c.changed(100, t);
        // However costly the last snapshot, at the head it is due.
        assert!(c.due(200, false, t));
    }

    #[test]
    fn catching_up_coalesces_to_the_time_share() {
        let t0 = Instant::now();
        let mut c = Cadence::new(100, None, 0);
        assert_eq!(c.batch_limit(512, false), 512);
        c.changed(100, t0);
        assert!(
            c.due(100, true, t0),
            "the first one is taken to learn its cost"
        );
        c.persisted(100, t0, Duration::from_millis(10));
        c.changed(5_000, t0);
        assert!(!c.due(5_100, true, t0 + Duration::from_millis(80)));
        assert!(c.due(5_100, true, t0 + Duration::from_millis(90)));
        // Fewer than `every` events: never by count.
        let mut c = Cadence::new(100, None, 0);
        c.changed(99, t0);
        assert!(!c.due(99, true, t0));
        // every = 0: never by count.
        let mut c = Cadence::new(0, None, 0);
        c.changed(1_000_000, t0);
        assert!(!c.due(1_000_000, false, t0));
    }

    #[test]
    fn spacing_forces_a_snapshot_while_catching_up() {
        let t0 = Instant::now();
        let mut c = Cadence::new(100, None, 1_000);
        c.persisted(0, t0, Duration::from_secs(60));
        c.changed(500, t0);
        assert!(!c.due(999, true, t0));
        assert!(c.due(1_000, true, t0));
        // Even with snapshot_every 0.
        let mut c = Cadence::new(0, None, 1_000);
        c.changed(1, t0);
        assert!(c.due(1_000, true, t0));
        // But never without a change.
        let c = Cadence::new(0, None, 1_000);
        assert!(!c.due(5_000, true, t0));
    }

    #[test]
    fn time_trigger_arms_on_the_first_change() {
        let t0 = Instant::now();
        let mut c = Cadence::new(0, Some(Duration::from_secs(30)), 0);
        assert_eq!(c.due_at(), None);
        c.changed(1, t0);
        c.changed(1, t0 + Duration::from_secs(5));
        assert_eq!(c.due_at(), Some(t0 + Duration::from_secs(30)));
        c.persisted(2, t0, Duration::ZERO);
        assert_eq!(c.due_at(), None);
        let c = Cadence::new(0, None, 0);
        assert_eq!(c.due_at(), None);
    }
}
