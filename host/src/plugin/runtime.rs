//! The [`Runtime`]: one wasmtime engine per process (async, epoch
//! interruption driven by a ticker thread), the linker with the sandboxed
//! WASI and `host.log`, and the compiled-component cache (memory, and
//! optionally a directory).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::bindings::{Projection, ProjectionPre};
use super::error::PluginError;
use super::instance::{Limits, Plugin, PluginInfo};
use super::sandbox::StoreState;

/// The world every plugin must implement, with its version.
pub const WORLD: &str = "hume:projection/projection@0.1.0";
/// The version of the WIT package the host implements.
pub const WORLD_VERSION: &str = "hume:projection@0.1.0";

/// The exports of the world, checked by name on load so a wrong world is
/// reported as "missing `handle-events`" rather than as a type error.
const EXPORTS: [&str; 7] = [
    "describe",
    "init-state",
    "restore",
    "handle-events",
    "snapshot",
    "on-caught-up",
    "query",
];

/// Largest WebAssembly stack a call may use; deeper recursion traps with
/// [`super::Limit::Stack`].
pub(crate) const MAX_WASM_STACK: usize = 1024 * 1024;
/// Native stack of the fiber each async call runs on: the wasm stack plus
/// room for host functions (WASI) called from it.
const ASYNC_STACK: usize = MAX_WASM_STACK + 2 * 1024 * 1024;

/// How the [`Runtime`] is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for compiled components (`<sha256>-<engine>.cwasm`), so a
    /// restart or another process skips compilation. `None`: memory only.
    pub cache_dir: Option<PathBuf>,
    /// More directories to look in (never written) before compiling, e.g.
    /// the CLI's cache of this user, so what `hume validate` compiled is
    /// not compiled again by `hume serve` on the same machine.
    pub read_only_cache_dirs: Vec<PathBuf>,
    /// Period of the epoch ticker: the granularity of the call time limit
    /// and of the yields to the async executor.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            read_only_cache_dirs: Vec::new(),
            epoch_tick: Duration::from_millis(10),
        }
    }
}

/// The plugin runtime: compiles, validates and caches plugins. Cheap to
/// clone; one per process is enough.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<StoreState>,
    config: RuntimeConfig,
    /// Loaded plugins by the sha256 of their bytes.
    plugins: Mutex<HashMap<String, Plugin>>,
    /// Distinguishes compiled artefacts of incompatible engines on disk.
    engine_tag: String,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Create the engine, the linker and the epoch ticker thread (which
    /// stops when the last clone of the runtime is dropped).
    pub fn new(config: RuntimeConfig) -> Result<Runtime, PluginError> {
        let engine_err = |e: wasmtime::Error| PluginError::Engine {
            message: format!("{e:#}"),
        };
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .async_stack_size(ASYNC_STACK)
            .wasm_component_model(true);
        if std::env::var_os("HUME_WASM_PERFMAP").is_some() {
            // For `perf`: name JIT-compiled guest functions in /tmp/perf-PID.map.
            wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&wasm).map_err(engine_err)?;

        let mut linker = Linker::<StoreState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_err)?;
        Projection::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |s| s)
            .map_err(engine_err)?;

        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir).map_err(|source| PluginError::Cache {
                path: dir.clone(),
                source,
            })?;
        }

        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_tag = format!("{:016x}", hasher.finish());

        spawn_ticker(&engine, config.epoch_tick);
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                config,
                plugins: Mutex::new(HashMap::new()),
                engine_tag,
            }),
        })
    }

    /// The wasmtime engine (for embedders that need it, e.g. benches).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Load a plugin from the bytes of a component: check it is a component
    /// of the `projection` world, compile it (once per distinct bytes: the
    /// result is cached by sha256, in memory and in `cache_dir`), and call
    /// `describe`.
    ///
    /// Compiling a large component takes seconds of CPU: from async code,
    /// call this inside `tokio::task::spawn_blocking`.
    pub fn load(&self, wasm: &[u8]) -> Result<Plugin, PluginError> {
        let hash = hex::encode(Sha256::digest(wasm));
        if let Some(plugin) = self.lock_plugins().get(&hash) {
            return Ok(plugin.clone());
        }
        check_header(wasm)?;
        let component = self.compile(wasm, &hash)?;
        let pre = self.pre_instantiate(&component)?;
        let info = describe(&pre)?;
        let plugin = Plugin::new(hash.clone(), info, WORLD_VERSION, pre);
        self.lock_plugins().insert(hash, plugin.clone());
        Ok(plugin)
    }

    fn lock_plugins(&self) -> std::sync::MutexGuard<'_, HashMap<String, Plugin>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.inner
            .plugins
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Compile, or load the compiled form from the cache directory.
    fn compile(&self, wasm: &[u8], hash: &str) -> Result<Component, PluginError> {
        let engine = &self.inner.engine;
        let file = format!("{hash}-{}.cwasm", self.inner.engine_tag);
        let cached = self
            .inner
            .config
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(&file));
        let lookups = cached.iter().cloned().chain(
            self.inner
                .config
                .read_only_cache_dirs
                .iter()
                .map(|dir| dir.join(&file)),
        );
        for path in lookups {
            // Read the file rather than map it (`deserialize_file`): a mapped
            // file truncated by someone else would crash the process (SIGBUS).
            if let Ok(bytes) = std::fs::read(&path) {
                // SAFETY: the file was written by `Component::serialize` of an
                // engine with the same compatibility hash (it is in the name),
                // into the host's own cache directory or one the caller vouches
                // for (see `read_only_cache_dirs`), atomically (rename);
                // wasmtime still checks its header and engine settings.
                match unsafe { Component::deserialize(engine, &bytes) } {
                    Ok(component) => {
                        if Some(&path) != cached.as_ref() {
                            tracing::debug!(
                                plugin = hash,
                                path = %path.display(),
                                "loaded the compiled form from a shared cache"
                            );
                            if let Some(own) = &cached {
                                // Keep a copy of our own: the other cache may be cleared.
                                if let Err(err) = write_cache(&component, own) {
                                    tracing::warn!("cannot cache the compiled component: {err}");
                                }
                            }
                        }
                        return Ok(component);
                    }
                    Err(err) => tracing::warn!(
                        path = %path.display(),
                        "ignoring unreadable compiled component: {err:#}"
                    ),
                }
            }
        }
        let started = std::time::Instant::now();
        let component = Component::new(engine, wasm).map_err(|e| PluginError::Compile {
            message: format!("{e:#}"),
        })?;
        tracing::debug!(
            plugin = hash,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled component"
        );
        if let Some(path) = &cached {
            if let Err(err) = write_cache(&component, path) {
                tracing::warn!("cannot cache the compiled component: {err}");
            }
        }
        Ok(component)
    }

    /// Check the exports by name, then resolve the imports against the
    /// linker and the export types against the bindings.
    fn pre_instantiate(
        &self,
        component: &Component,
    ) -> Result<ProjectionPre<StoreState>, PluginError> {
        let engine = &self.inner.engine;
        let ty = component.component_type();
        let exported: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
        let missing: Vec<&str> = EXPORTS
            .iter()
            .copied()
            .filter(|e| !exported.iter().any(|x| x == e))
            .collect();
        if !missing.is_empty() {
            return Err(PluginError::WrongWorld {
                expected: WORLD,
                detail: format!(
                    "missing export{} {} (it exports: {})",
                    if missing.len() == 1 { "" } else { "s" },
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if exported.is_empty() {
                        "nothing".to_string()
                    } else {
                        exported.join(", ")
                    }
                ),
            });
        }
        let wrong = |e: wasmtime::Error| PluginError::WrongWorld {
            expected: WORLD,
            detail: format!("{e:#}"),
        };
        let pre = self
            .inner
            .linker
            .instantiate_pre(component)
            .map_err(wrong)?;
        ProjectionPre::new(pre).map_err(wrong)
    }
}

/// Distinguish random bytes and core modules from components by the header:
/// `\0asm`, then version 1 layer 0 (core module) or layer 1 (component).
fn check_header(wasm: &[u8]) -> Result<(), PluginError> {
    const HELP: &str = "build it as a component (Rust: --target wasm32-wasip2; \
                        or wrap a core module with `wasm-tools component new`)";
    if wasm.len() < 8 || &wasm[0..4] != b"\0asm" {
        return Err(PluginError::NotAComponent {
            reason: format!(
                "not a WebAssembly binary (it does not start with the `\\0asm` magic); {HELP}"
            ),
        });
    }
    match &wasm[4..8] {
        [1, 0, 0, 0] => Err(PluginError::NotAComponent {
            reason: format!("it is a core wasm module, not a component; {HELP}"),
        }),
        [_, _, 1, 0] => Ok(()),
        other => Err(PluginError::NotAComponent {
            reason: format!("unknown WebAssembly binary version/layer {other:02x?}; {HELP}"),
        }),
    }
}

/// Write the compiled component next to its final name, then rename, so a
/// crash never leaves a truncated artefact under the final name.
fn write_cache(component: &Component, path: &Path) -> Result<(), PluginError> {
    let bytes = component.serialize().map_err(|e| PluginError::Compile {
        message: format!("cannot serialize the compiled component: {e:#}"),
    })?;
    let io = |source| PluginError::Cache {
        path: path.to_path_buf(),
        source,
    };
    // Unique per process and per write, so concurrent writers never share
    // a temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// Call `describe` on a throwaway instance (under the default limits).
fn describe(pre: &ProjectionPre<StoreState>) -> Result<PluginInfo, PluginError> {
    let pre = pre.clone();
    // `describe` is quick and touches no async host function, so driving it
    // with a local executor is fine even from inside a tokio runtime.
    futures::executor::block_on(async move {
        let mut instance =
            super::instance::Instance::from_pre(&pre, "describe", Limits::default()).await?;
        instance.describe().await
    })
}

/// Advance the engine's epoch every `tick` until the engine is gone.
fn spawn_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("hume-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(tick);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        });
    if let Err(err) = spawned {
        // Without a ticker no call ever times out: say so loudly.
        tracing::error!("cannot start the epoch ticker thread: {err}; call time limits are off");
    }
}
