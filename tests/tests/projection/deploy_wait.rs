//! `hume deploy --wait` (issue 14, item 6): it returns once the projection,
//! or the new version once swapped in, has caught up, and fails with the
//! fault when it faults; and the server reuses what `hume validate`
//! compiled on the same machine.

use std::process::Command;

use crate::common::{cli, cli_err, cli_ok, variant, Api};
use hume_tests::server::TestServer;
use hume_tests::{HOSTILE_WASM, KV_WASM};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_wait_returns_when_caught_up_or_faulted() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    for batch in 0..20 {
        let events: Vec<Value> = (0..500)
            .map(
                |i| json!({"kind": "add", "data": {"key": format!("k{}", i % 50), "value": batch}}),
            )
            .collect();
        api.post_ok("/streams/kv-1", json!({ "events": events }))
            .await;
    }
    let out = cli_ok(
        &server,
        &["deploy", "kv", KV_WASM, "--stream", "kv-*", "--wait"],
    );
    assert!(out.contains("kv: caught up at position 10000"), "{out}");
    let s = api.status("kv").await;
    assert_eq!(
        (s["scanned"].clone(), s["lag"].clone()),
        (json!(10000), json!(0)),
        "{s}"
    );

    // A new version: --wait returns once it has been swapped in.
    let v2 = dir.path().join("kv2.wasm");
    std::fs::write(&v2, variant(&hume_tests::read_wasm(KV_WASM), "2")).unwrap();
    let out = cli_ok(
        &server,
        &[
            "deploy",
            "kv",
            v2.to_str().unwrap(),
            "--stream",
            "kv-*",
            "--wait",
        ],
    );
    assert!(
        out.contains("building") && out.contains("caught up"),
        "{out}"
    );
    let hash = out
        .lines()
        .find_map(|l| l.split('(').nth(1).map(|h| h[..12].to_string()))
        .expect("the new hash is printed");
    let s = api.status("kv").await;
    assert!(
        s["plugin_hash"].as_str().unwrap().starts_with(&hash),
        "{s}\n{out}"
    );
    assert!(s["pending"].is_null(), "{s}");

    // A fault ends the wait with the fault and a non-zero exit.
    api.append("h", &[("add", json!({}))]).await;
    api.append("h", &[("panic", json!({}))]).await;
    let err = cli_err(
        &server,
        &["deploy", "h", HOSTILE_WASM, "--stream", "h", "--wait"],
    );
    assert!(
        err.contains("faulted at position 10002") && err.contains("hume logs h"),
        "{err}"
    );
    // --wait-timeout only with --wait.
    let err = cli_err(
        &server,
        &[
            "deploy",
            "x",
            KV_WASM,
            "--stream",
            "x",
            "--wait-timeout",
            "5",
        ],
    );
    assert!(err.contains("--wait"), "{err}");
    let out = cli(&server, &["status", "x"]);
    assert!(!out.status.success(), "nothing was deployed");
}

/// What `hume validate` compiled into this user's cache is loaded by the
/// server at deploy instead of being compiled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reuses_what_the_cli_compiled() {
    let dir = hume_tests::temp_dir();
    let cache = dir.path().join("cache");
    let cache_str = cache.to_str().unwrap();
    let validated = Command::new(hume_tests::hume_bin())
        .args(["validate", KV_WASM])
        .env("HUME_CACHE_DIR", cache_str)
        .output()
        .unwrap();
    assert!(validated.status.success());
    let server = TestServer::try_start_with_env(
        dir.path().join("data"),
        &[],
        &[
            ("HUME_CACHE_DIR", cache_str),
            ("RUST_LOG", "info,hume::plugin::runtime=debug"),
        ],
    )
    .unwrap();
    cli_ok(&server, &["deploy", "kv", KV_WASM, "--stream", "kv"]);
    let logs = server.stderr();
    assert!(
        logs.contains("loaded the compiled form from a shared cache"),
        "{logs}"
    );
    assert!(
        !logs.contains("compiled component"),
        "compiled again: {logs}"
    );
}
