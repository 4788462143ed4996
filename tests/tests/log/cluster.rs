//! Cluster mode's bad configurations: `hume serve --cluster` on no server,
//! on a server without JetStream, or on a JetStream that already holds a
//! `HUME_LOG` stream of someone else's; each is refused with a message that
//! names what to fix, and nothing is written.

use async_nats::jetstream;
use futures::StreamExt;
use hume_tests::nats::NatsServer;
use hume_tests::server::TestServer;

#[test]
fn an_unreachable_nats_url_is_a_clear_error() {
    let dir = hume_tests::temp_dir();
    // Port 1 on loopback: nothing listens there.
    let err = TestServer::try_start(
        dir.path().join("data"),
        &["--cluster", "nats://127.0.0.1:1"],
    )
    .unwrap_err();
    assert!(
        err.contains("cannot reach a NATS server at nats://127.0.0.1:1"),
        "{err}"
    );
    assert!(
        err.contains("fix --cluster") && err.contains("nats-server -js"),
        "{err}"
    );
    let err =
        TestServer::try_start(dir.path().join("data"), &["--cluster", "http://x:y:z"]).unwrap_err();
    assert!(err.contains("is not a NATS server address"), "{err}");
}

#[test]
fn a_server_without_jetstream_is_a_clear_error() {
    let nats = NatsServer::start_without_jetstream();
    let dir = hume_tests::temp_dir();
    let err =
        TestServer::try_start(dir.path().join("data"), &["--cluster", nats.url()]).unwrap_err();
    assert!(err.contains("does not offer JetStream"), "{err}");
    assert!(
        err.contains("nats-server -js"),
        "says how to enable it: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_hume_log_stream_is_left_alone() {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    js.create_stream(jetstream::stream::Config {
        name: "HUME_LOG".into(),
        subjects: vec!["orders.>".into()],
        max_age: std::time::Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish("orders.1", "placed".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let dir = hume_tests::temp_dir();
    let url = nats.url().to_string();
    let err = tokio::task::spawn_blocking(move || {
        TestServer::try_start(dir.path().join("data"), &["--cluster", &url]).unwrap_err()
    })
    .await
    .unwrap();
    assert!(
        err.contains("HUME_LOG already exists with other settings"),
        "{err}"
    );
    assert!(
        err.contains("orders.>") && err.contains("max_age"),
        "says what differs: {err}"
    );
    assert!(
        err.contains("nats stream rm HUME_LOG"),
        "says what to do: {err}"
    );

    // Nothing written: the stream is as it was, and no other stream or
    // bucket was created.
    let mut stream = js.get_stream("HUME_LOG").await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.subjects, vec!["orders.>".to_string()]);
    assert_eq!(info.state.messages, 1);
    let names: Vec<String> = js
        .stream_names()
        .map(|n| n.unwrap())
        .collect::<Vec<_>>()
        .await;
    assert_eq!(names, vec!["HUME_LOG".to_string()]);
}

/// Two nodes on one JetStream append to one stream: each node's memory of
/// the stream's tail goes stale when the other appends, and neither a
/// wrong expected revision nor a lost update follows from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_append_to_one_stream_with_expected_revisions() {
    use hume::log::{ExpectedRevision, LogError, NewEvent};
    use hume_tests::log::{LogOptions, LogUnderTest};
    use hume_tests::server::Backend;

    let ev = |n: u64| NewEvent::json("e", &serde_json::json!(n), None);
    let dir = hume_tests::temp_dir();
    let under_test = LogUnderTest::new(Backend::Nats, dir.path(), LogOptions::default());
    let (a, b) = (under_test.open().await, under_test.open().await);
    let o = a
        .append("s", vec![ev(1)], ExpectedRevision::NoStream)
        .await
        .unwrap();
    assert_eq!(o.revision, 1);
    let o = b
        .append("s", vec![ev(2)], ExpectedRevision::Exact(1))
        .await
        .unwrap();
    assert_eq!(o.revision, 2);
    // `a` last saw revision 1: it must neither take Exact(1) nor refuse Exact(2).
    match a.append("s", vec![ev(3)], ExpectedRevision::Exact(1)).await {
        Err(LogError::WrongExpectedRevision { current, .. }) => assert_eq!(current, 2),
        other => panic!("{other:?}"),
    }
    let o = a
        .append("s", vec![ev(3), ev(4)], ExpectedRevision::Exact(2))
        .await
        .unwrap();
    assert_eq!((o.first_position, o.last_position, o.revision), (3, 4, 4));
    let o = b
        .append("s", vec![ev(5)], ExpectedRevision::Any)
        .await
        .unwrap();
    assert_eq!((o.last_position, o.revision), (5, 5));
    // `a` learns the head moved without appending.
    let mut head = a.watch_head();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        head.wait_for(|h| *h == 5),
    )
    .await
    .expect("a's head follows b's appends")
    .unwrap();
    let page = a.read_stream("s", 1, 100).await.unwrap();
    let got: Vec<(u64, Vec<u8>)> = page
        .events
        .iter()
        .map(|e| (e.revision, e.data.clone()))
        .collect();
    let want: Vec<(u64, Vec<u8>)> = (1..=5).map(|n| (n, n.to_string().into_bytes())).collect();
    assert_eq!(got, want);
}
