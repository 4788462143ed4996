//! A loaded [`Plugin`] and its running [`Instance`]s: one store each, with
//! limits enforced on every call and failures mapped to named errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::hume::projection::types::{Event, EventError as WitEventError, Info};
use super::bindings::{Projection, ProjectionPre};
use super::error::{BatchError, EventError, Limit, PluginError};
use super::sandbox::{Growable, Refused, StoreState};
use crate::event::RecordedEvent;

/// Per-instance sandbox limits. Breaching one fails the call with
/// [`PluginError::LimitExceeded`] naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall time one call may take (default 5 s).
    pub call_timeout: Duration,
    /// Most memory the instance may grow to (default 256 MiB): all its linear
    /// memories and tables together (each table element counts 8 bytes).
    pub max_memory_bytes: usize,
    /// Largest state `snapshot()` may return (default 16 MiB).
    pub max_snapshot_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_secs(5),
            max_memory_bytes: 256 * 1024 * 1024,
            max_snapshot_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What a plugin says about itself (`describe()`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginInfo {
    /// Name of the projection logic, e.g. `bank`.
    pub name: String,
    /// Version of the plugin, free form.
    pub version: String,
    /// Kinds it handles; empty means every kind.
    pub kinds: Vec<String>,
    /// Encoding of snapshot bytes: `json` by convention.
    pub state_encoding: String,
}

impl PluginInfo {
    /// True when snapshots are JSON (`state_encoding` is `json`).
    pub fn is_json(&self) -> bool {
        self.state_encoding.eq_ignore_ascii_case("json")
    }
}

/// A validated, compiled plugin, ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    hash: String,
    info: PluginInfo,
    world_version: &'static str,
    pre: ProjectionPre<StoreState>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("hash", &self.inner.hash)
            .field("info", &self.inner.info)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn new(
        hash: String,
        info: PluginInfo,
        world_version: &'static str,
        pre: ProjectionPre<StoreState>,
    ) -> Plugin {
        Plugin {
            inner: Arc::new(PluginInner {
                hash,
                info,
                world_version,
                pre,
            }),
        }
    }

    /// The sha256 of the component's bytes, lowercase hex: its identity.
    pub fn hash(&self) -> &str {
        &self.inner.hash
    }

    /// What the plugin said about itself when loaded.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// The WIT package version it implements, e.g. `hume:projection@0.1.0`.
    pub fn world_version(&self) -> &str {
        self.inner.world_version
    }

    /// What `hume validate --json` and `POST /plugins/validate` answer:
    /// name, version, kinds, state encoding, world and hash.
    pub fn description(&self) -> serde_json::Value {
        let info = self.info();
        serde_json::json!({
            "name": info.name,
            "version": info.version,
            "kinds": info.kinds,
            "state_encoding": info.state_encoding,
            "world": self.world_version(),
            "hash": self.hash(),
        })
    }

    /// Create a fresh instance for `projection` (cheap: no compilation).
    /// Call `init_state` or `restore` on it before any event.
    pub async fn instantiate(
        &self,
        projection: &str,
        limits: Limits,
    ) -> Result<Instance, PluginError> {
        Instance::from_pre(&self.inner.pre, projection, limits).await
    }
}

/// One running instance of a plugin, with its own store and memory.
/// Not shared: drive it from one task at a time.
pub struct Instance {
    store: Store<StoreState>,
    bindings: Projection,
    limits: Limits,
    poisoned: Option<String>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("projection", &&*self.store.data().projection)
            .field("limits", &self.limits)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Instance {
    pub(crate) async fn from_pre(
        pre: &ProjectionPre<StoreState>,
        projection: &str,
        limits: Limits,
    ) -> Result<Instance, PluginError> {
        let state = StoreState::new(projection, limits.max_memory_bytes, limits.call_timeout);
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|ctx| {
            let state = ctx.data();
            if state.call_started.elapsed() > state.call_timeout {
                return Err(wasmtime::Error::new(CallTimedOut));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store.data_mut().call_started = Instant::now();
        store.set_epoch_deadline(1);
        let bindings = match pre.instantiate_async(&mut store).await {
            Ok(bindings) => bindings,
            // Memories and tables are created (and counted) when instantiating.
            Err(_) if store.data().limiter.refused.is_some() => {
                let refused = store.data().limiter.refused.expect("checked above");
                return Err(PluginError::LimitExceeded {
                    limit: Limit::Memory,
                    call: "instantiate",
                    detail: memory_detail(refused, &limits),
                });
            }
            Err(e) => {
                return Err(PluginError::Instantiate {
                    projection: projection.to_string(),
                    message: format!("{e:#}"),
                })
            }
        };
        Ok(Instance {
            store,
            bindings,
            limits,
            poisoned: None,
        })
    }

    /// The limits this instance runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Run under new limits from the next call on. A memory limit below
    /// what the instance holds already refuses its next growth (nothing
    /// is taken back).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        let state = self.store.data_mut();
        state.limiter.set_max_bytes(limits.max_memory_bytes);
        state.call_timeout = limits.call_timeout;
    }

    /// True once a call trapped or breached a limit.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Start a call: refuse when poisoned, reset the clock and the limiter.
    fn begin(&mut self) -> Result<(), PluginError> {
        if let Some(cause) = &self.poisoned {
            return Err(PluginError::Poisoned {
                cause: cause.clone(),
            });
        }
        let data = self.store.data_mut();
        data.call_started = Instant::now();
        data.limiter.refused = None;
        data.stderr.clear();
        self.store.set_epoch_deadline(1);
        Ok(())
    }

    /// Turn a failed call into a named error and poison the instance.
    fn fail(&mut self, call: &'static str, err: wasmtime::Error) -> PluginError {
        let error = classify(call, err, self.store.data(), &self.limits);
        self.poisoned = Some(error.to_string());
        error
    }

    /// Ask the plugin to describe itself.
    pub async fn describe(&mut self) -> Result<PluginInfo, PluginError> {
        self.begin()?;
        match self.bindings.call_describe(&mut self.store).await {
            Ok(Info {
                name,
                version,
                kinds,
                state_encoding,
            }) => Ok(PluginInfo {
                name,
                version,
                kinds,
                state_encoding,
            }),
            Err(e) => Err(self.fail("describe", e)),
        }
    }

    /// Start from the plugin's initial state.
    pub async fn init_state(&mut self) -> Result<(), PluginError> {
        self.begin()?;
        let projection = self.store.data().projection.clone();
        self.bindings
            .call_init_state(&mut self.store, &projection)
            .await
            .map_err(|e| self.fail("init-state", e))
    }

    /// Replace the state with bytes from an earlier `snapshot()`.
    pub async fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        self.begin()?;
        let projection = self.store.data().projection.clone();
        match self
            .bindings
            .call_restore(&mut self.store, &projection, state)
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(PluginError::RestoreRejected { message }),
            Err(e) => Err(self.fail("restore", e)),
        }
    }

    /// Apply a batch of events in one call. On `BatchError::Failed{index}`
    /// the events before `index` are applied and the instance stays usable.
    pub async fn handle_events(&mut self, events: &[RecordedEvent]) -> Result<(), BatchError> {
        let refs: Vec<&RecordedEvent> = events.iter().collect();
        self.handle_event_refs(&refs).await
    }

    /// [`Instance::handle_events`] for a batch of borrowed events (e.g. a
    /// filtered selection of a larger batch), without copying them.
    pub async fn handle_event_refs(&mut self, events: &[&RecordedEvent]) -> Result<(), BatchError> {
        self.begin()?;
        let batch: Vec<Event<'_>> = events
            .iter()
            .map(|e| Event {
                position: e.position,
                stream: &e.stream,
                revision: e.revision,
                kind: &e.kind,
                data: &e.data,
                metadata: e.metadata.as_deref().unwrap_or_default(),
                timestamp: e.timestamp,
            })
            .collect();
        match self
            .bindings
            .call_handle_events(&mut self.store, &batch)
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) if failure.index as usize >= events.len() => {
                // A plugin bug: the host cannot know which events it applied.
                let error = PluginError::Trap {
                    call: "handle-events",
                    message: format!(
                        "the plugin reported a failure at index {} of a batch of {} events",
                        failure.index,
                        events.len()
                    ),
                };
                self.poisoned = Some(error.to_string());
                Err(BatchError::Plugin(error))
            }
            Ok(Err(failure)) => Err(BatchError::Failed {
                index: failure.index as usize,
                error: match failure.error {
                    WitEventError::UnknownEvent => EventError::UnknownEvent,
                    WitEventError::Rejected(message) => EventError::Rejected(message),
                },
            }),
            Err(e) => Err(BatchError::Plugin(self.fail("handle-events", e))),
        }
    }

    /// The current state, serialised; fails with [`Limit::Snapshot`] when it
    /// is larger than `max_snapshot_bytes` (the instance stays usable).
    pub async fn snapshot(&mut self) -> Result<Vec<u8>, PluginError> {
        self.begin()?;
        let state = self
            .bindings
            .call_snapshot(&mut self.store)
            .await
            .map_err(|e| self.fail("snapshot", e))?;
        if state.len() > self.limits.max_snapshot_bytes {
            return Err(PluginError::LimitExceeded {
                limit: Limit::Snapshot,
                call: "snapshot",
                detail: format!(
                    "the state is {} bytes, the limit is {} bytes",
                    state.len(),
                    self.limits.max_snapshot_bytes
                ),
            });
        }
        Ok(state)
    }

    /// Tell the plugin it has applied everything up to `offset`.
    pub async fn on_caught_up(&mut self, offset: u64) -> Result<(), PluginError> {
        self.begin()?;
        self.bindings
            .call_on_caught_up(&mut self.store, offset)
            .await
            .map_err(|e| self.fail("on-caught-up", e))
    }

    /// Ask a read-side question; the plugin's refusal is
    /// [`PluginError::QueryRejected`] (the instance stays usable).
    pub async fn query(&mut self, request: &[u8]) -> Result<Vec<u8>, PluginError> {
        self.begin()?;
        match self.bindings.call_query(&mut self.store, request).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(message)) => Err(PluginError::QueryRejected { message }),
            Err(e) => Err(self.fail("query", e)),
        }
    }
}

/// What a refused growth means, for the error message.
fn memory_detail(refused: Refused, limits: &Limits) -> String {
    let what = match refused.what {
        Growable::Memory => "a linear memory",
        Growable::Table => "a table",
    };
    format!(
        "it tried to grow {what}, which would bring its memories and tables to {} bytes, \
         the limit is {} bytes",
        refused.total_bytes, limits.max_memory_bytes
    )
}

/// The error the epoch callback raises when a call ran past its time.
#[derive(Debug)]
struct CallTimedOut;

impl std::fmt::Display for CallTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("call time limit exceeded")
    }
}

impl std::error::Error for CallTimedOut {}

/// Name the cause of a failed call: time, memory, stack, or another trap.
fn classify(
    call: &'static str,
    err: wasmtime::Error,
    state: &StoreState,
    limits: &Limits,
) -> PluginError {
    if err.downcast_ref::<CallTimedOut>().is_some() {
        return PluginError::LimitExceeded {
            limit: Limit::CallTimeout,
            call,
            detail: format!(
                "still running after {} ms, the limit is {} ms",
                state.call_started.elapsed().as_millis(),
                limits.call_timeout.as_millis()
            ),
        };
    }
    if let Some(refused) = state.limiter.refused {
        return PluginError::LimitExceeded {
            limit: Limit::Memory,
            call,
            detail: memory_detail(refused, limits),
        };
    }
    if let Some(Trap::StackOverflow) = err.downcast_ref::<Trap>() {
        return PluginError::LimitExceeded {
            limit: Limit::Stack,
            call,
            detail: format!(
                "stack overflow (unbounded recursion?); the wasm stack limit is {} bytes",
                super::runtime::MAX_WASM_STACK
            ),
        };
    }
    // The trap itself first, then what the guest said on stderr (a Rust
    // panic message, a Python traceback); the wasm backtrace goes to the log.
    let trap = match err.downcast_ref::<Trap>() {
        Some(trap) => format!("wasm trap: {trap}"),
        None => err.root_cause().to_string(),
    };
    tracing::debug!(
        projection = &*state.projection,
        call,
        "plugin trapped: {err:?}"
    );
    let message = match state.stderr.joined() {
        Some(said) => format!("{trap}; the plugin's stderr: {said}"),
        None => trap,
    };
    PluginError::Trap { call, message }
}
