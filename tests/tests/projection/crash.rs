//! kill -9 of a real `hume serve` while events are appended and projections
//! run, at many points: after each restart no projection's offset is below
//! its last persisted snapshot from before the kill, and at the end every
//! projection's state equals the offline `hume replay` of the same plugin
//! over the whole log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::common::{offline_replay, Api};
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

    let kill_points = [1u64, 9, 30, 4, 55, 17, 0, 80, 23, 41];
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
            // And it catches up again.
            let snap = api.snapshot(name).await;
            assert!(snap["offset"].as_u64().unwrap() >= offset);
        }
    }

    // At the end: live state == offline replay over the whole log.
    let api = Api::new(&server);
    for (name, wasm, _, _, source, flags) in projections() {
        let live = api.snapshot(name).await;
        let offline = offline_replay(&server, wasm, &source, dir.path(), &flags);
        assert_eq!(
            live["state"], offline["state"],
            "`{name}`: live state differs from replay"
        );
        assert_eq!(
            live["offset"], offline["offset"],
            "`{name}`: offsets differ"
        );
        let s = api.status(name).await;
        assert!(s["fault"].is_null(), "{s}");
    }
    assert!(
        api.get_ok("/health").await["head"].as_u64().unwrap() > 100,
        "the test appended a fair amount"
    );
}
