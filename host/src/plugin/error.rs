//! Errors of the plugin runtime: loading (validation, compilation), running
//! (traps and breached limits) and the per-event failures a plugin reports.

use std::fmt;
use std::path::PathBuf;

/// A sandbox limit a plugin can breach (see [`super::Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Wall time of one call (`Limits::call_timeout`).
    CallTimeout,
    /// Linear memory of the instance (`Limits::max_memory_bytes`).
    Memory,
    /// Size of the bytes `snapshot()` returns (`Limits::max_snapshot_bytes`).
    Snapshot,
    /// WebAssembly call stack (unbounded recursion).
    Stack,
}

impl Limit {
    /// The flag of `hume deploy` and `hume replay` that sets this limit.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Limit::CallTimeout => Some("--call-timeout"),
            Limit::Memory => Some("--max-memory"),
            Limit::Snapshot => Some("--max-snapshot"),
            Limit::Stack => None,
        }
    }

    /// What to do about a breach, for the error message.
    fn hint(self) -> String {
        match self.flag() {
            Some(flag) => format!(
                " (raise it with {flag}: deploying the same plugin with a new limit applies it \
                 in place, then `hume resume`)"
            ),
            None => " (the stack is fixed: look for unbounded recursion)".into(),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::CallTimeout => "call time limit",
            Limit::Memory => "memory limit",
            Limit::Snapshot => "snapshot size limit",
            Limit::Stack => "stack limit",
        })
    }
}

/// Everything that can go wrong loading or running a plugin.
///
/// After a [`PluginError::Trap`] or a [`PluginError::LimitExceeded`] (other
/// than [`Limit::Snapshot`]) the instance is poisoned: every further call
/// returns [`PluginError::Poisoned`] and the caller must instantiate anew.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The bytes are not a WebAssembly component at all.
    #[error("not a WebAssembly component: {reason}")]
    NotAComponent {
        /// What the bytes are instead, and what to do about it.
        reason: String,
    },
    /// The component does not implement the `hume:projection` world.
    #[error(
        "the component does not implement the world `{expected}`: {detail}; \
         build it against wit/projection.wit (world `projection`)"
    )]
    WrongWorld {
        /// The world the host expects, e.g. `hume:projection/projection@0.1.0`.
        expected: &'static str,
        /// What is missing or mismatched (export names, unresolved imports).
        detail: String,
    },
    /// wasmtime could not compile the component.
    #[error("cannot compile the component: {message}")]
    Compile {
        /// wasmtime's explanation.
        message: String,
    },
    /// The on-disk cache of compiled components failed.
    #[error("compiled-component cache at {path}: {source}")]
    Cache {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {message}")]
    Engine {
        /// wasmtime's explanation.
        message: String,
    },
    /// Creating an instance failed (e.g. its start-up code trapped).
    #[error("cannot instantiate the plugin for projection `{projection}`: {message}")]
    Instantiate {
        /// The projection the instance was for.
        projection: String,
        /// wasmtime's explanation.
        message: String,
    },
    /// The plugin trapped (panic, unreachable, out-of-bounds access...).
    #[error("the plugin trapped in `{call}`: {message}")]
    Trap {
        /// The export being called, e.g. `handle-events`.
        call: &'static str,
        /// The trap and the guest backtrace as wasmtime reports it.
        message: String,
    },
    /// The plugin breached a sandbox limit.
    #[error("the plugin exceeded its {limit} in `{call}`: {detail}{}", limit.hint())]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// The export being called.
        call: &'static str,
        /// The figures: what it tried and what the limit is.
        detail: String,
    },
    /// A previous call trapped or breached a limit; this instance is unusable.
    #[error(
        "the plugin instance is unusable after an earlier failure ({cause}); \
         instantiate the plugin again"
    )]
    Poisoned {
        /// The earlier failure.
        cause: String,
    },
    /// `restore` refused the snapshot bytes.
    #[error("the plugin cannot restore this state: {message}")]
    RestoreRejected {
        /// The plugin's explanation.
        message: String,
    },
    /// `query` refused the request.
    #[error("the plugin rejected the query: {message}")]
    QueryRejected {
        /// The plugin's explanation.
        message: String,
    },
}

impl PluginError {
    /// The limit this error names, if it is a breached limit.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            PluginError::LimitExceeded { limit, .. } => Some(*limit),
            _ => None,
        }
    }
}

/// Why a plugin refused one event of a batch (the WIT `event-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The plugin does not handle this kind of event.
    #[error("unknown event kind")]
    UnknownEvent,
    /// The event is invalid for the current state.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// The outcome of a failed `handle-events` call.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The plugin refused the event at `index`; the events before it are
    /// applied, it and the ones after it are not. The instance stays usable.
    #[error("event #{index} of the batch failed: {error}")]
    Failed {
        /// Zero-based index in the batch.
        index: usize,
        /// Why.
        error: EventError,
    },
    /// The call itself failed (trap, limit); the instance is poisoned and
    /// the state of the batch unknown.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}
