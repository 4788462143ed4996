//! The language kits: `hume build` / `hume new` for every language, the C
//! bindings, the example plugins and the cross-language conformance suite
//! (library, `hume replay` and live `hume serve`).

mod build;
mod c_bindings;
mod common;
mod conformance;
mod conformance_live;
mod docs;
mod examples;
mod million;
mod new;
#[path = "../projection/common/mod.rs"]
mod projection_common;
mod rejection;
