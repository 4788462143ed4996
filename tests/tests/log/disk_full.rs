//! A full disk under a real `hume serve` on a small tmpfs: appends are
//! refused with a 507 that says the disk is full and write nothing, every
//! acknowledged append survives, reads and projections keep answering
//! (snapshots pause, visibly), and appends resume once space is freed,
//! without a restart, however often the disk fills.

use std::process::Command;
use std::time::{Duration, Instant};

use hume_tests::server::TestServer;
use serde_json::{json, Value};

use crate::disk_common::{assert_alive, deploy_kv, http, Ledger, Tmpfs};

/// Fill the disk: big batches, then single small events, until refused.
/// Every refusal must be a 507 saying the disk is full. Returns how many
/// appends were acknowledged.
fn fill(server: &TestServer, ledger: &mut Ledger, stream: &str) -> usize {
    let mut acked = 0;
    for (n, bytes, max) in [(4, 48 * 1024, 2000), (1, 512, 20_000)] {
        for i in 0.. {
            assert!(i < max, "the disk never filled");
            let (status, body) = ledger.append(server, stream, n, bytes);
            if status == 200 {
                acked += 1;
                continue;
            }
            assert_eq!(status, 507, "a full disk is a 507: {body}");
            let msg = body["error"].as_str().unwrap_or_default();
            assert!(msg.contains("disk is full"), "says the disk is full: {msg}");
            assert!(msg.to_lowercase().contains("nothing was written"), "{msg}");
            break;
        }
    }
    acked
}

fn health(server: &TestServer) -> (u16, Value) {
    http(server, "GET", "/health", None)
}

/// Appends work again (polling: RocksDB's own recovery, when it met the
/// full disk itself, takes a few seconds).
fn wait_writable(server: &TestServer, ledger: &mut Ledger, stream: &str, within: Duration) {
    let start = Instant::now();
    loop {
        let (status, body) = ledger.append(server, stream, 1, 16);
        if status == 200 {
            return;
        }
        assert!(
            start.elapsed() < within,
            "appends did not resume after space was freed: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_full_disk_refuses_appends_keeps_reads_and_projections_and_recovers_without_restart() {
    let Some(mut disk) = Tmpfs::mount(32 * 1024) else {
        return;
    };
    let data = disk.path().join("data");
    let mut server = TestServer::start_with(&data, &["--min-free-space", "2M"]);
    deploy_kv(&server);
    let big = "v".repeat(16 * 1024);
    let (s, v) = http(
        &server,
        "POST",
        "/streams/kv",
        Some(&json!({"events": [{"kind": "add", "data": {"key": "a", "value": big}}]})),
    );
    assert_eq!(s, 200, "{v}");
    let mut ledger = Ledger::default();
    let acked = fill(&server, &mut ledger, "fill");
    assert!(acked > 10, "some appends went through first ({acked})");

    // Full: reads work, the projection serves its state, health says so.
    assert_alive(&server, "disk full");
    ledger.assert_exactly_acked(&server, "while the disk is full");
    let (s, state) = http(&server, "GET", "/projections/kv/state", None);
    assert_eq!(s, 200, "projection state while full: {state}");
    assert_eq!(
        state["a"].as_str().map(str::len),
        Some(big.len()),
        "{state}"
    );
    let (s, h) = health(&server);
    assert_eq!(s, 200, "{h}");
    assert_eq!(h["status"], "disk_full", "{h}");
    assert_eq!(h["writable"], false, "{h}");
    let (_, metrics) = http(&server, "GET", "/metrics", None);
    assert!(
        metrics
            .as_str()
            .unwrap_or_default()
            .contains("hume_log_writable 0"),
        "{metrics}"
    );
    // A snapshot cannot be written now: it pauses, visibly.
    let (s, v) = http(&server, "POST", "/projections/kv/take-snapshot", None);
    assert!(s >= 500, "a snapshot on a full disk fails: {s} {v}");
    let (_, status) = http(&server, "GET", "/projections/kv", None);
    let paused = status["snapshots_paused"].as_str().unwrap_or_default();
    assert!(paused.contains("disk full"), "{status}");
    let table = Command::new(hume_tests::hume_bin())
        .arg("status")
        .env("HUME_URL", server.url())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("PAUSED: disk full"), "{table}");
    let logged = server
        .stderr()
        .matches("the event log's disk is full")
        .count();
    assert!(logged >= 1, "the full disk is logged");
    for _ in 0..10 {
        assert_eq!(ledger.append(&server, "fill", 1, 512).0, 507);
    }
    assert_eq!(
        server
            .stderr()
            .matches("the event log's disk is full")
            .count(),
        logged,
        "the full disk is logged once, not once per refused append"
    );

    // Space is freed: appends resume in the same process.
    disk.grow(16 * 1024);
    let (s, h) = health(&server);
    assert_eq!((s, h["status"].as_str()), (200, Some("ok")), "{h}");
    wait_writable(&server, &mut ledger, "fill", Duration::from_secs(5));
    let (s, v) = http(&server, "POST", "/projections/kv/take-snapshot", None);
    assert_eq!(s, 200, "snapshots work again: {v}");
    let (_, status) = http(&server, "GET", "/projections/kv", None);
    assert!(status.get("snapshots_paused").is_none(), "{status}");
    ledger.assert_exactly_acked(&server, "after freeing space");

    server.restart();
    ledger.assert_exactly_acked(&server, "after a restart");
    let (s, state) = http(&server, "GET", "/projections/kv/state", None);
    assert_eq!(s, 200, "{state}");
    assert_eq!(state["a"].as_str().map(str::len), Some(big.len()));
}

#[test]
fn filling_the_disk_three_times_never_aborts_and_loses_nothing() {
    let Some(mut disk) = Tmpfs::mount(24 * 1024) else {
        return;
    };
    let data = disk.path().join("data");
    let mut server = TestServer::start_with(&data, &["--min-free-space", "1M"]);
    deploy_kv(&server);
    let mut ledger = Ledger::default();
    for round in 1..=3 {
        let acked = fill(&server, &mut ledger, &format!("round-{round}"));
        assert!(
            acked > 0,
            "round {round}: appends went through before it filled"
        );
        assert_alive(&server, &format!("round {round}, full"));
        ledger.assert_exactly_acked(&server, &format!("round {round}, full"));
        match round {
            // Restart while the disk is still full: it starts on its own.
            1 => {
                server.restart();
                ledger.assert_exactly_acked(&server, "restarted on a full disk");
                disk.grow(8 * 1024);
            }
            // Free space, then restart.
            2 => {
                disk.grow(8 * 1024);
                server.restart();
            }
            // Free space, no restart.
            _ => disk.grow(8 * 1024),
        }
        wait_writable(&server, &mut ledger, "after", Duration::from_secs(5));
        ledger.assert_exactly_acked(&server, &format!("round {round}, freed"));
        let (s, v) = http(&server, "GET", "/projections/kv/state", None);
        assert_eq!(s, 200, "round {round}: the projection answers: {v}");
    }
    server.restart();
    ledger.assert_exactly_acked(&server, "final restart");
}

/// With the watermark off RocksDB itself meets ENOSPC mid-write: the
/// append still fails cleanly, the process never aborts, and appends
/// resume without a restart once RocksDB's own recovery finds space.
#[test]
fn enospc_inside_rocksdb_never_aborts_and_recovers_without_restart() {
    let Some(mut disk) = Tmpfs::mount(16 * 1024) else {
        return;
    };
    let data = disk.path().join("data");
    let mut server = TestServer::start_with(&data, &["--min-free-space", "0"]);
    deploy_kv(&server);
    let mut ledger = Ledger::default();
    for round in 1..=2 {
        fill(&server, &mut ledger, &format!("r{round}"));
        assert_alive(&server, "ENOSPC inside RocksDB");
        ledger.assert_exactly_acked(&server, "ENOSPC inside RocksDB");
        // RocksDB resumes once a memtable's worth (64 MiB) is free; it
        // polls every 5 s.
        disk.grow(96 * 1024);
        wait_writable(&server, &mut ledger, "after", Duration::from_secs(30));
        assert_alive(&server, "after RocksDB's recovery");
        ledger.assert_exactly_acked(&server, "after RocksDB's recovery");
        server.restart();
        ledger.assert_exactly_acked(&server, "restart after RocksDB's recovery");
    }
}
