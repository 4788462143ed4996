//! `hume logs NAME [--follow]` (issue 14, item 8): the plugin's own lines
//! (its `log` import, its stderr) and the projection's lifecycle, kept per
//! projection and served over HTTP; plus `hume completions`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::{cli_err, cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::HOSTILE_WASM;
use serde_json::{json, Value};

fn lines_of(server: &TestServer, name: &str) -> Vec<Value> {
    cli_ok(server, &["logs", name, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn has(lines: &[Value], source: &str, level: &str, text: &str) -> bool {
    lines.iter().any(|l| {
        l["source"] == source
            && l["level"] == level
            && l["message"].as_str().unwrap().contains(text)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_show_the_plugins_lines_and_the_lifecycle_and_follow() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.append("h", &[("add", json!({}))]).await;
    api.deploy("h", HOSTILE_WASM, &["h"], json!({})).await;
    api.deploy("quiet", HOSTILE_WASM, &["other"], json!({}))
        .await;
    assert_eq!(api.state("h").await, json!({"add": 1}));

    // The plugin's `log` import (hostile logs in on-caught-up) and the
    // host's lifecycle lines, in order.
    let lines = lines_of(&server, "h");
    assert!(
        has(&lines, "plugin", "info", "caught up at 1"),
        "{lines:#?}"
    );
    assert!(
        has(&lines, "host", "info", "projection ready"),
        "{lines:#?}"
    );
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    // Each projection has its own lines.
    let quiet = lines_of(&server, "quiet");
    assert!(
        !has(&quiet, "plugin", "info", "caught up at 1"),
        "{quiet:#?}"
    );

    // A panic: its message on the plugin's stderr, and the fault.
    api.append("h", &[("panic", json!({}))]).await;
    api.wait_status("h", "faulted", |s| s["state"] == "faulted")
        .await;
    let lines = lines_of(&server, "h");
    assert!(
        has(&lines, "stderr", "info", "hostile plugin panics on purpose"),
        "{lines:#?}"
    );
    assert!(
        has(&lines, "host", "warn", "projection faulted"),
        "{lines:#?}"
    );
    let text = cli_ok(&server, &["logs", "h", "--tail", "1"]);
    assert_eq!(text.lines().count(), 1, "{text}");

    // --follow prints what comes next: skipping the panic lets the plugin
    // catch up at 3 and log it.
    let mut follower = Command::new(hume_tests::hume_bin())
        .args(["logs", "h", "--follow", "--json"])
        .env("HUME_URL", server.url())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run hume logs --follow");
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait for the history to be printed before causing the new line.
    rx.recv_timeout(Duration::from_secs(30))
        .expect("history printed");
    api.append("h", &[("add", json!({}))]).await;
    cli_ok(&server, &["skip", "h"]);
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains("caught up at 3") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(
        found,
        "the follower printed the new line; it printed {seen:#?}"
    );

    // Bad input: an unknown projection, a bad limit.
    let err = cli_err(&server, &["logs", "nope"]);
    assert!(
        err.contains("no projection named `nope`") && err.contains("404"),
        "{err}"
    );
    let (code, body) = api.get("/projections/h/logs?limit=0").await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");

    // Undeployed: its lines go with it.
    cli_ok(&server, &["undeploy", "h"]);
    let (code, _) = api.get("/projections/h/logs").await;
    assert_eq!(code, 404);
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_hume()"),
        ("zsh", "#compdef hume"),
        ("fish", "complete -c hume"),
    ] {
        let out = Command::new(hume_tests::hume_bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..text.len().min(200)]
        );
        assert!(text.contains("deploy") && text.contains("logs"), "{shell}");
    }
    let out = Command::new(hume_tests::hume_bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}
