//! Hardening of a real `hume serve` process: requests a browser would send
//! from another site, DNS rebinding, the token, a non-loopback listen
//! address, the deploy maximums, event JSON that would fault the
//! projections, and slow or idle clients.
//!
//! Requests are written by hand over TCP where the exact headers matter
//! (as a browser would send them); the `hume` CLI is run as a process.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hume_tests::server::TestServer;
use hume_tests::KV_WASM;
use serde_json::{json, Value};

const TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// An answer: status, headers (lowercase names), body as JSON (or a string).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: String,
    body: Value,
}

fn addr(server: &TestServer) -> String {
    server.url().trim_start_matches("http://").to_string()
}

/// Send one request written by hand (`Connection: close` is added) and read
/// the whole answer.
fn raw(server: &TestServer, head: &str, body: &str) -> Answer {
    let mut s = TcpStream::connect(addr(server)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let request = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_answer(&out)
}

fn parse_answer(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Answer {
        status,
        headers: head.to_ascii_lowercase(),
        body: serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string())),
    }
}

fn get(server: &TestServer, path: &str, extra: &str) -> Answer {
    let host = addr(server);
    raw(
        server,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}{extra}"),
        "",
    )
}

fn events_of(server: &TestServer, stream: &str) -> Vec<Value> {
    let a = get(
        server,
        &format!("/streams/{stream}"),
        &format!("\r\nAuthorization: Bearer {TOKEN}"),
    );
    assert_eq!(a.status, 200, "{a:?}");
    a.body["events"].as_array().unwrap().clone()
}

fn head_of(server: &TestServer) -> u64 {
    get(server, "/health", "").body["head"].as_u64().unwrap()
}

const BATCH: &str = r#"{"events":[{"kind":"k","data":{"a":1}}]}"#;

fn hume(server: &TestServer, args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(hume_tests::hume_bin());
    cmd.args(args)
        .env("HUME_URL", server.url())
        .env("RUST_LOG", "warn")
        .env_remove("HUME_TOKEN");
    if let Some(t) = token {
        cmd.env("HUME_TOKEN", t);
    }
    cmd.output().expect("run hume")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn failed(out: Output) -> String {
    assert!(
        !out.status.success(),
        "should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn cross_site_browser_requests_change_nothing() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let host = addr(&server);
    let evil = "Origin: https://evil.example\r\nSec-Fetch-Site: cross-site";
    // (what, request head, body, expected status)
    let plugin = base64::engine::general_purpose::STANDARD.encode(hume_tests::read_wasm(KV_WASM));
    let deploy = json!({"name": "kv", "plugin": plugin, "streams": ["*"]}).to_string();
    let cases: Vec<(&str, String, &str, u16)> = vec![
        (
            "fetch no-cors text/plain",
            format!("POST /streams/x HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain;charset=UTF-8\r\n{evil}"),
            BATCH,
            403,
        ),
        (
            "form urlencoded",
            format!("POST /streams/x HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n{evil}"),
            BATCH,
            403,
        ),
        (
            "JSON from another site (if a browser ever sent it)",
            format!("POST /streams/x HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{evil}"),
            BATCH,
            403,
        ),
        (
            "text/plain without Origin (an old browser, a form)",
            format!("POST /streams/x HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain"),
            BATCH,
            415,
        ),
        (
            "multipart form",
            format!("POST /streams/x HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=b"),
            BATCH,
            415,
        ),
        (
            "no content type",
            format!("POST /streams/x HTTP/1.1\r\nHost: {host}"),
            BATCH,
            415,
        ),
        (
            "deploy as text/plain",
            format!("POST /projections HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain"),
            &deploy,
            415,
        ),
    ];
    for (what, head, body, status) in &cases {
        let a = raw(&server, head, body);
        assert_eq!(a.status, *status, "{what}: {a:?}");
        let message = a.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: JSON error: {a:?}"));
        match status {
            415 => assert!(
                message.contains("Content-Type: application/json"),
                "{what}: {message}"
            ),
            _ => assert!(
                message.contains("Origin") && message.contains("--allow-origin"),
                "{what}: {message}"
            ),
        }
        assert!(!a.headers.contains("access-control-allow-origin"), "{what}");
    }
    // No preflight is granted, so a browser never sends the JSON request.
    let a = raw(
        &server,
        &format!(
            "OPTIONS /streams/x HTTP/1.1\r\nHost: {host}\r\nOrigin: https://evil.example\r\n\
             Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type"
        ),
        "",
    );
    assert_eq!(a.status, 403, "{a:?}");
    assert!(!a.headers.contains("access-control-allow-origin"), "{a:?}");
    assert_eq!(head_of(&server), 0, "nothing was appended");
    assert!(get(&server, "/projections", "").body["projections"]
        .as_array()
        .unwrap()
        .is_empty());

    // Deploy a projection, then try the other state changes from a page.
    let a = raw(
        &server,
        &format!("POST /projections HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"),
        &deploy,
    );
    assert_eq!(a.status, 201, "{a:?}");
    for (method, path) in [
        ("POST", "/projections/kv/reset"),
        ("POST", "/projections/kv/stop"),
        ("DELETE", "/projections/kv"),
    ] {
        for ct in [
            "",
            "\r\nContent-Type: text/plain",
            "\r\nContent-Type: application/x-www-form-urlencoded",
        ] {
            let a = raw(
                &server,
                &format!("{method} {path} HTTP/1.1\r\nHost: {host}{ct}"),
                "",
            );
            assert_eq!(a.status, 415, "{method} {path} {ct:?}: {a:?}");
        }
    }
    let status = get(&server, "/projections/kv", "");
    assert_eq!(status.status, 200, "still deployed: {status:?}");
    assert_eq!(status.body["state"], "running", "{status:?}");

    // The same requests, as the server's own page or the CLI would send them.
    let own = format!("Origin: http://{host}\r\nContent-Type: application/json");
    let a = raw(
        &server,
        &format!("POST /streams/x HTTP/1.1\r\nHost: {host}\r\n{own}"),
        BATCH,
    );
    assert_eq!(a.status, 200, "{a:?}");
    let a = raw(
        &server,
        "POST /streams/x HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json",
        BATCH,
    );
    assert_eq!(a.status, 200, "{a:?}");
    let a = raw(
        &server,
        &format!(
            "DELETE /projections/kv HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
        ),
        "",
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(head_of(&server), 2);
}

#[test]
fn other_host_names_are_refused_against_dns_rebinding() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start_with(dir.path().join("data"), &["--allow-host", "hume.test"]);
    let port = addr(&server).rsplit_once(':').unwrap().1.to_string();
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
    ] {
        for (method, path, body) in [
            ("GET", "/health", ""),
            ("GET", "/all", ""),
            ("POST", "/streams/x", BATCH),
        ] {
            let a = raw(
                &server,
                &format!(
                    "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
                ),
                body,
            );
            assert_eq!(a.status, 403, "{host} {path}: {a:?}");
            let message = a.body["error"].as_str().unwrap();
            assert!(message.contains("--allow-host"), "{message}");
        }
    }
    assert_eq!(head_of(&server), 0);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("hume.test:{port}"),
        "HUME.TEST".to_string(),
    ] {
        let a = raw(&server, &format!("GET /all HTTP/1.1\r\nHost: {host}"), "");
        assert_eq!(a.status, 200, "{host}: {a:?}");
    }
}

#[test]
fn allowed_origins_get_cors_and_may_write() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start_with(
        dir.path().join("data"),
        &["--allow-origin", "https://app.example"],
    );
    let host = addr(&server);
    let a = raw(
        &server,
        &format!(
            "OPTIONS /streams/x HTTP/1.1\r\nHost: {host}\r\nOrigin: https://app.example\r\n\
             Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type"
        ),
        "",
    );
    assert_eq!(a.status, 204, "{a:?}");
    assert!(
        a.headers
            .contains("access-control-allow-origin: https://app.example"),
        "{a:?}"
    );
    assert!(
        a.headers
            .contains("access-control-allow-headers: authorization, content-type"),
        "{a:?}"
    );
    let a = raw(
        &server,
        &format!(
            "POST /streams/x HTTP/1.1\r\nHost: {host}\r\nOrigin: https://app.example\r\n\
             Content-Type: application/json"
        ),
        BATCH,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.headers
            .contains("access-control-allow-origin: https://app.example"),
        "{a:?}"
    );
    // Another origin still gets nothing.
    let a = raw(
        &server,
        &format!(
            "POST /streams/x HTTP/1.1\r\nHost: {host}\r\nOrigin: https://app.example:444\r\n\
             Content-Type: application/json"
        ),
        BATCH,
    );
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(head_of(&server), 1);
}

#[test]
fn a_token_guards_every_endpoint_but_health() {
    let dir = hume_tests::temp_dir();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let server = TestServer::start_with(
        dir.path().join("data"),
        &["--auth-token-file", token_file.to_str().unwrap()],
    );
    let host = addr(&server);
    let endpoints = [
        ("GET", "/streams"),
        ("GET", "/streams/x"),
        ("GET", "/all"),
        ("GET", "/categories/x"),
        ("GET", "/projections"),
        ("GET", "/projections/kv"),
        ("GET", "/projections/kv/state"),
        ("GET", "/projections/kv/snapshot"),
        ("GET", "/metrics"),
        ("GET", "/nowhere"),
        ("POST", "/streams/x"),
        ("POST", "/projections"),
        ("POST", "/plugins/validate"),
        ("POST", "/projections/kv/query"),
        ("POST", "/projections/kv/catch-up"),
        ("POST", "/projections/kv/take-snapshot"),
        ("POST", "/projections/kv/reset"),
        ("DELETE", "/projections/kv"),
    ];
    for (method, path) in endpoints {
        for auth in [
            String::new(),
            "\r\nAuthorization: Bearer wrong-token-wrong-token".to_string(),
            format!("\r\nAuthorization: Basic {TOKEN}"),
            format!("\r\nAuthorization: Bearer {TOKEN}x"),
        ] {
            let a = raw(
                &server,
                &format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json{auth}"),
                if method == "POST" { BATCH } else { "" },
            );
            assert_eq!(a.status, 401, "{method} {path} {auth:?}: {a:?}");
            let message = a.body["error"].as_str().unwrap();
            assert!(message.contains("Authorization: Bearer"), "{message}");
            assert!(message.contains("HUME_TOKEN"), "{message}");
            assert!(a.headers.contains("www-authenticate: bearer"), "{a:?}");
        }
        let a = raw(
            &server,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Authorization: Bearer {TOKEN}"
            ),
            if path == "/streams/x" { BATCH } else { "{}" },
        );
        assert_ne!(a.status, 401, "{method} {path} with the token: {a:?}");
        assert!(
            a.status < 500 || path == "/metrics",
            "{method} {path}: {a:?}"
        );
    }
    let health = get(&server, "/health", "");
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(
        events_of(&server, "x").len(),
        1,
        "only the authorised append landed"
    );

    // The CLI: HUME_TOKEN or --token, on every kind of command.
    let err = failed(hume(
        &server,
        &["append", "c", "--kind", "k", "--data", "1"],
        None,
    ));
    assert!(err.contains("HUME_TOKEN") && err.contains("401"), "{err}");
    let err = failed(hume(&server, &["streams"], Some("wrong-token-wrong-token")));
    assert!(err.contains("wrong token"), "{err}");
    ok(hume(
        &server,
        &[
            "append",
            "c",
            "--kind",
            "add",
            "--data",
            r#"{"key":"a","value":1}"#,
        ],
        Some(TOKEN),
    ));
    let out = ok(hume(&server, &["--token", TOKEN, "read", "c"], None));
    assert!(out.contains(r#""key":"a""#), "{out}");
    ok(hume(
        &server,
        &["deploy", "kv", KV_WASM, "--stream", "c"],
        Some(TOKEN),
    ));
    let state = ok(hume(&server, &["state", "kv"], Some(TOKEN)));
    assert!(state.contains("\"a\": 1"), "{state}");
    let answer = ok(hume(
        &server,
        &["query", "kv", r#"{"key":"a"}"#],
        Some(TOKEN),
    ));
    assert!(answer.contains("\"value\": 1"), "{answer}");
    ok(hume(&server, &["catch-up", "kv", "--sync"], Some(TOKEN)));
    ok(hume(&server, &["take-snapshot", "kv"], Some(TOKEN)));
    ok(hume(&server, &["reset", "kv"], Some(TOKEN)));
    ok(hume(&server, &["status", "kv"], Some(TOKEN)));
    ok(hume(&server, &["undeploy", "kv"], Some(TOKEN)));
    let err = failed(hume(&server, &["status"], None));
    assert!(err.contains("401"), "{err}");

    // --token is for clients only.
    // (--max-connections 0 makes a server that ignored --token exit at once.)
    let err = failed(hume(
        &server,
        &["serve", "--token", TOKEN, "--max-connections", "0"],
        None,
    ));
    assert!(err.contains("--auth-token-file"), "{err}");
    let err = failed(hume(
        &server,
        &["validate", KV_WASM, "--token", TOKEN],
        None,
    ));
    assert!(err.contains("--token"), "{err}");
    assert!(
        !server.stderr().contains(TOKEN),
        "the server never logs the token"
    );
}

#[test]
fn the_token_can_come_from_the_environment() {
    let dir = hume_tests::temp_dir();
    let server =
        TestServer::try_start_with_env(dir.path().join("data"), &[], &[("HUME_AUTH_TOKEN", TOKEN)])
            .unwrap();
    assert_eq!(get(&server, "/all", "").status, 401);
    assert_eq!(
        get(
            &server,
            "/all",
            &format!("\r\nAuthorization: Bearer {TOKEN}")
        )
        .status,
        200
    );
    // A weak token is refused at start.
    let err = TestServer::try_start_with_env(
        dir.path().join("data2"),
        &[],
        &[("HUME_AUTH_TOKEN", "secret")],
    )
    .unwrap_err();
    assert!(
        err.contains("HUME_AUTH_TOKEN") && err.contains("16"),
        "{err}"
    );
}

#[test]
fn a_non_loopback_listen_address_needs_a_token() {
    let dir = hume_tests::temp_dir();
    let serve = |extra: &[&str]| {
        let mut cmd = Command::new(hume_tests::hume_bin());
        cmd.args(["serve", "--listen", "0.0.0.0:0", "--data"])
            .arg(dir.path().join("data"))
            .args(extra)
            .env_remove("HUME_AUTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let out = serve(&[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--auth-token-file") && err.contains("--listen"),
        "{err}"
    );
    let out = serve(&["--allow-remote"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--allow-remote is gone") && err.contains("--auth-token-file"),
        "{err}"
    );

    // With a token it starts (and still answers only with the token).
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut child = serve(&["--auth-token-file", token_file.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let port = line.trim().rsplit_once(':').map(|(_, p)| p.to_string());
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("hume listening on http://0.0.0.0:"),
        "{line:?}"
    );
    assert!(port.is_some_and(|p| p != "0"), "{line:?}");
}

#[test]
fn deploys_over_the_server_maximums_are_refused() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start_with(
        dir.path().join("data"),
        &[
            "--max-memory",
            "128M",
            "--max-call-timeout",
            "10000",
            "--max-snapshot",
            "32M",
            "--max-batch-size",
            "1000",
        ],
    );
    let host = addr(&server);
    let plugin = base64::engine::general_purpose::STANDARD.encode(hume_tests::read_wasm(KV_WASM));
    for (option, value, flag, max) in [
        (
            "call_timeout_ms",
            json!(u64::MAX),
            "--max-call-timeout",
            "10000",
        ),
        (
            "max_memory_bytes",
            json!(u64::MAX),
            "--max-memory",
            "134217728",
        ),
        (
            "max_memory_bytes",
            json!(129u64 << 20),
            "--max-memory",
            "134217728",
        ),
        (
            "max_snapshot_bytes",
            json!(u64::MAX),
            "--max-snapshot",
            "33554432",
        ),
        ("batch_size", json!(1001), "--max-batch-size", "1000"),
    ] {
        let body =
            json!({"name": "kv", "plugin": plugin, "streams": ["*"], "options": {option: value}});
        let a = raw(
            &server,
            &format!(
                "POST /projections HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
            ),
            &body.to_string(),
        );
        assert_eq!(a.status, 400, "{option}: {a:?}");
        assert_eq!(a.body["field"], format!("options.{option}"), "{a:?}");
        let message = a.body["error"].as_str().unwrap();
        assert!(message.contains(flag) && message.contains(max), "{message}");
    }
    let err = failed(hume(
        &server,
        &[
            "deploy",
            "kv",
            KV_WASM,
            "--stream",
            "*",
            "--max-memory",
            "1G",
        ],
        None,
    ));
    assert!(
        err.contains("--max-memory") && err.contains("134217728"),
        "{err}"
    );
    assert!(get(&server, "/projections", "").body["projections"]
        .as_array()
        .unwrap()
        .is_empty());
    // At the maximums it deploys.
    ok(hume(
        &server,
        &[
            "deploy",
            "kv",
            KV_WASM,
            "--stream",
            "*",
            "--max-memory",
            "128M",
            "--call-timeout",
            "10000",
            "--batch-size",
            "1000",
        ],
        None,
    ));
    // A limit left at its default gets the server's maximum when that is
    // lower (the default memory limit, 256 MiB, is over this one's 128M).
    ok(hume(
        &server,
        &["deploy", "plain", KV_WASM, "--stream", "*"],
        None,
    ));
    let status = get(&server, "/projections/plain", "").body;
    assert_eq!(
        status["options"]["max_memory_bytes"],
        json!(128u64 << 20),
        "{status}"
    );
}

#[test]
fn event_json_no_projection_could_read_is_refused() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let host = addr(&server);
    ok(hume(
        &server,
        &["deploy", "kv", KV_WASM, "--stream", "kv"],
        None,
    ));
    let append = |body: &str| {
        raw(
            &server,
            &format!("POST /streams/kv HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"),
            body,
        )
    };
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let good = r#"{"kind":"add","data":{"key":"ok","value":1}}"#;
    // (what, events, field, words in the reason)
    let cases = [
        (
            "100,000 levels deep",
            format!(r#"{{"kind":"add","data":{}}}"#, deep(100_000)),
            "events[0].data",
            "levels deep",
        ),
        (
            "128 levels deep",
            format!(
                r#"{{"kind":"add","data":{{"key":"a","value":{}}}}}"#,
                deep(127)
            ),
            "events[0].data",
            "127 levels",
        ),
        (
            "a lone surrogate",
            r#"{"kind":"add","data":{"key":"\ud800","value":1}}"#.to_string(),
            "events[0].data",
            "lone surrogate",
        ),
        (
            "a lone low surrogate in a key",
            r#"{"kind":"add","data":{"key":"a","value":{"\udc00":1}}}"#.to_string(),
            "events[0].data",
            "lone surrogate",
        ),
        (
            "duplicate keys",
            r#"{"kind":"add","data":{"key":"a","value":1,"value":2}}"#.to_string(),
            "events[0].data",
            "\"value\" twice",
        ),
        (
            "duplicate keys in metadata",
            r#"{"kind":"add","data":{"key":"a","value":1},"metadata":{"u":1,"\u0075":2}}"#
                .to_string(),
            "events[0].metadata",
            "twice",
        ),
        (
            "a number out of range",
            r#"{"kind":"add","data":{"key":"a","value":1e400}}"#.to_string(),
            "events[0].data",
            "64-bit float",
        ),
        (
            "the second event of a batch",
            format!(r#"{good},{{"kind":"add","data":"\udfff"}}"#),
            "events[1].data",
            "lone surrogate",
        ),
    ];
    for (what, events, field, reason) in &cases {
        let a = append(&format!(r#"{{"events":[{events}]}}"#));
        assert_eq!(a.status, 400, "{what}: {a:?}");
        assert_eq!(a.body["field"], *field, "{what}: {a:?}");
        let message = a.body["error"].as_str().unwrap();
        assert!(
            message.contains(field) && message.contains(reason),
            "{what}: {message}"
        );
    }
    assert!(events_of(&server, "kv").is_empty(), "nothing was written");
    assert_eq!(head_of(&server), 0);

    // At the edge: what passes, the strict Rust projection applies.
    let edge = format!(
        r#"{{"kind":"add","data":{{"key":"deep","value":{}}}}}"#,
        deep(126)
    );
    let pair = r#"{"kind":"add","data":{"key":"pair","value":"\ud834\udd1e"}}"#;
    let a = append(&format!(r#"{{"events":[{edge},{pair}]}}"#));
    assert_eq!(a.status, 200, "{a:?}");
    let state = ok(hume(&server, &["state", "kv", "--pointer", "/pair"], None));
    assert_eq!(state.trim(), "\"𝄞\"");
    let status: Value =
        serde_json::from_str(&ok(hume(&server, &["status", "kv", "--json"], None))).unwrap();
    assert_eq!(status["offset"], 2, "{status}");
    assert_eq!(status["state"], "running", "{status}");
}

#[test]
fn idle_and_slow_clients_do_not_stop_the_server() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let host = addr(&server);
    // 300 connections: idle ones, and ones sending their head a byte at a time.
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(&host).expect("connect");
        if i % 2 == 0 {
            s.write_all(format!("POST /streams/slow HTTP/1.1\r\nHost: {host}\r\nX-").as_bytes())
                .unwrap();
        }
        idle.push(s);
    }
    let started = Instant::now();
    let health = get(&server, "/health", "");
    assert_eq!(health.status, 200, "{health:?}");
    let a = raw(
        &server,
        &format!("POST /streams/fast HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"),
        BATCH,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered in {:?}",
        started.elapsed()
    );
    drop(idle);
}

#[test]
fn connections_beyond_the_limit_get_a_clear_error_and_idle_ones_are_closed() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start_with(
        dir.path().join("data"),
        &[
            "--max-connections",
            "20",
            "--header-read-timeout",
            "1500",
            "--body-read-timeout",
            "1000",
        ],
    );
    let host = addr(&server);
    // 20 long polls hold every connection (deterministically, unlike idle
    // connections, which the header timeout closes). A connection of the
    // start-up probes may still hold its slot on a loaded machine: a poll
    // that is refused for it (an immediate 503) is opened again.
    let started = Instant::now();
    let open_poll = || {
        let mut s = TcpStream::connect(&host).unwrap();
        s.write_all(
            format!("GET /all?from_position=1&wait_ms=10000 HTTP/1.1\r\nHost: {host}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        s
    };
    let mut polls: Vec<TcpStream> = Vec::new();
    while polls.len() < 20 {
        let mut s = open_poll();
        s.set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        let mut first = [0u8; 12];
        match s.read(&mut first) {
            // Answered at once: refused while an old connection held a slot.
            Ok(n) if n > 0 => {
                assert!(first.starts_with(b"HTTP/1.1 503"), "{first:?}");
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "slots never freed"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            // Still waiting: it holds a slot.
            _ => polls.push(s),
        }
    }
    // The server takes the 20 in its own time (a loaded machine may take
    // longer than a fixed pause): ask until the 21st is refused, while the
    // polls (10 s) still hold their slots.
    let deadline = Instant::now() + Duration::from_secs(4);
    let a = loop {
        let a = get(&server, "/health", "");
        if a.status == 503 || Instant::now() > deadline {
            break a;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(a.status, 503, "{a:?}");
    let message = a.body["error"].as_str().unwrap();
    assert!(
        message.contains("--max-connections") && message.contains("20"),
        "{message}"
    );

    // Each poll is answered, then its connection, idle, is closed by the
    // server once the header timeout has passed.
    for s in &mut polls {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(11_500) && waited < Duration::from_secs(25),
        "idle connections closed after {waited:?}"
    );
    drop(polls);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get(&server, "/health", "").status, 200);

    // A head sent byte by byte (slowloris) is cut off too.
    let mut s = TcpStream::connect(&host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    for b in format!("GET /health HTTP/1.1\r\nHost: {host}\r\nX-Slow: ").bytes() {
        if s.write_all(&[b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // A body trickling in too slowly is cut off with a 408; nothing written.
    let mut s = TcpStream::connect(&host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!(
            "POST /streams/x HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n{}",
            BATCH.len(),
            &BATCH[..10]
        )
        .as_bytes(),
    )
    .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let a = parse_answer(&out);
    assert_eq!(a.status, 408, "{a:?}");
    assert!(
        a.body["error"]
            .as_str()
            .unwrap()
            .contains("--body-read-timeout"),
        "{a:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(head_of(&server), 0);
}
