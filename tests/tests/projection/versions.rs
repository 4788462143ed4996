//! New versions of a deployed projection (blue/green) and telemetry, against
//! a real `hume serve`.

use crate::common::{cli_ok, variant, Api};
use hume_tests::server::TestServer;
use hume_tests::{COUNTER_WASM, HOSTILE_WASM, KV_WASM};
use serde_json::{json, Value};

/// A different plugin under an existing name is built from 0 beside the
/// running one, then takes over; the old one served reads meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_is_built_beside_the_old_one_and_swapped_in() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy("p", KV_WASM, &["s-*"], json!({})).await;
    for i in 0..50 {
        api.append(
            &format!("s-{}", i % 3),
            &[("add", json!({"key": format!("k{i}"), "value": i}))],
        )
        .await;
    }
    let old_hash = api.status("p").await["plugin_hash"].clone();

    let out = cli_ok(&server, &["deploy", "p", COUNTER_WASM, "--stream", "s-*"]);
    assert!(out.contains("building counter"), "{out}");
    let s = api
        .wait_status("p", "swapped to counter", |s| s["plugin_name"] == "counter")
        .await;
    assert_ne!(s["plugin_hash"], old_hash);
    assert!(s["pending"].is_null(), "{s}");
    assert_eq!(api.state("p").await, json!({"add": 50}));

    // The swap is durable.
    server.stop();
    server.restart();
    let api = Api::new(&server);
    assert_eq!(api.state("p").await, json!({"add": 50}));
    assert_eq!(api.status("p").await["plugin_name"], "counter");
}

/// `--keep-state`: the new version starts from the old one's snapshot
/// instead of rebuilding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_state_seeds_the_new_version_with_the_old_snapshot() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy("kv", KV_WASM, &["kv"], json!({})).await;
    let events: Vec<(&str, Value)> = (0..40)
        .map(|i| ("add", json!({"key": format!("k{}", i % 10), "value": i})))
        .collect();
    api.append("kv", &events).await;
    // No snapshot yet (every 100 events by default): deploy takes one.
    let before = api.snapshot("kv").await;
    assert!(api.status("kv").await["last_snapshot"].is_null());

    let v2 = dir.path().join("kv-v2.wasm");
    std::fs::write(&v2, variant(&hume_tests::read_wasm(KV_WASM), "v2")).unwrap();
    // Read the running hash before deploying: a small log is caught up (and
    // swapped) before the deploy call returns.
    let old_hash = api.status("kv").await["plugin_hash"].clone();
    let out = cli_ok(
        &server,
        &[
            "deploy",
            "kv",
            v2.to_str().unwrap(),
            "--stream",
            "kv",
            "--keep-state",
        ],
    );
    assert!(out.contains("building"), "{out}");
    let s = api
        .wait_status("kv", "swapped", |s| s["plugin_hash"] != old_hash)
        .await;
    assert_eq!(
        s["applied"], 0,
        "started from the old snapshot, nothing re-applied: {s}"
    );
    assert_eq!(api.snapshot("kv").await, before);
    api.append("kv", &[("add", json!({"key": "new", "value": 1}))])
        .await;
    assert_eq!(api.state("kv").await["new"], 1);

    // Deploying the running hash again is refused; a third version without
    // --keep-state rebuilds from 0.
    let (code, body) = api
        .deploy_raw(
            "kv",
            &variant(&hume_tests::read_wasm(KV_WASM), "v2"),
            &["kv"],
            json!({}),
            false,
        )
        .await;
    assert_eq!(code, 409, "{body}");
    let v2_hash = api.status("kv").await["plugin_hash"].clone();
    let (code, body) = api
        .deploy_raw(
            "kv",
            &variant(&hume_tests::read_wasm(KV_WASM), "v3"),
            &["kv"],
            json!({}),
            false,
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let s = api
        .wait_status("kv", "swapped to v3", |s| s["plugin_hash"] != v2_hash)
        .await;
    assert_eq!(s["applied"], 41, "rebuilt from 0: {s}");
    assert_eq!(api.state("kv").await["new"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_exposed_for_prometheus() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy(
        "kv",
        KV_WASM,
        &["kv"],
        json!({"snapshot_every": 2, "strict": false}),
    )
    .await;
    api.append(
        "kv",
        &[
            ("add", json!({"key": "a", "value": 1})),
            ("odd", json!({})),
            ("add", json!({"key": "b", "value": 2})),
        ],
    )
    .await;
    api.state("kv").await;
    let text = server.get_raw("/metrics");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for needle in [
        "hume_projection_events_applied_total{projection=\"kv\"} 2",
        "hume_projection_events_skipped_total{projection=\"kv\"} 1",
        "hume_projection_lag{projection=\"kv\"}",
        "hume_projection_snapshots_total{projection=\"kv\"}",
        "hume_projection_snapshot_duration_seconds",
        "hume_plugin_call_duration_seconds",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

/// Wait (at most `within`) until the server's log holds `needle`.
async fn logged_within(server: &TestServer, needle: &str, within: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if server.stderr().contains(needle) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// A projection that starts already at the head (deployed with `--start-from
/// end`, restarted from a snapshot at the head, started after a stop) calls
/// `on-caught-up` at once, not at the next event or `catch_up_after` (30 s);
/// a `--keep-state` version on an idle stream swaps in within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_at_the_head_reports_caught_up_at_once() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    let events: Vec<(&str, Value)> = (0..5).map(|_| ("tick", json!({}))).collect();
    api.append("h", &events).await;
    let second = std::time::Duration::from_secs(1);
    api.deploy("h", HOSTILE_WASM, &["h"], json!({"start_from": "end"}))
        .await;
    assert!(
        logged_within(&server, "caught up at 5", second).await,
        "deploy at the head: {}",
        server.stderr()
    );
    assert!(
        !server.stderr().contains('\x1b'),
        "no colour codes in a log that is not a terminal"
    );
    server.stop();
    std::fs::write(server.data_dir().with_extension("stderr.log"), "").ok();
    server.restart();
    let api = Api::new(&server);
    assert!(
        logged_within(&server, "caught up at 5", second).await,
        "restart at the head"
    );
    cli_ok(&server, &["stop", "h"]);
    let before = server.stderr().matches("caught up at 5").count();
    cli_ok(&server, &["start", "h"]);
    let deadline = std::time::Instant::now() + second;
    while server.stderr().matches("caught up at 5").count() == before {
        assert!(std::time::Instant::now() < deadline, "start at the head");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // A new version seeded from the running one, nothing new in the log:
    // it is at the head as soon as it starts, and swaps in.
    let v1 = api.status("h").await["plugin_hash"].clone();
    let (code, body) = api
        .deploy_raw(
            "h",
            &variant(&hume_tests::read_wasm(HOSTILE_WASM), "v2"),
            &["h"],
            json!({"start_from": "end"}),
            true,
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let t = std::time::Instant::now();
    api.wait_status("h", "swapped", |s| {
        s["plugin_hash"] != v1 && s["pending"].is_null()
    })
    .await;
    assert!(t.elapsed() < second, "swapped after {:?}", t.elapsed());
    assert_eq!(api.state("h").await, json!({}));
}
