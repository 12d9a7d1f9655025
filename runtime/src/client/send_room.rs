//! Room in one connection's send queue, counted in frames and in bytes.
//!
//! A request or one-way frame takes room before it is handed to its
//! connection, and gives it back when it leaves the queue: written to the
//! socket whole, or dropped unsent (its call was cancelled, or the
//! connection was lost). A server that stops reading therefore holds at
//! most the bounds of [`ChannelConfig`](super::ChannelConfig) per
//! connection in the client's memory; callers beyond them wait for room,
//! first come first served, within their own deadline.
//!
//! Cancels and pings take no room: a call's cancel is sent only if some of
//! its request was written (at most one per written request), and the
//! connection caps how many it holds (see `connection.rs`).
//!
//! Every call takes and gives back room, so the way there is a few atomic
//! operations: both counts live in one word, taken with one
//! compare-and-swap and given back with one subtraction. Only callers that
//! find no room take the lock, and queue up; room given back goes to them
//! in their order (a caller never overtakes one that waits, so a large
//! frame is not starved by small ones).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// One frame in the packed count (the bits above the bytes).
const FRAME: u64 = 1 << 40;
/// The bytes in the packed count.
const BYTES: u64 = FRAME - 1;
/// The most frames a queue may hold (so the packed count never overflows).
const MAX_FRAMES: u64 = 1 << 23;

/// The room in one connection's send queue.
#[derive(Debug)]
pub(crate) struct SendRoom {
    /// Frames (times [`FRAME`]) plus bytes holding room now.
    used: AtomicU64,
    /// Callers in `queue`: while there are any, nobody takes room directly.
    waiting: AtomicUsize,
    /// Callers waiting for room, in arrival order.
    queue: Mutex<VecDeque<Arc<Waiter>>>,
    max_frames: u64,
    /// At most `u32::MAX`, so a charge fits a `u32`.
    max_bytes: u64,
}

/// A caller waiting for room.
#[derive(Debug)]
struct Waiter {
    /// The bytes it needs.
    charge: u64,
    /// Set (under the queue's lock) when its room has been taken for it.
    granted: AtomicBool,
    /// How to wake it.
    waker: Mutex<Option<Waker>>,
}

impl SendRoom {
    /// A queue that holds at most `max_frames` frames and `max_bytes` bytes
    /// (each at least 1).
    pub fn new(max_frames: usize, max_bytes: usize) -> Arc<SendRoom> {
        let max_frames = u64::try_from(max_frames).unwrap_or(u64::MAX);
        let max_bytes = u64::try_from(max_bytes).unwrap_or(u64::MAX);
        Arc::new(SendRoom {
            used: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            queue: Mutex::new(VecDeque::new()),
            max_frames: max_frames.clamp(1, MAX_FRAMES),
            max_bytes: max_bytes.clamp(1, u64::from(u32::MAX)),
        })
    }

    /// The bytes a frame of `len` bytes takes: its length, but at most the
    /// whole queue, so a frame larger than the queue goes alone.
    fn charge(&self, len: usize) -> u64 {
        u64::try_from(len).map_or(self.max_bytes, |len| len.min(self.max_bytes))
    }

    /// Takes room for one frame of `charge` bytes if it fits now.
    fn take(&self, charge: u64) -> bool {
        let mut used = self.used.load(Ordering::SeqCst);
        loop {
            let next = used + FRAME + charge;
            if next / FRAME > self.max_frames || next & BYTES > self.max_bytes {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(actual) => used = actual,
            }
        }
    }

    /// Gives back one frame's room of `charge` bytes, to the waiting
    /// callers first.
    fn give_back(&self, charge: u64) {
        self.used.fetch_sub(FRAME + charge, Ordering::SeqCst);
        // A caller that queued before this sees the room when it looks
        // (after queueing); one that queues after it is seen here.
        if self.waiting.load(Ordering::SeqCst) != 0 {
            self.grant(&mut self.lock_queue());
        }
    }

    fn lock_queue(&self) -> MutexGuard<'_, VecDeque<Arc<Waiter>>> {
        // Nothing panics while holding it; if something did, the queue is
        // still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes room for the waiting callers, in order, while it fits, and
    /// wakes them.
    fn grant(&self, queue: &mut VecDeque<Arc<Waiter>>) {
        while let Some(head) = queue.front() {
            if !self.take(head.charge) {
                return;
            }
            if let Some(head) = queue.pop_front() {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                head.granted.store(true, Ordering::Release);
                let waker = head
                    .waker
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        }
    }

    /// Room for a frame of `len` bytes if there is some now and nobody is
    /// waiting for it.
    pub fn try_reserve(self: &Arc<Self>, len: usize) -> Option<SendPermit> {
        let charge = self.charge(len);
        self.try_reserve_charge(charge)
    }

    fn try_reserve_charge(self: &Arc<Self>, charge: u64) -> Option<SendPermit> {
        if self.waiting.load(Ordering::SeqCst) != 0 || !self.take(charge) {
            return None;
        }
        Some(self.permit(charge))
    }

    /// Waits for room for a frame of `len` bytes, behind the callers who
    /// came first. Cancel safe: dropping the future gives back what it was
    /// granted, or leaves the line.
    pub fn reserve(self: &Arc<Self>, len: usize) -> Reserve<'_> {
        Reserve {
            room: self,
            charge: self.charge(len),
            waiter: None,
        }
    }

    fn permit(self: &Arc<Self>, charge: u64) -> SendPermit {
        SendPermit {
            room: Arc::clone(self),
            // At most `max_bytes`, which fits a u32.
            charge: u32::try_from(charge).unwrap_or(u32::MAX),
        }
    }

    /// Frames holding room now (queued, or on their way to the queue).
    pub fn queued_calls(&self) -> usize {
        usize::try_from(self.used.load(Ordering::Relaxed) / FRAME).unwrap_or(usize::MAX)
    }

    /// Bytes holding room now.
    pub fn queued_bytes(&self) -> usize {
        usize::try_from(self.used.load(Ordering::Relaxed) & BYTES).unwrap_or(usize::MAX)
    }
}

/// The future of [`SendRoom::reserve`].
#[derive(Debug)]
pub(crate) struct Reserve<'a> {
    room: &'a Arc<SendRoom>,
    charge: u64,
    /// Its place in the line, once it has queued.
    waiter: Option<Arc<Waiter>>,
}

impl Future for Reserve<'_> {
    type Output = SendPermit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SendPermit> {
        let this = &mut *self;
        let room = this.room;
        let Some(waiter) = &this.waiter else {
            if let Some(permit) = room.try_reserve_charge(this.charge) {
                return Poll::Ready(permit);
            }
            let waiter = Arc::new(Waiter {
                charge: this.charge,
                granted: AtomicBool::new(false),
                waker: Mutex::new(Some(cx.waker().clone())),
            });
            {
                let mut queue = room.lock_queue();
                queue.push_back(Arc::clone(&waiter));
                room.waiting.fetch_add(1, Ordering::SeqCst);
                // Room given back since `try_reserve_charge` looked, by a
                // caller that saw nobody waiting, is found here.
                room.grant(&mut queue);
            }
            if waiter.granted.load(Ordering::Acquire) {
                return Poll::Ready(room.permit(this.charge));
            }
            this.waiter = Some(waiter);
            return Poll::Pending;
        };
        if !waiter.granted.load(Ordering::Acquire) {
            *waiter.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            // Granted while the waker was being replaced: the old one may
            // have been woken instead.
            if !waiter.granted.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
        this.waiter = None;
        Poll::Ready(room.permit(this.charge))
    }
}

impl Drop for Reserve<'_> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        let mut queue = self.room.lock_queue();
        // Under the lock, a waiter is either still in line or granted.
        if waiter.granted.load(Ordering::Acquire) {
            drop(queue);
            self.room.give_back(self.charge);
            return;
        }
        if let Some(place) = queue.iter().position(|w| Arc::ptr_eq(w, &waiter)) {
            queue.remove(place);
            self.room.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        // It may have been the one the others waited behind.
        self.room.grant(&mut queue);
    }
}

/// One frame's room in a send queue, given back when dropped: when the
/// frame has been written whole, or dropped unsent.
#[derive(Debug)]
pub(crate) struct SendPermit {
    room: Arc<SendRoom>,
    charge: u32,
}

impl Drop for SendPermit {
    fn drop(&mut self) {
        self.room.give_back(u64::from(self.charge));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn counts(room: &SendRoom) -> (usize, usize) {
        (room.queued_calls(), room.queued_bytes())
    }

    #[test]
    fn room_is_bounded_in_frames_and_bytes_and_given_back() {
        let room = SendRoom::new(3, 100);
        let a = room.try_reserve(40).expect("room");
        let b = room.try_reserve(40).expect("room");
        // 80 of 100 bytes taken: 30 more do not fit.
        assert!(room.try_reserve(30).is_none());
        let c = room.try_reserve(20).expect("room");
        assert_eq!(counts(&room), (3, 100));
        drop(b);
        assert_eq!(counts(&room), (2, 60));
        // Three frames at most, however small.
        let d = room.try_reserve(1).expect("room");
        assert!(room.try_reserve(0).is_none());
        drop((a, c, d));
        assert_eq!(counts(&room), (0, 0));
    }

    #[test]
    fn a_frame_larger_than_the_queue_goes_alone() {
        let room = SendRoom::new(8, 100);
        let big = room.try_reserve(10_000).expect("an empty queue takes it");
        assert_eq!(counts(&room), (1, 100));
        assert!(room.try_reserve(1).is_none());
        drop(big);
        assert!(room.try_reserve(usize::MAX).is_some());
    }

    #[test]
    fn huge_bounds_are_capped_without_overflow() {
        let room = SendRoom::new(usize::MAX, usize::MAX);
        let whole = room.try_reserve(usize::MAX).expect("room");
        assert_eq!(counts(&room), (1, u32::MAX as usize));
        assert!(room.try_reserve(1).is_none());
        drop(whole);
        let frames: Vec<_> = (0..1000)
            .map(|_| room.try_reserve(0).expect("room"))
            .collect();
        assert_eq!(counts(&room), (1000, 0));
        drop(frames);
        assert_eq!(counts(&room), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_order_and_nobody_overtakes_them() {
        let room = SendRoom::new(8, 100);
        let held = room.try_reserve(90).expect("room");
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        // A big frame waits first, then small ones.
        for (name, len) in [("big", 60), ("small 1", 5), ("small 2", 5)] {
            let (room, order) = (Arc::clone(&room), Arc::clone(&order));
            waiters.push(tokio::spawn(async move {
                let permit = room.reserve(len).await;
                order.lock().expect("not poisoned").push(name);
                permit
            }));
            tokio::task::yield_now().await;
        }
        // 10 bytes are free, but the big frame is first in line: the small
        // ones behind it, and newcomers, wait.
        assert!(room.try_reserve(5).is_none());
        assert!(order.lock().expect("not poisoned").is_empty());
        drop(held);
        let mut permits = Vec::new();
        for waiter in waiters {
            permits.push(waiter.await.expect("a waiter"));
        }
        assert_eq!(
            *order.lock().expect("not poisoned"),
            ["big", "small 1", "small 2"]
        );
        assert_eq!(counts(&room), (3, 70));
        drop(permits);
        assert_eq!(counts(&room), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_leaves_the_line_and_unblocks_the_others() {
        let room = SendRoom::new(8, 100);
        let held = room.try_reserve(50).expect("room");
        // A 90-byte waiter blocks a 10-byte one behind it, then gives up.
        let big = tokio::time::timeout(Duration::from_millis(10), room.reserve(90));
        let small = tokio::spawn({
            let room = Arc::clone(&room);
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                room.reserve(10).await
            }
        });
        assert!(big.await.is_err());
        let small = small.await.expect("the small waiter");
        assert_eq!(counts(&room), (2, 60));
        drop((held, small));
        assert_eq!(counts(&room), (0, 0));
        assert!(room.try_reserve(100).is_some());
    }

    #[test]
    fn a_waiter_dropped_after_its_grant_gives_the_room_back() {
        let room = SendRoom::new(1, 100);
        let held = room.try_reserve(10).expect("room");
        let mut waiting = Box::pin(room.reserve(10));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        // The room is granted to the waiter, which is dropped unpolled.
        drop(held);
        assert_eq!(counts(&room), (1, 10));
        drop(waiting);
        assert_eq!(counts(&room), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_callers_never_exceed_the_bounds_and_leave_nothing_behind() {
        const FRAMES: usize = 4;
        const MAX_BYTES: usize = 1000;
        let room = SendRoom::new(FRAMES, MAX_BYTES);
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..16usize {
            let room = Arc::clone(&room);
            tasks.spawn(async move {
                for i in 0..500usize {
                    let len = (task * 37 + i * 101) % 700;
                    let patience = Duration::from_micros(((task + i) % 5) as u64 * 50);
                    let Ok(permit) = tokio::time::timeout(patience, room.reserve(len)).await else {
                        continue;
                    };
                    let (frames, bytes) = counts(&room);
                    assert!(frames <= FRAMES && bytes <= MAX_BYTES, "{frames} {bytes}");
                    tokio::task::yield_now().await;
                    drop(permit);
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.expect("a caller");
        }
        assert_eq!(counts(&room), (0, 0));
        assert_eq!(room.waiting.load(Ordering::SeqCst), 0);
        assert!(room.lock_queue().is_empty());
    }
}
