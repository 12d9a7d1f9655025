//! The bytes each connection holds, charged to it: its read buffer (the
//! part of a frame that has arrived), its calls in flight (each its request
//! frame, its task and its metadata's copy: see `call.rs`), and the
//! answers in its outbox until they are written.
//!
//! Every connection has a **reserved share** it can always use, whatever
//! other connections hold; beyond it, it borrows from one **server-wide
//! pool**, up to its own **limit**. The reader stops reading a connection
//! that holds its limit (or that needs the pool while the pool is spent),
//! and a handler's answer that would not fit is replaced by a short status
//! frame. So the server holds at most the pool, plus each connection's
//! reserved share, plus what one read (with the calls started from it)
//! and the short status frames of its calls in flight add per connection.
//!
//! Lock-free: one atomic add per charge or release, plus one on the pool
//! when the connection is past its reserved share. Each charge and release
//! moves the pool by exactly how much the connection's use past its share
//! changed *in that atomic step*, so concurrent charges, releases and
//! rollbacks always add up to the sum of the shares used past their
//! reserve.

use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// What each queued frame costs besides its bytes (the `Bytes` handle, its
/// allocation's header, its slot in the queue): a flood of tiny frames is
/// charged for what it really holds, so the byte bound bounds the frame
/// count too.
pub(crate) const FRAME_OVERHEAD: usize = 64;

/// The server-wide pool connections borrow from once they hold more than
/// their reserved share.
#[derive(Debug)]
pub(crate) struct MemoryPool {
    limit: usize,
    /// Bytes borrowed now. May dip below zero for a moment while a release
    /// and a charge of different connections cross.
    used: AtomicIsize,
}

impl MemoryPool {
    pub fn new(limit: usize) -> MemoryPool {
        MemoryPool {
            limit,
            used: AtomicIsize::new(0),
        }
    }

    /// Bytes borrowed from the pool now.
    pub fn used(&self) -> usize {
        usize::try_from(self.used.load(Ordering::Acquire)).unwrap_or(0)
    }

    /// Whether nothing is left to borrow.
    pub fn is_spent(&self) -> bool {
        self.used() >= self.limit
    }

    /// Moves the pool by `delta` bytes; returns the bytes borrowed after.
    fn add(&self, delta: isize) -> isize {
        self.used.fetch_add(delta, Ordering::AcqRel) + delta
    }
}

/// How strictly a charge is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charge {
    /// The bytes already exist (they were read, or are a short status
    /// frame): always charged, even past the limits. The reader pauses
    /// once the connection is over them.
    Forced,
    /// Charged only within the connection's limit and the pool.
    Bounded,
    /// Charged only within the pool, whatever the connection's limit: a
    /// single frame larger than the connection's limit can still go out
    /// once nothing else is queued.
    PoolOnly,
}

/// The bytes one connection holds.
#[derive(Debug)]
pub(crate) struct ConnMemory {
    /// Bytes charged now.
    charged: AtomicUsize,
    /// Of those, the bytes that stay until the connection is gone (its
    /// table of calls: see `slots.rs`). They count against the pool and
    /// the reserved share, but not against the connection's own limit:
    /// that limit paces what comes and goes (reads, calls, answers), and
    /// bytes that never go would keep a reader over it, paused for ever.
    fixed: AtomicUsize,
    /// The share the connection can always use.
    reserved: usize,
    /// The most the connection may hold.
    limit: usize,
    /// Set while the reader waits for room; the writer then wakes it.
    reader_waiting: AtomicBool,
    /// While the reader waits: the bytes it holds itself, that no call
    /// holds yet (the frame it stopped in the middle of, at most one
    /// largest frame and one read). They do not count against the point
    /// where it reads on: only the rest of the connection's bytes can go
    /// down while it waits.
    held_by_reader: AtomicUsize,
    room: Notify,
    /// Stream senders waiting for the connection to have room for an item
    /// (`item_sender.rs`); every release wakes them then.
    senders_waiting: AtomicUsize,
    sender_room: Notify,
}

/// Bytes past the reserved share.
fn past(charged: usize, reserved: usize) -> isize {
    isize::try_from(charged.saturating_sub(reserved)).unwrap_or(isize::MAX)
}

impl ConnMemory {
    pub fn new(reserved: usize, limit: usize) -> ConnMemory {
        ConnMemory {
            charged: AtomicUsize::new(0),
            fixed: AtomicUsize::new(0),
            reserved,
            limit: limit.max(reserved),
            reader_waiting: AtomicBool::new(false),
            held_by_reader: AtomicUsize::new(0),
            room: Notify::new(),
            senders_waiting: AtomicUsize::new(0),
            sender_room: Notify::new(),
        }
    }

    /// Bytes charged to the connection now.
    pub fn charged(&self) -> usize {
        self.charged.load(Ordering::Acquire)
    }

    /// Charges `bytes` to the connection; returns whether they were
    /// charged (a refused charge leaves nothing behind).
    pub fn charge(&self, pool: &MemoryPool, bytes: usize, check: Charge) -> bool {
        let old = self.charged.fetch_add(bytes, Ordering::AcqRel);
        let new = old.saturating_add(bytes);
        let borrowed = past(new, self.reserved) - past(old, self.reserved);
        if borrowed == 0 {
            // Within the reserved share: always fits.
            return true;
        }
        let pool_after = pool.add(borrowed);
        let fits = match check {
            Charge::Forced => true,
            Charge::Bounded => {
                new.saturating_sub(self.fixed()) <= self.limit && pool_after <= pool.limit as isize
            }
            Charge::PoolOnly => pool_after <= pool.limit as isize,
        };
        if !fits {
            self.roll_back(pool, bytes);
        }
        fits
    }

    /// Takes back a charge that was refused: nothing was freed, so nobody
    /// waiting for room is woken (a waiting stream sender would otherwise
    /// wake itself with its own refused charge, and spin).
    fn roll_back(&self, pool: &MemoryPool, bytes: usize) {
        let old = self.charged.fetch_sub(bytes, Ordering::AcqRel);
        let new = old.saturating_sub(bytes);
        let returned = past(old, self.reserved) - past(new, self.reserved);
        if returned != 0 {
            pool.add(-returned);
        }
    }

    /// Charges `bytes` that stay until the connection is gone (always
    /// charged; see [`ConnMemory::fixed`](Self::fixed)).
    pub fn charge_fixed(&self, pool: &MemoryPool, bytes: usize) {
        self.fixed.fetch_add(bytes, Ordering::AcqRel);
        self.charge(pool, bytes, Charge::Forced);
    }

    /// Releases bytes charged by [`charge_fixed`](Self::charge_fixed).
    pub fn release_fixed(&self, pool: &MemoryPool, bytes: usize) {
        self.release(pool, bytes);
        self.fixed.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// The bytes charged that stay until the connection is gone.
    fn fixed(&self) -> usize {
        self.fixed.load(Ordering::Acquire)
    }

    /// Releases `bytes` charged earlier, and wakes the reader if it waits
    /// for room and now has it.
    pub fn release(&self, pool: &MemoryPool, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let old = self.charged.fetch_sub(bytes, Ordering::AcqRel);
        let new = old.saturating_sub(bytes);
        let returned = past(old, self.reserved) - past(new, self.reserved);
        if returned != 0 {
            pool.add(-returned);
        }
        if self.reader_waiting.load(Ordering::Acquire) && self.may_resume(pool) {
            self.room.notify_one();
        }
        if self.senders_waiting.load(Ordering::Acquire) > 0 {
            self.sender_room.notify_waiters();
        }
    }

    /// Charges `bytes` for a stream item, waiting while the connection has
    /// no room for it (its peer is not taking what was sent): bounded
    /// like an answer (within the connection's limit and the pool; within
    /// the pool alone when nothing else is unwritten, `alone`). Woken by
    /// the connection's releases, and looks at the pool again every
    /// `recheck` (other connections' releases do not wake it).
    pub async fn charge_when_room(
        &self,
        pool: &MemoryPool,
        bytes: usize,
        alone: impl Fn() -> bool,
        recheck: std::time::Duration,
    ) {
        loop {
            let check = if alone() {
                Charge::PoolOnly
            } else {
                Charge::Bounded
            };
            if self.charge(pool, bytes, check) {
                return;
            }
            let notified = self.sender_room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _waiting = SenderWaiting::new(&self.senders_waiting);
            let check = if alone() {
                Charge::PoolOnly
            } else {
                Charge::Bounded
            };
            if self.charge(pool, bytes, check) {
                return;
            }
            let _ = tokio::time::timeout(recheck, notified).await;
        }
    }

    /// Whether the reader must stop reading: the connection holds its
    /// limit (its fixed bytes left out), or it is past its reserved share
    /// and the pool is spent.
    pub fn must_pause(&self, pool: &MemoryPool) -> bool {
        let charged = self.charged();
        charged.saturating_sub(self.fixed()) >= self.limit
            || (charged >= self.reserved && pool.is_spent())
    }

    /// Whether a paused reader may read again: what the connection holds
    /// besides the reader's own bytes (see
    /// [`reader_paused`](Self::reader_paused)) is down to half its limit
    /// (so that a peer that drains its answers a few bytes at a time does
    /// not keep the connection full), the whole (its fixed bytes left out)
    /// is below the limit, and within its reserved share or with room in
    /// the pool.
    ///
    /// The reader's own bytes are left out of the half: a frame larger
    /// than half the limit, stopped in the middle, would otherwise keep
    /// the connection above half by itself once every call has ended, and
    /// the reader would wait for ever. They are bounded by one largest
    /// frame and one read, which the limit always has room for (see
    /// `ServerConfig::connection_memory_limit`).
    pub fn may_resume(&self, pool: &MemoryPool) -> bool {
        let charged = self.charged();
        self.below_resume_point(charged) && (charged < self.reserved || !pool.is_spent())
    }

    /// Whether a paused reader waits only for the pool (its own releases
    /// would not wake it: it looks at the pool again now and then).
    pub fn waits_for_pool(&self, pool: &MemoryPool) -> bool {
        let charged = self.charged();
        self.below_resume_point(charged) && charged >= self.reserved && pool.is_spent()
    }

    /// Whether `charged` bytes are few enough for a paused reader to read
    /// on (leaving the pool aside).
    fn below_resume_point(&self, charged: usize) -> bool {
        let paced = charged.saturating_sub(self.fixed());
        let others = paced.saturating_sub(self.held_by_reader.load(Ordering::Acquire));
        others <= self.limit / 2 && paced < self.limit
    }

    /// Marks the reader as waiting for room, holding `held_by_reader` of
    /// the connection's bytes itself (the frame it stopped in the middle
    /// of, and frames read but not handled yet).
    pub fn reader_paused(&self, held_by_reader: usize) {
        self.held_by_reader.store(held_by_reader, Ordering::Release);
        self.reader_waiting.store(true, Ordering::Release);
    }

    /// Marks the reader as reading again.
    pub fn reader_resumed(&self) {
        self.reader_waiting.store(false, Ordering::Release);
        self.held_by_reader.store(0, Ordering::Release);
    }

    /// Resolves when a release may have made room (after
    /// [`set_reader_waiting`](Self::set_reader_waiting)`(true)`).
    pub async fn room(&self) {
        self.room.notified().await;
    }
}

/// Counts one waiting stream sender while it lives (so a cancelled wait
/// is uncounted too).
struct SenderWaiting<'a>(&'a AtomicUsize);

impl<'a> SenderWaiting<'a> {
    fn new(count: &'a AtomicUsize) -> SenderWaiting<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        SenderWaiting(count)
    }
}

impl Drop for SenderWaiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserved_share_never_touches_the_pool() {
        let pool = MemoryPool::new(0);
        let conn = ConnMemory::new(100, 1000);
        assert!(conn.charge(&pool, 60, Charge::Bounded));
        assert!(conn.charge(&pool, 40, Charge::Bounded));
        assert_eq!(pool.used(), 0);
        assert!(!conn.charge(&pool, 1, Charge::Bounded), "the pool is empty");
        assert_eq!(conn.charged(), 100, "a refused charge leaves nothing");
        conn.release(&pool, 100);
        assert_eq!(conn.charged(), 0);
    }

    #[test]
    fn past_the_share_connections_borrow_up_to_their_limit_and_the_pool() {
        let pool = MemoryPool::new(500);
        let a = ConnMemory::new(100, 400);
        let b = ConnMemory::new(100, 400);
        assert!(a.charge(&pool, 400, Charge::Bounded));
        assert_eq!(pool.used(), 300);
        assert!(!a.charge(&pool, 1, Charge::Bounded), "a's limit");
        assert!(a.must_pause(&pool));
        assert!(b.charge(&pool, 300, Charge::Bounded));
        assert_eq!(pool.used(), 500);
        assert!(!b.charge(&pool, 1, Charge::Bounded), "the pool is spent");
        assert!(b.must_pause(&pool));
        // A third connection still has its reserved share.
        let c = ConnMemory::new(100, 400);
        assert!(c.charge(&pool, 100, Charge::Bounded));
        assert!(!c.charge(&pool, 1, Charge::Bounded));
        // A frame larger than a's limit, once the pool has room.
        a.release(&pool, 400);
        b.release(&pool, 300);
        assert!(!a.charge(&pool, 450, Charge::Bounded));
        assert!(a.charge(&pool, 450, Charge::PoolOnly));
        a.release(&pool, 450);
        c.release(&pool, 100);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn forced_charges_go_over_and_pause_the_reader_until_half_is_free() {
        let pool = MemoryPool::new(10_000);
        let conn = ConnMemory::new(100, 1000);
        assert!(conn.charge(&pool, 1500, Charge::Forced));
        assert!(conn.must_pause(&pool));
        conn.release(&pool, 600);
        assert!(!conn.must_pause(&pool));
        assert!(!conn.may_resume(&pool), "900 is more than half of 1000");
        conn.release(&pool, 400);
        assert!(conn.may_resume(&pool));
        conn.release(&pool, 500);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn the_readers_own_bytes_do_not_count_against_the_resume_point() {
        let pool = MemoryPool::new(10_000);
        let conn = ConnMemory::new(100, 1000);
        // Calls hold 500, the frame the reader is in the middle of 600.
        assert!(conn.charge(&pool, 500, Charge::Forced));
        assert!(conn.charge(&pool, 600, Charge::Forced));
        assert!(conn.must_pause(&pool));
        conn.reader_paused(600);
        assert!(!conn.may_resume(&pool), "1100 is over the limit");
        conn.release(&pool, 200);
        assert!(conn.may_resume(&pool), "the calls hold 300, under half");
        conn.reader_resumed();
        assert!(!conn.may_resume(&pool), "900 is more than half of 1000");
        conn.release(&pool, 900);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn fixed_bytes_count_against_the_pool_but_not_the_connections_limit() {
        let pool = MemoryPool::new(10_000);
        let conn = ConnMemory::new(100, 1000);
        conn.charge_fixed(&pool, 1500);
        assert_eq!(conn.charged(), 1500);
        assert_eq!(pool.used(), 1400, "past the reserved share: from the pool");
        assert!(
            !conn.must_pause(&pool),
            "a table of calls never pauses the reader"
        );
        assert!(conn.may_resume(&pool));
        assert!(
            conn.charge(&pool, 1000, Charge::Bounded),
            "room up to the limit"
        );
        assert!(!conn.charge(&pool, 1, Charge::Bounded));
        assert!(conn.must_pause(&pool));
        conn.release(&pool, 600);
        assert!(conn.may_resume(&pool), "400 paced bytes, under half");
        conn.release(&pool, 400);
        conn.release_fixed(&pool, 1500);
        assert_eq!((conn.charged(), pool.used()), (0, 0));
    }

    #[test]
    fn concurrent_charges_and_releases_leave_the_pool_exact() {
        let pool = std::sync::Arc::new(MemoryPool::new(1 << 20));
        let conn = std::sync::Arc::new(ConnMemory::new(1000, 1 << 30));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (pool, conn) = (pool.clone(), conn.clone());
                std::thread::spawn(move || {
                    for i in 0..20_000usize {
                        let bytes = (i * 7 + t * 13) % 3000;
                        let check = if i % 3 == 0 {
                            Charge::Forced
                        } else {
                            Charge::Bounded
                        };
                        if conn.charge(&pool, bytes, check) {
                            conn.release(&pool, bytes);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no panic");
        }
        assert_eq!(conn.charged(), 0);
        assert_eq!(pool.used.load(Ordering::SeqCst), 0);
    }
}
