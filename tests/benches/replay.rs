//! Replay speed: 1,000,000 `kv` events (keys drawn from 10,000, payloads of
//! about 60 bytes) folded through the wasm plugin in the real runtime, and
//! through the same projection compiled natively via the SDK, in one run.
//!
//! `cargo bench -p hume-tests --bench replay` prints criterion's figures and
//! summary lines with both rates and their ratio (goal: wasm >= 1M
//! events/s and >= 0.5x native), and the time of one snapshot of the final
//! state (`-- zzz-skip` skips criterion's timed loop and keeps those).
//! `HUME_BENCH_BATCH` overrides the batch size; `HUME_WASM_PERFMAP=1` names
//! guest functions for `perf`.
//!
//! Then the same events as an NDJSON file: `hume replay` of it (the release
//! binary, a whole process, compiled-plugin cache warm) against the
//! in-library fold above and against the Node.js peer
//! (`benches/kits/node_replay.mjs`: the JS kv logic folding the same file in
//! plain Node, a whole process), best of 3 each (goals: >= 0.8x the library
//! fold, >= 1.5x Node). `HUME_BENCH_FILE=0` skips this part.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hume::log::RecordedEvent;
use hume::plugin::{Limits, Plugin, Runtime, RuntimeConfig};
use hume::projection::{Folder, Snapshot};
use hume_guest::EventMeta;

const EVENTS: u64 = 1_000_000;
const KEYS: u64 = 10_000;

/// Deterministic events: mostly `add`, every 20th a `remove`.
fn events() -> Vec<RecordedEvent> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    (1..=EVENTS)
        .map(|position| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let key = seed % KEYS;
            let (kind, data) = if position % 20 == 0 {
                ("remove", format!(r#"{{"key":"key-{key:05}"}}"#))
            } else {
                (
                    "add",
                    format!(
                        r#"{{"key":"key-{key:05}","value":{{"n":{},"tag":"item-{:08}"}}}}"#,
                        seed % 1_000_000,
                        position
                    ),
                )
            };
            RecordedEvent {
                position,
                stream: format!("kv-{}", key % 100),
                revision: position,
                kind: kind.to_string(),
                data: data.into_bytes(),
                metadata: None,
                timestamp: 1_700_000_000_000 + position,
            }
        })
        .collect()
}

/// The kv plugin: the one `tests/build.rs` built, or `HUME_BENCH_KV_WASM`
/// (e.g. an unstripped build, for profiling).
fn kv_wasm() -> String {
    std::env::var("HUME_BENCH_KV_WASM").unwrap_or_else(|_| hume_tests::KV_WASM.to_string())
}

/// CPU time consumed by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn batch_size() -> usize {
    std::env::var("HUME_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Every event through the wasm plugin, in batches; returns the final state.
async fn replay_wasm(plugin: &Plugin, events: &[RecordedEvent], batch: usize) -> Snapshot {
    let mut folder = Folder::start(plugin, "bench", None, true, Limits::default())
        .await
        .expect("start");
    for chunk in events.chunks(batch) {
        folder.apply(chunk).await.expect("apply");
    }
    folder.snapshot().await.expect("snapshot")
}

/// The same projection natively: the SDK's own batch path on `kv::Kv`.
fn replay_native(events: &[RecordedEvent], batch: usize) -> Vec<u8> {
    hume_guest::snapshot(&fold_native(events, batch))
}

/// The final native state.
fn fold_native(events: &[RecordedEvent], batch: usize) -> kv::Kv {
    let mut state = kv::Kv::default();
    for chunk in events.chunks(batch) {
        hume_guest::apply_batch(
            &mut state,
            chunk.iter().map(|e| EventMeta {
                position: e.position,
                stream: &e.stream,
                revision: e.revision,
                kind: &e.kind,
                data: &e.data,
                metadata: e.metadata.as_deref().unwrap_or_default(),
                timestamp: e.timestamp,
            }),
        )
        .expect("native apply");
    }
    state
}

/// Best-of-20 time of one snapshot of the final state (10,000 keys,
/// ~470 KB of canonical JSON), in the wasm plugin and natively: what the
/// canonical writer costs on the live path, where a snapshot is taken every
/// `--snapshot-every` events.
async fn snapshot_times(
    plugin: &Plugin,
    events: &[RecordedEvent],
    batch: usize,
) -> (Duration, Duration, usize) {
    let mut instance = plugin
        .instantiate("bench", Limits::default())
        .await
        .expect("instantiate");
    instance.init_state().await.expect("init-state");
    for chunk in events.chunks(batch) {
        instance.handle_events(chunk).await.expect("apply");
    }
    let mut wasm = Duration::MAX;
    let mut bytes = 0;
    for _ in 0..20 {
        let t = Instant::now();
        bytes = instance.snapshot().await.expect("snapshot").len();
        wasm = wasm.min(t.elapsed());
    }
    let state = fold_native(events, batch);
    let mut native = Duration::MAX;
    for _ in 0..20 {
        let t = Instant::now();
        std::hint::black_box(hume_guest::snapshot(&state));
        native = native.min(t.elapsed());
    }
    (wasm, native, bytes)
}

/// The events as `hume replay` reads them: one JSON object per line.
fn write_ndjson(events: &[RecordedEvent], path: &Path) {
    let file = std::fs::File::create(path).expect("create the events file");
    let mut out = std::io::BufWriter::new(file);
    for e in events {
        writeln!(
            out,
            r#"{{"position":{},"stream":"{}","revision":{},"kind":"{}","data":{},"timestamp":{}}}"#,
            e.position,
            e.stream,
            e.revision,
            e.kind,
            std::str::from_utf8(&e.data).expect("UTF-8 data"),
            e.timestamp
        )
        .expect("write the events file");
    }
    out.flush().expect("write the events file");
}

/// Best-of-3 wall time of a whole process, and its last stdout.
fn best_process(mut command: impl FnMut() -> Command) -> (Duration, Vec<u8>) {
    let mut best = Duration::MAX;
    let mut stdout = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let out = command().output().expect("run the process");
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "{:?} failed: {}",
            command(),
            String::from_utf8_lossy(&out.stderr)
        );
        best = best.min(took);
        stdout = out.stdout;
    }
    (best, stdout)
}

/// `hume replay` of the events written to a file, whole process, against
/// the in-library fold rate (`library`, events/s, same run) and the Node.js
/// peer reading the same file.
fn file_replay(events: &[RecordedEvent], library: f64, wasm_state: &[u8]) {
    let dir = hume_tests::temp_dir();
    let file = dir.path().join("kv.ndjson");
    write_ndjson(events, &file);
    let small = dir.path().join("small.ndjson");
    write_ndjson(&events[..1000], &small);
    let cache = dir.path().join("cache");
    let hume = hume_tests::hume_bin();
    let replay = |events: &Path| {
        let mut cmd = Command::new(&hume);
        cmd.args(["replay", &kv_wasm(), "--events"])
            .arg(events)
            .env("HUME_CACHE_DIR", &cache)
            .env_remove("RUST_LOG");
        cmd
    };
    // Compile the plugin into the cache first: the replays below load it.
    let warm = replay(&small).output().expect("hume replay");
    assert!(
        warm.status.success(),
        "{}",
        String::from_utf8_lossy(&warm.stderr)
    );
    let (hume_time, out) = best_process(|| replay(&file));
    let result: serde_json::Value = serde_json::from_slice(&out).expect("hume replay prints JSON");
    let expected: serde_json::Value = serde_json::from_slice(wasm_state).unwrap();
    assert_eq!(
        result["state"], expected,
        "hume replay reached another state"
    );
    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64();
    let megabytes = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;
    eprintln!(
        "SUMMARY hume replay of the 1M-event file ({megabytes:.0} MB), whole process, best of 3: {:.2} s = {:.0} events/s = {:.2}x the in-library fold ({library:.0} events/s, wall)",
        hume_time.as_secs_f64(),
        rate(hume_time),
        rate(hume_time) / library
    );
    let script = hume_tests::workspace_root().join("tests/benches/kits/node_replay.mjs");
    let node_ok = Command::new("node").arg("--version").output().is_ok();
    if !node_ok {
        eprintln!("SUMMARY node not found: no Node.js peer");
        return;
    }
    let (node_time, out) = best_process(|| {
        let mut cmd = Command::new("node");
        cmd.arg(&script).arg(&file);
        cmd
    });
    eprintln!(
        "SUMMARY Node.js peer (node_replay.mjs) of the same file, whole process, best of 3: {:.2} s = {:.0} events/s ({}); hume replay is {:.2}x Node",
        node_time.as_secs_f64(),
        rate(node_time),
        String::from_utf8_lossy(&out).trim(),
        rate(hume_time) / rate(node_time)
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugin = runtime.load(&std::fs::read(kv_wasm()).unwrap()).unwrap();
    let events = events();
    let batch = batch_size();
    let bytes: usize = events.iter().map(|e| e.data.len()).sum();
    eprintln!(
        "{} events, mean payload {} bytes, batch {batch}",
        events.len(),
        bytes / events.len()
    );

    // Same result both ways, then a best-of-3 summary with the ratio.
    let wasm_state = rt.block_on(replay_wasm(&plugin, &events, batch));
    let native_state = replay_native(&events, batch);
    assert_eq!(
        wasm_state.state, native_state,
        "wasm and native states differ"
    );
    // Wall time and this thread's CPU time (the wasm runs on a fiber of this
    // thread): on a busy machine the CPU time is the steadier figure.
    let best = |f: &mut dyn FnMut()| {
        (0..3)
            .map(|_| {
                let (wall, cpu) = (Instant::now(), thread_cpu());
                f();
                (wall.elapsed(), thread_cpu() - cpu)
            })
            .fold((Duration::MAX, Duration::MAX), |(w, c), (w2, c2)| {
                (w.min(w2), c.min(c2))
            })
    };
    let wasm = best(&mut || {
        rt.block_on(replay_wasm(&plugin, &events, batch));
    });
    let native = best(&mut || {
        replay_native(&events, batch);
    });
    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64();
    eprintln!(
        "SUMMARY replay 1M kv events (batch {batch}), wall: wasm {:.0} events/s, native {:.0} events/s, ratio {:.2}x",
        rate(wasm.0),
        rate(native.0),
        rate(wasm.0) / rate(native.0)
    );
    eprintln!(
        "SUMMARY replay 1M kv events (batch {batch}), thread CPU: wasm {:.0} events/s, native {:.0} events/s, ratio {:.2}x",
        rate(wasm.1),
        rate(native.1),
        rate(wasm.1) / rate(native.1)
    );

    if std::env::var("HUME_BENCH_FILE").as_deref() != Ok("0") {
        file_replay(&events, rate(wasm.0), &wasm_state.state);
    }

    let (wasm_snapshot, native_snapshot, bytes) =
        rt.block_on(snapshot_times(&plugin, &events, batch));
    eprintln!(
        "SUMMARY snapshot of the final kv state ({bytes} bytes, best of 20): wasm {:.2} ms, native {:.2} ms",
        wasm_snapshot.as_secs_f64() * 1e3,
        native_snapshot.as_secs_f64() * 1e3
    );

    let mut group = c.benchmark_group("replay_1m_kv");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group.bench_with_input(BenchmarkId::new("wasm", batch), &events, |b, events| {
        b.iter(|| rt.block_on(replay_wasm(&plugin, events, batch)))
    });
    group.bench_with_input(BenchmarkId::new("native", batch), &events, |b, events| {
        b.iter(|| replay_native(events, batch))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
