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
//! Coalescing: a frame pushed while the connection's reader handles what
//! it read (answers of calls that finished inline, control frames) is
//! written as soon as the reader is done with that read
//! ([`Outbox::reader_done`]): by the reader itself, with one write, when
//! the writer has nothing in hand and the transport lets it (plain TCP),
//! which saves the writer task's wake-up; else by the writer, woken then
//! (not at each push). What the reader could not write goes back to the
//! front of the queue for the writer ([`Outbox::reader_wrote`]). A frame pushed
//! by a call's own task while the reader is idle may instead be held for
//! one turn of the run queue ([`Take::Defer`]): other call tasks that are
//! runnable then add their answers to the same write. Never a timer, never
//! more than one turn, and never for a large batch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};

use bytes::Bytes;

/// The frames waiting for the writer.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Bytes pushed and not yet reported written (queued here, or taken
    /// and still being written).
    unwritten: AtomicUsize,
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
    /// The connection's reader handles what it read: frames pushed now go
    /// out when it is done ([`Outbox::reader_done`]), never held for a
    /// turn, and the writer is not woken for each of them.
    reader_busy: bool,
    /// The reader is writing frames it took itself: the writer takes
    /// nothing until it is done ([`Outbox::reader_wrote`]).
    reader_writing: bool,
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
        state.deferrable = !state.reader_busy && (state.deferrable || state.frames.is_empty());
        state.frames.push(frame);
        self.unwritten.fetch_add(len, Ordering::AcqRel);
        if state.reader_busy || state.reader_writing {
            // The reader wakes the writer (or writes) when it is done.
            return Ok(());
        }
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
        if state.reader_writing {
            // The reader wakes the writer when it has written.
            match &mut state.writer {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            return Take::Empty;
        }
        if !state.frames.is_empty() {
            // The writer is at work (or about to be, after a deferral): no
            // longer waiting for frames, which is what lets the reader write
            // in its place (`reader_done`). A waker left here from an
            // earlier wait would say otherwise (the writer may be polled
            // for another reason than a push: its stall timer).
            state.writer = None;
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
            state.writer = None;
            return Take::Closed;
        }
        match &mut state.writer {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Take::Empty
    }

    /// The reader starts handling what it read: frames pushed from now on
    /// wait for [`reader_done`](Self::reader_done).
    pub fn reader_busy(&self) {
        self.lock().reader_busy = true;
    }

    /// The reader is done with what it read. If frames wait, and
    /// `may_write` (the reader can write the socket itself), the writer
    /// has nothing in hand (it waits for frames) and less than 64 KiB is
    /// unwritten ([`DEFER_MAX_BYTES`]), they are moved into
    /// `into` (empty) and `true` is returned: the reader writes them and
    /// then calls [`reader_wrote`](Self::reader_wrote). Otherwise the
    /// writer is woken for them.
    pub fn reader_done(&self, may_write: bool, into: &mut Vec<Bytes>) -> bool {
        let mut state = self.lock();
        state.reader_busy = false;
        if state.frames.is_empty() {
            return false;
        }
        // Only a small batch: large answers go to the writer as before,
        // which then gathers those of several reads into one write (the
        // reader writing each read's 64 KiB answer alone made one write
        // per call and cost a quarter of the calls/s at 64 KiB).
        if may_write
            && state.writer.is_some()
            && !state.closed
            && !state.reader_writing
            && self.unwritten.load(Ordering::Acquire) < DEFER_MAX_BYTES
        {
            std::mem::swap(&mut state.frames, into);
            state.reader_writing = true;
            return true;
        }
        let writer = state.writer.take();
        drop(state);
        if let Some(writer) = writer {
            writer.wake();
        }
        false
    }

    /// The reader wrote what [`reader_done`](Self::reader_done) gave it
    /// (and reported the bytes [`written`](Self::written)); `rest` is what
    /// the socket did not take, in order, the front frame possibly cut.
    /// It goes back to the front of the queue, and the writer is woken if
    /// anything waits (or the outbox was closed meanwhile).
    pub fn reader_wrote(&self, rest: &mut Vec<Bytes>) {
        let mut state = self.lock();
        state.reader_writing = false;
        if !rest.is_empty() {
            rest.append(&mut state.frames);
            std::mem::swap(&mut state.frames, rest);
            state.deferrable = false;
        }
        if state.frames.is_empty() && !state.closed {
            return;
        }
        let writer = state.writer.take();
        drop(state);
        if let Some(writer) = writer {
            writer.wake();
        }
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
    use std::sync::Arc;

    use bytes::Buf;

    use super::*;
    use crate::test_waker::CountingWaker;

    #[test]
    fn the_writer_takes_everything_and_is_woken_by_the_next_push() {
        let (outbox, counter, waker) = with_a_waiting_writer();
        let mut cx = Context::from_waker(&waker);
        let mut taken = Vec::new();
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
        outbox.reader_busy();
        outbox.push(Bytes::from_static(b"reader")).expect("open");
        assert!(!outbox.reader_done(false, &mut Vec::new()));
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

    /// An outbox whose writer waits for frames (it looked and found none),
    /// and the writer's waker, counting its wakes.
    fn with_a_waiting_writer() -> (Outbox, Arc<CountingWaker>, Waker) {
        let outbox = Outbox::default();
        let (counter, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(
            outbox.poll_take(&mut cx, &mut Vec::new(), false),
            Take::Empty
        );
        (outbox, counter, waker)
    }

    #[test]
    fn frames_pushed_while_the_reader_is_busy_wake_the_writer_once_it_is_done() {
        let (outbox, counter, waker) = with_a_waiting_writer();
        let mut cx = Context::from_waker(&waker);
        let mut taken = Vec::new();
        outbox.reader_busy();
        outbox.push(Bytes::from_static(b"one")).expect("open");
        outbox.push(Bytes::from_static(b"two")).expect("open");
        assert_eq!(counter.wakes(), 0, "not woken per frame");
        // The reader cannot write itself (TLS): the writer is woken.
        assert!(!outbox.reader_done(false, &mut Vec::new()));
        assert_eq!(counter.wakes(), 1);
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, true), Take::Taken);
        assert_eq!(taken.len(), 2);
    }

    #[test]
    fn the_reader_writes_when_the_writer_is_idle_and_gives_back_the_rest_first() {
        let outbox = Outbox::default();
        let (counter, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        let mut taken = Vec::new();
        let mut reader = Vec::new();
        // The writer busy (not waiting for frames): the reader leaves the
        // frames to it.
        outbox.reader_busy();
        outbox.push(Bytes::from_static(b"a")).expect("open");
        assert!(!outbox.reader_done(true, &mut reader));
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, false), Take::Taken);
        taken.clear();
        outbox.written(1);
        // The writer idle: the reader takes the frames and writes them.
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, false), Take::Empty);
        outbox.reader_busy();
        outbox.push(Bytes::from_static(b"first")).expect("open");
        outbox.push(Bytes::from_static(b"second")).expect("open");
        assert!(outbox.reader_done(true, &mut reader));
        assert_eq!(reader.len(), 2);
        // Meanwhile a call task pushes, and the writer looks: it takes
        // nothing while the reader writes, and is not woken by the push.
        outbox.push(Bytes::from_static(b"third")).expect("open");
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, false), Take::Empty);
        assert_eq!(counter.wakes(), 0);
        // The socket took "first" and "sec": the rest goes back in front.
        reader.remove(0);
        reader[0].advance(3);
        outbox.written(8);
        outbox.reader_wrote(&mut reader);
        assert!(reader.is_empty());
        assert_eq!(counter.wakes(), 1, "the writer is woken for the rest");
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, true), Take::Taken);
        let taken: Vec<&[u8]> = taken.iter().map(|frame| &frame[..]).collect();
        assert_eq!(taken, [&b"ond"[..], &b"third"[..]]);
    }

    #[test]
    fn a_writer_polled_without_a_push_is_at_work_and_the_reader_leaves_frames_to_it() {
        let (outbox, counter, waker) = with_a_waiting_writer();
        let mut cx = Context::from_waker(&waker);
        let (mut taken, mut reader) = (Vec::new(), Vec::new());
        outbox.reader_busy();
        outbox.push(Bytes::from_static(b"early")).expect("open");
        // The writer runs for another reason (its stall timer fired) and
        // takes the frame: it is writing now.
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, false), Take::Taken);
        outbox.push(Bytes::from_static(b"later")).expect("open");
        assert!(
            !outbox.reader_done(true, &mut reader),
            "the reader must not write while the writer does"
        );
        assert!(reader.is_empty());
        assert_eq!(counter.wakes(), 0, "the writer is not waiting: no wake");
        taken.clear();
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, false), Take::Taken);
        assert_eq!(&taken[0][..], b"later");
    }

    #[test]
    fn a_close_while_the_reader_writes_reaches_the_writer() {
        let (outbox, counter, waker) = with_a_waiting_writer();
        let mut cx = Context::from_waker(&waker);
        let (mut taken, mut reader) = (Vec::new(), Vec::new());
        outbox.reader_busy();
        outbox.push(Bytes::from_static(b"answer")).expect("open");
        assert!(outbox.reader_done(true, &mut reader));
        outbox.close();
        assert_eq!(counter.wakes(), 1);
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, false), Take::Empty);
        reader.clear();
        outbox.written(6);
        outbox.reader_wrote(&mut reader);
        assert_eq!(counter.wakes(), 2, "woken to see the close");
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, false), Take::Closed);
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
