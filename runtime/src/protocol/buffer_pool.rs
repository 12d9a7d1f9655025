//! Recycles the large buffers (32 KiB to 256 KiB) that frames are encoded
//! in and large bodies are read into.
//!
//! A 64 KiB payload costs one such buffer on each side of a call. Returned
//! to glibc's allocator, each one is a chunk of at least 64 KiB freed: in a
//! worker thread's arena that frees the heap's top (`MADV_DONTNEED`) as soon
//! as the top passes 128 KiB, so the next buffer is faulted in again page by
//! page, zeroed by the kernel. Measured with 64 KiB echoes at 32 in flight:
//! ~12 page faults a call, and the calls/s swung between 15k and 31k from
//! run to run with how the heap happened to lie. A buffer the runtime
//! allocated goes back to this pool when the last `Bytes` of it is dropped
//! (wherever that happens: after the write, or when the application drops
//! a reply), and the next large frame or body takes it from here.
//!
//! The pool is a process-wide cache with a fixed bound ([`IDLE_MAX_BYTES`]
//! of idle buffers): no peer can make it hold more, and a buffer in use is
//! charged wherever it is used, as before. A buffer is handed out only for
//! a length it fits with at most [`MAX_SPARE`] to spare, so a frame never
//! takes a buffer much larger than itself.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

/// The smallest buffer worth recycling: bodies up to this long are copied
/// into allocations of their own, which glibc's bins serve cheaply.
pub(crate) const POOLED_MIN: usize = 32 * 1024;

/// The largest buffer recycled. Larger ones come from (and go back to) the
/// allocator, which maps them on their own.
pub(crate) const POOLED_MAX: usize = 256 * 1024;

/// The most bytes of idle buffers the pool keeps.
pub(crate) const IDLE_MAX_BYTES: usize = 2 * 1024 * 1024;

/// The most room a buffer handed out may have beyond the length asked for
/// (that room is not charged to a connection: see the limits chapter).
pub(crate) const MAX_SPARE: usize = 4 * 1024;

/// The process-wide pool every connection uses.
pub(crate) static LARGE_BUFFERS: BufferPool = BufferPool::new();

/// Idle buffers, each empty (length 0) with a capacity in
/// `POOLED_MIN..=POOLED_MAX`.
#[derive(Debug)]
pub(crate) struct BufferPool {
    idle: Mutex<Idle>,
}

#[derive(Debug)]
struct Idle {
    buffers: Vec<Vec<u8>>,
    /// The capacities of `buffers`, added up.
    bytes: usize,
}

impl BufferPool {
    /// An empty pool.
    pub(crate) const fn new() -> BufferPool {
        BufferPool {
            idle: Mutex::new(Idle {
                buffers: Vec::new(),
                bytes: 0,
            }),
        }
    }

    /// An empty buffer with room for `len` bytes (and at most
    /// [`MAX_SPARE`] more), if the pool has one.
    pub(crate) fn take(&self, len: usize) -> Option<Vec<u8>> {
        if !(POOLED_MIN..=POOLED_MAX).contains(&len) {
            return None;
        }
        let most = len + MAX_SPARE;
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // The most recently returned first: its pages are the likeliest
        // to be in the cache.
        let at = idle
            .buffers
            .iter()
            .rposition(|buffer| (len..=most).contains(&buffer.capacity()))?;
        // `remove`, not `swap_remove`: the order stays most recent last
        // (at most 64 buffers move).
        let buffer = idle.buffers.remove(at);
        idle.bytes -= buffer.capacity();
        Some(buffer)
    }

    /// An empty buffer with room for `len` bytes: from the pool, or new.
    pub(crate) fn take_or_allocate(&self, len: usize) -> Vec<u8> {
        self.take(len).unwrap_or_else(|| Vec::with_capacity(len))
    }

    /// Keeps `buffer` for later if its size is one the pool recycles and
    /// the pool has room; frees it otherwise.
    pub(crate) fn give(&self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if !(POOLED_MIN..=POOLED_MAX).contains(&capacity) {
            return;
        }
        buffer.clear();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.bytes + capacity <= IDLE_MAX_BYTES {
            idle.bytes += capacity;
            idle.buffers.push(buffer);
        }
    }

    /// The bytes of idle buffers held.
    #[cfg(test)]
    pub(crate) fn idle_bytes(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }

    /// `buffer` as `Bytes` that give it back to this pool when the last of
    /// them is dropped (if its size is one the pool recycles).
    pub(crate) fn recycling_bytes(&'static self, buffer: Vec<u8>) -> Bytes {
        if (POOLED_MIN..=POOLED_MAX).contains(&buffer.capacity()) {
            Bytes::from_owner(Recycled { buffer, pool: self })
        } else {
            Bytes::from(buffer)
        }
    }
}

/// A buffer that goes back to its pool when it is dropped.
struct Recycled {
    buffer: Vec<u8>,
    pool: &'static BufferPool,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> &'static BufferPool {
        Box::leak(Box::new(BufferPool::new()))
    }

    #[test]
    fn a_dropped_buffer_is_taken_again_for_a_frame_of_its_size() {
        let pool = pool();
        let mut buffer = pool.take_or_allocate(64 * 1024);
        buffer.extend_from_slice(&[7; 64 * 1024]);
        let address = buffer.as_ptr();
        let bytes = pool.recycling_bytes(buffer);
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(pool.idle_bytes(), 0, "a slice still holds it");
        assert_eq!(&slice[..], &[7; 10]);
        drop(slice);
        assert_eq!(pool.idle_bytes(), 64 * 1024);
        let again = pool.take(64 * 1024).expect("pooled");
        assert_eq!(again.as_ptr(), address);
        assert!(again.is_empty());
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn a_buffer_is_handed_out_only_for_a_length_it_fits_closely() {
        let pool = pool();
        pool.give(Vec::with_capacity(64 * 1024));
        assert!(pool.take(64 * 1024 + 1).is_none(), "too small");
        assert!(
            pool.take(64 * 1024 - MAX_SPARE - 1).is_none(),
            "too much to spare"
        );
        assert!(pool.take(64 * 1024 - MAX_SPARE).is_some());
    }

    #[test]
    fn small_and_huge_buffers_are_not_kept() {
        let pool = pool();
        pool.give(Vec::with_capacity(POOLED_MIN - 1));
        pool.give(Vec::with_capacity(POOLED_MAX + 1));
        assert_eq!(pool.idle_bytes(), 0);
        assert!(pool.take(1024).is_none());
        let small = pool.recycling_bytes(vec![1; 100]);
        drop(small);
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn idle_buffers_are_bounded_in_bytes() {
        let pool = pool();
        for _ in 0..IDLE_MAX_BYTES / POOLED_MAX + 4 {
            pool.give(Vec::with_capacity(POOLED_MAX));
        }
        assert_eq!(pool.idle_bytes(), IDLE_MAX_BYTES);
    }
}
