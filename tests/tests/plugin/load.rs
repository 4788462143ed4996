//! Loading plugins: what is not a Hume plugin is refused with an error that
//! says what it is; a plugin is compiled once and cached (memory and disk);
//! the instance is sandboxed and answers every export of the world.

use hume::log::RecordedEvent;
use hume::plugin::{Limits, PluginError, Runtime, RuntimeConfig, WORLD_VERSION};
use serde_json::{json, Value};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime")
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).expect("fixture built by tests/build.rs")
}

fn event(position: u64, kind: &str, data: Value) -> RecordedEvent {
    RecordedEvent {
        position,
        stream: "s".into(),
        revision: position,
        kind: kind.into(),
        data: data.to_string().into_bytes(),
        metadata: None,
        timestamp: 0,
    }
}

#[test]
fn random_bytes_are_not_a_webassembly_binary() {
    let err = runtime().load(b"this is not wasm at all").unwrap_err();
    assert!(matches!(err, PluginError::NotAComponent { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not a WebAssembly binary"),
        "{err}"
    );
}

#[test]
fn empty_file_is_not_a_webassembly_binary() {
    let err = runtime().load(b"").unwrap_err();
    assert!(
        err.to_string().contains("not a WebAssembly binary"),
        "{err}"
    );
}

#[test]
fn core_module_is_named_and_the_fix_given() {
    // The smallest valid core module: magic + version 1.
    let err = runtime().load(b"\0asm\x01\0\0\0").unwrap_err();
    assert!(matches!(err, PluginError::NotAComponent { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("is a core wasm module, not a component"),
        "{text}"
    );
    assert!(
        text.contains("wasm32-wasip2") && text.contains("wasm-tools component new"),
        "{text}"
    );
}

#[test]
fn truncated_component_is_a_compile_error() {
    let mut wasm = read(hume_tests::KV_WASM);
    wasm.truncate(wasm.len() / 2);
    let err = runtime().load(&wasm).unwrap_err();
    assert!(matches!(err, PluginError::Compile { .. }), "{err:?}");
}

#[test]
fn component_of_another_world_is_a_wrong_world() {
    let err = runtime()
        .load(&read(hume_tests::WRONG_WORLD_WASM))
        .unwrap_err();
    match &err {
        PluginError::WrongWorld { expected, detail } => {
            assert_eq!(*expected, "hume:projection/projection@0.1.0");
            assert!(
                detail.contains("missing exports") && detail.contains("`handle-events`"),
                "{detail}"
            );
            assert!(
                detail.contains("hello"),
                "names what it exports instead: {detail}"
            );
        }
        other => panic!("expected WrongWorld, got {other:?}"),
    }
}

#[test]
fn describe_reports_the_plugin() {
    let runtime = runtime();
    let wasm = read(hume_tests::KV_WASM);
    let plugin = runtime.load(&wasm).unwrap();
    assert_eq!(plugin.info().name, "kv");
    assert_eq!(
        plugin.info().kinds,
        vec!["add".to_string(), "remove".to_string()]
    );
    assert_eq!(plugin.info().state_encoding, "json");
    assert_eq!(plugin.world_version(), WORLD_VERSION);
    assert_eq!(plugin.hash().len(), 64);
    // The same bytes are loaded once: same plugin, same hash.
    let again = runtime.load(&wasm).unwrap();
    assert_eq!(again.hash(), plugin.hash());

    let counter = runtime.load(&read(hume_tests::COUNTER_WASM)).unwrap();
    assert!(
        counter.info().kinds.is_empty(),
        "counter handles every kind"
    );
    assert_ne!(counter.hash(), plugin.hash());
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let wasm = read(hume_tests::KV_WASM);
    let first = Runtime::new(config.clone()).unwrap().load(&wasm).unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with(first.hash()) && files[0].ends_with(".cwasm"),
        "{files:?}"
    );

    // A new runtime (a restart) loads the compiled form and it runs.
    let second = Runtime::new(config).unwrap().load(&wasm).unwrap();
    let mut instance = second.instantiate("kv", Limits::default()).await.unwrap();
    instance.init_state().await.unwrap();
    instance
        .handle_events(&[event(1, "add", json!({"key": "k", "value": [1, 2]}))])
        .await
        .unwrap();
    let state: Value = serde_json::from_slice(&instance.snapshot().await.unwrap()).unwrap();
    assert_eq!(state, json!({"k": [1, 2]}));

    // A corrupt cache file is ignored (recompiled), not trusted.
    let path = dir.path().join(&files[0]);
    std::fs::write(&path, b"garbage").unwrap();
    let third = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap()
    .load(&wasm)
    .unwrap();
    assert_eq!(third.info().name, "kv");
}

#[tokio::test]
async fn every_export_of_the_world_answers() {
    let runtime = runtime();
    let plugin = runtime.load(&read(hume_tests::KV_WASM)).unwrap();
    let mut instance = plugin.instantiate("kv", Limits::default()).await.unwrap();
    instance.init_state().await.unwrap();
    instance
        .handle_events(&[event(1, "add", json!({"key": "a", "value": 1}))])
        .await
        .unwrap();
    instance.on_caught_up(1).await.unwrap();
    let answer = instance.query(br#"{"key": "a"}"#).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&answer).unwrap(),
        json!({"value": 1})
    );
    let refused = instance.query(b"nonsense").await.unwrap_err();
    assert!(
        matches!(refused, PluginError::QueryRejected { .. }),
        "{refused:?}"
    );
    assert!(!instance.is_poisoned(), "a refused query does not poison");

    // restore: a snapshot moves to another instance; garbage is refused.
    let snapshot = instance.snapshot().await.unwrap();
    let mut other = plugin
        .instantiate("kv-copy", Limits::default())
        .await
        .unwrap();
    other.restore(&snapshot).await.unwrap();
    assert_eq!(other.snapshot().await.unwrap(), snapshot);
    let mut bad = plugin
        .instantiate("kv-bad", Limits::default())
        .await
        .unwrap();
    let err = bad.restore(b"[1, 2").await.unwrap_err();
    assert!(
        matches!(err, PluginError::RestoreRejected { .. }),
        "{err:?}"
    );
}
