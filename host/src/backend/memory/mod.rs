//! Stores kept in process memory: fast, gone when the process exits. With
//! [`stores`] they make a whole server's storage (tests of the layers above,
//! tools).

mod deployments;
mod log;
mod snapshots;

use std::sync::Arc;

pub use deployments::MemoryDeployments;
pub use log::MemoryLog;
pub use snapshots::MemorySnapshots;

use crate::log::{checked, Limits};
use crate::stores::Stores;

/// Every store in memory, the log checked against `limits`.
pub fn stores(limits: Limits) -> Stores {
    Stores {
        log: checked(Arc::new(MemoryLog::default()), limits),
        snapshots: Arc::new(MemorySnapshots::default()),
        memory_snapshots: Arc::new(MemorySnapshots::default()),
        deployments: Arc::new(MemoryDeployments::default()),
    }
}
