//! [`TestServer`]: a real `hume serve` process on a free loopback port, over
//! a data directory the test owns, with kill -9 / SIGTERM / restart.
//!
//! The server is started with `--listen 127.0.0.1:0`; it prints the address
//! it bound on its first stdout line, which is read here, so there is no
//! port race and no sleeping. Its stderr goes to `<data>.stderr.log`, shown
//! when it fails to start.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

use crate::nats::NatsServer;

/// The storage a [`TestServer`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded RocksDB under the data directory (the default).
    RocksDb,
    /// Cluster mode on a [`NatsServer`] the test server starts and owns
    /// (kept across restarts of `hume serve`).
    Nats,
}

/// A running `hume serve` (or one that was killed and can be restarted).
#[derive(Debug)]
pub struct TestServer {
    child: Option<Child>,
    nats: Option<NatsServer>,
    _stdout: Option<BufReader<ChildStdout>>,
    data: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    url: String,
}

impl TestServer {
    /// Start `hume serve --data DATA` on a free loopback port; panics with
    /// the server's stderr if it does not come up.
    pub fn start(data: impl AsRef<Path>) -> TestServer {
        TestServer::start_with(data, &[])
    }

    /// Like [`TestServer::start`], with extra `hume serve` arguments (kept
    /// for restarts).
    pub fn start_with(data: impl AsRef<Path>, args: &[&str]) -> TestServer {
        TestServer::try_start(data, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`TestServer::start_with`], on `backend`: for
    /// [`Backend::Nats`], a fresh `nats-server` is started first and the
    /// server runs with `--cluster` on it.
    pub fn start_on(backend: Backend, data: impl AsRef<Path>, args: &[&str]) -> TestServer {
        match backend {
            Backend::RocksDb => TestServer::start_with(data, args),
            Backend::Nats => {
                let nats = NatsServer::start();
                TestServer::try_start_on_nats(nats, data, args).unwrap_or_else(|e| panic!("{e}"))
            }
        }
    }

    /// Start `hume serve --cluster` on `nats` (which the server then owns).
    pub fn try_start_on_nats(
        nats: NatsServer,
        data: impl AsRef<Path>,
        args: &[&str],
    ) -> Result<TestServer, String> {
        let mut all = vec!["--cluster", nats.url()];
        all.extend_from_slice(args);
        let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut server = TestServer::new(data, &all, &[]);
        server.nats = Some(nats);
        server.spawn()?;
        Ok(server)
    }

    /// The `nats-server` under a [`Backend::Nats`] server.
    pub fn nats(&self) -> Option<&NatsServer> {
        self.nats.as_ref()
    }

    /// Start the server; `Err` holds its stderr when it exits instead of
    /// listening (e.g. refusing to open a damaged data directory).
    pub fn try_start(data: impl AsRef<Path>, args: &[&str]) -> Result<TestServer, String> {
        TestServer::try_start_with_env(data, args, &[])
    }

    /// Like [`TestServer::try_start`], with extra environment variables for
    /// the server process (kept for restarts).
    pub fn try_start_with_env(
        data: impl AsRef<Path>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<TestServer, String> {
        let mut server = TestServer::new(data, args, env);
        server.spawn()?;
        Ok(server)
    }

    fn new(data: impl AsRef<Path>, args: &[&str], env: &[(&str, &str)]) -> TestServer {
        TestServer {
            child: None,
            nats: None,
            _stdout: None,
            data: data.as_ref().to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            url: String::new(),
        }
    }

    fn stderr_path(&self) -> PathBuf {
        let mut p = self.data.clone().into_os_string();
        p.push(".stderr.log");
        PathBuf::from(p)
    }

    /// The server's stderr so far (its logs).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .map_err(|e| format!("cannot create the server's stderr log: {e}"))?;
        let mut child = Command::new(crate::hume_bin())
            .arg("serve")
            .arg("--data")
            .arg(&self.data)
            .args(["--listen", "127.0.0.1:0"])
            .args(&self.args)
            .env("RUST_LOG", "info")
            .env_remove("HUME_URL")
            .env_remove("HUME_AUTH_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start hume serve: {e}"))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let Some(url) = line.trim().strip_prefix("hume listening on ") else {
            let status = child.wait().ok();
            return Err(format!(
                "hume serve did not start (exit {status:?}); stdout {line:?}; stderr:\n{}",
                self.stderr()
            ));
        };
        self.url = url.to_string();
        self.child = Some(child);
        self._stdout = Some(stdout);
        let health = self.get_raw("/health");
        if !health.starts_with("HTTP/1.1 200") {
            return Err(format!("/health answered {health:?}"));
        }
        Ok(())
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's process id (while running).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A minimal blocking `GET` (no client library needed): the raw
    /// response (status line, headers, body).
    pub fn get_raw(&self, path: &str) -> String {
        let addr = self.url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).expect("connect to hume serve");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("send request");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read response");
        out
    }

    /// Kill the server with SIGKILL (no shutdown at all) and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self._stdout = None;
    }

    /// Stop the server with SIGTERM (graceful shutdown) and wait for it.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let status = child.wait().ok();
        self._stdout = None;
        status
    }

    /// Start again on the same data directory with the same arguments (a
    /// new port: read [`TestServer::url`] again). Kills a running server
    /// first.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Like [`TestServer::restart`] but returns the failure instead of
    /// panicking.
    pub fn try_restart(&mut self) -> Result<(), String> {
        self.kill9();
        self.spawn()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // `hume serve` first, then the nats-server under it.
        self.kill9();
    }
}

/// Instantiate each named `async fn NAME(backend: Backend)` test once per
/// backend, as `NAME::rocksdb` and `NAME::nats`: one source, both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn rocksdb() {
                super::$name($crate::server::Backend::RocksDb).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn nats() {
                super::$name($crate::server::Backend::Nats).await
            }
        }
    )*};
}
