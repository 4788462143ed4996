//! Memory mappings per live instance and Linux's `vm.max_map_count`.
//!
//! Each live instance holds its own memory mappings (VMAs): its linear
//! memory (guard before, accessible part, copy-on-write data image, rest of
//! the reservation and guard after) and the fiber stack its calls run on
//! (stack + guard page). Past `vm.max_map_count` (65,530 by default) every
//! new mapping fails with "Cannot allocate memory", so about 9,000 live
//! instances is the ceiling on a stock kernel.
//!
//! Measured with `cargo test -p hume-tests --test plugin_maps -- --nocapture`
//! (500 live instances, wasmtime 48): Rust `counter` 6.93 mappings each, the
//! Python `kv` 6.0, the JS `kv` 5.0. `Config::memory_init_cow(false)` would
//! save 2 (counter 4.93) but copies the data image into every instance:
//! Python `kv` went from 3.6 to 11.5 MiB resident and 12 to 21 ms to
//! instantiate, JS `kv` from 2.6 to 3.8 MiB and 1.9 to 5 ms, so it stays on.
//! `guard_before_linear_memory(false)` would save 1 but drops a guard that
//! protects against code-generator bugs in a sandbox for untrusted code, so
//! it stays on too. The fix at scale is the kernel limit.

/// Memory mappings (Linux VMAs) one live instance keeps; the largest
/// measured figure (Rust `counter`, 6.93) rounded up. Kept honest by
/// `tests/tests/plugin_maps.rs`.
pub const MAPPINGS_PER_INSTANCE: usize = 7;

/// A `vm.max_map_count` that leaves room for tens of thousands of instances.
const SUGGESTED_MAX_MAP_COUNT: usize = 262_144;

/// The warning to give before starting `instances` live instances in a
/// process that already holds `current` mappings, when the estimate comes
/// within 80% of `max_map_count`; `None` when there is room.
pub fn map_count_warning(instances: usize, current: usize, max_map_count: usize) -> Option<String> {
    let needed = current + instances.saturating_mul(MAPPINGS_PER_INSTANCE);
    if needed.saturating_mul(5) < max_map_count.saturating_mul(4) {
        return None;
    }
    let suggested = SUGGESTED_MAX_MAP_COUNT.max(needed.saturating_mul(2).next_power_of_two());
    Some(format!(
        "{instances} projection instances need about {needed} memory mappings \
         ({MAPPINGS_PER_INSTANCE} each), near or past the kernel limit vm.max_map_count = \
         {max_map_count}; past it, starting projections fails with \"Cannot allocate memory\". \
         Raise the limit: `sudo sysctl -w vm.max_map_count={suggested}` (to keep it across \
         reboots, put `vm.max_map_count = {suggested}` in /etc/sysctl.d/99-hume.conf)"
    ))
}

/// Log [`map_count_warning`] for this process (Linux only: reads
/// `/proc/sys/vm/max_map_count` and `/proc/self/maps`; silent elsewhere).
pub fn warn_if_near_max_map_count(instances: usize) {
    let Ok(max) = std::fs::read_to_string("/proc/sys/vm/max_map_count") else {
        return;
    };
    let Ok(max) = max.trim().parse::<usize>() else {
        return;
    };
    let current = std::fs::read_to_string("/proc/self/maps")
        .map(|maps| maps.lines().count())
        .unwrap_or(0);
    if let Some(warning) = map_count_warning(instances, current, max) {
        tracing::warn!("{warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_to_spare_gives_no_warning() {
        assert_eq!(map_count_warning(100, 200, 65_530), None);
    }

    #[test]
    fn ten_thousand_instances_on_a_stock_kernel_name_the_sysctl() {
        let warning = map_count_warning(10_000, 200, 65_530).expect("a warning");
        assert!(warning.contains("vm.max_map_count = 65530"), "{warning}");
        assert!(
            warning.contains("sysctl -w vm.max_map_count=262144"),
            "{warning}"
        );
    }

    #[test]
    fn near_the_limit_warns_before_passing_it() {
        // 8,000 instances: about 56,200 of 65,530, i.e. over 80%.
        assert!(map_count_warning(8_000, 200, 65_530).is_some());
        assert!(map_count_warning(10_000, 200, 262_144).is_none());
    }

    #[test]
    fn very_many_instances_get_a_larger_suggestion() {
        let warning = map_count_warning(100_000, 200, 262_144).expect("a warning");
        assert!(warning.contains("vm.max_map_count=2097152"), "{warning}");
    }
}
