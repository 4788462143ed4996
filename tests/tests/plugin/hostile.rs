//! Hostile plugins against the sandbox: every breach is a pair, the limit
//! obeyed (works) and violated (the exact named error), and a healthy plugin
//! runs correctly in the same process afterwards.

use std::time::{Duration, Instant};

use hume::log::RecordedEvent;
use hume::plugin::{BatchError, Limit, Limits, Plugin, PluginError, Runtime, RuntimeConfig};
use hume::projection::{replay, FoldOptions};
use serde_json::{json, Value};

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

fn load(runtime: &Runtime, path: &str) -> Plugin {
    let wasm = std::fs::read(path).expect("fixture built by tests/build.rs");
    runtime.load(&wasm).expect("fixture loads")
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime")
}

/// The healthy `kv` plugin still works: the process is not damaged.
async fn kv_still_works(runtime: &Runtime) {
    let kv = load(runtime, hume_tests::KV_WASM);
    let events = vec![
        event(1, "add", json!({"key": "a", "value": 1})),
        event(2, "add", json!({"key": "b", "value": 2})),
        event(3, "remove", json!({"key": "a"})),
    ];
    let out = replay(&kv, None, events, &FoldOptions::default())
        .await
        .expect("kv replays");
    assert_eq!(out.snapshot.offset, 3);
    let state: Value = serde_json::from_slice(&out.snapshot.state).unwrap();
    assert_eq!(state, json!({"b": 2}));
}

/// Apply one event of `kind` on a fresh hostile instance under `limits`.
async fn hostile_call(runtime: &Runtime, kind: &str, limits: Limits) -> Result<(), BatchError> {
    let plugin = load(runtime, hume_tests::HOSTILE_WASM);
    let mut instance = plugin
        .instantiate("hostile", limits)
        .await
        .expect("instantiate");
    instance.init_state().await.expect("init");
    instance.handle_events(&[event(1, kind, json!({}))]).await
}

fn plugin_error(result: Result<(), BatchError>) -> PluginError {
    match result {
        Err(BatchError::Plugin(e)) => e,
        other => panic!("expected a plugin failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn infinite_loop_hits_the_call_timeout() {
    let runtime = runtime();
    let limits = Limits {
        call_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    // Obeyed: an ordinary event under the same limit.
    hostile_call(&runtime, "ordinary", limits)
        .await
        .expect("ordinary event");

    // Violated: the loop is stopped at the limit, with the limit named.
    let started = Instant::now();
    let err = plugin_error(hostile_call(&runtime, "loop", limits).await);
    let elapsed = started.elapsed();
    assert_eq!(err.limit(), Some(Limit::CallTimeout), "{err}");
    assert!(
        matches!(
            err,
            PluginError::LimitExceeded {
                call: "handle-events",
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("call time limit") && text.contains("300 ms"),
        "{text}"
    );
    assert!(
        elapsed >= Duration::from_millis(300),
        "stopped too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "not stopped in time: {elapsed:?}"
    );

    kv_still_works(&runtime).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_stuck_plugin_does_not_block_the_executor() {
    // One executor thread: the looping call must yield so that another
    // projection makes progress while it spins. Both plugins are compiled
    // before the race so only the calls themselves compete.
    let runtime = runtime();
    let hostile = load(&runtime, hume_tests::HOSTILE_WASM);
    let kv = load(&runtime, hume_tests::KV_WASM);
    let limits = Limits {
        call_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let mut stuck = hostile.instantiate("stuck", limits).await.unwrap();
    stuck.init_state().await.unwrap();
    let looping =
        tokio::spawn(async move { stuck.handle_events(&[event(1, "loop", json!({}))]).await });
    tokio::task::yield_now().await;

    let events = vec![event(1, "add", json!({"key": "a", "value": 1}))];
    let out = replay(&kv, None, events, &FoldOptions::default())
        .await
        .expect("kv replays");
    assert_eq!(out.snapshot.offset, 1);
    assert!(!looping.is_finished(), "the loop should still be running");
    let err = plugin_error(looping.await.unwrap());
    assert_eq!(err.limit(), Some(Limit::CallTimeout), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_bomb_hits_the_memory_limit() {
    let runtime = runtime();
    let limits = Limits {
        max_memory_bytes: 32 << 20,
        ..Limits::default()
    };
    hostile_call(&runtime, "ordinary", limits)
        .await
        .expect("ordinary event");

    let err = plugin_error(hostile_call(&runtime, "alloc", limits).await);
    assert_eq!(err.limit(), Some(Limit::Memory), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("memory limit") && text.contains(&(32u64 << 20).to_string()),
        "{text}"
    );

    kv_still_works(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unbounded_recursion_is_a_named_stack_overflow() {
    let runtime = runtime();
    hostile_call(&runtime, "ordinary", Limits::default())
        .await
        .expect("ordinary event");

    let err = plugin_error(hostile_call(&runtime, "recurse", Limits::default()).await);
    assert_eq!(err.limit(), Some(Limit::Stack), "{err:?}");
    assert!(err.to_string().contains("stack overflow"), "{err}");

    kv_still_works(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn panic_is_a_trap_and_poisons_the_instance() {
    let runtime = runtime();
    let plugin = load(&runtime, hume_tests::HOSTILE_WASM);
    let mut instance = plugin
        .instantiate("hostile", Limits::default())
        .await
        .unwrap();
    instance.init_state().await.unwrap();
    instance
        .handle_events(&[event(1, "ordinary", json!({}))])
        .await
        .expect("ordinary");

    let err = plugin_error(
        instance
            .handle_events(&[event(2, "panic", json!({}))])
            .await,
    );
    assert!(
        matches!(
            err,
            PluginError::Trap {
                call: "handle-events",
                ..
            }
        ),
        "{err:?}"
    );
    // The trap says what happened and quotes the guest's panic message.
    let text = err.to_string();
    assert!(text.contains("wasm trap"), "{text}");
    assert!(text.contains("hostile plugin panics on purpose"), "{text}");
    assert!(instance.is_poisoned());
    let again = instance.snapshot().await.unwrap_err();
    assert!(matches!(again, PluginError::Poisoned { .. }), "{again:?}");
    assert!(
        again.to_string().contains("instantiate the plugin again"),
        "{again}"
    );

    // A fresh instance of the same plugin is fine.
    let mut fresh = plugin
        .instantiate("hostile", Limits::default())
        .await
        .unwrap();
    fresh.init_state().await.unwrap();
    fresh
        .handle_events(&[event(1, "x", json!({}))])
        .await
        .unwrap();
    let state: Value = serde_json::from_slice(&fresh.snapshot().await.unwrap()).unwrap();
    assert_eq!(state, json!({"x": 1}));

    kv_still_works(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn big_snapshot_hits_the_snapshot_limit() {
    let runtime = runtime();
    let plugin = load(&runtime, hume_tests::HOSTILE_WASM);

    // Obeyed: with a larger snapshot limit the same state is returned.
    let roomy = Limits {
        max_snapshot_bytes: 64 << 20,
        max_memory_bytes: 256 << 20,
        ..Limits::default()
    };
    let mut instance = plugin.instantiate("hostile", roomy).await.unwrap();
    instance.init_state().await.unwrap();
    instance
        .handle_events(&[event(1, "big-snapshot", json!({}))])
        .await
        .unwrap();
    let state = instance.snapshot().await.expect("under the limit");
    assert!(state.len() > 16 << 20);

    // Violated: the default 16 MiB snapshot limit, named with the figures
    // (memory raised so serialising the padding does not hit that first).
    let tight = Limits {
        max_memory_bytes: 256 << 20,
        ..Limits::default()
    };
    let mut instance = plugin.instantiate("hostile", tight).await.unwrap();
    instance.init_state().await.unwrap();
    instance
        .handle_events(&[event(1, "big-snapshot", json!({}))])
        .await
        .unwrap();
    let err = instance.snapshot().await.unwrap_err();
    assert_eq!(err.limit(), Some(Limit::Snapshot), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("snapshot size limit") && text.contains(&(16u64 << 20).to_string()),
        "{text}"
    );

    kv_still_works(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rejection_leaves_the_instance_usable() {
    let runtime = runtime();
    let plugin = load(&runtime, hume_tests::HOSTILE_WASM);
    let mut instance = plugin
        .instantiate("hostile", Limits::default())
        .await
        .unwrap();
    instance.init_state().await.unwrap();
    let batch = [
        event(1, "a", json!({})),
        event(2, "reject", json!({})),
        event(3, "a", json!({})),
    ];
    match instance.handle_events(&batch).await {
        Err(BatchError::Failed { index: 1, error }) => {
            assert_eq!(error.to_string(), "rejected: rejected on purpose")
        }
        other => panic!("expected a rejection at index 1, got {other:?}"),
    }
    // The event before the failure is applied, the ones after are not.
    let state: Value = serde_json::from_slice(&instance.snapshot().await.unwrap()).unwrap();
    assert_eq!(state, json!({"a": 1}));
    assert!(!instance.is_poisoned());
}
