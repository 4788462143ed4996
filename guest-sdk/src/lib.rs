//! Rust SDK for Hume projection plugins.
