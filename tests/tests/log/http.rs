//! The events HTTP API of a real `hume serve` process: every bad input is a
//! clear 400/409/413 JSON error naming the field, and the head never moves.
//! Every test runs on both backends (embedded RocksDB, NATS JetStream).

use hume_tests::on_both_backends;
use hume_tests::server::{Backend, TestServer};
use serde_json::{json, Value};

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    fn new(server: &TestServer) -> Api {
        Api {
            // No pooled connections: the server closes a connection whose
            // oversize body it refused (413) without reading, and a request
            // reusing that connection would fail with `IncompleteMessage`.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
            url: server.url().to_string(),
        }
    }

    async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("non-JSON answer {status} {text:?}: {e}"));
        (status, v)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("non-JSON answer {status} {text:?}: {e}"));
        (status, v)
    }

    async fn head(&self) -> u64 {
        self.get("/health").await.1["head"].as_u64().unwrap()
    }
}

on_both_backends!(
    append_and_read_round_trip,
    bad_appends_are_clear_errors_and_write_nothing,
    bad_reads_are_clear_errors,
    long_poll_returns_new_events,
    concurrent_http_appenders_with_expected_revisions
);

fn start(backend: Backend) -> (tempfile::TempDir, TestServer) {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start_on(
        backend,
        dir.path().join("data"),
        &[
            "--max-event-bytes",
            "1000",
            "--max-batch-events",
            "5",
            "--max-batch-bytes",
            "3000",
        ],
    );
    (dir, server)
}

async fn append_and_read_round_trip(backend: Backend) {
    let (_dir, server) = start(backend);
    let api = Api::new(&server);
    let (status, out) = api
        .post_raw(
            "/streams/account-1",
            json!({"events": [
                {"kind": "opened", "data": {"owner": "ann"}},
                {"kind": "deposited", "data": {"amount": 10.5}, "metadata": {"by": "atm"}}
            ], "expected_revision": "no_stream"})
            .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out,
        json!({"stream": "account-1", "first_position": 1, "last_position": 2, "revision": 2})
    );
    let (_, out) = api
        .post_raw(
            "/streams/order%2F7",
            json!({"events": [{"kind": "placed", "data": [1, "two", null]}], "expected_revision": 0})
                .to_string(),
        )
        .await;
    assert_eq!(out["stream"], "order/7");
    let (status, page) = api.get("/all?from_position=0&limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(page["next"], 3);
    let e = &page["events"][1];
    assert_eq!(e["position"], 2);
    assert_eq!(e["stream"], "account-1");
    assert_eq!(e["revision"], 2);
    assert_eq!(e["kind"], "deposited");
    assert_eq!(e["data"], json!({"amount": 10.5}));
    assert_eq!(e["metadata"], json!({"by": "atm"}));
    assert!(e["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    let (_, page) = api.get("/all?from_position=3").await;
    assert_eq!(page["events"][0]["data"], json!([1, "two", null]));
    assert_eq!(page["events"][0]["metadata"], Value::Null);
    assert_eq!(page["next"], Value::Null);
    let (_, page) = api.get("/streams/account-1?from_revision=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["revision"], 2);
    let (_, page) = api.get("/categories/account-").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let (_, page) = api.get("/categories/order").await;
    assert_eq!(page["events"][0]["stream"], "order/7");
    let (_, list) = api.get("/streams").await;
    assert_eq!(
        list,
        json!({"streams": [{"stream": "account-1", "revision": 2}, {"stream": "order/7", "revision": 1}]})
    );
    let (status, health) = api.get("/health").await;
    assert_eq!((status, health["head"].as_u64()), (200, Some(3)));
}

async fn bad_appends_are_clear_errors_and_write_nothing(backend: Backend) {
    let (_dir, server) = start(backend);
    let api = Api::new(&server);
    let (status, _) = api
        .post_raw("/streams/s", r#"{"events":[{"kind":"k","data":1}]}"#)
        .await;
    assert_eq!(status, 200);
    let long = "n".repeat(256);
    let big = "x".repeat(1200);
    let six: Vec<Value> = (0..6).map(|i| json!({"kind": "k", "data": i})).collect();
    let four_big: Vec<Value> = (0..4)
        .map(|_| json!({"kind": "k", "data": "y".repeat(900)}))
        .collect();
    // (what, path, body, status, field)
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        (
            "malformed JSON",
            "/streams/s".into(),
            r#"{"events": [{"kind": "k", "data": 1"#.into(),
            400,
            "events[0]",
        ),
        (
            "not JSON at all",
            "/streams/s".into(),
            "hello".into(),
            400,
            "body",
        ),
        ("empty body", "/streams/s".into(), "".into(), 400, "body"),
        (
            "trailing garbage",
            "/streams/s".into(),
            r#"{"events":[{"kind":"k","data":1}]} x"#.into(),
            400,
            "body",
        ),
        (
            "events not a list",
            "/streams/s".into(),
            r#"{"events": {"kind": "k"}}"#.into(),
            400,
            "events",
        ),
        (
            "kind not a string",
            "/streams/s".into(),
            r#"{"events":[{"kind":5,"data":1}]}"#.into(),
            400,
            "events[0].kind",
        ),
        (
            "kind missing",
            "/streams/s".into(),
            r#"{"events":[{"data":1}]}"#.into(),
            400,
            "events[0]",
        ),
        (
            "data missing",
            "/streams/s".into(),
            r#"{"events":[{"kind":"k"}]}"#.into(),
            400,
            "events[0]",
        ),
        (
            "empty kind",
            "/streams/s".into(),
            r#"{"events":[{"kind":"k","data":1},{"kind":"","data":1}]}"#.into(),
            400,
            "events[1].kind",
        ),
        (
            "unknown field",
            "/streams/s".into(),
            r#"{"events":[{"kind":"k","data":1}],"expectedRevision":1}"#.into(),
            400,
            "expectedRevision",
        ),
        (
            "events missing",
            "/streams/s".into(),
            r#"{}"#.into(),
            400,
            "body",
        ),
        (
            "empty event list",
            "/streams/s".into(),
            r#"{"events":[]}"#.into(),
            400,
            "events",
        ),
        (
            "control char in stream",
            "/streams/a%0Ab".into(),
            r#"{"events":[{"kind":"k","data":1}]}"#.into(),
            400,
            "stream",
        ),
        (
            "stream name too long",
            format!("/streams/{long}"),
            r#"{"events":[{"kind":"k","data":1}]}"#.into(),
            400,
            "stream",
        ),
        (
            "invalid UTF-8 stream",
            "/streams/a%FFb".into(),
            r#"{"events":[{"kind":"k","data":1}]}"#.into(),
            400,
            "stream",
        ),
        (
            "unknown expected revision",
            "/streams/s".into(),
            r#"{"events":[{"kind":"k","data":1}],"expected_revision":"latest"}"#.into(),
            400,
            "expected_revision",
        ),
        (
            "negative expected revision",
            "/streams/s".into(),
            r#"{"events":[{"kind":"k","data":1}],"expected_revision":-1}"#.into(),
            400,
            "expected_revision",
        ),
        (
            "fractional expected revision",
            "/streams/s".into(),
            r#"{"events":[{"kind":"k","data":1}],"expected_revision":1.5}"#.into(),
            400,
            "expected_revision",
        ),
        (
            "boolean expected revision",
            "/streams/s".into(),
            r#"{"events":[{"kind":"k","data":1}],"expected_revision":true}"#.into(),
            400,
            "expected_revision",
        ),
        (
            "oversize event",
            "/streams/s".into(),
            json!({"events": [{"kind": "k", "data": 1}, {"kind": "k", "data": big}]}).to_string(),
            413,
            "events[1]",
        ),
        (
            "too many events",
            "/streams/s".into(),
            json!({"events": six}).to_string(),
            413,
            "events",
        ),
        (
            "too many bytes",
            "/streams/s".into(),
            json!({"events": four_big}).to_string(),
            413,
            "events",
        ),
        (
            "stale expected revision",
            "/streams/s".into(),
            r#"{"events":[{"kind":"k","data":1}],"expected_revision":0}"#.into(),
            409,
            "expected_revision",
        ),
        (
            "no_stream on existing",
            "/streams/s".into(),
            r#"{"events":[{"kind":"k","data":1}],"expected_revision":"no_stream"}"#.into(),
            409,
            "expected_revision",
        ),
    ];
    for (what, path, body, status, field) in cases {
        let (got, out) = api.post_raw(&path, body).await;
        assert_eq!(got, status, "{what}: {out}");
        assert_eq!(out["field"], field, "{what}: {out}");
        let msg = out["error"].as_str().unwrap();
        assert!(msg.len() > 20, "{what}: a real message: {out}");
        if status == 400 && field != "body" {
            assert!(
                msg.contains(field),
                "{what}: the message names `{field}`: {msg}"
            );
        }
        if status == 409 {
            assert_eq!(out["current_revision"], 1, "{what}: {out}");
            assert!(msg.contains("retry"), "{what}: says what to do: {msg}");
        }
        assert_eq!(api.head().await, 1, "{what}: nothing was written");
    }
    // A body over the server's body limit (2 × max batch bytes + 1 MiB).
    let huge = format!(
        r#"{{"events":[{{"kind":"k","data":"{}"}}]}}"#,
        "z".repeat(2 * 1024 * 1024)
    );
    let (got, out) = api.post_raw("/streams/s", huge).await;
    assert_eq!(got, 413, "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("batch-size"),
        "{out}"
    );
    assert_eq!(api.head().await, 1);
    let (_, list) = api.get("/streams").await;
    assert_eq!(list, json!({"streams": [{"stream": "s", "revision": 1}]}));
}

async fn bad_reads_are_clear_errors(backend: Backend) {
    let (_dir, server) = start(backend);
    let api = Api::new(&server);
    for (path, field) in [
        ("/all?from_position=abc", "from_position"),
        ("/all?from_position=-1", "from_position"),
        ("/all?limit=0", "limit"),
        ("/all?limt=5", "limt"),
        ("/streams/s?from_revision=x", "from_revision"),
        ("/streams/a%0Ab", "stream"),
        ("/categories/a%0A", "prefix"),
    ] {
        let (status, out) = api.get(path).await;
        assert_eq!(status, 400, "{path}: {out}");
        assert_eq!(out["field"], field, "{path}: {out}");
    }
    let (status, out) = api.get("/nowhere").await;
    assert_eq!(status, 404);
    assert!(out["error"].as_str().unwrap().contains("/streams"), "{out}");
}

async fn long_poll_returns_new_events(backend: Backend) {
    let (_dir, server) = start(backend);
    let api = Api::new(&server);
    let url = api.url.clone();
    let reader = tokio::spawn(async move {
        let r = reqwest::get(format!("{url}/all?from_position=1&wait_ms=60000"))
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()
    });
    // The reader may or may not be waiting yet: either way it must see the event.
    let (status, _) = api
        .post_raw("/streams/s", r#"{"events":[{"kind":"k","data":1}]}"#)
        .await;
    assert_eq!(status, 200);
    let page = reader.await.unwrap();
    assert_eq!(page["events"][0]["position"], 1);
}

async fn concurrent_http_appenders_with_expected_revisions(backend: Backend) {
    let (_dir, server) = start(backend);
    let url = server.url().to_string();
    const TARGET: u64 = 40;
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut known, mut wins) = (0u64, 0u64);
            while known < TARGET {
                let body = json!({"events": [{"kind": "inc", "data": {"w": w, "on": known}}],
                                  "expected_revision": known});
                let r = http
                    .post(format!("{url}/streams/counter"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap();
                match status {
                    200 => {
                        wins += 1;
                        known = v["revision"].as_u64().unwrap();
                    }
                    409 => known = v["current_revision"].as_u64().unwrap(),
                    s => panic!("{s}: {v}"),
                }
            }
            wins
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, TARGET);
    let api = Api::new(&server);
    let (_, page) = api.get("/streams/counter?limit=1000").await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len() as u64, TARGET);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["revision"], i as u64 + 1);
        assert_eq!(e["data"]["on"], i as u64, "no lost update");
    }
}
