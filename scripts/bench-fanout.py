#!/usr/bin/env python3
"""Many small projections on one server, whole process: deploy, catch up,
clean shutdown and restart times, and resident memory.

The same phases as part (c) of `cargo bench -p hume-tests --bench
projection`, as a script that can restart an existing data directory many
times (to compare two `hume` binaries on the same data, for example):

    cargo build --release -p hume
    # once: deploy N `counter` projections (one stream each), append 10
    # events per stream, wait until all are at the head, shut down cleanly
    python3 scripts/bench-fanout.py setup
    # then, as often as wanted: start, wait until all are at the head, stop
    python3 scripts/bench-fanout.py restart

Environment: N (default 100000), DATA (default /var/tmp/hume-fanout),
HUME_BIN (default target/release/hume), COUNTER_WASM (default: the one
tests/build.rs built under target/), PORT (default 7199), EXTRA (more
`hume serve` flags), HOLD (seconds to stay up after a restart), LISTING=1
(poll the full listing, as rounds before the summary did, instead of
`GET /projections?summary=true`).
"""
import base64
import glob
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

N = int(os.environ.get("N", "100000"))
PORT = int(os.environ.get("PORT", "7199"))
HUME = os.environ.get("HUME_BIN", "target/release/hume")
DATA = os.environ.get("DATA", "/var/tmp/hume-fanout")
WORKERS = 8


def counter_wasm():
    path = os.environ.get("COUNTER_WASM")
    if not path:
        found = glob.glob("target/**/wasm32-wasip2/guest/counter.wasm", recursive=True)
        if not found:
            sys.exit("counter.wasm not found: build the tests once, or set COUNTER_WASM")
        path = found[0]
    return base64.b64encode(open(path, "rb").read()).decode()


def conn():
    return http.client.HTTPConnection("127.0.0.1", PORT, timeout=300)


def req(c, method, path, body=None):
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read()


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0


def start():
    cmd = [HUME, "serve", "--data", DATA, "--listen", f"127.0.0.1:{PORT}"]
    cmd += os.environ.get("EXTRA", "").split()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(DATA + ".log", "a"))
    t = time.time()
    while True:
        if p.poll() is not None:
            sys.exit(f"hume serve exited with {p.returncode}; see {DATA}.log")
        try:
            if req(conn(), "GET", "/health")[0] == 200:
                return p, time.time() - t
        except OSError:
            time.sleep(0.02)


def parallel(fn):
    threads = [threading.Thread(target=fn, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def all_at_the_head():
    """Poll until every projection is at the head. LISTING=1 polls the full
    listing (what earlier rounds did: the server serialises every status and
    this script parses tens of megabytes each time) instead of the summary."""
    c = conn()
    while True:
        if os.environ.get("LISTING") == "1":
            listing = json.loads(req(c, "GET", "/projections")[1])["projections"]
            behind = sum(1 for s in listing
                         if s.get("lag") != 0 or s["state"] not in ("running", "hibernated"))
            if behind == 0 and len(listing) == N:
                return
        else:
            s = json.loads(req(c, "GET", "/projections?summary=true")[1])
            if s["total"] == N and s["at_head"] == N:
                return
        time.sleep(0.2)


def stop(p):
    t = time.time()
    p.send_signal(signal.SIGTERM)
    p.wait()
    print(f"clean shutdown {time.time() - t:.1f} s", flush=True)


def setup():
    wasm = counter_wasm()
    p, _ = start()
    t = time.time()

    def deploy(w):
        c = conn()
        for i in range(w, N, WORKERS):
            s, d = req(c, "POST", "/projections",
                       {"name": f"c{i}", "plugin": wasm, "streams": [f"c-{i}"]})
            assert s == 201, d

    parallel(deploy)
    print(f"deployed {N} in {time.time() - t:.1f} s; RSS {rss_mib(p.pid):.0f} MiB", flush=True)
    t = time.time()

    def append(w):
        c = conn()
        for i in range(w, N, WORKERS):
            s, d = req(c, "POST", f"/streams/c-{i}",
                       {"events": [{"kind": "tick", "data": {}}] * 10})
            assert s == 200, d

    parallel(append)
    all_at_the_head()
    print(f"{N * 10} events, all at the head after {time.time() - t:.1f} s; "
          f"RSS {rss_mib(p.pid):.0f} MiB", flush=True)
    stop(p)


def restart():
    t = time.time()
    p, listening = start()
    all_at_the_head()
    print(f"restart: listening {listening:.2f} s, all at the head {time.time() - t:.2f} s; "
          f"RSS {rss_mib(p.pid):.0f} MiB", flush=True)
    hold = float(os.environ.get("HOLD", "0"))
    if hold:
        time.sleep(hold)
        print(f"RSS {hold:.0f} s later {rss_mib(p.pid):.0f} MiB", flush=True)
    stop(p)


if __name__ == "__main__":
    {"setup": setup, "restart": restart}.get(sys.argv[1] if len(sys.argv) > 1 else "",
                                             lambda: sys.exit(__doc__))()
