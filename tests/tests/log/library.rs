//! The event log as a library: appends, expected revisions under
//! concurrency, validation (nothing written), reopen, paged reads; each
//! test on both backends (embedded RocksDB, NATS JetStream). Long scans are
//! in `scans.rs`.

use std::sync::Arc;

use hume::log::{EventLog, ExpectedRevision, LogError, NewEvent, Selector};
use hume_tests::log::{LogOptions, LogUnderTest};
use hume_tests::on_both_backends;
use hume_tests::server::Backend;
use serde_json::json;

on_both_backends!(
    positions_and_revisions_are_dense_and_survive_reopen,
    concurrent_writers_with_expected_revisions_never_lose_an_update,
    concurrent_batches_are_contiguous_and_atomic,
    a_hundred_concurrent_batches_on_one_stream_all_land,
    bad_appends_are_refused_whole_and_write_nothing,
    paged_and_filtered_reads,
    head_watch_wakes_readers
);

fn ev(kind: &str, data: serde_json::Value) -> NewEvent {
    NewEvent::json(kind, &data, None)
}

async fn positions_and_revisions_are_dense_and_survive_reopen(backend: Backend) {
    let dir = hume_tests::temp_dir();
    let under_test = LogUnderTest::new(backend, dir.path(), LogOptions::default());
    {
        let log = under_test.open().await;
        assert_eq!(log.head(), 0);
        let a = log
            .append(
                "a",
                vec![ev("x", json!(1)), ev("y", json!(2))],
                ExpectedRevision::NoStream,
            )
            .await
            .unwrap();
        assert_eq!((a.first_position, a.last_position, a.revision), (1, 2, 2));
        let b = log
            .append("b", vec![ev("x", json!(3))], ExpectedRevision::Any)
            .await
            .unwrap();
        assert_eq!((b.first_position, b.last_position, b.revision), (3, 3, 1));
        assert_eq!(log.head(), 3);
    }
    let log = under_test.open().await;
    assert_eq!(log.head(), 3, "head recovered from disk");
    let c = log
        .append(
            "a",
            vec![ev("z", json!({"k": [1, 2]}))],
            ExpectedRevision::Exact(2),
        )
        .await
        .unwrap();
    assert_eq!((c.first_position, c.revision), (4, 3));
    let page = log.read(0, &Selector::all(), 100).await.unwrap();
    let got: Vec<_> = page
        .events
        .iter()
        .map(|e| (e.position, e.stream.as_str(), e.revision))
        .collect();
    assert_eq!(
        got,
        vec![(1, "a", 1), (2, "a", 2), (3, "b", 1), (4, "a", 3)]
    );
    assert_eq!(page.next, None);
    assert_eq!(page.last_scanned, 4);
    assert_eq!(page.events[3].data, br#"{"k":[1,2]}"#);
    assert_eq!(
        log.streams().await.unwrap(),
        vec![("a".into(), 3), ("b".into(), 1)]
    );
    let s = log.read_stream("a", 2, 10).await.unwrap();
    assert_eq!(
        s.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![2, 4]
    );
    assert_eq!(s.next, None);
}

async fn concurrent_writers_with_expected_revisions_never_lose_an_update(backend: Backend) {
    let dir = hume_tests::temp_dir();
    let under_test = LogUnderTest::new(backend, dir.path(), LogOptions::default());
    let log: Arc<dyn EventLog> = under_test.open().await;
    const TARGET: u64 = 120;
    let mut tasks = Vec::new();
    for writer in 0..12u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = 0u64;
            let mut known = 0u64;
            loop {
                if known >= TARGET {
                    return wins;
                }
                let data = json!({"writer": writer, "based_on": known});
                match log
                    .append(
                        "counter",
                        vec![ev("inc", data)],
                        ExpectedRevision::Exact(known),
                    )
                    .await
                {
                    Ok(o) => {
                        assert_eq!(o.revision, known + 1);
                        wins += 1;
                        known = o.revision;
                    }
                    Err(LogError::WrongExpectedRevision { current, .. }) => {
                        assert!(current > known, "a conflict means someone else moved on");
                        known = current;
                    }
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, TARGET, "exactly one writer won each revision");
    let page = log.read_stream("counter", 1, 1000).await.unwrap();
    assert_eq!(page.events.len() as u64, TARGET);
    for (i, e) in page.events.iter().enumerate() {
        assert_eq!(e.revision, i as u64 + 1);
        assert_eq!(e.position, i as u64 + 1, "positions dense");
        let data: serde_json::Value = serde_json::from_slice(&e.data).unwrap();
        assert_eq!(
            data["based_on"], i as u64,
            "each event was written on top of the one before"
        );
    }
}

async fn concurrent_batches_are_contiguous_and_atomic(backend: Backend) {
    let dir = hume_tests::temp_dir();
    let under_test = LogUnderTest::new(backend, dir.path(), LogOptions::default());
    let log: Arc<dyn EventLog> = under_test.open().await;
    let mut tasks = Vec::new();
    for writer in 0..16u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for batch in 0..10u64 {
                let n = 1 + (writer + batch) % 4;
                let events = (0..n)
                    .map(|i| ev("e", json!({"w": writer, "b": batch, "i": i})))
                    .collect();
                let stream = format!("s-{}", writer % 5);
                let o = log
                    .append(&stream, events, ExpectedRevision::Any)
                    .await
                    .unwrap();
                assert_eq!(o.last_position - o.first_position + 1, n);
                out.push((o, writer, batch, n));
            }
            out
        }));
    }
    let mut acks = Vec::new();
    for t in tasks {
        acks.extend(t.await.unwrap());
    }
    let all = log.read(1, &Selector::all(), 10_000).await.unwrap().events;
    assert_eq!(all.len() as u64, log.head());
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1);
    }
    for (o, writer, batch, n) in acks {
        for i in 0..n {
            let e = &all[(o.first_position + i - 1) as usize];
            let data: serde_json::Value = serde_json::from_slice(&e.data).unwrap();
            assert_eq!(data, json!({"w": writer, "b": batch, "i": i}));
            assert_eq!(e.stream, o.stream);
        }
        assert_eq!(all[(o.last_position - 1) as usize].revision, o.revision);
    }
    // Per stream, revisions are dense from 1.
    for s in 0..5 {
        let page = log.read_stream(&format!("s-{s}"), 0, 10_000).await.unwrap();
        for (i, e) in page.events.iter().enumerate() {
            assert_eq!(e.revision, i as u64 + 1);
        }
    }
}

/// More atomic batches at once than JetStream keeps in flight per stream
/// (50): every one lands, whole, with dense revisions.
async fn a_hundred_concurrent_batches_on_one_stream_all_land(backend: Backend) {
    let dir = hume_tests::temp_dir();
    let under_test = LogUnderTest::new(backend, dir.path(), LogOptions::default());
    let log: Arc<dyn EventLog> = under_test.open().await;
    let tasks: Vec<_> = (0..100u64)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let events = (0..3).map(|i| ev("e", json!({"w": w, "i": i}))).collect();
                log.append("busy", events, ExpectedRevision::Any).await
            })
        })
        .collect();
    for t in tasks {
        let o = t.await.unwrap().unwrap();
        assert_eq!(o.last_position - o.first_position, 2);
    }
    let page = log.read_stream("busy", 1, 1000).await.unwrap();
    assert_eq!(page.events.len(), 300);
    for (i, e) in page.events.iter().enumerate() {
        assert_eq!(e.revision, i as u64 + 1);
        let data: serde_json::Value = serde_json::from_slice(&e.data).unwrap();
        assert_eq!(data["i"], i as u64 % 3, "each batch whole and in order");
    }
}

async fn bad_appends_are_refused_whole_and_write_nothing(backend: Backend) {
    let dir = hume_tests::temp_dir();
    let options = LogOptions {
        max_event_bytes: 100,
        max_batch_events: 3,
        max_batch_bytes: 200,
        ..LogOptions::default()
    };
    let under_test = LogUnderTest::new(backend, dir.path(), options);
    let log = under_test.open().await;
    log.append("s", vec![ev("k", json!(1))], ExpectedRevision::Any)
        .await
        .unwrap();
    let big = "x".repeat(150);
    let cases: Vec<(&str, Vec<NewEvent>, ExpectedRevision, &str)> = vec![
        ("", vec![ev("k", json!(1))], ExpectedRevision::Any, "stream"),
        (
            "a\u{7}b",
            vec![ev("k", json!(1))],
            ExpectedRevision::Any,
            "stream",
        ),
        ("s", vec![], ExpectedRevision::Any, "events"),
        (
            "s",
            vec![ev("k", json!(1)), ev("", json!(2))],
            ExpectedRevision::Any,
            "events[1].kind",
        ),
        (
            "s",
            vec![ev("k", json!(1)), ev("k", json!(big))],
            ExpectedRevision::Any,
            "events[1]",
        ),
        (
            "s",
            (0..4).map(|i| ev("k", json!(i))).collect(),
            ExpectedRevision::Any,
            "events",
        ),
        (
            "s",
            vec![ev("k", json!(1))],
            ExpectedRevision::NoStream,
            "expected_revision",
        ),
        (
            "s",
            vec![ev("k", json!(1))],
            ExpectedRevision::Exact(7),
            "expected_revision",
        ),
    ];
    let long_name = "n".repeat(256);
    let mut all_cases = cases;
    all_cases.push((
        long_name.as_str(),
        vec![ev("k", json!(1))],
        ExpectedRevision::Any,
        "stream",
    ));
    for (stream, events, expected, field) in all_cases {
        let err = log.append(stream, events, expected).await.unwrap_err();
        assert_eq!(err.field().as_deref(), Some(field), "{err}");
        assert_eq!(log.head(), 1, "nothing written for {err}");
    }
    assert_eq!(
        log.read(0, &Selector::all(), 10)
            .await
            .unwrap()
            .events
            .len(),
        1
    );
    assert_eq!(log.streams().await.unwrap(), vec![("s".into(), 1)]);
    // A conflict reports the current revision.
    match log
        .append("s", vec![ev("k", json!(1))], ExpectedRevision::Exact(5))
        .await
    {
        Err(LogError::WrongExpectedRevision { current, .. }) => assert_eq!(current, 1),
        other => panic!("{other:?}"),
    }
}

async fn paged_and_filtered_reads(backend: Backend) {
    let dir = hume_tests::temp_dir();
    let options = LogOptions {
        max_scan: 10,
        ..LogOptions::default()
    };
    let under_test = LogUnderTest::new(backend, dir.path(), options);
    let log = under_test.open().await;
    for i in 0..30u64 {
        let stream = match i % 3 {
            0 => "account-1",
            1 => "account-2",
            _ => "order-9",
        };
        log.append(stream, vec![ev("e", json!(i))], ExpectedRevision::Any)
            .await
            .unwrap();
    }
    // Pages over everything.
    let p = log.read(0, &Selector::all(), 7).await.unwrap();
    assert_eq!(p.events.len(), 7);
    assert_eq!(p.next, Some(8));
    let p = log.read(28, &Selector::all(), 7).await.unwrap();
    assert_eq!(
        p.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![28, 29, 30]
    );
    assert_eq!(p.next, None);
    let p = log.read(31, &Selector::all(), 7).await.unwrap();
    assert!(p.events.is_empty());
    assert_eq!(p.next, None);
    // A category: the scan budget (10) bounds the page, last_scanned lets
    // the reader move on, and following `next` finds everything.
    let sel = Selector::parse(&["order-*"]).unwrap();
    let mut from = 0;
    let mut got = Vec::new();
    loop {
        let p = log.read(from, &sel, 3).await.unwrap();
        assert!(p.last_scanned - from.max(1) < 10, "scan bounded");
        got.extend(p.events.iter().map(|e| e.position));
        match p.next {
            Some(n) => from = n,
            None => break,
        }
    }
    assert_eq!(got, (1..=10).map(|i| i * 3).collect::<Vec<_>>());
    // Several exact streams merged in position order.
    let sel = Selector::parse(&["account-1", "order-9"]).unwrap();
    let p = log.read(1, &sel, 5).await.unwrap();
    assert_eq!(
        p.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 3, 4, 6, 7]
    );
    assert!(!sel.matches("account-2"));
    assert!(Selector::parse(&["bad\nname"]).is_err());
    assert!(Selector::parse::<&str>(&[]).is_err());
    // A stream in pages.
    let p = log.read_stream("account-2", 0, 4).await.unwrap();
    assert_eq!(
        p.events.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(p.next, Some(5));
    let p = log.read_stream("account-2", 9, 4).await.unwrap();
    assert_eq!(
        p.events.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![9, 10]
    );
    assert_eq!(p.next, None);
    assert!(log
        .read_stream("missing", 0, 4)
        .await
        .unwrap()
        .events
        .is_empty());
}

async fn head_watch_wakes_readers(backend: Backend) {
    let dir = hume_tests::temp_dir();
    let under_test = LogUnderTest::new(backend, dir.path(), LogOptions::default());
    let log: Arc<dyn EventLog> = under_test.open().await;
    let mut watch = log.watch_head();
    assert_eq!(*watch.borrow_and_update(), 0);
    let writer = log.clone();
    let task = tokio::spawn(async move {
        writer
            .append("s", vec![ev("k", json!(1))], ExpectedRevision::Any)
            .await
            .unwrap()
    });
    watch.changed().await.unwrap();
    assert_eq!(*watch.borrow(), 1);
    assert_eq!(task.await.unwrap().last_position, 1);
}
