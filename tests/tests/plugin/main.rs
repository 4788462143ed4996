//! The plugin runtime: loading and validating components, hostile plugins
//! against the sandbox limits, the Rust SDK in components, `replay`/`evolve`
//! semantics and `hume replay`.

mod hostile;
mod load;
mod maps;
mod replay_cli;
mod replay_semantics;
mod sdk_components;
