//! Helpers shared by the projection tests: the HTTP API of a real
//! `hume serve` process (through reqwest) and the `hume` CLI as a process.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hume_tests::server::TestServer;
use serde_json::{json, Value};

/// Run `hume ARGS` against `server`; returns the whole output.
pub fn cli(server: &TestServer, args: &[&str]) -> Output {
    Command::new(hume_tests::hume_bin())
        .args(args)
        .env("HUME_URL", server.url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run hume")
}

/// Run `hume ARGS`, expect success, return stdout.
pub fn cli_ok(server: &TestServer, args: &[&str]) -> String {
    let out = cli(server, args);
    assert!(
        out.status.success(),
        "hume {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Run `hume ARGS`, expect failure, return stderr.
pub fn cli_err(server: &TestServer, args: &[&str]) -> String {
    let out = cli(server, args);
    assert!(
        !out.status.success(),
        "hume {args:?} should have failed; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).expect("utf-8 stderr")
}

/// An HTTP client for one server.
pub struct Api {
    pub url: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(server: &TestServer) -> Api {
        Api::from_url(server.url())
    }

    /// A client for the server at `url` (e.g. in a spawned task).
    pub fn from_url(url: &str) -> Api {
        Api {
            url: url.to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn answer(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("read body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET");
        Self::answer(resp).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("POST");
        Self::answer(resp).await
    }

    pub async fn get_ok(&self, path: &str) -> Value {
        let (s, v) = self.get(path).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    pub async fn post_ok(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.post(path, body).await;
        assert!((200..300).contains(&s), "POST {path}: {s} {v}");
        v
    }

    /// Append events `(kind, data)` to `stream` as one batch; the outcome.
    pub async fn append(&self, stream: &str, events: &[(&str, Value)]) -> Value {
        let events: Vec<Value> = events
            .iter()
            .map(|(k, d)| json!({"kind": k, "data": d}))
            .collect();
        self.post_ok(&format!("/streams/{stream}"), json!({ "events": events }))
            .await
    }

    /// Deploy the plugin file at `wasm` (raw response).
    pub async fn deploy_raw(
        &self,
        name: &str,
        wasm: &[u8],
        streams: &[&str],
        options: Value,
        keep_state: bool,
    ) -> (u16, Value) {
        self.post(
            "/projections",
            json!({
                "name": name,
                "plugin": base64::engine::general_purpose::STANDARD.encode(wasm),
                "streams": streams,
                "options": options,
                "keep_state": keep_state,
            }),
        )
        .await
    }

    /// Deploy and expect success.
    pub async fn deploy(
        &self,
        name: &str,
        wasm_path: &str,
        streams: &[&str],
        options: Value,
    ) -> Value {
        let (s, v) = self
            .deploy_raw(
                name,
                &hume_tests::read_wasm(wasm_path),
                streams,
                options,
                false,
            )
            .await;
        assert_eq!(s, 201, "deploy {name}: {v}");
        v
    }

    pub async fn status(&self, name: &str) -> Value {
        self.get_ok(&format!("/projections/{name}")).await
    }

    pub async fn state(&self, name: &str) -> Value {
        self.get_ok(&format!("/projections/{name}/state")).await
    }

    pub async fn snapshot(&self, name: &str) -> Value {
        self.get_ok(&format!("/projections/{name}/snapshot")).await
    }

    pub async fn list(&self) -> Vec<Value> {
        self.get_ok("/projections").await["projections"]
            .as_array()
            .expect("projections array")
            .clone()
    }

    /// Poll status until `pred` holds (panics after 60 s with the last status).
    pub async fn wait_status(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, s) = self.get(&format!("/projections/{name}")).await;
            if code == 200 && pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {name}: {what}; last status: {s:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `hume replay PLUGIN --events FILE` over events of the server's log
/// exported with `hume read SOURCE...` (e.g. `["--category", "kv-"]` or
/// `["--all"]`): the offline `{"offset", "state"}`.
pub fn offline_replay(
    server: &TestServer,
    plugin: &str,
    source: &[&str],
    dir: &Path,
    extra: &[&str],
) -> Value {
    let mut read = vec!["read"];
    read.extend_from_slice(source);
    let events = cli_ok(server, &read);
    let file = dir.join("replay-events.ndjson");
    std::fs::write(&file, events).expect("write events file");
    let mut args = vec![
        "replay",
        plugin,
        "--events",
        file.to_str().unwrap(),
        "--no-cache",
    ];
    args.extend_from_slice(extra);
    let out = cli_ok(server, &args);
    serde_json::from_str(&out).expect("replay prints JSON")
}

/// The same component with an extra custom section: another content hash,
/// the same behaviour (a "new version" for blue/green tests).
pub fn variant(wasm: &[u8], tag: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"hume-test-variant";
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}
