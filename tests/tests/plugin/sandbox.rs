//! What a plugin cannot reach: the `sandbox-probe` fixture tries, through
//! Rust's standard library, to open and create files, list directories,
//! read the environment and arguments, open TCP and UDP sockets and resolve
//! a name; each attempt must be denied. Clocks and randomness exist but are
//! deterministic: two fresh instances fed the same events read the same
//! values.

use hume::log::RecordedEvent;
use hume::plugin::{Limits, Plugin, Runtime, RuntimeConfig};
use serde_json::Value;

fn probe_plugin() -> Plugin {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    runtime
        .load(&hume_tests::read_wasm(hume_tests::SANDBOX_PROBE_WASM))
        .expect("the probe loads")
}

fn event(position: u64, kind: &str) -> RecordedEvent {
    RecordedEvent {
        position,
        stream: "s".into(),
        revision: position,
        kind: kind.into(),
        data: b"{}".to_vec(),
        metadata: None,
        timestamp: 0,
    }
}

/// A fresh instance fed `kinds` in one batch each; its state.
async fn run(plugin: &Plugin, kinds: &[&str]) -> Value {
    let mut instance = plugin
        .instantiate("probe", Limits::default())
        .await
        .expect("instantiate");
    instance.init_state().await.expect("init-state");
    for (i, kind) in kinds.iter().enumerate() {
        instance
            .handle_events(&[event(i as u64 + 1, kind)])
            .await
            .unwrap_or_else(|e| panic!("`{kind}` failed: {e}"));
    }
    serde_json::from_slice(&instance.snapshot().await.expect("snapshot")).expect("JSON state")
}

#[tokio::test]
async fn files_directories_environment_sockets_and_names_are_denied() {
    // This process has PATH, HOME...: the probe must see none of them.
    assert!(std::env::var_os("PATH").is_some());
    let state = run(&probe_plugin(), &["probe"]).await;
    let outcomes = state["outcomes"].as_object().expect("outcomes");
    let attempts = [
        "open-file",
        "create-file",
        "list-root",
        "list-cwd",
        "env-vars",
        "env-var",
        "args",
        "tcp-connect",
        "tcp-listen",
        "udp-bind",
        "resolve",
    ];
    assert_eq!(outcomes.len(), attempts.len(), "{outcomes:#?}");
    for attempt in attempts {
        let outcome = outcomes[attempt].as_str().expect("text");
        assert!(
            outcome.starts_with("denied: "),
            "`{attempt}` must be denied, the probe says: {outcome}"
        );
    }
    eprintln!("{outcomes:#?}");
}

#[tokio::test]
async fn clocks_and_randomness_are_the_same_in_every_run() {
    let plugin = probe_plugin();
    let kinds = ["clock", "clock", "clock"];
    let first = run(&plugin, &kinds).await;
    let second = run(&plugin, &kinds).await;
    assert_eq!(
        first, second,
        "two runs read different clocks or randomness"
    );

    // They are readings, not constants: time moves, random numbers differ.
    let readings = first["readings"].as_array().expect("readings");
    assert_eq!(readings.len(), 3);
    let wall: Vec<u64> = readings
        .iter()
        .map(|r| r["wall_ns"].as_u64().unwrap())
        .collect();
    assert!(wall.windows(2).all(|w| w[0] < w[1]), "{wall:?}");
    assert!(
        wall[2] < 1_000_000_000,
        "the wall clock starts at the epoch, not the host's time: {wall:?}"
    );
    let random = &readings[0]["random"];
    assert_ne!(random[0], random[1], "{readings:?}");
    assert_ne!(readings[0]["random"], readings[1]["random"], "{readings:?}");
}
