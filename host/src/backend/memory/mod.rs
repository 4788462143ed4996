//! Stores kept in process memory: fast, gone when the process exits.

mod log;
mod snapshots;

pub use log::MemoryLog;
pub use snapshots::MemorySnapshots;
