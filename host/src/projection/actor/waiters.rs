//! Reads waiting for the projection to reach a position (consistent reads,
//! time travel waiting for its position).

use super::Command;
use crate::projection::error::ProjectionError;

/// A command waiting until the cursor has examined `target`.
pub(super) struct Waiter {
    pub target: u64,
    pub command: Command,
}

/// The waiting commands of one actor.
#[derive(Default)]
pub(super) struct Waiters {
    waiting: Vec<Waiter>,
}

impl Waiters {
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn push(&mut self, target: u64, command: Command) {
        self.waiting.push(Waiter { target, command });
    }

    /// Take the commands whose target is reached; drop those whose caller
    /// gave up.
    pub fn ready(&mut self, scanned: u64) -> Vec<Command> {
        let (ready, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .filter(|w| !w.command.reply_closed())
            .partition(|w| w.target <= scanned);
        self.waiting = waiting;
        ready.into_iter().map(|w| w.command).collect()
    }

    /// Answer every waiting command with an error.
    pub fn fail_all(&mut self, err: impl Fn() -> ProjectionError) {
        for w in std::mem::take(&mut self.waiting) {
            w.command.reply_err(err());
        }
    }
}
