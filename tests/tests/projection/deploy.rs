//! Deploying projections against a real `hume serve`: the main path through
//! the CLI (deploy, append, state, snapshot, query, status, undeploy) and
//! every bad deploy input, each with a clear error and nothing half-deployed
//! (not even after a restart).

use crate::common::{cli_err, cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::{COUNTER_WASM, KV_WASM, WRONG_WORLD_WASM};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_append_state_status_through_the_cli() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let out = cli_ok(&server, &["deploy", "kv", KV_WASM, "--stream", "kv-*"]);
    assert!(out.contains("kv: deployed kv"), "{out}");
    cli_ok(
        &server,
        &[
            "append",
            "kv-1",
            "--kind",
            "add",
            "--data",
            r#"{"key":"a","value":1}"#,
        ],
    );
    cli_ok(
        &server,
        &[
            "append",
            "kv-2",
            "--kind",
            "add",
            "--data",
            r#"{"key":"b","value":[true]}"#,
        ],
    );
    cli_ok(
        &server,
        &[
            "append",
            "other",
            "--kind",
            "add",
            "--data",
            r#"{"key":"c","value":3}"#,
        ],
    );

    let state: Value = serde_json::from_str(&cli_ok(&server, &["state", "kv"])).unwrap();
    assert_eq!(state, json!({"a": 1, "b": [true]}), "follows kv-* only");
    let part: Value =
        serde_json::from_str(&cli_ok(&server, &["state", "kv", "--pointer", "/b/0"])).unwrap();
    assert_eq!(part, json!(true));
    let snap: Value = serde_json::from_str(&cli_ok(&server, &["snapshot", "kv"])).unwrap();
    assert_eq!(snap, json!({"offset": 2, "state": {"a": 1, "b": [true]}}));
    let answer: Value =
        serde_json::from_str(&cli_ok(&server, &["query", "kv", r#"{"key":"a"}"#])).unwrap();
    assert_eq!(answer, json!({"value": 1}));
    let err = cli_err(&server, &["state", "kv", "--pointer", "/nope"]);
    assert!(err.contains("nothing at JSON pointer `/nope`"), "{err}");

    let table = cli_ok(&server, &["status"]);
    let header = table.lines().next().unwrap();
    for col in [
        "NAME", "STATE", "OFFSET", "HEAD", "LAG", "EV/S", "SNAPSHOT", "PLUGIN", "SKIPPED", "ERROR",
    ] {
        assert!(header.contains(col), "{table}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with("kv "))
        .expect("kv row");
    assert!(
        row.contains("running") && row.contains(" kv 0.1.0"),
        "{table}"
    );
    let status: Value =
        serde_json::from_str(&cli_ok(&server, &["status", "kv", "--json"])).unwrap();
    assert_eq!(status["offset"], 2);
    assert_eq!(status["head"], 3);
    assert_eq!(status["lag"], 0);
    assert_eq!(status["options"]["snapshot_every"], 100, "seed defaults");
    assert_eq!(status["options"]["snapshot_after_ms"], 30000);
    assert_eq!(status["options"]["catch_up_after_ms"], 30000);
    assert_eq!(status["options"]["strict"], true);

    let snap: Value =
        serde_json::from_str(&cli_ok(&server, &["catch-up", "kv", "--sync"])).unwrap();
    assert_eq!(snap["offset"], 2);
    let taken: Value = serde_json::from_str(&cli_ok(&server, &["take-snapshot", "kv"])).unwrap();
    assert_eq!(taken, json!({"offset": 2}));

    cli_ok(&server, &["undeploy", "kv"]);
    let err = cli_err(&server, &["state", "kv"]);
    assert!(err.contains("no projection named `kv`"), "{err}");
    let err = cli_err(&server, &["undeploy", "kv"]);
    assert!(err.contains("no projection named `kv`"), "{err}");
    assert!(Api::new(&server).list().await.is_empty());
}

/// Every refused deploy leaves the server as it was, also after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deploys_are_refused_and_nothing_is_half_deployed() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy("kv", KV_WASM, &["kv-*"], json!({})).await;
    api.append("kv-1", &[("add", json!({"key": "a", "value": 1}))])
        .await;
    let before = api.snapshot("kv").await;

    // Not a component at all.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").unwrap();
    let err = cli_err(
        &server,
        &["deploy", "junk", junk.to_str().unwrap(), "--stream", "s"],
    );
    assert!(err.contains("not a WebAssembly component"), "{err}");

    // A component of another world.
    let err = cli_err(
        &server,
        &["deploy", "ww", WRONG_WORLD_WASM, "--stream", "s"],
    );
    assert!(err.contains("does not implement the world"), "{err}");

    // Bad stream patterns.
    for pattern in ["a*b*", "", "a**"] {
        let err = cli_err(&server, &["deploy", "pat", KV_WASM, "--stream", pattern]);
        assert!(
            err.contains("invalid stream selector"),
            "{pattern:?}: {err}"
        );
    }
    let (code, body) = api
        .deploy_raw(
            "nostreams",
            &hume_tests::read_wasm(KV_WASM),
            &[],
            json!({}),
            false,
        )
        .await;
    assert_eq!(code, 400, "{body}");

    // Bad names and options.
    let err = cli_err(&server, &["deploy", "bad/name", KV_WASM, "--stream", "s"]);
    assert!(err.contains("invalid projection name"), "{err}");
    let err = cli_err(
        &server,
        &[
            "deploy",
            "opt",
            KV_WASM,
            "--stream",
            "s",
            "--catch-up-after",
            "0",
        ],
    );
    assert!(err.contains("catch_up_after"), "{err}");
    let (code, body) = api
        .deploy_raw(
            "opt",
            &hume_tests::read_wasm(KV_WASM),
            &["s"],
            json!({"snapshot_evry": 3}),
            false,
        )
        .await;
    assert_eq!(code, 400, "unknown option is refused: {body}");
    let (code, body) = api
        .post(
            "/projections",
            json!({"name": "b64", "plugin": "%%%", "streams": ["s"]}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("base64"), "{body}");

    // The same plugin again under the same name.
    let err = cli_err(&server, &["deploy", "kv", KV_WASM, "--stream", "kv-*"]);
    assert!(err.contains("already runs plugin"), "{err}");

    let check = |list: Vec<Value>| {
        let names: Vec<&str> = list
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(names, vec!["kv"], "only the good deployment exists");
        assert!(list[0]["pending"].is_null(), "no half-deployed new version");
    };
    check(api.list().await);
    assert_eq!(api.snapshot("kv").await, before);

    server.stop();
    server.restart();
    let api = Api::new(&server);
    check(api.list().await);
    assert_eq!(api.snapshot("kv").await, before);
    // A different plugin under a fresh name still deploys fine.
    api.deploy("counter", COUNTER_WASM, &["*"], json!({})).await;
    assert_eq!(api.state("counter").await, json!({"add": 1}));
}

/// `--start-from end` skips the events already in the log; `reset` goes
/// back to that start, not to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_from_end_ignores_earlier_events() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.append("kv", &[("add", json!({"key": "old", "value": 1}))])
        .await;
    cli_ok(
        &server,
        &[
            "deploy",
            "late",
            KV_WASM,
            "--stream",
            "kv",
            "--start-from",
            "end",
        ],
    );
    assert_eq!(
        api.snapshot("late").await,
        json!({"offset": 1, "state": {}})
    );
    api.append("kv", &[("add", json!({"key": "new", "value": 2}))])
        .await;
    assert_eq!(api.state("late").await, json!({"new": 2}));
    cli_ok(&server, &["reset", "late"]);
    assert_eq!(api.state("late").await, json!({"new": 2}));
    let err = cli_err(
        &server,
        &[
            "deploy",
            "x",
            KV_WASM,
            "--stream",
            "kv",
            "--start-from",
            "middle",
        ],
    );
    assert!(err.contains("use `0` or `end`"), "{err}");
}
