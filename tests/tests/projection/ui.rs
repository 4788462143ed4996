//! The web UI in a real headless browser: Debian's `chromium`, driven by
//! `playwright-core` (pinned in tests/ui/package-lock.json, installed by
//! scripts/setup.sh with `npm ci`; it downloads no browser) through the
//! script tests/ui/ui.test.mjs. This test starts real servers with real
//! plugins and runs the script against them; the script's checks are listed
//! at its top. Screenshots go to `<target>/ui-artifacts/`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::common::{variant, Api};
use hume_tests::server::TestServer;
use hume_tests::{BANK_WASM, COUNTER_WASM, HOSTILE_WASM, KV_WASM};
use serde_json::json;

const TOKEN: &str = "ui-test-token-0123456789abcdef";

/// The browser and the driver, or a panic saying how to get them.
fn tools() -> (PathBuf, PathBuf) {
    let chromium = PathBuf::from(
        std::env::var("HUME_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    let dir = hume_tests::workspace_root().join("tests/ui");
    assert!(
        chromium.is_file(),
        "no browser at {}: run scripts/setup.sh (installs Debian's chromium) or set HUME_CHROMIUM",
        chromium.display()
    );
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in {}: run scripts/setup.sh (npm ci there)",
        dir.display()
    );
    (chromium, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_works_in_a_real_browser() {
    let (chromium, ui_dir) = tools();
    let dir = hume_tests::temp_dir();

    // The main server: kv over positions 1..3, hostile faulted at 5,
    // limited faulted by its snapshot size limit.
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.append("kv", &[("add", json!({"key": "a", "value": 1}))])
        .await;
    api.append(
        "kv",
        &[("add", json!({"key": "b", "value": {"x": [1, 2]}}))],
    )
    .await;
    api.append("kv", &[("add", json!({"key": "a", "value": 2}))])
        .await;
    api.append("h", &[("tick", json!({})), ("reject", json!({}))])
        .await;
    api.deploy("kv", KV_WASM, &["kv"], json!({})).await;
    api.deploy("hostile", HOSTILE_WASM, &["h"], json!({})).await;
    api.append(
        "account-1",
        &[
            ("opened", json!({"account": "1"})),
            ("deposited", json!({"account": "1", "amount": 30})),
        ],
    )
    .await;
    api.deploy("bank", BANK_WASM, &["account-*"], json!({}))
        .await;
    api.wait_status("bank", "caught up", |s| s["offset"] == 7)
        .await;
    api.wait_status("kv", "caught up", |s| s["offset"] == 3)
        .await;
    api.wait_status("hostile", "faulted", |s| s["state"] == "faulted")
        .await;
    // Faulted by a limit, fixed in the browser test by raising it.
    api.append("lim", &[("tick", json!({})), ("big-snapshot", json!({}))])
        .await;
    api.deploy(
        "limited",
        HOSTILE_WASM,
        &["lim"],
        json!({"snapshot_every": 1, "max_snapshot_bytes": 1 << 20, "max_memory_bytes": 256 << 20}),
    )
    .await;
    api.wait_status("limited", "faulted", |s| s["state"] == "faulted")
        .await;

    // A server that needs a token, with kv deployed.
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let guarded = TestServer::start_with(
        dir.path().join("guarded"),
        &["--auth-token-file", token_file.to_str().unwrap()],
    );
    let http = reqwest::Client::new();
    let deployed = http
        .post(format!("{}/projections", guarded.url()))
        .bearer_auth(TOKEN)
        .json(&json!({
            "name": "kv",
            "plugin": base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                hume_tests::read_wasm(KV_WASM)
            ),
            "streams": ["kv"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(deployed.status(), 201, "{:?}", deployed.text().await);

    let variant_file = dir.path().join("kv-variant.wasm");
    std::fs::write(
        &variant_file,
        variant(&hume_tests::read_wasm(KV_WASM), "ui"),
    )
    .unwrap();
    let artifacts = hume_tests::hume_bin()
        .parent()
        .expect("the binary has a directory")
        .join("ui-artifacts");

    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(ui_dir.join("ui.test.mjs"))
            .current_dir(&ui_dir)
            .env("HUME_URL", server.url())
            .env("TOKEN_URL", guarded.url())
            .env("TOKEN", TOKEN)
            .env("UPLOAD_WASM", COUNTER_WASM)
            .env("HOSTILE_WASM", HOSTILE_WASM)
            .env("VARIANT_WASM", &variant_file)
            .env("CHROMIUM", &chromium)
            .env("ARTIFACTS", &artifacts)
            .env_remove("UI_DEV_DIR")
            .output()
            .map(|out| (out, server, guarded))
    });
    let (out, _server, _guarded) = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser tests finish within 5 minutes")
        .unwrap()
        .expect("run node (installed by scripts/setup.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser tests failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ok - a cross-site page cannot change state"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAILED"), "{stdout}");
}

/// `POST /plugins/validate` (the deploy page's first step) says what `hume
/// validate` says, deploys nothing, and names the field of a bad plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_endpoint_describes_a_plugin_without_deploying_it() {
    use base64::Engine as _;
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let kv = hume_tests::read_wasm(KV_WASM);
    let v = api
        .post_ok("/plugins/validate", json!({"plugin": b64(&kv)}))
        .await;
    assert_eq!(v["name"], "kv", "{v}");
    assert_eq!(v["kinds"], json!(["add", "remove"]), "{v}");
    assert_eq!(v["state_encoding"], "json", "{v}");
    assert_eq!(v["world"], "hume:projection@0.1.0", "{v}");
    assert!(api.list().await.is_empty(), "validate deploys nothing");
    let deployed = api.deploy("kv", KV_WASM, &["kv"], json!({})).await;
    assert_eq!(
        v["hash"], deployed["plugin_hash"],
        "the same hash as a deploy"
    );

    for (bytes, what) in [
        (b"not wasm".to_vec(), "garbage"),
        (
            hume_tests::read_wasm(hume_tests::WRONG_WORLD_WASM),
            "wrong world",
        ),
    ] {
        let (code, err) = api
            .post("/plugins/validate", json!({"plugin": b64(&bytes)}))
            .await;
        assert_eq!(code, 422, "{what}: {err}");
        assert_eq!(err["field"], "plugin", "{what}: {err}");
    }
    let (code, err) = api.post("/plugins/validate", json!({"plugin": "%%"})).await;
    assert_eq!(code, 400, "{err}");
    assert!(err["error"].as_str().unwrap().contains("base64"), "{err}");
}
