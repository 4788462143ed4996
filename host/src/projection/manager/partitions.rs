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
        self.repair(name, key, Repair::Resume).await.map(|_| ())
    }

    /// Step over the event partition `key` faulted at; answers its position.
    pub async fn skip_partition(&self, name: &str, key: &str) -> Result<u64, ProjectionError> {
        Ok(self
            .repair(name, key, Repair::Skip)
            .await?
            .unwrap_or_default())
    }

    /// Fold partition `key` again from the projection's start.
    pub async fn reset_partition(&self, name: &str, key: &str) -> Result<(), ProjectionError> {
        self.repair(name, key, Repair::Reset).await.map(|_| ())
    }

    async fn repair(
        &self,
        name: &str,
        key: &str,
        what: Repair,
    ) -> Result<Option<u64>, ProjectionError> {
        let key = key.to_string();
        self.ask(name, None, |reply| {
            Command::from(PartitionCommand::Repair { key, what, reply })
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
