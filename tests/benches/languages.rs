//! Language bench: the `kv` projection in Rust, C, Python and JavaScript,
//! each folding the same 100,000 events in batches of 1,000 through the real
//! plugin runtime; per language the events/s, the cold compile time, the
//! load time from the compiled-component cache and the component size. As
//! the peer, the same JavaScript projection run directly in Node.js over the
//! same events (`benches/kits/node_peer.mjs`), and our JS plugin's ratio to it.
//!
//! `cargo bench -p hume-tests --bench languages` (`HUME_BENCH_LANGS=rust,c`
//! to measure only some languages) prints a markdown table
//! (goals: Rust and C >= 1M events/s, Python >= 50k, JS >= 40k and within
//! 10x of Node), then criterion's own throughput figures.
//! The Python/JS/C plugins are built with `hume build` (needs
//! `scripts/setup-kits.sh`), cached under the target directory.

#[path = "../tests/kits/common/mod.rs"]
mod kits_common;

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use hume::log::RecordedEvent;
use hume::plugin::{Limits, Plugin, Runtime, RuntimeConfig};
use kits_common::{example_plugin, Lang};

const EVENTS: u64 = 100_000;
const KEYS: u64 = 1_000;
const BATCH: usize = 1_000;
const RUNS: usize = 3;

/// Deterministic events: mostly `add` of a small object, every 10th a `remove`.
fn events() -> Vec<RecordedEvent> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    (1..=EVENTS)
        .map(|position| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let key = seed % KEYS;
            let (kind, data) = if position % 10 == 0 {
                ("remove", format!(r#"{{"key":"key-{key:04}"}}"#))
            } else {
                (
                    "add",
                    format!(
                        r#"{{"key":"key-{key:04}","value":{{"n":{},"tag":"item-{position:06}"}}}}"#,
                        seed % 1_000_000
                    ),
                )
            };
            RecordedEvent {
                position,
                stream: format!("kv-{}", key % 10),
                revision: position,
                kind: kind.to_string(),
                data: data.into_bytes(),
                metadata: None,
                timestamp: 1_700_000_000_000 + position,
            }
        })
        .collect()
}

/// Fold every event through a fresh instance; returns the elapsed time and
/// the final snapshot.
async fn fold(plugin: &Plugin, events: &[RecordedEvent]) -> (Timing, Vec<u8>) {
    let limits = Limits {
        max_memory_bytes: 256 << 20,
        ..Limits::default()
    };
    let mut instance = plugin
        .instantiate("bench", limits)
        .await
        .expect("instantiate");
    instance.init_state().await.expect("init-state");
    let (start, cpu) = (Instant::now(), thread_cpu());
    for batch in events.chunks(BATCH) {
        instance.handle_events(batch).await.expect("handle-events");
    }
    let timing = Timing {
        wall: start.elapsed(),
        cpu: thread_cpu() - cpu,
    };
    (timing, instance.snapshot().await.expect("snapshot"))
}

/// Wall time and CPU time of the calling thread (where the runtime's
/// `block_on` runs the plugin): CPU time is steadier on a busy machine.
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Duration,
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

struct Row {
    lang: Lang,
    size: u64,
    cold: Duration,
    cached: Duration,
    events_per_s: f64,
    events_per_cpu_s: f64,
}

/// (events/s by wall time, by process CPU time) of the Node.js peer.
fn node_peer(events: &[RecordedEvent]) -> Option<(f64, f64)> {
    let dir = hume_tests::temp_dir();
    let file = dir.path().join("events.ndjson");
    let mut text = String::new();
    for e in events {
        let data: serde_json::Value = serde_json::from_slice(&e.data).unwrap();
        text.push_str(
            &serde_json::json!({"stream": e.stream, "kind": e.kind, "data": data}).to_string(),
        );
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    let script = hume_tests::workspace_root().join("tests/benches/kits/node_peer.mjs");
    let out = std::process::Command::new("node")
        .arg(script)
        .arg(&file)
        .arg(BATCH.to_string())
        .arg("5")
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("node peer failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((
        result["best_events_per_s"].as_f64()?,
        result["best_events_per_cpu_s"].as_f64()?,
    ))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let events = events();
    let mut rows = Vec::new();
    let mut plugins = Vec::new();
    let mut reference: Option<Vec<u8>> = None;
    // HUME_BENCH_LANGS=rust,c limits the run to some languages.
    let only = std::env::var("HUME_BENCH_LANGS").ok();
    let langs = Lang::ALL.into_iter().filter(|l| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == l.name()))
    });
    for lang in langs {
        let path = example_plugin("kv", lang);
        let wasm = std::fs::read(&path).expect("read plugin");
        // Cold: a runtime without a disk cache compiles the component.
        let cold_runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let start = Instant::now();
        cold_runtime.load(&wasm).expect("load");
        let cold = start.elapsed();
        // Cached: a fresh runtime loading what another one compiled to disk.
        let cache = hume_tests::temp_dir();
        let config = RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        };
        Runtime::new(config.clone())
            .unwrap()
            .load(&wasm)
            .expect("load");
        let runtime = Runtime::new(config).unwrap();
        let start = Instant::now();
        let plugin = runtime.load(&wasm).expect("load from cache");
        let cached = start.elapsed();

        let (mut best, mut best_cpu) = (Duration::MAX, Duration::MAX);
        for _ in 0..RUNS {
            let (timing, snapshot) = rt.block_on(fold(&plugin, &events));
            best = best.min(timing.wall);
            best_cpu = best_cpu.min(timing.cpu);
            match &reference {
                None => reference = Some(snapshot),
                Some(r) => assert!(*r == snapshot, "{} reached another state", lang.name()),
            }
        }
        rows.push(Row {
            lang,
            size: wasm.len() as u64,
            cold,
            cached,
            events_per_s: EVENTS as f64 / best.as_secs_f64(),
            events_per_cpu_s: EVENTS as f64 / best_cpu.as_secs_f64(),
        });
        plugins.push((lang, plugin, cache));
    }
    let node = node_peer(&events);

    println!("\n## kv, {EVENTS} events in batches of {BATCH} (best of {RUNS})\n");
    println!("| language | events/s (wall) | events/s (thread CPU) | cold compile | cached load | component size |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} s | {:.1} ms | {:.1} KB |",
            r.lang.name(),
            r.events_per_s,
            r.events_per_cpu_s,
            r.cold.as_secs_f64(),
            r.cached.as_secs_f64() * 1e3,
            r.size as f64 / 1024.0
        );
    }
    if let (Some((node, node_cpu)), Some(js)) = (node, rows.iter().find(|r| r.lang == Lang::Js)) {
        let (js, js_cpu) = (js.events_per_s, js.events_per_cpu_s);
        println!(
            "| node (peer: same JS logic in Node.js) | {node:.0} | {node_cpu:.0} (process CPU) | - | - | - |\n\nJS plugin / Node: {:.3} wall, {:.3} CPU (Node is {:.1}x faster by wall time, {:.1}x by CPU time)",
            js / node,
            js_cpu / node_cpu,
            node / js,
            node_cpu / js_cpu
        );
    } else {
        println!("\n(node peer not measured: `node` missing or failed)");
    }
    println!();

    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    let mut group = criterion.benchmark_group("kv_100k_events");
    group.throughput(Throughput::Elements(EVENTS));
    for (lang, plugin, _cache) in &plugins {
        group.bench_with_input(
            BenchmarkId::from_parameter(lang.name()),
            plugin,
            |b, plugin| {
                b.iter(|| rt.block_on(fold(plugin, &events)));
            },
        );
    }
    group.finish();
    criterion.final_summary();
}
