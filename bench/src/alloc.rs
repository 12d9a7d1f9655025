//! A counting global allocator: how many blocks and bytes this process
//! allocates, read before and after a measured window to get allocations
//! per call (and so how many times a large body is copied).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting every allocation and every byte of
/// growth (a `realloc` counts its growth, not its whole new size).
pub struct Counting;

static BYTES: AtomicU64 = AtomicU64::new(0);
static BLOCKS: AtomicU64 = AtomicU64::new(0);

#[inline]
fn count(bytes: usize) {
    BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    BLOCKS.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the arguments it was given;
// counting touches only atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size.saturating_sub(layout.size()));
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocation counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AllocCounters {
    /// Bytes allocated so far (growth only for reallocations).
    pub bytes: u64,
    /// Allocations (and reallocations) so far.
    pub blocks: u64,
}

impl AllocCounters {
    /// The counters of this process now.
    pub fn now() -> AllocCounters {
        AllocCounters {
            bytes: BYTES.load(Ordering::Relaxed),
            blocks: BLOCKS.load(Ordering::Relaxed),
        }
    }

    /// What was allocated between `earlier` and `self`.
    pub fn since(self, earlier: AllocCounters) -> AllocCounters {
        AllocCounters {
            bytes: self.bytes.saturating_sub(earlier.bytes),
            blocks: self.blocks.saturating_sub(earlier.blocks),
        }
    }
}
