//! A connection's write queue: the frames it has not written yet, each
//! with what to do once it is written, and their counts. Request and
//! one-way frames hold their room in the connection's send queue
//! (`send_room.rs`) until they leave it: written whole, or dropped unsent.
//! The connection's own pings and cancels take no room; it holds at most as
//! many cancels as the queue holds frames.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Context;

use bytes::Bytes;

use super::command::WrittenSender;
use super::send_room::SendPermit;
use super::stream::ClientStream;
use crate::error::TransportError;
use crate::protocol::write_queue::WriteQueue;
use crate::protocol::{MessageKind, empty_frame};

/// What a connection holds unwritten, by its own count: frames (control
/// frames included) and their bytes, mirrored for the `Channel` to read (a
/// test hook).
#[derive(Debug, Default)]
pub(crate) struct Unsent {
    frames: AtomicUsize,
    bytes: AtomicUsize,
    /// Writes (syscalls that took bytes) so far.
    writes: AtomicUsize,
    /// Times the connection waited for runnable callers before writing.
    batch_waits: AtomicUsize,
}

impl Unsent {
    /// Frames and bytes.
    pub fn get(&self) -> (usize, usize) {
        (
            self.frames.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    /// Writes (syscalls that took bytes) so far.
    #[cfg(test)]
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::Relaxed)
    }

    /// Times the connection waited for runnable callers before writing.
    #[cfg(test)]
    pub fn batch_waits(&self) -> usize {
        self.batch_waits.load(Ordering::Relaxed)
    }

    fn set(&self, frames: usize, bytes: usize) {
        self.frames.store(frames, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
    }
}

/// A frame in the write queue: what to do once it is written, and how to
/// find it if its caller gives up first.
#[derive(Debug)]
enum Queued {
    /// A call's request. Its room goes back when it is written or dropped.
    Request {
        id: u64,
        /// The whole frame's length.
        len: usize,
        _room: SendPermit,
    },
    /// A one-way request; its caller is told once it is written.
    Oneway {
        id: u64,
        /// The whole frame's length.
        len: usize,
        written: WrittenSender,
        _room: SendPermit,
    },
    /// A ping or a cancel: the connection's own, taking no room.
    Control { len: usize, cancel: bool },
}

impl Queued {
    fn len(&self) -> usize {
        match self {
            Queued::Request { len, .. }
            | Queued::Oneway { len, .. }
            | Queued::Control { len, .. } => *len,
        }
    }

    /// Whether this is request `id`'s frame and none of it is written
    /// (`left` is what is left of it to write).
    fn is_unwritten_request(&self, id: u64, left: &Bytes) -> bool {
        match self {
            Queued::Request { id: of, len, .. } | Queued::Oneway { id: of, len, .. } => {
                *of == id && left.len() == *len
            }
            Queued::Control { .. } => false,
        }
    }
}

/// The write queue and its counts.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: WriteQueue<Queued>,
    /// Frames in `queue`.
    frames: usize,
    /// Bytes of the frames in `queue`, whole (a partly written one counts
    /// in full until it is done).
    bytes: usize,
    /// Cancel frames in `queue`.
    cancels: usize,
    /// The most cancel frames `queue` may hold.
    max_cancels: usize,
    /// Where the counts are mirrored.
    mirror: Arc<Unsent>,
}

impl Outbox {
    pub fn new(max_cancels: usize, mirror: Arc<Unsent>) -> Outbox {
        Outbox {
            queue: WriteQueue::default(),
            frames: 0,
            bytes: 0,
            cancels: 0,
            max_cancels: max_cancels.max(1),
            mirror,
        }
    }

    /// Queues call `id`'s request frame.
    pub fn request(&mut self, id: u64, frame: Bytes, room: SendPermit) {
        let len = frame.len();
        self.push(
            frame,
            Queued::Request {
                id,
                len,
                _room: room,
            },
        );
    }

    /// Queues a one-way frame (request id `id`); `written` is told once it
    /// is written.
    pub fn oneway(&mut self, id: u64, frame: Bytes, written: WrittenSender, room: SendPermit) {
        let len = frame.len();
        self.push(
            frame,
            Queued::Oneway {
                id,
                len,
                written,
                _room: room,
            },
        );
    }

    fn push(&mut self, frame: Bytes, queued: Queued) {
        self.frames += 1;
        self.bytes += queued.len();
        self.queue.push(frame, queued);
    }

    /// Queues a ping.
    pub fn ping(&mut self) {
        let frame = empty_frame(MessageKind::Ping, 0, 0);
        let len = frame.len();
        self.push(frame, Queued::Control { len, cancel: false });
    }

    /// Queues a credit frame giving the server `count` more items of
    /// streaming call `id` (at most two per stream wait here at a time: a
    /// stream returns credit once half its window is taken).
    pub fn credit(&mut self, id: u64, count: u32) {
        let mut frame = bytes::BytesMut::with_capacity(crate::protocol::HEADER_LEN + 4);
        crate::protocol::FrameHeader {
            serializer: 0,
            kind: MessageKind::Credit,
            status: 0,
            request_id: id,
            body_len: 4,
        }
        .encode_into(&mut frame);
        frame.extend_from_slice(&count.to_be_bytes());
        let frame = frame.freeze();
        let len = frame.len();
        self.push(frame, Queued::Control { len, cancel: false });
    }

    /// Queues a cancel for `id`, unless the queue already holds as many
    /// as it may: the server is not reading them, and a cancel is advice
    /// (the call's own deadline stops it on the server).
    pub fn cancel(&mut self, id: u64) {
        if self.cancels >= self.max_cancels {
            tracing::debug!(
                request_id = id,
                queued = self.cancels,
                "cancel not queued: the server is not reading the cancels already queued"
            );
            return;
        }
        let frame = empty_frame(MessageKind::Cancel, 0, id);
        let len = frame.len();
        self.cancels += 1;
        self.push(frame, Queued::Control { len, cancel: true });
    }

    /// Drops request `id`'s frame if none of it is written yet (its room
    /// goes back); `false` if there is no such frame.
    pub fn drop_unwritten(&mut self, id: u64) -> bool {
        if self.queue.is_empty() {
            return false;
        }
        match self
            .queue
            .remove_first(|left, queued| queued.is_unwritten_request(id, left))
        {
            // A request or one-way frame: its room goes back as it drops.
            Some(queued) => {
                self.frames -= 1;
                self.bytes -= queued.len();
                true
            }
            None => false,
        }
    }

    /// Writes queued frames until the queue is empty or the socket is full.
    pub fn write(&mut self, stream: &mut ClientStream, cx: &mut Context<'_>) -> io::Result<bool> {
        let Outbox {
            queue,
            frames,
            bytes,
            cancels,
            mirror,
            ..
        } = self;
        let writes = stream.write_queued(cx, queue, |queued| {
            *frames -= 1;
            *bytes -= queued.len();
            match queued {
                Queued::Oneway { written, .. } => {
                    let _ = written.send(Ok(()));
                }
                Queued::Control { cancel: true, .. } => *cancels -= 1,
                _ => {}
            }
        })?;
        if writes == 0 {
            return Ok(false);
        }
        mirror.writes.fetch_add(writes, Ordering::Relaxed);
        Ok(true)
    }

    /// Empties the queue: one-way senders hear `error`, all room goes back.
    pub fn fail_all(&mut self, error: &TransportError) {
        for queued in self.queue.drain_tokens() {
            if let Queued::Oneway { written, .. } = queued {
                let _ = written.send(Err(error.clone()));
            }
        }
        self.frames = 0;
        self.bytes = 0;
        self.cancels = 0;
        self.publish();
    }

    /// Bytes of the frames queued (whole).
    pub fn queued_bytes(&self) -> usize {
        self.bytes
    }

    /// Counts a wait for runnable callers before a write (a test hook).
    pub fn note_batch_wait(&self) {
        self.mirror.batch_waits.fetch_add(1, Ordering::Relaxed);
    }

    /// Mirrors the counts for the `Channel`.
    pub fn publish(&self) {
        self.mirror.set(self.frames, self.bytes);
    }
}
