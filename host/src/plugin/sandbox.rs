//! What a plugin instance can reach: a sandboxed WASI p2 (no files, network,
//! environment or arguments; closed stdin; stdout/stderr into `tracing`;
//! deterministic clocks and randomness), the `host.log` import, and the
//! memory limiter. One [`StoreState`] per instance.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{Deterministic, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::hume::projection::host::{Host, Level};

/// The longest guest output line forwarded to `tracing`; longer lines are cut.
const MAX_LINE: usize = 4096;
/// How many of the guest's last stderr lines a trap message quotes.
const RECENT_STDERR_LINES: usize = 4;

/// The guest's last stderr lines (e.g. a Rust panic message), so a trap can
/// say why the plugin died, not only where.
#[derive(Clone, Default)]
pub(crate) struct RecentStderr(Arc<Mutex<VecDeque<String>>>);

impl RecentStderr {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, line: &str) {
        let mut lines = self.lock();
        if lines.len() == RECENT_STDERR_LINES {
            lines.pop_front();
        }
        lines.push_back(line.to_string());
    }

    /// Forget what was written before the current call.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// The lines, oldest first, joined with " | "; `None` when empty.
    pub(crate) fn joined(&self) -> Option<String> {
        let lines = self.lock();
        (!lines.is_empty()).then(|| lines.iter().cloned().collect::<Vec<_>>().join(" | "))
    }
}

/// The data of one plugin store.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    /// The projection this instance serves (tags every log line).
    pub(crate) projection: Arc<str>,
    /// When the current call started, and how long it may run.
    pub(crate) call_started: Instant,
    pub(crate) call_timeout: Duration,
    /// The guest's last stderr lines in the current call.
    pub(crate) stderr: RecentStderr,
}

impl StoreState {
    pub(crate) fn new(projection: &str, max_memory_bytes: usize, call_timeout: Duration) -> Self {
        let projection: Arc<str> = Arc::from(projection);
        let stderr = RecentStderr::default();
        StoreState {
            wasi: sandboxed_wasi(&projection, &stderr),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(max_memory_bytes),
            projection,
            call_started: Instant::now(),
            call_timeout,
            stderr,
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The shared `types` interface has no functions; the bindings still ask
/// for its (empty) host trait.
impl super::bindings::hume::projection::types::Host for StoreState {}

impl Host for StoreState {
    fn log(&mut self, level: Level, message: String) {
        let projection = &*self.projection;
        match level {
            Level::Trace => tracing::trace!(target: "hume::plugin", projection, "{message}"),
            Level::Debug => tracing::debug!(target: "hume::plugin", projection, "{message}"),
            Level::Info => tracing::info!(target: "hume::plugin", projection, "{message}"),
            Level::Warn => tracing::warn!(target: "hume::plugin", projection, "{message}"),
            Level::Error => tracing::error!(target: "hume::plugin", projection, "{message}"),
        }
    }
}

/// A WASI context that gives the guest nothing of the host: no preopens, no
/// environment, no arguments, no sockets, closed stdin, output into
/// `tracing`, clocks frozen at the Unix epoch (advancing 1 µs per reading),
/// and randomness from a fixed seed.
fn sandboxed_wasi(projection: &Arc<str>, stderr: &RecentStderr) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(GuestOutput {
            projection: projection.clone(),
            stream: "stdout",
            recent: None,
        })
        .stderr(GuestOutput {
            projection: projection.clone(),
            stream: "stderr",
            recent: Some(stderr.clone()),
        })
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(FixedClock::default())
        .monotonic_clock(FixedClock::default())
        .secure_random(Deterministic::new(SEED.to_vec()))
        .insecure_random(Deterministic::new(SEED.to_vec()))
        .insecure_random_seed(0x6875_6d65_6875_6d65);
    builder.build()
}

/// The bytes every "random" number is cycled from: determinism over entropy.
const SEED: [u8; 16] = *b"hume-determinism";

/// A clock that starts at 0 and advances 1 µs per reading, so guests that
/// time themselves see time pass but every replay sees the same values.
#[derive(Default)]
struct FixedClock {
    ticks: AtomicU64,
}

impl FixedClock {
    fn tick(&self) -> u64 {
        self.ticks.fetch_add(1_000, Ordering::Relaxed)
    }
}

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }
    fn now(&self) -> Duration {
        Duration::from_nanos(self.tick())
    }
}

impl wasmtime_wasi::HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.tick()
    }
}

/// Guest stdout/stderr: each line becomes a `tracing` event.
struct GuestOutput {
    projection: Arc<str>,
    stream: &'static str,
    /// Where stderr lines are also kept for trap messages.
    recent: Option<RecentStderr>,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI p3 asks for this; p2 guests use `p2_stream` below.
        Box::new(tokio::io::sink())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineLogger {
            projection: self.projection.clone(),
            stream: self.stream,
            recent: self.recent.clone(),
            line: Vec::new(),
        })
    }
}

/// Buffers guest output and logs it line by line.
struct LineLogger {
    projection: Arc<str>,
    stream: &'static str,
    recent: Option<RecentStderr>,
    line: Vec<u8>,
}

impl LineLogger {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        if let Some(recent) = &self.recent {
            recent.push(text.trim_end());
        }
        tracing::info!(
            target: "hume::plugin",
            projection = &*self.projection,
            stream = self.stream,
            "{}",
            text.trim_end()
        );
        self.line.clear();
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        self.emit();
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineLogger {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LineLogger {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        for &b in bytes.iter() {
            if b == b'\n' {
                self.emit();
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

/// Refuses growth of anything an instance can grow beyond the memory limit
/// and remembers that it did, so the trap a refused allocation usually ends
/// in is reported as the memory limit rather than as a generic trap.
///
/// The limit covers the whole store: every linear memory (a component can
/// hold several core instances, each with memories of its own) and every
/// table, each table element counted as [`TABLE_ELEMENT_BYTES`] (what
/// wasmtime stores per element). wasmtime asks before creating a memory or a
/// table (from size 0) and before every growth, and nothing in a store ever
/// shrinks, so the running sum is exact.
pub(crate) struct MemoryLimiter {
    pub(crate) max_bytes: usize,
    /// Bytes of all linear memories of the store.
    memory_bytes: usize,
    /// Elements of all tables of the store.
    table_elements: usize,
    /// What a refused growth asked for, since the current call started.
    pub(crate) refused: Option<Refused>,
}

/// Bytes one table element counts for against the memory limit: wasmtime
/// keeps a pointer per element.
pub(crate) const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// A growth the limiter refused: what the instance would have reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    /// What grew: a linear memory or a table.
    pub(crate) what: Growable,
    /// Memories plus tables, in bytes, had the growth been allowed.
    pub(crate) total_bytes: usize,
}

/// The two things a WebAssembly instance can grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Growable {
    Memory,
    Table,
}

impl MemoryLimiter {
    /// A new bound for growths from now on.
    pub(crate) fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
    }

    pub(crate) fn new(max_bytes: usize) -> Self {
        MemoryLimiter {
            max_bytes,
            memory_bytes: 0,
            table_elements: 0,
            refused: None,
        }
    }

    /// Bytes the store holds now: all memories and tables.
    #[cfg(test)]
    fn used_bytes(&self) -> usize {
        self.memory_bytes
            .saturating_add(self.table_elements.saturating_mul(TABLE_ELEMENT_BYTES))
    }

    /// Allow a growth of `what` from `current` to `desired` (bytes for a
    /// memory, elements for a table) when the store's total stays within
    /// the limit; record it either way.
    fn grow(&mut self, what: Growable, current: usize, desired: usize) -> bool {
        let added = desired.saturating_sub(current);
        let (memory_bytes, table_elements) = match what {
            Growable::Memory => (self.memory_bytes.saturating_add(added), self.table_elements),
            Growable::Table => (self.memory_bytes, self.table_elements.saturating_add(added)),
        };
        let total_bytes =
            memory_bytes.saturating_add(table_elements.saturating_mul(TABLE_ELEMENT_BYTES));
        if total_bytes > self.max_bytes {
            self.refused = Some(Refused { what, total_bytes });
            return false;
        }
        self.memory_bytes = memory_bytes;
        self.table_elements = table_elements;
        true
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(Growable::Memory, current, desired))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(Growable::Table, current, desired))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut limiter = MemoryLimiter::new(10 * MIB);
        assert!(limiter.grow(Growable::Memory, 0, 4 * MIB));
        // A second memory: the sum counts, not each memory on its own.
        assert!(limiter.grow(Growable::Memory, 0, 4 * MIB));
        assert!(!limiter.grow(Growable::Memory, 4 * MIB, 7 * MIB));
        assert_eq!(
            limiter.refused,
            Some(Refused {
                what: Growable::Memory,
                total_bytes: 11 * MIB
            })
        );
        assert_eq!(limiter.used_bytes(), 8 * MIB);
        // Tables count their elements' bytes against what is left.
        let left = 2 * MIB / TABLE_ELEMENT_BYTES;
        assert!(limiter.grow(Growable::Table, 0, left));
        assert!(!limiter.grow(Growable::Table, left, left + 1));
        assert_eq!(limiter.refused.unwrap().what, Growable::Table);
        assert_eq!(limiter.used_bytes(), 10 * MIB);
    }

    #[test]
    fn absurd_requests_saturate_and_are_refused() {
        let mut limiter = MemoryLimiter::new(MIB);
        assert!(!limiter.grow(Growable::Table, 0, usize::MAX));
        assert!(!limiter.grow(Growable::Memory, 0, usize::MAX));
        assert_eq!(limiter.used_bytes(), 0);
    }
}
