//! Cross-language conformance through live projections in `hume serve`:
//! the conformance event files appended to a real log, every language's
//! `kv` and `bank` deployed on them, and the consistent snapshot (or the
//! fault) compared with `tests/conformance/expected.json`.

use crate::common::*;
use crate::projection_common::Api;
use hume_tests::server::TestServer;
use serde_json::{json, Value};

/// Append a conformance file to the log under streams `<prefix>-<stream>`,
/// one HTTP append per run of events on the same stream, each event's data
/// sent as written in the file; returns the global position of its first
/// event.
async fn append_file(api: &Api, prefix: &str, file: &str) -> u64 {
    #[derive(serde::Serialize)]
    struct NewEvent<'a> {
        kind: &'a str,
        data: &'a serde_json::value::RawValue,
    }
    let events = read_events(file);
    let http = reqwest::Client::new();
    let mut first = None;
    let mut i = 0;
    while i < events.len() {
        let stream = &events[i].stream;
        let run: Vec<NewEvent> = events[i..]
            .iter()
            .take_while(|e| &e.stream == stream)
            .map(|e| NewEvent {
                kind: &e.kind,
                data: &e.data,
            })
            .collect();
        i += run.len();
        // written by hand: a serde_json::Value would re-write the numbers
        let body = format!(r#"{{"events":{}}}"#, serde_json::to_string(&run).unwrap());
        let response = http
            .post(format!("{}/streams/{prefix}-{stream}", api.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("append");
        assert!(
            response.status().is_success(),
            "append {file}: {response:?}"
        );
        let outcome: Value = response.json().await.expect("append outcome");
        first.get_or_insert(outcome["first_position"].as_u64().expect("first_position"));
    }
    first.expect("a file with events")
}

/// POST a raw append body; the status and the body text.
async fn http_append_raw(api: &Api, stream: &str, body: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{}/streams/{stream}", api.url))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("append");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_projections_agree_across_languages() {
    let tmp = hume_tests::temp_dir();
    let data = tmp.path().join("data");
    // Seed the server's compiled-plugin cache with what the other kit tests
    // compiled, so the large Python/JS components are not compiled again.
    std::fs::create_dir_all(data.join("compiled")).unwrap();
    for entry in std::fs::read_dir(compiled_cache()).unwrap().flatten() {
        let _ = std::fs::copy(entry.path(), data.join("compiled").join(entry.file_name()));
    }
    let server = TestServer::start(&data);
    let api = Api::new(&server);
    let expected = expectations();
    let files = [
        "kv-basic.ndjson",
        "bank-basic.ndjson",
        "kv-numbers.ndjson",
        "kv-unknown.ndjson",
        "bank-unopened.ndjson",
        "bank-big-amount.ndjson",
    ];
    // `kv-number-range.ndjson` holds a number no kit can read (`1e400`): the
    // live log refuses it at the door (every kit would fault on it), so it
    // is folded by the library and `hume replay` only. Nothing is written.
    let refused = http_append_raw(
        &api,
        "range-kv-1",
        r#"{"events":[{"kind":"add","data":{"key":"huge","value":[1,1e400]}}]}"#,
    )
    .await;
    assert_eq!(refused.0, 400, "{:?}", refused.1);
    assert!(refused.1.contains("events[0].data"), "{}", refused.1);
    let (code, stream) = api.get("/streams/range-kv-1").await;
    assert_eq!(code, 200, "{stream}");
    assert_eq!(stream["events"], json!([]), "nothing was written");
    let mut firsts = Vec::new();
    for (n, file) in files.iter().enumerate() {
        firsts.push(append_file(&api, &format!("f{n}"), file).await);
    }
    for (n, file) in files.iter().enumerate() {
        let logic = logic_of(file);
        let want = &expected[*file];
        let mut states = Vec::new();
        for lang in languages_of(logic) {
            let name = format!("f{n}-{}-{}", logic, lang.name());
            let plugin = example_plugin(logic, lang);
            api.deploy(
                &name,
                plugin.to_str().unwrap(),
                &[&format!("f{n}-*")],
                json!({}),
            )
            .await;
            match want.get("fails_at") {
                None => {
                    let snapshot = api.snapshot(&name).await;
                    let state: Value =
                        serde_json::from_str(want["state"].as_str().unwrap()).unwrap();
                    assert_eq!(snapshot["state"], state, "{file} live in {}", lang.name());
                    let last = firsts[n] + want["offset"].as_u64().unwrap() - 1;
                    assert_eq!(snapshot["offset"], last, "{file} live in {}", lang.name());
                    states.push(snapshot);
                }
                Some(at) => {
                    let status = api
                        .wait_status(&name, "faulted", |s| s["state"] == "faulted")
                        .await;
                    let position = firsts[n] + at.as_u64().unwrap() - 1;
                    assert_eq!(
                        status["fault"]["position"],
                        position,
                        "{file} in {}: {status}",
                        lang.name()
                    );
                    assert_eq!(
                        status["fault"]["kind"],
                        want["kind"],
                        "{file} in {}",
                        lang.name()
                    );
                    let error = status["fault"]["error"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let what = match want["error"].as_str().unwrap() {
                        "unknown" => "unknown".to_string(),
                        _ => want
                            .get("message")
                            .or(want.get("message_prefix"))
                            .unwrap()
                            .as_str()
                            .unwrap()
                            .to_string(),
                    };
                    assert!(
                        error.contains(&what),
                        "{file} in {}: `{error}` should contain `{what}`",
                        lang.name()
                    );
                    let dirty = api
                        .get_ok(&format!("/projections/{name}/state?dirty=true"))
                        .await;
                    let before: Value =
                        serde_json::from_str(want["state_before"].as_str().unwrap()).unwrap();
                    assert_eq!(
                        dirty,
                        before,
                        "{file} in {}: state before the fault",
                        lang.name()
                    );
                }
            }
        }
        assert!(
            states.windows(2).all(|w| w[0] == w[1]),
            "{file}: languages disagree: {states:#?}"
        );
    }
}
