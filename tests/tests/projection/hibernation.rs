//! Hibernation in a real `hume serve`: the live-instance bound
//! (`--max-live-instances`, least recently used first), idle hibernation
//! (`--hibernate-after`), waking on an event, a read or a query with the
//! exact state, and a plugin that cannot be brought back (faulted with the
//! cause, its state kept, no retry loop).

use std::time::Duration;

use crate::common::{cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::{COUNTER_WASM, HOSTILE_WASM, KV_WASM};
use serde_json::{json, Value};

/// The value of an unlabelled metric, or the sum of a labelled one.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn snapshots_at(v: &Value) -> Vec<u64> {
    v["snapshots"]
        .as_array()
        .expect("snapshots array")
        .iter()
        .map(|s| s["offset"].as_u64().unwrap())
        .collect()
}

/// Wait until `name` has examined every event appended so far and
/// hibernates (a projection that hibernated before the last appends and has
/// not woken for them yet does not count).
async fn hibernated(api: &Api, name: &str) -> Value {
    api.wait_status(name, "hibernated at the head", |s| {
        s["state"] == "hibernated" && s["lag"] == 0
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_live_instances_are_live_and_every_state_stays_exact() {
    let dir = hume_tests::temp_dir();
    let mut server = TestServer::start_with(
        dir.path().join("data"),
        &["--max-live-instances", "2", "--hibernate-after", "off"],
    );
    let api = Api::new(&server);
    let names: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        api.deploy(name, COUNTER_WASM, &[&format!("s-{i}")], json!({}))
            .await;
    }
    // Three rounds over every stream: each append wakes a hibernated one.
    for round in 0..3 {
        for i in 0..5 {
            api.append(&format!("s-{i}"), &[("tick", json!({"round": round}))])
                .await;
        }
    }
    for name in &names {
        // A consistent read wakes the projection if it hibernates.
        assert_eq!(api.state(name).await, json!({"tick": 3}), "{name}");
    }
    let text = server.get_raw("/metrics");
    let live = metric(&text, "hume_live_instances");
    assert!(
        live <= 2.0,
        "at most 2 live instances, /metrics says {live}"
    );
    assert!(
        metric(&text, "hume_projection_wakes_total") >= 3.0,
        "hibernated projections were woken:\n{text}"
    );
    let statuses = api.list().await;
    let asleep = statuses
        .iter()
        .filter(|s| s["state"] == "hibernated")
        .count();
    assert!(asleep >= 3, "5 projections, 2 live: {statuses:#?}");
    // The summary counts the same, without every status.
    let (code, summary) = api.get("/projections?summary=true").await;
    assert_eq!(code, 200, "{summary}");
    assert_eq!(summary["total"], json!(5), "{summary}");
    assert_eq!(summary["at_head"], json!(5), "{summary}");
    assert_eq!(summary["behind"], json!(0), "{summary}");
    let summed_asleep = summary["by_state"]["hibernated"].as_u64().unwrap_or(0);
    assert!(summed_asleep >= 3, "{summary}");
    assert_eq!(summary["max_live_instances"], json!(2), "{summary}");
    assert!(summary.get("projections").is_none(), "{summary}");
    let (code, err) = api.get("/projections?summry=true").await;
    assert_eq!(code, 400, "{err}");
    assert!(err.to_string().contains("summary=true"), "{err}");
    let table = cli_ok(&server, &["status"]);
    assert!(table.contains("hibernated"), "{table}");

    // The states survive a restart.
    server.restart();
    let api = Api::new(&server);
    for i in 0..names.len() {
        api.append(&format!("s-{i}"), &[("tick", json!({}))]).await;
    }
    for name in &names {
        assert_eq!(api.state(name).await, json!({"tick": 4}), "{name}");
    }
    let live = metric(&server.get_raw("/metrics"), "hume_live_instances");
    assert!(live <= 2.0, "after a restart: {live} live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_projections_hibernate_and_wake_with_the_exact_state() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start_with(dir.path().join("data"), &["--hibernate-after", "0"]);
    let api = Api::new(&server);
    // `snapshot_every` far away: only hibernation can write snapshots here.
    let options = json!({"snapshot_every": 1000000});
    api.deploy("small", KV_WASM, &["small"], options.clone())
        .await;
    api.deploy(
        "memory",
        KV_WASM,
        &["small"],
        json!({"snapshot_every": 1000000, "snapshot_store": "memory"}),
    )
    .await;
    api.deploy("big", KV_WASM, &["big"], options).await;
    api.append("small", &[("add", json!({"key": "a", "value": 1}))])
        .await;
    // Over 64 KiB of state: hibernating writes it to the snapshot store.
    let blob = "x".repeat(1000);
    for chunk in 0..10 {
        let events: Vec<(&str, Value)> = (0..10)
            .map(|i| {
                (
                    "add",
                    json!({"key": format!("k{chunk}-{i}"), "value": blob}),
                )
            })
            .collect();
        api.append("big", &events).await;
    }
    for name in ["small", "memory", "big"] {
        hibernated(&api, name).await;
    }
    let big_head = api.status("big").await["offset"].as_u64().unwrap();
    let big = api.get_ok("/projections/big/snapshots").await;
    assert!(
        snapshots_at(&big).contains(&big_head),
        "a large state goes to the store when hibernating: {big}"
    );
    let small = api.get_ok("/projections/small/snapshots").await;
    assert!(
        snapshots_at(&small).is_empty(),
        "a small state is held in memory, no snapshot written: {small}"
    );

    // A read wakes it with the exact state; then it sleeps again.
    assert_eq!(api.state("small").await, json!({"a": 1}));
    assert_eq!(api.state("memory").await, json!({"a": 1}));
    let big_state = api.state("big").await;
    assert_eq!(big_state.as_object().unwrap().len(), 100);
    let (code, answer) = api
        .post("/projections/small/query", json!({"key": "a"}))
        .await;
    assert_eq!((code, answer), (200, json!({"value": 1})));
    hibernated(&api, "small").await;
    // An event wakes it and is applied on top of the held state.
    api.append("small", &[("add", json!({"key": "b", "value": 2}))])
        .await;
    assert_eq!(api.state("small").await, json!({"a": 1, "b": 2}));
    assert_eq!(api.state("memory").await, json!({"a": 1, "b": 2}));
    let s = hibernated(&api, "small").await;
    assert_eq!(s["fault"], Value::Null, "{s}");
    let text = server.get_raw("/metrics");
    assert!(
        metric(&text, "hume_projection_hibernations_total") >= 5.0,
        "{text}"
    );
}

/// A projection whose plugin cannot restore its own state faults on waking,
/// with the cause, keeps the state as a snapshot, and does not retry.
async fn wake_failure(kind: &str, cause: &str) {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start_with(dir.path().join("data"), &["--hibernate-after", "0"]);
    let api = Api::new(&server);
    api.deploy("h", HOSTILE_WASM, &["h"], json!({})).await;
    api.append("h", &[("a", json!({}))]).await;
    api.append("h", &[(kind, json!({}))]).await;
    let asleep = hibernated(&api, "h").await;
    assert_eq!(asleep["offset"], 2, "{asleep}");
    // The next event wakes it: restoring fails.
    api.append("h", &[("b", json!({}))]).await;
    let s = api
        .wait_status("h", "faulted", |s| s["state"] == "faulted")
        .await;
    let error = s["fault"]["error"].as_str().unwrap();
    assert!(
        error.contains("could not be woken from hibernation")
            && error.contains("position 2")
            && error.contains(cause),
        "{error}"
    );
    assert!(
        error.contains("hume snapshot h --dirty"),
        "says where the state is: {error}"
    );
    assert_eq!(s["offset"], 2, "nothing applied after the failure: {s}");
    // The state is kept for inspection: a dirty read shows it.
    let kept = api.get_ok("/projections/h/snapshot?dirty=true").await;
    assert_eq!(kept["offset"], 2, "{kept}");
    assert_eq!(kept["state"][kind], 1, "{kept}");
    // Faulted, not a crash loop: the fault stays as it was.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = api.status("h").await;
    assert_eq!(later["fault"]["at"], s["fault"]["at"], "{later}");
    let faults = metric(&server.get_raw("/metrics"), "hume_projection_faults_total");
    assert_eq!(faults, 1.0);
    assert!(server.get_raw("/health").contains("ok"));
    // And it is kept durably, as the newest snapshot.
    let listed = api.get_ok("/projections/h/snapshots").await;
    assert!(
        snapshots_at(&listed).contains(&2),
        "the state is the snapshot at 2: {listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_traps_while_waking_is_faulted_once_with_its_state_kept() {
    wake_failure("restore-trap", "traps while restoring on purpose").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_fails_to_restore_on_waking_is_named_and_kept() {
    wake_failure("restore-reject", "refuses its own snapshot on purpose").await;
}

#[test]
fn bad_budgets_are_refused_at_start() {
    let dir = hume_tests::temp_dir();
    for (args, says) in [
        (vec!["--max-live-instances", "0"], "give at least 1"),
        (vec!["--max-live-instances=-1"], "not a whole number"),
        (vec!["--max-live-instances", "5000000"], "at most 1000000"),
        (
            vec!["--hibernate-after", "soon"],
            "not a number of milliseconds",
        ),
        (
            vec!["--hibernate-after", "999999999999"],
            "more than a week",
        ),
    ] {
        let err = TestServer::try_start(dir.path().join("data"), &args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} was accepted"));
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// After a restart with more projections than `--max-live-instances`, the
/// ones beyond the bound whose snapshot covers the log start asleep (no
/// instance, no hibernation); the first event or read wakes them with the
/// exact state, and the plugin hears `on-caught-up` then. One that is
/// behind (events after its snapshot) is built and catches up at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_beyond_the_bound_restart_asleep() {
    let dir = hume_tests::temp_dir();
    let mut server =
        TestServer::start_with(dir.path().join("data"), &["--max-live-instances", "1"]);
    let api = Api::new(&server);
    let names = ["a", "b", "c"];
    for (i, name) in names.iter().enumerate() {
        let ticks: Vec<(&str, Value)> = (0..=i).map(|_| ("tick", json!({}))).collect();
        api.append(name, &ticks).await;
        api.deploy(name, HOSTILE_WASM, &[name], json!({})).await;
    }
    for (i, name) in names.iter().enumerate() {
        assert_eq!(api.state(name).await, json!({"tick": i + 1}));
    }
    server.stop();
    server.restart();
    let api = Api::new(&server);
    let mut asleep = Vec::new();
    for name in names {
        let s = api
            .wait_status(name, "settled at the head", |s| {
                s["lag"] == 0 && (s["state"] == "running" || s["state"] == "hibernated")
            })
            .await;
        if s["state"] == "hibernated" {
            asleep.push(name);
        }
    }
    assert_eq!(asleep.len(), 2, "two beyond the bound: {asleep:?}");
    let metrics = server.get_raw("/metrics");
    assert_eq!(metric(&metrics, "hume_live_instances"), 1.0, "{metrics}");
    assert_eq!(
        metric(&metrics, "hume_projection_hibernations_total"),
        0.0,
        "they started asleep, nothing had to hibernate: {metrics}"
    );

    // An event wakes one; it folds it and hears on-caught-up.
    let woken = asleep[0];
    let before = api.state(woken).await["tick"].as_u64().unwrap();
    let out = api.append(woken, &[("tick", json!({}))]).await;
    let position = out["last_position"].as_u64().unwrap();
    assert_eq!(api.state(woken).await, json!({"tick": before + 1}));
    let logs = cli_ok(&server, &["logs", woken]);
    assert!(logs.contains(&format!("caught up at {position}")), "{logs}");
    // A read wakes the other with its state.
    let other = asleep[1];
    let i = names.iter().position(|n| *n == other).unwrap();
    assert_eq!(api.state(other).await, json!({"tick": i + 1}));

    // Behind after a crash (events after the snapshot): built at once.
    let out = api.append(other, &[("tick", json!({}))]).await;
    let position = out["last_position"].as_u64().unwrap();
    api.wait_status(other, "caught up", |s| s["offset"] == position)
        .await;
    server.kill9();
    server.restart();
    let api = Api::new(&server);
    assert_eq!(api.state(other).await, json!({"tick": i + 2}));
}
