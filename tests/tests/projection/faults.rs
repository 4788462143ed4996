//! Faults against a real `hume serve`: strict vs non-strict unknown kinds,
//! rejections, resume / skip / reset, and hostile plugins (infinite loop,
//! memory bomb) beside a healthy projection that keeps up and stays
//! readable.

use crate::common::{cli_err, cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::{BANK_WASM, HOSTILE_WASM, KV_WASM};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kind_faults_a_strict_projection_and_is_skipped_by_a_lax_one() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy("strict", KV_WASM, &["kv"], json!({})).await;
    api.deploy("lax", KV_WASM, &["kv"], json!({"strict": false}))
        .await;
    api.append("kv", &[("add", json!({"key": "a", "value": 1}))])
        .await;
    api.append("kv", &[("bogus", json!({}))]).await; // position 2
    api.append("kv", &[("add", json!({"key": "b", "value": 2}))])
        .await;

    // Not strict: skipped, counted, and the projection goes on.
    assert_eq!(api.state("lax").await, json!({"a": 1, "b": 2}));
    let lax = api.status("lax").await;
    assert_eq!(lax["skipped_unknown"], 1);
    assert_eq!(lax["state"], "running");

    // Strict: faulted at the unknown event, visible in status.
    let s = api
        .wait_status("strict", "faulted", |s| s["state"] == "faulted")
        .await;
    assert_eq!(s["fault"]["position"], 2);
    assert_eq!(s["fault"]["kind"], "bogus");
    assert!(
        s["fault"]["error"].as_str().unwrap().contains("unknown"),
        "{s}"
    );
    assert_eq!(s["offset"], 1, "the event before the fault is applied");
    let err = cli_err(&server, &["state", "strict"]);
    assert!(
        err.contains("faulted at position 2 (kind `bogus`)"),
        "{err}"
    );
    assert!(
        err.contains("hume resume strict") && err.contains("--dirty"),
        "{err}"
    );
    let dirty: Value =
        serde_json::from_str(&cli_ok(&server, &["state", "strict", "--dirty"])).unwrap();
    assert_eq!(dirty, json!({"a": 1}), "a dirty read still answers");
    let row = cli_ok(&server, &["status"]);
    assert!(
        row.contains("faulted") && row.contains("at 2 `bogus`"),
        "{row}"
    );

    // Resume retries the same event: faulted again, same place, no loop.
    cli_ok(&server, &["resume", "strict"]);
    let s = api
        .wait_status("strict", "faulted again", |s| s["state"] == "faulted")
        .await;
    assert_eq!(s["fault"]["position"], 2);
    // Faulted once more, not in a loop: the fault stays the same one.
    let fault_at = s["fault"]["at"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let s = api.status("strict").await;
    assert_eq!(s["fault"]["at"], fault_at, "no retry loop: {s}");

    // Skip steps over exactly that event and records it.
    let out = cli_ok(&server, &["skip", "strict"]);
    assert!(out.contains("position 2"), "{out}");
    assert_eq!(api.state("strict").await, json!({"a": 1, "b": 2}));
    let s = api.status("strict").await;
    assert_eq!(s["skipped_positions"], json!([2]));
    assert!(s["fault"].is_null());
    assert_eq!(s["state"], "running");

    // Skip / resume when nothing is faulted: a clear refusal.
    let err = cli_err(&server, &["skip", "strict"]);
    assert!(err.contains("not faulted"), "{err}");
    let err = cli_err(&server, &["resume", "strict"]);
    assert!(err.contains("not faulted"), "{err}");

    // Reset --keep-skips rebuilds from 0, honouring the recorded skip.
    cli_ok(&server, &["reset", "strict", "--keep-skips"]);
    assert_eq!(api.state("strict").await, json!({"a": 1, "b": 2}));
    let s = api.status("strict").await;
    assert_eq!(s["applied"], 2, "rebuilt from the start");

    // The recorded skip survives a restart.
    let mut server = server;
    server.stop();
    server.restart();
    let api = Api::new(&server);
    cli_ok(&server, &["reset", "strict", "--keep-skips"]);
    assert_eq!(api.state("strict").await, json!({"a": 1, "b": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_event_always_faults() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy("bank", BANK_WASM, &["account-*"], json!({"strict": false}))
        .await;
    let (code, _) = api.get("/projections/bank/state").await;
    assert_eq!(code, 200);
    api.append(
        "account-1",
        &[("deposited", json!({"account": "1", "amount": 5}))],
    )
    .await;
    let s = api
        .wait_status("bank", "faulted", |s| s["state"] == "faulted")
        .await;
    assert_eq!(s["fault"]["position"], 1);
    assert_eq!(s["fault"]["kind"], "deposited");
    assert!(
        s["fault"]["error"]
            .as_str()
            .unwrap()
            .contains("never opened"),
        "the plugin's reason is shown: {s}"
    );
}

/// A handler that changes its state and then rejects leaves no trace: the
/// faulted state is the state after the event before, in the same batch or
/// not, and after `skip` the state equals `hume replay` without that event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_event_leaves_no_trace_of_what_the_plugin_did() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy(
        "h",
        HOSTILE_WASM,
        &["h"],
        json!({"snapshot_every": 2, "snapshot_after_ms": 0}),
    )
    .await;
    api.append(
        "h",
        &[
            ("tick", json!({})),
            ("tick", json!({})),
            ("tick", json!({})),
        ],
    )
    .await;
    api.wait_status("h", "applied 3", |s| s["offset"] == 3)
        .await;
    // One batch: a healthy event, then one that mutates and rejects.
    api.append(
        "h",
        &[
            ("tock", json!({})),
            ("taint", json!({})),
            ("tick", json!({})),
        ],
    )
    .await;
    let s = api
        .wait_status("h", "faulted", |s| s["state"] == "faulted")
        .await;
    assert_eq!(s["fault"]["position"], 5, "{s}");
    assert_eq!(s["fault"]["kind"], "taint");
    let dirty = api.get_ok("/projections/h/state?dirty=true").await;
    assert_eq!(
        dirty,
        json!({"tick": 3, "tock": 1}),
        "the state after position 4, without the rejected event's change"
    );
    api.post_ok("/projections/h/skip", json!({})).await;
    let after = api
        .wait_status("h", "running past the skip", |s| {
            s["state"] == "running" && s["offset"] == 6
        })
        .await;
    assert_eq!(after["skipped_positions"], json!([5]), "{after}");
    let state = api.state("h").await;
    assert_eq!(state, json!({"tick": 4, "tock": 1}));
    // The same as replaying the log without the skipped event.
    let all = cli_ok(&server, &["read", "h"]);
    let kept: String = all
        .lines()
        .filter(|l| !l.contains("\"taint\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let file = dir.path().join("without-taint.ndjson");
    std::fs::write(&file, kept).unwrap();
    let replayed: Value = serde_json::from_str(&cli_ok(
        &server,
        &["replay", HOSTILE_WASM, "--events", file.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(replayed["state"], state);
}

/// A hostile plugin beside a healthy one: the healthy one keeps up and
/// answers consistent reads while the hostile one loops / eats memory; the
/// hostile one ends faulted with the limit named, at the exact event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_fault_with_the_limit_named_and_never_block_a_healthy_one() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy("kv", KV_WASM, &["kv"], json!({})).await;
    api.deploy(
        "looper",
        HOSTILE_WASM,
        &["h"],
        json!({"call_timeout_ms": 3000}),
    )
    .await;
    api.deploy(
        "bomber",
        HOSTILE_WASM,
        &["b"],
        json!({"max_memory_bytes": 16 * 1024 * 1024}),
    )
    .await;
    api.deploy(
        "hoarder",
        HOSTILE_WASM,
        &["bs"],
        json!({"snapshot_every": 1, "max_memory_bytes": 256 << 20}),
    )
    .await;

    // One batch with healthy events around the hostile ones: the failure is
    // pinned to the exact event, not to the batch.
    api.append(
        "h",
        &[
            ("tick", json!({})),
            ("loop", json!({})),
            ("tick", json!({})),
        ],
    )
    .await;
    // While `looper` spins for up to 3 s, kv keeps up and answers.
    for i in 0..20 {
        let key = format!("k{i}");
        api.append("kv", &[("add", json!({"key": key, "value": i}))])
            .await;
        let state = api.state("kv").await;
        assert_eq!(state[&key], i, "consistent read sees the append at once");
    }
    let looper = api
        .wait_status("looper", "faulted", |s| s["state"] == "faulted")
        .await;
    assert_eq!(looper["fault"]["position"], 2, "{looper}");
    assert_eq!(looper["fault"]["kind"], "loop");
    assert_eq!(looper["fault"]["limit"], "call time limit", "{looper}");
    assert_eq!(looper["offset"], 1, "state kept up to the event before");

    api.append("b", &[("tick", json!({})), ("alloc", json!({}))])
        .await;
    let bomber = api
        .wait_status("bomber", "faulted", |s| s["state"] == "faulted")
        .await;
    assert_eq!(bomber["fault"]["kind"], "alloc", "{bomber}");
    assert_eq!(bomber["fault"]["limit"], "memory limit", "{bomber}");
    let err = cli_err(&server, &["state", "bomber"]);
    assert!(err.contains("memory limit"), "{err}");

    // A state over the snapshot size limit faults when it is persisted.
    api.append("bs", &[("big-snapshot", json!({}))]).await;
    let hoarder = api
        .wait_status("hoarder", "faulted", |s| s["state"] == "faulted")
        .await;
    assert_eq!(hoarder["fault"]["kind"], "snapshot", "{hoarder}");
    assert_eq!(
        hoarder["fault"]["limit"], "snapshot size limit",
        "{hoarder}"
    );
    assert!(
        hoarder["last_snapshot"].is_null(),
        "nothing over the limit was written"
    );

    // Still healthy, still consistent; the hostile ones answer dirty reads.
    api.append("kv", &[("add", json!({"key": "last", "value": 0}))])
        .await;
    assert_eq!(api.state("kv").await["last"], 0);
    let dirty = api.get_ok("/projections/looper/state?dirty=true").await;
    assert_eq!(dirty, json!({"tick": 1}));
    let kv = api.status("kv").await;
    assert_eq!(kv["state"], "running");
    assert!(kv["fault"].is_null());
}
