//! Where each projection runs, for the HTTP API of a cluster node: this
//! node's leases, the lease store and the node registry, behind a small
//! type that knows nothing of the store (it goes through [`Coordinator`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::{Coordinator, NodeInfo, Ownership};
use crate::storage::StorageError;

/// This node and the way to find any projection's owner.
pub struct Directory {
    node: String,
    url: String,
    coordinator: Arc<dyn Coordinator>,
    ownership: Arc<Ownership>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("node", &self.node)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Who runs a projection, as far as the store says now.
#[derive(Debug, Clone, PartialEq)]
pub enum Owner {
    /// This node holds its lease.
    Here,
    /// Another live node holds it.
    Elsewhere(NodeInfo),
    /// Nobody runs it now: the lease is free (the projection is moving, or
    /// not deployed), or held by a node gone from the registry (it died;
    /// the lease expires within a TTL). `holder` names that node.
    Nobody {
        /// The node that still holds the lease, if any.
        holder: Option<String>,
    },
}

impl Directory {
    /// The directory of node `node`, reachable at `url`.
    pub fn new(
        node: String,
        url: String,
        coordinator: Arc<dyn Coordinator>,
        ownership: Arc<Ownership>,
    ) -> Directory {
        Directory {
            node,
            url,
            coordinator,
            ownership,
        }
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Where this node's API answers.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How long a lease lives without renewal.
    pub fn lease_ttl(&self) -> std::time::Duration {
        self.ownership.ttl()
    }

    /// Does this node hold a valid lease on `name` now?
    pub fn holds(&self, name: &str) -> bool {
        self.ownership.get(name, Instant::now()).is_some()
    }

    /// Who runs `name`: this node (by its own leases, without asking the
    /// store), else the holder of its lease in the store.
    pub async fn owner(&self, name: &str) -> Result<Owner, StorageError> {
        if self.holds(name) {
            return Ok(Owner::Here);
        }
        let Some(lease) = self.coordinator.lease(name).await? else {
            return Ok(Owner::Nobody { holder: None });
        };
        if lease.node == self.node {
            // Stored as ours but not valid here (expired by our clock, or
            // not yet recorded): not served here until it is.
            return Ok(Owner::Nobody {
                holder: Some(lease.node),
            });
        }
        let nodes = self.coordinator.nodes().await?;
        Ok(match nodes.into_iter().find(|n| n.id == lease.node) {
            Some(info) => Owner::Elsewhere(info),
            None => Owner::Nobody {
                holder: Some(lease.node),
            },
        })
    }

    /// The owner node id of every projection with a lease, by name.
    pub async fn owners(&self) -> Result<BTreeMap<String, String>, StorageError> {
        Ok(self
            .coordinator
            .leases()
            .await?
            .into_iter()
            .map(|l| (l.name, l.lease.node))
            .collect())
    }

    /// Every live node, by id.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, StorageError> {
        let mut nodes = self.coordinator.nodes().await?;
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        nodes.dedup_by(|a, b| a.id == b.id);
        Ok(nodes)
    }
}
