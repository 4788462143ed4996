//! What `hume status NAME`, its JSON and `/metrics` show of a partitioned
//! projection: partition count, live vs hibernated instances, per-worker
//! figures and the partitions that took the most fold time.

use serde_json::{json, Value};

use super::caught_up;
use crate::common::{cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::KV_WASM;

/// One stream with far more events than 20 others: it is the slowest
/// partition by fold time; every event is counted by exactly one worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_show_partitions_workers_and_the_slowest() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    let mut total = 0u64;
    for round in 0..10u64 {
        let events: Vec<(&str, Value)> = (0..300u64)
            .map(|i| {
                (
                    "add",
                    json!({"key": format!("k{}", i % 40), "value": round * 300 + i}),
                )
            })
            .collect();
        api.append("kv-big", &events).await;
        total += 300;
    }
    for s in 0..20 {
        api.append(
            &format!("kv-{s}"),
            &[
                ("add", json!({"key": "a", "value": s})),
                ("add", json!({"key": "b", "value": s})),
            ],
        )
        .await;
        total += 2;
    }
    api.deploy(
        "kvs",
        KV_WASM,
        &["kv-*"],
        json!({"partition_by": "stream", "workers": 2}),
    )
    .await;
    caught_up(&api, "kvs", "kv-big").await;

    let status = api.status("kvs").await;
    let p = &status["partitions"];
    assert_eq!(p["count"], json!(21), "{status}");
    assert_eq!(p["live_instances"], json!(0), "idle: {status}");
    assert_eq!(p["hibernated"], json!(21), "{status}");
    let workers = p["workers_figures"].as_array().expect("workers_figures");
    assert!(!workers.is_empty() && workers.len() <= 2, "{status}");
    let folded: u64 = workers.iter().map(|w| w["events"].as_u64().unwrap()).sum();
    assert_eq!(folded, total, "every event counted once: {status}");
    assert!(
        workers.iter().all(|w| w["worker"].as_u64().unwrap() < 2),
        "{status}"
    );
    let slowest = p["slowest"].as_array().expect("slowest");
    assert_eq!(slowest.len(), 5, "{status}");
    assert_eq!(slowest[0]["partition"], json!("kv-big"), "{status}");
    let times: Vec<u64> = slowest
        .iter()
        .map(|s| s["fold_us"].as_u64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "most first: {status}"
    );

    let metrics = server.get_raw("/metrics");
    assert!(
        metrics.contains("hume_projection_partitions{projection=\"kvs\"} 21"),
        "{metrics}"
    );
    let per_worker: u64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("hume_projection_partition_worker_events_total")
                && l.contains("projection=\"kvs\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(per_worker, total, "{metrics}");

    let out = cli_ok(&server, &["status", "kvs"]);
    assert!(
        out.contains("partitions: 21 by stream (0 live, 21 hibernated, 0 faulted)"),
        "{out}"
    );
    assert!(out.contains("slowest: kv-big "), "{out}");
    assert!(out.contains("workers (2): #0 "), "{out}");
}
