#!/usr/bin/env python3
"""Cluster mode benchmarks (issue 9), whole processes: real nats-server,
real `hume serve` nodes, the example plugins.

    python3 scripts/bench-cluster.py failover   # (b) kill -9 the owner, time to running + caught up
    python3 scripts/bench-cluster.py rebuild    # (a) rebuild kv from N events, JetStream vs RocksDB
    python3 scripts/bench-cluster.py fold       # (c) 30 projections on 1, 2 and 3 nodes

Environment: HUME_BIN (default target/release/hume), NATS_SERVER (default
.hume-tools/venv/bin/nats-server), KV_WASM / COUNTER_WASM / BANK_WASM
(default: built by `hume build example-plugins/NAME` into the work
directory), KILLS (failover, default 20), LEASE_TTL (failover, ms, default
6000 = Hume's default), EVENTS (rebuild, default 1000000; fold, default
100000), ROUNDS (rebuild, default 3), WORK (default: a new directory under /tmp,
removed at the end).

One nats-server (JetStream, `sync_interval: always`, R1) on loopback: the
nodes' failover and folding do not depend on the log's replication.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HUME = os.environ.get("HUME_BIN", "target/release/hume")
TOOLS = os.environ.get("HUME_TOOLS", os.path.join(os.getcwd(), ".hume-tools"))
NATS = os.environ.get("NATS_SERVER", os.path.join(TOOLS, "venv/bin/nats-server"))
PROCS = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def req(port, method, path, body=None, timeout=300):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def ok(port, method, path, body=None):
    status, v = req(port, method, path, body)
    if status >= 300:
        raise SystemExit(f"{method} {path}: {status} {v}")
    return v


def plugin(work, name):
    path = os.environ.get(f"{name.upper()}_WASM")
    if path:
        return path
    path = os.path.join(work, f"{name}.wasm")
    if not os.path.exists(path):
        subprocess.run([HUME, "build", f"example-plugins/{name}", "-o", path], check=True,
                       stdout=subprocess.DEVNULL)
    return path


def start_nats(work):
    port = free_port()
    d = os.path.join(work, "nats")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nats.conf")
    with open(conf, "w") as f:
        f.write(f'listen: "127.0.0.1:{port}"\nlog_file: "{d}/nats.log"\nmax_payload: 8MB\n'
                f'jetstream {{\n  store_dir: "{d}/js"\n  sync_interval: always\n}}\n')
    p = subprocess.Popen([NATS, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    PROCS.append(p)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nats-server did not start")


class Node:
    """One `hume serve` (cluster node, or embedded when nats is None)."""

    def __init__(self, work, name, nats=None, ttl=None, env=None):
        self.name, self.nats, self.ttl, self.env = name, nats, ttl, env
        self.data = os.path.join(work, name)
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        args = [HUME, "serve", "--data", self.data, "--listen", f"127.0.0.1:{self.port}"]
        if self.nats:
            args += ["--cluster", self.nats, "--node-id", self.name]
            if self.ttl:
                args += ["--lease-ttl", str(self.ttl)]
        log = open(self.data + ".log", "ab")
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, env=env)
        PROCS.append(self.proc)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("hume listening on"):
            raise SystemExit(f"{self.name} did not start: {line!r}; see {self.data}.log")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()

    def names(self):
        return [p["name"] for p in self.local()]

    def local(self):
        """The statuses of the projections this node runs itself (a build
        without the cluster-wide listing refuses `local`: its listing is
        local anyway)."""
        status, v = req(self.port, "GET", "/projections?local=true")
        if status == 400:
            return ok(self.port, "GET", "/projections")["projections"]
        if status >= 300:
            raise SystemExit(f"GET /projections?local=true: {status} {v}")
        return v["projections"]


def deploy(node, name, wasm, streams, options=None):
    import base64
    body = {"name": name, "plugin": base64.b64encode(open(wasm, "rb").read()).decode(),
            "streams": streams, "options": options or {}}
    ok(node.port, "POST", "/projections", body)


def append(port, stream, events, expected=None):
    body = {"events": [{"kind": k, "data": d} for k, d in events]}
    if expected is not None:
        body["expected_revision"] = expected
    return ok(port, "POST", f"/streams/{stream}", body)


def fill(port, total, make, threads=8, batch=1000):
    """Append `total` events (make(i) -> (stream, kind, data)) in batches."""
    chunks = [(s, min(s + batch, total)) for s in range(0, total, batch)]
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if not chunks:
                    return
                a, b = chunks.pop()
            by_stream = {}
            for i in range(a, b):
                s, k, d = make(i)
                by_stream.setdefault(s, []).append((k, d))
            for s, evs in by_stream.items():
                append(port, s, evs)
    ts = [threading.Thread(target=work) for _ in range(threads)]
    [t.start() for t in ts]
    [t.join() for t in ts]


def head_of(port):
    return sum(s["revision"] for s in ok(port, "GET", "/streams")["streams"])


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def load():
    return open("/proc/loadavg").read().split()[:3]


# (b) ---------------------------------------------------------------------
def failover(work):
    kills = int(os.environ.get("KILLS", "20"))
    ttl = int(os.environ.get("LEASE_TTL", "6000"))
    nats = start_nats(work)
    nodes = [Node(work, f"h{i}", nats, ttl) for i in (1, 2, 3)]
    bank = plugin(work, "bank")
    for i in range(6):
        deploy(nodes[0], f"bank{i}", bank, [f"account{i}-*"])
    for i in range(6):
        append(nodes[0].port, f"account{i}-1", [("opened", {"account": "a"})])
    times = []
    for k in range(kills):
        # Everything placed: each projection on exactly one node.
        deadline = time.time() + 60
        while True:
            owners = {}
            for n in nodes:
                for p in n.names():
                    owners.setdefault(p, []).append(n)
            if len(owners) == 6 and all(len(v) == 1 for v in owners.values()):
                counts = [sum(1 for v in owners.values() if v[0] is n) for n in nodes]
                if max(counts) - min(counts) <= 1:
                    break
            if time.time() > deadline:
                raise SystemExit(f"projections not spread: {owners}")
            time.sleep(0.1)
        victim = owners["bank0"][0]
        others = [n for n in nodes if n is not victim]
        victim.kill9()
        killed = time.time()
        pos = append(others[0].port, "account0-1",
                     [("deposited", {"account": "a", "amount": 1})])["last_position"]
        while True:
            found = None
            for n in others:
                for v in n.local():
                    if v["name"] == "bank0" and v["state"] in ("running", "hibernated") \
                            and v["offset"] >= pos:
                        found = n
            if found:
                break
            if time.time() - killed > 10 * ttl / 1000:
                raise SystemExit("bank0 did not fail over")
            time.sleep(0.02)
        took = time.time() - killed
        times.append(took)
        print(f"kill {k + 1}: {victim.name} -> {found.name} in {took:.2f} s", flush=True)
        victim.start()
    p50, p99 = statistics.median(times), pct(times, 99)
    print(json.dumps({"bench": "failover", "kills": kills, "lease_ttl_ms": ttl,
                      "p50_s": round(p50, 2), "p99_s": round(p99, 2),
                      "max_s": round(max(times), 2), "min_s": round(min(times), 2),
                      "p99_over_ttl": round(p99 / (ttl / 1000), 2), "load": load()}))


# (a) ---------------------------------------------------------------------
def rebuild(work):
    events = int(os.environ.get("EVENTS", "1000000"))
    kv = plugin(work, "kv")
    nats = start_nats(work)
    results = {}
    # 100 streams; each chunk of 1,000 appends 100 events to each of 10
    # streams (fewer, bigger appends: filling JetStream is not measured).
    make = lambda i: (f"config-{(i // 100) % 100}", "add", {"key": f"k{i % 1000}", "value": i})
    embedded = Node(work, "embedded")
    # Cluster nodes run one at a time (a second would share the projections):
    # with reading ahead (the default) and page by page (HUME_READ_AHEAD=0).
    variants = {"rocksdb": None, "jetstream": {}, "jetstream page by page": {"HUME_READ_AHEAD": "0"}}
    filler = Node(work, "filler", nats)
    for backend, node in (("rocksdb", embedded), ("jetstream", filler)):
        t = time.time()
        fill(node.port, events, make)
        print(f"{backend}: appended {events} events in {time.time() - t:.1f} s", flush=True)
    filler.stop()
    for rnd in range(int(os.environ.get("ROUNDS", "3"))):
        for i, (backend, env) in enumerate(variants.items()):
            node = embedded if env is None else Node(work, f"js{rnd}{i}", nats, env=env)
            name = f"kv{rnd}x{i}"
            head = head_of(node.port)
            t = time.time()
            deploy(node, name, kv, ["config-*"], {"snapshot_every": 1000000000})
            while True:
                st, v = req(node.port, "GET", f"/projections/{name}")
                if st == 200 and v["offset"] >= head:
                    break
                time.sleep(0.05)
            took = time.time() - t
            rate = events / took
            results.setdefault(backend, []).append(rate)
            print(f"round {rnd + 1} {backend}: rebuilt kv from {events} events in {took:.1f} s "
                  f"({rate:,.0f} events/s)", flush=True)
            ok(node.port, "DELETE", f"/projections/{name}")
            if node is not embedded:
                node.stop()
    med = {b: statistics.median(r) for b, r in results.items()}
    r = med["rocksdb"]
    print(json.dumps({"bench": "rebuild", "events": events,
                      **{f"{b.replace(' ', '_')}_events_s": round(v) for b, v in med.items()},
                      "ratio": round(med["jetstream"] / r, 2),
                      "ratio_page_by_page": round(med["jetstream page by page"] / r, 2),
                      "load": load()}))


# (c) ---------------------------------------------------------------------
def fold(work):
    events = int(os.environ.get("EVENTS", "100000"))
    plugins = {n: plugin(work, n) for n in ("kv", "counter", "bank")}
    out = []
    for count in (1, 2, 3):
        nats = start_nats(os.path.join(work, f"c{count}"))
        nodes = [Node(os.path.join(work, f"c{count}"), f"h{i}", nats) for i in range(count)]
        port = nodes[0].port
        third = events // 3
        fill(port, third, lambda i: (f"config-{i % 50}", "add", {"key": f"k{i % 500}", "value": i}))
        fill(port, third, lambda i: (f"count-{i % 50}", "tick", {}))
        accounts = [f"account-{i}" for i in range(50)]
        for a in accounts:
            append(port, a, [("opened", {"account": a})])
        fill(port, events - 2 * third - 50,
             lambda i: (accounts[i % 50], "deposited", {"account": accounts[i % 50], "amount": 1}))
        head = head_of(port)
        per = {"kv": ("config-*", third), "counter": ("count-*", third),
               "bank": ("account-*", events - 2 * third)}
        t = time.time()
        for i in range(30):
            kind = ("kv", "counter", "bank")[i % 3]
            deploy(nodes[i % count], f"{kind}{i}", plugins[kind], [per[kind][0]],
                   {"snapshot_every": 1000000000})
        names = {f"{('kv', 'counter', 'bank')[i % 3]}{i}" for i in range(30)}
        # Wait until each projection is at the head on one node.
        while True:
            done = set()
            for n in nodes:
                for p in n.local():
                    if p["name"] in names and p["state"] in ("running", "hibernated") \
                            and p.get("scanned", p["offset"]) >= head:
                        done.add(p["name"])
            if done == names:
                break
            time.sleep(0.1)
        took = time.time() - t
        folded = sum(per[("kv", "counter", "bank")[i % 3]][1] for i in range(30))
        rate = folded / took
        out.append((count, rate))
        print(f"{count} node(s): 30 projections folded {folded:,} events in {took:.1f} s "
              f"({rate:,.0f} events/s in all)", flush=True)
        for n in nodes:
            n.stop()
    base = out[0][1]
    print(json.dumps({"bench": "fold", "events": events, "load": load(),
                      "nodes": {c: {"events_s": round(r), "vs_1": round(r / base, 2)}
                                for c, r in out}}))


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    benches = {"failover": failover, "rebuild": rebuild, "fold": fold}
    if what not in benches:
        raise SystemExit(__doc__)
    keep = "WORK" in os.environ
    work = os.environ.get("WORK") or tempfile.mkdtemp(prefix="hume-bench-cluster-")
    os.makedirs(work, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, load {load()}; hume {HUME}; work {work}", flush=True)
    try:
        benches[what](work)
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
