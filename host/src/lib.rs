//! Hume: a host for event-sourced projections that run as sandboxed
//! WebAssembly components.
//!
//! Dependencies point one way: `cli (binary) → api → projection → plugin`,
//! with storage below all of them behind traits:
//!
//! - [`event`]: the event types every layer shares.
//! - [`log`]: the event log trait ([`log::EventLog`]), its types and the
//!   validation every backend gets ([`log::checked`]).
//! - [`snapshot`]: the snapshot store trait, with history and retention.
//! - [`deployment`]: deployment records and the store for them and for
//!   plugin bytes.
//! - [`storage`]: the backend-neutral error crossing the storage traits.
//! - [`stores`]: the bundle of stores the runtime is given.
//! - [`backend`]: the implementations (RocksDB, memory). Only the wiring
//!   in `hume serve` picks one.
//! - [`plugin`]: wasmtime engine, component cache, sandbox and limits.
//! - [`cluster`]: which node runs which projection in cluster mode
//!   (leases, assignment, fenced snapshot writes).
//! - [`projection`]: folding events through a plugin (`evolve`, `replay`),
//!   the live projection actors, and time travel.
//! - [`journal`]: each projection's recent log lines (`hume logs`), kept
//!   by a `tracing` layer.
//! - [`api`]: the HTTP API served by `hume serve`.
//!
//! The `hume` command line (`src/cli/`) belongs to the binary, not the library.

pub mod api;
pub mod backend;
pub mod cluster;
pub mod deployment;
pub mod event;
pub mod journal;
pub mod log;
pub mod plugin;
pub mod projection;
pub mod snapshot;
pub mod storage;
pub mod stores;
