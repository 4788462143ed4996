//! Rust SDK for Hume projection plugins.
//!
//! A projection is a type that holds its state, implements [`Projection`]
//! and is exported with [`export_projection!`]:
//!
//! ```
//! use std::collections::BTreeMap;
//! use hume_guest::{EventMeta, Projection, Reject};
//! use serde::{Deserialize, Serialize};
//!
//! /// The state, serialised as JSON for snapshots: `{"<key>": value}`.
//! #[derive(Default, Serialize, Deserialize)]
//! #[serde(transparent)]
//! pub struct Kv(BTreeMap<String, serde_json::Value>);
//!
//! /// The events: the variant name is the event kind, its fields the data.
//! #[derive(Deserialize)]
//! #[serde(rename_all = "snake_case")]
//! pub enum KvEvent {
//!     Add { key: String, value: serde_json::Value },
//!     Remove { key: String },
//! }
//!
//! impl Projection for Kv {
//!     type Event = KvEvent;
//!     fn handle(&mut self, event: KvEvent, _meta: &EventMeta<'_>) -> Result<(), Reject> {
//!         match event {
//!             KvEvent::Add { key, value } => { self.0.insert(key, value); }
//!             KvEvent::Remove { key } => { self.0.remove(&key); }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! hume_guest::export_projection!(Kv);
//!
//! // Native tests, no wasm needed:
//! use hume_guest::testing::{event, Given};
//! use serde_json::json;
//! Kv::given([event("add", json!({"key": "a", "value": 1}))])
//!     .then_state(json!({"a": 1}));
//! Kv::given([event("rename", json!({}))]).then_unknown(0);
//! ```
//!
//! Build the plugin with `cargo build --release --target wasm32-wasip2`
//! (crate type `cdylib`): the output `.wasm` is a component of the world
//! `hume:projection/projection` (see `wit/projection.wit`).
//!
//! How events are decoded: see [`decode`]. A kind the event enum does not
//! know is answered `unknown-event` without touching the state; data that
//! does not fit the variant is `rejected` with serde's message. State is
//! snapshotted as [`canonical`] JSON (keys sorted whatever the type, no
//! whitespace, numbers as ECMAScript writes them), the same bytes every
//! Hume kit writes for the same state, and restored with serde. Prefer
//! `BTreeMap` or [`StateMap`] for maps: their keys come sorted, so the
//! snapshot is written straight through.
//!
//! The SDK logic ([`apply`], [`apply_batch`], [`snapshot`], [`restore`]) is
//! plain Rust, usable and tested natively; only the generated component glue
//! is wasm-specific.

use serde::de::DeserializeOwned;
use serde::Serialize;

pub mod canonical;
pub mod decode;
pub mod testing;

mod batch;
mod log;
mod map;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __glue;

#[cfg(any(
    test,
    all(
        target_arch = "wasm32",
        feature = "small-alloc",
        not(target_feature = "atomics")
    )
))]
mod alloc;

#[cfg(all(
    target_arch = "wasm32",
    feature = "small-alloc",
    not(target_feature = "atomics")
))]
#[global_allocator]
static ALLOCATOR: alloc::SmallAlloc = alloc::SmallAlloc::new();

pub use batch::{apply, apply_batch, restore, snapshot, EventError, EventMeta, Failure};
pub use decode::AnyEvent;
pub use log::{log, Level};
pub use map::{FixedState, StateMap};

// Lets the macro-generated code of the SDK and the author's crate use the
// same paths.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

extern crate self as hume_guest;

/// The README's examples compile.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// A projection: its state (the implementing type) and how each event
/// changes it.
///
/// The state is serialised with serde as [`canonical`] JSON for snapshots
/// (object keys sorted, struct fields included, whatever their declaration
/// order), and must deserialise from what it serialised (checked by the
/// test harness).
pub trait Projection: Serialize + DeserializeOwned + Default + 'static {
    /// The events this projection understands, usually a serde enum whose
    /// variant names are the event kinds (`#[serde(rename_all = ...)]` to
    /// match the kinds' spelling) and whose contents are the event data.
    /// Use [`AnyEvent`] to accept every kind.
    type Event: DeserializeOwned;

    /// Name reported by `describe`; empty means the crate's name.
    const NAME: &'static str = "";
    /// Version reported by `describe`; empty means the crate's version.
    const VERSION: &'static str = "";

    /// Event kinds this projection handles; empty means every kind. By
    /// default the variant names of [`Self::Event`] (empty for [`AnyEvent`]).
    fn kinds() -> Vec<String> {
        decode::kinds_of::<Self::Event>()
    }

    /// The initial state of the projection deployed as `projection`.
    fn init(projection: &str) -> Self {
        let _ = projection;
        Self::default()
    }

    /// Apply one event. Return `Err` *before* changing anything: the host
    /// counts on a rejected event leaving the state untouched.
    fn handle(&mut self, event: Self::Event, meta: &EventMeta<'_>) -> Result<(), Reject>;

    /// The projection has applied every event up to the log's head.
    fn on_caught_up(&mut self, offset: u64) {
        let _ = offset;
    }

    /// Answer a read-side question (JSON by convention); see [`query_json`]
    /// for a typed helper. By default no query is understood.
    fn query(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        let _ = request;
        Err("this projection answers no queries".to_owned())
    }
}

/// Why a projection refused an event; the message is shown to the operator,
/// so say what is wrong with which entity (e.g. "account 42 was never opened").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject(pub String);

impl Reject {
    /// A rejection with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Reject(message.into())
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reject {}

impl From<String> for Reject {
    fn from(message: String) -> Self {
        Reject(message)
    }
}

impl From<&str> for Reject {
    fn from(message: &str) -> Self {
        Reject(message.to_owned())
    }
}

/// Return early from [`Projection::handle`] with a [`Reject`] whose message
/// is formatted like `format!`: `reject!("account {id} was never opened")`.
#[macro_export]
macro_rules! reject {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Reject(::std::format!($($arg)*)))
    };
}

/// Typed JSON query helper for [`Projection::query`]: parses the request as
/// `Q`, calls `answer`, serialises its result as [`canonical`] JSON.
pub fn query_json<Q: DeserializeOwned, A: Serialize>(
    request: &[u8],
    answer: impl FnOnce(Q) -> Result<A, String>,
) -> Result<Vec<u8>, String> {
    let q: Q = serde_json::from_slice(request).map_err(|e| format!("bad query: {e}"))?;
    let a = answer(q)?;
    canonical::to_vec(&a).map_err(|e| format!("cannot serialise the answer: {e}"))
}

/// Export `$ty` (a [`Projection`]) as the component's `projection` world.
/// Call it once, at the root of a `cdylib` crate. On native targets it only
/// checks that the type implements [`Projection`], so the same crate builds
/// as an `rlib` for native tests and benchmarks.
#[macro_export]
macro_rules! export_projection {
    ($ty:ty) => {
        const _: fn() = || {
            fn assert_projection<P: $crate::Projection>() {}
            assert_projection::<$ty>();
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            static HUME_STATE: $crate::__glue::Slot<$ty> = $crate::__glue::Slot::new();

            unsafe impl $crate::__glue::Hosted for $ty {
                const CRATE_NAME: &'static str = ::core::env!("CARGO_PKG_NAME");
                const CRATE_VERSION: &'static str = ::core::env!("CARGO_PKG_VERSION");
                fn slot() -> &'static $crate::__glue::Slot<Self> {
                    &HUME_STATE
                }
            }

            type HumeGlue = $crate::__glue::Glue<$ty>;
            $crate::__glue::bindings::__export_projection_world!(HumeGlue with_types_in $crate::__glue::bindings);
        };
    };
}
