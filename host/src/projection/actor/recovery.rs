//! The fault state of a projection and the way back from it.
//!
//! When an event fails (rejected, unknown in strict mode, a trap, a limit),
//! the instance may have changed its state before failing, so it is never
//! trusted: it is rebuilt from the last snapshot and the events before the
//! failing one are folded again (`recover_to`), leaving exactly the state
//! after the previous event. When an instance dies inside a batch without
//! saying which event failed, the batch is re-applied one event at a time
//! (`single_step`) to find it.

use crate::projection::status::Fault;

/// Fault, recovery target and pinpointing of one projection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Recovery {
    fault: Option<Fault>,
    /// Re-apply events up to here (the event before the failing one).
    recover_to: Option<u64>,
    /// Apply the events from `.0` to `.1` one at a time.
    single_step: Option<(u64, u64)>,
}

impl Recovery {
    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
    }

    pub fn is_faulted(&self) -> bool {
        self.fault.is_some()
    }

    /// Fault at `fault`, rebuilding the state up to `recover_to`.
    pub fn set_fault(&mut self, fault: Fault, recover_to: Option<u64>) {
        self.fault = Some(fault);
        self.recover_to = recover_to;
        self.single_step = None;
    }

    /// Find the failing event of the batch `first..=last`.
    pub fn pinpoint(&mut self, first: u64, last: u64) {
        self.single_step = Some((first, last));
    }

    /// Faulted, and still refolding the events before the failing one up
    /// to this position: the state is not yet the one to show.
    pub fn refolding_to(&self) -> Option<u64> {
        self.fault.as_ref().and(self.recover_to)
    }

    /// Back to normal (resume, reset).
    pub fn clear(&mut self) {
        *self = Recovery::default();
    }

    /// How far the projection should read now, given the feed's end:
    /// `None` when it has nothing to do (faulted and recovered).
    pub fn target(&self, end: u64) -> Option<u64> {
        match (&self.fault, self.recover_to) {
            (None, _) => Some(end),
            (Some(_), Some(t)) => Some(t),
            (Some(_), None) => None,
        }
    }

    /// The highest position the next batch may include, given where the
    /// cursor is (`scanned`) and the first position of the page.
    pub fn cap(&mut self, scanned: u64, first: Option<u64>) -> u64 {
        let mut cap = match (&self.fault, self.recover_to) {
            (Some(_), Some(t)) => t,
            _ => u64::MAX,
        };
        if let Some((from, last)) = self.single_step {
            if scanned >= last {
                self.single_step = None;
            } else if let Some(p) = first {
                cap = cap.min(if p >= from { p } else { from - 1 });
            }
        }
        cap
    }

    /// The cursor reached `scanned`: the recovery target is met when it is
    /// at or past it.
    pub fn progressed(&mut self, scanned: u64) {
        if self.recover_to.is_some_and(|t| scanned >= t) {
            self.recover_to = None;
        }
    }

    /// Is a batch being pinpointed?
    pub fn pinpointing(&self) -> bool {
        self.single_step.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(position: u64) -> Fault {
        Fault {
            position,
            kind: "k".into(),
            error: "e".into(),
            limit: None,
            at: 0,
        }
    }

    #[test]
    fn a_fault_reads_only_up_to_the_event_before() {
        let mut r = Recovery::default();
        assert_eq!(r.target(100), Some(100));
        r.set_fault(fault(50), Some(49));
        assert_eq!(r.target(100), Some(49));
        assert_eq!(r.cap(10, Some(11)), 49);
        r.progressed(48);
        assert_eq!(r.target(100), Some(49));
        r.progressed(49);
        assert_eq!(r.target(100), None, "faulted and recovered: idle");
        r.clear();
        assert_eq!(r.target(100), Some(100));
    }

    #[test]
    fn pinpointing_steps_one_event_at_a_time() {
        let mut r = Recovery::default();
        r.pinpoint(20, 30);
        assert!(r.pinpointing());
        // Before the batch: read up to just before it.
        assert_eq!(r.cap(10, Some(15)), 19);
        // Inside it: one event.
        assert_eq!(r.cap(20, Some(21)), 21);
        // Past it: done.
        assert_eq!(r.cap(30, Some(31)), u64::MAX);
        assert!(!r.pinpointing());
    }
}
