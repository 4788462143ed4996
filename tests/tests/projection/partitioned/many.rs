//! Many partitions: 10,000 partitions of `counter` (by `/id`) are all
//! readable, the server's memory stays far below an instance per partition,
//! and a restart brings every partition back from its snapshot. (100,000
//! are measured in the projection bench, part d.)

use serde_json::{json, Value};

use super::caught_up;
use crate::common::Api;
use hume_tests::server::TestServer;
use hume_tests::COUNTER_WASM;

const IDS: u64 = 10_000;

fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap();
    kb / 1024
}

async fn check_all(api: &Api) {
    let status = api.status("many").await;
    assert_eq!(status["partitions"]["count"], json!(IDS), "{status}");
    for id in (0..IDS).step_by(997).chain([IDS - 1]) {
        let (code, v) = api
            .get(&format!("/projections/many/state?partition=p{id}"))
            .await;
        assert_eq!((code, &v), (200, &json!({"tick": 1})), "p{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_partitions_are_readable_small_and_restart_from_snapshots() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    for chunk in 0..IDS / 1000 {
        let events: Vec<(&str, Value)> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|id| ("tick", json!({ "id": format!("p{id}") })))
            .collect();
        api.append("ticks", &events).await;
    }
    api.deploy(
        "many",
        COUNTER_WASM,
        &["ticks"],
        json!({"partition_by": "/id"}),
    )
    .await;
    caught_up(&api, "many", "p0").await;
    check_all(&api).await;
    // An instance per partition would be gigabytes; states as bytes are
    // a few MiB.
    let rss = rss_mib(server.pid().unwrap());
    assert!(rss < 400, "RSS {rss} MiB with {IDS} partitions");

    server.stop();
    server.restart();
    let api = Api::new(&server);
    caught_up(&api, "many", "p0").await;
    let status = api.status("many").await;
    assert_eq!(status["applied"], json!(0), "nothing refolded: {status}");
    check_all(&api).await;
    let rss = rss_mib(server.pid().unwrap());
    assert!(rss < 400, "RSS {rss} MiB after the restart");
}
