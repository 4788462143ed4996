//! A rejected event leaves no trace, whatever a Python handler did before it
//! raised: the host, not the kit, guarantees it. The fixture
//! `tests/fixtures/taint-python` counts an `add` and opens its cart before
//! reading `amount`, so an `add` without one raises with the state changed.

use std::path::{Path, PathBuf};

use crate::common::*;
use crate::projection_common::{cli_ok, Api};
use hume_tests::server::TestServer;
use serde_json::{json, Value};

/// The fixture as written (buggy), and the fixed variant built from a copy
/// with `FIXED = True` (kept under the kits cache so it builds once).
fn plugins() -> (PathBuf, PathBuf) {
    let source = hume_tests::workspace_root().join("tests/fixtures/taint-python");
    let buggy = build_project(&source, Lang::Python);
    let fixed_dir = kits_cache().join("taint-python-fixed");
    std::fs::create_dir_all(&fixed_dir).unwrap();
    let app = std::fs::read_to_string(source.join("app.py")).unwrap();
    assert!(
        app.contains("\nFIXED = False\n"),
        "the fixture has the switch"
    );
    let fixed_app = app.replace("\nFIXED = False\n", "\nFIXED = True\n");
    if std::fs::read_to_string(fixed_dir.join("app.py"))
        .ok()
        .as_deref()
        != Some(&fixed_app)
    {
        std::fs::write(fixed_dir.join("app.py"), fixed_app).unwrap();
    }
    let fixed = build_project(&fixed_dir, Lang::Python);
    (buggy, fixed)
}

/// `hume replay PLUGIN --events FILE` (with the shared compile cache).
fn replay(plugin: &Path, events: &Path) -> Value {
    let out = hume(&[
        "replay",
        plugin.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "replay failed: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("replay prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_handler_that_mutates_then_raises_leaves_no_trace() {
    let (buggy, fixed) = plugins();
    let tmp = hume_tests::temp_dir();
    // Compile both once into the shared cache, then seed the server's.
    let empty = tmp.path().join("empty.ndjson");
    std::fs::write(&empty, "").unwrap();
    replay(&buggy, &empty);
    replay(&fixed, &empty);
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("compiled")).unwrap();
    for entry in std::fs::read_dir(compiled_cache()).unwrap().flatten() {
        let _ = std::fs::copy(entry.path(), data.join("compiled").join(entry.file_name()));
    }
    let server = TestServer::start(&data);
    let api = Api::new(&server);
    let opts = json!({"snapshot_every": 1, "snapshot_after_ms": 0});
    api.deploy("skipped", buggy.to_str().unwrap(), &["shop"], opts.clone())
        .await;
    api.deploy("fixed", buggy.to_str().unwrap(), &["shop"], opts)
        .await;
    // One batch: a healthy add, the bad one (no amount), a healthy one.
    api.append(
        "shop",
        &[
            ("add", json!({"cart": 1, "amount": 5})),
            ("add", json!({"cart": 2})),
            ("add", json!({"cart": 1, "amount": 2})),
        ],
    )
    .await;
    for name in ["skipped", "fixed"] {
        let s = api
            .wait_status(name, "faulted", |s| s["state"] == "faulted")
            .await;
        assert_eq!(s["fault"]["position"], 2, "{s}");
        assert!(
            s["fault"]["error"].as_str().unwrap().contains("KeyError"),
            "{s}"
        );
        let dirty = api
            .get_ok(&format!("/projections/{name}/state?dirty=true"))
            .await;
        assert_eq!(
            dirty,
            json!({"carts": {"1": {"total": 5}}, "events": 1}),
            "{name}: the state after position 1, nothing of the failed event"
        );
    }

    // `skip`: the same as replaying the log without the skipped event.
    api.post_ok("/projections/skipped/skip", json!({})).await;
    api.wait_status("skipped", "past the skip", |s| {
        s["state"] == "running" && s["offset"] == 3
    })
    .await;
    let skipped = api.state("skipped").await;
    let all = cli_ok(&server, &["read", "shop"]);
    let without: String = all
        .lines()
        .filter(|l| !l.contains(r#""position":2,"#))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(without.lines().count(), 2, "{all}");
    let file = tmp.path().join("without.ndjson");
    std::fs::write(&file, without).unwrap();
    assert_eq!(skipped, replay(&buggy, &file)["state"]);
    assert_eq!(skipped, json!({"carts": {"1": {"total": 7}}, "events": 2}));

    // The fixed plugin over the faulted state, then `resume`: the same as if
    // the event had never failed.
    let (code, body) = api
        .deploy_raw(
            "fixed",
            &std::fs::read(&fixed).unwrap(),
            &["shop"],
            json!({"snapshot_every": 1, "snapshot_after_ms": 0}),
            true,
        )
        .await;
    assert_eq!(code, 201, "{body}");
    api.wait_status("fixed", "the fixed version swapped in", |s| {
        s["plugin_hash"] == body["plugin_hash"]
    })
    .await;
    let (code, _) = api.post("/projections/fixed/resume", json!({})).await;
    assert!(code == 200 || code == 409, "resume answered {code}");
    api.wait_status("fixed", "running at the head", |s| {
        s["state"] == "running" && s["offset"] == 3
    })
    .await;
    let state = api.state("fixed").await;
    let everything = tmp.path().join("all.ndjson");
    std::fs::write(&everything, &all).unwrap();
    assert_eq!(state, replay(&fixed, &everything)["state"]);
    assert_eq!(
        state,
        json!({"carts": {"1": {"total": 7}, "2": {"total": 0}}, "events": 3})
    );
}
