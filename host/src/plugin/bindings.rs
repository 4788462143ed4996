//! The one place that generates Rust bindings for the WIT world
//! `hume:projection/projection` (see `wit/projection.wit`).
//!
//! Exports are async so a plugin call runs on a wasmtime fiber that yields to
//! the executor at every epoch tick; the one import (`host.log`) is a plain
//! synchronous function.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "projection",
    exports: { default: async },
    ownership: Borrowing { duplicate_if_necessary: false },
});
