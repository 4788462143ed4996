//! Projections: folding events through a plugin (`fold`: [`Folder`],
//! [`evolve`], [`replay`]) and, in their own modules, the live projection
//! runtime.

pub mod fold;

mod actor;
pub mod config;
pub mod error;
mod feed;
pub mod manager;
pub mod records;
pub mod status;
pub mod telemetry;

pub use actor::StateView;
pub use config::{
    DeploymentRecord, ProjectionOptions, SnapshotStoreKind, StartFrom, VersionRecord,
};
pub use error::ProjectionError;
pub use manager::{DeployOutcome, DeployRequest, Manager, DEFAULT_READ_TIMEOUT};
pub use status::{Fault, ProjectionStatus, RunState, SnapshotInfo};

pub use fold::{
    evolve, replay, Applied, FoldError, FoldOptions, Folder, ReplayOutcome, Snapshot,
    DEFAULT_BATCH_SIZE,
};
