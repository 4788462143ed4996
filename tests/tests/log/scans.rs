//! Long scans of the log in pages, as a projection catching up reads it
//! (on JetStream these are read ahead: `host/src/backend/nats/ahead.rs`),
//! on both backends.

use std::sync::Arc;

use hume::log::{EventLog, ExpectedRevision, NewEvent, Selector};
use hume_tests::log::{LogOptions, LogUnderTest};
use hume_tests::on_both_backends;
use hume_tests::server::Backend;
use serde_json::json;

on_both_backends!(
    long_scans_in_pages_see_every_event_once,
    scans_of_big_events_see_every_event_once
);

fn ev(kind: &str, data: serde_json::Value) -> NewEvent {
    NewEvent::json(kind, &data, None)
}

/// Scans in pages big enough to be read ahead (on JetStream, by a consumer
/// kept between pages), while events keep landing: every matching
/// event comes exactly once, in position order, whichever filter shape
/// (everything, a category, a prefix inside a category filtered here).
async fn long_scans_in_pages_see_every_event_once(backend: Backend) {
    let dir = hume_tests::temp_dir();
    let under_test = LogUnderTest::new(backend, dir.path(), LogOptions::default());
    let log: Arc<dyn EventLog> = under_test.open().await;
    let streams = ["account-1", "order-1", "account-2", "account-10", "order-2"];
    let mut written: Vec<(u64, String)> = Vec::new();
    let append = |log: Arc<dyn EventLog>, stream: &'static str, n: usize| async move {
        let events = (0..n).map(|i| ev("e", json!(i))).collect();
        let o = log
            .append(stream, events, ExpectedRevision::Any)
            .await
            .unwrap();
        (o.first_position..=o.last_position)
            .map(|p| (p, stream.to_string()))
            .collect::<Vec<_>>()
    };
    for round in 0..60 {
        for (i, s) in streams.iter().enumerate() {
            written.extend(append(log.clone(), s, 1 + (round + i) % 17).await);
        }
    }
    // On JetStream a category most of the log belongs to is filtered by
    // the reader, one that is a minority by the server.
    type Scan = (&'static [&'static str], fn(&str) -> bool, usize);
    let scans: [Scan; 4] = [
        (&["*"], |_| true, 250),
        (&["account-*"], |s| s.starts_with("account-"), 100),
        (&["account-1*"], |s| s.starts_with("account-1"), 120),
        (&["order-*"], |s| s.starts_with("order-"), 100),
    ];
    for (patterns, matches, limit) in scans {
        let selector = Selector::parse(patterns).unwrap();
        let mut got = Vec::new();
        let mut from = 0;
        let mut pages = 0;
        loop {
            let page = log.read(from, &selector, limit).await.unwrap();
            assert!(page.events.len() <= limit);
            got.extend(page.events.iter().map(|e| e.position));
            pages += 1;
            // Land more while the scan goes on (some match, some do not).
            if pages % 3 == 0 && pages < 30 {
                written.extend(append(log.clone(), "account-1", 7).await);
                written.extend(append(log.clone(), "order-2", 5).await);
            }
            match page.next {
                Some(n) => from = n,
                None if page.last_scanned >= log.head() => break,
                None => from = page.last_scanned + 1,
            }
        }
        let want: Vec<u64> = written
            .iter()
            .filter(|(_, s)| matches(s))
            .map(|(p, _)| *p)
            .collect();
        assert_eq!(got.len(), want.len(), "{patterns:?}: events seen");
        assert_eq!(
            got, want,
            "{patterns:?}: each matching event once, in order"
        );
    }
}

/// Events of 12 KiB, 70 MiB of them: on JetStream a reader's pulls end at
/// their byte limit (4 MiB) before their message count, and its buffer
/// fills by bytes (8 MiB) before it fills by count. Every event still
/// comes once, in order, with its data whole.
async fn scans_of_big_events_see_every_event_once(backend: Backend) {
    let dir = hume_tests::temp_dir();
    let under_test = LogUnderTest::new(backend, dir.path(), LogOptions::default());
    let log: Arc<dyn EventLog> = under_test.open().await;
    let pad = "x".repeat(12 * 1024);
    let mut written = 0u64;
    for round in 0..150u64 {
        let stream = format!("big-{}", round % 7);
        let events = (0..40)
            .map(|i| ev("big", json!({"n": round * 40 + i, "pad": pad})))
            .collect();
        log.append(&stream, events, ExpectedRevision::Any)
            .await
            .unwrap();
        written += 40;
    }
    let selector = Selector::parse(&["big-*"]).unwrap();
    let mut from = 0;
    let mut seen = 0u64;
    let mut last = 0;
    loop {
        let page = log.read(from, &selector, 500).await.unwrap();
        for e in &page.events {
            assert!(e.position > last, "position {} after {last}", e.position);
            last = e.position;
            let data: serde_json::Value = serde_json::from_slice(&e.data).unwrap();
            assert_eq!(data["n"], json!(seen), "event {seen} in order, whole");
            assert_eq!(data["pad"].as_str().map(str::len), Some(pad.len()));
            seen += 1;
        }
        // Slower than the reader: its buffer fills.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        match page.next {
            Some(n) => from = n,
            None if page.last_scanned >= log.head() => break,
            None => from = page.last_scanned + 1,
        }
    }
    assert_eq!(seen, written);
}
