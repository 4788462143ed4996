//! History and time travel against a real `hume serve`: the state at any
//! position equals `hume replay` of the log up to it (kv, counter, bank;
//! durable and memory snapshot stores; across a restart), reads at a
//! position never disturb the live projection, a new version only ever
//! travels from its own snapshots, retention keeps its bounds, `hume diff`
//! gives a JSON Patch that turns one state into the other, and bad
//! positions are refused.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{cli, cli_err, cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::{BANK_WASM, COUNTER_WASM, KV_WASM};
use serde_json::{json, Value};

/// A deterministic mix over kv-*, account-* and other streams.
fn events(n: usize, seed: u64) -> Vec<(String, &'static str, Value)> {
    let mut out = Vec::with_capacity(n);
    let mut x = seed;
    let mut balances: BTreeMap<u64, i64> = BTreeMap::new();
    for i in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = x >> 33;
        match r % 4 {
            0 | 1 => {
                let key = format!("k{}", r % 37);
                if r.is_multiple_of(9) {
                    out.push((format!("kv-{}", r % 5), "remove", json!({ "key": key })));
                } else {
                    out.push((
                        format!("kv-{}", r % 5),
                        "add",
                        json!({"key": key, "value": {"i": i, "f": (i as f64) / 4.0}}),
                    ));
                }
            }
            2 => {
                let acc = r % 7;
                let stream = format!("account-{acc}");
                let account = format!("{acc}");
                match balances.get_mut(&acc) {
                    None => {
                        balances.insert(acc, 0);
                        out.push((stream, "opened", json!({ "account": account })));
                    }
                    Some(b) if *b > 10 && r.is_multiple_of(3) => {
                        *b -= 10;
                        out.push((
                            stream,
                            "withdrawn",
                            json!({"account": account, "amount": 10}),
                        ));
                    }
                    Some(b) => {
                        let amount = (r % 50 + 1) as i64;
                        *b += amount;
                        out.push((
                            stream,
                            "deposited",
                            json!({"account": account, "amount": amount}),
                        ));
                    }
                }
            }
            _ => out.push((format!("other-{}", r % 3), "noise", json!({ "n": i }))),
        }
    }
    out
}

/// Append `events` in batches of up to `batch` (consecutive events of one
/// stream go together).
async fn append_all(api: &Api, events: &[(String, &'static str, Value)], batch: usize) {
    let mut i = 0;
    while i < events.len() {
        let stream = &events[i].0;
        let mut j = i;
        while j < events.len() && j - i < batch && &events[j].0 == stream {
            j += 1;
        }
        let group: Vec<(&str, Value)> = events[i..j]
            .iter()
            .map(|(_, k, d)| (*k, d.clone()))
            .collect();
        api.append(stream, &group).await;
        i = j;
    }
}

async fn wait_caught_up(api: &Api, name: &str) -> Value {
    let head = api.get_ok("/health").await["head"].as_u64().unwrap();
    api.wait_status(name, "caught up", |s| {
        s["state"] == "running" && s["scanned"].as_u64() >= Some(head)
    })
    .await
}

/// The offline truth: `hume replay` of the events (exported with `hume read
/// --all`) up to `at` whose stream matches `prefix`.
struct Offline {
    lines: Vec<(u64, String, String)>,
}

impl Offline {
    fn export(server: &TestServer) -> Offline {
        let all = cli_ok(server, &["read", "--all"]);
        let lines = all
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("read prints NDJSON");
                (
                    v["position"].as_u64().unwrap(),
                    v["stream"].as_str().unwrap().to_string(),
                    l.to_string(),
                )
            })
            .collect();
        Offline { lines }
    }

    fn state(&self, server: &TestServer, plugin: &str, prefix: &str, at: u64, dir: &Path) -> Value {
        let text: String = self
            .lines
            .iter()
            .filter(|(p, s, _)| *p <= at && s.starts_with(prefix))
            .map(|(_, _, l)| format!("{l}\n"))
            .collect();
        let file = dir.join("prefix.ndjson");
        std::fs::write(&file, text).unwrap();
        let out = cli_ok(
            server,
            &["replay", plugin, "--events", file.to_str().unwrap()],
        );
        let v: Value = serde_json::from_str(&out).expect("replay prints JSON");
        v["state"].clone()
    }
}

async fn snapshot_offsets(api: &Api, name: &str) -> Vec<u64> {
    let listing = api.get_ok(&format!("/projections/{name}/snapshots")).await;
    listing["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["offset"].as_u64().unwrap())
        .collect()
}

/// Positions worth checking: 0, 1, the head, each snapshot and its
/// neighbours, and a spread in between.
fn positions(snapshots: &[u64], head: u64) -> Vec<u64> {
    let mut p = vec![0, 1, head.saturating_sub(1), head];
    for s in snapshots {
        p.extend([s.saturating_sub(1), *s, s + 1]);
    }
    p.extend((1..8).map(|i| head * i / 8 + i));
    p.retain(|x| *x <= head);
    p.sort_unstable();
    p.dedup();
    p
}

async fn state_at(api: &Api, name: &str, at: u64) -> Value {
    api.get_ok(&format!("/projections/{name}/state?at={at}"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_at_any_position_equals_replay_of_the_log_up_to_it() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    let history =
        json!({"snapshot_every": 40, "snapshot_after_ms": 0, "snapshot_history": "3:300"});
    // (name, plugin, streams, offline stream prefix, store)
    let cases = [
        ("kv", KV_WASM, "kv-*", "kv-", "durable"),
        ("counter", COUNTER_WASM, "*", "", "durable"),
        ("bank", BANK_WASM, "account-*", "account-", "durable"),
        ("kv-mem", KV_WASM, "kv-*", "kv-", "memory"),
    ];
    for (name, wasm, stream, _, store) in cases {
        let mut options = history.clone();
        options["snapshot_store"] = json!(store);
        api.deploy(name, wasm, &[stream], options).await;
    }
    append_all(&api, &events(2_400, 7), 25).await;
    for (name, ..) in cases {
        wait_caught_up(&api, name).await;
    }
    let offline = Offline::export(&server);
    let head = offline.lines.len() as u64;

    let mut expected: BTreeMap<(&str, u64), Value> = BTreeMap::new();
    let mut checked = BTreeMap::new();
    for (name, wasm, _, prefix, _) in cases {
        let snaps = snapshot_offsets(&api, name).await;
        assert!(
            snaps.len() >= 3 && snaps.len() as u64 <= 3 + head / 300,
            "{name}: {} snapshots retained for a head of {head}: {snaps:?}",
            snaps.len()
        );
        let mut ps = positions(&snaps, head);
        if name == "kv-mem" {
            ps = positions(&snapshot_offsets(&api, "kv").await, head);
        }
        for at in &ps {
            let want = expected
                .entry((wasm, *at))
                .or_insert_with(|| offline.state(&server, wasm, prefix, *at, dir.path()))
                .clone();
            let got = state_at(&api, name, *at).await;
            assert_eq!(got, want, "{name} at {at}");
        }
        checked.insert(name, ps);
    }
    // The CLI says the same.
    let at = head / 2 + 3;
    let cli_state: Value =
        serde_json::from_str(&cli_ok(&server, &["state", "kv", "--at", &at.to_string()])).unwrap();
    assert_eq!(
        cli_state,
        offline.state(&server, KV_WASM, "kv-", at, dir.path())
    );
    let pointer = cli_ok(
        &server,
        &[
            "state",
            "bank",
            "--at",
            &head.to_string(),
            "--pointer",
            "/accounts",
        ],
    );
    let accounts: Value = serde_json::from_str(&pointer).unwrap();
    assert_eq!(accounts, expected[&(BANK_WASM, head)]["accounts"]);
    let listing = cli_ok(&server, &["snapshots", "kv"]);
    assert!(listing.contains("history 3:300"), "{listing}");

    // History survives a restart; the memory store's does not, and the
    // answer is still exact (folded from the start).
    server.restart();
    let api = Api::new(&server);
    for (name, wasm, ..) in cases {
        wait_caught_up(&api, name).await;
        for at in &checked[name] {
            assert_eq!(
                state_at(&api, name, *at).await,
                expected[&(wasm, *at)],
                "{name} at {at} after a restart"
            );
        }
    }
    let mem = api.get_ok("/projections/kv-mem/snapshot?at=100").await;
    assert_eq!(mem["from_snapshot"], Value::Null, "{mem}");
    let durable = api
        .get_ok(&format!("/projections/kv/snapshot?at={head}"))
        .await;
    assert!(durable["from_snapshot"].as_u64().is_some(), "{durable}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_travel_during_appends_leaves_the_live_projection_alone() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy(
        "kv",
        KV_WASM,
        &["kv-*"],
        json!({"snapshot_every": 25, "snapshot_history": "4:200"}),
    )
    .await;
    let all = events(3_000, 11);
    append_all(&api, &all[..1_000], 20).await;
    let url = server.url().to_string();
    let rest = all[1_000..].to_vec();
    let load = tokio::spawn(async move {
        let api = Api::from_url(&url);
        append_all(&api, &rest, 10).await;
    });
    // Reads at positions while the load runs and the live projection folds.
    let mut answers = Vec::new();
    let mut last_offset = 0;
    for i in 0..40u64 {
        let head = api.get_ok("/health").await["head"].as_u64().unwrap();
        let at = (head * (i % 7 + 1) / 8).max(1);
        answers.push((at, state_at(&api, "kv", at).await));
        let live = api.status("kv").await;
        let offset = live["offset"].as_u64().unwrap();
        assert!(offset >= last_offset, "the live offset never goes back");
        assert_ne!(live["state"], "faulted", "{live}");
        last_offset = offset;
    }
    load.await.unwrap();
    let status = wait_caught_up(&api, "kv").await;
    let offline = Offline::export(&server);
    let head = offline.lines.len() as u64;
    assert_eq!(
        status["scanned"].as_u64(),
        Some(head),
        "the live projection kept up"
    );
    assert_eq!(
        api.state("kv").await,
        offline.state(&server, KV_WASM, "kv-", head, dir.path()),
        "the live state is the replay of the whole log"
    );
    for (at, got) in answers {
        assert_eq!(
            got,
            offline.state(&server, KV_WASM, "kv-", at, dir.path()),
            "answer at {at}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_travels_only_from_its_own_snapshots() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    // Version 1 counts events; version 2 (another plugin, same name) keeps a
    // key-value map. A snapshot of one restored into the other would give
    // the wrong shape or fail.
    let opts = json!({"snapshot_every": 20, "snapshot_after_ms": 0, "snapshot_history": "3:100"});
    api.deploy("p", COUNTER_WASM, &["kv-*"], opts.clone()).await;
    let all: Vec<_> = events(1_200, 3)
        .into_iter()
        .filter(|e| e.0.starts_with("kv-"))
        .collect();
    append_all(&api, &all[..400], 20).await;
    wait_caught_up(&api, "p").await;
    let v1 = api.status("p").await["plugin_hash"].clone();
    assert!(!snapshot_offsets(&api, "p").await.is_empty());

    let (code, body) = api
        .deploy_raw("p", &hume_tests::read_wasm(KV_WASM), &["kv-*"], opts, false)
        .await;
    assert_eq!(code, 201, "{body}");
    api.wait_status("p", "version 2 active", |s| {
        s["plugin_hash"] != v1 && s["pending"].is_null()
    })
    .await;
    append_all(&api, &all[400..], 20).await;
    let status = wait_caught_up(&api, "p").await;
    let v2 = status["plugin_hash"].as_str().unwrap().to_string();
    let listing = api.get_ok("/projections/p/snapshots").await;
    let snaps = listing["snapshots"].as_array().unwrap();
    assert!(!snaps.is_empty());
    for s in snaps {
        assert_eq!(
            s["plugin_hash"],
            v2.as_str(),
            "only version 2's snapshots: {listing}"
        );
    }
    let own: Vec<u64> = snaps
        .iter()
        .map(|s| s["offset"].as_u64().unwrap())
        .collect();
    let offline = Offline::export(&server);
    let head = offline.lines.len() as u64;
    for at in positions(&own, head) {
        let got = api
            .get_ok(&format!("/projections/p/snapshot?at={at}"))
            .await;
        if let Some(from) = got["from_snapshot"].as_u64() {
            assert!(
                own.contains(&from),
                "at {at} started from {from}, not one of {own:?}"
            );
        }
        assert_eq!(
            got["state"],
            offline.state(&server, KV_WASM, "kv-", at, dir.path()),
            "version 2's state at {at}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_count_and_replay_distance_within_the_bound() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    let (recent, spacing) = (4u64, 2_000u64);
    api.deploy(
        "c",
        COUNTER_WASM,
        &["*"],
        json!({"snapshot_every": 100, "snapshot_after_ms": 0,
               "snapshot_history": format!("{recent}:{spacing}")}),
    )
    .await;
    let batch: Vec<(&str, Value)> = (0..1_000).map(|_| ("tick", json!({}))).collect();
    for i in 0..100 {
        api.append(&format!("s-{}", i % 4), &batch).await;
    }
    let head = 100_000u64;
    wait_caught_up(&api, "c").await;
    let listing = api.get_ok("/projections/c/snapshots").await;
    let count = listing["snapshots"].as_array().unwrap().len() as u64;
    assert!(
        count <= recent + head / spacing,
        "{count} snapshots retained, the bound is {}",
        recent + head / spacing
    );
    let bound = listing["replay_bound"].as_u64().unwrap();
    assert_eq!(bound, 2 * spacing);
    let mut worst = 0;
    for at in (0..=head).step_by(1_250).chain([head]) {
        let got = api
            .get_ok(&format!("/projections/c/snapshot?at={at}"))
            .await;
        let from = got["from_snapshot"].as_u64().unwrap_or(0);
        worst = worst.max(at - from);
        let want = if at == 0 {
            json!({})
        } else {
            json!({ "tick": at })
        };
        assert_eq!(got["state"], want, "at {at}");
        assert_eq!(got["replayed"].as_u64(), Some(at - from), "at {at}");
    }
    assert!(
        worst <= bound,
        "replayed {worst} positions, the bound is {bound}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_is_a_json_patch_from_one_state_to_the_other() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy("kv", KV_WASM, &["kv-*"], json!({"snapshot_every": 30}))
        .await;
    append_all(&api, &events(800, 5), 10).await;
    wait_caught_up(&api, "kv").await;
    for (from, to) in [(0, 800), (120, 470), (470, 120), (300, 301), (650, 650)] {
        let diff: Value = serde_json::from_str(&cli_ok(
            &server,
            &[
                "diff",
                "kv",
                "--from",
                &from.to_string(),
                "--to",
                &to.to_string(),
            ],
        ))
        .unwrap();
        let mut state = state_at(&api, "kv", from).await;
        let patch: json_patch::Patch = serde_json::from_value(diff.clone()).unwrap();
        json_patch::patch(&mut state, &patch).unwrap();
        assert_eq!(
            state,
            state_at(&api, "kv", to).await,
            "{from} → {to}: {diff}"
        );
    }
    let with_events: Value = serde_json::from_str(&cli_ok(
        &server,
        &["diff", "kv", "--from", "100", "--to", "200", "--events"],
    ))
    .unwrap();
    let listed: Vec<u64> = with_events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    let offline = Offline::export(&server);
    let want: Vec<u64> = offline
        .lines
        .iter()
        .filter(|(p, s, _)| *p > 100 && *p <= 200 && s.starts_with("kv-"))
        .map(|(p, ..)| *p)
        .collect();
    assert_eq!(listed, want);
    assert_eq!(with_events["truncated"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_positions_are_refused_with_the_field_named() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy("kv", KV_WASM, &["kv-*"], json!({})).await;
    append_all(&api, &events(50, 1), 10).await;
    wait_caught_up(&api, "kv").await;
    for bad in ["-1", "abc", "1.5", ""] {
        let (code, body) = api.get(&format!("/projections/kv/state?at={bad}")).await;
        assert_eq!(code, 400, "at={bad}: {body}");
        assert_eq!(body["field"], "at", "{body}");
    }
    let err = cli_err(&server, &["state", "kv", "--at", "-1"]);
    assert!(
        err.contains("`at`") && err.contains("non-negative"),
        "{err}"
    );
    // Beyond what the projection has examined: 409 at once with --no-wait,
    // a timeout otherwise.
    let (code, body) = api
        .get("/projections/kv/state?at=100000&no_wait=true")
        .await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("up to position"),
        "{body}"
    );
    let (code, body) = api
        .get("/projections/kv/state?at=100000&timeout_ms=200")
        .await;
    assert_eq!(code, 504, "{body}");
    let (code, body) = api.get("/projections/kv/diff?from=1").await;
    assert_eq!((code, body["field"].as_str()), (400, Some("to")), "{body}");
    let (code, _) = api.get("/projections/nope/state?at=1").await;
    assert_eq!(code, 404);
    // Nothing moved: the live projection is where it was.
    let out = cli(&server, &["snapshots", "kv", "--json"]);
    assert!(out.status.success());
}
