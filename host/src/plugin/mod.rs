//! The plugin runtime: loads projection plugins (WebAssembly components of
//! the world `hume:projection/projection`), validates and compiles them once,
//! and runs instances in a sandbox with limits.
//!
//! - [`Runtime`]: the wasmtime engine (async, epoch interruption), the linker
//!   (sandboxed WASI p2 + `host.log`) and the compiled-component cache.
//! - [`Plugin`]: a validated component plus what it says about itself.
//! - [`Instance`]: one running instance with its own memory and [`Limits`].
//!
//! A call never blocks an async worker for long: it runs on a fiber that
//! yields at every epoch tick and traps once it has run longer than
//! [`Limits::call_timeout`].

mod bindings;
mod error;
mod instance;
mod maps;
mod runtime;
mod sandbox;

pub use error::{BatchError, EventError, Limit, PluginError};
pub use instance::{Instance, Limits, Plugin, PluginInfo};
pub use maps::{map_count_warning, warn_if_near_max_map_count, MAPPINGS_PER_INSTANCE};
pub use runtime::{Runtime, RuntimeConfig, WORLD, WORLD_VERSION};
