//! Live projections in a real `hume serve`: deploy, faults, snapshots,
//! versions (blue/green), crash safety and history (time travel).

mod common;
mod crash;
mod deploy;
mod faults;
mod follows;
mod history;
mod snapshots;
mod status_table;
mod versions;
