//! Storage backends: each implements the storage traits
//! ([`crate::log::EventLog`], [`crate::snapshot::SnapshotStore`],
//! [`crate::deployment::DeploymentStore`]) for one engine, in its own
//! folder. Nothing outside a backend's folder knows its engine; `hume
//! serve` picks one in a single wiring place.

pub mod memory;
pub mod nats;
pub mod rocksdb;
