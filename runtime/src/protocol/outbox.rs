//! A connection's outbox: encoded frames handed from any task to the one
//! task that writes the socket. Pushing never waits (no `.await`, no task
//! per frame): producers account the bytes they push themselves, and
//! decide what to do when their budget is spent before they push. The
//! writer takes everything queued at once and writes it in batches
//! ([`WriteQueue`](super::write_queue::WriteQueue)).
//!
//! Locked only for a push or a take (a `Vec` swap), never across an
//! `.await`.
//!
//! Coalescing: a frame pushed by the connection's reader (answers of calls
//! that finished inline, control frames) is written as soon as the reader
//! has handled what it read and waits for the socket again: the writer,
//! woken by the push, runs only then on the reader's worker. A frame pushed
//! by a call's own task while the reader is idle may instead be held for
//! one turn of the run queue ([`Take::Defer`]): other call tasks that are
//! runnable then add their answers to the same write. Never a timer, never
//! more than one turn, and never for a large batch.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};

use bytes::Bytes;

/// The frames waiting for the writer.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Bytes pushed and not yet reported written by the writer (queued
    /// here, or taken and still being written).
    unwritten: AtomicUsize,
    /// Set while the connection's reader handles what it read: frames it
    /// pushes then go out right after it, never held for a turn.
    reader_busy: AtomicBool,
}

/// Queued bytes up to which the writer may hold a batch for one turn of the
/// run queue; a larger batch amortises its syscall and goes out at once.
pub(crate) const DEFER_MAX_BYTES: usize = 64 * 1024;

/// What the writer got from [`Outbox::poll_take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// Frames were moved into the writer's vector.
    Taken,
    /// Frames are queued, all pushed by call tasks while the reader was
    /// idle, and the batch is small: the writer may let the other runnable
    /// tasks run once (wake itself, return `Pending`) before taking them.
    Defer,
    /// Nothing is queued; the writer is woken by the next push or close.
    Empty,
    /// The outbox is closed and empty.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    frames: Vec<Bytes>,
    /// No frame is accepted any more.
    closed: bool,
    /// The writer, when it waits for frames.
    writer: Option<Waker>,
    /// Every frame queued since the last take was pushed while the reader
    /// was idle (by a call's task): the batch may be held for a turn.
    deferrable: bool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame for the writer, or gives it back if the outbox is
    /// closed (the connection is gone: nobody can receive it).
    pub fn push(&self, frame: Bytes) -> Result<(), Bytes> {
        let len = frame.len();
        let deferrable = !self.reader_busy.load(Ordering::Relaxed);
        let mut state = self.lock();
        if state.closed {
            return Err(frame);
        }
        state.deferrable = deferrable && (state.deferrable || state.frames.is_empty());
        state.frames.push(frame);
        self.unwritten.fetch_add(len, Ordering::AcqRel);
        let writer = state.writer.take();
        drop(state);
        if let Some(writer) = writer {
            writer.wake();
        }
        Ok(())
    }

    /// Moves every queued frame into `into` (which the writer keeps empty
    /// between takes), unless `may_defer` and the batch may be held for a
    /// turn ([`Take::Defer`]: nothing is taken, and the writer must wake
    /// itself). On [`Take::Empty`] the writer is woken by the next push or
    /// the close.
    pub fn poll_take(&self, cx: &mut Context<'_>, into: &mut Vec<Bytes>, may_defer: bool) -> Take {
        let mut state = self.lock();
        if !state.frames.is_empty() {
            if may_defer
                && state.deferrable
                && !state.closed
                && self.unwritten.load(Ordering::Acquire) < DEFER_MAX_BYTES
            {
                return Take::Defer;
            }
            if into.is_empty() {
                // Both vectors keep their capacity: no allocation per take.
                std::mem::swap(&mut state.frames, into);
            } else {
                into.append(&mut state.frames);
            }
            return Take::Taken;
        }
        if state.closed {
            return Take::Closed;
        }
        match &mut state.writer {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Take::Empty
    }

    /// The reader starts (`true`) or stops handling what it read.
    pub fn set_reader_busy(&self, busy: bool) {
        self.reader_busy.store(busy, Ordering::Relaxed);
    }

    /// Takes whatever is queued now, without waiting.
    pub fn take_now(&self, into: &mut Vec<Bytes>) {
        let mut state = self.lock();
        into.append(&mut state.frames);
    }

    /// The writer wrote `bytes` of the frames it took.
    pub fn written(&self, bytes: usize) {
        self.unwritten.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes pushed and not yet written.
    pub fn unwritten(&self) -> usize {
        self.unwritten.load(Ordering::Acquire)
    }

    /// Refuses every later push and wakes the writer, which writes what is
    /// queued and then sees the outbox closed.
    pub fn close(&self) {
        let writer = {
            let mut state = self.lock();
            state.closed = true;
            state.writer.take()
        };
        if let Some(writer) = writer {
            writer.wake();
        }
    }

    /// Closes the outbox and returns the frames never taken (the writer
    /// gave up).
    pub fn close_and_drain(&self) -> Vec<Bytes> {
        let frames = {
            let mut state = self.lock();
            state.closed = true;
            state.writer = None;
            std::mem::take(&mut state.frames)
        };
        let bytes: usize = frames.iter().map(Bytes::len).sum();
        self.written(bytes);
        frames
    }

    /// Whether [`close`](Self::close) was called.
    #[cfg(test)]
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_waker::CountingWaker;

    #[test]
    fn the_writer_takes_everything_and_is_woken_by_the_next_push() {
        let outbox = Outbox::default();
        let (counter, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        let mut taken = Vec::new();
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, false), Take::Empty);
        outbox.push(Bytes::from_static(b"abc")).expect("open");
        outbox.push(Bytes::from_static(b"de")).expect("open");
        assert_eq!(counter.wakes(), 1, "one wake");
        assert_eq!(outbox.unwritten(), 5);
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, false), Take::Taken);
        assert_eq!(taken.len(), 2);
        outbox.written(5);
        assert_eq!(outbox.unwritten(), 0);
        taken.clear();
        outbox.close();
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, false), Take::Closed);
        assert!(outbox.push(Bytes::from_static(b"late")).is_err());
    }

    #[test]
    fn only_small_batches_pushed_while_the_reader_is_idle_are_deferred() {
        let outbox = Outbox::default();
        let mut cx = Context::from_waker(Waker::noop());
        let mut taken = Vec::new();
        outbox
            .push(Bytes::from_static(b"from a task"))
            .expect("open");
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, true), Take::Defer);
        assert!(taken.is_empty(), "nothing taken when deferred");
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, false), Take::Taken);
        taken.clear();
        outbox.written(11);

        // A frame of the reader's in the batch: out at once.
        outbox.push(Bytes::from_static(b"task")).expect("open");
        outbox.set_reader_busy(true);
        outbox.push(Bytes::from_static(b"reader")).expect("open");
        outbox.set_reader_busy(false);
        outbox.push(Bytes::from_static(b"task")).expect("open");
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, true), Take::Taken);
        assert_eq!(taken.len(), 3);
        taken.clear();
        outbox.written(14);

        // A large batch: out at once.
        outbox
            .push(Bytes::from(vec![0u8; DEFER_MAX_BYTES]))
            .expect("open");
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, true), Take::Taken);
    }

    #[test]
    fn close_and_drain_returns_what_was_never_taken() {
        let outbox = Outbox::default();
        outbox.push(Bytes::from_static(b"abc")).expect("open");
        let left = outbox.close_and_drain();
        assert_eq!(left.len(), 1);
        assert_eq!(outbox.unwritten(), 0);
        assert!(outbox.is_closed());
    }
}
