//! Live projections in a real `hume serve`: deploy, faults, snapshots,
//! versions (blue/green), crash safety, history (time travel) and the web
//! UI in a real browser.

mod cluster;
mod cluster_catch_up;
mod cluster_nodes;
mod cluster_surface;
mod common;
mod crash;
mod deploy;
mod deploy_wait;
mod faults;
mod follows;
mod hibernation;
mod history;
mod logs;
mod partitioned;
mod redeploy;
mod snapshots;
mod status_table;
mod ui;
mod versions;
