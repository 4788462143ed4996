//! `hume status` explains itself: the ERROR column shows only the current
//! error, SKIPPED says what was skipped (and `--help` explains every
//! column), OFFSET + LAG = HEAD also after a `skip` of the last event, and
//! `--watch` keeps refreshing.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::HOSTILE_WASM;
use serde_json::json;

/// The cells of projection `name`'s row (the ERROR cell may hold spaces:
/// it is everything after the SKIPPED cell).
fn row(table: &str, name: &str) -> Vec<String> {
    let header = table.lines().next().unwrap();
    let error_at = header.find("ERROR").expect("ERROR column");
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
    let (cells, error) = line.split_at(error_at.min(line.len()));
    let mut cells: Vec<String> = cells
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    cells.push(error.trim().to_string());
    cells
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_current_error_what_was_skipped_and_agreeing_positions() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy("h", HOSTILE_WASM, &["h"], json!({})).await;
    api.append("h", &[("tick", json!({})), ("taint", json!({}))])
        .await;
    api.wait_status("h", "faulted", |s| s["state"] == "faulted")
        .await;
    let table = cli_ok(&server, &["status"]);
    let cells = row(&table, "h");
    // NAME NODE STATE OFFSET HEAD LAG EV/S SNAPSHOT PLUGIN(3 words) SKIPPED ERROR
    assert_eq!(cells[1], "-", "no NODE without --cluster: {table}");
    assert_eq!(cells[2], "faulted", "{table}");
    assert!(
        cells.last().unwrap().starts_with("at 2 `taint`:"),
        "{table}"
    );
    assert!(
        cells.iter().any(|c| c == "-"),
        "nothing skipped yet: {table}"
    );

    // Skip the last event: no error any more, and the positions agree.
    api.post_ok("/projections/h/skip", json!({})).await;
    api.wait_status("h", "running", |s| s["state"] == "running")
        .await;
    let table = cli_ok(&server, &["status"]);
    let cells = row(&table, "h");
    assert_eq!(cells.last().unwrap(), "", "no current error:\n{table}");
    let (offset, head, lag) = (&cells[3], &cells[4], &cells[5]);
    assert_eq!(head, "2", "{table}");
    assert_eq!(lag, "0", "{table}");
    assert_eq!(offset, head, "OFFSET + LAG = HEAD:\n{table}");
    assert!(table.contains("skip 2"), "{table}");
    let status: serde_json::Value =
        serde_json::from_str(&cli_ok(&server, &["status", "h", "--json"])).unwrap();
    assert_eq!(status["error"], serde_json::Value::Null, "{status}");
    assert!(status["last_error"].is_string(), "history kept: {status}");

    let help = cli_ok(&server, &["status", "--help"]);
    for col in [
        "SKIPPED   events not applied",
        "OFFSET + LAG = HEAD",
        "ERROR     the current error",
    ] {
        assert!(help.contains(col), "{col}:\n{help}");
    }

    // --watch: the table again and again until interrupted.
    let mut child = Command::new(hume_tests::hume_bin())
        .args(["status", "--watch", "0.2"])
        .env("HUME_URL", server.url())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run hume status --watch");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let tables = out.matches("NAME").count();
    assert!(tables >= 3, "{tables} refreshes in 1.5 s:\n{out}");
}

/// `/metrics` drops an undeployed projection's series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_forget_an_undeployed_projection() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.deploy("gone", hume_tests::KV_WASM, &["kv"], json!({}))
        .await;
    api.deploy("kept", hume_tests::KV_WASM, &["kv"], json!({}))
        .await;
    api.append("kv", &[("add", json!({"key": "a", "value": 1}))])
        .await;
    api.wait_status("gone", "applied", |s| s["offset"] == 1)
        .await;
    api.wait_status("kept", "applied", |s| s["offset"] == 1)
        .await;
    let metrics = server.get_raw("/metrics");
    assert!(metrics.contains("projection=\"gone\""), "{metrics}");
    cli_ok(&server, &["undeploy", "gone"]);
    let metrics = server.get_raw("/metrics");
    assert!(!metrics.contains("projection=\"gone\""), "{metrics}");
    assert!(metrics.contains("projection=\"kept\""), "{metrics}");
}
