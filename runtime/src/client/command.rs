//! What callers send to the connection task, and what they get back.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::answers::{Answers, Ticket};
use super::send_room::SendPermit;
use super::stream_items::StreamItems;
use crate::context::Metadata;
use crate::error::TransportError;

/// A response as the connection task hands it to its caller, which
/// decodes it (off the connection task).
#[derive(Debug)]
pub(crate) struct RawResponse {
    /// The status byte.
    pub status: u8,
    /// The body: a message (status 0 or 1) or UTF-8 text.
    pub body: Bytes,
    /// The response metadata the server sent before it (empty if none).
    pub metadata: Metadata,
}

/// Told once a one-way frame is written.
pub(crate) type WrittenSender = oneshot::Sender<Result<(), TransportError>>;

/// A request to the connection task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send `frame` and route the response with `id` to `ticket`'s slot.
    Call {
        /// The request id in `frame`.
        id: u64,
        /// The whole encoded request frame.
        frame: Bytes,
        /// The call's slot in the connection's [`Answers`].
        ticket: Ticket,
        /// The frame's room in the connection's send queue.
        room: SendPermit,
    },
    /// Send a one-way `frame`; tell `written` once it is on the socket.
    Oneway {
        /// The request id in `frame`.
        id: u64,
        /// The whole encoded one-way frame.
        frame: Bytes,
        /// Told once the frame is written.
        written: WrittenSender,
        /// The frame's room in the connection's send queue.
        room: SendPermit,
    },
    /// Send `frame`, which opens a server-streaming call: route its items
    /// to `items` and its response (the end of the call) to `ticket`'s
    /// slot.
    Stream {
        /// The request id in `frame`.
        id: u64,
        /// The whole encoded request frame.
        frame: Bytes,
        /// The call's slot in the connection's [`Answers`].
        ticket: Ticket,
        /// The frame's room in the connection's send queue.
        room: SendPermit,
        /// Where the call's items go.
        items: Arc<StreamItems>,
    },
    /// The application of streaming call `id` took `count` items: give the
    /// server as much credit.
    Credit {
        /// The request id.
        id: u64,
        /// Items taken.
        count: u32,
    },
    /// The caller gave up on `id` (a call or a one-way send): drop its
    /// frame if none of it is written yet; otherwise forget the call and
    /// tell the server.
    Cancel {
        /// The request id.
        id: u64,
    },
}

impl Command {
    /// Nothing to do any more: a cancel, or a call whose caller is gone.
    pub fn is_abandoned(&self, answers: &Answers) -> bool {
        match self {
            Command::Call { ticket, .. } | Command::Stream { ticket, .. } => {
                !answers.is_waiting(*ticket)
            }
            Command::Oneway { written, .. } => written.is_closed(),
            Command::Cancel { .. } | Command::Credit { .. } => true,
        }
    }

    /// Completes the command with `error` (it could not be carried).
    pub fn fail(self, answers: &Answers, error: TransportError) {
        match self {
            Command::Call { ticket, .. } | Command::Stream { ticket, .. } => {
                answers.answer(ticket, Err(error));
            }
            Command::Oneway { written, .. } => {
                let _ = written.send(Err(error));
            }
            Command::Cancel { .. } | Command::Credit { .. } => {}
        }
    }
}
