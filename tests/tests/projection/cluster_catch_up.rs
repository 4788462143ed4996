//! `catch_up_after` is the safety net under lost wake-ups in cluster mode.
//!
//! A node learns of appends made through other nodes by polling the log
//! stream's head; here that polling is turned off on the node
//! (`HUME_HEAD_POLL_MS=0`, a test knob), so appends made elsewhere (by
//! another process on the same JetStream, through Hume's library) never
//! wake its projections. A projection with a long `catch_up_after` then
//! stays behind; one with `catch_up_after` = 2 s reaches the head within
//! that (plus slack) by its own poll, which asks JetStream for the head.
//! A consistent read asks JetStream too, so it sees an append at once.

use std::time::{Duration, Instant};

use crate::common::Api;
use hume::log::{EventLog, ExpectedRevision, NewEvent};
use hume_tests::nats::NatsServer;
use hume_tests::server::TestServer;
use hume_tests::KV_WASM;
use serde_json::{json, Value};

const POLL_MS: u64 = 2000;

/// Another writer on the same JetStream: the log as a node opens it.
async fn writer(nats: &NatsServer) -> std::sync::Arc<dyn EventLog> {
    let options = hume::backend::nats::ClusterOptions {
        urls: vec![nats.url().to_string()],
        node_id: "writer".into(),
        connect_timeout: Duration::from_secs(5),
        lease_ttl: Duration::from_secs(6),
    };
    hume::backend::nats::NatsBackend::connect(&options, hume::log::Limits::default())
        .await
        .expect("open the NATS log")
        .stores
        .log
}

async fn add(log: &dyn EventLog, key: &str) -> u64 {
    let data = json!({"key": key, "value": true});
    log.append(
        "kv-1",
        vec![NewEvent::json("add", &data, None)],
        ExpectedRevision::Any,
    )
    .await
    .expect("append")
    .last_position
}

async fn dirty(api: &Api, name: &str) -> Value {
    api.get_ok(&format!("/projections/{name}/state?dirty=true"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_hears_of_no_appends_catches_up_within_catch_up_after() {
    let nats = NatsServer::start();
    let dir = hume_tests::temp_dir();
    let url = nats.url().to_string();
    let data = dir.path().join("b");
    let server = tokio::task::spawn_blocking(move || {
        TestServer::try_start_with_env(
            data,
            &["--cluster", &url, "--node-id", "b"],
            &[("HUME_HEAD_POLL_MS", "0")],
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert!(
        server.stderr().contains("HUME_HEAD_POLL_MS=0"),
        "the node says it follows no head"
    );
    let api = Api::new(&server);
    let log = writer(&nats).await;

    // A projection that polls once an hour: another writer's append never
    // reaches it.
    api.deploy(
        "slow",
        KV_WASM,
        &["kv-*"],
        json!({"catch_up_after_ms": 3_600_000}),
    )
    .await;
    api.wait_status("slow", "running", |s| s["state"] == "running")
        .await;
    add(&*log, "a").await;
    tokio::time::sleep(Duration::from_millis(POLL_MS + 1500)).await;
    assert_eq!(
        dirty(&api, "slow").await,
        json!({}),
        "wake-ups are lost on this node: nothing else moved the projection"
    );

    // One that polls every 2 s: its poll finds the append.
    api.deploy(
        "fast",
        KV_WASM,
        &["kv-*"],
        json!({"catch_up_after_ms": POLL_MS}),
    )
    .await;
    let deployed = Instant::now();
    let mut reached = None;
    while deployed.elapsed() < Duration::from_millis(POLL_MS + 3000) {
        if dirty(&api, "fast").await == json!({"a": true}) {
            reached = Some(deployed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Some(reached) = reached else {
        panic!(
            "fast never saw the append within catch_up_after + 3 s: {}",
            api.status("fast").await
        )
    };
    assert!(
        reached >= Duration::from_millis(POLL_MS / 2),
        "fast caught up after {reached:?}, before its first poll: \
         something else carried the wake-up"
    );
    eprintln!("fast reached the head {reached:?} after its deploy (catch_up_after {POLL_MS} ms)");
    // The head that poll found is the node's: the other projection moves too.
    api.wait_status("slow", "at the head", |s| s["offset"] == 1)
        .await;

    // A consistent read asks JetStream for the head: the append is in it.
    let at = add(&*log, "b").await;
    let state = api.get_ok("/projections/slow/snapshot").await;
    assert_eq!(state["offset"], at, "{state}");
    assert_eq!(state["state"], json!({"a": true, "b": true}));
    drop(server);
}
