//! Hume: a host for event-sourced projections that run as sandboxed
//! WebAssembly components.
//!
//! The modules follow the architecture in `DESIGN.md`, with dependencies
//! pointing one way: `cli (binary) → api → projection → {plugin, log, snapshot}`.
//!
//! - [`db`]: the one RocksDB database and its column families.
//! - [`log`]: the durable RocksDB event log (append, read, head watch).
//! - [`plugin`]: wasmtime engine, component cache, sandbox and limits.
//! - [`projection`]: folding events through a plugin (`evolve`, `replay`)
//!   and the live projection actors.
//! - [`snapshot`]: snapshot stores (RocksDB and memory).
//! - [`api`]: the HTTP API served by `hume serve`.
//!
//! The `hume` command line (`src/cli/`) belongs to the binary, not the library.

pub mod api;
pub mod db;
pub mod log;
pub mod plugin;
pub mod projection;
pub mod snapshot;
