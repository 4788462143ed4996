//! Snapshots and reads against a real `hume serve`: cadence by count
//! (`snapshot_every`) and by time (`snapshot_after`), the final snapshot of
//! a clean shutdown, the memory store, consistent vs dirty reads, stop/start.

use crate::common::{cli_err, cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::{COUNTER_WASM, KV_WASM};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_every_10_persists_every_10_events() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy(
        "c",
        COUNTER_WASM,
        &["s"],
        json!({"snapshot_every": 10, "snapshot_after_ms": 0}),
    )
    .await;
    let mut seen = Vec::new();
    for n in 1..=45u64 {
        api.append("s", &[("tick", json!({}))]).await;
        assert_eq!(api.state("c").await, json!({"tick": n}));
        let s = api.status("c").await;
        let snap = s["last_snapshot"]["offset"].as_u64();
        assert_eq!(
            snap,
            (n >= 10).then_some(n / 10 * 10),
            "after {n} events: {s}"
        );
        if let Some(o) = snap {
            if seen.last() != Some(&o) {
                seen.push(o);
            }
        }
    }
    assert_eq!(seen, vec![10, 20, 30, 40]);

    // A batch of 25 at once still snapshots at each multiple of 10 (the
    // actor bounds its batches by what is left before the next snapshot).
    let events: Vec<(&str, Value)> = (0..25).map(|_| ("tick", json!({}))).collect();
    api.append("s", &events).await;
    assert_eq!(api.state("c").await, json!({"tick": 70}));
    assert_eq!(api.status("c").await["last_snapshot"]["offset"], 70);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_after_200ms_follows_a_change() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy(
        "kv",
        KV_WASM,
        &["kv"],
        json!({"snapshot_every": 0, "snapshot_after_ms": 200}),
    )
    .await;
    for i in 1..=3u64 {
        let out = api
            .append(
                "kv",
                &[("add", json!({"key": format!("k{i}"), "value": i}))],
            )
            .await;
        let position = out["last_position"].as_u64().unwrap();
        let s = api
            .wait_status("kv", "a snapshot of the change", |s| {
                s["last_snapshot"]["offset"].as_u64() == Some(position)
            })
            .await;
        // Read the event's append time back from the log.
        let read = api
            .get_ok(&format!("/all?from_position={position}&limit=1"))
            .await;
        let appended = read["events"][0]["timestamp"].as_u64().unwrap();
        let taken = s["last_snapshot"]["taken_at"].as_u64().unwrap();
        let delay = taken.saturating_sub(appended);
        assert!(
            (190..2000).contains(&delay),
            "snapshot {delay} ms after the change (about 200 expected)"
        );
    }
    // Without changes, no further snapshot: the same one stays, well past
    // the 200 ms in which a new one would have been taken.
    let before = api.status("kv").await["last_snapshot"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let again = api.status("kv").await["last_snapshot"].clone();
    assert_eq!(before["taken_at"], again["taken_at"], "{before} vs {again}");
    // A change after that quiet time is snapshotted again (so the check
    // above would have seen a new one had it been taken).
    api.append("kv", &[("add", json!({"key": "k4", "value": 4}))])
        .await;
    let s = api
        .wait_status("kv", "a snapshot of the new change", |s| {
            s["last_snapshot"]["offset"] == 4
        })
        .await;
    assert_ne!(s["last_snapshot"]["taken_at"], before["taken_at"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_leaves_a_snapshot_at_the_head_and_memory_store_rebuilds() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    let lazy = json!({"snapshot_every": 0, "snapshot_after_ms": 0});
    api.deploy("durable", COUNTER_WASM, &["*"], lazy.clone())
        .await;
    let mut mem = lazy.clone();
    mem["snapshot_store"] = json!("memory");
    api.deploy("mem", COUNTER_WASM, &["*"], mem).await;
    for i in 0..37 {
        api.append(&format!("s-{}", i % 3), &[("tick", json!({}))])
            .await;
    }
    assert_eq!(api.state("durable").await, json!({"tick": 37}));
    assert_eq!(api.state("mem").await, json!({"tick": 37}));
    assert!(api.status("durable").await["last_snapshot"].is_null());

    let status = server.stop().expect("server was running");
    assert!(status.success(), "clean exit: {status:?}");
    assert!(server.stderr().contains("final snapshots persisted"));
    server.restart();
    let api = Api::new(&server);
    let s = api
        .wait_status("durable", "started", |s| s["state"] != "starting")
        .await;
    assert_eq!(
        s["last_snapshot"]["offset"], 37,
        "final snapshot at the head: {s}"
    );
    assert_eq!(s["offset"], 37);
    assert_eq!(s["applied"], 0, "nothing re-applied after a clean shutdown");
    // The memory store lost its snapshot: rebuilt from 0, same state.
    assert_eq!(api.state("mem").await, json!({"tick": 37}));
    let m = api.status("mem").await;
    assert_eq!(m["applied"], 37, "rebuilt: {m}");
    assert_eq!(api.state("durable").await, json!({"tick": 37}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_reads_include_every_acknowledged_append_and_dirty_reads_never_wait() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy("kv", KV_WASM, &["kv-*"], json!({})).await;
    for i in 0..100u64 {
        let key = format!("k{i}");
        api.append(
            &format!("kv-{}", i % 7),
            &[("add", json!({"key": key, "value": i}))],
        )
        .await;
        // Also an event the projection does not follow, after it.
        api.append("elsewhere", &[("add", json!({"key": "x", "value": 0}))])
            .await;
        let state = api.state("kv").await;
        assert_eq!(
            state[&key], i,
            "the read includes the append just acknowledged"
        );
        let snap = api.snapshot("kv").await;
        assert_eq!(snap["offset"], 2 * i + 1);
    }

    // A stopped projection: dirty reads answer at once with what it has;
    // consistent reads say why they cannot.
    cli_ok(&server, &["stop", "kv"]);
    api.append("kv-1", &[("add", json!({"key": "late", "value": 1}))])
        .await;
    let err = cli_err(&server, &["state", "kv", "--dirty", "--pointer", "/late"]);
    assert!(
        err.contains("nothing at JSON pointer `/late`"),
        "not applied while stopped: {err}"
    );
    let dirty = api.get_ok("/projections/kv/state?dirty=true").await;
    assert!(dirty.get("late").is_none());
    assert_eq!(dirty["k99"], 99);
    let err = cli_err(&server, &["state", "kv"]);
    assert!(
        err.contains("is stopped") && err.contains("hume start kv"),
        "{err}"
    );
    assert_eq!(api.status("kv").await["state"], "stopped");
    let mut server = server;
    server.stop();
    server.restart();
    let api = Api::new(&server);
    // Right after a restart a projection is `starting` until its record
    // and snapshot are loaded; what it settles in is what counts.
    let settled = api
        .wait_status("kv", "loaded after the restart", |s| {
            s["state"] != "starting"
        })
        .await;
    assert_eq!(settled["state"], "stopped", "stays stopped across restarts");
    cli_ok(&server, &["start", "kv"]);
    assert_eq!(api.state("kv").await["late"], 1);

    // A consistent read that cannot catch up in time: a clear timeout. The
    // hostile plugin spins for its whole 3 s call limit on `loop`, so a
    // read asking for the event after it cannot be answered within 300 ms.
    api.deploy(
        "slow",
        hume_tests::HOSTILE_WASM,
        &["h"],
        json!({"call_timeout_ms": 3000}),
    )
    .await;
    api.append("h", &[("loop", json!({}))]).await;
    api.append("h", &[("tick", json!({}))]).await;
    let (code, body) = api.get("/projections/slow/state?timeout_ms=300").await;
    assert_eq!(code, 504, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("--timeout"),
        "{body}"
    );
}
