//! The plugin runtime: loading and validating components, hostile plugins
//! against the sandbox limits, what the sandbox denies (`sandbox`), memory
//! and tables under one limit (`growth`), the Rust SDK in components, `replay`/`evolve`
//! semantics and `hume replay`.

mod growth;
mod hostile;
mod load;
mod maps;
mod replay_cli;
mod replay_semantics;
mod sandbox;
mod sdk_components;
