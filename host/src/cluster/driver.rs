//! The cluster task: every third of the lease TTL it refreshes this node in
//! the registry, drops leases the local clock says expired, computes the
//! target assignment, renews the leases it keeps, releases (after a final
//! snapshot) the ones the target moved away, takes the free ones the target
//! gives it, and stops any projection running here without a lease. The
//! decisions live in [`super::assign`] and [`super::lease`]; this only
//! drives them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tracing::{info, warn};

use super::assign::assign;
use super::{renew_lease, Coordinator, Held, Lease, NodeInfo, Ownership, Renewal};
use crate::deployment::DeploymentRecord;
use crate::projection::Manager;

/// This node in the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Node id.
    pub node: String,
    /// Where this node's HTTP API answers.
    pub url: String,
}

/// The running cluster task.
pub struct ClusterHandle {
    stop: watch::Sender<bool>,
    join: Option<tokio::task::JoinHandle<()>>,
    driver: Arc<Driver>,
}

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle").finish_non_exhaustive()
    }
}

struct Driver {
    manager: Manager,
    coordinator: Arc<dyn Coordinator>,
    ownership: Arc<Ownership>,
    renewing: Arc<tokio::sync::Mutex<()>>,
    config: ClusterConfig,
    /// Events applied here at the last heartbeat, and when.
    applied: std::sync::Mutex<Option<(Instant, u64)>>,
}

impl ClusterHandle {
    /// Start the task; `renewing` is the lock shared with the fenced
    /// snapshot store.
    pub fn spawn(
        manager: Manager,
        coordinator: Arc<dyn Coordinator>,
        ownership: Arc<Ownership>,
        renewing: Arc<tokio::sync::Mutex<()>>,
        config: ClusterConfig,
    ) -> ClusterHandle {
        let driver = Arc::new(Driver {
            manager,
            coordinator,
            ownership,
            renewing,
            config,
            applied: std::sync::Mutex::new(None),
        });
        let (stop, mut stopped) = watch::channel(false);
        let period = driver.ownership.ttl() / 3;
        let d = driver.clone();
        let join = tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => d.tick().await,
                    _ = stopped.changed() => break,
                }
            }
        });
        ClusterHandle {
            stop,
            join: Some(join),
            driver,
        }
    }

    /// Stop taking and renewing leases (before the manager's shutdown,
    /// which still writes final snapshots under the leases held).
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(join) = self.join.take() {
            let _ = join.await;
        }
    }

    /// Give every lease up and leave the registry (after the manager's
    /// shutdown), so other nodes take the projections over at once.
    pub async fn leave(&self) {
        let d = &self.driver;
        for (name, held) in d.ownership.all() {
            d.ownership.remove(&name);
            let _ = d.coordinator.release(&name, held.revision).await;
        }
        let _ = d.coordinator.leave(&d.config.node).await;
    }
}

impl Driver {
    fn me(&self) -> &str {
        &self.config.node
    }

    /// Events applied per second here since the last call.
    fn events_per_sec(&self) -> f64 {
        let now = (Instant::now(), self.manager.applied_here());
        let mut last = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let rate = match *last {
            Some((at, applied)) => {
                let secs = now.0.duration_since(at).as_secs_f64();
                let events = now.1.saturating_sub(applied) as f64;
                if secs > 0.0 {
                    (events / secs * 10.0).round() / 10.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        *last = Some(now);
        rate
    }

    async fn tick(&self) {
        let info = NodeInfo {
            id: self.config.node.clone(),
            url: self.config.url.clone(),
            projections: self.ownership.count(),
            live_instances: self.manager.live_instances().0,
            events_per_sec: self.events_per_sec(),
        };
        if let Err(e) = self.coordinator.heartbeat(&info).await {
            warn!(error = %e, "cannot refresh this node in the cluster registry");
        }
        self.drop_expired().await;
        let nodes = match self.coordinator.nodes().await {
            Ok(nodes) => nodes.into_iter().map(|n| n.id).collect::<Vec<_>>(),
            Err(e) => {
                warn!(error = %e, "cannot list the cluster's nodes; only renewing leases");
                self.renew_all().await;
                return;
            }
        };
        let records = match self.manager.deployed().await {
            Ok(records) => records,
            Err(e) => {
                warn!(error = %e, "cannot read the deployments; only renewing leases");
                self.renew_all().await;
                return;
            }
        };
        let mut nodes = nodes;
        nodes.push(self.me().to_string());
        let records: BTreeMap<String, DeploymentRecord> =
            records.into_iter().map(|r| (r.name.clone(), r)).collect();
        let names: Vec<String> = records.keys().cloned().collect();
        let target = assign(&names, &nodes);
        let mine = |name: &str| target.get(name).map(String::as_str) == Some(self.me());

        for (name, _) in self.ownership.all() {
            if mine(&name) {
                self.renew(&name).await;
            } else {
                // Final snapshot while the lease is still ours, then free it.
                let deployed = records.contains_key(&name);
                self.manager.disown(&name, deployed).await;
                if let Some(held) = self.ownership.remove(&name) {
                    let _ = self.coordinator.release(&name, held.revision).await;
                }
                info!(projection = %name, "released: the assignment moved it to another node");
            }
        }
        for (name, record) in &records {
            if !mine(name) || self.ownership.get(name, Instant::now()).is_some() {
                continue;
            }
            let sent = Instant::now();
            match self.coordinator.acquire(name, self.me()).await {
                Ok(Some(revision)) => {
                    let lease = Lease {
                        node: self.me().to_string(),
                        epoch: revision,
                    };
                    self.ownership.insert(
                        name,
                        Held {
                            lease,
                            revision,
                            sent,
                        },
                    );
                    info!(projection = %name, epoch = revision, "took over");
                    let was_running = self.manager.runs_here(name);
                    if let Err(e) = self.manager.own(record.clone()).await {
                        warn!(projection = %name, error = %e, "cannot start an owned projection");
                    } else if was_running {
                        // Deployed through this node: it ran before the
                        // lease and its snapshots were refused; take one now.
                        let (manager, name) = (self.manager.clone(), name.clone());
                        tokio::spawn(async move { manager.take_snapshot(&name).await });
                    }
                }
                Ok(None) => {}
                Err(e) => warn!(projection = %name, error = %e, "cannot take a lease"),
            }
        }
        let now = Instant::now();
        for name in self.manager.running() {
            if self.ownership.get(&name, now).is_none() {
                self.manager.disown(&name, false).await;
            }
        }
    }

    /// Leases past their TTL by the local clock (this node was paused or
    /// cut off): their projections stop at once, writing nothing.
    async fn drop_expired(&self) {
        let now = Instant::now();
        for (name, held) in self.ownership.all() {
            if !held.valid(now, self.ownership.ttl()) {
                self.ownership.remove(&name);
                self.manager.disown(&name, false).await;
                warn!(projection = %name, "lease expired here: stopped without writing");
            }
        }
    }

    async fn renew_all(&self) {
        for (name, _) in self.ownership.all() {
            self.renew(&name).await;
        }
    }

    async fn renew(&self, name: &str) {
        match renew_lease(&*self.coordinator, &self.ownership, &self.renewing, name).await {
            Renewal::Renewed | Renewal::NotHeld => {}
            Renewal::Lost => {
                self.manager.disown(name, false).await;
                warn!(projection = %name, "lease lost to another node: stopped without writing");
            }
            Renewal::Failed(e) => {
                warn!(projection = %name, error = %e, "cannot renew a lease; retrying");
            }
        }
    }
}
