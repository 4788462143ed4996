//! The Rust guest SDK as a component: the wasm build of each example plugin,
//! run in the real plugin runtime, behaves exactly like the same projection
//! run natively through the SDK (same failures at the same index with the
//! same message, byte-identical snapshots), and its glue answers every
//! export of the world (describe, restore, query, on-caught-up).

use hume::log::RecordedEvent;
use hume::plugin::{BatchError, EventError, Instance, Limits, PluginError, Runtime, RuntimeConfig};
use hume_guest::{EventMeta, Failure, Projection};
use serde_json::{json, Value};

fn event(position: u64, kind: &str, data: Value) -> RecordedEvent {
    RecordedEvent {
        position,
        stream: format!("s-{}", position % 3),
        revision: position,
        kind: kind.into(),
        data: data.to_string().into_bytes(),
        metadata: None,
        timestamp: 1_700_000_000_000 + position,
    }
}

async fn instance(path: &str) -> Instance {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let plugin = runtime
        .load(&hume_tests::read_wasm(path))
        .expect("load the plugin");
    let mut instance = plugin
        .instantiate("sdk-test", Limits::default())
        .await
        .expect("instantiate");
    instance.init_state().await.expect("init-state");
    instance
}

/// Per batch: applied, or the index and error of the first failure; then
/// the final snapshot bytes.
type Outcome = (Vec<Result<(), (usize, EventError)>>, Vec<u8>);

/// The native outcome, mapped to the host's error type for comparison.
fn native<P: Projection>(batches: &[Vec<RecordedEvent>]) -> Outcome {
    let mut state = P::init("sdk-test");
    let mut outcomes = Vec::new();
    for batch in batches {
        let result = hume_guest::apply_batch(
            &mut state,
            batch.iter().map(|e| EventMeta {
                position: e.position,
                stream: &e.stream,
                revision: e.revision,
                kind: &e.kind,
                data: &e.data,
                metadata: e.metadata.as_deref().unwrap_or_default(),
                timestamp: e.timestamp,
            }),
        );
        outcomes.push(result.map_err(|Failure { index, error }| {
            let error = match error {
                hume_guest::EventError::UnknownEvent => EventError::UnknownEvent,
                hume_guest::EventError::Rejected(m) => EventError::Rejected(m),
            };
            (index as usize, error)
        }));
    }
    (outcomes, hume_guest::snapshot(&state))
}

async fn wasm(path: &str, batches: &[Vec<RecordedEvent>]) -> Outcome {
    let mut instance = instance(path).await;
    let mut outcomes = Vec::new();
    for batch in batches {
        outcomes.push(match instance.handle_events(batch).await {
            Ok(()) => Ok(()),
            Err(BatchError::Failed { index, error }) => Err((index, error)),
            Err(BatchError::Plugin(err)) => panic!("the plugin failed: {err}"),
        });
    }
    (outcomes, instance.snapshot().await.expect("snapshot"))
}

async fn assert_same<P: Projection>(path: &str, batches: Vec<Vec<RecordedEvent>>) -> Value {
    let (native_outcomes, native_state) = native::<P>(&batches);
    let (wasm_outcomes, wasm_state) = wasm(path, &batches).await;
    assert_eq!(wasm_outcomes, native_outcomes, "batch outcomes differ");
    assert_eq!(
        String::from_utf8_lossy(&wasm_state),
        String::from_utf8_lossy(&native_state),
        "snapshots differ"
    );
    serde_json::from_slice(&wasm_state).unwrap()
}

#[tokio::test]
async fn kv_in_wasm_matches_native() {
    let state = assert_same::<kv::Kv>(
        hume_tests::KV_WASM,
        vec![
            vec![
                event(
                    1,
                    "add",
                    json!({"key": "b", "value": {"z": 1, "a": [true, null, 1.5]}}),
                ),
                event(2, "add", json!({"key": "a", "value": "x"})),
                event(3, "remove", json!({"key": "b"})),
                event(4, "add", json!({"key": "c", "value": 12345678901234i64})),
            ],
            vec![
                event(5, "add", json!({"key": "d", "value": "\u{e9}\"\n"})),
                event(6, "rename", json!({"key": "a"})),
                event(7, "add", json!({"key": "never", "value": 1})),
            ],
        ],
    )
    .await;
    assert_eq!(
        state,
        json!({"a": "x", "c": 12345678901234i64, "d": "\u{e9}\"\n"})
    );
}

#[tokio::test]
async fn bank_in_wasm_matches_native_including_rejections() {
    let opened = |p, a: &str| event(p, "opened", json!({"account": a}));
    let state = assert_same::<bank::Bank>(
        hume_tests::BANK_WASM,
        vec![
            vec![
                opened(1, "42"),
                event(2, "deposited", json!({"account": "42", "amount": 100})),
                event(3, "withdrawn", json!({"account": "42", "amount": 40})),
            ],
            vec![event(4, "deposited", json!({"account": "7", "amount": 1}))],
        ],
    )
    .await;
    assert_eq!(state, json!({"accounts": {"42": 60}}));

    // Each failure kind, one batch each (a failed batch stops the native run too).
    for bad in [
        event(2, "withdrawn", json!({"account": "1", "amount": 5})),
        event(2, "deposited", json!({"account": "1", "amount": "5"})),
        event(2, "deposited", json!({"account": "1", "amount": 0})),
        event(2, "closed", json!({"account": "1"})),
        event(2, "opened", json!({"account": "1"})),
    ] {
        assert_same::<bank::Bank>(hume_tests::BANK_WASM, vec![vec![opened(1, "1"), bad]]).await;
    }
}

#[tokio::test]
async fn counter_in_wasm_matches_native() {
    let events = (1..=50)
        .map(|p| {
            event(
                p,
                ["a", "b", "c d", "\u{e9}"][p as usize % 4],
                json!({"n": p}),
            )
        })
        .collect();
    let state = assert_same::<counter::Counter>(hume_tests::COUNTER_WASM, vec![events]).await;
    assert_eq!(state, json!({"a": 12, "b": 13, "c d": 13, "\u{e9}": 12}));
}

/// A struct state (fields declared out of alphabetical order) with floats:
/// the snapshot, in wasm as natively, has its keys sorted at every depth and
/// the numbers every kit writes; it restores to the same bytes.
#[tokio::test]
async fn cart_struct_state_snapshots_canonically() {
    let raw = |position: u64, kind: &str, data: &str| RecordedEvent {
        data: data.as_bytes().to_vec(),
        ..event(position, kind, Value::Null)
    };
    let batches = vec![
        vec![
            event(
                1,
                "item_added",
                json!({"sku": "pear", "quantity": 2, "price": 1.5}),
            ),
            event(
                2,
                "item_added",
                json!({"sku": "apple", "quantity": 3, "price": 0.1}),
            ),
            // correctly rounded: 12345678901234568, not ...566
            raw(
                3,
                "item_added",
                r#"{"sku": "car", "quantity": 1, "price": 12345678901234567.0}"#,
            ),
            event(4, "item_removed", json!({"sku": "pear"})),
        ],
        vec![
            event(5, "checked_out", json!({})),
            event(6, "item_removed", json!({"sku": "apple"})),
        ],
    ];
    let (native_outcomes, native_state) = native::<cart::Cart>(&batches);
    let (wasm_outcomes, wasm_state) = wasm(hume_tests::CART_WASM, &batches).await;
    assert_eq!(wasm_outcomes, native_outcomes);
    assert!(
        matches!(&wasm_outcomes[1], Err((1, EventError::Rejected(m))) if m.contains("checked out")),
        "{wasm_outcomes:?}"
    );
    let expected = r#"{"checked_out_at":1700000000005,"items":{"apple":{"price":0.1,"quantity":3},"car":{"price":12345678901234568,"quantity":1}},"status":"checked_out","total":12345678901234568}"#;
    assert_eq!(String::from_utf8_lossy(&native_state), expected);
    assert_eq!(String::from_utf8_lossy(&wasm_state), expected);

    let mut restored = instance(hume_tests::CART_WASM).await;
    restored.restore(&wasm_state).await.expect("restore");
    assert_eq!(restored.snapshot().await.unwrap(), wasm_state);
}

#[tokio::test]
async fn describe_reports_crate_name_version_and_variant_kinds() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let bank = runtime
        .load(&hume_tests::read_wasm(hume_tests::BANK_WASM))
        .unwrap();
    assert_eq!(bank.info().name, "bank");
    assert_eq!(bank.info().version, env!("CARGO_PKG_VERSION"));
    assert_eq!(bank.info().kinds, ["opened", "deposited", "withdrawn"]);
    assert_eq!(bank.info().state_encoding, "json");
    let counter = runtime
        .load(&hume_tests::read_wasm(hume_tests::COUNTER_WASM))
        .unwrap();
    assert!(counter.info().kinds.is_empty());
}

#[tokio::test]
async fn snapshot_restores_into_a_new_instance_and_garbage_is_refused() {
    let mut first = instance(hume_tests::BANK_WASM).await;
    first
        .handle_events(&[
            event(1, "opened", json!({"account": "a"})),
            event(2, "deposited", json!({"account": "a", "amount": 9})),
        ])
        .await
        .unwrap();
    let snapshot = first.snapshot().await.unwrap();

    let mut second = instance(hume_tests::BANK_WASM).await;
    second
        .restore(&snapshot)
        .await
        .expect("restore its own snapshot");
    assert_eq!(second.snapshot().await.unwrap(), snapshot);
    second
        .handle_events(&[event(3, "withdrawn", json!({"account": "a", "amount": 4}))])
        .await
        .unwrap();
    assert_eq!(
        second.query(br#"{"account":"a"}"#).await.unwrap(),
        br#"{"balance":5}"#
    );

    let err = second
        .restore(br#"{"accounts": [1, 2]}"#)
        .await
        .unwrap_err();
    match &err {
        PluginError::RestoreRejected { message } => {
            assert!(
                message.contains("not a state of this projection"),
                "{message}"
            )
        }
        other => panic!("expected RestoreRejected, got {other:?}"),
    }
    // A refused restore leaves the state as it was.
    assert_eq!(second.snapshot().await.unwrap(), br#"{"accounts":{"a":5}}"#);
}

#[tokio::test]
async fn query_errors_come_back_as_messages() {
    let mut bank = instance(hume_tests::BANK_WASM).await;
    let err = bank.query(br#"{"account":"nope"}"#).await.unwrap_err();
    assert!(
        matches!(&err, PluginError::QueryRejected { message } if message == "account nope was never opened"),
        "{err:?}"
    );
    let err = bank.query(b"not json").await.unwrap_err();
    assert!(
        matches!(&err, PluginError::QueryRejected { message } if message.starts_with("bad query:")),
        "{err:?}"
    );
    let mut counter = instance(hume_tests::COUNTER_WASM).await;
    let err = counter.query(b"{}").await.unwrap_err();
    assert!(err.to_string().contains("answers no queries"), "{err}");
    counter
        .on_caught_up(0)
        .await
        .expect("on-caught-up is a no-op by default");
}

#[test]
fn hume_binary_is_built_and_runs() {
    let out = std::process::Command::new(hume_tests::hume_bin())
        .arg("--help")
        .output()
        .expect("run hume");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Usage"),
        "{out:?}"
    );
}
