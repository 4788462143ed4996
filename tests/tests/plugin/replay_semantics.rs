//! The seed's `evolve`/`replay` semantics through real plugins: stale events,
//! strict vs non-strict unknown kinds, rejections, and continuing from a
//! snapshot giving the same state as a full replay.

use hume::log::RecordedEvent;
use hume::plugin::{Limits, Plugin, Runtime, RuntimeConfig};
use hume::projection::{evolve, replay, FoldError, FoldOptions, Folder, Snapshot};
use serde_json::{json, Value};

fn event(position: u64, kind: &str, data: Value) -> RecordedEvent {
    RecordedEvent {
        position,
        stream: "s".into(),
        revision: position,
        kind: kind.into(),
        data: data.to_string().into_bytes(),
        metadata: None,
        timestamp: 1_700_000_000_000 + position,
    }
}

fn load(path: &str) -> Plugin {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    runtime.load(&std::fs::read(path).unwrap()).unwrap()
}

fn state(snapshot: &Snapshot) -> Value {
    serde_json::from_slice(&snapshot.state).unwrap()
}

fn options(strict: bool, batch_size: usize) -> FoldOptions {
    FoldOptions {
        strict,
        batch_size,
        ..FoldOptions::default()
    }
}

fn kv_events() -> Vec<RecordedEvent> {
    (1..=50)
        .map(|p| {
            if p % 7 == 0 {
                event(p, "remove", json!({"key": format!("k{}", p % 5)}))
            } else {
                event(p, "add", json!({"key": format!("k{}", p % 5), "value": p}))
            }
        })
        .collect()
}

#[tokio::test]
async fn evolve_applies_one_event_and_refuses_stale_ones() {
    let kv = load(hume_tests::KV_WASM);
    let opts = FoldOptions::default();
    let first = evolve(
        &kv,
        None,
        &event(1, "add", json!({"key": "a", "value": 1})),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(first.offset, 1);
    assert_eq!(state(&first), json!({"a": 1}));
    let second = evolve(
        &kv,
        Some(&first),
        &event(5, "add", json!({"key": "b", "value": 2})),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(
        (second.offset, state(&second)),
        (5, json!({"a": 1, "b": 2}))
    );

    for stale in [5, 3] {
        let err = evolve(
            &kv,
            Some(&second),
            &event(stale, "add", json!({"key": "c", "value": 3})),
            &opts,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, FoldError::StaleEvent { position, offset: 5 } if position == stale),
            "{err:?}"
        );
        assert!(err.to_string().contains("stale event at position"), "{err}");
    }
}

#[tokio::test]
async fn replay_refuses_out_of_order_events_before_applying_any() {
    let kv = load(hume_tests::KV_WASM);
    let mut folder = Folder::start(&kv, "kv", None, true, Limits::default())
        .await
        .unwrap();
    let batch = [
        event(1, "add", json!({"key": "a", "value": 1})),
        event(3, "add", json!({"key": "b", "value": 2})),
        event(2, "add", json!({"key": "c", "value": 3})),
    ];
    let err = folder.apply(&batch).await.unwrap_err();
    assert!(
        matches!(
            err,
            FoldError::StaleEvent {
                position: 2,
                offset: 3
            }
        ),
        "{err:?}"
    );
    assert_eq!(folder.offset(), 0);
    assert_eq!(
        state(&folder.snapshot().await.unwrap()),
        json!({}),
        "nothing applied"
    );
}

#[tokio::test]
async fn strict_unknown_kind_faults_naming_position_and_kind() {
    let kv = load(hume_tests::KV_WASM);
    let events = vec![
        event(1, "add", json!({"key": "a", "value": 1})),
        event(2, "rename", json!({"from": "a", "to": "b"})),
        event(3, "add", json!({"key": "c", "value": 3})),
    ];
    let err = replay(&kv, None, events, &options(true, 10))
        .await
        .unwrap_err();
    match &err {
        FoldError::Unknown { position: 2, kind } => assert_eq!(kind, "rename"),
        other => panic!("expected Unknown at 2, got {other:?}"),
    }
    assert!(err.to_string().contains("position 2") && err.to_string().contains("`rename`"));
}

#[tokio::test]
async fn non_strict_skips_unknown_kinds_counted() {
    let kv = load(hume_tests::KV_WASM);
    let events = vec![
        event(1, "add", json!({"key": "a", "value": 1})),
        event(2, "rename", json!({"from": "a", "to": "b"})),
        event(3, "add", json!({"key": "c", "value": 3})),
        event(4, "audit", json!({})),
    ];
    let out = replay(&kv, None, events, &options(false, 10))
        .await
        .unwrap();
    assert_eq!(out.snapshot.offset, 4, "skipped events advance the offset");
    assert_eq!((out.applied, out.skipped), (2, 2));
    assert_eq!(state(&out.snapshot), json!({"a": 1, "c": 3}));
}

#[tokio::test]
async fn non_strict_skips_an_unknown_event_reported_by_the_plugin_mid_batch() {
    // With no kinds filter the unknown event reaches the plugin, which answers
    // `unknown-event` at its index; the rest of the batch still applies.
    let kv = load(hume_tests::KV_WASM);
    let instance = kv.instantiate("kv", Limits::default()).await.unwrap();
    let mut instance = instance;
    instance.init_state().await.unwrap();
    let mut folder = Folder::new(instance, 0, false, &[]);
    let batch = [
        event(1, "add", json!({"key": "a", "value": 1})),
        event(2, "rename", json!({})),
        event(3, "add", json!({"key": "b", "value": 2})),
        event(4, "rename", json!({})),
        event(5, "remove", json!({"key": "a"})),
    ];
    let applied = folder.apply(&batch).await.unwrap();
    assert_eq!(
        (applied.applied, applied.skipped, applied.offset),
        (3, 2, 5)
    );
    assert_eq!(state(&folder.snapshot().await.unwrap()), json!({"b": 2}));

    // Strict, the same batch stops at the first unknown, after applying 1.
    let mut instance = kv.instantiate("kv", Limits::default()).await.unwrap();
    instance.init_state().await.unwrap();
    let mut strict = Folder::new(instance, 0, true, &[]);
    let err = strict.apply(&batch).await.unwrap_err();
    assert!(
        matches!(err, FoldError::Unknown { position: 2, .. }),
        "{err:?}"
    );
    assert_eq!(strict.offset(), 1, "offset is the last event applied");
}

#[tokio::test]
async fn rejection_always_faults_naming_position_kind_and_message() {
    let bank = load(hume_tests::BANK_WASM);
    let events = || {
        vec![
            event(1, "opened", json!({"account": "a1"})),
            event(2, "deposited", json!({"account": "a1", "amount": 100})),
            event(3, "withdrawn", json!({"account": "zz", "amount": 5})),
            event(4, "deposited", json!({"account": "a1", "amount": 1})),
        ]
    };
    for strict in [true, false] {
        let err = replay(&bank, None, events(), &options(strict, 10))
            .await
            .unwrap_err();
        match &err {
            FoldError::Rejected {
                position: 3,
                kind,
                message,
            } => {
                assert_eq!(kind, "withdrawn");
                assert!(message.contains("zz"), "names the account: {message}");
            }
            other => panic!("expected a rejection at 3, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn continuing_from_a_snapshot_equals_a_full_replay() {
    let kv = load(hume_tests::KV_WASM);
    let all = kv_events();
    let full = replay(&kv, None, all.clone(), &options(true, 7))
        .await
        .unwrap();

    let half = replay(&kv, None, all[..23].to_vec(), &options(true, 4))
        .await
        .unwrap();
    assert_eq!(half.snapshot.offset, 23);
    let rest = replay(
        &kv,
        Some(&half.snapshot),
        all[23..].to_vec(),
        &options(true, 1000),
    )
    .await
    .unwrap();
    assert_eq!(rest.snapshot, full.snapshot);
    assert_eq!(full.snapshot.offset, 50);

    // One event at a time through evolve gives the same again.
    let mut snap: Option<Snapshot> = None;
    for e in &all {
        snap = Some(
            evolve(&kv, snap.as_ref(), e, &FoldOptions::default())
                .await
                .unwrap(),
        );
    }
    assert_eq!(snap.unwrap(), full.snapshot);

    // Replaying events the snapshot already covers is refused.
    let err = replay(&kv, Some(&half.snapshot), all.clone(), &options(true, 10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FoldError::StaleEvent {
                position: 1,
                offset: 23
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn batch_size_does_not_change_the_result() {
    let counter = load(hume_tests::COUNTER_WASM);
    let events: Vec<_> = (1..=100)
        .map(|p| event(p, ["a", "b", "c"][(p % 3) as usize], json!({})))
        .collect();
    let mut results = Vec::new();
    for batch in [1, 3, 64, 1000] {
        results.push(
            replay(&counter, None, events.clone(), &options(true, batch))
                .await
                .unwrap(),
        );
    }
    for r in &results {
        assert_eq!(r.snapshot, results[0].snapshot);
    }
    assert_eq!(
        state(&results[0].snapshot),
        json!({"a": 33, "b": 34, "c": 33})
    );
}
