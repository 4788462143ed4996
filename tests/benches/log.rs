//! Event log benchmarks, one run, figures printed as a table:
//!
//! (a) durable append throughput (fsync before ack, group commit) with 1,
//!     16 and 64 concurrent appenders of 1-event batches, library level;
//! (b) the baseline: a raw RocksDB `WriteBatch` with `sync = true` per
//!     event from one thread;
//! (c) bulk import of 1,000,000 events with `hume append --file
//!     --batch-size 10000` into a release `hume serve`;
//! (d) a full read of those 1,000,000 events via `/all` pages and via the
//!     library (`EventLog::read` pages);
//! (e) append throughput, embedded RocksDB vs NATS JetStream (cluster
//!     mode; one local nats-server, fsync on every write), 1 and 64
//!     concurrent appenders, batches of 1 and 100 events, library level
//!     (the log as `hume serve` wires it, validation included).
//!
//! These are multi-second end-to-end runs over a large log, so they time
//! themselves instead of going through criterion's repeated sampling.
//! Run: `cargo bench -p hume-tests --bench log` (`HUME_BENCH_EVENTS=N` to
//! change the 1,000,000; `HUME_BENCH_ONLY=backends` runs only (e)).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hume::backend::rocksdb::{engine as rocksdb, Db, DbOptions, LogOptions, RocksLog, CF_EVENTS};
use hume::log::{EventLog, ExpectedRevision, NewEvent, Selector};
use hume_tests::log::{LogOptions as TestLogOptions, LogUnderTest};
use hume_tests::server::{Backend, TestServer};
use serde_json::json;

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn row(name: &str, n: u64, d: Duration) -> f64 {
    let r = rate(n, d);
    println!(
        "{name:<58} {n:>9} events {:>9.3} s {r:>12.0} events/s",
        d.as_secs_f64()
    );
    r
}

fn group_commit(rt: &tokio::runtime::Runtime, appenders: u64, per_appender: u64) -> f64 {
    let dir = hume_tests::temp_dir();
    let db = Db::open(dir.path(), &DbOptions::default()).unwrap();
    let log: Arc<dyn EventLog> = Arc::new(RocksLog::open(db, LogOptions::default()).unwrap());
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for a in 0..appenders {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let stream = format!("bench-{a}");
                for i in 0..per_appender {
                    let e = NewEvent::json("tick", &json!({"a": a, "i": i}), None);
                    log.append(&stream, vec![e], ExpectedRevision::Any)
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let elapsed = start.elapsed();
    assert_eq!(log.head(), appenders * per_appender);
    row(
        &format!("(a) group commit, {appenders} appenders x 1-event appends"),
        appenders * per_appender,
        elapsed,
    )
}

fn raw_baseline(writes: u64) -> f64 {
    let dir = hume_tests::temp_dir();
    let db = Db::open(dir.path(), &DbOptions::default()).unwrap();
    let cf = db.cf(CF_EVENTS);
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    // The same bytes the log stores for one of the events in (a).
    let mut value = Vec::new();
    hume::log::codec::encode(
        &mut value,
        "bench-0",
        1,
        0,
        "tick",
        br#"{"a":0,"i":0}"#,
        None,
    );
    let start = Instant::now();
    for i in 1..=writes {
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(&cf, i.to_be_bytes(), &value);
        db.raw().write_opt(batch, &opts).unwrap();
    }
    row(
        "(b) raw RocksDB WriteBatch sync=true per event, 1 thread",
        writes,
        start.elapsed(),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let total: u64 = std::env::var("HUME_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Profiling aid: `HUME_BENCH_READ_ONLY=DIR` only runs the library reads
    // over a data directory kept by an earlier `HUME_BENCH_KEEP=DIR` run.
    if let Ok(dir) = std::env::var("HUME_BENCH_READ_ONLY") {
        library_reads(std::path::Path::new(&dir), None);
        return;
    }
    println!(
        "event log benchmarks (data in {})",
        std::env::temp_dir().display()
    );
    if std::env::var("HUME_BENCH_ONLY").as_deref() == Ok("backends") {
        backends(&rt);
        return;
    }

    // fsync latency on a shared VM drifts by 10x within seconds, so the
    // append figures are interleaved rounds; each row is the median round.
    let mut rounds: Vec<[f64; 4]> = Vec::new();
    for round in 1..=5 {
        println!("  round {round}:");
        rounds.push([
            raw_baseline(600),
            group_commit(&rt, 1, 600),
            group_commit(&rt, 16, 150),
            group_commit(&rt, 64, 100),
        ]);
    }
    let median = |i: usize| {
        let mut v: Vec<f64> = rounds.iter().map(|r| r[i]).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let ratio = |i: usize| {
        let mut v: Vec<f64> = rounds.iter().map(|r| r[i] / r[0]).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    println!(
        "    medians: baseline {:.0}/s; group commit 1: {:.0}/s, 16: {:.0}/s, 64: {:.0}/s",
        median(0),
        median(1),
        median(2),
        median(3)
    );
    println!(
        "    median per-round ratio vs baseline: 1 appender {:.1}x, 16 appenders {:.1}x, 64 appenders {:.1}x",
        ratio(1),
        ratio(2),
        ratio(3)
    );

    // (c) bulk import through the CLI into a release server.
    let tmp = hume_tests::temp_dir();
    let file = tmp.path().join("events.ndjson");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for i in 0..total {
            writeln!(
                f,
                r#"{{"kind":"deposited","data":{{"account":{},"amount":{},"note":"bulk import"}}}}"#,
                i % 1000,
                i % 97
            )
            .unwrap();
        }
    }
    let size = std::fs::metadata(&file).unwrap().len();
    let data = match std::env::var("HUME_BENCH_KEEP") {
        Ok(dir) => std::path::PathBuf::from(dir),
        Err(_) => tmp.path().join("data"),
    };
    let mut server = TestServer::start(&data);
    let start = Instant::now();
    let status = std::process::Command::new(hume_tests::hume_bin())
        .args(["--url", server.url(), "append", "bulk", "--file"])
        .arg(&file)
        .args(["--batch-size", "10000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    let import = start.elapsed();
    assert!(status.success());
    row(
        &format!(
            "(c) hume append --file ({} MB) --batch-size 10000",
            size / 1_000_000
        ),
        total,
        import,
    );

    // (d) full read via /all pages.
    let url = server.url().to_string();
    let start = Instant::now();
    let read = rt.block_on(async {
        let http = reqwest::Client::new();
        let mut from = 1u64;
        let mut n = 0u64;
        loop {
            let body = http
                .get(format!("{url}/all?from_position={from}&limit=10000"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            #[derive(serde::Deserialize)]
            struct Page<'a> {
                #[serde(borrow)]
                events: Vec<&'a serde_json::value::RawValue>,
                next: Option<u64>,
            }
            let page: Page = serde_json::from_slice(&body).unwrap();
            n += page.events.len() as u64;
            match page.next {
                Some(next) => from = next,
                None => return n,
            }
        }
    });
    assert_eq!(read, total);
    row(
        "(d) full read via GET /all pages of 10000 (HTTP + JSON)",
        total,
        start.elapsed(),
    );
    server.stop();

    library_reads(&data, Some(total));
    backends(&rt);
}

/// (e) one backend's append throughput: `appenders` concurrent tasks, each
/// appending `batches` batches of `batch` events to its own stream.
fn backend_appends(
    rt: &tokio::runtime::Runtime,
    backend: Backend,
    appenders: u64,
    batch: u64,
    batches: u64,
) -> f64 {
    let dir = hume_tests::temp_dir();
    let under_test = LogUnderTest::new(backend, dir.path(), TestLogOptions::default());
    let log = rt.block_on(under_test.open());
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for a in 0..appenders {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let stream = format!("bench-{a}");
                for b in 0..batches {
                    let events = (0..batch)
                        .map(|i| NewEvent::json("tick", &json!({"a": a, "b": b, "i": i}), None))
                        .collect();
                    log.append(&stream, events, ExpectedRevision::Any)
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let elapsed = start.elapsed();
    let total = appenders * batch * batches;
    assert_eq!(log.head(), total);
    row(
        &format!("(e) {backend:?}, {appenders} appenders x {batch}-event appends"),
        total,
        elapsed,
    )
}

/// (e) RocksDB vs JetStream, interleaved rounds (fsync latency drifts), the
/// median of each configuration and the JetStream/RocksDB ratio.
fn backends(rt: &tokio::runtime::Runtime) {
    // (appenders, batch size, batches per appender)
    let configs = [(1, 1, 1000), (64, 1, 50), (1, 100, 100), (64, 100, 10)];
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); configs.len()];
    for round in 1..=3 {
        println!("  backends, round {round}:");
        for (i, &(appenders, batch, batches)) in configs.iter().enumerate() {
            let rocks = backend_appends(rt, Backend::RocksDb, appenders, batch, batches);
            let nats = backend_appends(rt, Backend::Nats, appenders, batch, batches);
            results[i].push((rocks, nats));
        }
    }
    println!("    medians (events/s): appenders x batch: RocksDB, JetStream, JetStream/RocksDB");
    for (i, &(appenders, batch, _)) in configs.iter().enumerate() {
        let median = |f: &dyn Fn(&(f64, f64)) -> f64| {
            let mut v: Vec<f64> = results[i].iter().map(f).collect();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        println!(
            "    {appenders:>2} x {batch:>3}: {:>9.0} {:>9.0} {:>6.2}x",
            median(&|r| r.0),
            median(&|r| r.1),
            median(&|r| r.1 / r.0)
        );
    }
}

/// (d) full read via the library, then a filtered scan that matches nothing.
fn library_reads(data: &std::path::Path, total: Option<u64>) {
    let db = Db::open(data, &DbOptions::default()).unwrap();
    let log = RocksLog::open(db, LogOptions::default()).unwrap();
    let total = total.unwrap_or(log.head());
    for (pass, page_size) in [("cold", 10_000), ("warm", 10_000), ("warm", 1_000)] {
        let start = Instant::now();
        let mut from = 1;
        let mut n = 0u64;
        loop {
            let page = log
                .read_blocking(from, &Selector::all(), page_size)
                .unwrap();
            n += page.events.len() as u64;
            match page.next {
                Some(next) => from = next,
                None => break,
            }
        }
        assert_eq!(n, total);
        row(
            &format!("(d) full read via library EventLog::read, pages of {page_size} ({pass})"),
            n,
            start.elapsed(),
        );
    }
    // The same full read through the borrowed visitor (no per-event copies).
    let start = Instant::now();
    let (mut from, mut n, mut bytes) = (1, 0u64, 0usize);
    loop {
        let scan = log
            .scan(from, &Selector::all(), 10_000, |e| {
                bytes += e.data.len() + e.kind.len()
            })
            .unwrap();
        n += scan.matched as u64;
        match scan.next {
            Some(next) => from = next,
            None => break,
        }
    }
    assert_eq!(n, total);
    assert!(bytes > 0);
    row(
        "(d) full read via library RocksLog::scan (borrowed events)",
        n,
        start.elapsed(),
    );
    // A filtered scan whose category matches nothing: the skip path (only
    // the stream name of each event is looked at).
    let start = Instant::now();
    let sel = Selector::parse(&["other-*"]).unwrap();
    let mut from = 1;
    let scanned = loop {
        let page = log.read_blocking(from, &sel, 10_000).unwrap();
        match page.next {
            Some(next) => from = next,
            None => break page.last_scanned,
        }
    };
    row(
        "(d) filtered scan, nothing matches (stream peeked, rest skipped)",
        scanned,
        start.elapsed(),
    );
}
