//! `hume deploy` says what it follows: the streams and categories with how
//! many streams and events match today, warnings for an entry that matches
//! nothing or names a category's streams one by one (a shell-expanded
//! `cart-*`), and a refusal of patterns Hume does not have (`*-1`,
//! `cart-[0-9]`), from the API (400) and the CLI.

use std::process::Command;

use crate::common::{cli_err, cli_ok, Api};
use hume_tests::server::TestServer;
use hume_tests::KV_WASM;
use serde_json::json;

fn add(key: &str) -> (&'static str, serde_json::Value) {
    ("add", json!({"key": key, "value": 1}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_prints_what_it_follows_and_warns_about_unlikely_streams() {
    let dir = hume_tests::temp_dir();
    let server = TestServer::start(dir.path().join("data"));
    let api = Api::new(&server);
    api.append("cart-1", &[add("a"), add("b"), add("c")]).await;
    api.append("cart-2", &[add("d")]).await;
    api.append("order-1", &[add("e"), add("f")]).await;

    let out = cli(
        &server,
        None,
        &[
            "deploy", "p", KV_WASM, "--stream", "cart-*", "--stream", "order-1",
        ],
    );
    assert!(out.0, "{out:?}");
    assert!(
        out.1
            .contains("follows category `cart-*`: 2 streams, 4 events today"),
        "{}",
        out.1
    );
    assert!(
        out.1.contains("follows stream `order-1`: 2 events today"),
        "{}",
        out.1
    );
    assert!(out.1.contains("in all: 6 events in 3 streams"), "{}", out.1);
    assert!(!out.2.contains("warning"), "{}", out.2);

    // A category named one stream at a time, as a shell expands `cart-*`
    // in a folder holding files `cart-1` and `cart-2`; the CLI also sees
    // the files.
    let here = dir.path().join("here");
    std::fs::create_dir_all(&here).unwrap();
    std::fs::write(here.join("cart-1"), "").unwrap();
    let out = cli(
        &server,
        Some(&here),
        &[
            "deploy", "q", KV_WASM, "--stream", "cart-1", "--stream", "cart-2",
        ],
    );
    assert!(out.0, "{out:?}");
    assert!(
        out.2
            .contains("`cart-1`, `cart-2` are streams of category `cart-`")
            && out.2.contains("--stream 'cart-*'"),
        "{}",
        out.2
    );
    assert!(
        out.2
            .contains("--stream `cart-1` is also the name of a file in the current directory"),
        "{}",
        out.2
    );

    // An entry that matches nothing.
    let out = cli(
        &server,
        None,
        &["deploy", "r", KV_WASM, "--stream", "carts-*"],
    );
    assert!(out.0, "{out:?}");
    assert!(
        out.2.contains("`carts-*` matches no stream yet"),
        "{}",
        out.2
    );
    assert!(out.1.contains("in all: 0 events in 0 streams"), "{}", out.1);

    // Patterns Hume does not have: refused, nothing deployed.
    for bad in ["*-1", "cart-[0-9]", "c*rt-*"] {
        let (code, body) = api
            .deploy_raw(
                "bad",
                &hume_tests::read_wasm(KV_WASM),
                &[bad],
                json!({}),
                false,
            )
            .await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert_eq!(body["field"], "streams", "{body}");
        let err = cli_err(&server, &["deploy", "bad", KV_WASM, "--stream", bad]);
        assert!(
            err.contains(bad) && (err.contains("may only end") || err.contains("`[` and `]`")),
            "{bad}: {err}"
        );
    }
    let (code, _) = api.get("/projections/bad").await;
    assert_eq!(code, 404);
    let _ = cli_ok(&server, &["status"]);
}

/// Run `hume ARGS` in `cwd`: (success, stdout, stderr).
fn cli(
    server: &TestServer,
    cwd: Option<&std::path::Path>,
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = Command::new(hume_tests::hume_bin());
    cmd.args(args)
        .env("HUME_URL", server.url())
        .env("RUST_LOG", "warn");
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let out = cmd.output().expect("run hume");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
