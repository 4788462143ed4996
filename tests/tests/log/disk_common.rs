//! Shared by the disk tests: a small tmpfs the test can fill and grow, a
//! plain HTTP client over TCP, and the bookkeeping of what the server
//! acknowledged.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hume_tests::server::TestServer;
use serde_json::{json, Value};

/// A tmpfs mounted for one test, unmounted when dropped.
pub struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
    size_kb: u64,
}

impl Tmpfs {
    /// Mount a tmpfs of `size_kb` KiB, or `None` (with a loud message) when
    /// this machine does not allow it (not root, no CAP_SYS_ADMIN).
    pub fn mount(size_kb: u64) -> Option<Tmpfs> {
        let dir = hume_tests::temp_dir();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kb}k"), "tmpfs"])
            .arg(&path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                _dir: dir,
                path,
                size_kb,
            }),
            other => {
                eprintln!(
                    "\n\n*** SKIPPED: cannot mount a tmpfs to fill ({other:?}); run the tests \
                     as root (or with CAP_SYS_ADMIN) to test a full disk ***\n\n"
                );
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Free space: raise the size limit by `extra_kb` KiB.
    pub fn grow(&mut self, extra_kb: u64) {
        self.size_kb += extra_kb;
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={}k", self.size_kb)])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(st.success(), "remount the tmpfs bigger");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// One HTTP exchange: status and JSON body (or the text as a string).
pub fn http(server: &TestServer, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let addr = server.url().trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).expect("connect to hume serve");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let value = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
    (status, value)
}

/// Deploy the kv plugin as `kv` over the stream `kv`.
pub fn deploy_kv(server: &TestServer) {
    use base64::Engine as _;
    let plugin = base64::engine::general_purpose::STANDARD
        .encode(hume_tests::read_wasm(hume_tests::KV_WASM));
    let (s, v) = http(
        server,
        "POST",
        "/projections",
        Some(&json!({"name": "kv", "plugin": plugin, "streams": ["kv"]})),
    );
    assert_eq!(s, 201, "deploy kv: {v}");
}

/// `bytes` hex digits that LZ4 cannot shrink (a xorshift stream seeded by
/// the event id): repeated padding compresses to almost nothing once a
/// memtable is flushed, and a disk grown past the WAL's size would then
/// never fill.
fn incompressible(seed: u64, bytes: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x & 15) as u32, 16).unwrap()
        })
        .collect()
}

/// What the server answered 200 to: event id → its data, and the ids it
/// refused.
#[derive(Debug, Default)]
pub struct Ledger {
    pub acked: BTreeMap<u64, Value>,
    pub refused: Vec<u64>,
    next_id: u64,
}

impl Ledger {
    /// Append `n` events of `bytes` padding each to `stream` in one batch;
    /// the status and body of the answer. The events are recorded as acked
    /// on 200 and as refused otherwise.
    pub fn append(
        &mut self,
        server: &TestServer,
        stream: &str,
        n: usize,
        bytes: usize,
    ) -> (u16, Value) {
        let mut ids = Vec::new();
        let events: Vec<Value> = (0..n)
            .map(|_| {
                self.next_id += 1;
                ids.push(self.next_id);
                let pad = incompressible(self.next_id, bytes);
                json!({"kind": "e", "data": {"id": self.next_id, "pad": pad}})
            })
            .collect();
        let (status, body) = http(
            server,
            "POST",
            &format!("/streams/{stream}"),
            Some(&json!({ "events": events })),
        );
        for (id, e) in ids.into_iter().zip(events) {
            if status == 200 {
                self.acked.insert(id, e["data"].clone());
            } else {
                self.refused.push(id);
            }
        }
        (status, body)
    }

    /// Every event with an `id` in the log, read through `/all`.
    pub fn stored(server: &TestServer) -> BTreeMap<u64, Value> {
        let mut out = BTreeMap::new();
        let mut from = 0u64;
        loop {
            let (s, page) = http(
                server,
                "GET",
                &format!("/all?from_position={from}&limit=1000"),
                None,
            );
            assert_eq!(s, 200, "read /all: {page}");
            let events = page["events"].as_array().unwrap();
            for e in events {
                if let Some(id) = e["data"]["id"].as_u64() {
                    assert!(
                        out.insert(id, e["data"].clone()).is_none(),
                        "event {id} stored twice"
                    );
                }
            }
            match page["next"].as_u64() {
                Some(n) => from = n,
                None => break,
            }
        }
        out
    }

    /// The log holds every acknowledged event, exactly, and none that was
    /// refused.
    pub fn assert_exactly_acked(&self, server: &TestServer, when: &str) {
        let stored = Ledger::stored(server);
        for (id, data) in &self.acked {
            assert_eq!(
                stored.get(id),
                Some(data),
                "{when}: acknowledged event {id} is missing or changed"
            );
        }
        for id in &self.refused {
            assert!(
                !stored.contains_key(id),
                "{when}: event {id} was refused (no 200) but is in the log"
            );
        }
        assert_eq!(
            stored.len(),
            self.acked.len(),
            "{when}: nothing else stored"
        );
    }
}

/// The server process is still running (it did not abort).
pub fn assert_alive(server: &TestServer, when: &str) {
    let pid = server.pid().expect("server was started");
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = st.rsplit(')').next().unwrap_or("").trim_start();
    assert!(
        !st.is_empty() && !state.starts_with('Z'),
        "{when}: hume serve exited (aborted?); stderr:\n{}",
        server.stderr()
    );
}
