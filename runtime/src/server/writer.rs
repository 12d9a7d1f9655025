//! A connection's writer task: takes every frame queued in the outbox at
//! once and writes them with one vectored write; no flush timer, so one
//! frame alone goes out at once and many frames cost one syscall. When the
//! frames were pushed by call tasks while the reader was idle, and other
//! call tasks of the connection are still running, the writer first lets
//! the run queue turn once (it wakes itself and returns `Pending`, which
//! puts it behind the tasks already runnable: never `yield_now`, which
//! also waits for the I/O driver, and never a timer), so their answers
//! join the same write. A frame
//! leaves the connection's account once it is written whole (its buffer
//! lives until then).
//!
//! A write that makes no progress for the write-stall timeout (the peer
//! stopped reading and the socket's buffers are full) ends the writer; the
//! reader sees it end and closes the connection. The stall timer is armed
//! only when a write has to wait, so writes that go through at once cost
//! no timer work.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::connection_shared::ConnShared;
use super::limits::far_future;
use crate::protocol::outbox::Take;
use crate::protocol::write_queue::{MAX_IOVECS, WriteQueue, empty_slices};

/// Why the writer ended.
#[derive(Debug)]
pub(crate) enum WriterEnd {
    /// The outbox was closed and everything in it written.
    Done,
    /// No byte could be written for the write-stall timeout.
    Stalled,
    /// The socket failed or stopped accepting bytes.
    Failed(io::Error),
}

impl std::fmt::Display for WriterEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriterEnd::Done => f.write_str("done"),
            WriterEnd::Stalled => f.write_str("the peer took no bytes for the write-stall timeout"),
            WriterEnd::Failed(e) => write!(f, "write failed: {e}"),
        }
    }
}

/// The write-stall clock: armed when a write has to wait, disarmed by
/// progress. It also tells the connection whether the writer is waiting
/// for the socket ([`ConnShared::writer_waiting`]), changing that flag only
/// when a write has to wait and at the progress after it: writes that go
/// through at once touch neither the timer nor the flag.
struct StallClock<'a> {
    timeout: Option<Duration>,
    timer: Pin<Box<Sleep>>,
    /// A write has waited since the last progress.
    waiting: bool,
    conn: &'a ConnShared,
}

impl<'a> StallClock<'a> {
    fn new(timeout: Option<Duration>, conn: &'a ConnShared) -> StallClock<'a> {
        StallClock {
            timeout,
            timer: Box::pin(tokio::time::sleep_until(far_future())),
            waiting: false,
            conn,
        }
    }

    /// Bytes moved.
    fn progress(&mut self) {
        if self.waiting {
            self.waiting = false;
            self.conn.set_writer_waiting(false);
        }
    }

    /// A write has to wait: whether the stall timeout has passed since the
    /// last progress (registering `cx` to be woken when it does).
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.waiting {
            self.waiting = true;
            self.conn.set_writer_waiting(true);
            if let Some(timeout) = self.timeout {
                self.timer.as_mut().reset(Instant::now() + timeout);
            }
        }
        self.timeout.is_some() && self.timer.as_mut().poll(cx).is_ready()
    }
}

/// Why a write did not complete.
enum WriteError {
    /// No progress for the write-stall timeout.
    Stalled,
    /// The socket failed.
    Io(io::Error),
}

impl From<WriteError> for WriterEnd {
    fn from(error: WriteError) -> WriterEnd {
        match error {
            WriteError::Stalled => WriterEnd::Stalled,
            WriteError::Io(e) => WriterEnd::Failed(e),
        }
    }
}

/// Polls `write` (a write or a flush) until it is ready or the stall
/// clock runs out.
async fn unless_stalled<T>(
    clock: &mut StallClock<'_>,
    mut write: impl FnMut(&mut Context<'_>) -> Poll<io::Result<T>>,
) -> Result<T, WriteError> {
    poll_fn(|cx| match write(cx) {
        Poll::Ready(result) => {
            clock.progress();
            Poll::Ready(result.map_err(WriteError::Io))
        }
        Poll::Pending if clock.poll_stalled(cx) => Poll::Ready(Err(WriteError::Stalled)),
        Poll::Pending => Poll::Pending,
    })
    .await
}

/// Writes the frames of `conn`'s outbox until it is closed and empty (then
/// the write side is shut down: FIN, after TLS's close_notify), the socket
/// fails, or a write stalls. Whatever it took and did not write is
/// released from the connection's account when the writer ends or is
/// dropped (aborted); the connection releases what is left in the outbox
/// ([`ConnShared::release_unsent`]).
///
/// `W` is a TCP `OwnedWriteHalf` (whose flush costs nothing) or the write
/// half of a TLS or other stream (whose flush pushes out what the TLS
/// layer buffered).
pub(crate) async fn write_frames<W>(mut socket: W, conn: Arc<ConnShared>) -> WriterEnd
where
    W: AsyncWrite + Unpin,
{
    let mut taken: Vec<Bytes> = Vec::with_capacity(MAX_IOVECS);
    let mut queue = Taken {
        queue: WriteQueue::default(),
        conn: &conn,
    };
    let mut clock = StallClock::new(conn.env.config.write_stall_timeout, &conn);
    let end = loop {
        let mut deferred = false;
        let open = poll_fn(|cx| {
            let may_defer = !deferred && conn.call_tasks_running();
            match conn.outbox.poll_take(cx, &mut taken, may_defer) {
                Take::Taken => Poll::Ready(true),
                Take::Closed => Poll::Ready(false),
                Take::Empty => Poll::Pending,
                Take::Defer => {
                    deferred = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        })
        .await;
        if !open {
            break WriterEnd::Done;
        }
        for frame in taken.drain(..) {
            let len = frame.len();
            queue.queue.push(frame, len);
        }
        if let Err(end) = write_queued(&mut socket, &mut queue.queue, &mut clock, &conn).await {
            break end;
        }
    };
    drop(queue);
    if let WriterEnd::Done = end {
        // A peer that does not read may not take TLS's close_notify either.
        let _ = unless_stalled(&mut clock, |cx| Pin::new(&mut socket).poll_shutdown(cx)).await;
    }
    end
}

/// The frames the writer took from the outbox and has not written whole;
/// each frame's token is its length. Dropping it (the writer ended or was
/// aborted) releases them from the connection's account.
struct Taken<'a> {
    queue: WriteQueue<usize>,
    conn: &'a ConnShared,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        let (mut bytes, mut frames) = (0usize, 0usize);
        for len in self.queue.drain_tokens() {
            bytes += len;
            frames += 1;
        }
        if frames > 0 {
            tracing::debug!(peer = %self.conn.peer, bytes, "answers left unwritten");
            self.conn.answers_written(bytes, frames);
        }
    }
}

/// Writes everything in `queue`, taking frames queued meanwhile too.
async fn write_queued<W>(
    socket: &mut W,
    queue: &mut WriteQueue<usize>,
    clock: &mut StallClock<'_>,
    conn: &ConnShared,
) -> Result<(), WriterEnd>
where
    W: AsyncWrite + Unpin,
{
    let mut more = Vec::new();
    while !queue.is_empty() {
        let written = if let Some(frame) = queue.only() {
            unless_stalled(clock, |cx| Pin::new(&mut *socket).poll_write(cx, frame)).await
        } else {
            let mut slices = empty_slices();
            let used = queue.fill(&mut slices);
            let slices = &slices[..used];
            unless_stalled(clock, |cx| {
                Pin::new(&mut *socket).poll_write_vectored(cx, slices)
            })
            .await
        };
        match written {
            Ok(0) => {
                tracing::debug!(peer = %conn.peer, "connection stopped accepting bytes");
                return Err(WriterEnd::Failed(io::ErrorKind::WriteZero.into()));
            }
            Ok(written) => {
                let (mut frames, mut bytes) = (0usize, 0usize);
                queue.advance(written, |len| {
                    frames += 1;
                    bytes += len;
                });
                if frames > 0 {
                    conn.answers_written(bytes, frames);
                }
            }
            Err(e) => {
                log_end(conn, &e);
                return Err(e.into());
            }
        }
        if queue.is_empty() {
            // Frames queued while this batch was written go in the next
            // write, without waiting for the outbox again.
            conn.outbox.take_now(&mut more);
            for frame in more.drain(..) {
                let len = frame.len();
                queue.push(frame, len);
            }
        }
    }
    if let Err(e) = unless_stalled(clock, |cx| Pin::new(&mut *socket).poll_flush(cx)).await {
        log_end(conn, &e);
        return Err(e.into());
    }
    Ok(())
}

/// Writes what the socket takes at once of `frames` (the answers of a read
/// the reader handled, taken from the outbox while the writer had nothing
/// in hand) with one non-blocking write, for the reader. Whole frames
/// written leave the connection's account, as the writer's do; of a frame
/// written in part, its bytes written leave it, and the rest stays in
/// `frames` (cut) for the writer, with the frames not written at all. A
/// failed write leaves everything to the writer, which meets the same
/// failure and ends the connection.
pub(crate) fn write_at_once(conn: &ConnShared, tcp: &TcpStream, frames: &mut Vec<Bytes>) {
    let written = match frames.as_slice() {
        [] => return,
        [frame] => tcp.try_write(frame),
        _ => {
            let mut slices = empty_slices();
            let used = frames.len().min(MAX_IOVECS);
            for (slice, frame) in slices.iter_mut().zip(frames.iter()) {
                *slice = io::IoSlice::new(frame);
            }
            tcp.try_write_vectored(&slices[..used])
        }
    };
    let Ok(mut written) = written else { return };
    let (mut whole, mut bytes) = (0usize, 0usize);
    for frame in frames.iter() {
        if written < frame.len() {
            break;
        }
        written -= frame.len();
        bytes += frame.len();
        whole += 1;
    }
    frames.drain(..whole);
    if let Some(front) = frames.first_mut().filter(|_| written > 0) {
        front.advance(written);
        bytes += written;
    }
    if bytes > 0 {
        conn.answers_written(bytes, whole);
    }
}

fn log_end(conn: &ConnShared, error: &WriteError) {
    match error {
        WriteError::Stalled => {
            tracing::debug!(peer = %conn.peer, "writes stalled; closing the connection")
        }
        WriteError::Io(e) => {
            tracing::debug!(peer = %conn.peer, error = %e, "write failed; closing the connection")
        }
    }
}
