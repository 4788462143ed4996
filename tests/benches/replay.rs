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
