//! What one connection's reader, writer and handler tasks share: its
//! outbox, the bytes it holds, and its calls in flight; the one path every
//! frame the server sends takes; and the guard a call holds its slot with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;

use super::environment::ServerEnv;
use super::memory::{Charge, ConnMemory, FRAME_OVERHEAD};
use super::respond::Responder;
use super::response_metadata::send_response_metadata;
use super::slots::{CallSlots, SlotId};
use crate::error::StatusCode;
use crate::protocol::outbox::Outbox;
use crate::tls::PeerIdentity;

/// The state of one connection.
pub(crate) struct ConnShared {
    /// What the connection and its calls need from their server.
    pub env: Arc<ServerEnv>,
    /// Encoded frames for the writer task.
    pub outbox: Outbox,
    /// The bytes the connection holds (see `memory.rs`).
    pub memory: Arc<ConnMemory>,
    /// The slots of the calls in flight (the table of which is free, and
    /// of the request ids, is the connection task's own: `SlotTable`).
    pub slots: CallSlots,
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's certificate identity (mutual TLS), shared by its calls.
    pub peer_identity: Option<Arc<PeerIdentity>>,
    /// Set while the writer waits for the socket to take bytes (the peer
    /// is not reading, or not fast enough), cleared when bytes move.
    writer_waiting: AtomicBool,
    /// Calls whose handler did not finish when first polled on the reader
    /// and now runs in a task of its own, not yet ended: producers of
    /// answers the writer may wait one turn for.
    call_tasks: AtomicUsize,
    /// This connection in the server's register of bytes held.
    id: u64,
}

impl ConnShared {
    pub fn new(
        env: Arc<ServerEnv>,
        peer: SocketAddr,
        peer_identity: Option<Arc<PeerIdentity>>,
    ) -> Arc<ConnShared> {
        let config = &env.config;
        let memory = Arc::new(ConnMemory::new(
            config.reserved_bytes_per_connection,
            config.connection_memory_limit(),
        ));
        let id = env.register(&memory);
        Arc::new(ConnShared {
            env,
            outbox: Outbox::default(),
            memory,
            slots: CallSlots::default(),
            peer,
            peer_identity,
            writer_waiting: AtomicBool::new(false),
            call_tasks: AtomicUsize::new(0),
            id,
        })
    }

    /// The connection's id in its server's registers.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Charges `bytes` to the connection, however many it already holds
    /// (bytes that were read, a request frame).
    pub fn charge_forced(&self, bytes: usize) {
        self.memory.charge(&self.env.memory, bytes, Charge::Forced);
    }

    /// Charges `bytes` that stay until the connection is gone (its table
    /// of calls), against the pool but not the connection's own limit.
    pub fn charge_fixed(&self, bytes: usize) {
        self.memory.charge_fixed(&self.env.memory, bytes);
    }

    /// Releases `bytes` charged to the connection.
    pub fn release(&self, bytes: usize) {
        self.memory.release(&self.env.memory, bytes);
    }

    /// Whether the writer is waiting for the socket to take bytes: the
    /// peer is not taking its answers (as opposed to answers just queued,
    /// which the writer takes at once).
    pub fn writer_waiting(&self) -> bool {
        self.writer_waiting.load(Ordering::Acquire)
    }

    /// The writer started or stopped waiting for the socket.
    pub fn set_writer_waiting(&self, waiting: bool) {
        self.writer_waiting.store(waiting, Ordering::Release);
    }

    /// Whether some call's handler runs in a task of its own.
    pub fn call_tasks_running(&self) -> bool {
        self.call_tasks.load(Ordering::Relaxed) > 0
    }

    /// Counts a call task until the returned guard is dropped.
    pub fn call_task_started(self: &Arc<Self>) -> CallTaskGuard {
        self.call_tasks.fetch_add(1, Ordering::Relaxed);
        CallTaskGuard(Arc::clone(self))
    }

    /// Queues a short frame the server owes the peer (a pong, the answer to
    /// a request it refused, a status for a call it stopped). Always
    /// queued: it is charged even past the connection's limit, and the
    /// reader, which produces almost all of them, stops reading once the
    /// connection is over it. A closed connection drops it.
    pub fn send_control(&self, frame: Bytes) {
        let cost = frame.len() + FRAME_OVERHEAD;
        self.charge_forced(cost);
        if self.outbox.push(frame).is_err() {
            self.release(cost);
        }
    }

    /// Queues a call's answer if the connection has room for it: within
    /// its limit and the server's pool, or, for an answer larger than the
    /// limit, within the pool once nothing else is queued. An answer that
    /// does not fit is replaced by status 18 (the peer is not taking its
    /// answers, or the server's buffers are full), so the connection's
    /// bytes stay bounded however large the answers its calls produce.
    ///
    /// `alone`: the outbox held nothing before the call's own response
    /// metadata frame went in (the answer may then pass the connection's
    /// limit, within the pool).
    pub fn send_answer(&self, frame: Bytes, responder: &Responder, alone: bool) {
        let cost = frame.len() + FRAME_OVERHEAD;
        let pool = &self.env.memory;
        let check = if alone {
            Charge::PoolOnly
        } else {
            Charge::Bounded
        };
        if !self.memory.charge(pool, cost, check) {
            tracing::debug!(
                peer = %self.peer,
                bytes = frame.len(),
                held = self.memory.charged(),
                "no room for an answer; answering status 18"
            );
            let message = format!(
                "the answer ({} bytes) does not fit this connection's buffers: the client is not reading its answers fast enough, or the server's buffers are full",
                frame.len()
            );
            self.send_control(responder.status(StatusCode::ResourceExhausted, &message));
            return;
        }
        if self.outbox.push(frame).is_err() {
            self.release(cost);
        }
    }
}

impl ConnShared {
    /// `bytes` of answers were written, completing `frames` whole frames
    /// (the bytes of a frame written in part count, its overhead only once
    /// it is whole): they leave the outbox's unwritten count and the
    /// connection's account.
    pub fn answers_written(&self, bytes: usize, frames: usize) {
        self.outbox.written(bytes);
        self.release(bytes + frames * FRAME_OVERHEAD);
    }

    /// Closes the outbox and releases the frames the writer never took
    /// (once the writer has ended).
    pub fn release_unsent(&self) {
        let (mut bytes, mut frames) = (0usize, 0usize);
        for frame in self.outbox.close_and_drain() {
            bytes += frame.len();
            frames += 1;
        }
        self.release(bytes + frames * FRAME_OVERHEAD);
    }
}

impl Drop for ConnShared {
    fn drop(&mut self) {
        self.env.unregister(self.id);
        // The slot table goes with the connection.
        self.memory
            .release_fixed(&self.env.memory, self.slots.footprint());
        // Nothing refers to the connection any more: whatever is still
        // charged to it would be lost to the pool for good.
        let left = self.memory.charged();
        if left > 0 {
            tracing::warn!(peer = %self.peer, bytes = left, "a closed connection still had bytes charged; released");
            self.release(left);
        }
    }
}

/// Counts one running call task (see [`ConnShared::call_task_started`]).
pub(crate) struct CallTaskGuard(Arc<ConnShared>);

impl Drop for CallTaskGuard {
    fn drop(&mut self) {
        self.0.call_tasks.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Holds one call's in-flight slot and the bytes charged for it (its
/// request frame, and what [`charge`](SlotGuard::charge) added): dropping
/// it (when the handler task ends, is aborted, or the call is rejected)
/// frees both; answering the call releases the bytes first.
pub(crate) struct SlotGuard {
    /// The connection.
    pub conn: Arc<ConnShared>,
    /// The call's request id.
    pub request_id: u64,
    /// The call's slot.
    pub slot: SlotId,
    /// Bytes still charged to the connection for the call.
    charged: usize,
    /// Whether the call's entry was claimed to answer it.
    claimed: bool,
}

impl SlotGuard {
    /// Takes the reserved `slot`, for a call already admitted by the
    /// server ([`Admission::try_start`](super::admission::Admission::try_start)),
    /// with its request frame's `charged` bytes.
    pub fn new(conn: Arc<ConnShared>, request_id: u64, slot: SlotId, charged: usize) -> SlotGuard {
        SlotGuard {
            conn,
            request_id,
            slot,
            charged,
            claimed: false,
        }
    }

    /// Charges `bytes` more to the connection for this call (what the call
    /// holds besides its request frame: its task, its metadata's copy),
    /// released with the rest. Forced, like the frame: the bytes exist.
    pub fn charge(&mut self, bytes: usize) {
        self.conn.charge_forced(bytes);
        self.charged += bytes;
    }

    /// Builds the answers to this call.
    pub fn responder(&self, serializer: u8) -> Responder {
        Responder::new(
            self.request_id,
            serializer,
            self.conn.env.config.max_frame_size,
        )
    }

    /// Whether the call may still be answered (it was not cancelled, cut
    /// or answered); claims the answer if so. The request's bytes are
    /// released then: the answer takes their place.
    fn claim(&mut self) -> bool {
        if self.claimed {
            return false;
        }
        self.claimed = true;
        self.conn.release(std::mem::take(&mut self.charged));
        self.conn.slots.claim(self.slot)
    }

    /// Answers the call with a handler's answer (see
    /// [`ConnShared::send_answer`]), unless it was cancelled or cut.
    /// The response metadata the handler set goes just before it.
    pub fn answer(&mut self, frame: Bytes, responder: &Responder) {
        if self.claim() {
            // Whether the answer goes alone is decided before its own
            // metadata frame is queued ahead of it.
            let alone = self.conn.outbox.unwritten() == 0;
            send_response_metadata(&self.conn, self.slot, responder);
            self.conn.send_answer(frame, responder, alone);
        }
    }

    /// Ends a streaming call with its answer (after its metadata, if no
    /// item took it out), charged past the connection's limit like a
    /// control frame, unless the call was cancelled or cut.
    pub fn answer_stream_end(&mut self, frame: Bytes, responder: &Responder) {
        if self.claim() {
            send_response_metadata(&self.conn, self.slot, responder);
            self.conn.send_control(frame);
        }
    }

    /// Answers the call with a short status frame, unless it was cancelled
    /// or cut.
    pub fn answer_status(&mut self, frame: Bytes) {
        if self.claim() {
            self.conn.send_control(frame);
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let conn = &self.conn;
        conn.release(self.charged);
        conn.env.admission.end();
        let released = conn.slots.release(self.slot);
        // Metadata of a call that was stopped, or answered without it.
        if let Some(metadata) = released.response_metadata {
            conn.release(metadata.heap_bytes());
        }
        if released.last {
            conn.env.admission.connection_idle();
        }
    }
}
