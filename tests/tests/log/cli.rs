//! The events CLI as a process against a real `hume serve`: append (flags,
//! file, batches), read (stream, all, category, follow), streams, and the
//! errors a user sees.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

use hume_tests::server::TestServer;
use serde_json::{json, Value};

fn hume(url: &str, args: &[&str]) -> Output {
    Command::new(hume_tests::hume_bin())
        .args(args)
        .env("HUME_URL", url)
        .env("NO_COLOR", "1")
        .output()
        .expect("run hume")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "hume failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "hume should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn head(server: &TestServer) -> u64 {
    let raw = server.get_raw("/health");
    let body = raw.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str::<Value>(body).unwrap()["head"]
        .as_u64()
        .unwrap()
}

#[test]
fn append_read_streams_and_errors() {
    let tmp = hume_tests::temp_dir();
    let server = TestServer::start(tmp.path().join("data"));
    let url = server.url();

    let out = ok(&hume(
        url,
        &[
            "append",
            "acc-1",
            "--kind",
            "opened",
            "--data",
            r#"{"owner":"ann"}"#,
            "--metadata",
            r#"{"by":"cli"}"#,
        ],
    ));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"stream": "acc-1", "first_position": 1, "last_position": 1, "revision": 1})
    );
    // Bad JSON in a flag: refused locally, nothing sent.
    let err = failed(&hume(
        url,
        &["append", "acc-1", "--kind", "k", "--data", "{oops"],
    ));
    assert!(err.contains("--data is not valid JSON"), "{err}");
    // A conflict prints the server's message.
    let err = failed(&hume(
        url,
        &[
            "append",
            "acc-1",
            "--kind",
            "k",
            "--data",
            "1",
            "--expected-revision",
            "no_stream",
        ],
    ));
    assert!(
        err.contains("wrong expected revision") && err.contains("current revision is 1"),
        "{err}"
    );
    let err = failed(&hume(
        url,
        &[
            "append",
            "acc-1",
            "--kind",
            "k",
            "--data",
            "1",
            "--expected-revision",
            "soon",
        ],
    ));
    assert!(err.contains("no_stream"), "{err}");
    // The server's 400 message.
    let err = failed(&hume(
        url,
        &["append", "acc-1", "--kind", "", "--data", "1"],
    ));
    assert!(err.contains("events[0].kind"), "{err}");
    assert_eq!(head(&server), 1);

    // A file as one atomic batch.
    let file = tmp.path().join("events.ndjson");
    let mut f = std::fs::File::create(&file).unwrap();
    for i in 0..5 {
        writeln!(f, "{}", json!({"kind": "deposited", "data": {"amount": i}})).unwrap();
    }
    writeln!(f).unwrap();
    drop(f);
    let out = ok(&hume(
        url,
        &[
            "append",
            "acc-2",
            "--file",
            file.to_str().unwrap(),
            "--expected-revision",
            "no_stream",
        ],
    ));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"stream": "acc-2", "first_position": 2, "last_position": 6, "revision": 5})
    );
    // A bad line: named, and nothing of the file is written.
    let bad = tmp.path().join("bad.ndjson");
    std::fs::write(
        &bad,
        "{\"kind\":\"a\",\"data\":1}\n{\"kind\":\"b\",\"data\":2}\n{\"kind\":\"c\"}\n",
    )
    .unwrap();
    let err = failed(&hume(
        url,
        &["append", "acc-3", "--file", bad.to_str().unwrap()],
    ));
    assert!(err.contains("bad.ndjson:3"), "{err}");
    assert_eq!(head(&server), 6);
    // Batches.
    let big = tmp.path().join("big.ndjson");
    let text: String = (0..25)
        .map(|i| format!("{}\n", json!({"kind": "k", "data": i})))
        .collect();
    std::fs::write(&big, text).unwrap();
    let out = ok(&hume(
        url,
        &[
            "append",
            "ord-1",
            "--file",
            big.to_str().unwrap(),
            "--batch-size",
            "10",
            "--expected-revision",
            "no_stream",
        ],
    ));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"stream": "ord-1", "first_position": 7, "last_position": 31, "revision": 25})
    );

    // Reads.
    let all = lines(&ok(&hume(url, &["read", "--all"])));
    assert_eq!(all.len(), 31);
    assert_eq!(all[0]["data"], json!({"owner": "ann"}));
    assert_eq!(all[0]["metadata"], json!({"by": "cli"}));
    let acc = lines(&ok(&hume(url, &["read", "--category", "acc-"])));
    assert_eq!(acc.len(), 6);
    let ord = lines(&ok(&hume(
        url,
        &["read", "ord-1", "--from", "20", "--limit", "3"],
    )));
    assert_eq!(
        ord.iter()
            .map(|e| e["revision"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![20, 21, 22]
    );
    let from = lines(&ok(&hume(url, &["read", "--all", "--from", "30"])));
    assert_eq!(from.len(), 2);
    let err = failed(&hume(url, &["read", "bad\nname"]));
    assert!(err.contains("invalid stream name"), "{err}");

    let streams = lines(&ok(&hume(url, &["streams"])));
    assert_eq!(
        streams,
        vec![
            json!({"stream": "acc-1", "revision": 1}),
            json!({"stream": "acc-2", "revision": 5}),
            json!({"stream": "ord-1", "revision": 25}),
        ]
    );
}

#[test]
fn read_follow_prints_new_events() {
    let tmp = hume_tests::temp_dir();
    let server = TestServer::start(tmp.path().join("data"));
    let url = server.url();
    ok(&hume(url, &["append", "a", "--kind", "k", "--data", "1"]));
    let mut follower = Command::new(hume_tests::hume_bin())
        .args(["read", "--category", "a", "--follow"])
        .env("HUME_URL", url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(follower.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&line).unwrap()["position"], 1);
    ok(&hume(url, &["append", "b", "--kind", "k", "--data", "2"]));
    ok(&hume(url, &["append", "a", "--kind", "k", "--data", "3"]));
    line.clear();
    out.read_line(&mut line).unwrap();
    let e: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (e["position"].as_u64(), e["data"].as_u64()),
        (Some(3), Some(3)),
        "only the category, as it lands"
    );
    follower.kill().unwrap();
    follower.wait().unwrap();
}

#[test]
fn unreachable_server_says_so() {
    for args in [
        &["streams"][..],
        &["read", "--all"],
        &["append", "s", "--kind", "k", "--data", "1"],
    ] {
        let err = failed(&hume("http://127.0.0.1:1", args));
        assert!(
            err.contains("cannot reach hume at http://127.0.0.1:1 — is `hume serve` running?"),
            "{err}"
        );
    }
    // --url wins over HUME_URL.
    let out = Command::new(hume_tests::hume_bin())
        .args(["--url", "http://127.0.0.1:2", "streams"])
        .env("HUME_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://127.0.0.1:2"));
}

#[test]
fn serve_refuses_a_remote_address_without_the_flag() {
    let tmp = hume_tests::temp_dir();
    let out = Command::new(hume_tests::hume_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(tmp.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--auth-token-file"), "{err}");
}
