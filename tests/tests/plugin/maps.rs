//! Memory mappings per live instance: `hume serve` warns when the deployed
//! projections would pass Linux's `vm.max_map_count`, using
//! `hume::plugin::MAPPINGS_PER_INSTANCE`; this keeps that figure honest.
//! (Its own test binary, so no other test maps memory meanwhile.) Run with
//! `-- --nocapture` to see the figure.

use hume::plugin::{Limits, Runtime, RuntimeConfig, MAPPINGS_PER_INSTANCE};

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

#[tokio::test]
async fn live_instances_stay_within_the_documented_mappings_each() {
    if !std::path::Path::new("/proc/self/maps").exists() {
        return; // not Linux: nothing to measure
    }
    const N: usize = 500;
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let plugin = runtime
        .load(&hume_tests::read_wasm(hume_tests::COUNTER_WASM))
        .expect("load counter");
    // One warm-up instance, so mappings the runtime creates once are not counted.
    let mut warm = plugin.instantiate("warm", Limits::default()).await.unwrap();
    warm.init_state().await.unwrap();
    let before = mappings();
    let mut live = Vec::with_capacity(N);
    for i in 0..N {
        let mut instance = plugin
            .instantiate(&format!("counter-{i}"), Limits::default())
            .await
            .unwrap();
        instance.init_state().await.unwrap();
        live.push(instance);
    }
    let after = mappings();
    let per_instance = (after - before) as f64 / N as f64;
    eprintln!("{N} live counter instances: {before} -> {after} mappings, {per_instance:.2} each");
    assert!(
        per_instance <= MAPPINGS_PER_INSTANCE as f64,
        "{per_instance:.2} mappings per instance, documented {MAPPINGS_PER_INSTANCE}: \
         update MAPPINGS_PER_INSTANCE in host/src/plugin/maps.rs"
    );
}
