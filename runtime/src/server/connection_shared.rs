//! What one connection's reader, writer and handler tasks share.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::respond::Responder;
use super::shared::ServerShared;
use super::slots::CallSlots;
use crate::tls::PeerIdentity;

/// The state of one connection.
pub(crate) struct ConnShared {
    /// The server this connection belongs to.
    pub server: Arc<ServerShared>,
    /// Encoded frames for the writer task.
    tx: mpsc::Sender<Bytes>,
    /// The calls in flight.
    pub slots: CallSlots,
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's certificate identity (mutual TLS), shared by its calls.
    pub peer_identity: Option<Arc<PeerIdentity>>,
}

impl ConnShared {
    pub fn new(
        server: Arc<ServerShared>,
        tx: mpsc::Sender<Bytes>,
        peer: SocketAddr,
        peer_identity: Option<Arc<PeerIdentity>>,
    ) -> ConnShared {
        ConnShared {
            server,
            tx,
            slots: CallSlots::default(),
            peer,
            peer_identity,
        }
    }

    /// Queues a frame for the writer, waiting for room. A closed writer
    /// (the connection is gone) drops the frame.
    pub async fn send(&self, frame: Bytes) {
        // An error means the writer is gone: nobody can receive the frame.
        let _ = self.tx.send(frame).await;
    }

    /// Queues a frame from synchronous code: at once if there is room,
    /// else from a small task that waits for room.
    pub fn send_now(&self, frame: Bytes) {
        match self.tx.try_send(frame) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(frame)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(frame).await;
                });
            }
        }
    }
}

/// Holds one call's in-flight slot: dropping it (when the handler task ends,
/// is aborted, or the call is rejected) frees the slot.
pub(crate) struct SlotGuard {
    /// The connection.
    pub conn: Arc<ConnShared>,
    /// The call's request id.
    pub request_id: u64,
    /// The slot's token.
    pub token: u64,
}

impl SlotGuard {
    /// Takes the slot reserved with `token`, for a call already counted in
    /// flight on the server ([`ServerShared::try_call_started`](super::shared::ServerShared::try_call_started)).
    pub fn new(conn: Arc<ConnShared>, request_id: u64, token: u64) -> SlotGuard {
        SlotGuard {
            conn,
            request_id,
            token,
        }
    }

    /// Builds the answers to this call.
    pub fn responder(&self, serializer: u8) -> Responder {
        Responder::new(
            self.request_id,
            serializer,
            self.conn.server.config.max_frame_size,
        )
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.conn.server.call_ended();
        self.conn.slots.release(self.request_id, self.token);
    }
}
