//! WAL damage: truncate or flip bytes in the newest write-ahead log file,
//! then open. The log must either refuse to open with a clear error (the
//! default drops only an incomplete last record, see `torn_tail.rs`) or,
//! when salvage is asked for, come back as a consistent prefix of what was
//! written. It never returns garbage.

use std::path::{Path, PathBuf};

use hume::backend::rocksdb::{Db, DbError, DbOptions, LogOptions, RocksLog, WalRecovery};
use hume::log::{EventLog, ExpectedRevision, NewEvent, RecordedEvent, Selector};
use hume_tests::server::TestServer;
use serde_json::json;

/// Write 60 events over 20 synced appends to 3 streams; return them as read.
async fn populate(dir: &Path) -> Vec<RecordedEvent> {
    let db = Db::open(dir, &DbOptions::default()).unwrap();
    let log = RocksLog::open(db, LogOptions::default()).unwrap();
    for a in 0..20u64 {
        let events = (0..3)
            .map(|i| {
                NewEvent::json(
                    "e",
                    &json!({"a": a, "i": i, "pad": "p".repeat(50)}),
                    Some(&json!({"m": a})),
                )
            })
            .collect();
        log.append(&format!("s-{}", a % 3), events, ExpectedRevision::Any)
            .await
            .unwrap();
    }
    log.read(0, &Selector::all(), 1000).await.unwrap().events
}

fn newest_wal(dir: &Path) -> PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let wal = logs.pop().expect("a WAL file");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 1000,
        "the events are in the WAL"
    );
    wal
}

/// The log opened from `dir` is a consistent prefix of `written`, and
/// appending still works after it.
async fn assert_consistent_prefix(db: Db, written: &[RecordedEvent]) -> usize {
    let log = RocksLog::open(db, LogOptions::default()).expect("open the log");
    let got = log.read(0, &Selector::all(), 1000).await.unwrap().events;
    assert!(got.len() <= written.len());
    assert_eq!(got.len() as u64, log.head());
    for (g, w) in got.iter().zip(written) {
        assert_eq!(g, w, "a recovered event is exactly what was written");
    }
    // Streams and their index agree with the events.
    for (stream, revision) in log.streams().await.unwrap() {
        let mine: Vec<_> = got.iter().filter(|e| e.stream == stream).cloned().collect();
        assert_eq!(mine.len() as u64, revision, "revision of {stream}");
        assert_eq!(
            log.read_stream(&stream, 0, 1000).await.unwrap().events,
            mine
        );
    }
    let o = log
        .append(
            "after",
            vec![NewEvent::json("e", &json!(1), None)],
            ExpectedRevision::NoStream,
        )
        .await
        .unwrap();
    assert_eq!(
        o.first_position,
        got.len() as u64 + 1,
        "positions continue densely"
    );
    got.len()
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    Truncate(u64),
    TruncateHalf,
    Flip(u64),
    FlipMiddle,
}

fn damage(wal: &Path, how: Damage) {
    let mut bytes = std::fs::read(wal).unwrap();
    let len = bytes.len() as u64;
    match how {
        Damage::Truncate(n) => bytes.truncate((len - n) as usize),
        Damage::TruncateHalf => bytes.truncate((len / 2) as usize),
        Damage::Flip(from_end) => bytes[(len - from_end) as usize] ^= 0x5a,
        Damage::FlipMiddle => bytes[(len / 2) as usize] ^= 0xff,
    }
    std::fs::write(wal, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_wal_is_refused_or_recovers_to_a_consistent_prefix() {
    for how in [
        Damage::Truncate(1),
        Damage::Truncate(37),
        Damage::TruncateHalf,
        Damage::Flip(5),
        Damage::Flip(120),
        Damage::FlipMiddle,
    ] {
        let tmp = hume_tests::temp_dir();
        let dir = tmp.path().join("data");
        let written = populate(&dir).await;
        assert_eq!(written.len(), 60);
        damage(&newest_wal(&dir), how);

        // Strict (default): refuse with a clear error, or open a consistent prefix.
        match Db::open(&dir, &DbOptions::default()) {
            Err(err @ DbError::Corrupt { .. }) => {
                let msg = err.to_string();
                assert!(msg.contains("damaged"), "{how:?}: {msg}");
                assert!(
                    msg.contains("--wal-recovery point-in-time"),
                    "{how:?}: says what to do: {msg}"
                );
            }
            Err(other) => panic!("{how:?}: unexpected error {other}"),
            Ok(db) => {
                let kept = assert_consistent_prefix(db, &written).await;
                eprintln!("{how:?}: strict open kept a consistent prefix of {kept} events");
                continue;
            }
        }
        // The operator's explicit salvage: a consistent prefix.
        let salvage = DbOptions {
            wal_recovery: WalRecovery::PointInTime,
            ..DbOptions::default()
        };
        let db = Db::open(&dir, &salvage).unwrap_or_else(|e| panic!("{how:?}: salvage: {e}"));
        let kept = assert_consistent_prefix(db, &written).await;
        eprintln!(
            "{how:?}: strict open refused; salvage kept {kept} of {} events",
            written.len()
        );
        assert!(kept < written.len(), "{how:?}: the damage cost the tail");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hume_serve_refuses_a_damaged_log_with_a_clear_message() {
    let tmp = hume_tests::temp_dir();
    let dir = tmp.path().join("data");
    let written = populate(&dir).await;
    damage(&newest_wal(&dir), Damage::FlipMiddle);
    let err = TestServer::try_start(&dir, &[]).expect_err("a damaged log must not open");
    assert!(err.contains("damaged"), "{err}");
    assert!(err.contains("--wal-recovery point-in-time"), "{err}");
    // Salvage on request.
    let server = TestServer::start_with(&dir, &["--wal-recovery", "point-in-time"]);
    let health = server.get_raw("/health");
    let head: u64 = health
        .split("\"head\":")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{health}"));
    assert!(head < written.len() as u64);
}
