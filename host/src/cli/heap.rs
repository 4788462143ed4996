//! glibc heap tuning for `hume serve` (no-ops elsewhere).
//!
//! A server with many projections allocates in bursts: a restart builds
//! and drops thousands of instances and reads thousands of snapshots,
//! hibernation wakes and drops instances from every thread, and a status
//! listing of 100,000 projections is tens of megabytes of JSON. glibc keeps
//! what such a burst freed inside its arenas rather than giving it back,
//! so the resident size stayed hundreds of megabytes above what is in use
//! (measured: 1,762 MiB resident, 1,264 MiB after one `malloc_trim`, with
//! 100,000 `counter` projections just restarted).

use std::time::Duration;

/// How often the trimmer looks at the heap.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Free heap bytes above which the trimmer gives memory back.
const TRIM_ABOVE: usize = 64 << 20;

/// glibc gives each thread its own malloc arena (up to 8 per core) and
/// keeps the memory freed in each, so RSS grows well past what is in use.
/// Four arenas keep it close.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter (under glibc's own
    // lock); it bounds arenas created from now on.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// Start a thread that returns freed heap memory to the system whenever
/// more than [`TRIM_ABOVE`] bytes of it sit free, checked every
/// [`TRIM_EVERY`]. Costs one `mallinfo2` walk per check, and a trim (which
/// holds each arena's lock while it releases pages) only after a burst.
pub fn spawn_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("heap-trim".into())
            .spawn(|| loop {
                std::thread::sleep(TRIM_EVERY);
                trim_if_worth_it();
            });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "cannot start the heap trimmer; memory freed in bursts stays resident");
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_if_worth_it() {
    // SAFETY: mallinfo2 and malloc_trim take glibc's own arena locks and
    // touch no memory of ours.
    let free = unsafe { libc::mallinfo2() }.fordblks;
    if free > TRIM_ABOVE {
        let started = std::time::Instant::now();
        unsafe { libc::malloc_trim(0) };
        tracing::debug!(
            free_bytes = free,
            took_ms = started.elapsed().as_millis() as u64,
            "freed heap memory returned to the system"
        );
    }
}
