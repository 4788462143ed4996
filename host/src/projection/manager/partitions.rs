//! Reads of partitioned projections: one partition's state or query, the
//! listing of partitions, and pages of every partition's state.

use std::time::Duration;

use super::{Command, Manager};
use crate::projection::actor::StateView;
use crate::projection::error::ProjectionError;
use crate::projection::partitioned::{ListQuery, PartitionCommand, PartitionPage, Repair};

impl Manager {
    /// One partition's state (consistent as for [`Manager::read`]).
    pub async fn read_partition(
        &self,
        name: &str,
        key: &str,
        consistent: bool,
        timeout: Duration,
    ) -> Result<StateView, ProjectionError> {
        let (head, target) = self.read_target(consistent).await?;
        let key = key.to_string();
        self.ask(name, Some((timeout, head)), |reply| {
            Command::from(PartitionCommand::Read { key, target, reply })
        })
        .await
    }

    /// One partition's state after its events up to and including `at`
    /// (time travel); waits until the projection has examined the log up
    /// to `at`.
    pub async fn read_partition_at(
        &self,
        name: &str,
        key: &str,
        at: u64,
        timeout: Duration,
    ) -> Result<StateView, ProjectionError> {
        let head = self.inner.log.head();
        if at > head {
            return Err(ProjectionError::Position(format!(
                "at={at} is past the head of the log ({head}): pick a position up to {head}"
            )));
        }
        let key = key.to_string();
        self.ask(name, Some((timeout, head)), |reply| {
            Command::from(PartitionCommand::ReadAt { key, at, reply })
        })
        .await
    }

    /// The plugin's `query` over one partition's state.
    pub async fn query_partition(
        &self,
        name: &str,
        key: &str,
        request: Vec<u8>,
        consistent: bool,
        timeout: Duration,
    ) -> Result<Vec<u8>, ProjectionError> {
        let (head, target) = self.read_target(consistent).await?;
        let key = key.to_string();
        self.ask(name, Some((timeout, head)), |reply| {
            Command::from(PartitionCommand::Query {
                key,
                target,
                request,
                reply,
            })
        })
        .await
    }

    /// Retry the event partition `key` faulted at (after fixing the plugin),
    /// then fold its events up to where the projection is.
    pub async fn resume_partition(&self, name: &str, key: &str) -> Result<(), ProjectionError> {
        self.repair(name, key, Repair::Resume, Vec::new())
            .await
            .map(|_| ())
    }

    /// Step over the event partition `key` faulted at: record its position
    /// durably (as `skip` does for a whole projection, so a reset with
    /// skips kept steps over it again), then go on after it; answers the
    /// position.
    pub async fn skip_partition(&self, name: &str, key: &str) -> Result<u64, ProjectionError> {
        let _changes = self.inner.changes.lock().await;
        let query = ListQuery {
            prefix: Some(key.to_string()),
            after: None,
            limit: 1,
            faulted: true,
        };
        let page = self.partitions(name, query).await?;
        let fault = page
            .partitions
            .into_iter()
            .find(|p| p.partition == key)
            .and_then(|p| p.fault);
        if let Some(position) = fault.map(|f| f.position).filter(|p| *p > 0) {
            let mut record = self.record_of(name)?;
            if !record.skipped.contains(&position) {
                record.skipped.push(position);
                self.store_record(record).await?;
            }
        }
        // Not faulted, or no such partition: the actor says which.
        Ok(self
            .repair(name, key, Repair::Skip, Vec::new())
            .await?
            .unwrap_or_default())
    }

    /// Fold partition `key` again from the projection's start. The
    /// positions of its events stepped over with `skip` are forgotten
    /// (durably, first) and applied again, unless `keep_skips`.
    pub async fn reset_partition(
        &self,
        name: &str,
        key: &str,
        keep_skips: bool,
    ) -> Result<(), ProjectionError> {
        let _changes = self.inner.changes.lock().await;
        let mut forget = Vec::new();
        if !keep_skips {
            let k = key.to_string();
            forget = self
                .ask(name, None, |reply| {
                    Command::from(PartitionCommand::SkipsOf { key: k, reply })
                })
                .await?;
            if !forget.is_empty() {
                let mut record = self.record_of(name)?;
                record.skipped.retain(|p| !forget.contains(p));
                self.store_record(record).await?;
            }
        }
        self.repair(name, key, Repair::Reset, forget)
            .await
            .map(|_| ())
    }

    async fn repair(
        &self,
        name: &str,
        key: &str,
        what: Repair,
        forget: Vec<u64>,
    ) -> Result<Option<u64>, ProjectionError> {
        let key = key.to_string();
        self.ask(name, None, |reply| {
            Command::from(PartitionCommand::Repair {
                key,
                what,
                forget,
                reply,
            })
        })
        .await
    }

    /// A page of the partitions, by key.
    pub async fn partitions(
        &self,
        name: &str,
        query: ListQuery,
    ) -> Result<PartitionPage, ProjectionError> {
        self.ask(name, None, |reply| {
            Command::from(PartitionCommand::List { query, reply })
        })
        .await
    }

    /// Up to `limit` partitions' states after `after`, by key; `consistent`
    /// waits for the head at the time of the call.
    pub async fn partition_states(
        &self,
        name: &str,
        after: Option<String>,
        limit: usize,
        consistent: bool,
        timeout: Duration,
    ) -> Result<Vec<(String, StateView)>, ProjectionError> {
        let (head, target) = self.read_target(consistent).await?;
        self.ask(name, Some((timeout, head)), |reply| {
            Command::from(PartitionCommand::States {
                after,
                limit,
                target,
                reply,
            })
        })
        .await
    }
}
