//! Component glue (wasm32 only): the wit-bindgen bindings of the
//! `projection` world and a generic implementation of its exports on top of
//! the SDK core. Used by [`export_projection!`](crate::export_projection);
//! not part of the public API.

use std::cell::UnsafeCell;
use std::marker::PhantomData;

use crate::{apply_batch, restore, snapshot, EventError, EventMeta, Level, Projection};

/// wit-bindgen bindings of `wit/projection.wit` (world `projection`).
pub mod bindings {
    wit_bindgen::generate!({
        world: "projection",
        path: "../wit",
        runtime_path: "::hume_guest::__wit_bindgen::rt",
        export_macro_name: "__export_projection_world",
        pub_export_macro: true,
    });
}

use bindings::hume::projection::host;
use bindings::hume::projection::types;

/// The projection's state, in a static of the author's crate. A component
/// instance is single-threaded and exports are not re-entered, so at most one
/// reference to the state is live at a time.
pub struct Slot<P>(UnsafeCell<Option<P>>);

// SAFETY: wasm32 components run one thread; see `Slot`.
unsafe impl<P> Sync for Slot<P> {}

impl<P> Default for Slot<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> Slot<P> {
    /// An empty slot (before `init-state` / `restore`).
    pub const fn new() -> Self {
        Slot(UnsafeCell::new(None))
    }

    #[allow(clippy::mut_from_ref)]
    fn get(&self) -> &mut Option<P> {
        // SAFETY: single-threaded and never re-entered (see `Slot`).
        unsafe { &mut *self.0.get() }
    }
}

/// Implemented by `export_projection!` for the exported type.
///
/// # Safety
/// `slot` must return the same static every time.
pub unsafe trait Hosted: Projection {
    /// `CARGO_PKG_NAME` of the author's crate.
    const CRATE_NAME: &'static str;
    /// `CARGO_PKG_VERSION` of the author's crate.
    const CRATE_VERSION: &'static str;
    /// Where the state lives.
    fn slot() -> &'static Slot<Self>;
}

fn state<P: Hosted>() -> &'static mut P {
    P::slot().get().get_or_insert_with(|| {
        host_log(
            Level::Warn,
            "an export was called before init-state/restore; starting from the initial state",
        );
        P::init("")
    })
}

/// The exports of the `projection` world for the projection `P`.
pub struct Glue<P>(PhantomData<P>);

impl<P: Hosted> bindings::Guest for Glue<P> {
    fn describe() -> types::Info {
        let pick = |own: &str, krate: &str| if own.is_empty() { krate } else { own }.to_owned();
        types::Info {
            name: pick(P::NAME, P::CRATE_NAME),
            version: pick(P::VERSION, P::CRATE_VERSION),
            kinds: P::kinds(),
            state_encoding: "json".to_owned(),
        }
    }

    fn init_state(projection: String) {
        *P::slot().get() = Some(P::init(&projection));
    }

    fn restore(_projection: String, state: Vec<u8>) -> Result<(), String> {
        *P::slot().get() = Some(restore::<P>(&state)?);
        Ok(())
    }

    fn handle_events(events: Vec<types::Event>) -> Result<(), types::Failure> {
        let state = state::<P>();
        apply_batch(
            state,
            events.iter().map(|e| EventMeta {
                position: e.position,
                stream: &e.stream,
                revision: e.revision,
                kind: &e.kind,
                data: &e.data,
                metadata: &e.metadata,
                timestamp: e.timestamp,
            }),
        )
        .map_err(|failure| types::Failure {
            index: failure.index,
            error: match failure.error {
                EventError::UnknownEvent => types::EventError::UnknownEvent,
                EventError::Rejected(message) => types::EventError::Rejected(message),
            },
        })
    }

    fn snapshot() -> Vec<u8> {
        snapshot(state::<P>())
    }

    fn on_caught_up(offset: u64) {
        state::<P>().on_caught_up(offset);
    }

    fn query(request: Vec<u8>) -> Result<Vec<u8>, String> {
        state::<P>().query(&request)
    }
}

/// `host.log` of the world.
pub fn host_log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => host::Level::Trace,
        Level::Debug => host::Level::Debug,
        Level::Info => host::Level::Info,
        Level::Warn => host::Level::Warn,
        Level::Error => host::Level::Error,
    };
    host::log(level, message);
}
