//! Partitioned projections: a faulted partition faults alone and is
//! repaired alone; bad input is refused with nothing deployed.

use super::caught_up;
use crate::common::{cli, cli_err, cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::KV_WASM;
use serde_json::{json, Value};

/// An event one partition's plugin does not know (strict) faults that
/// partition alone: the others keep folding, the faulted one is listed with
/// its position and kind, `resume --partition` retries it (and faults
/// again), `skip --partition` steps over it and folds the partition's later
/// events, and `reset --partition` refolds one partition from the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulted_partition_faults_alone_and_is_skipped_resumed_and_reset_alone() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    let add = |k: &str, v: i64| ("add", json!({ "key": k, "value": v }));
    for s in 0..4 {
        api.append(&format!("kv-{s}"), &[add("a", s)]).await;
    }
    cli_ok(
        &server,
        &[
            "deploy",
            "kvf",
            KV_WASM,
            "--stream",
            "kv-*",
            "--partition-by",
            "stream",
        ],
    );
    caught_up(&api, "kvf", "kv-0").await;
    let bad = api.append("kv-2", &[("bogus", json!({}))]).await;
    let bad_position = bad["first_position"]
        .as_u64()
        .or_else(|| bad["positions"][0].as_u64())
        .or_else(|| bad["position"].as_u64())
        .unwrap_or_else(|| panic!("append outcome names the position: {bad}"));
    api.append("kv-2", &[add("b", 20)]).await;
    api.append("kv-1", &[add("b", 10)]).await;

    // kv-1 keeps folding; kv-2 is faulted at the bogus event.
    let one: Value =
        serde_json::from_str(&cli_ok(&server, &["state", "kvf", "--partition", "kv-1"])).unwrap();
    assert_eq!(one, json!({"a": 1, "b": 10}));
    let status = api.status("kvf").await;
    assert_eq!(status["state"], json!("running"), "{status}");
    assert_eq!(status["partitions"]["faulted"], json!(1), "{status}");
    let faulted = cli_ok(&server, &["partitions", "kvf", "--faulted", "--json"]);
    let listed: Value = serde_json::from_str(faulted.trim()).expect("one faulted partition");
    assert_eq!(listed["partition"], json!("kv-2"));
    assert_eq!(listed["fault"]["position"], json!(bad_position));
    assert_eq!(listed["fault"]["kind"], json!("bogus"));
    let err = cli_err(&server, &["state", "kvf", "--partition", "kv-2"]);
    assert!(err.contains("kv-2") && err.contains("faulted"), "{err}");

    // Resume retries the same event: still unknown, still faulted.
    let err = cli_err(&server, &["resume", "kvf", "--partition", "kv-2"]);
    assert!(err.contains("bogus"), "{err}");
    // Skip steps over it and folds what came after.
    let out = cli_ok(&server, &["skip", "kvf", "--partition", "kv-2"]);
    assert!(out.contains(&bad_position.to_string()), "{out}");
    let two: Value =
        serde_json::from_str(&cli_ok(&server, &["state", "kvf", "--partition", "kv-2"])).unwrap();
    assert_eq!(two, json!({"a": 2, "b": 20}));
    assert_eq!(api.status("kvf").await["partitions"]["faulted"], json!(0));
    let err = cli_err(&server, &["skip", "kvf", "--partition", "kv-1"]);
    assert!(err.contains("not faulted"), "{err}");

    // Reset one healthy partition: the same state, refolded from the log.
    cli_ok(&server, &["reset", "kvf", "--partition", "kv-1"]);
    let one_again: Value =
        serde_json::from_str(&cli_ok(&server, &["state", "kvf", "--partition", "kv-1"])).unwrap();
    assert_eq!(one_again, one);

    // The skip is recorded durably, like a whole projection's: after a
    // restart, resets that keep skips (of the partition, of the whole
    // projection) step over the bogus event again.
    let state_of = |server: &TestServer, key: &str| -> Value {
        serde_json::from_str(&cli_ok(server, &["state", "kvf", "--partition", key])).unwrap()
    };
    server.restart();
    let api = Api::new(&server);
    let out = cli_ok(
        &server,
        &["reset", "kvf", "--partition", "kv-2", "--keep-skips"],
    );
    assert!(out.contains("skips kept"), "{out}");
    assert_eq!(state_of(&server, "kv-2"), json!({"a": 2, "b": 20}));
    cli_ok(&server, &["reset", "kvf", "--keep-skips"]);
    caught_up(&api, "kvf", "kv-2").await;
    assert_eq!(state_of(&server, "kv-2"), json!({"a": 2, "b": 20}));
    assert_eq!(api.status("kvf").await["partitions"]["faulted"], json!(0));

    // A partition reset without --keep-skips forgets that partition's skip
    // (durably): the bogus event faults it again, and a whole reset with
    // skips kept has nothing of it left to step over.
    let err = cli_err(&server, &["reset", "kvf", "--partition", "kv-2"]);
    assert!(err.contains("bogus") && err.contains("kv-2"), "{err}");
    server.restart();
    let api = Api::new(&server);
    cli_ok(&server, &["reset", "kvf", "--keep-skips"]);
    caught_up(&api, "kvf", "kv-1").await;
    let listed = cli_ok(&server, &["partitions", "kvf", "--faulted", "--json"]);
    let listed: Value = serde_json::from_str(listed.trim()).expect("kv-2 faulted again");
    assert_eq!(listed["fault"]["position"], json!(bad_position), "{listed}");
    assert_eq!(state_of(&server, "kv-1"), one);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_partitioned_input_is_refused_and_nothing_is_deployed() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.append("kv-1", &[("add", json!({"key": "a", "value": 1}))])
        .await;
    let deploy = |extra: &[&str]| {
        let mut args = vec!["deploy", "bad", KV_WASM, "--stream", "kv-*"];
        args.extend_from_slice(extra);
        cli_err(&server, &args)
    };
    for (extra, says) in [
        (
            &["--partition-by", "streams"][..],
            "unknown --partition-by mode `streams`",
        ),
        (&["--partition-by", "account"][..], "/account"),
        (&["--partition-by", "/a~2"][..], "not a JSON pointer"),
        (
            &["--partition-by", "stream", "--workers", "0"][..],
            "--workers",
        ),
        (
            &["--workers", "2"][..],
            "only applies to a partitioned projection",
        ),
        (
            &["--partition-by", "stream", "--keep-state"][..],
            "--keep-state",
        ),
    ] {
        let err = deploy(extra);
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(
            err.contains("400") || err.contains("invalid"),
            "{extra:?}: {err}"
        );
        let (code, _) = api.get("/projections/bad").await;
        assert_eq!(code, 404, "{extra:?}: nothing deployed");
    }
    assert!(api.list().await.is_empty(), "nothing deployed at all");

    cli_ok(
        &server,
        &[
            "deploy",
            "kvp",
            KV_WASM,
            "--stream",
            "kv-*",
            "--partition-by",
            "stream",
        ],
    );
    caught_up(&api, "kvp", "kv-1").await;
    let (code, v) = api.get("/projections/kvp/state?partition=kv-404").await;
    assert_eq!(code, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("`kv-404`"), "{v}");
    let err = cli_err(&server, &["state", "kvp", "--partition", "kv-404"]);
    assert!(err.contains("no partition `kv-404`"), "{err}");
    let (code, v) = api.get("/projections/kvp/state").await;
    assert_eq!(code, 400, "{v}");
    let err = cli_err(&server, &["state", "kvp"]);
    assert!(
        err.contains("--partition") && err.contains("--all"),
        "{err}"
    );
    let err = cli_err(&server, &["query", "kvp", r#"{"key":"a"}"#]);
    assert!(err.contains("--partition"), "{err}");

    // Partition reads of a projection with one state.
    cli_ok(&server, &["deploy", "plain", KV_WASM, "--stream", "kv-*"]);
    let err = cli_err(&server, &["state", "plain", "--partition", "kv-1"]);
    assert!(err.contains("not partitioned"), "{err}");
    let out = cli(&server, &["partitions", "plain"]);
    assert!(!out.status.success());
}

/// A new version of a partitioned projection is built beside the running
/// one (blue/green) and swapped in once caught up, its partitions rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_of_a_partitioned_projection_rebuilds_beside_and_swaps_in() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    for s in 0..5 {
        api.append(
            &format!("kv-{s}"),
            &[("add", json!({"key": "a", "value": s}))],
        )
        .await;
    }
    let options = json!({"partition_by": "stream"});
    api.deploy("kvb", KV_WASM, &["kv-*"], options.clone()).await;
    caught_up(&api, "kvb", "kv-0").await;
    let wasm = crate::common::variant(&hume_tests::read_wasm(KV_WASM), "v2");
    let (code, v) = api
        .deploy_raw("kvb", &wasm, &["kv-*"], options, false)
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["status"], json!("building"));
    let new_hash = v["plugin_hash"].clone();
    api.wait_status("kvb", "swapped in", |s| s["plugin_hash"] == new_hash)
        .await;
    caught_up(&api, "kvb", "kv-4").await;
    let state: Value =
        serde_json::from_str(&cli_ok(&server, &["state", "kvb", "--partition", "kv-4"])).unwrap();
    assert_eq!(state, json!({"a": 4}));
    let status = api.status("kvb").await;
    assert_eq!(status["partitions"]["count"], json!(5), "{status}");
}
