//! Several `hume serve --cluster` nodes on one JetStream: projections
//! spread over the nodes, fail over when a node dies, and a paused node
//! that lost its leases writes nothing for them when it wakes.
//!
//! Leases live 2 s here (`--lease-ttl 2000`), so a projection of a dead
//! node runs again elsewhere within about 3 s.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{offline_replay, Api};
use hume_tests::nats::NatsServer;
use hume_tests::server::TestServer;
use hume_tests::{BANK_WASM, COUNTER_WASM, KV_WASM};
use serde_json::{json, Value};

pub(crate) const TTL_MS: u64 = 2000;
/// A dead node's projections run elsewhere within this.
const FAILOVER_BOUND: Duration = Duration::from_secs(10);

/// Start a node named `id` on `nats`.
pub(crate) fn node(nats: &NatsServer, dir: &std::path::Path, id: &str) -> TestServer {
    let ttl = TTL_MS.to_string();
    TestServer::start_with(
        dir.join(id),
        &[
            "--cluster",
            nats.url(),
            "--node-id",
            id,
            "--lease-ttl",
            &ttl,
        ],
    )
}

fn signal(server: &TestServer, sig: &str) {
    let pid = server.pid().expect("running").to_string();
    assert!(Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success());
}

/// The projections each node (by index, among `live`) runs now.
async fn running(apis: &[Api], live: &[usize]) -> BTreeMap<usize, Vec<String>> {
    let mut out = BTreeMap::new();
    for &i in live {
        let (code, v) = apis[i].get("/projections?local=true").await;
        assert_eq!(code, 200, "{v}");
        let names = v["projections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        out.insert(i, names);
    }
    out
}

/// Wait until every one of `names` runs on exactly one of the `live`
/// nodes, spread within one of each other; the owner of each.
pub(crate) async fn wait_spread(
    apis: &[Api],
    live: &[usize],
    names: &[String],
) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = running(apis, live).await;
        let mut owner = BTreeMap::new();
        let mut twice = false;
        for (i, ps) in &now {
            for p in ps {
                twice |= owner.insert(p.clone(), *i).is_some();
            }
        }
        let counts: Vec<usize> = now.values().map(Vec::len).collect();
        let even = counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1;
        if !twice && even && names.iter().all(|n| owner.contains_key(n)) {
            return owner;
        }
        assert!(
            Instant::now() < deadline,
            "projections not spread over nodes {live:?} within 60 s: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deploy kv, counter and bank projections (`per` of each) through `api`.
async fn deploy_all(
    api: &Api,
    per: usize,
    options: Value,
) -> Vec<(String, &'static str, &'static str)> {
    let mut out = Vec::new();
    for i in 0..per {
        for (plugin, wasm, streams, category) in [
            ("kv", KV_WASM, "kv-*", "kv-"),
            ("counter", COUNTER_WASM, "account-*", "account-"),
            ("bank", BANK_WASM, "account-*", "account-"),
        ] {
            let name = format!("{plugin}-{i}");
            api.deploy(&name, wasm, &[streams], options.clone()).await;
            out.push((name, wasm, category));
        }
    }
    out
}

/// Append batch `i` of the load (a kv add and a bank deposit).
async fn append_some(api: &Api, i: u64) -> bool {
    let kv =
        json!({"events": [{"kind": "add", "data": {"key": format!("k{}", i % 7), "value": i}}]});
    let acc = format!("{}", i % 3);
    let kind = if i < 3 { "opened" } else { "deposited" };
    let bank = json!({"events": [{"kind": kind, "data": {"account": acc, "amount": 1}}]});
    let a = api.post(&format!("/streams/kv-{}", i % 3), kv).await.0;
    let b = api.post(&format!("/streams/account-{acc}"), bank).await.0;
    a == 200 && b == 200
}

/// Wait until `name` on `api` has scanned up to `head`.
async fn caught_up(api: &Api, name: &str, head: u64) -> Value {
    api.wait_status(name, "caught up", |s| s["scanned"].as_u64() == Some(head))
        .await
}

/// Each projection's state equals `hume replay` of its plugin over the log.
async fn states_match_replay(
    server: &TestServer,
    apis: &[Api],
    owner: &BTreeMap<String, usize>,
    deployed: &[(String, &'static str, &'static str)],
    dir: &std::path::Path,
) {
    // Each node learns the log's head by polling JetStream: the largest
    // any node knows, once they had time to look, is the log's.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut head = 0;
    for i in owner.values().collect::<std::collections::BTreeSet<_>>() {
        head = head.max(apis[*i].get_ok("/health").await["head"].as_u64().unwrap());
    }
    let mut replays: BTreeMap<&str, Value> = BTreeMap::new();
    for (name, wasm, category) in deployed {
        let api = &apis[owner[name]];
        caught_up(api, name, head).await;
        let replay = replays
            .entry(wasm)
            .or_insert_with(|| offline_replay(server, wasm, &["--category", category], dir, &[]));
        assert_eq!(
            api.state(name).await,
            replay["state"],
            "{name} vs hume replay"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_projections_fail_over_and_stay_exact() {
    let dir = hume_tests::temp_dir();
    let nats = NatsServer::start();
    let mut servers: Vec<TestServer> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| node(&nats, dir.path(), id))
        .collect();
    let apis: Vec<Api> = servers.iter().map(Api::new).collect();
    let deployed = deploy_all(
        &apis[0],
        3,
        json!({"snapshot_every": 5, "snapshot_after_ms": 0}),
    )
    .await;
    let names: Vec<String> = deployed.iter().map(|d| d.0.clone()).collect();
    let owner = wait_spread(&apis, &[0, 1, 2], &names).await;

    // A steady load through the nodes that stay, and every snapshot offset
    // seen, per projection.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let urls: Vec<String> = apis.iter().map(|a| a.url.clone()).collect();
    let victim = (0..3)
        .max_by_key(|i| owner.values().filter(|o| *o == i).count())
        .unwrap();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    let load_urls: Vec<String> = survivors.iter().map(|i| urls[*i].clone()).collect();
    let load = tokio::spawn(async move {
        let apis: Vec<Api> = load_urls.iter().map(|u| Api::from_url(u)).collect();
        let mut i = 0u64;
        while !*stopped.borrow() {
            assert!(append_some(&apis[(i % 2) as usize], i).await);
            i += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        i
    });
    let mut offsets: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut watch_offsets = |owner: &BTreeMap<String, usize>, now: &BTreeMap<usize, Vec<Value>>| {
        for (i, statuses) in now {
            for s in statuses {
                let name = s["name"].as_str().unwrap().to_string();
                if owner.get(&name) == Some(i) {
                    if let Some(o) = s["last_snapshot"]["offset"].as_u64() {
                        offsets.entry(name).or_default().push(o);
                    }
                }
            }
        }
    };
    async fn statuses(apis: &[Api], live: &[usize]) -> BTreeMap<usize, Vec<Value>> {
        let mut out = BTreeMap::new();
        for &i in live {
            let v = apis[i].get_ok("/projections?local=true").await;
            out.insert(i, v["projections"].as_array().unwrap().clone());
        }
        out
    }
    for _ in 0..10 {
        watch_offsets(&owner, &statuses(&apis, &[0, 1, 2]).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    servers[victim].kill9();
    let killed = Instant::now();
    let moved = wait_spread(&apis, &survivors, &names).await;
    let took = killed.elapsed();
    assert!(
        took < FAILOVER_BOUND,
        "failover took {took:?} (bound {FAILOVER_BOUND:?})"
    );
    eprintln!("failover of node {victim}: every projection running again after {took:?}");
    for _ in 0..10 {
        watch_offsets(&moved, &statuses(&apis, &survivors).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send_replace(true);
    let batches = load.await.unwrap();
    assert!(batches > 20, "the load kept appending: {batches} batches");

    states_match_replay(&servers[survivors[0]], &apis, &moved, &deployed, dir.path()).await;
    watch_offsets(&moved, &statuses(&apis, &survivors).await);
    for (name, seen) in &offsets {
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "{name}'s snapshot offset went backwards: {seen:?}"
        );
    }
    assert_eq!(offsets.len(), names.len(), "every projection snapshotted");
}

/// What the store saw, in order: snapshot writes (projection, writer node)
/// and lease takes (projection, new owner).
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Snapshot { projection: String, node: String },
    Lease { projection: String, node: String },
}

/// Watch every snapshot write and lease change JetStream *stored* on
/// `nats` (a refused compare-and-set is not stored); read with
/// [`store_log`].
async fn watch_store(
    nats: &NatsServer,
) -> tokio::sync::mpsc::UnboundedReceiver<(std::time::SystemTime, Seen)> {
    use futures::StreamExt as _;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let leases = js.get_key_value("hume-leases").await.unwrap();
    let snaps = js.get_object_store("hume-snapshots").await.unwrap();
    let mut lease_watch = leases.watch_all().await.unwrap();
    let mut snap_watch = snaps.watch().await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _keep = (js, leases, snaps);
        loop {
            let seen = tokio::select! {
                Some(Ok(info)) = snap_watch.next() => {
                    let Some(at) = info.modified else { continue };
                    // Object `<escaped name@version>/<offset>`.
                    (at.into(), Seen::Snapshot {
                        projection: info.name.split("%40").next().unwrap().to_string(),
                        node: info.metadata.get("node").cloned().unwrap_or_default(),
                    })
                }
                Some(Ok(entry)) = lease_watch.next() => {
                    let Ok(lease) = serde_json::from_slice::<Value>(&entry.value) else { continue };
                    (entry.created.into(), Seen::Lease {
                        projection: entry.key.clone(),
                        node: lease["node"].as_str().unwrap_or_default().to_string(),
                    })
                }
                else => break,
            };
            if tx.send(seen).is_err() {
                break;
            }
        }
    });
    rx
}

/// What the watch saw so far, in the server's time order.
fn store_log(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(std::time::SystemTime, Seen)>,
) -> Vec<Seen> {
    let mut all = Vec::new();
    while let Ok(s) = rx.try_recv() {
        all.push(s);
    }
    all.sort_by_key(|(t, _)| *t);
    all.into_iter().map(|(_, s)| s).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_writes_nothing_for_what_it_lost() {
    let dir = hume_tests::temp_dir();
    let nats = NatsServer::start();
    let servers: Vec<TestServer> = ["z1", "z2"]
        .iter()
        .map(|id| node(&nats, dir.path(), id))
        .collect();
    let apis: Vec<Api> = servers.iter().map(Api::new).collect();
    let options = json!({"snapshot_every": 1, "snapshot_after_ms": 0});
    let mut names = Vec::new();
    for i in 0..4 {
        let name = format!("kv{i}");
        apis[0]
            .deploy(&name, KV_WASM, &["kv-*"], options.clone())
            .await;
        names.push(name);
    }
    let owner = wait_spread(&apis, &[0, 1], &names).await;
    let lost: Vec<String> = names.iter().filter(|n| owner[*n] == 0).cloned().collect();
    assert_eq!(lost.len(), 2);
    for i in 0..3 {
        assert!(append_some(&apis[1], i).await);
    }
    let head = apis[1].get_ok("/health").await["head"].as_u64().unwrap();
    for name in &lost {
        caught_up(&apis[0], name, head).await;
    }

    // Pause z1 past its leases; z2 takes everything over and goes on.
    signal(&servers[0], "-STOP");
    let paused = Instant::now();
    let moved = wait_spread(&apis, &[1], &names).await;
    assert!(moved.values().all(|o| *o == 1));
    for i in 3..8 {
        assert!(append_some(&apis[1], i).await);
    }
    let head = apis[1].get_ok("/health").await["head"].as_u64().unwrap();
    for name in &lost {
        caught_up(&apis[1], name, head).await;
    }
    assert!(paused.elapsed() > Duration::from_millis(TTL_MS));

    // Wake z1: its actors are behind and due a snapshot at every event,
    // but it no longer holds their leases.
    let mut seen = watch_store(&nats).await;
    signal(&servers[0], "-CONT");
    tokio::time::sleep(Duration::from_millis(3 * TTL_MS)).await;
    let log = store_log(&mut seen);
    eprintln!("store writes after z1 woke: {log:?}");
    for name in &lost {
        // Nothing from z1 for `name` until z1 took its lease again (the
        // rebalancing may legitimately give it back).
        let retaken = log
            .iter()
            .position(|s| {
                *s == Seen::Lease {
                    projection: name.clone(),
                    node: "z1".into(),
                }
            })
            .unwrap_or(log.len());
        let zombie = log[..retaken].iter().find(|s| {
            **s == Seen::Snapshot {
                projection: name.clone(),
                node: "z1".into(),
            }
        });
        assert!(
            zombie.is_none(),
            "z1 wrote a snapshot of {name} after losing its lease; store log: {log:?}"
        );
    }
    let stderr = servers[0].stderr();
    assert!(
        stderr.contains("lease expired here") || stderr.contains("lease lost"),
        "z1 gave its projections up: {stderr}"
    );
    // And the cluster settles: spread again, every state exact.
    let owner = wait_spread(&apis, &[0, 1], &names).await;
    let deployed: Vec<(String, &'static str, &'static str)> =
        names.iter().map(|n| (n.clone(), KV_WASM, "kv-")).collect();
    states_match_replay(&servers[1], &apis, &owner, &deployed, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_takes_its_share() {
    let dir = hume_tests::temp_dir();
    let nats = NatsServer::start();
    let mut servers: Vec<TestServer> = ["j1", "j2"]
        .iter()
        .map(|id| node(&nats, dir.path(), id))
        .collect();
    let mut apis: Vec<Api> = servers.iter().map(Api::new).collect();
    let deployed = deploy_all(
        &apis[0],
        3,
        json!({"snapshot_every": 3, "snapshot_after_ms": 0}),
    )
    .await;
    let names: Vec<String> = deployed.iter().map(|d| d.0.clone()).collect();
    wait_spread(&apis, &[0, 1], &names).await;
    for i in 0..20 {
        assert!(append_some(&apis[(i % 2) as usize], i).await);
    }
    servers.push(node(&nats, dir.path(), "j3"));
    apis.push(Api::new(&servers[2]));
    for i in 20..40 {
        assert!(append_some(&apis[(i % 3) as usize], i).await);
    }
    let owner = wait_spread(&apis, &[0, 1, 2], &names).await;
    let counts: Vec<usize> = (0..3)
        .map(|i| owner.values().filter(|o| **o == i).count())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 9);
    assert!(counts.iter().all(|c| *c == 3), "9 over 3 nodes: {counts:?}");
    states_match_replay(&servers[0], &apis, &owner, &deployed, dir.path()).await;
}
