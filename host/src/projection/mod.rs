//! Projections: folding events through a plugin (`fold`: [`Folder`],
//! [`evolve`], [`replay`]), the live projection runtime (one actor per
//! projection version, driven by small pure types: [`cursor`], [`cadence`]),
//! and time travel ([`travel`]).

pub mod fold;

mod actor;
mod cadence;
mod cursor;
pub mod error;
mod feed;
pub mod instances;
pub mod manager;
mod partitioned;
pub mod status;
pub mod telemetry;
pub mod travel;

pub use crate::deployment::{
    DeploymentRecord, ProjectionOptions, SnapshotStoreKind, StartFrom, VersionRecord,
};
pub use actor::StateView;
pub use cadence::CATCH_UP_SHARE;
pub use error::ProjectionError;
pub use instances::{DEFAULT_MAX_LIVE_INSTANCES, MAX_MAX_LIVE_INSTANCES};
pub use manager::history::{DiffView, Wait, MAX_DIFF_EVENTS};
pub use manager::{
    DeployOutcome, DeployRequest, Manager, ManagerOptions, Summary, DEFAULT_HIBERNATE_AFTER,
    DEFAULT_READ_TIMEOUT,
};
pub use partitioned::{ListQuery, PartitionInfo, PartitionPage};
pub use status::{Fault, PartitionsStatus, ProjectionStatus, RunState, SnapshotInfo};
pub use travel::{limits_of, TravelView};

pub use fold::{
    evolve, replay, Applied, FoldError, FoldOptions, Folder, ReplayOutcome, Snapshot,
    DEFAULT_BATCH_SIZE,
};
