//! Time travel of one partition: `hume state NAME --partition KEY --at N`
//! equals `hume replay` of that partition's events up to N.

use serde_json::{json, Value};

use super::{append_kv, by_stream, caught_up, log_events, replay_partition};
use crate::common::{cli_err, cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::KV_WASM;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_at_a_position_equals_replay_of_its_events_up_to_there() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    append_kv(&api).await;
    api.deploy("kvt", KV_WASM, &["kv-*"], json!({"partition_by": "stream"}))
        .await;
    caught_up(&api, "kvt", "kv-3").await;
    let events = log_events(&server);
    let head = events.len() as u64;
    // Just before kv-40's last append (5 events, at least one of them an
    // `add` of a new value).
    let before_last_of_40 = events
        .iter()
        .filter(|e| by_stream(e) == "kv-40")
        .map(|e| e["position"].as_u64().unwrap())
        .max()
        .unwrap()
        - 5;
    for (key, at) in [
        ("kv-3", head / 3),
        ("kv-3", head / 2 + 1),
        ("kv-40", before_last_of_40),
    ] {
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| by_stream(e) == key && e["position"].as_u64().unwrap() <= at)
            .collect();
        assert!(mine.len() > 1, "{key} has events up to {at}");
        let expected = replay_partition(&server, KV_WASM, &mine, dir.path());
        let out = cli_ok(
            &server,
            &["state", "kvt", "--partition", key, "--at", &at.to_string()],
        );
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got, expected["state"], "{key} at {at}");
        let current: Value =
            serde_json::from_str(&cli_ok(&server, &["state", "kvt", "--partition", key])).unwrap();
        assert_ne!(got, current, "{key} at {at} is not today's state");
    }
    let err = cli_err(
        &server,
        &["state", "kvt", "--partition", "kv-404", "--at", "5"],
    );
    assert!(err.contains("kv-404"), "{err}");
    let (code, v) = api
        .get(&format!(
            "/projections/kvt/state?partition=kv-3&at={}",
            head + 10
        ))
        .await;
    assert_eq!(code, 422, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("past the head"),
        "{v}"
    );
}
