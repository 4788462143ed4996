//! The event log: the library (appends, expected revisions, paged reads, a
//! model-based property test, WAL damage, crash safety), its HTTP API and
//! its CLI, one test binary (each links wasmtime and RocksDB).

mod cli;
mod cluster;
mod cluster_r3;
mod crash;
mod disk_common;
mod disk_full;
mod failing_disk;
mod http;
mod library;
mod model;
mod ndjson;
mod pages;
mod scans;
mod security;
mod torn_tail;
mod wal;
