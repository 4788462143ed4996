//! Crash safety: `hume serve` is killed with SIGKILL while concurrent
//! appenders are mid-flight, restarted on the same data directory, and the
//! log is checked: every acknowledged event is there at its acknowledged
//! position, positions are dense from 1 to the head, revisions are dense
//! per stream, and every batch is all-or-nothing.
//!
//! 20 kill points by default; set `HUME_CRASH_ROUNDS=300` for a soak.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hume_tests::server::TestServer;
use serde_json::{json, Value};

/// One acknowledged append.
#[derive(Debug, Clone)]
struct Ack {
    batch: u64,
    stream: String,
    first: u64,
    last: u64,
    revision: u64,
    n: u64,
}

async fn read_all(url: &str) -> Vec<Value> {
    crate::pages::read_pages(&reqwest::Client::new(), |from| {
        format!("{url}/all?from_position={from}&limit=10000")
    })
    .await
}

fn check(events: &[Value], head: u64, acks: &[Ack]) {
    assert_eq!(
        events.len() as u64,
        head,
        "every position up to the head is readable"
    );
    let mut revisions: HashMap<String, u64> = HashMap::new();
    let mut batches: BTreeMap<u64, Vec<(u64, u64, u64)>> = BTreeMap::new(); // batch -> (pos, i, n)
    for (idx, e) in events.iter().enumerate() {
        let pos = e["position"].as_u64().unwrap();
        assert_eq!(pos, idx as u64 + 1, "positions are dense from 1");
        let stream = e["stream"].as_str().unwrap().to_string();
        let rev = e["revision"].as_u64().unwrap();
        let prev = revisions.insert(stream.clone(), rev).unwrap_or(0);
        assert_eq!(
            rev,
            prev + 1,
            "revisions of {stream} are dense (position {pos})"
        );
        let d = &e["data"];
        batches
            .entry(d["batch"].as_u64().unwrap())
            .or_default()
            .push((pos, d["i"].as_u64().unwrap(), d["n"].as_u64().unwrap()));
    }
    for (batch, members) in &batches {
        let n = members[0].2;
        assert_eq!(
            members.len() as u64,
            n,
            "batch {batch} is whole: {members:?}"
        );
        for (k, (pos, i, _)) in members.iter().enumerate() {
            assert_eq!(*i, k as u64, "batch {batch} in order");
            assert_eq!(*pos, members[0].0 + k as u64, "batch {batch} contiguous");
        }
    }
    for ack in acks {
        let members = batches
            .get(&ack.batch)
            .unwrap_or_else(|| panic!("acknowledged batch {ack:?} is missing"));
        assert_eq!(members.len() as u64, ack.n);
        assert_eq!(members[0].0, ack.first, "acknowledged position of {ack:?}");
        assert_eq!(members[members.len() - 1].0, ack.last);
        let last = &events[(ack.last - 1) as usize];
        assert_eq!(last["stream"], ack.stream.as_str());
        assert_eq!(last["revision"], ack.revision);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_appends_survive_sigkill() {
    let rounds: u64 = std::env::var("HUME_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let next_batch = Arc::new(AtomicU64::new(0));
    let mut acks: Vec<Ack> = Vec::new();
    for round in 0..rounds {
        let url = server.url().to_string();
        // Kill points vary: after 1 to 40 acknowledged appends of this round.
        let kill_after = 1 + (round * 17 + 3) % 40;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Ack>();
        let mut tasks = Vec::new();
        for w in 0..8u64 {
            let (tx, url, next_batch) = (tx.clone(), url.clone(), next_batch.clone());
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut k = 0u64;
                loop {
                    let batch = next_batch.fetch_add(1, Ordering::SeqCst);
                    let n = 1 + (batch + w) % 4;
                    let stream = format!("s-{}", (w + k) % 3);
                    k += 1;
                    let events: Vec<Value> = (0..n)
                        .map(|i| json!({"kind": "e", "data": {"batch": batch, "i": i, "n": n}}))
                        .collect();
                    let Ok(r) = http
                        .post(format!("{url}/streams/{stream}"))
                        .json(&json!({"events": events}))
                        .send()
                        .await
                    else {
                        return; // server gone
                    };
                    if r.status() != 200 {
                        return;
                    }
                    let Ok(o) = r.json::<Value>().await else {
                        return; // killed before the body arrived: not acknowledged
                    };
                    let _ = tx.send(Ack {
                        batch,
                        stream,
                        first: o["first_position"].as_u64().unwrap(),
                        last: o["last_position"].as_u64().unwrap(),
                        revision: o["revision"].as_u64().unwrap(),
                        n,
                    });
                }
            }));
        }
        drop(tx);
        let mut seen = 0;
        while seen < kill_after {
            match rx.recv().await {
                Some(ack) => {
                    acks.push(ack);
                    seen += 1;
                }
                None => panic!(
                    "appenders stopped before the kill point:\n{}",
                    server.stderr()
                ),
            }
        }
        server.kill9();
        for t in tasks {
            t.await.unwrap();
        }
        // Appends whose answer arrived before the kill are acknowledged too.
        while let Ok(ack) = rx.try_recv() {
            acks.push(ack);
        }
        server.restart();
        let url = server.url().to_string();
        let events = read_all(&url).await;
        let head: Value = reqwest::get(format!("{url}/health"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        check(&events, head["head"].as_u64().unwrap(), &acks);
    }
    assert!(acks.len() as u64 >= rounds);
}
