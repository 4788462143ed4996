//! The event log: the library (appends, expected revisions, paged reads, a
//! model-based property test, WAL damage, crash safety), its HTTP API and
//! its CLI, one test binary (each links wasmtime and RocksDB).

mod cli;
mod crash;
mod http;
mod library;
mod model;
mod ndjson;
mod security;
mod wal;
