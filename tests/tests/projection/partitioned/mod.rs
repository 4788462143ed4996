//! Partitioned projections (`--partition-by`) in a real `hume serve`: every
//! partition's state equals `hume replay` of its own events alone (kv and
//! bank by stream, bank by `/account`), restarts and kill -9 during a
//! partitioned rebuild leave every partition exact (no event skipped or
//! doubled: per-partition event counts), and bad input is refused with
//! nothing deployed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{cli_err, cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::{BANK_WASM, KV_WASM};
use serde_json::{json, Value};

mod faults;
mod many;
mod status;
mod travel;

const STREAMS: usize = 60;
const ROUNDS: usize = 10;
const PER_APPEND: usize = 5;

/// Append `ROUNDS x STREAMS x PER_APPEND` kv events round-robin over the
/// streams `kv-0..`; returns the expected state of every stream.
async fn append_kv(api: &Api) -> BTreeMap<String, Value> {
    let mut model: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    let mut n = 0u64;
    for _ in 0..ROUNDS {
        for s in 0..STREAMS {
            let stream = format!("kv-{s}");
            let state = model.entry(stream.clone()).or_default();
            let mut events = Vec::new();
            for _ in 0..PER_APPEND {
                n += 1;
                let key = format!("k{}", n % 7);
                if n.is_multiple_of(11) {
                    state.remove(&key);
                    events.push(("remove", json!({ "key": key })));
                } else {
                    state.insert(key.clone(), json!(n));
                    events.push(("add", json!({ "key": key, "value": n })));
                }
            }
            api.append(&stream, &events).await;
        }
    }
    model
        .into_iter()
        .map(|(k, v)| (k, Value::Object(v)))
        .collect()
}

/// `hume state NAME --all` as partition → state.
fn all_states(server: &TestServer, name: &str) -> BTreeMap<String, Value> {
    cli_ok(server, &["state", name, "--all"])
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("NDJSON line");
            (
                v["partition"].as_str().expect("partition").to_string(),
                v["state"].clone(),
            )
        })
        .collect()
}

/// `hume partitions NAME --json` as partition → (last position, events).
fn listing(server: &TestServer, name: &str) -> BTreeMap<String, (u64, u64)> {
    cli_ok(server, &["partitions", name, "--json", "--page", "7"])
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("NDJSON line");
            (
                v["partition"].as_str().unwrap().to_string(),
                (
                    v["last_position"].as_u64().unwrap(),
                    v["events"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Every event of the log (`hume read --all`).
fn log_events(server: &TestServer) -> Vec<Value> {
    cli_ok(server, &["read", "--all"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("event line"))
        .collect()
}

/// Per partition of `key_of`: (last position, event count), from the log.
fn expected_listing(
    events: &[Value],
    key_of: impl Fn(&Value) -> String,
) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for e in events {
        let entry = out.entry(key_of(e)).or_default();
        entry.0 = e["position"].as_u64().unwrap();
        entry.1 += 1;
    }
    out
}

/// `hume replay PLUGIN` over the events of one partition alone.
fn replay_partition(server: &TestServer, plugin: &str, events: &[&Value], dir: &Path) -> Value {
    let file = dir.join("partition-events.ndjson");
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let out = cli_ok(
        server,
        &[
            "replay",
            plugin,
            "--events",
            file.to_str().unwrap(),
            "--no-cache",
        ],
    );
    serde_json::from_str(&out).expect("replay prints JSON")
}

/// Wait until every event in the log has been examined (a consistent read
/// of one partition), then a little for the status to settle.
async fn caught_up(api: &Api, name: &str, any_key: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (code, v) = api
            .get(&format!(
                "/projections/{name}/state?partition={any_key}&timeout_ms=20000"
            ))
            .await;
        if code == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "not caught up: {code} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every partition's state and counts are those of its own events, and a
/// sample equals `hume replay` of its events alone.
fn check_exact(
    server: &TestServer,
    name: &str,
    plugin: &str,
    model: &BTreeMap<String, Value>,
    key_of: &dyn Fn(&Value) -> String,
    dir: &Path,
) {
    let states = all_states(server, name);
    assert_eq!(states.len(), model.len(), "one partition per key");
    for (key, expected) in model {
        assert_eq!(&states[key], expected, "partition {key}");
    }
    let events = log_events(server);
    assert_eq!(
        listing(server, name),
        expected_listing(&events, key_of),
        "last position and event count of every partition (none skipped or doubled)"
    );
    for key in model.keys().take(3) {
        let own: Vec<&Value> = events.iter().filter(|e| key_of(e) == *key).collect();
        let replayed = replay_partition(server, plugin, &own, dir);
        let snap: Value =
            serde_json::from_str(&cli_ok(server, &["snapshot", name, "--partition", key])).unwrap();
        assert_eq!(
            snap, replayed,
            "partition {key} vs hume replay of its events"
        );
    }
}

fn by_stream(e: &Value) -> String {
    e["stream"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_by_stream_equals_replay_of_each_stream_across_restarts_and_kill9() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let mut api = Api::new(&server);
    let model = append_kv(&api).await;
    let plugin = hume_tests::KV_WASM;
    cli_ok(
        &server,
        &[
            "deploy",
            "kvp",
            plugin,
            "--stream",
            "kv-*",
            "--partition-by",
            "stream",
            "--workers",
            "2",
            "--snapshot-every",
            "50",
            "--batch-size",
            "64",
        ],
    );
    caught_up(&api, "kvp", "kv-0").await;
    check_exact(&server, "kvp", plugin, &model, &by_stream, dir.path());
    let status = api.status("kvp").await;
    assert_eq!(status["partitions"]["count"], json!(STREAMS), "{status}");
    assert_eq!(status["partitions"]["workers"], json!(2));
    assert_eq!(status["options"]["partition_by"], json!("stream"));

    // One partition, with a pointer; and the plugin's query over it.
    let one: Value = serde_json::from_str(&cli_ok(
        &server,
        &["state", "kvp", "--partition", "kv-5", "--pointer", "/k1"],
    ))
    .unwrap();
    assert_eq!(one, model["kv-5"]["k1"]);
    let answer: Value = serde_json::from_str(&cli_ok(
        &server,
        &["query", "kvp", r#"{"key":"k1"}"#, "--partition", "kv-5"],
    ))
    .unwrap();
    assert_eq!(answer["value"], model["kv-5"]["k1"]);
    let prefixed = cli_ok(
        &server,
        &["partitions", "kvp", "--prefix", "kv-1", "--json"],
    );
    assert_eq!(prefixed.lines().count(), 11, "kv-1 and kv-10..kv-19");

    // A graceful restart, then kill -9: the partitions come back exact.
    server.restart();
    api = Api::new(&server);
    caught_up(&api, "kvp", "kv-0").await;
    check_exact(&server, "kvp", plugin, &model, &by_stream, dir.path());
    server.kill9();
    server.restart();
    api = Api::new(&server);
    caught_up(&api, "kvp", "kv-0").await;
    let status = api.status("kvp").await;
    assert!(
        status["last_snapshot"]["offset"].as_u64().unwrap_or(0) > 0,
        "restarted from a persisted snapshot: {status}"
    );
    check_exact(&server, "kvp", plugin, &model, &by_stream, dir.path());
}

/// kill -9 at several points of a partitioned rebuild: after each restart
/// the rebuild goes on from the last atomic write, and at the end every
/// partition holds exactly its own events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_a_partitioned_rebuild_skips_and_doubles_nothing() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let mut api = Api::new(&server);
    let model = append_kv(&api).await;
    let head = log_events(&server).len() as u64;
    cli_ok(
        &server,
        &[
            "deploy",
            "kvr",
            KV_WASM,
            "--stream",
            "kv-*",
            "--partition-by",
            "stream",
            "--snapshot-every",
            "10",
            "--batch-size",
            "10",
        ],
    );
    let mut resumed_from = Vec::new();
    for fraction in [5, 3, 2] {
        let target = head / fraction;
        api.wait_status("kvr", "partway", |s| s["scanned"].as_u64() >= Some(target))
            .await;
        server.kill9();
        server.restart();
        api = Api::new(&server);
        let status = api
            .wait_status("kvr", "loaded", |s| s["state"] != json!("starting"))
            .await;
        resumed_from.push(status["last_snapshot"]["offset"].as_u64().unwrap_or(0));
    }
    assert!(
        resumed_from.iter().any(|o| *o > 0 && *o < head),
        "some restart resumed mid-rebuild from a persisted offset: {resumed_from:?}"
    );
    caught_up(&api, "kvr", "kv-0").await;
    check_exact(&server, "kvr", KV_WASM, &model, &by_stream, dir.path());
}

/// Bank events of accounts `a0..a11` spread over streams `bank-0..bank-3`
/// (an account's events in several streams); returns the expected state of
/// every account alone.
async fn append_bank(api: &Api) -> BTreeMap<String, Value> {
    let mut by_account: BTreeMap<String, i64> = BTreeMap::new();
    let mut n = 0i64;
    for round in 0..40 {
        for a in 0..12 {
            n += 1;
            let account = format!("a{a}");
            let stream = format!("bank-{}", (a + round) % 4);
            let balance = by_account.entry(account.clone()).or_insert(-1);
            let (kind, data) = if *balance < 0 {
                *balance = 0;
                ("opened", json!({ "account": account }))
            } else if n % 3 == 0 && *balance >= 5 {
                *balance -= 5;
                ("withdrawn", json!({ "account": account, "amount": 5 }))
            } else {
                *balance += n;
                ("deposited", json!({ "account": account, "amount": n }))
            };
            api.append(&stream, &[(kind, data)]).await;
        }
    }
    by_account
        .iter()
        .map(|(a, b)| (a.clone(), json!({ "accounts": { a: b } })))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_by_account_pointer_equals_replay_of_each_account() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    let accounts = append_bank(&api).await;
    cli_ok(
        &server,
        &[
            "deploy",
            "per-account",
            BANK_WASM,
            "--stream",
            "bank-*",
            "--partition-by",
            "/account",
            "--batch-size",
            "25",
        ],
    );
    caught_up(&api, "per-account", "a0").await;
    let by_account = |e: &Value| e["data"]["account"].as_str().unwrap().to_string();
    check_exact(
        &server,
        "per-account",
        BANK_WASM,
        &accounts,
        &by_account,
        dir.path(),
    );
    let answer: Value = serde_json::from_str(&cli_ok(
        &server,
        &[
            "query",
            "per-account",
            r#"{"account":"a3"}"#,
            "--partition",
            "a3",
        ],
    ))
    .unwrap();
    assert_eq!(answer["balance"], accounts["a3"]["accounts"]["a3"]);

    // By stream, the same events: each stream's partition is the replay of
    // that stream alone (whose accounts were opened in other streams, so
    // the bank plugin rejects them: those partitions fault, alone).
    cli_ok(
        &server,
        &[
            "deploy",
            "per-stream",
            BANK_WASM,
            "--stream",
            "bank-*",
            "--partition-by",
            "stream",
        ],
    );
    let status = api
        .wait_status("per-stream", "examined the log", |s| {
            s["scanned"] == s["head"] && s["partitions"]["count"] == json!(4)
        })
        .await;
    assert_eq!(status["state"], json!("running"), "{status}");
    let faulted = cli_ok(
        &server,
        &["partitions", "per-stream", "--faulted", "--json"],
    );
    assert_eq!(
        faulted.lines().count() as u64,
        status["partitions"]["faulted"].as_u64().unwrap(),
        "{faulted}"
    );
    let events = log_events(&server);
    for line in faulted.lines() {
        let p: Value = serde_json::from_str(line).unwrap();
        let key = p["partition"].as_str().unwrap();
        let position = p["fault"]["position"].as_u64().unwrap();
        let before: Vec<&Value> = events
            .iter()
            .filter(|e| by_stream(e) == key && e["position"].as_u64() < Some(position))
            .collect();
        let replayed = replay_partition(&server, BANK_WASM, &before, dir.path());
        let dirty: Value = serde_json::from_str(&cli_ok(
            &server,
            &["snapshot", "per-stream", "--partition", key, "--dirty"],
        ))
        .unwrap();
        assert_eq!(
            dirty, replayed,
            "faulted partition {key} keeps its state before the fault"
        );
        let err = cli_err(&server, &["state", "per-stream", "--partition", key]);
        assert!(err.contains("faulted") && err.contains(key), "{err}");
    }
}
