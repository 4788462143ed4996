//! Bounded fuzzing of the whole router, in process (`tower::ServiceExt::
//! oneshot`, no sockets): arbitrary append and deploy bodies, query strings,
//! path segments and header combinations are answered with a 2xx or a 4xx,
//! never a 5xx or a panic, and a refused request writes nothing.
//!
//! Each property runs a few hundred cases over fresh in-memory stores;
//! failures are kept in `proptest-regressions/` beside this file and
//! replayed first on every run.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tower::ServiceExt;

use super::guard::SecurityConfig;
use super::{router, AppState};
use crate::backend::memory;
use crate::log::{EventLog, Limits};
use crate::plugin::{Runtime, RuntimeConfig};
use crate::projection::Manager;

/// A router over its own in-memory stores, with a projection runtime.
struct Fixture {
    rt: tokio::runtime::Runtime,
    app: Router,
    log: Arc<dyn EventLog>,
    manager: Arc<Manager>,
}

const HOST: &str = "127.0.0.1:7171";

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(|_| {})
    }

    fn with(configure: impl FnOnce(&mut AppState)) -> Fixture {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (app, log, manager) = rt.block_on(async {
            let stores = memory::stores(Limits {
                max_event_bytes: 4096,
                max_batch_events: 16,
                max_batch_bytes: 16 * 1024,
            });
            let log = stores.log.clone();
            let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
            let manager = Arc::new(
                Manager::start(stores, runtime, Default::default())
                    .await
                    .unwrap(),
            );
            let mut state = AppState::new(log.clone());
            state.projections = Some(manager.clone());
            // Long polls and consistent reads must not slow the fuzzing down.
            state.limits.max_wait = Duration::from_millis(5);
            state.security = SecurityConfig {
                listen: Some(HOST.parse().unwrap()),
                ..SecurityConfig::default()
            };
            configure(&mut state);
            (router(state), log, manager)
        });
        Fixture {
            rt,
            app,
            log,
            manager,
        }
    }

    /// Send one request; the status and the body.
    fn send(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        self.rt.block_on(async {
            let response = self.app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, body.to_vec())
        })
    }

    fn revision(&self, stream: &str) -> u64 {
        self.rt
            .block_on(self.log.streams())
            .unwrap()
            .into_iter()
            .find(|(s, _)| s == stream)
            .map_or(0, |(_, r)| r)
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        source_file: Some(file!()),
        ..Config::default()
    })
}

fn request(method: Method, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

/// Percent-encode every byte that is not unreserved.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An answer must be a JSON error or success, never a server error.
fn no_server_error(status: StatusCode, body: &[u8], what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !status.is_server_error(),
        "{what}: {status} {}",
        String::from_utf8_lossy(body)
    );
    Ok(())
}

/// JSON data of every kind the log must accept or refuse cleanly.
fn data_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => any::<i64>().prop_map(|n| n.to_string()),
        8 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        8 => Just(r#"{"a": [1, 2, {"b": null}]}"#.to_string()),
        1 => Just(r#""\ud800""#.to_string()),
        1 => Just(r#"{"k": 1, "k": 2}"#.to_string()),
        1 => Just("1e400".to_string()),
        2 => (1usize..300).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        1 => "[\\[\\]{}\":,a-z0-9\\\\ ]{0,30}",
        1 => Just(String::new()),
    ]
}

fn append_body() -> impl Strategy<Value = Vec<u8>> {
    let event = (
        prop_oneof![8 => "[a-z]{1,6}", 1 => "[a-z\\x00\\n ]{0,6}"],
        data_text(),
        prop::option::weighted(0.3, data_text()),
    )
        .prop_map(|(kind, data, metadata)| {
            let kind = serde_json::to_string(&kind).unwrap();
            match metadata {
                Some(m) => format!(r#"{{"kind":{kind},"data":{data},"metadata":{m}}}"#),
                None => format!(r#"{{"kind":{kind},"data":{data}}}"#),
            }
        });
    let expected = prop_oneof![
        8 => Just(String::new()),
        2 => Just(r#","expected_revision":"any""#.to_string()),
        1 => Just(r#","expected_revision":"no_stream""#.to_string()),
        1 => any::<i64>().prop_map(|n| format!(r#","expected_revision":{n}"#)),
        1 => Just(r#","expected_revision":1e99"#.to_string()),
        1 => Just(r#","surprise":1"#.to_string()),
    ];
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200),
        4 => (prop::collection::vec(event, 0..4), expected).prop_map(|(events, expected)| {
            format!(r#"{{"events":[{}]{expected}}}"#, events.join(",")).into_bytes()
        }),
    ]
}

#[test]
fn fuzz_append_bodies_write_all_or_nothing() {
    let f = Fixture::new();
    let strategy = (
        append_body(),
        prop_oneof![
            3 => Just(b"s".to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..8)
        ],
    );
    let (stored, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner(256)
        .run(&strategy, |(body, stream)| {
            let uri = format!("/streams/{}", encode(&stream));
            let name = String::from_utf8_lossy(&stream).into_owned();
            let before = f.revision(&name);
            let (status, answer) = f.send(request(Method::POST, &uri, body.clone()));
            no_server_error(status, &answer, "append")?;
            let after = f.revision(&name);
            if status == StatusCode::OK {
                stored.set(stored.get() + 1);
                // What was stored is what was sent, and every kit can parse it.
                // The envelope adds levels above the deepest data accepted.
                let mut de = serde_json::Deserializer::from_slice(&body);
                de.disable_recursion_limit();
                let sent: serde_json::Value = serde::Deserialize::deserialize(&mut de).unwrap();
                let events = sent["events"].as_array().unwrap();
                prop_assert_eq!(after, before + events.len() as u64);
                let page =
                    f.rt.block_on(f.log.read_stream(&name, before + 1, 100))
                        .unwrap();
                for (stored, sent) in page.events.iter().zip(events) {
                    prop_assert!(crate::log::json_check::check(&stored.data).is_ok());
                    let stored: serde_json::Value = serde_json::from_slice(&stored.data).unwrap();
                    prop_assert_eq!(&stored, &sent["data"]);
                }
            } else {
                refused.set(refused.get() + 1);
                prop_assert!(status.is_client_error(), "{}", status);
                prop_assert_eq!(after, before, "a refused append wrote nothing");
                let error: serde_json::Value = serde_json::from_slice(&answer)
                    .map_err(|e| TestCaseError::fail(format!("non-JSON error {status}: {e}")))?;
                prop_assert!(error["error"].is_string());
            }
            Ok(())
        })
        .unwrap();
    // Both outcomes were exercised.
    let (stored, refused) = (stored.get(), refused.get());
    eprintln!("{stored} stored, {refused} refused");
    assert!(
        stored > 10 && refused > 10,
        "{stored} stored, {refused} refused"
    );
}

fn deploy_body() -> impl Strategy<Value = Vec<u8>> {
    let number = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_string()),
        Just("1.5".to_string()),
        Just("\"5\"".to_string()),
        Just("null".to_string()),
    ];
    let option = (
        prop::sample::select(vec![
            "snapshot_every",
            "snapshot_after_ms",
            "catch_up_after_ms",
            "strict",
            "snapshot_store",
            "start_from",
            "call_timeout_ms",
            "max_memory_bytes",
            "max_snapshot_bytes",
            "batch_size",
            "bogus",
        ]),
        number,
    )
        .prop_map(|(k, v)| format!("\"{k}\":{v}"));
    let plugin = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        Just("AGFzbQEAAAA=".to_string()), // an empty core module
        "[ -~]{0,20}",
    ];
    let structured = (
        "[a-z0-9.\\-_ /]{0,10}",
        plugin,
        prop::collection::vec("[a-z*\\-]{0,6}", 0..3),
        prop::collection::vec(option, 0..6),
        any::<bool>(),
    )
        .prop_map(|(name, plugin, streams, options, keep)| {
            serde_json::to_string(&serde_json::json!({
                "name": name, "plugin": plugin, "streams": streams, "keep_state": keep,
            }))
            .unwrap()
            .replacen('{', &format!("{{\"options\":{{{}}},", options.join(",")), 1)
            .into_bytes()
        });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..200), structured]
}

#[test]
fn fuzz_deploy_bodies_deploy_nothing_and_never_fail_the_server() {
    let f = Fixture::new();
    runner(192)
        .run(&deploy_body(), |body| {
            let (status, answer) = f.send(request(Method::POST, "/projections", body));
            no_server_error(status, &answer, "deploy")?;
            prop_assert!(status.is_client_error(), "{}", status);
            prop_assert!(f.manager.list().is_empty(), "nothing was deployed");
            Ok(())
        })
        .unwrap();
}

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_string()),
        Just("-1".to_string()),
        Just("true".to_string()),
        Just(String::new()),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(|b| encode(&b)),
        "[%0-9a-fA-Fz+&=]{0,8}",
    ]
}

#[test]
fn fuzz_query_strings_and_paths() {
    let f = Fixture::new();
    let key = prop::sample::select(vec![
        "from_position",
        "from_revision",
        "limit",
        "wait_ms",
        "dirty",
        "pointer",
        "timeout_ms",
        "sync",
        "x",
        "",
    ]);
    let query = prop::collection::vec((key, query_value()), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    });
    let target = prop::sample::select(vec![
        (Method::GET, "/all"),
        (Method::GET, "/streams"),
        (Method::GET, "/streams/{}"),
        (Method::GET, "/categories/{}"),
        (Method::GET, "/projections"),
        (Method::GET, "/projections/{}"),
        (Method::GET, "/projections/{}/state"),
        (Method::GET, "/projections/{}/snapshot"),
        (Method::POST, "/projections/{}/query"),
        (Method::POST, "/projections/{}/catch-up"),
        (Method::POST, "/projections/{}/{}"),
        (Method::DELETE, "/projections/{}"),
        (Method::GET, "/health"),
        (Method::PUT, "/streams/{}"),
    ]);
    let segment = prop_oneof![
        Just("s".to_string()),
        prop::collection::vec(any::<u8>(), 0..10).prop_map(|b| encode(&b)),
    ];
    runner(384)
        .run(
            &(target, segment, query),
            |((method, path), segment, query)| {
                let path = path.replace("{}", &segment);
                let uri = if query.is_empty() {
                    path
                } else {
                    format!("{path}?{query}")
                };
                let (status, answer) = f.send(request(method.clone(), &uri, "{}"));
                no_server_error(status, &answer, &format!("{method} {uri}"))?;
                Ok(())
            },
        )
        .unwrap();
}

/// The guard layers in front of a real append: it succeeds exactly when
/// the `Host` is allowed, the `Origin` (if any) is the server's own and the
/// type is JSON; otherwise it is a 403/415 and nothing is written.
#[test]
fn fuzz_browser_requests_are_refused_unless_all_checks_pass() {
    let f = Fixture::new();
    let host = prop::sample::select(vec![
        None,
        Some("127.0.0.1:7171"),
        Some("localhost"),
        Some("[::1]:9"),
        Some("evil.example"),
        Some("evil.example:7171"),
        Some("127.0.0.1.evil.example"),
    ]);
    let origin = prop::sample::select(vec![
        None,
        Some("http://127.0.0.1:7171"),
        Some("http://localhost:7171"),
        Some("https://evil.example"),
        Some("null"),
    ]);
    let content_type = prop::sample::select(vec![
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ]);
    let method = prop::sample::select(vec![Method::POST, Method::DELETE]);
    runner(256)
        .run(
            &(host, origin, content_type, method),
            |(host, origin, content_type, method)| {
                let mut builder = Request::builder().method(method.clone());
                builder = match method {
                    Method::POST => builder.uri("/streams/browser"),
                    _ => builder.uri("/projections/none"),
                };
                if let Some(h) = host {
                    builder = builder.header(header::HOST, h);
                }
                if let Some(o) = origin {
                    builder = builder.header(header::ORIGIN, o);
                }
                if let Some(c) = content_type {
                    builder = builder.header(header::CONTENT_TYPE, c);
                }
                let body = r#"{"events":[{"kind":"k","data":{}}]}"#;
                let before = f.revision("browser");
                let (status, answer) = f.send(builder.body(Body::from(body)).unwrap());
                let host_ok = !matches!(host, Some(h) if h.contains("evil"));
                let origin_ok = match (origin, host) {
                    (None, _) => true,
                    (Some(o), Some(h)) => o == format!("http://{h}"),
                    (Some(_), None) => false,
                };
                let json = content_type.is_some_and(|c| c.starts_with("application/json"));
                let expected = match method {
                    Method::POST => StatusCode::OK,
                    _ => StatusCode::NOT_FOUND,
                };
                if host_ok && origin_ok && json {
                    prop_assert_eq!(status, expected, "{}", String::from_utf8_lossy(&answer));
                } else {
                    let refused = [StatusCode::FORBIDDEN, StatusCode::UNSUPPORTED_MEDIA_TYPE];
                    prop_assert!(
                        refused.contains(&status),
                        "{} {}",
                        status,
                        String::from_utf8_lossy(&answer)
                    );
                    prop_assert_eq!(f.revision("browser"), before);
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn a_body_that_stalls_is_a_408() {
    let f = Fixture::with(|state| state.security.body_read_timeout = Duration::from_millis(100));
    let (tx, rx) = futures::channel::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/streams/slow")
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_stream(rx))
        .unwrap();
    let (status, answer) = f.send(request);
    drop(tx);
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.contains("--body-read-timeout"), "{answer}");
}

#[test]
fn deploys_over_the_maximums_name_the_option() {
    let f = Fixture::new();
    for (option, value, flag) in [
        ("call_timeout_ms", u64::MAX, "--max-call-timeout"),
        ("max_memory_bytes", u64::MAX, "--max-memory"),
        ("max_snapshot_bytes", u64::MAX, "--max-snapshot"),
        ("batch_size", u64::from(u32::MAX), "--max-batch-size"),
    ] {
        let body = serde_json::json!({
            "name": "p", "plugin": "AGFzbQEAAAA=", "streams": ["s"], "options": {option: value},
        });
        let (status, answer) = f.send(request(Method::POST, "/projections", body.to_string()));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["field"], format!("options.{option}"));
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.contains(flag) && message.contains("maximum"),
            "{message}"
        );
    }
    assert!(f.manager.list().is_empty());
}
