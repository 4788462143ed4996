//! (d) partitioned rebuild: `kv` with `--partition-by stream` over
//! `HUME_BENCH_PARTITIONED_EVENTS` events (default 1,000,000) in
//! `HUME_BENCH_PARTITIONED_STREAMS` streams (default 10,000), appended 100
//! events per stream at a time, streams in turn; events/s until caught up
//! with `--workers 1`, `--workers 2` and unpartitioned `kv` over the same
//! events, and two `--workers 1` rebuilds at once (the most any two workers
//! could get here, reading included). Before and after, how much two
//! spinning threads get done against one (what the shared machine gives two
//! workers at that moment). Then a consistent read of one partition under a
//! steady append load (p50/p99), and `HUME_BENCH_PARTITIONS` (default
//! 100,000) partitions of `counter`: build, RSS, restart.
//! `HUME_BENCH_PARTITIONED_ROUNDS` (default 3) rounds of the rebuilds.

use std::time::{Duration, Instant};

use hume_tests::server::TestServer;
use serde_json::{json, Value};

use super::{b64, env_or, rss_mib, Bench};

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
    let rounds = env_or("HUME_BENCH_PARTITIONED_ROUNDS", 3).max(1);
    for round in 0..rounds {
        let spin = spin_ratio();
        let mut took = Vec::new();
        for (i, (label, options)) in runs.iter().enumerate() {
            let names = [format!("kvp-{round}-{i}")];
            let secs = rebuild_all(&b, &kv, &names, options, head).await;
            eprintln!(
                "(d) round {round}, rebuild, {label}: {secs:.2} s = {:.0} events/s",
                head as f64 / secs
            );
            took.push(secs);
        }
        // The ceiling for any two workers here: two independent
        // `--workers 1` rebuilds at once, each with its own reader.
        let names = [format!("kvp-{round}-a"), format!("kvp-{round}-b")];
        let both = rebuild_all(&b, &kv, &names, &runs[0].1, head).await;
        eprintln!(
            "(d) round {round}: workers 2 = {:.2}x workers 1, workers 1 = {:.2}x unpartitioned; \
             two --workers 1 rebuilds at once: {both:.2} s, {:.2}x the events/s of one; \
             two spinning threads vs one just before: {spin:.2}x, just after: {:.2}x",
            took[0] / took[1],
            took[2] / took[0],
            2.0 * took[0] / both,
            spin_ratio()
        );
    }
    read_under_load(&b, streams).await;
    drop(server);
    many(dir).await;
}

/// Deploy `kv` under every name in `names` at once with `options`; the
/// seconds until all of them reached `head`. They are deleted afterwards.
async fn rebuild_all(b: &Bench, kv: &str, names: &[String], options: &Value, head: u64) -> f64 {
    let t = Instant::now();
    for name in names {
        b.deploy(name, kv, &["order-*"], options.clone()).await;
    }
    for name in names {
        loop {
            let s = b.get(&format!("/projections/{name}")).await;
            if s["scanned"].as_u64() == Some(head) && s["offset"].as_u64() == Some(head) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    for name in names {
        b.http
            .delete(format!("{}/projections/{name}", b.url))
            .send()
            .await
            .unwrap();
    }
    secs
}

/// Work two threads get done in one second against one thread: 2.0 on two
/// idle cores, less when other processes share them.
fn spin_ratio() -> f64 {
    fn chunks() -> u64 {
        let t = Instant::now();
        let mut rounds = 0u64;
        while t.elapsed() < Duration::from_secs(1) {
            for i in 0..50_000u64 {
                std::hint::black_box(i.wrapping_mul(31));
            }
            rounds += 1;
        }
        rounds
    }
    let one = chunks();
    let two: u64 = std::thread::scope(|s| {
        let a = s.spawn(chunks);
        let b = s.spawn(chunks);
        a.join().unwrap() + b.join().unwrap()
    });
    two as f64 / one.max(1) as f64
}

/// Consistent reads of one partition of `kv` (by stream, `--workers 2`)
/// while another task appends one event every 2 ms to a random stream.
async fn read_under_load(b: &std::sync::Arc<Bench>, streams: u64) {
    let name = "kvp-read";
    let kv = b64(hume_tests::KV_WASM);
    b.deploy(
        name,
        &kv,
        &["order-*"],
        json!({"partition_by": "stream", "workers": 2}),
    )
    .await;
    let head = b.head().await;
    loop {
        let s = b.get(&format!("/projections/{name}")).await;
        if s["offset"].as_u64() == Some(head) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appender = {
        let (b, stop) = (b.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                let stream = (i * 7919) % streams;
                b.post(
                    &format!("/streams/order-{stream}"),
                    &json!({"events": [{"kind": "add", "data": {"key": "load", "value": i}}]}),
                )
                .await;
                i += 1;
            }
            i
        })
    };
    let rounds = 2000u64;
    let mut v = Vec::with_capacity(rounds as usize);
    for r in 0..rounds {
        let stream = (r * 104_729) % streams;
        let t = Instant::now();
        let state = b
            .get(&format!(
                "/projections/{name}/state?partition=order-{stream}"
            ))
            .await;
        v.push(t.elapsed());
        assert!(state.is_object(), "a kv state: {state}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let appended = appender.await.unwrap();
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
    eprintln!(
        "(d) consistent read of one partition ({streams} partitions) under a steady append load \
         ({appended} appends of one event, one every 2 ms), {rounds} reads: p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms",
        p(0.5),
        p(0.99),
        p(1.0)
    );
}

/// `counter` partitioned by `/id` over one event for each of
/// `HUME_BENCH_PARTITIONS` ids: time to build, RSS, restart.
async fn many(dir: &std::path::Path) {
    let count = env_or("HUME_BENCH_PARTITIONS", 100_000);
    let mut server = TestServer::start(dir.join("partitions"));
    let b = Bench::new(&server);
    let rss0 = rss_mib(server.pid().unwrap());
    let per_append = 1000u64;
    let mut i = 0u64;
    while i < count {
        let batch: Vec<Value> = (i..(i + per_append).min(count))
            .map(|id| json!({"kind": "tick", "data": {"id": format!("p{id}")}}))
            .collect();
        b.post("/streams/ticks", &json!({ "events": batch })).await;
        i += per_append;
    }
    let head = b.head().await;
    let t = Instant::now();
    b.deploy(
        "many",
        &b64(hume_tests::COUNTER_WASM),
        &["ticks"],
        json!({"partition_by": "/id"}),
    )
    .await;
    let s = caught_up(&b, head).await;
    eprintln!(
        "(d) {} partitions of counter (by /id, one event each) built in {:.2} s; RSS {:.0} MiB \
         (empty server: {rss0:.0} MiB)",
        s["partitions"]["count"],
        t.elapsed().as_secs_f64(),
        rss_mib(server.pid().unwrap())
    );
    let t = Instant::now();
    server.stop();
    eprintln!("(d) clean shutdown: {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    server.restart();
    let listening = t.elapsed();
    let b = Bench::new(&server);
    caught_up(&b, head).await;
    let last = format!("p{}", count - 1);
    let state = b
        .get(&format!("/projections/many/state?partition={last}"))
        .await;
    eprintln!(
        "(d) restart: listening after {:.2} s, all {count} partitions loaded from their snapshots \
         and one read after {:.2} s; RSS {:.0} MiB",
        listening.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        rss_mib(server.pid().unwrap())
    );
    assert_eq!(state, json!({"tick": 1}), "partition {last}");
}

/// The status of `many` once it has folded up to `head` and is running.
async fn caught_up(b: &Bench, head: u64) -> Value {
    loop {
        let s = b.get("/projections/many").await;
        if s["offset"].as_u64() == Some(head) && s["state"] == "running" {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
