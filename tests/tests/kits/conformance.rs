//! Cross-language conformance: one set of event files (tests/conformance/)
//! folded by every language's `kv` (Rust, C, Python, JS) and `bank` (Rust,
//! Python, JS), built from source. Every language must reach byte-identical
//! canonical JSON state, fail at the same position with the same error, and
//! restore any other language's snapshot and continue identically.
//!
//! Two paths: the plugin runtime as a library (raw snapshot bytes), and
//! `hume replay` as a process (what a user runs).

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use hume::log::RecordedEvent;
use hume::plugin::{BatchError, EventError, Instance, Limits, Plugin, Runtime, RuntimeConfig};
use serde_json::{json, Value};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(compiled_cache()),
        ..RuntimeConfig::default()
    })
    .expect("start the plugin runtime")
}

fn load(runtime: &Runtime, path: &Path) -> Plugin {
    let wasm = std::fs::read(path).expect("read plugin");
    runtime
        .load(&wasm)
        .unwrap_or_else(|e| panic!("load {}: {e}", path.display()))
}

fn recorded(events: &[EventLine]) -> Vec<RecordedEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| RecordedEvent {
            position: i as u64 + 1,
            stream: e.stream.clone(),
            revision: i as u64 + 1,
            kind: e.kind.clone(),
            data: e.data.get().as_bytes().to_vec(),
            metadata: None,
            timestamp: 1_700_000_000_000 + i as u64,
        })
        .collect()
}

async fn fresh(plugin: &Plugin) -> Instance {
    let mut instance = plugin
        .instantiate("conformance", Limits::default())
        .await
        .expect("instantiate");
    instance.init_state().await.expect("init-state");
    instance
}

/// Apply `events` in batches of `batch`; returns the position and error of
/// the first failure, if any (the instance keeps every event before it).
async fn fold(
    instance: &mut Instance,
    events: &[RecordedEvent],
    batch: usize,
) -> Option<(u64, EventError)> {
    for chunk in events.chunks(batch) {
        match instance.handle_events(chunk).await {
            Ok(()) => {}
            Err(BatchError::Failed { index, error }) => {
                return Some((chunk[index].position, error))
            }
            Err(BatchError::Plugin(err)) => panic!("plugin failed: {err}"),
        }
    }
    None
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("a JSON state is UTF-8")
}

/// What one file must give, checked against one language's outcome.
fn check_outcome(
    file: &str,
    lang: Lang,
    expected: &Value,
    failure: Option<(u64, EventError)>,
    state: &str,
) {
    let who = format!("{file} in {}", lang.name());
    match expected.get("fails_at") {
        None => {
            assert!(failure.is_none(), "{who}: unexpected failure {failure:?}");
            assert_eq!(
                state,
                expected["state"].as_str().unwrap(),
                "{who}: final state bytes"
            );
        }
        Some(at) => {
            let (position, error) = failure.unwrap_or_else(|| panic!("{who}: should fail at {at}"));
            assert_eq!(position, at.as_u64().unwrap(), "{who}: failing position");
            match (expected["error"].as_str().unwrap(), &error) {
                ("unknown", EventError::UnknownEvent) => {}
                ("rejected", EventError::Rejected(message)) => {
                    if let Some(exact) = expected.get("message") {
                        assert_eq!(message, exact.as_str().unwrap(), "{who}: rejection message");
                    } else {
                        let prefix = expected["message_prefix"].as_str().unwrap();
                        assert!(
                            message.starts_with(prefix),
                            "{who}: `{message}` should start with `{prefix}`"
                        );
                    }
                }
                (want, got) => panic!("{who}: expected {want}, got {got:?}"),
            }
            assert_eq!(
                state,
                expected["state_before"].as_str().unwrap(),
                "{who}: state after the failure must hold every event before it"
            );
        }
    }
}

/// Every file, every language, through the runtime library: byte-identical
/// states, identical failures, in one big batch and in small odd batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_folds_every_file_identically() {
    let runtime = runtime();
    let expected = expectations();
    assert!(
        expected.len() >= 10,
        "expected.json lists the conformance files"
    );
    for logic in ["kv", "bank"] {
        for lang in languages_of(logic) {
            let plugin = load(&runtime, &example_plugin(logic, lang));
            for (file, want) in expected.iter().filter(|(f, _)| logic_of(f) == logic) {
                let mut events = recorded(&read_events(file));
                if want["strict"] == json!(false) {
                    // What the host does for a lax projection: drop unhandled kinds.
                    let kinds = &plugin.info().kinds;
                    events.retain(|e| kinds.contains(&e.kind));
                }
                for batch in [1000, 7] {
                    let mut instance = fresh(&plugin).await;
                    let failure = fold(&mut instance, &events, batch).await;
                    let state = text(&instance.snapshot().await.expect("snapshot"));
                    check_outcome(file, lang, want, failure, &state);
                }
            }
        }
    }
}

/// A snapshot taken by any language restores into every other language and
/// continues to the same bytes as an uninterrupted fold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_restore_across_languages() {
    let runtime = runtime();
    let expected = expectations();
    for (logic, file) in [
        ("kv", "kv-basic.ndjson"),
        ("kv", "kv-numbers.ndjson"),
        ("bank", "bank-basic.ndjson"),
    ] {
        let events = recorded(&read_events(file));
        let (first, rest) = events.split_at(events.len() / 2);
        let full = expected[file]["state"].as_str().unwrap();
        let langs = languages_of(logic);
        let plugins: Vec<(Lang, Plugin)> = langs
            .iter()
            .map(|&lang| (lang, load(&runtime, &example_plugin(logic, lang))))
            .collect();
        let mut halves = BTreeMap::new();
        for (lang, plugin) in &plugins {
            let mut instance = fresh(plugin).await;
            assert!(fold(&mut instance, first, 1000).await.is_none());
            halves.insert(lang.name(), instance.snapshot().await.unwrap());
        }
        let reference = halves.values().next().unwrap().clone();
        for (name, half) in &halves {
            assert_eq!(
                text(half),
                text(&reference),
                "{file}: half-way state of {name}"
            );
        }
        for (lang, plugin) in &plugins {
            let mut instance = plugin
                .instantiate("conformance", Limits::default())
                .await
                .unwrap();
            instance.restore(&reference).await.unwrap_or_else(|e| {
                panic!(
                    "{file}: {} cannot restore the half-way snapshot: {e}",
                    lang.name()
                )
            });
            // restore -> snapshot gives the same bytes back
            assert_eq!(text(&instance.snapshot().await.unwrap()), text(&reference));
            assert!(fold(&mut instance, rest, 13).await.is_none());
            assert_eq!(
                text(&instance.snapshot().await.unwrap()),
                full,
                "{file}: {} continued from a snapshot",
                lang.name()
            );
        }
        // A snapshot that is not JSON is refused by every language, with a reason.
        for (lang, plugin) in &plugins {
            let mut instance = plugin
                .instantiate("conformance", Limits::default())
                .await
                .unwrap();
            let err = instance
                .restore(b"{not json")
                .await
                .expect_err("garbage must not restore");
            assert!(!err.to_string().is_empty(), "{}", lang.name());
        }
    }
}

fn write_events(dir: &Path, name: &str, events: &[EventLine], first_position: u64) -> String {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        #[serde(flatten)]
        event: &'a EventLine,
        position: u64,
    }
    let mut text = String::new();
    for (i, event) in events.iter().enumerate() {
        let position = first_position + i as u64;
        // serde_json writes the RawValue data as it was read
        text.push_str(&serde_json::to_string(&Line { event, position }).unwrap());
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// `hume replay`, as a user runs it: same stdout for every language on the
/// files that fold, the same failure (position, kind, error) on the others.
#[test]
fn hume_replay_agrees_across_languages() {
    let expected = expectations();
    for (file, want) in &expected {
        let logic = logic_of(file);
        let events = conformance_dir().join(file);
        let mut outputs = BTreeMap::new();
        for lang in languages_of(logic) {
            let plugin = example_plugin(logic, lang);
            let mut args = vec![
                "replay",
                plugin.to_str().unwrap(),
                "--events",
                events.to_str().unwrap(),
            ];
            if want["strict"] == json!(false) {
                args.push("--no-strict");
            }
            let out = hume(&args);
            let who = format!("hume replay {file} with {}", lang.name());
            match want.get("fails_at") {
                None => {
                    assert!(out.status.success(), "{who}: {}", stderr(&out));
                    let got: Value = serde_json::from_str(&stdout(&out)).expect("stdout is JSON");
                    let state: Value =
                        serde_json::from_str(want["state"].as_str().unwrap()).unwrap();
                    assert_eq!(
                        got,
                        json!({"offset": want["offset"], "state": state}),
                        "{who}"
                    );
                    outputs.insert(lang.name(), stdout(&out));
                }
                Some(at) => {
                    assert!(!out.status.success(), "{who} should fail");
                    assert!(
                        stdout(&out).is_empty(),
                        "{who}: nothing on stdout when it fails"
                    );
                    let err = stderr(&out);
                    let place =
                        format!("position {at} of kind `{}`", want["kind"].as_str().unwrap());
                    assert!(err.contains(&place), "{who}: `{err}` should name {place}");
                    let what = match want["error"].as_str().unwrap() {
                        "unknown" => "unknown to the projection".to_string(),
                        _ => format!(
                            "rejected by the projection: {}",
                            want.get("message")
                                .or(want.get("message_prefix"))
                                .unwrap()
                                .as_str()
                                .unwrap()
                        ),
                    };
                    assert!(err.contains(&what), "{who}: `{err}` should say `{what}`");
                }
            }
        }
        let distinct: std::collections::BTreeSet<_> = outputs.values().collect();
        assert!(
            distinct.len() <= 1,
            "{file}: outputs differ across languages: {outputs:#?}"
        );
    }
}

/// `hume replay --from-snapshot`: half a file in one language, the rest in
/// every language from that snapshot, equals the whole file in one go.
#[test]
fn hume_replay_snapshot_round_trips_across_languages() {
    let dir = hume_tests::temp_dir();
    let expected = expectations();
    for (logic, file) in [
        ("kv", "kv-basic.ndjson"),
        ("kv", "kv-numbers.ndjson"),
        ("bank", "bank-basic.ndjson"),
    ] {
        let events = read_events(file);
        let half = events.len() / 2;
        let first = write_events(dir.path(), "first.ndjson", &events[..half], 1);
        let rest = write_events(dir.path(), "rest.ndjson", &events[half..], half as u64 + 1);
        let state: Value = serde_json::from_str(expected[file]["state"].as_str().unwrap()).unwrap();
        let whole = json!({"offset": events.len(), "state": state});
        for from in languages_of(logic) {
            let plugin = example_plugin(logic, from);
            let out = hume(&["replay", plugin.to_str().unwrap(), "--events", &first]);
            assert!(out.status.success(), "{}", stderr(&out));
            let snap = dir.path().join(format!("{logic}-{}.json", from.name()));
            std::fs::write(&snap, &out.stdout).unwrap();
            for to in languages_of(logic) {
                let plugin = example_plugin(logic, to);
                let out = hume(&[
                    "replay",
                    plugin.to_str().unwrap(),
                    "--events",
                    &rest,
                    "--from-snapshot",
                    snap.to_str().unwrap(),
                ]);
                assert!(
                    out.status.success(),
                    "{} -> {}: {}",
                    from.name(),
                    to.name(),
                    stderr(&out)
                );
                let got: Value = serde_json::from_str(&stdout(&out)).unwrap();
                assert_eq!(
                    got,
                    whole,
                    "{file}: snapshot of {} continued by {}",
                    from.name(),
                    to.name()
                );
            }
        }
    }
}
