//! Live projection benchmarks against a real `hume serve` (release build),
//! in one run:
//!
//! - (a) rebuild: `kv` deployed over a log of 1,000,000 events, events/s
//!   until caught up, against the offline `hume replay` of the same events,
//!   with default options, with snapshot history off, and with snapshots
//!   every 100,000; then time travel on the default deployment: `state
//!   ?at=N` for 100 random N, p50/p99 latency;
//! - (b) append-to-visible latency: an acknowledged append followed by a
//!   consistent `state` read, p50/p99 over 10,000 rounds on loopback;
//! - (c) fan-out with hibernation: 100,000 `counter` projections (one
//!   stream each) at the default `--max-live-instances`, 10 events per
//!   stream (a hibernation-heavy load: nearly every event wakes a
//!   hibernated projection): events/s until all are caught up, failures,
//!   server RSS and memory mappings, the time to restart them all, and the
//!   append-to-visible latency of a hibernated projection (p50/p99).
//!
//! - (d) partitioned rebuild: see [`partitioned`].
//!
//! `cargo bench -p hume-tests --bench projection` runs all four. Sizes:
//! `HUME_BENCH_PARTS=a,b,c,d`, `HUME_BENCH_EVENTS` (a), `HUME_BENCH_ROUNDS`
//! (b), `HUME_BENCH_PROJECTIONS` and `HUME_BENCH_FANOUT_EVENTS` (c),
//! `HUME_BENCH_PARTITIONED_EVENTS` and `HUME_BENCH_PARTITIONED_STREAMS` (d).

#[path = "projection/partitioned.rs"]
mod partitioned;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hume_tests::server::TestServer;
use serde_json::{json, Value};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

struct Bench {
    url: String,
    http: reqwest::Client,
}

impl Bench {
    fn new(server: &TestServer) -> Bench {
        Bench {
            url: server.url().to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = r.status();
        let v: Value = r.json().await.expect("JSON answer");
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET");
        let status = r.status();
        let v: Value = r.json().await.expect("JSON answer");
        assert!(status.is_success(), "GET {path}: {status} {v}");
        v
    }

    async fn deploy(&self, name: &str, wasm_b64: &str, streams: &[&str], options: Value) {
        self.post(
            "/projections",
            &json!({"name": name, "plugin": wasm_b64, "streams": streams, "options": options}),
        )
        .await;
    }

    async fn head(&self) -> u64 {
        self.get("/health").await["head"].as_u64().unwrap()
    }
}

fn b64(path: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(hume_tests::read_wasm(path))
}

/// (a) rebuild of kv over a big log vs offline replay.
async fn rebuild(dir: &std::path::Path) {
    let events = env_or("HUME_BENCH_EVENTS", 1_000_000);
    let server = TestServer::start(dir.join("rebuild"));
    let b = Arc::new(Bench::new(&server));
    let t = Instant::now();
    let per_append = 1000u64;
    let mut tasks = Vec::new();
    let workers = 4u64;
    for w in 0..workers {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while n * per_append < events {
                let batch: Vec<Value> = (0..per_append)
                    .map(|i| {
                        let k = (n * per_append + i) * 7919 % 10_000;
                        json!({"kind": "add", "data": {"key": format!("key-{k:05}"), "value": {"n": i, "tag": format!("item-{n:08}")}}})
                    })
                    .collect();
                b.post(&format!("/streams/kv-{}", n % 100), &json!({ "events": batch }))
                    .await;
                n += workers;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let head = b.head().await;
    eprintln!(
        "(a) appended {head} events in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Offline baseline: `hume replay` over the same events, exported.
    let file = dir.join("kv-events.ndjson");
    let out = Command::new(hume_tests::hume_bin())
        .args(["read", "--category", "kv-"])
        .env("HUME_URL", server.url())
        .output()
        .expect("hume read");
    assert!(out.status.success());
    std::fs::write(&file, &out.stdout).unwrap();
    // Warm the compiled-plugin cache, then time the replay.
    let cache = dir.join("replay-cache");
    let replay = |file: &std::path::Path| {
        let t = Instant::now();
        let out = Command::new(hume_tests::hume_bin())
            .args(["replay", hume_tests::KV_WASM, "--events"])
            .arg(file)
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .expect("hume replay");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (t.elapsed(), out.stdout)
    };
    let small = dir.join("one.ndjson");
    std::fs::write(&small, out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    replay(&small);
    let (offline, offline_out) = replay(&file);
    let offline_rate = head as f64 / offline.as_secs_f64();
    eprintln!(
        "(a) offline `hume replay` of {head} events: {:.2} s = {:.0} events/s (process wall time, incl. reading the NDJSON file)",
        offline.as_secs_f64(),
        offline_rate
    );
    let offline_snap: Value = serde_json::from_slice(&offline_out).unwrap();

    let kv = b64(hume_tests::KV_WASM);
    // History on (the default) and off alternate, three rounds, so the
    // ratio between them holds on a noisy machine; then one with rare
    // snapshots.
    let on = "default options (snapshot every 100, history 8:100000)";
    let off = "default options, snapshot history off";
    let mut runs: Vec<(&str, Value)> = Vec::new();
    for _ in 0..3 {
        runs.push((on, json!({})));
        runs.push((off, json!({"snapshot_history": "off"})));
    }
    runs.push(("snapshot every 100,000", json!({"snapshot_every": 100_000})));
    let mut seconds: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for (round, (label, options)) in runs.into_iter().enumerate() {
        let name = format!("kv-{round}");
        let t = Instant::now();
        let default_options = options == json!({});
        b.deploy(&name, &kv, &["kv-*"], options).await;
        loop {
            let s = b.get(&format!("/projections/{name}")).await;
            if s["offset"].as_u64() == Some(head) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = t.elapsed();
        seconds.entry(label).or_default().push(took.as_secs_f64());
        let rate = head as f64 / took.as_secs_f64();
        eprintln!(
            "(a) live rebuild, {label}: {:.2} s = {:.0} events/s = {:.2}x offline",
            took.as_secs_f64(),
            rate,
            rate / offline_rate
        );
        let live = b.get(&format!("/projections/{name}/snapshot")).await;
        assert_eq!(live["state"], offline_snap["state"], "live == offline");
        if default_options && round == 0 {
            travel_latency(&b, &name, head).await;
        }
        b.http
            .delete(format!("{}/projections/{name}", b.url))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
    }
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (t_on, t_off) = (median(&seconds[on]), median(&seconds[off]));
    eprintln!(
        "(a) median of 3: history on {t_on:.2} s ({:.2}x offline), off {t_off:.2} s ({:.2}x offline): history costs {:+.1}%",
        offline.as_secs_f64() / t_on,
        offline.as_secs_f64() / t_off,
        (t_on / t_off - 1.0) * 100.0
    );
}

/// (a') `state?at=N` for 100 random N: latency, and how far each replayed.
async fn travel_latency(b: &Bench, name: &str, head: u64) {
    let listing = b.get(&format!("/projections/{name}/snapshots")).await;
    let kept = listing["snapshots"].as_array().map_or(0, |s| s.len());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut took = Vec::new();
    let mut replayed = Vec::new();
    for _ in 0..100 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = 1 + x % head;
        let t = Instant::now();
        let v = b
            .get(&format!("/projections/{name}/snapshot?at={at}"))
            .await;
        took.push(t.elapsed());
        replayed.push(v["replayed"].as_u64().unwrap_or(0));
    }
    took.sort();
    replayed.sort();
    let pct = |p: usize| took[(took.len() * p / 100).min(took.len() - 1)];
    eprintln!(
        "(a') time travel on {name} ({kept} snapshots kept, history {}): state?at=N for 100 random N: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; events replayed p50 {}, max {}",
        listing["retention"],
        pct(50).as_secs_f64() * 1000.0,
        pct(99).as_secs_f64() * 1000.0,
        took.last().unwrap().as_secs_f64() * 1000.0,
        replayed[replayed.len() / 2],
        replayed.last().unwrap()
    );
}

/// (b) append → consistent read latency.
async fn latency(dir: &std::path::Path) {
    let rounds = env_or("HUME_BENCH_ROUNDS", 10_000);
    let server = TestServer::start(dir.join("latency"));
    let b = Bench::new(&server);
    b.deploy("kv", &b64(hume_tests::KV_WASM), &["kv"], json!({}))
        .await;
    let mut samples = Vec::with_capacity(rounds as usize);
    let mut appends = Vec::with_capacity(rounds as usize);
    let mut reads = Vec::with_capacity(rounds as usize);
    for i in 0..rounds + 100 {
        let key = format!("k{}", i % 100);
        let t = Instant::now();
        b.post(
            "/streams/kv",
            &json!({"events": [{"kind": "add", "data": {"key": key, "value": i}}]}),
        )
        .await;
        let acked = t.elapsed();
        let state = b.get("/projections/kv/state").await;
        let took = t.elapsed();
        assert_eq!(state[&key], i, "visible");
        if i >= 100 {
            samples.push(took);
            appends.push(acked);
            reads.push(took - acked);
        }
    }
    for (label, mut v) in [
        ("append + consistent read", samples),
        ("  of which the append (fsync)", appends),
        ("  of which the consistent read", reads),
    ] {
        v.sort();
        let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
        eprintln!(
            "(b) {label} over {rounds} rounds: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            p(0.5),
            p(0.99),
            p(1.0)
        );
    }
}

/// (c) many projections.
async fn fanout(dir: &std::path::Path) {
    let count = env_or("HUME_BENCH_PROJECTIONS", 100_000);
    let events = env_or("HUME_BENCH_FANOUT_EVENTS", count * 10);
    let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap_or_default();
    eprintln!("(c) vm.max_map_count = {}", max_map_count.trim());
    let mut server = TestServer::start(dir.join("fanout"));
    let b = Arc::new(Bench::new(&server));
    let counter = Arc::new(b64(hume_tests::COUNTER_WASM));
    let rss0 = rss_mib(server.pid().unwrap());
    let t = Instant::now();
    let mut tasks = Vec::new();
    let workers = 8;
    for w in 0..workers {
        let (b, counter) = (b.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < count {
                b.deploy(&format!("c{i}"), &counter, &[&format!("c-{i}")], json!({}))
                    .await;
                i += workers;
            }
        }));
    }
    for t in tasks.drain(..) {
        t.await.unwrap();
    }
    eprintln!(
        "(c) deployed {count} counter projections in {:.1} s; RSS {:.0} MiB (empty server: {rss0:.0} MiB)",
        t.elapsed().as_secs_f64(),
        rss_mib(server.pid().unwrap())
    );

    let t = Instant::now();
    let per = (events / count).max(1);
    for w in 0..workers {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < count {
                let batch: Vec<Value> = (0..per)
                    .map(|_| json!({"kind": "tick", "data": {}}))
                    .collect();
                b.post(&format!("/streams/c-{i}"), &json!({ "events": batch }))
                    .await;
                i += workers;
            }
        }));
    }
    for t in tasks.drain(..) {
        t.await.unwrap();
    }
    let appended = t.elapsed();
    let head = b.head().await;
    let caught_up = |b: Arc<Bench>| async move {
        loop {
            // The summary, not the listing: at 100,000 projections the
            // listing is tens of megabytes the server would serialise (and
            // this bench parse) every 200 ms, slowing what it measures.
            let s = b.get("/projections?summary=true").await;
            let (total, at_head) = (s["total"].as_u64(), s["at_head"].as_u64());
            if total == Some(count) && at_head == Some(count) {
                return;
            }
            let faulted = s["by_state"]["faulted"].as_u64().unwrap_or(0);
            let behind = s["behind"].as_u64().unwrap_or(u64::MAX);
            if faulted > 0 && behind == 0 {
                let all = b.get("/projections").await;
                let list = all["projections"].as_array().unwrap();
                let first = list.iter().find(|s| s["state"] == "faulted").unwrap();
                eprintln!(
                    "(c) {faulted} projections FAULTED, e.g. {}: {}",
                    first["name"], first["fault"]["error"]
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    caught_up(b.clone()).await;
    let took = t.elapsed().as_secs_f64();
    eprintln!(
        "(c) {head} events appended in {:.1} s; all {count} projections caught up after {took:.1} s \
         ({:.0} events/s); RSS {:.0} MiB; {} memory mappings; {}",
        appended.as_secs_f64(),
        head as f64 / took,
        rss_mib(server.pid().unwrap()),
        mappings(server.pid().unwrap()),
        live_summary(&b).await,
    );
    let sample = b.get("/projections/c0/state").await;
    assert_eq!(sample, json!({"tick": per}));

    let t = Instant::now();
    server.stop();
    eprintln!(
        "(c) clean shutdown with {count} final snapshots: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    server.restart();
    let b = Arc::new(Bench::new(&server));
    let listening = t.elapsed();
    caught_up(b.clone()).await;
    eprintln!(
        "(c) restart: listening after {:.2} s, all {count} projections running from their snapshots after {:.2} s; RSS {:.0} MiB",
        listening.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        rss_mib(server.pid().unwrap())
    );
    assert_eq!(b.get("/projections/c1/state").await, json!({"tick": per}));
    eprintln!("(c) after the restart: {}", live_summary(&b).await);

    // Append-to-visible for hibernated projections: one event to a random
    // stream, then a consistent read of its projection.
    let mut v = Vec::new();
    let mut seed = 0x9e37_79b9_u64;
    let mut woken = 0;
    for round in 0..1000u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let i = seed % count;
        let was = b.get(&format!("/projections/c{i}")).await["state"] == "hibernated";
        woken += u64::from(was);
        let t = Instant::now();
        b.post(
            &format!("/streams/c-{i}"),
            &json!({"events": [{"kind": "tick", "data": {"round": round}}]}),
        )
        .await;
        let state = b.get(&format!("/projections/c{i}/state")).await;
        v.push(t.elapsed());
        assert!(state["tick"].as_u64().unwrap() > per, "visible");
    }
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
    eprintln!(
        "(c) append + consistent read of a random projection over 1000 rounds ({woken} were hibernated): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        p(0.5),
        p(0.99),
        p(1.0)
    );
}

/// Memory mappings (VMAs) of a process.
fn mappings(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|m| m.lines().count())
        .unwrap_or(0)
}

/// Live instances, hibernated and faulted projections.
async fn live_summary(b: &Bench) -> String {
    let s = b.get("/projections?summary=true").await;
    let count = |state: &str| s["by_state"][state].as_u64().unwrap_or(0);
    format!(
        "{} running (live), {} hibernated, {} faulted, {} other",
        count("running"),
        count("hibernated"),
        count("faulted"),
        s["total"].as_u64().unwrap_or(0)
            - count("running")
            - count("hibernated")
            - count("faulted"),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with no
    // arguments: do nothing then (this is a benchmark, not a test).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let parts = std::env::var("HUME_BENCH_PARTS").unwrap_or_else(|_| "a,b,c,d".into());
    // HUME_BENCH_DIR keeps the data directories (and the servers' logs).
    let temp = hume_tests::temp_dir();
    let dir = match std::env::var_os("HUME_BENCH_DIR") {
        Some(d) => {
            let d = std::path::PathBuf::from(d);
            std::fs::create_dir_all(&d).unwrap();
            tempfile::Builder::new()
                .prefix("run-")
                .tempdir_in(&d)
                .unwrap()
                .keep()
        }
        None => temp.path().to_path_buf(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if parts.contains('a') {
            rebuild(&dir).await;
        }
        if parts.contains('b') {
            latency(&dir).await;
        }
        if parts.contains('c') {
            fanout(&dir).await;
        }
        if parts.contains('d') {
            partitioned::partitioned(&dir).await;
        }
    });
}
