//! End-to-end test support: the test plugins built from source, and the
//! `hume` binary.
//!
//! - `KV_WASM`, `COUNTER_WASM`, `BANK_WASM`, `CART_WASM`: the Rust example plugins;
//!   `HOSTILE_WASM` (misbehaves by event kind: `loop`, `alloc`, `recurse`,
//!   `panic`, `big-snapshot`, `reject`; counts other kinds) and
//!   `SANDBOX_PROBE_WASM` (tries files, directories, environment, sockets
//!   and name lookups, and reads clocks and randomness, reporting what
//!   happened in its state) and `WRONG_WORLD_WASM` (a component of the
//!   world `test:other/other`).
//!   All are absolute paths to `.wasm` components built by `build.rs`.
//! - [`hume_bin`]: the `hume` binary to run as a process.
//! - [`read_wasm`], [`temp_dir`]: small helpers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub mod nats;
pub mod server;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The workspace root (the parent of `tests/`).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// The debug `hume` binary of this build (in the target directory, next to
/// the `deps` folder of the running test executable). It is brought up to
/// date once per test process with `cargo build -p hume --bin hume` (a no-op
/// when nothing changed), so tests never run a stale binary.
pub fn hume_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("path of the test executable");
        let mut dir = exe
            .parent()
            .expect("test executable has a directory")
            .to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let bin = dir.join(format!("hume{}", std::env::consts::EXE_SUFFIX));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let profile_is_release = dir.ends_with("release");
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root())
            .args(["build", "-p", "hume", "--bin", "hume"]);
        if profile_is_release {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .unwrap_or_else(|err| panic!("cannot run `cargo build -p hume --bin hume`: {err}"));
        assert!(
            status.success(),
            "`cargo build -p hume --bin hume` failed ({status}); see its output above"
        );
        assert!(
            bin.is_file(),
            "`cargo build -p hume --bin hume` succeeded but {} is missing \
             (is CARGO_TARGET_DIR different from the test's target directory?)",
            bin.display()
        );
        bin
    })
    .clone()
}

/// The bytes of a test plugin, e.g. `read_wasm(KV_WASM)`.
pub fn read_wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|err| panic!("cannot read test plugin {path}: {err}"))
}

/// A fresh temporary directory, deleted when the value is dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hume-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// The embedded event log as the server wires it (validation above the
/// backend), opened in a directory, for library-level log tests.
pub mod log {
    use std::path::Path;
    use std::sync::Arc;

    use hume::backend::rocksdb::{Db, DbOptions, LogOptions as RocksOptions, RocksLog};
    use hume::log::{checked, EventLog, Limits};

    /// The append limits and the scan budget of one log.
    #[derive(Debug, Clone)]
    pub struct LogOptions {
        /// See [`Limits::max_event_bytes`].
        pub max_event_bytes: usize,
        /// See [`Limits::max_batch_events`].
        pub max_batch_events: usize,
        /// See [`Limits::max_batch_bytes`].
        pub max_batch_bytes: usize,
        /// See [`RocksOptions::max_scan`].
        pub max_scan: usize,
    }

    impl Default for LogOptions {
        fn default() -> Self {
            let l = Limits::default();
            LogOptions {
                max_event_bytes: l.max_event_bytes,
                max_batch_events: l.max_batch_events,
                max_batch_bytes: l.max_batch_bytes,
                max_scan: RocksOptions::default().max_scan,
            }
        }
    }

    /// Open (or create) the log in `dir`, checked as `hume serve` checks it.
    pub fn open_log(dir: &Path, options: LogOptions) -> Arc<dyn EventLog> {
        let db = Db::open(dir, &DbOptions::default()).expect("open db");
        let rocks = RocksLog::open(
            db,
            RocksOptions {
                max_scan: options.max_scan,
            },
        )
        .expect("open log");
        checked(
            Arc::new(rocks),
            Limits {
                max_event_bytes: options.max_event_bytes,
                max_batch_events: options.max_batch_events,
                max_batch_bytes: options.max_batch_bytes,
            },
        )
    }

    /// One log to test, on either backend, that can be opened (and opened
    /// again, to test reopening) with the same options: the library-level
    /// log tests run on both backends from one source with it.
    #[derive(Debug)]
    pub struct LogUnderTest {
        backend: crate::server::Backend,
        dir: std::path::PathBuf,
        nats: Option<crate::nats::NatsServer>,
        options: LogOptions,
    }

    impl LogUnderTest {
        /// A log in `dir` (RocksDB) or on a fresh `nats-server` (NATS).
        pub fn new(backend: crate::server::Backend, dir: &Path, options: LogOptions) -> Self {
            let nats =
                (backend == crate::server::Backend::Nats).then(crate::nats::NatsServer::start);
            LogUnderTest {
                backend,
                dir: dir.to_path_buf(),
                nats,
                options,
            }
        }

        /// Open the log, checked as `hume serve` checks it. The scan
        /// budget applies to RocksDB only (JetStream filters on the server).
        pub async fn open(&self) -> Arc<dyn EventLog> {
            match &self.nats {
                None => open_log(&self.dir, self.options.clone()),
                Some(nats) => {
                    let options = hume::backend::nats::ClusterOptions {
                        urls: vec![nats.url().to_string()],
                        node_id: "test".into(),
                        connect_timeout: std::time::Duration::from_secs(5),
                        lease_ttl: std::time::Duration::from_secs(6),
                    };
                    let limits = Limits {
                        max_event_bytes: self.options.max_event_bytes,
                        max_batch_events: self.options.max_batch_events,
                        max_batch_bytes: self.options.max_batch_bytes,
                    };
                    hume::backend::nats::NatsBackend::connect(&options, limits)
                        .await
                        .unwrap_or_else(|e| panic!("open the NATS log: {e}"))
                        .stores
                        .log
                }
            }
        }

        /// The backend.
        pub fn backend(&self) -> crate::server::Backend {
            self.backend
        }
    }
}
