//! `hume validate` and `hume replay` as a user runs them: the real binary,
//! real plugins, files on disk.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use tempfile::TempDir;

/// Run `hume` with a private compiled-plugin cache.
fn hume(cache: &Path, args: &[&str]) -> Output {
    Command::new(hume_tests::hume_bin())
        .args(args)
        .env("HUME_CACHE_DIR", cache)
        .env_remove("RUST_LOG")
        .output()
        .expect("run hume")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn lines(events: &[Value]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

/// The single JSON object a successful replay prints.
fn result(out: &Output) -> Value {
    assert!(out.status.success(), "hume failed: {}", stderr(out));
    let text = stdout(out);
    assert_eq!(
        text.lines().count(),
        1,
        "exactly one line on stdout: {text}"
    );
    serde_json::from_str(&text).expect("stdout is JSON")
}

fn kv_add(key: &str, value: Value) -> Value {
    json!({"stream": "s", "kind": "add", "data": {"key": key, "value": value}})
}

#[test]
fn validate_prints_the_plugin_world_and_hash() {
    let dir = TempDir::new().unwrap();
    let out = hume(dir.path(), &["validate", hume_tests::KV_WASM]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("kv"), "{text}");
    assert!(text.contains("hume:projection@0.1.0"), "{text}");
    assert!(text.contains("add, remove"), "{text}");

    let out = hume(dir.path(), &["validate", "--json", hume_tests::KV_WASM]);
    let info: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(info["name"], "kv");
    assert_eq!(info["world"], "hume:projection@0.1.0");
    assert_eq!(info["state_encoding"], "json");
    assert_eq!(info["hash"].as_str().unwrap().len(), 64);
    assert!(text.contains(info["hash"].as_str().unwrap()), "{text}");
}

#[test]
fn validate_refuses_what_is_not_a_plugin_with_the_reason() {
    let dir = TempDir::new().unwrap();
    let random = write(&dir, "random.wasm", "definitely not wasm");
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let cases = [
        (random.as_str(), "not a WebAssembly binary"),
        (
            core.to_str().unwrap(),
            "is a core wasm module, not a component",
        ),
        (hume_tests::WRONG_WORLD_WASM, "does not implement the world"),
        ("/nonexistent/plugin.wasm", "cannot read the plugin file"),
    ];
    for (path, reason) in cases {
        let out = hume(dir.path(), &["validate", path]);
        assert!(!out.status.success(), "{path} should be refused");
        assert!(stderr(&out).contains(reason), "{path}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{path}: nothing on stdout");
    }
}

#[test]
fn replay_prints_offset_and_state() {
    let dir = TempDir::new().unwrap();
    let events = write(
        &dir,
        "events.ndjson",
        &lines(&[
            kv_add("a", json!(1)),
            kv_add("b", json!({"nested": [true]})),
            json!({"stream": "s", "kind": "remove", "data": {"key": "a"}, "metadata": {"by": "me"}}),
        ]),
    );
    let out = hume(
        dir.path(),
        &["replay", hume_tests::KV_WASM, "--events", &events],
    );
    assert_eq!(
        result(&out),
        json!({"offset": 3, "state": {"b": {"nested": [true]}}})
    );
}

#[test]
fn replay_trace_shows_each_event_with_state_before_and_after() {
    let dir = TempDir::new().unwrap();
    let events = write(
        &dir,
        "e.ndjson",
        &lines(&[kv_add("a", json!(1)), kv_add("b", json!(2))]),
    );
    let out = hume(
        dir.path(),
        &[
            "replay",
            hume_tests::KV_WASM,
            "--events",
            &events,
            "--trace",
        ],
    );
    assert_eq!(
        result(&out),
        json!({"offset": 2, "state": {"a": 1, "b": 2}})
    );
    let err = stderr(&out);
    assert!(err.contains("event 1") && err.contains("event 2"), "{err}");
    assert!(err.contains("before: {}"), "{err}");
    assert!(err.contains(r#"after:  {"a":1}"#), "{err}");
    assert!(err.contains(r#"before: {"a":1}"#), "{err}");
    assert!(err.contains(r#"after:  {"a":1,"b":2}"#), "{err}");
}

#[test]
fn replay_continues_from_a_snapshot_like_a_full_replay() {
    let dir = TempDir::new().unwrap();
    let all: Vec<Value> = (1..=20)
        .map(|p| {
            json!({"stream": "s", "kind": "add", "position": p,
                   "data": {"key": format!("k{}", p % 6), "value": p}})
        })
        .collect();
    let full = write(&dir, "all.ndjson", &lines(&all));
    let first = write(&dir, "first.ndjson", &lines(&all[..8]));
    let rest = write(&dir, "rest.ndjson", &lines(&all[8..]));

    let expected = result(&hume(
        dir.path(),
        &["replay", hume_tests::KV_WASM, "--events", &full],
    ));
    let half = result(&hume(
        dir.path(),
        &["replay", hume_tests::KV_WASM, "--events", &first],
    ));
    assert_eq!(half["offset"], 8);
    let snap = write(&dir, "snap.json", &half.to_string());
    let continued = result(&hume(
        dir.path(),
        &[
            "replay",
            hume_tests::KV_WASM,
            "--events",
            &rest,
            "--from-snapshot",
            &snap,
        ],
    ));
    assert_eq!(continued, expected);

    // The whole file again on top of the snapshot: stale, refused.
    let out = hume(
        dir.path(),
        &[
            "replay",
            hume_tests::KV_WASM,
            "--events",
            &full,
            "--from-snapshot",
            &snap,
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("stale event at position 1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn malformed_lines_are_named() {
    let dir = TempDir::new().unwrap();
    let good = kv_add("a", json!(1)).to_string();
    let cases = [
        ("{\"kind\": \"add\", \"data\": ", "line 2", "JSON"),
        (
            r#"{"stream": "s", "data": {}}"#,
            "line 2",
            "missing \"kind\"",
        ),
        (r#"[1, 2, 3]"#, "line 2", "expected a JSON object"),
        (r#""just a string""#, "line 2", "found a string"),
    ];
    for (bad, line, reason) in cases {
        let events = write(&dir, "bad.ndjson", &format!("{good}\n{bad}\n{good}\n"));
        let out = hume(
            dir.path(),
            &["replay", hume_tests::KV_WASM, "--events", &events],
        );
        assert!(!out.status.success(), "{bad}");
        let err = stderr(&out);
        assert!(err.contains(line) && err.contains(reason), "{bad}: {err}");
        assert!(stdout(&out).is_empty(), "no result printed for {bad}");
    }
}

#[test]
fn a_failing_event_exits_non_zero_naming_position_kind_and_error() {
    let dir = TempDir::new().unwrap();
    let events = write(
        &dir,
        "bank.ndjson",
        &lines(&[
            json!({"stream": "acc-1", "kind": "opened", "data": {"account": "1"}}),
            json!({"stream": "acc-9", "kind": "deposited", "data": {"account": "9", "amount": 5}}),
        ]),
    );
    let out = hume(
        dir.path(),
        &["replay", hume_tests::BANK_WASM, "--events", &events],
    );
    assert!(!out.status.success());
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("position 2"), "{err}");
    assert!(err.contains("`deposited`"), "{err}");
    assert!(err.contains("account 9"), "the plugin's message: {err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn unknown_kinds_fail_strict_and_are_skipped_with_no_strict() {
    let dir = TempDir::new().unwrap();
    let events = write(
        &dir,
        "e.ndjson",
        &lines(&[
            kv_add("a", json!(1)),
            json!({"stream": "s", "kind": "rename", "data": {}}),
            kv_add("b", json!(2)),
        ]),
    );
    let out = hume(
        dir.path(),
        &["replay", hume_tests::KV_WASM, "--events", &events],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("position 2") && stderr(&out).contains("`rename`"),
        "{}",
        stderr(&out)
    );

    let out = hume(
        dir.path(),
        &[
            "replay",
            hume_tests::KV_WASM,
            "--events",
            &events,
            "--no-strict",
        ],
    );
    assert_eq!(
        result(&out),
        json!({"offset": 3, "state": {"a": 1, "b": 2}})
    );
}

#[test]
fn a_hostile_plugin_fails_with_the_limit_named() {
    let dir = TempDir::new().unwrap();
    let events = write(
        &dir,
        "e.ndjson",
        &lines(&[json!({"stream": "s", "kind": "loop", "data": {}})]),
    );
    let out = hume(
        dir.path(),
        &[
            "replay",
            hume_tests::HOSTILE_WASM,
            "--events",
            &events,
            "--call-timeout-ms",
            "200",
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("call time limit") && err.contains("position 1"),
        "{err}"
    );
}

#[test]
fn a_panicking_plugin_fails_once_with_its_panic_message() {
    let dir = TempDir::new().unwrap();
    let events = write(
        &dir,
        "e.ndjson",
        &lines(&[json!({"stream": "s", "kind": "panic", "data": {}})]),
    );
    let out = hume(
        dir.path(),
        &["replay", hume_tests::HOSTILE_WASM, "--events", &events],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("position 1") && err.contains("`panic`"),
        "{err}"
    );
    assert!(err.contains("hostile plugin panics on purpose"), "{err}");
    assert_eq!(err.matches("trapped").count(), 1, "said once: {err}");
}
