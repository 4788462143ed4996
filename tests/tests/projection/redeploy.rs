//! Redeploying the plugin a projection already runs with other options
//! (issue 14, item 4): limits and cadence change in place (state and offset
//! kept, a limit fault resumes after the fix); streams, start and
//! strictness build a new version of the same plugin. And `hume skip`
//! positions do not survive `reset` or carry over to a new version unless
//! asked (item 11).

use crate::common::{cli_err, cli_ok, variant, Api};
use hume_tests::server::TestServer;
use hume_tests::{HOSTILE_WASM, KV_WASM};
use serde_json::{json, Value};

/// A snapshot limit fault, fixed by redeploying with a higher limit and
/// resumed: the running instance takes the new limit, nothing is rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raised_limit_applies_in_place_and_the_fault_resumes() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.append("h", &[("add", json!({}))]).await;
    // The hostile plugin's state grows to 24 MiB on this kind.
    api.append("h", &[("big-snapshot", json!({}))]).await;
    let deploy = |max_snapshot: &str| {
        vec![
            "deploy".to_string(),
            "h".into(),
            HOSTILE_WASM.into(),
            "--stream".into(),
            "h".into(),
            "--snapshot-every".into(),
            "1".into(),
            "--max-snapshot".into(),
            max_snapshot.into(),
            // Room for the 24 MiB state and its serialised copy.
            "--max-memory".into(),
            "256M".into(),
        ]
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    cli_ok(&server, &args(&deploy("1M")));
    let s = api
        .wait_status("h", "faulted by the snapshot limit", |s| {
            s["state"] == "faulted"
        })
        .await;
    assert_eq!(s["fault"]["limit"], "snapshot size limit", "{s}");
    let error = s["fault"]["error"].as_str().unwrap();
    assert!(error.contains("raise it with --max-snapshot"), "{s}");

    // The same options again: nothing to change.
    let err = cli_err(&server, &args(&deploy("1M")));
    assert!(err.contains("already runs plugin"), "{err}");

    // A higher limit: applied in place, the fault stays until resume.
    let out = cli_ok(&server, &args(&deploy("32M")));
    assert!(
        out.contains("updated in place (max_snapshot_bytes)"),
        "{out}"
    );
    let s = api.status("h").await;
    assert_eq!(s["state"], "faulted", "{s}");
    assert_eq!(s["options"]["max_snapshot_bytes"], 32 << 20, "{s}");
    assert!(s["pending"].is_null(), "no new version: {s}");

    cli_ok(&server, &["resume", "h"]);
    let s = api
        .wait_status("h", "snapshot at 2 after resume", |s| {
            s["state"] == "running" && s["last_snapshot"]["offset"] == 2
        })
        .await;
    assert!(s["fault"].is_null(), "{s}");
    let state = api.state("h").await;
    assert_eq!(
        (state["add"].clone(), state["big-snapshot"].clone()),
        (json!(1), json!(1))
    );

    // The new limit is durable: after a restart the state comes back from
    // the 24 MiB snapshot without a fault.
    server.stop();
    server.restart();
    let api = Api::new(&server);
    let s = api
        .wait_status("h", "running after restart", |s| s["state"] == "running")
        .await;
    assert_eq!(s["options"]["max_snapshot_bytes"], 32 << 20, "{s}");
    assert_eq!(api.state("h").await["big-snapshot"], 1);
}

/// Other streams for the same plugin: a new version, built beside the
/// running one with snapshots of its own, swapped in when caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_streams_build_a_new_version_of_the_same_plugin() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.append("kv-a", &[("add", json!({"key": "a", "value": 1}))])
        .await;
    api.append("kv-b", &[("add", json!({"key": "b", "value": 2}))])
        .await;
    let one = [
        "deploy",
        "kv",
        KV_WASM,
        "--stream",
        "kv-a",
        "--snapshot-every",
        "1",
    ];
    cli_ok(&server, &one);
    assert_eq!(api.state("kv").await, json!({"a": 1}));

    let mut both = one.to_vec();
    both.extend(["--stream", "kv-b"]);
    let out = cli_ok(&server, &both);
    assert!(
        out.contains("building a new version") && out.contains("streams"),
        "{out}"
    );
    api.wait_status("kv", "new version swapped in", |s| {
        s["pending"].is_null() && s["streams"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    assert_eq!(api.state("kv").await, json!({"a": 1, "b": 2}));
    // The new version's snapshots were kept at the swap (the old version's
    // were deleted; the two must not share them).
    let history = api.get_ok("/projections/kv/snapshots").await;
    let offsets: Vec<u64> = history["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["offset"].as_u64().unwrap())
        .collect();
    assert!(offsets.contains(&2), "{history}");

    // Another cadence only: in place, the version stays.
    let mut cadence = both.clone();
    cadence[6] = "5";
    let out = cli_ok(&server, &cadence);
    assert!(out.contains("updated in place (snapshot_every)"), "{out}");
    assert!(api.status("kv").await["pending"].is_null());

    server.stop();
    server.restart();
    let api = Api::new(&server);
    api.append("kv-b", &[("add", json!({"key": "c", "value": 3}))])
        .await;
    assert_eq!(api.state("kv").await, json!({"a": 1, "b": 2, "c": 3}));
    assert_eq!(api.status("kv").await["options"]["snapshot_every"], 5);
}

/// `reset` forgets the skipped positions unless `--keep-skips`; a new
/// version starts without them unless deployed with `--keep-skips`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skips_do_not_survive_reset_or_a_new_version_unless_kept() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.append("h", &[("add", json!({}))]).await;
    api.append("h", &[("reject", json!({}))]).await; // position 2
    api.append("h", &[("add", json!({}))]).await;
    api.deploy("h", HOSTILE_WASM, &["h"], json!({})).await;
    let faulted_at_2 = |s: &Value| s["state"] == "faulted" && s["fault"]["position"] == 2;
    api.wait_status("h", "faulted at 2", faulted_at_2).await;
    cli_ok(&server, &["skip", "h"]);
    assert_eq!(api.state("h").await, json!({"add": 2}));

    let out = cli_ok(&server, &["reset", "h", "--keep-skips"]);
    assert!(out.contains("skips kept"), "{out}");
    assert_eq!(api.state("h").await, json!({"add": 2}));
    assert_eq!(api.status("h").await["skipped_positions"], json!([2]));

    // A new version without --keep-skips meets the rejected event again.
    let v2 = dir.path().join("h2.wasm");
    std::fs::write(&v2, variant(&hume_tests::read_wasm(HOSTILE_WASM), "2")).unwrap();
    let v2 = v2.to_str().unwrap();
    cli_ok(&server, &["deploy", "h", v2, "--stream", "h"]);
    let s = api
        .wait_status("h", "the new version faulted at 2", |s| {
            faulted_at_2(&s["pending"])
        })
        .await;
    assert_eq!(s["state"], "running", "the old version keeps serving: {s}");
    // With --keep-skips it steps over it and takes over.
    let v3 = dir.path().join("h3.wasm");
    std::fs::write(&v3, variant(&hume_tests::read_wasm(HOSTILE_WASM), "3")).unwrap();
    cli_ok(
        &server,
        &[
            "deploy",
            "h",
            v3.to_str().unwrap(),
            "--stream",
            "h",
            "--keep-skips",
        ],
    );
    let s = api
        .wait_status("h", "v3 swapped in", |s| s["pending"].is_null())
        .await;
    assert_eq!(s["skipped_positions"], json!([2]), "{s}");
    assert_eq!(api.state("h").await, json!({"add": 2}));

    // A plain reset forgets the skip: the rejected event faults again.
    cli_ok(&server, &["reset", "h"]);
    let s = api
        .wait_status("h", "faulted at 2 again", faulted_at_2)
        .await;
    assert_eq!(s["skipped_positions"], json!([]), "{s}");
}
