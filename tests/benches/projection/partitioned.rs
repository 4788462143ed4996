//! (d) partitioned rebuild: `kv` with `--partition-by stream` over
//! `HUME_BENCH_PARTITIONED_EVENTS` events (default 1,000,000) in
//! `HUME_BENCH_PARTITIONED_STREAMS` streams (default 10,000), appended 100
//! events per stream at a time, streams in turn; events/s until caught up
//! with `--workers 1`, `--workers 2` and unpartitioned `kv` over the same
//! events.

use std::time::{Duration, Instant};

use hume_tests::server::TestServer;
use serde_json::{json, Value};

use super::{b64, env_or, Bench};

pub async fn partitioned(dir: &std::path::Path) {
    let events = env_or("HUME_BENCH_PARTITIONED_EVENTS", 1_000_000);
    let streams = env_or("HUME_BENCH_PARTITIONED_STREAMS", 10_000).max(1);
    let server = TestServer::start(dir.join("partitioned"));
    let b = Bench::new(&server);
    let per_append = 100u64;
    let t = Instant::now();
    let mut n = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    let b = std::sync::Arc::new(b);
    while n * per_append < events {
        let b = b.clone();
        let stream = n % streams;
        let base = n * per_append;
        tasks.spawn(async move {
            let batch: Vec<Value> = (0..per_append)
                .map(|i| {
                    json!({"kind": "add", "data": {"key": format!("key-{}", (base + i) % 50), "value": base + i}})
                })
                .collect();
            b.post(&format!("/streams/order-{stream}"), &json!({ "events": batch }))
                .await;
        });
        if tasks.len() >= 4 {
            tasks.join_next().await;
        }
        n += 1;
    }
    while tasks.join_next().await.is_some() {}
    let head = b.head().await;
    eprintln!(
        "(d) appended {head} events in {streams} streams in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let kv = b64(hume_tests::KV_WASM);
    let runs = [
        (
            "partitioned by stream, --workers 1",
            json!({"partition_by": "stream", "workers": 1}),
        ),
        (
            "partitioned by stream, --workers 2",
            json!({"partition_by": "stream", "workers": 2}),
        ),
        ("unpartitioned kv", json!({})),
    ];
    for (round, (label, options)) in runs.into_iter().enumerate() {
        let name = format!("kvp-{round}");
        let t = Instant::now();
        b.deploy(&name, &kv, &["order-*"], options).await;
        loop {
            let s = b.get(&format!("/projections/{name}")).await;
            if s["scanned"].as_u64() == Some(head) && s["offset"].as_u64() == Some(head) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = t.elapsed().as_secs_f64();
        eprintln!(
            "(d) rebuild, {label}: {took:.2} s = {:.0} events/s",
            head as f64 / took
        );
        b.http
            .delete(format!("{}/projections/{name}", b.url))
            .send()
            .await
            .unwrap();
    }
}
