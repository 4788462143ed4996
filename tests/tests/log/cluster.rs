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
