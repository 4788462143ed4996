//! A failing disk under a real `hume serve`: an `LD_PRELOAD` shim (C,
//! compiled here with `cc`) makes `fsync`/`fdatasync` or `write`/`pwrite`
//! on the data directory's files fail with EIO while a control file
//! exists. A failing append gets a 5xx and nothing it carried becomes
//! visible; the log then refuses every append until restart (an fsync that
//! failed is never retried and trusted), says so on `/health`, logs the
//! failure once; after a restart every acknowledged event is intact.

use std::path::{Path, PathBuf};
use std::process::Command;

use hume_tests::server::TestServer;

use crate::disk_common::{assert_alive, http, Ledger};

const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* Does the control file HUME_FAULT_DIR/fail-<what> exist, and is `fd` a
   file under HUME_FAULT_PATH (the data directory)? */
static int fail(const char *what, int fd) {
    const char *dir = getenv("HUME_FAULT_DIR");
    const char *under = getenv("HUME_FAULT_PATH");
    if (!dir || !under) return 0;
    char ctl[PATH_MAX];
    snprintf(ctl, sizeof ctl, "%s/fail-%s", dir, what);
    if (access(ctl, F_OK) != 0) return 0;
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = 0;
    /* Inside the directory only: not `DATA.stderr.log` beside it (the
       server's own log). */
    size_t len = strlen(under);
    return strncmp(target, under, len) == 0 && target[len] == '/';
}

#define REAL(name, ret, ...) \
    static ret (*real)(__VA_ARGS__); \
    if (!real) real = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, name);

int fsync(int fd) {
    REAL("fsync", int, int);
    if (fail("fsync", fd)) { errno = EIO; return -1; }
    return real(fd);
}
int fdatasync(int fd) {
    REAL("fdatasync", int, int);
    if (fail("fsync", fd)) { errno = EIO; return -1; }
    return real(fd);
}
ssize_t write(int fd, const void *buf, size_t count) {
    REAL("write", ssize_t, int, const void *, size_t);
    if (fail("write", fd)) { errno = EIO; return -1; }
    return real(fd, buf, count);
}
ssize_t pwrite(int fd, const void *buf, size_t count, off_t off) {
    REAL("pwrite", ssize_t, int, const void *, size_t, off_t);
    if (fail("write", fd)) { errno = EIO; return -1; }
    return real(fd, buf, count, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t off) {
    REAL("pwrite64", ssize_t, int, const void *, size_t, off_t);
    if (fail("write", fd)) { errno = EIO; return -1; }
    return real(fd, buf, count, off);
}
"#;

/// Compile the shim into `dir`; `None` (loudly) without a C compiler.
fn build_shim(dir: &Path) -> Option<PathBuf> {
    let src = dir.join("fault.c");
    let lib = dir.join("libfault.so");
    std::fs::write(&src, SHIM).unwrap();
    match Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .status()
    {
        Ok(s) if s.success() => Some(lib),
        other => {
            eprintln!(
                "\n\n*** SKIPPED: cannot compile the fault shim with `cc` ({other:?}) ***\n\n"
            );
            None
        }
    }
}

fn run(what: &str) {
    let tmp = hume_tests::temp_dir();
    let Some(shim) = build_shim(tmp.path()) else {
        return;
    };
    let faults = tmp.path().join("faults");
    std::fs::create_dir(&faults).unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let data = data.canonicalize().unwrap();
    let env = [
        ("LD_PRELOAD", shim.to_str().unwrap()),
        ("HUME_FAULT_DIR", faults.to_str().unwrap()),
        ("HUME_FAULT_PATH", data.to_str().unwrap()),
    ];
    let mut server = TestServer::try_start_with_env(&data, &[], &env).unwrap();
    let mut ledger = Ledger::default();
    for _ in 0..10 {
        assert_eq!(ledger.append(&server, "s", 2, 100).0, 200);
    }
    let head_before = http(&server, "GET", "/health", None).1["head"]
        .as_u64()
        .unwrap();

    let control = faults.join(format!("fail-{what}"));
    std::fs::write(&control, "").unwrap();
    let mut failed_batches = Vec::new();
    for i in 0..5 {
        let before = ledger.refused.len();
        let (s, body) = ledger.append(&server, "s", 2, 100);
        assert!(
            (500..600).contains(&s),
            "append {i} while {what} fails: {s} {body}"
        );
        failed_batches.push(ledger.refused[before..].to_vec());
        if i == 0 {
            eprintln!("first failing append: {s} {body}");
        }
    }
    assert_alive(&server, "after the failures");
    // Nothing the failing appends carried is visible; reads work.
    ledger.assert_exactly_acked(&server, &format!("while {what} fails"));
    let (s, h) = http(&server, "GET", "/health", None);
    assert_eq!(s, 503, "{h}");
    assert_eq!(h["status"], "failed", "{h}");
    assert_eq!(h["head"].as_u64(), Some(head_before), "{h}");
    // The disk "works" again: still refused, the failed fsync is not retried
    // and trusted.
    std::fs::remove_file(&control).unwrap();
    let (s, body) = ledger.append(&server, "s", 1, 10);
    assert_eq!(s, 503, "refused until restart: {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("restart"),
        "{body}"
    );
    let log = server.stderr();
    assert_eq!(
        log.matches("event log write failed").count(),
        1,
        "logged once, with what to do:\n{log}"
    );
    assert!(log.contains("restart"), "{log}");

    server.restart();
    let stored = Ledger::stored(&server);
    for (id, data) in &ledger.acked {
        assert_eq!(
            stored.get(id),
            Some(data),
            "acknowledged event {id} after restart"
        );
    }
    // Each failed batch is all there or not at all. (With a failed write
    // nothing reached the file; after a failed fsync the kernel may still
    // hold the written pages, so the batch can come back: not acknowledged
    // is not the same as not written.)
    for batch in &failed_batches {
        let present = batch.iter().filter(|id| stored.contains_key(id)).count();
        assert!(
            present == 0 || present == batch.len(),
            "batch {batch:?} is atomic"
        );
        if what == "write" {
            assert_eq!(present, 0, "a failed write leaves nothing");
        }
    }
    let (s, v) = ledger.append(&server, "s", 1, 10);
    assert_eq!(s, 200, "appends work after the restart: {v}");
    assert_eq!(http(&server, "GET", "/health", None).0, 200);
}

#[test]
fn a_failed_fsync_fails_the_append_and_stops_writes_until_restart() {
    run("fsync");
}

#[test]
fn a_failed_write_fails_the_append_and_stops_writes_until_restart() {
    run("write");
}
