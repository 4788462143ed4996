//! Property test: random appends, reads and reopens against the RocksDB
//! log and against a plain in-memory model must agree exactly.

use hume::log::{ExpectedRevision, LogError, NewEvent, Selector};
use hume_tests::log::{open_log, LogOptions};
use proptest::prelude::*;
use serde_json::json;

const STREAMS: [&str; 4] = ["acc-1", "acc-2", "ord-1", "acc-10"];

#[derive(Debug, Clone)]
enum Op {
    /// Append `n` events (0 = an empty, refused batch) with an expectation.
    Append {
        stream: usize,
        n: usize,
        expected: Expect,
    },
    /// Append a batch with an empty kind in it (refused whole).
    AppendBadKind {
        stream: usize,
    },
    ReadAll {
        from: u64,
        limit: usize,
        selector: usize,
    },
    ReadStream {
        stream: usize,
        from: u64,
        limit: usize,
    },
    Reopen,
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    Any,
    NoStream,
    /// Current revision plus this offset (0 = correct).
    Offset(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let expect = prop_oneof![
        Just(Expect::Any),
        Just(Expect::NoStream),
        (-2i64..=2).prop_map(Expect::Offset),
        Just(Expect::Offset(0)),
    ];
    prop_oneof![
        6 => (0..STREAMS.len(), 0usize..4, expect).prop_map(|(stream, n, expected)| Op::Append { stream, n, expected }),
        1 => (0..STREAMS.len()).prop_map(|stream| Op::AppendBadKind { stream }),
        3 => (0u64..40, 1usize..8, 0usize..4).prop_map(|(from, limit, selector)| Op::ReadAll { from, limit, selector }),
        3 => (0..STREAMS.len(), 0u64..12, 1usize..6).prop_map(|(stream, from, limit)| Op::ReadStream { stream, from, limit }),
        1 => Just(Op::Reopen),
    ]
}

/// The model: the log as a vector of (stream, revision, data).
#[derive(Default)]
struct Model {
    events: Vec<(String, u64, serde_json::Value)>,
}

impl Model {
    fn revision(&self, stream: &str) -> u64 {
        self.events.iter().filter(|e| e.0 == stream).count() as u64
    }
}

/// What the model says a selector matches.
type Pred = Box<dyn Fn(&str) -> bool>;

fn selector(i: usize) -> (Selector, Pred) {
    match i {
        0 => (Selector::all(), Box::new(|_| true)),
        1 => (
            Selector::parse(&["acc-*"]).unwrap(),
            Box::new(|s| s.starts_with("acc-")),
        ),
        2 => (
            Selector::parse(&["acc-1", "ord-1"]).unwrap(),
            Box::new(|s| s == "acc-1" || s == "ord-1"),
        ),
        _ => (
            Selector::parse(&["acc-1*"]).unwrap(),
            Box::new(|s| s.starts_with("acc-1")),
        ),
    }
}

fn run(ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = hume_tests::temp_dir();
    let open = || {
        let options = LogOptions {
            max_scan: 5,
            ..LogOptions::default()
        };
        open_log(dir.path(), options)
    };
    let mut log = open();
    let mut model = Model::default();
    let mut counter = 0u64;
    for op in ops {
        match op {
            Op::Append {
                stream,
                n,
                expected,
            } => {
                let name = STREAMS[stream];
                let current = model.revision(name);
                let expected = match expected {
                    Expect::Any => ExpectedRevision::Any,
                    Expect::NoStream => ExpectedRevision::NoStream,
                    Expect::Offset(o) => {
                        ExpectedRevision::Exact((current as i64 + o).max(0) as u64)
                    }
                };
                let datas: Vec<_> = (0..n)
                    .map(|_| {
                        counter += 1;
                        json!({"c": counter})
                    })
                    .collect();
                let events = datas.iter().map(|d| NewEvent::json("k", d, None)).collect();
                let result = rt.block_on(log.append(name, events, expected));
                if n == 0 {
                    assert!(matches!(result, Err(LogError::EmptyBatch)), "{result:?}");
                } else if expected.accepts(current) {
                    let o = result.unwrap();
                    let first = model.events.len() as u64 + 1;
                    for (i, d) in datas.into_iter().enumerate() {
                        model
                            .events
                            .push((name.to_string(), current + 1 + i as u64, d));
                    }
                    assert_eq!(o.first_position, first);
                    assert_eq!(o.last_position, model.events.len() as u64);
                    assert_eq!(o.revision, current + n as u64);
                } else {
                    match result {
                        Err(LogError::WrongExpectedRevision { current: c, .. }) => {
                            assert_eq!(c, current)
                        }
                        other => panic!("expected a conflict, got {other:?}"),
                    }
                }
            }
            Op::AppendBadKind { stream } => {
                let events = vec![
                    NewEvent::json("k", &json!(1), None),
                    NewEvent::json("", &json!(2), None),
                ];
                let err = rt
                    .block_on(log.append(STREAMS[stream], events, ExpectedRevision::Any))
                    .unwrap_err();
                assert_eq!(err.field().as_deref(), Some("events[1].kind"));
            }
            Op::ReadAll {
                from,
                limit,
                selector: s,
            } => {
                let (sel, pred) = selector(s);
                let page = rt.block_on(log.read(from, &sel, limit)).unwrap();
                let start = from.max(1);
                let scanned_to = page.last_scanned;
                let want: Vec<u64> = (start..=scanned_to.max(start.saturating_sub(1)))
                    .filter(|p| *p >= start && *p <= model.events.len() as u64)
                    .filter(|p| pred(&model.events[(*p - 1) as usize].0))
                    .collect();
                let got: Vec<u64> = page.events.iter().map(|e| e.position).collect();
                assert_eq!(got, want, "read_all from {from} limit {limit} sel {s}");
                assert!(got.len() <= limit);
                for e in &page.events {
                    let (stream, rev, data) = &model.events[(e.position - 1) as usize];
                    assert_eq!((&e.stream, e.revision), (stream, *rev));
                    assert_eq!(
                        serde_json::from_slice::<serde_json::Value>(&e.data).unwrap(),
                        *data
                    );
                }
                let head = model.events.len() as u64;
                match page.next {
                    None => assert!(scanned_to >= head || start > head),
                    Some(n) => {
                        assert_eq!(n, scanned_to + 1);
                        assert!(n <= head);
                        let scanned = (scanned_to + 1 - start) as usize;
                        assert!(
                            got.len() == limit || scanned >= 5.max(limit),
                            "stopped early"
                        );
                    }
                }
            }
            Op::ReadStream {
                stream,
                from,
                limit,
            } => {
                let name = STREAMS[stream];
                let page = rt.block_on(log.read_stream(name, from, limit)).unwrap();
                let all: Vec<_> = model
                    .events
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.0 == name && e.1 >= from.max(1))
                    .collect();
                let want: Vec<(u64, u64)> = all
                    .iter()
                    .take(limit)
                    .map(|(i, e)| (*i as u64 + 1, e.1))
                    .collect();
                let got: Vec<(u64, u64)> = page
                    .events
                    .iter()
                    .map(|e| (e.position, e.revision))
                    .collect();
                assert_eq!(got, want);
                assert_eq!(page.next.is_some(), all.len() > limit);
            }
            Op::Reopen => {
                drop(log);
                log = open();
            }
        }
        assert_eq!(log.head(), model.events.len() as u64);
    }
    let mut streams: Vec<(String, u64)> = STREAMS
        .iter()
        .map(|s| (s.to_string(), model.revision(s)))
        .filter(|(_, r)| *r > 0)
        .collect();
    streams.sort();
    assert_eq!(rt.block_on(log.streams()).unwrap(), streams);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn log_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops);
    }
}
