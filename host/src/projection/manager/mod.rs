//! The projection manager: deploys and undeploys projections, keeps their
//! records durable, runs one [`Actor`] per projection version and routes
//! commands to them. `hume serve` owns one.
//!
//! Blue/green: deploying a different plugin under an existing name starts a
//! second (pending) actor beside the active one; when the pending one first
//! reaches the log head the manager swaps it in (record first, then the
//! in-memory routing) and ends the old one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{error, info};

use crate::deployment::{DeploymentRecord, ProjectionOptions, SnapshotStoreKind, VersionRecord};
use crate::log::EventLog;
use crate::plugin::{Plugin, Runtime};
use crate::snapshot::{now_ms, SnapshotStore};
use crate::stores::Stores;

use super::actor::{short, Command, StateView};
use super::error::ProjectionError;
use super::feed::{Feed, Follow, DEFAULT_TAIL_EVENTS};
use super::instances::{InstanceBudget, DEFAULT_MAX_LIVE_INSTANCES};
use super::status::{LiveStatus, ProjectionStatus, RunState};

mod deploy;
pub mod history;
mod lifecycle;
mod ownership;
mod partitions;
mod spawn;

/// What `deploy` needs.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// Projection name.
    pub name: String,
    /// The plugin component bytes.
    pub wasm: Vec<u8>,
    /// Streams and categories (`account-*`) to follow.
    pub streams: Vec<String>,
    /// Options (defaults are the seed's).
    pub options: ProjectionOptions,
    /// For a new version of an existing projection: start from the old
    /// version's snapshot instead of rebuilding from the start.
    pub keep_state: bool,
    /// For a new version: keep stepping over the running version's skipped
    /// positions.
    pub keep_skips: bool,
}

/// What `deploy` did.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeployOutcome {
    /// Projection name.
    pub name: String,
    /// Hash of the deployed plugin.
    pub plugin_hash: String,
    /// Plugin name (from `describe`).
    pub plugin_name: String,
    /// Plugin version (from `describe`).
    pub plugin_version: String,
    /// `deployed` for a new projection, `building` for a new version being
    /// built beside the running one (blue/green), `updated` when the
    /// running plugin's options changed in place.
    pub status: String,
    /// The hash of the version it replaces, for a new version.
    pub replaces: Option<String>,
    /// The options that differ, for a redeploy of the same plugin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

/// Server-wide settings of the projection runtime.
#[derive(Debug, Clone, Copy)]
pub struct ManagerOptions {
    /// Most plugin instances live at once; the least recently used
    /// hibernate beyond it (`hume serve --max-live-instances`).
    pub max_live_instances: usize,
    /// An instance with nothing to do hibernates after this long (`None`:
    /// only when the bound asks; `hume serve --hibernate-after`).
    pub hibernate_after: Option<Duration>,
    /// Start every deployed projection at once (embedded mode). In cluster
    /// mode the cluster task starts only the ones this node owns.
    pub start_deployed: bool,
}

/// Default `--hibernate-after`.
pub const DEFAULT_HIBERNATE_AFTER: Duration = Duration::from_secs(60);

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            max_live_instances: DEFAULT_MAX_LIVE_INSTANCES,
            hibernate_after: Some(DEFAULT_HIBERNATE_AFTER),
            start_deployed: true,
        }
    }
}

/// One running actor.
struct ActorHandle {
    tx: mpsc::Sender<Box<Command>>,
    follow: Follow,
    live: LiveStatus,
    version: VersionRecord,
    join: tokio::task::JoinHandle<()>,
}

struct Entry {
    record: DeploymentRecord,
    active: ActorHandle,
    pending: Option<ActorHandle>,
}

struct Inner {
    runtime: Runtime,
    log: Arc<dyn EventLog>,
    feed: Arc<Feed>,
    /// Concurrent plugin instantiations + restores.
    builds: Arc<tokio::sync::Semaphore>,
    /// The bound on live instances.
    budget: Arc<InstanceBudget>,
    options: ManagerOptions,
    stores: Stores,
    entries: RwLock<BTreeMap<String, Box<Entry>>>,
    /// Serialises every change to deployment records (deploy, undeploy,
    /// swap, stop/start, skip), so each is read-modify-write safe.
    changes: tokio::sync::Mutex<()>,
    /// Loaded plugins by hash (compiling is expensive).
    plugins: Mutex<HashMap<String, Plugin>>,
    shutting_down: std::sync::atomic::AtomicBool,
}

/// Runs every deployed projection of one server.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

/// The snapshot key of one version of a projection.
fn snapshot_key(name: &str, hash: &str) -> String {
    format!("{name}@{hash}")
}

/// Default time a consistent read waits.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

impl Manager {
    /// Read the deployment records from `storage` and start every deployed
    /// projection from its last snapshot. Returns once the actors are
    /// spawned (they load their snapshots in the background; status shows
    /// `starting` meanwhile).
    pub async fn start(
        stores: Stores,
        runtime: Runtime,
        options: ManagerOptions,
    ) -> Result<Manager, ProjectionError> {
        let log = stores.log.clone();
        let feed = Feed::start(log.clone(), DEFAULT_TAIL_EVENTS);
        let manager = Manager {
            inner: Arc::new(Inner {
                runtime,
                log,
                feed,
                builds: Arc::new(tokio::sync::Semaphore::new(64)),
                budget: InstanceBudget::new(options.max_live_instances),
                options,
                stores,
                entries: RwLock::new(BTreeMap::new()),
                changes: tokio::sync::Mutex::new(()),
                plugins: Mutex::new(HashMap::new()),
                shutting_down: Default::default(),
            }),
        };
        let all = manager.inner.stores.deployments.load_all().await?;
        let count = all.len();
        // Each live instance holds a few memory mappings; warn before the
        // kernel's vm.max_map_count makes the starts fail.
        let instances = count + all.iter().filter(|r| r.pending.is_some()).count();
        crate::plugin::warn_if_near_max_map_count(instances.min(options.max_live_instances));
        for record in all.into_iter().filter(|_| options.start_deployed) {
            if let Err(err) = manager.restart(record.clone()).await {
                error!(projection = %record.name, error = %err, "cannot start deployed projection");
            }
        }
        info!(projections = count, "projection manager started");
        Ok(manager)
    }

    /// Start the actors of a stored record.
    async fn restart(&self, record: DeploymentRecord) -> Result<(), ProjectionError> {
        let plugin = self.stored_plugin(&record.active.plugin_hash).await?;
        let active = self.spawn_version(&record, &record.active, plugin, None)?;
        let pending = match &record.pending {
            Some(v) => {
                let plugin = self.stored_plugin(&v.plugin_hash).await?;
                Some(self.spawn_pending(&record, v, plugin)?)
            }
            None => None,
        };
        let name = record.name.clone();
        self.write_entries().insert(
            name,
            Box::new(Entry {
                record,
                active,
                pending,
            }),
        );
        Ok(())
    }

    fn write_entries(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Box<Entry>>> {
        self.inner
            .entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn read_entries(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Box<Entry>>> {
        self.inner.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Load (compile) plugin bytes off the async workers.
    async fn load_plugin(&self, wasm: Vec<u8>) -> Result<Plugin, ProjectionError> {
        let runtime = self.inner.runtime.clone();
        let plugin = tokio::task::spawn_blocking(move || runtime.load(&wasm))
            .await
            .map_err(|e| ProjectionError::Invalid(format!("loading the plugin panicked: {e}")))?
            .map_err(ProjectionError::Load)?;
        self.inner
            .plugins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(plugin.hash().to_string(), plugin.clone());
        Ok(plugin)
    }

    /// Validate (load and compile) plugin bytes without deploying them:
    /// what `hume validate` checks, for `POST /plugins/validate`.
    pub async fn validate(&self, wasm: Vec<u8>) -> Result<Plugin, ProjectionError> {
        let runtime = self.inner.runtime.clone();
        tokio::task::spawn_blocking(move || runtime.load(&wasm))
            .await
            .map_err(|e| ProjectionError::Invalid(format!("loading the plugin panicked: {e}")))?
            .map_err(ProjectionError::Load)
    }

    /// A plugin stored in the `plugins` column family, by hash.
    async fn stored_plugin(&self, hash: &str) -> Result<Plugin, ProjectionError> {
        if let Some(p) = self
            .inner
            .plugins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
        {
            return Ok(p.clone());
        }
        let wasm = self
            .inner
            .stores
            .deployments
            .plugin(hash)
            .await?
            .ok_or_else(|| {
                ProjectionError::Invalid(format!(
                    "plugin {hash} is missing from the data directory; deploy it again"
                ))
            })?;
        self.load_plugin(wasm).await
    }

    fn store(&self, kind: SnapshotStoreKind) -> Arc<dyn SnapshotStore> {
        match kind {
            SnapshotStoreKind::Durable => self.inner.stores.snapshots.clone(),
            SnapshotStoreKind::Memory => self.inner.stores.memory_snapshots.clone(),
        }
    }

    /// Status of every projection, by name.
    pub fn list(&self) -> Vec<ProjectionStatus> {
        let head = self.inner.log.head();
        let now = now_ms();
        self.read_entries()
            .values()
            .map(|e| entry_status(&self.inner.feed, e, head, now))
            .collect()
    }

    /// Plugin instances live now, and the bound.
    pub fn live_instances(&self) -> (usize, usize) {
        (self.inner.budget.live(), self.inner.budget.max())
    }

    /// Status of one projection.
    pub fn status(&self, name: &str) -> Result<ProjectionStatus, ProjectionError> {
        let head = self.inner.log.head();
        let entries = self.read_entries();
        let entry = entries.get(name).ok_or_else(|| not_found(name))?;
        Ok(entry_status(&self.inner.feed, entry, head, now_ms()))
    }

    fn sender(
        &self,
        name: &str,
    ) -> Result<(mpsc::Sender<Box<Command>>, LiveStatus), ProjectionError> {
        let entries = self.read_entries();
        let entry = entries.get(name).ok_or_else(|| not_found(name))?;
        Ok((entry.active.tx.clone(), entry.active.live.clone()))
    }

    /// Send a command built around a reply channel and wait for the answer.
    async fn ask<T>(
        &self,
        name: &str,
        timeout: Option<(Duration, u64)>,
        make: impl FnOnce(oneshot::Sender<Result<T, ProjectionError>>) -> Command,
    ) -> Result<T, ProjectionError> {
        let (tx, live) = self.sender(name)?;
        let (reply, rx) = oneshot::channel();
        let gone = || ProjectionError::Gone {
            name: name.to_string(),
        };
        let exchange = async {
            tx.send(Box::new(make(reply))).await.map_err(|_| gone())?;
            rx.await.map_err(|_| gone())?
        };
        match timeout {
            None => exchange.await,
            Some((limit, target)) => match tokio::time::timeout(limit, exchange).await {
                Ok(r) => r,
                Err(_) => Err(ProjectionError::Timeout {
                    name: name.to_string(),
                    target,
                    scanned: live.lock().unwrap_or_else(|p| p.into_inner()).scanned,
                    timeout_ms: limit.as_millis() as u64,
                }),
            },
        }
    }

    /// The head a read waits for: for a consistent one, asked of the store
    /// (in cluster mode another node may have appended since this node
    /// last looked; a store that does not answer leaves the head known).
    async fn head_for(&self, consistent: bool) -> u64 {
        if !consistent {
            return self.inner.log.head();
        }
        match self.inner.log.refresh_head().await {
            Ok(head) => head,
            Err(err) => {
                tracing::debug!(error = %err, "reading the log's head for a consistent read");
                self.inner.log.head()
            }
        }
    }

    /// The state and offset. `consistent`: after every event in the log at
    /// the time of the call (waiting up to `timeout`); otherwise at once.
    pub async fn read(
        &self,
        name: &str,
        consistent: bool,
        timeout: Duration,
    ) -> Result<StateView, ProjectionError> {
        let head = self.head_for(consistent).await;
        let target = consistent.then_some(head);
        self.ask(name, Some((timeout, head)), |reply| Command::Read {
            target,
            reply,
        })
        .await
    }

    /// Pass `request` to the plugin's `query` (consistent as for [`read`](Self::read)).
    pub async fn query(
        &self,
        name: &str,
        request: Vec<u8>,
        consistent: bool,
        timeout: Duration,
    ) -> Result<Vec<u8>, ProjectionError> {
        let head = self.head_for(consistent).await;
        let target = consistent.then_some(head);
        self.ask(name, Some((timeout, head)), |reply| Command::Query {
            target,
            request,
            reply,
        })
        .await
    }

    /// Ask the projection to look at the log now (fire and forget).
    pub async fn catch_up(&self, name: &str) -> Result<(), ProjectionError> {
        let (tx, _) = self.sender(name)?;
        tx.send(Box::new(Command::CatchUp))
            .await
            .map_err(|_| ProjectionError::Gone {
                name: name.to_string(),
            })
    }

    /// Persist a snapshot now; returns its offset.
    pub async fn take_snapshot(&self, name: &str) -> Result<u64, ProjectionError> {
        self.ask(name, None, |reply| Command::TakeSnapshot { reply })
            .await
    }

    /// Final snapshots: tell every actor to persist and end, and wait for
    /// all of them (concurrently).
    pub async fn shutdown(&self) {
        self.inner
            .shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let handles: Vec<ActorHandle> = {
            let mut entries = self.write_entries();
            let all = std::mem::take(&mut *entries);
            all.into_values()
                .flat_map(|e| std::iter::once(e.active).chain(e.pending))
                .collect()
        };
        let count = handles.len();
        futures::future::join_all(handles.into_iter().map(|h| stop_actor(h, true))).await;
        info!(projections = count, "final snapshots persisted");
    }
}

/// Tell an actor to end (with a final snapshot or not) and wait for it.
async fn stop_actor(handle: ActorHandle, snapshot: bool) {
    let (reply, rx) = oneshot::channel();
    if handle
        .tx
        .send(Box::new(Command::Shutdown { snapshot, reply }))
        .await
        .is_ok()
    {
        let _ = rx.await;
    }
    let _ = handle.join.await;
}

fn not_found(name: &str) -> ProjectionError {
    ProjectionError::NotFound {
        name: name.to_string(),
    }
}

/// Status of one actor; an idle projection's cursor is moved over what the
/// feed knows holds nothing for it (it is not woken for other streams).
fn actor_status(feed: &Feed, name: &str, h: &ActorHandle, head: u64, now: u64) -> ProjectionStatus {
    let mut status = h
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .view(name, &h.version, head, now);
    if status.fault.is_none() && status.state != RunState::Stopped {
        status.scanned = feed
            .caught_up_to(status.scanned, &h.follow)
            .max(status.scanned);
        status.lag = head.saturating_sub(status.scanned);
    }
    status
}

fn entry_status(feed: &Feed, entry: &Entry, head: u64, now: u64) -> ProjectionStatus {
    let name = &entry.record.name;
    let mut status = actor_status(feed, name, &entry.active, head, now);
    if let Some(p) = &entry.pending {
        status.pending = Some(Box::new(actor_status(feed, name, p, head, now)));
    }
    status
}
