//! Cluster mode on three NATS servers (`HUME_LOG` at R3): one server is
//! killed with SIGKILL while several clients append through a Hume node
//! with expected revisions. Every append Hume acknowledged is in the log
//! exactly once afterwards, with contiguous revisions per stream; appends
//! that failed during the election failed with a server error (never a
//! success that was not stored, never a wrong revision); and appends go
//! through again once JetStream has a leader.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use hume_tests::nats::NatsCluster;
use hume_tests::server::TestServer;
use serde_json::{json, Value};

/// Concurrent appenders, one stream each.
const APPENDERS: usize = 6;
/// Acknowledged appends (in all) before the kill.
const BEFORE_KILL: usize = 60;
/// Acknowledged appends each appender needs after the kill.
const AFTER_KILL: usize = 15;
/// Resumption bound: every appender has its appends through within this.
const RESUME_BOUND: Duration = Duration::from_secs(60);

/// What one appender saw.
#[derive(Debug, Default)]
struct Outcome {
    /// Acknowledged appends: event id → the revision Hume answered.
    acked: BTreeMap<String, u64>,
    /// Appends whose outcome is unknown (504: sent, not acknowledged): each
    /// batch may or may not be in the log, as a whole.
    unknown: Vec<Vec<String>>,
    /// Appends refused with 503 (no leader): none of them is in the log.
    refused: Vec<Vec<String>>,
    /// Server errors seen (status, message).
    errors: Vec<(u16, String)>,
    acked_after_kill: usize,
}

/// The event ids of `stream` in revision order, read through the node.
async fn read_stream(http: &reqwest::Client, url: &str, stream: &str) -> Vec<(u64, String)> {
    crate::pages::read_pages(http, |from| {
        format!("{url}/streams/{stream}?from_revision={from}&limit=500")
    })
    .await
    .iter()
    .map(|e| {
        (
            e["revision"].as_u64().unwrap(),
            e["data"]["id"].as_str().unwrap().to_string(),
        )
    })
    .collect()
}

/// Append events one at a time to `stream`, each with the expected
/// revision of the last one; after a server error, read the stream to
/// learn whether the event got in, and carry on from what is there.
async fn appender(
    http: reqwest::Client,
    url: String,
    stream: String,
    acked_total: Arc<AtomicUsize>,
    killed_flag: Arc<std::sync::atomic::AtomicBool>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut revision = 0u64;
    let mut n = 0;
    let started = Instant::now();
    while out.acked_after_kill < AFTER_KILL {
        assert!(
            started.elapsed() < RESUME_BOUND + Duration::from_secs(60),
            "{stream}: appends did not resume: {} acknowledged after the kill; errors {:?}",
            out.acked_after_kill,
            out.errors.iter().rev().take(5).collect::<Vec<_>>()
        );
        n += 1;
        // One to three events per append: several are one atomic batch.
        let ids: Vec<String> = (0..1 + n % 3)
            .map(|j| format!("{stream}/{n}.{j}"))
            .collect();
        let expected = if revision == 0 {
            json!("no_stream")
        } else {
            json!(revision)
        };
        let events: Vec<Value> = ids
            .iter()
            .map(|id| json!({"kind": "e", "data": {"id": id}}))
            .collect();
        let body = json!({"events": events, "expected_revision": expected});
        let sent = http
            .post(format!("{url}/streams/{stream}"))
            .json(&body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => panic!("{stream}: the node did not answer an append: {e}"),
        };
        let status = resp.status().as_u16();
        let retry_after = resp.headers().contains_key("retry-after");
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        match status {
            200 => {
                let got = v["revision"].as_u64().unwrap();
                assert_eq!(
                    got,
                    revision + ids.len() as u64,
                    "{stream}: acknowledged at {v}"
                );
                for (id, r) in ids.into_iter().zip(revision + 1..) {
                    out.acked.insert(id, r);
                }
                revision = got;
                acked_total.fetch_add(1, Ordering::SeqCst);
                if killed_flag.load(Ordering::SeqCst) {
                    out.acked_after_kill += 1;
                }
            }
            // Only this appender writes here: a conflict means an append
            // whose outcome was unknown got in after all.
            409 => {
                assert!(
                    !out.unknown.is_empty(),
                    "{stream}: a conflict, yet only this appender writes here: {v}"
                );
                let current = v["current_revision"].as_u64().unwrap();
                assert!(current > revision, "{stream}: went back to {current}");
                revision = current;
            }
            // During the election: refused (nothing written, ask again)
            // or not acknowledged (outcome unknown); never a bare 500.
            503 | 504 => {
                let message = v["error"].as_str().unwrap_or_default().to_string();
                if status == 503 {
                    assert!(retry_after, "{stream}: a 503 without Retry-After: {v}");
                    assert!(message.contains("nothing was written"), "{stream}: {v}");
                    out.refused.push(ids);
                } else {
                    assert!(message.contains("may or may not be"), "{stream}: {v}");
                    out.unknown.push(ids);
                }
                out.errors.push((status, message));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => panic!("{stream}: unexpected answer {status} {v}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_nats_server_of_three_loses_no_acknowledged_append() {
    let mut cluster = tokio::task::spawn_blocking(|| NatsCluster::start(3))
        .await
        .unwrap();
    let dir = hume_tests::temp_dir();
    let urls = cluster.urls_arg();
    let data = dir.path().join("a");
    let node = tokio::task::spawn_blocking(move || {
        TestServer::start_with(data, &["--cluster", &urls, "--node-id", "a"])
    })
    .await
    .unwrap();
    let url = node.url().to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // Three servers: the log is replicated on all three.
    let addrs: Vec<async_nats::ServerAddr> =
        cluster.urls().iter().map(|u| u.parse().unwrap()).collect();
    let js = jetstream::new(async_nats::connect(addrs.as_slice()).await.unwrap());
    let mut log = js.get_stream("HUME_LOG").await.unwrap();
    let info = log.info().await.unwrap();
    assert_eq!(
        info.config.num_replicas, 3,
        "HUME_LOG is R3 on three servers"
    );

    let acked_total = Arc::new(AtomicUsize::new(0));
    let killed_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = (0..APPENDERS)
        .map(|i| {
            tokio::spawn(appender(
                http.clone(),
                url.clone(),
                format!("account-{i}"),
                acked_total.clone(),
                killed_flag.clone(),
            ))
        })
        .collect();

    while acked_total.load(Ordering::SeqCst) < BEFORE_KILL {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Kill the stream's leader mid-way: the worst server to lose.
    let leader = log
        .info()
        .await
        .unwrap()
        .cluster
        .clone()
        .unwrap()
        .leader
        .unwrap();
    cluster.kill9(&leader);
    killed_flag.store(true, Ordering::SeqCst);
    let killed_at = Instant::now();

    let mut outcomes = BTreeMap::new();
    for (i, t) in tasks.into_iter().enumerate() {
        outcomes.insert(format!("account-{i}"), t.await.unwrap());
    }
    let resumed_in = killed_at.elapsed();
    assert!(
        resumed_in < RESUME_BOUND,
        "appends took {resumed_in:?} to resume"
    );

    // The log: contiguous revisions per stream, each event once, every
    // acknowledged event at the revision Hume answered.
    let mut all_ids: HashMap<String, u64> = HashMap::new();
    let mut last_position = 0;
    let all = crate::pages::read_pages(&http, |from| {
        format!("{url}/all?from_position={from}&limit=1000")
    })
    .await;
    for e in &all {
        let position = e["position"].as_u64().unwrap();
        assert!(position > last_position, "positions increase: {e}");
        last_position = position;
        let id = e["data"]["id"].as_str().unwrap().to_string();
        let previous = all_ids.insert(id.clone(), e["revision"].as_u64().unwrap());
        assert!(previous.is_none(), "{id} is in the log twice");
    }
    let mut errors = 0;
    for (stream, out) in &outcomes {
        let events = read_stream(&http, &url, stream).await;
        let revisions: Vec<u64> = events.iter().map(|(r, _)| *r).collect();
        let want: Vec<u64> = (1..=events.len() as u64).collect();
        assert_eq!(revisions, want, "{stream}: revisions are contiguous");
        for (id, revision) in &out.acked {
            assert_eq!(
                all_ids.get(id),
                Some(revision),
                "{stream}: acknowledged {id} at revision {revision}"
            );
        }
        for (_, id) in &events {
            assert!(
                out.acked.contains_key(id) || out.unknown.iter().flatten().any(|u| u == id),
                "{stream}: {id} is in the log but was neither acknowledged nor failed"
            );
        }
        for batch in &out.refused {
            assert!(
                batch.iter().all(|id| !all_ids.contains_key(id)),
                "{stream}: the append refused with 503 {batch:?} is in the log"
            );
        }
        for batch in &out.unknown {
            let stored = batch.iter().filter(|id| all_ids.contains_key(*id)).count();
            assert!(
                stored == 0 || stored == batch.len(),
                "{stream}: {stored} of the failed batch {batch:?} are in the log (all or none)"
            );
        }
        errors += out.errors.len();
        for (status, message) in &out.errors {
            eprintln!("{stream}: {status} {message}");
        }
    }
    eprintln!(
        "killed {leader} (the HUME_LOG leader) after {BEFORE_KILL} appends; appends resumed, \
         {AFTER_KILL} more each within {resumed_in:?}; {errors} errors; {} events in all",
        all_ids.len()
    );

    // Appends go through again, and the restarted server catches up.
    let r = http
        .post(format!("{url}/streams/after"))
        .json(&json!({"events": [{"kind": "e", "data": {"id": "after/1"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    tokio::task::spawn_blocking(move || {
        cluster.restart(&leader);
        cluster.wait_meta_leader(Duration::from_secs(30));
        cluster
    })
    .await
    .unwrap();
    drop(node);
}

/// A node started while JetStream has no leader (two of three servers
/// down: no quorum) waits for one instead of exiting, says so in its log,
/// and comes up once the servers are back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_while_jetstream_has_no_leader_waits_for_one() {
    let mut cluster = tokio::task::spawn_blocking(|| NatsCluster::start(3))
        .await
        .unwrap();
    // Find (or build) the binary now, so the node starts when asked.
    tokio::task::spawn_blocking(hume_tests::hume_bin)
        .await
        .unwrap();
    cluster.kill9("n2");
    cluster.kill9("n3");
    // n1 alone notices it has lost its quorum.
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.meta_leader().is_some() {
        assert!(Instant::now() < deadline, "n1 still sees a meta leader");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dir = hume_tests::temp_dir();
    // n1's URL only: the node reaches a server at once, and waits on
    // JetStream, not on the connection.
    let urls = cluster.urls()[0].clone();
    let data = dir.path().join("a");
    let starting = tokio::task::spawn_blocking(move || {
        TestServer::try_start(data, &["--cluster", &urls, "--node-id", "a"])
    });
    // Longer than a JetStream request's timeout (5 s): a node that gave up
    // at its first failure has exited by now.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(
        !starting.is_finished(),
        "the node stopped waiting for a JetStream leader: {:?}",
        starting.await.unwrap().err()
    );
    cluster.restart("n2");
    cluster.restart("n3");
    let node = starting.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        node.stderr().contains("JetStream is not ready"),
        "the node said nothing while it waited:\n{}",
        node.stderr()
    );
    let r = reqwest::Client::new()
        .post(format!("{}/streams/late-1", node.url()))
        .json(&json!({"events": [{"kind": "e", "data": {}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Created once all three were back: replicated on all three.
    let addrs: Vec<async_nats::ServerAddr> =
        cluster.urls().iter().map(|u| u.parse().unwrap()).collect();
    let js = jetstream::new(async_nats::connect(addrs.as_slice()).await.unwrap());
    let info = js
        .get_stream("HUME_LOG")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.config.num_replicas, 3, "HUME_LOG is R3");
}
