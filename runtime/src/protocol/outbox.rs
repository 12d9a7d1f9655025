//! A connection's outbox: encoded frames handed from any task to the one
//! task that writes the socket. Pushing never waits (no `.await`, no task
//! per frame): producers account the bytes they push themselves, and
//! decide what to do when their budget is spent before they push. The
//! writer takes everything queued at once and writes it in batches
//! ([`WriteQueue`](super::write_queue::WriteQueue)).
//!
//! Locked only for a push or a take (a `Vec` swap), never across an
//! `.await`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

/// The frames waiting for the writer.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Bytes pushed and not yet reported written by the writer (queued
    /// here, or taken and still being written).
    unwritten: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    frames: Vec<Bytes>,
    /// No frame is accepted any more.
    closed: bool,
    /// The writer, when it waits for frames.
    writer: Option<Waker>,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame for the writer, or gives it back if the outbox is
    /// closed (the connection is gone: nobody can receive it).
    pub fn push(&self, frame: Bytes) -> Result<(), Bytes> {
        let len = frame.len();
        let mut state = self.lock();
        if state.closed {
            return Err(frame);
        }
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
    /// between takes). `Ready(true)`: frames were taken; `Ready(false)`:
    /// the outbox is closed and empty; `Pending`: nothing queued, the
    /// writer is woken by the next push or the close.
    pub fn poll_take(&self, cx: &mut Context<'_>, into: &mut Vec<Bytes>) -> Poll<bool> {
        let mut state = self.lock();
        if !state.frames.is_empty() {
            if into.is_empty() {
                // Both vectors keep their capacity: no allocation per take.
                std::mem::swap(&mut state.frames, into);
            } else {
                into.append(&mut state.frames);
            }
            return Poll::Ready(true);
        }
        if state.closed {
            return Poll::Ready(false);
        }
        match &mut state.writer {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
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
    use std::sync::Arc;
    use std::task::Wake;

    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_writer_takes_everything_and_is_woken_by_the_next_push() {
        let outbox = Outbox::default();
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        let mut taken = Vec::new();
        assert!(outbox.poll_take(&mut cx, &mut taken).is_pending());
        outbox.push(Bytes::from_static(b"abc")).expect("open");
        outbox.push(Bytes::from_static(b"de")).expect("open");
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "one wake");
        assert_eq!(outbox.unwritten(), 5);
        assert_eq!(outbox.poll_take(&mut cx, &mut taken), Poll::Ready(true));
        assert_eq!(taken.len(), 2);
        outbox.written(5);
        assert_eq!(outbox.unwritten(), 0);
        taken.clear();
        outbox.close();
        assert_eq!(outbox.poll_take(&mut cx, &mut taken), Poll::Ready(false));
        assert!(outbox.push(Bytes::from_static(b"late")).is_err());
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
