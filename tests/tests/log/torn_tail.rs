//! Real torn tails: a `hume serve` is killed after acknowledged appends,
//! then the end of its newest write-ahead log is cut inside the last record
//! at several offsets, or garbage is written after it, as a crash, a power
//! loss or ENOSPC in the middle of a write leaves it. The server must start
//! on its own (no `--wal-recovery` flag), keep every event before the torn
//! record, show the torn batch wholly or not at all, and take appends with
//! dense positions. (SIGKILL alone never tears a write.)

use std::path::{Path, PathBuf};

use hume_tests::server::TestServer;

use crate::disk_common::{http, Ledger};

fn newest_wal(dir: &Path) -> PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a WAL file")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Tear {
    /// Cut this many bytes off the end (inside the last record).
    Cut(u64),
    /// Write these bytes after the last record.
    Garbage(&'static [u8]),
}

#[test]
fn a_torn_wal_tail_starts_without_help_and_keeps_every_acknowledged_event() {
    let tmp = hume_tests::temp_dir();
    let pristine = tmp.path().join("pristine");
    let mut ledger = Ledger::default();
    let mut server = TestServer::start(&pristine);
    for _ in 0..20 {
        assert_eq!(ledger.append(&server, "s", 3, 200).0, 200);
    }
    // The last batch: one record of ~6 KB, torn below.
    assert_eq!(ledger.append(&server, "s", 3, 2000).0, 200);
    let last_batch: Vec<u64> = ledger.acked.keys().rev().take(3).copied().collect();
    server.kill9();
    let wal_len = std::fs::metadata(newest_wal(&pristine)).unwrap().len();
    assert!(
        wal_len > 6000,
        "the events are in the WAL ({wal_len} bytes)"
    );

    let tears = [
        Tear::Cut(1),
        Tear::Cut(6),
        Tear::Cut(7),
        Tear::Cut(500),
        Tear::Cut(5990),
        Tear::Garbage(&[0xab; 3]),
        Tear::Garbage(&[0xab; 100]),
        Tear::Garbage(&[0; 64]),
        Tear::Garbage(b"\x01\x02\x03\x04\xff\x7f\x01partial"),
    ];
    for (i, tear) in tears.into_iter().enumerate() {
        let dir = tmp.path().join(format!("tear-{i}"));
        copy_dir(&pristine, &dir);
        let wal = newest_wal(&dir);
        let mut bytes = std::fs::read(&wal).unwrap();
        match tear {
            Tear::Cut(n) => bytes.truncate(bytes.len() - n as usize),
            Tear::Garbage(g) => bytes.extend_from_slice(g),
        }
        std::fs::write(&wal, bytes).unwrap();

        let server = TestServer::try_start(&dir, &[])
            .unwrap_or_else(|e| panic!("{tear:?}: the server must start on its own: {e}"));
        let stored = Ledger::stored(&server);
        for (id, data) in &ledger.acked {
            if last_batch.contains(id) {
                continue;
            }
            assert_eq!(
                stored.get(id),
                Some(data),
                "{tear:?}: event {id} before the tear"
            );
        }
        let torn_kept = last_batch
            .iter()
            .filter(|id| stored.contains_key(id))
            .count();
        match tear {
            Tear::Cut(_) => assert_eq!(torn_kept, 0, "{tear:?}: the torn batch is gone whole"),
            Tear::Garbage(_) => {
                assert_eq!(torn_kept, 3, "{tear:?}: nothing before garbage is lost")
            }
        }
        let expected_head = (ledger.acked.len() - 3 + torn_kept) as u64;
        let (s, h) = http(&server, "GET", "/health", None);
        assert_eq!(
            (s, h["head"].as_u64()),
            (200, Some(expected_head)),
            "{tear:?}: {h}"
        );
        let (s, v) = http(
            &server,
            "POST",
            "/streams/after",
            Some(&serde_json::json!({"events": [{"kind": "e", "data": 1}]})),
        );
        assert_eq!(s, 200, "{tear:?}: appends work: {v}");
        assert_eq!(
            v["first_position"].as_u64(),
            Some(expected_head + 1),
            "{tear:?}: dense"
        );
        eprintln!(
            "{tear:?}: started on its own, kept {} events",
            expected_head
        );
    }
}

/// Damage that a torn write cannot cause (a flipped byte inside an earlier
/// record) still refuses to open, naming what to do: it could hide
/// acknowledged events.
#[test]
fn damage_before_the_tail_is_still_refused() {
    let tmp = hume_tests::temp_dir();
    let dir = tmp.path().join("data");
    let mut ledger = Ledger::default();
    let mut server = TestServer::start(&dir);
    for _ in 0..20 {
        assert_eq!(ledger.append(&server, "s", 3, 200).0, 200);
    }
    server.kill9();
    let wal = newest_wal(&dir);
    let mut bytes = std::fs::read(&wal).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&wal, bytes).unwrap();
    let err = TestServer::try_start(&dir, &[]).expect_err("mid-log damage must not open");
    assert!(err.contains("damaged"), "{err}");
    assert!(err.contains("--wal-recovery point-in-time"), "{err}");
}
