//! The feed against the log it follows: tail reads equal log reads, and
//! only the followers of a stream are woken.

use super::*;
use crate::backend::memory::MemoryLog;
use crate::log::{ExpectedRevision, NewEvent};

/// Wait for an async read inside a sync closure (multi-thread runtime).
fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| futures::executor::block_on(f))
}

/// Read everything from `from` to the head in pages of `limit`.
fn drain(mut read: impl FnMut(u64, usize) -> Page, from: u64, limit: usize, head: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut cursor = from - 1;
    while cursor < head {
        let page = read(cursor + 1, limit);
        assert!(page.events.len() <= limit);
        assert!(page.last_scanned > cursor, "progress");
        for e in &page.events {
            assert!(e.position > cursor && e.position <= page.last_scanned);
        }
        out.extend(page.events.iter().map(|e| e.position));
        cursor = page.last_scanned;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_reads_match_log_reads() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::default());
    let ev = || NewEvent::json("k", &serde_json::json!({}), None);
    // Some events before the feed starts: read from the log.
    for i in 0..7 {
        log.append(&format!("s{}", i % 3), vec![ev()], ExpectedRevision::Any)
            .await
            .unwrap();
    }
    let feed = Feed::start(log.clone(), 16);
    for i in 0..40 {
        let n = 1 + i % 3;
        log.append(
            &format!("s{}", i % 4),
            (0..n).map(|_| ev()).collect(),
            ExpectedRevision::Any,
        )
        .await
        .unwrap();
    }
    let head = log.head();
    let mut w = feed.watch();
    while *w.borrow_and_update() < head {
        w.changed().await.unwrap();
    }
    let follows = [
        Follow::new(Selector::parse(&["s1"]).unwrap()),
        Follow::new(Selector::parse(&["s0", "s3"]).unwrap()),
        Follow::new(Selector::parse(&["s*"]).unwrap()),
        Follow::new(Selector::all()),
    ];
    for follow in &follows {
        for from in [1, 5, 8, head - 20, head - 3, head] {
            for limit in [1, 2, 5, 100] {
                let want = drain(
                    |f, l| block(log.read(f, &follow.selector, l)).unwrap(),
                    from,
                    limit,
                    head,
                );
                let got = drain(
                    |f, l| block(feed.read(f, follow, l)).unwrap(),
                    from,
                    limit,
                    head,
                );
                assert_eq!(got, want, "{:?} from {from} limit {limit}", follow.exact);
            }
        }
    }
    // Idle exact-stream followers move over what holds nothing for them.
    let s1 = &follows[0];
    let last_s1 = drain(
        |f, l| block(log.read(f, &s1.selector, l)).unwrap(),
        1,
        100,
        head,
    )
    .last()
    .copied()
    .unwrap();
    assert_eq!(feed.caught_up_to(last_s1, s1), head);
    assert_eq!(feed.caught_up_to(last_s1 - 1, s1), last_s1 - 1);
    assert_eq!(
        feed.caught_up_to(head - 3, &follows[2]),
        head - 3,
        "categories scan"
    );
    // From far behind the (16-event) tail: jump to just before the next
    // s1 event after the feed started at 7; before 7 nothing is known.
    let s1_events = drain(
        |f, l| block(log.read(f, &s1.selector, l)).unwrap(),
        8,
        100,
        head,
    );
    assert_eq!(feed.caught_up_to(7, s1), s1_events[0] - 1);
    assert_eq!(feed.caught_up_to(3, s1), 3);

    // Past the end: an empty page that does not move backwards.
    let page = feed.read(head + 1, &follows[0], 10).await.unwrap();
    assert!(page.events.is_empty());
    assert_eq!(page.last_scanned, head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_followers_of_a_stream_are_woken() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::default());
    let feed = Feed::start(log.clone(), 100);
    let a = feed.subscribe(&Follow::new(Selector::parse(&["a"]).unwrap()));
    let b = feed.subscribe(&Follow::new(Selector::parse(&["b"]).unwrap()));
    let all = feed.subscribe(&Follow::new(Selector::parse(&["a*"]).unwrap()));
    let ev = NewEvent::json("k", &serde_json::json!({}), None);
    log.append("a", vec![ev], ExpectedRevision::Any)
        .await
        .unwrap();
    let wait = std::time::Duration::from_secs(10);
    tokio::time::timeout(wait, a.notified())
        .await
        .expect("a woken");
    tokio::time::timeout(wait, all.notified())
        .await
        .expect("category woken");
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(100), b.notified()).await;
    assert!(quiet.is_err(), "b follows another stream and sleeps");
    drop(b);
    assert!(
        !feed.subscribers.lock().unwrap().by_stream.contains_key("b"),
        "unsubscribed on drop"
    );
}
