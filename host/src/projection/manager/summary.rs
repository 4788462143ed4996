//! A summary of every projection: how many there are, how many are at the
//! head, and how many are in each state. Cheap next to the full listing
//! (which serialises every projection's status), so it can be polled on a
//! server with 100,000 projections.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{actor_status, Manager};
use crate::projection::status::{ProjectionStatus, RunState};
use crate::snapshot::now_ms;

/// Counts over every projection of this server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Projections deployed.
    pub total: usize,
    /// Of them, those that have examined the log up to its head and are
    /// not faulted or stopped.
    pub at_head: usize,
    /// Those behind the head (catching up, starting, or waiting to).
    pub behind: usize,
    /// By run state (`running`, `hibernated`, `catching-up`, ...).
    pub by_state: BTreeMap<String, usize>,
    /// The log's head when counted.
    pub head: u64,
    /// Plugin instances live now, and the bound (`--max-live-instances`).
    pub live_instances: usize,
    pub max_live_instances: usize,
}

impl Summary {
    /// Count one projection's status.
    pub fn add(&mut self, status: &ProjectionStatus) {
        self.count(status.state, status.lag, status.fault.is_some());
    }

    fn count(&mut self, state: RunState, lag: u64, faulted: bool) {
        self.total += 1;
        *self.by_state.entry(state.to_string()).or_default() += 1;
        match state {
            RunState::Faulted | RunState::Stopped => {}
            _ if faulted => {}
            RunState::Starting => self.behind += 1,
            _ if lag == 0 => self.at_head += 1,
            _ => self.behind += 1,
        }
    }
}

impl Manager {
    /// Counts over every projection (their active versions).
    pub fn summary(&self) -> Summary {
        let head = self.inner.log.head();
        let now = now_ms();
        let (live_instances, max_live_instances) = self.live_instances();
        let mut summary = Summary {
            head,
            live_instances,
            max_live_instances,
            ..Summary::default()
        };
        for entry in self.read_entries().values() {
            let status = actor_status(
                &self.inner.feed,
                &entry.record.name,
                &entry.active,
                head,
                now,
            );
            summary.add(&status);
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_state_and_separates_at_the_head_from_behind() {
        let mut s = Summary::default();
        s.count(RunState::Running, 0, false);
        s.count(RunState::Hibernated, 0, false);
        s.count(RunState::CatchingUp, 7, false);
        s.count(RunState::Starting, 0, false);
        s.count(RunState::Faulted, 3, true);
        s.count(RunState::Stopped, 9, false);
        assert_eq!((s.total, s.at_head, s.behind), (6, 2, 2));
        assert_eq!(s.by_state["running"], 1);
        assert_eq!(s.by_state["faulted"], 1);
        assert_eq!(s.by_state.len(), 6);
    }
}
