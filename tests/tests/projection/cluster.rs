//! Cluster mode (`hume serve --cluster`): everything a node needs lives on
//! NATS JetStream, so a node restarted with an empty data directory comes
//! back with the same deployments, snapshots and log.

use crate::common::Api;
use hume_tests::server::{Backend, TestServer};
use hume_tests::KV_WASM;
use serde_json::{json, Value};

/// Wait until `name` has applied every event up to `head`.
async fn caught_up(api: &Api, name: &str, head: u64) -> Value {
    api.wait_status(name, "caught up", |s| s["scanned"].as_u64() == Some(head))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_survives_a_restart_with_an_empty_data_directory() {
    let dir = hume_tests::temp_dir();
    let data = dir.path().join("data");
    let mut server = TestServer::start_on(Backend::Nats, &data, &[]);
    let api = Api::new(&server);
    api.deploy(
        "kv",
        KV_WASM,
        &["kv-*"],
        json!({"snapshot_every": 2, "snapshot_after_ms": 0}),
    )
    .await;
    api.append("kv-1", &[("add", json!({"key": "a", "value": 1}))])
        .await;
    api.append(
        "kv-2",
        &[
            ("add", json!({"key": "b", "value": [true]})),
            ("add", json!({"key": "c", "value": "x"})),
        ],
    )
    .await;
    api.append("other", &[("add", json!({"key": "z", "value": 0}))])
        .await;
    caught_up(&api, "kv", 4).await;
    let before = api
        // A node snapshots a projection once it holds its lease (taken
        // within a third of the lease TTL of the deploy).
        .wait_status("kv", "a snapshot", |s| {
            s["last_snapshot"]["offset"].as_u64() >= Some(2)
        })
        .await;
    let state = api.state("kv").await;
    assert_eq!(state, json!({"a": 1, "b": [true], "c": "x"}));
    let streams = api.get_ok("/streams").await;

    // Kill -9 and wipe the node's own directory: only JetStream remains.
    server.kill9();
    std::fs::remove_dir_all(&data).unwrap();
    server.restart();
    let api = Api::new(&server);
    assert_eq!(api.get_ok("/health").await["head"], 4);
    assert_eq!(api.get_ok("/streams").await, streams);
    let after = caught_up(&api, "kv", 4).await;
    for field in ["offset", "taken_at"] {
        assert_eq!(
            after["last_snapshot"][field], before["last_snapshot"][field],
            "the snapshot came back from JetStream: {after:#}"
        );
    }
    assert_eq!(api.state("kv").await, state);
    // And it goes on from there.
    let out = api
        .append("kv-1", &[("add", json!({"key": "d", "value": 4}))])
        .await;
    assert_eq!(
        (out["last_position"].as_u64(), out["revision"].as_u64()),
        (Some(5), Some(2))
    );
    caught_up(&api, "kv", 5).await;
    assert_eq!(
        api.state("kv").await,
        json!({"a": 1, "b": [true], "c": "x", "d": 4})
    );
    let page = api.get_ok("/streams/kv-1").await;
    let revisions: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(revisions, vec![1, 2]);
}
