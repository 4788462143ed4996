//! A small-object allocator for wasm guests (feature `small-alloc`, on by
//! default): size classes of 16 bytes up to 1 KiB with free lists, carved
//! from 64 KiB slabs of the system allocator (dlmalloc); larger or
//! over-aligned blocks go to the system allocator directly.
//!
//! Why: a projection allocates and frees a handful of small blocks per event
//! (the event's strings lowered by the host, the decoded event, replaced
//! state values), and dlmalloc's general bookkeeping costs more per call in
//! wasm than native `malloc` does. Freed small blocks are kept for reuse,
//! never returned to dlmalloc, so memory stays at the peak of small objects.
//!
//! wasm32 components are single-threaded, so no locking is needed.
//!
//! Why not a crate: maintained wasm allocators were measured in place of
//! this one (2026-11-26, `cargo bench -p hume-tests --bench replay` with
//! `HUME_BENCH_KV_WASM` pointing at each build of the kv example, runs
//! interleaved on one shared machine; thread-CPU rate of the wasm replay
//! of 1M kv events, batch 1000, wall-clock rate in brackets):
//!
//! | allocator                                       | CPU (wall), each run                               |
//! |-------------------------------------------------|----------------------------------------------------|
//! | this module                                     | 0.92 (0.92), 0.90 (0.90), 0.82 (0.74), 0.85 (0.82) |
//! | talc 5.1.1 `wasm::new_wasm_dynamic_allocator()` | 0.52 (0.52), 0.57 (0.57), 0.52 (0.43), 0.57 (0.56) |
//! | talc 4.4.3 `TalckWasm`                          | 0.56 (0.53), 0.53 (0.51)                           |
//! | dlmalloc (std default: feature off)             | 0.50 (0.47), 0.69 (0.66)                           |
//! | lol_alloc 0.4.1 `FreeListAllocator`             | 0.05 (0.05), 0.05 (0.04)                           |
//!
//! (millions of events/s). talc, the crate made for this job, is ~35-40%
//! slower on this workload and no better than dlmalloc, so the hand-written
//! size classes stay until a crate comes within ~10% of them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

const CLASS: usize = 16;
const MAX_SMALL: usize = 1024;
const CLASSES: usize = MAX_SMALL / CLASS;
const SLAB: usize = 64 * 1024;

struct State {
    free: [*mut u8; CLASSES],
    bump: *mut u8,
    end: *mut u8,
}

/// The allocator; install with `#[global_allocator]` (the SDK does it).
pub struct SmallAlloc {
    state: UnsafeCell<State>,
}

// SAFETY: wasm32 components run a single thread.
unsafe impl Sync for SmallAlloc {}

impl SmallAlloc {
    /// A fresh allocator.
    pub const fn new() -> Self {
        SmallAlloc {
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES],
                bump: ptr::null_mut(),
                end: ptr::null_mut(),
            }),
        }
    }
}

impl Default for SmallAlloc {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn class_of(layout: &Layout) -> Option<usize> {
    if layout.size() <= MAX_SMALL && layout.align() <= CLASS {
        Some(layout.size().max(1).div_ceil(CLASS) - 1)
    } else {
        None
    }
}

unsafe impl GlobalAlloc for SmallAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(&layout) else {
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: single-threaded and never re-entered.
        let st = unsafe { &mut *self.state.get() };
        let head = st.free[class];
        if !head.is_null() {
            // SAFETY: a free block stores the next free block in its first word.
            st.free[class] = unsafe { *(head as *mut *mut u8) };
            return head;
        }
        let size = (class + 1) * CLASS;
        if (st.end as usize) - (st.bump as usize) < size {
            // SAFETY: a valid, non-zero layout.
            let slab = unsafe { System.alloc(Layout::from_size_align_unchecked(SLAB, CLASS)) };
            if slab.is_null() {
                return ptr::null_mut();
            }
            st.bump = slab;
            st.end = unsafe { slab.add(SLAB) };
        }
        let block = st.bump;
        st.bump = unsafe { block.add(size) };
        block
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class_of(&layout).is_none() {
            // Fresh pages from the system are zero already: no memset.
            return unsafe { System.alloc_zeroed(layout) };
        }
        let block = unsafe { self.alloc(layout) };
        if !block.is_null() {
            unsafe { ptr::write_bytes(block, 0, layout.size()) };
        }
        block
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class_of(&layout) else {
            return unsafe { System.dealloc(block, layout) };
        };
        let st = unsafe { &mut *self.state.get() };
        // SAFETY: the block is at least 16 bytes and 16-aligned.
        unsafe { *(block as *mut *mut u8) = st.free[class] };
        st.free[class] = block;
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(&layout), class_of(&new_layout)) {
            (Some(a), Some(b)) if a == b => block,
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(block, new, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_aligned_and_keep_their_contents_on_realloc() {
        let a = SmallAlloc::new();
        unsafe {
            let l24 = Layout::from_size_align(24, 8).unwrap();
            let p = a.alloc(l24);
            assert_eq!(p as usize % 16, 0);
            p.write_bytes(7, 24);
            // Same class: realloc keeps the block.
            let p2 = a.realloc(p, l24, 30);
            assert_eq!(p2, p);
            // Another class: contents move.
            let l30 = Layout::from_size_align(30, 8).unwrap();
            let p3 = a.realloc(p2, l30, 100);
            assert_ne!(p3, p2);
            assert!((0..24).all(|i| *p3.add(i) == 7));
            // The freed 32-byte block is handed out again.
            let q = a.alloc(Layout::from_size_align(17, 1).unwrap());
            assert_eq!(q, p);
            // Small to large and back.
            let l100 = Layout::from_size_align(100, 8).unwrap();
            let big = a.realloc(p3, l100, 5000);
            assert!((0..24).all(|i| *big.add(i) == 7));
            let l5000 = Layout::from_size_align(5000, 8).unwrap();
            let small = a.realloc(big, l5000, 10);
            assert!((0..10).all(|i| *small.add(i) == 7));
            a.dealloc(small, Layout::from_size_align(10, 8).unwrap());
            a.dealloc(q, Layout::from_size_align(17, 1).unwrap());
            // Zeroed memory is zero even when a dirty block is reused.
            let z = a.alloc_zeroed(Layout::from_size_align(17, 1).unwrap());
            assert!((0..17).all(|i| *z.add(i) == 0));
            // Over-aligned and large blocks go to the system allocator.
            let l = Layout::from_size_align(64, 64).unwrap();
            let o = a.alloc(l);
            assert_eq!(o as usize % 64, 0);
            a.dealloc(o, l);
        }
    }

    #[test]
    fn many_blocks_span_slabs() {
        let a = SmallAlloc::new();
        let l = Layout::from_size_align(1000, 8).unwrap();
        let blocks: Vec<_> = (0..200).map(|_| unsafe { a.alloc(l) }).collect();
        let mut sorted = blocks.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 200, "distinct blocks");
        for b in blocks {
            unsafe { a.dealloc(b, l) };
        }
    }
}
