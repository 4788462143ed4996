//! The same surface on every node of a cluster: a read, query, lifecycle
//! command or new version asked of a node that does not run the projection
//! is passed to the node that does, and a consistent read includes every
//! event acknowledged before it on any node; `hume status` on any node
//! lists every projection with its NODE; `hume nodes` lists the nodes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cluster_nodes::{node, wait_spread, TTL_MS};
use crate::common::{cli_ok, Api};
use hume_tests::nats::NatsServer;
use hume_tests::server::TestServer;
use hume_tests::KV_WASM;
use serde_json::{json, Value};

const IDS: [&str; 3] = ["s1", "s2", "s3"];

/// A request through `url`: status, the node that answered (`x-hume-node`),
/// `Retry-After`, and the JSON body.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, String, Option<String>, Value) {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.expect("request");
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let node = header("x-hume-node").unwrap_or_default();
    let retry = header("retry-after");
    let code = answer.status().as_u16();
    let body = answer.json().await.unwrap_or(Value::Null);
    (code, node, retry, body)
}

/// Start three nodes, deploy kv-0..kv-2 through the first; wait until each
/// node runs one. The owner index of each.
async fn three_nodes(
    nats: &NatsServer,
    dir: &std::path::Path,
) -> (Vec<TestServer>, Vec<Api>, BTreeMap<String, usize>) {
    let servers: Vec<TestServer> = IDS.iter().map(|id| node(nats, dir, id)).collect();
    let apis: Vec<Api> = servers.iter().map(Api::new).collect();
    let names: Vec<String> = (0..3).map(|i| format!("kv-{i}")).collect();
    for name in &names {
        apis[0].deploy(name, KV_WASM, &["kv-*"], json!({})).await;
    }
    let owner = wait_spread(&apis, &[0, 1, 2], &names).await;
    (servers, apis, owner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_answers_for_every_projection() {
    let dir = hume_tests::temp_dir();
    let nats = NatsServer::start();
    let (servers, apis, owner) = three_nodes(&nats, dir.path()).await;
    let http = reqwest::Client::new();
    // kv-0 runs on C; appends go through A, reads through B.
    let c = owner["kv-0"];
    let (a, b) = ((c + 1) % 3, (c + 2) % 3);
    let p = "kv-0";

    for i in 0..20u64 {
        let key = format!("k{i}");
        apis[a]
            .append("kv-x", &[("add", json!({"key": key, "value": i}))])
            .await;
        // At once, through a node that neither appended nor runs it.
        let url = format!("{}/projections/{p}/state", apis[b].url);
        let (code, by, _, state) = call(&http, reqwest::Method::GET, &url, None).await;
        assert_eq!(code, 200, "{state}");
        assert_eq!(by, IDS[c], "answered by the node that runs {p}");
        assert_eq!(
            state[&key],
            json!(i),
            "read {i} through {} misses the event acknowledged by {}: {state}",
            IDS[b],
            IDS[a]
        );

        let url = format!("{}/projections/{p}/query", apis[b].url);
        let (code, _, _, answer) = call(
            &http,
            reqwest::Method::POST,
            &url,
            Some(json!({"key": key})),
        )
        .await;
        assert_eq!((code, answer), (200, json!({"value": i})));
    }
    let through_b = apis[b].snapshot(p).await;
    let on_c = apis[c].snapshot(p).await;
    assert_eq!(through_b, on_c, "the same snapshot through a non-owner");
    assert_eq!(through_b["state"]["k19"], 19);

    // `hume status` on every node: every projection, with its node.
    for server in &servers {
        let table = cli_ok(server, &["status"]);
        let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(&header[..3], ["NAME", "NODE", "STATE"], "{table}");
        for (name, o) in &owner {
            let row = table
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} row on {}:\n{table}", server.url()));
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cells[1], IDS[*o], "NODE of {name}:\n{table}");
            assert_eq!(cells[2], "running", "{table}");
        }
    }
    let one: Value = serde_json::from_str(&cli_ok(&servers[b], &["status", p, "--json"])).unwrap();
    assert_eq!(one["node"], IDS[c]);

    // `hume nodes`: the three, with what each runs (as last reported).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v: Value = serde_json::from_str(&cli_ok(&servers[a], &["nodes", "--json"])).unwrap();
        let counts: BTreeMap<String, u64> = v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["id"].as_str().unwrap().to_string(),
                    n["projections"].as_u64().unwrap(),
                )
            })
            .collect();
        let want: BTreeMap<String, u64> = IDS.iter().map(|id| (id.to_string(), 1)).collect();
        if counts == want {
            assert_eq!(v["node"], IDS[a]);
            assert!(v["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["url"].as_str().unwrap().starts_with("http://")));
            break;
        }
        assert!(Instant::now() < deadline, "hume nodes: {v:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let table = cli_ok(&servers[a], &["nodes"]);
    for id in IDS {
        assert!(table.lines().any(|l| l.starts_with(id)), "{table}");
    }

    // Lifecycle commands and a new version through non-owners.
    cli_ok(&servers[b], &["stop", p]);
    assert_eq!(apis[c].status(p).await["state"], "stopped");
    cli_ok(&servers[a], &["start", p]);
    apis[c]
        .wait_status(p, "running", |s| s["state"] == "running")
        .await;
    let (code, v) = apis[b]
        .deploy_raw(
            p,
            &hume_tests::read_wasm(KV_WASM),
            &["kv-*"],
            json!({"snapshot_every": 7}),
            false,
        )
        .await;
    assert_eq!(
        code, 200,
        "options changed in place through a non-owner: {v}"
    );
    assert_eq!(apis[c].status(p).await["options"]["snapshot_every"], 7);
    cli_ok(&servers[b], &["undeploy", p]);
    for api in &apis {
        let names: Vec<Value> = api.list().await.iter().map(|s| s["name"].clone()).collect();
        assert!(!names.contains(&json!(p)), "{p} undeployed: {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_nobody_runs_is_a_503_to_retry() {
    let dir = hume_tests::temp_dir();
    let nats = NatsServer::start();
    let (_servers, apis, owner) = three_nodes(&nats, dir.path()).await;
    let http = reqwest::Client::new();
    let p = "kv-1";
    let c = owner[p];
    let other = (c + 1) % 3;

    // A request already passed on by another node is never passed on again.
    let (code, by, retry, v) = {
        let answer = http
            .get(format!("{}/projections/{p}/state", apis[other].url))
            .header("x-hume-forwarded-by", "s9")
            .send()
            .await
            .unwrap();
        let by = answer.headers()["x-hume-node"]
            .to_str()
            .unwrap()
            .to_string();
        let retry = answer
            .headers()
            .get("retry-after")
            .map(|r| r.to_str().unwrap().to_string());
        (
            answer.status().as_u16(),
            by,
            retry,
            answer.json::<Value>().await.unwrap(),
        )
    };
    assert_eq!((code, by.as_str()), (503, IDS[other]), "{v}");
    assert!(retry.is_some(), "Retry-After on a 503");
    assert!(v["error"].as_str().unwrap().contains("moving"), "{v}");

    // Its lease held by a node that is not in the cluster (as when a node
    // died): nobody answers for it until the lease expires.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let leases = async_nats::jetstream::new(client)
        .get_key_value("hume-leases")
        .await
        .unwrap();
    leases
        .put(
            p,
            serde_json::to_vec(&json!({"node": "gone", "epoch": 1}))
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    let url = format!("{}/projections/{p}/state", apis[other].url);
    let (code, _, retry, v) = call(&http, reqwest::Method::GET, &url, None).await;
    assert_eq!(code, 503, "{v}");
    assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
    let message = v["error"].as_str().unwrap();
    assert!(
        message.contains("moving") && message.contains("`gone`"),
        "{message}"
    );
    // `hume status` says so too.
    let (_, listing) = apis[other].get("/projections").await;
    let unavailable = listing["unavailable"].as_array().unwrap();
    assert!(
        unavailable
            .iter()
            .any(|u| u["name"] == p && u["node"] == "gone"),
        "{listing:#}"
    );

    // Then the lease expires and a node takes it back: answered again.
    let deadline = Instant::now() + Duration::from_millis(10 * TTL_MS);
    loop {
        let (code, _, _, v) = call(&http, reqwest::Method::GET, &url, None).await;
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{p} never answered again: {code} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
