//! One NDJSON format: what `hume read` prints, `hume append --file` and
//! `hume replay --events` accept. Export with `hume read --all`, import
//! into another server with `hume append --file` (no stream): the same
//! streams, kinds, data and metadata; with a stream given, a line naming
//! another stream is refused and nothing is sent.

use std::process::Command;

use hume_tests::server::TestServer;
use serde_json::Value;

fn hume(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(hume_tests::hume_bin())
        .args(args)
        .env("HUME_URL", server.url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run hume");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(server: &TestServer, args: &[&str]) -> String {
    let (success, out, err) = hume(server, args);
    assert!(success, "hume {args:?}: {err}");
    out
}

/// The events without what the server assigns (position, revision, time).
fn portable(export: &str) -> Vec<Value> {
    export
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("position");
            o.remove("timestamp");
            v
        })
        .collect()
}

#[test]
fn read_all_exports_and_append_file_imports_into_another_server() {
    let dir = hume_tests::temp_dir();
    let a = TestServer::start(dir.path().join("a"));
    let b = TestServer::start(dir.path().join("b"));
    ok(
        &a,
        &[
            "append",
            "cart-1",
            "--kind",
            "added",
            "--data",
            r#"{"sku":"x","n":1.5e3}"#,
            "--metadata",
            r#"{"by":"ann"}"#,
        ],
    );
    ok(
        &a,
        &[
            "append",
            "order-7",
            "--kind",
            "placed",
            "--data",
            r#"[1,"two",null]"#,
        ],
    );
    ok(
        &a,
        &["append", "cart-1", "--kind", "removed", "--data", r#""x""#],
    );
    ok(
        &a,
        &[
            "append",
            "cart-2",
            "--kind",
            "added",
            "--data",
            "{}",
            "--metadata",
            "[]",
        ],
    );
    let export = ok(&a, &["read", "--all"]);
    let file = dir.path().join("export.ndjson");
    std::fs::write(&file, &export).unwrap();

    // A stream given, and the file names others: refused, nothing sent.
    let (success, _, err) = hume(&b, &["append", "cart-1", "--file", file.to_str().unwrap()]);
    assert!(!success);
    assert!(
        err.contains(":2: the line names stream `order-7`, not `cart-1`"),
        "{err}"
    );
    assert_eq!(ok(&b, &["read", "--all"]), "", "nothing was sent");

    // The import: each line to its own stream.
    let out = ok(&b, &["append", "--file", file.to_str().unwrap()]);
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["events"], 4, "{out}");
    assert_eq!(summary["streams"], 3, "{out}");
    let imported = ok(&b, &["read", "--all"]);
    assert_eq!(portable(&imported), portable(&export));
    assert_eq!(ok(&b, &["streams"]), ok(&a, &["streams"]));

    // With the stream given, lines of that stream go in as one batch.
    let one = ok(&a, &["read", "cart-1"]);
    let one_file = dir.path().join("cart-1.ndjson");
    std::fs::write(&one_file, &one).unwrap();
    let out = ok(
        &b,
        &["append", "cart-1", "--file", one_file.to_str().unwrap()],
    );
    let outcome: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(outcome["revision"], 4, "{out}");

    // `hume replay --events` reads the same file.
    let replayed = ok(
        &a,
        &[
            "replay",
            hume_tests::COUNTER_WASM,
            "--events",
            file.to_str().unwrap(),
        ],
    );
    let replayed: Value = serde_json::from_str(&replayed).unwrap();
    assert_eq!(replayed["offset"], 4, "{replayed}");
}
