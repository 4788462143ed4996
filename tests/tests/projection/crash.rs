//! kill -9 of a real `hume serve` while events are appended and projections
//! run, at many points (20 per run; `HUME_CRASH_POINTS=N` for soak runs):
//! after each restart no projection's offset is below its last persisted
//! snapshot from before the kill, and once caught up every projection's
//! state and offset equal the offline `hume replay` of the same plugin over
//! the log as it stands then.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::common::{cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::{COUNTER_WASM, KV_WASM};
use serde_json::{json, Value};

/// One projection under test: name, plugin, streams, options, and how to
/// replay it offline (`hume read` source, replay flags).
type Case = (
    &'static str,
    &'static str,
    Vec<&'static str>,
    Value,
    Vec<&'static str>,
    Vec<&'static str>,
);

/// The projections under test.
fn projections() -> Vec<Case> {
    vec![
        (
            "kv",
            KV_WASM,
            vec!["kv-*"],
            json!({"snapshot_every": 7, "snapshot_after_ms": 50}),
            vec!["--category", "kv-"],
            vec![],
        ),
        (
            "counter",
            COUNTER_WASM,
            vec!["*"],
            json!({"snapshot_every": 13, "snapshot_after_ms": 0, "batch_size": 5}),
            vec!["--all"],
            vec![],
        ),
        (
            "lax",
            KV_WASM,
            vec!["*"],
            json!({"strict": false, "snapshot_every": 3}),
            vec!["--all"],
            vec!["--no-strict"],
        ),
    ]
}

/// Kill points of this run (acknowledged appends before the kill):
/// `HUME_CRASH_POINTS` of them (default 20), the first two at the edges (1
/// and 0), the rest spread over 0..=80 by a fixed xorshift sequence.
fn kill_points() -> Vec<u64> {
    let count: usize = match std::env::var("HUME_CRASH_POINTS") {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            panic!("HUME_CRASH_POINTS={v:?}: expected a number of kill points, e.g. 200")
        }),
        Err(_) => 20,
    };
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    (0..count)
        .map(|i| match i {
            0 => 1,
            1 => 0,
            _ => {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed % 81
            }
        })
        .collect()
}

/// `hume replay` of `events` (an NDJSON file) through `wasm` with `flags`,
/// compiled plugins cached in `cache`: the offline `{"offset", "state"}`.
fn replay(wasm: &str, events: &Path, flags: &[&str], cache: &Path) -> Value {
    let out = Command::new(hume_tests::hume_bin())
        .args(["replay", wasm, "--events"])
        .arg(events)
        .args(flags)
        .env("HUME_CACHE_DIR", cache)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run hume replay");
    assert!(
        out.status.success(),
        "hume replay {wasm} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("hume replay prints JSON")
}

/// Every projection, caught up, against `hume replay` over the log as it
/// stands (exported once with `hume read --all`; a `--category` source is
/// the same lines filtered by stream prefix).
async fn compare_with_replay(server: &TestServer, dir: &Path, round: usize) {
    let api = Api::new(server);
    let all = cli_ok(server, &["read", "--all"]);
    for (name, wasm, _, _, source, flags) in projections() {
        let lines: String = match source.as_slice() {
            ["--all"] => all.clone(),
            ["--category", prefix] => all
                .lines()
                .filter(|line| {
                    let event: Value = serde_json::from_str(line).expect("hume read prints JSON");
                    event["stream"].as_str().unwrap_or("").starts_with(prefix)
                })
                .map(|line| format!("{line}\n"))
                .collect(),
            other => panic!("unexpected source {other:?}"),
        };
        let file = dir.join(format!("{name}.ndjson"));
        std::fs::write(&file, lines).expect("write the events file");
        let offline = replay(wasm, &file, &flags, &dir.join("cache"));
        let live = api.snapshot(name).await;
        assert_eq!(
            live["state"], offline["state"],
            "round {round}: `{name}`: live state differs from `hume replay` of the log"
        );
        assert_eq!(
            live["offset"], offline["offset"],
            "round {round}: `{name}`: offsets differ"
        );
        let s = api.status(name).await;
        assert!(s["fault"].is_null(), "round {round}: {s}");
    }
}

/// Append events in a loop until the server goes away; counts acknowledged appends.
fn appender(url: String, acked: Arc<AtomicU64>, round: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        for i in 0u64.. {
            let (stream, body) = if i % 4 == 3 {
                (
                    "misc".to_string(),
                    json!({"events": [{"kind": "tick", "data": {}}]}),
                )
            } else {
                let events: Vec<Value> = (0..1 + i % 3)
                    .map(|j| json!({"kind": "add", "data": {"key": format!("k{}", (i + j) % 40), "value": [round, i, j]}}))
                    .collect();
                (format!("kv-{}", i % 5), json!({ "events": events }))
            };
            match http
                .post(format!("{url}/streams/{stream}"))
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                _ => return,
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_at_many_points_never_loses_or_rewinds_projection_state() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    for (name, wasm, streams, options, _, _) in projections() {
        api.deploy(name, wasm, &streams, options).await;
    }

    let kill_points = kill_points();
    for (round, &kill_after) in kill_points.iter().enumerate() {
        let acked = Arc::new(AtomicU64::new(0));
        let task = appender(server.url().to_string(), acked.clone(), round as u64);
        while acked.load(Ordering::SeqCst) < kill_after {
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // What each projection had persisted just before the kill.
        let api = Api::new(&server);
        let mut persisted = Vec::new();
        for (name, ..) in projections() {
            let s = api.status(name).await;
            persisted.push(s["last_snapshot"]["offset"].as_u64().unwrap_or(0));
        }
        server.kill9();
        task.await.unwrap();

        server.restart();
        let api = Api::new(&server);
        let head = api.get_ok("/health").await["head"].as_u64().unwrap();
        for ((name, ..), before) in projections().into_iter().zip(persisted) {
            let s = api
                .wait_status(name, "started", |s| s["state"] != "starting")
                .await;
            let offset = s["offset"].as_u64().unwrap();
            assert!(
                offset >= before,
                "round {round}: `{name}` restarted at offset {offset}, below its snapshot at {before} from before the kill"
            );
            assert!(
                offset <= head,
                "round {round}: `{name}` is past the log head {head}"
            );
        }
        // Caught up again (the snapshot read waits for the head), each
        // projection equals the offline replay of the log as it is now.
        compare_with_replay(&server, dir.path(), round).await;
    }

    let api = Api::new(&server);
    assert!(
        api.get_ok("/health").await["head"].as_u64().unwrap() > 100,
        "the test appended a fair amount"
    );
}
