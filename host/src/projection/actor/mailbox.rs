//! What a projection actor is asked through its mailbox: the [`Command`]s
//! and the [`StateView`] a read answers.
//!
//! A mailbox carries `Box<Command>`: tokio's channel allocates its slots in
//! blocks of 32 up front, so with the command inline every projection paid
//! 2 KiB for an almost always empty mailbox (200 MB over 100,000 idle
//! projections); boxed it is 256 bytes, and a command costs one small
//! allocation when it is sent.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::projection::error::ProjectionError;
use crate::snapshot::SnapshotStore;

/// The state of a projection at some offset, as a read returns it.
#[derive(Debug, Clone)]
pub struct StateView {
    /// Position of the last event applied to `state`.
    pub offset: u64,
    /// The plugin's serialised state.
    pub state: Vec<u8>,
    /// True when the plugin declares its state JSON.
    pub json: bool,
}

pub(super) type Reply<T> = oneshot::Sender<Result<T, ProjectionError>>;

/// A request to a projection actor. Reads carry an optional `target`: the
/// log head at the time of the request, which the actor must have scanned
/// before it answers (a consistent read); `None` answers at once (dirty).
pub(crate) enum Command {
    /// The state (and offset).
    Read {
        target: Option<u64>,
        reply: Reply<StateView>,
    },
    /// Pass a request to the plugin's `query`.
    Query {
        target: Option<u64>,
        request: Vec<u8>,
        reply: Reply<Vec<u8>>,
    },
    /// Answer (with the cursor's `scanned`) once every position up to
    /// `target` has been examined.
    Wait { target: u64, reply: Reply<u64> },
    /// Look at the log now instead of waiting for a wake-up or the poll.
    CatchUp,
    /// Persist a snapshot now; answers its offset.
    TakeSnapshot { reply: Reply<u64> },
    /// Stop applying events (persists a snapshot first).
    Stop { reply: Reply<()> },
    /// Start applying events again after a stop.
    Start { reply: Reply<()> },
    /// Drop the state and snapshots and rebuild from the start (forgetting
    /// the skipped positions unless `keep_skips`).
    Reset { keep_skips: bool, reply: Reply<()> },
    /// Retry after a fault (re-instantiating the plugin if it was poisoned).
    Resume { reply: Reply<()> },
    /// Step over the faulted event at `position` (already recorded).
    Skip { position: u64, reply: Reply<()> },
    /// Options changed in place (see `reconfigure.rs`), boxed to keep
    /// every command small.
    Reconfigure {
        options: Box<crate::deployment::ProjectionOptions>,
        store: Arc<dyn SnapshotStore>,
        reply: Reply<()>,
    },
    /// The live-instance budget is full and this one was used least
    /// recently: give the instance up (see `hibernate.rs`).
    Hibernate,
    /// End the task, with a final snapshot when `snapshot` is true.
    Shutdown {
        snapshot: bool,
        reply: oneshot::Sender<()>,
    },
    /// A request only a partitioned projection answers.
    Partitioned(Box<crate::projection::partitioned::PartitionCommand>),
}

impl Command {
    /// The position a read must wait for, if it is a read that waits.
    pub(super) fn target(&self) -> Option<u64> {
        match self {
            Command::Read { target, .. } | Command::Query { target, .. } => *target,
            Command::Wait { target, .. } => Some(*target),
            _ => None,
        }
    }

    /// Did the caller of a read give up?
    pub(super) fn reply_closed(&self) -> bool {
        match self {
            Command::Read { reply, .. } => reply.is_closed(),
            Command::Query { reply, .. } => reply.is_closed(),
            Command::Wait { reply, .. } => reply.is_closed(),
            _ => false,
        }
    }

    /// Answer a read with an error.
    pub(super) fn reply_err(self, err: ProjectionError) {
        match self {
            Command::Read { reply, .. } => drop(reply.send(Err(err))),
            Command::Query { reply, .. } => drop(reply.send(Err(err))),
            Command::Wait { reply, .. } => drop(reply.send(Err(err))),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    /// Each send allocates one command: keep it small.
    #[test]
    fn a_command_stays_small() {
        let size = std::mem::size_of::<super::Command>();
        assert!(size <= 64, "Command is {size} bytes: box the large variant");
    }
}
