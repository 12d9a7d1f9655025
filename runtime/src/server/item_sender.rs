//! The server's side of a server-streaming call: [`ItemSender`], which a
//! handler sends its items with, and the call's credit ([`StreamCredit`]),
//! which the client's credit frames (message type 9) add to.
//!
//! An item waits for two things before it is queued: a credit (the call
//! starts with [`CREDIT_WINDOW`](crate::protocol::CREDIT_WINDOW); the client gives more as its application
//! takes items), and room in the connection's account (a client that does
//! not read its socket makes the items wait, not pile up). The first item
//! takes the call's response metadata out ahead of it: none can be set
//! after it.

use std::future::poll_fn;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;

use super::connection_shared::ConnShared;
use super::memory::FRAME_OVERHEAD;
use super::respond::Responder;
use super::slots::SlotId;
use crate::codegen::{Field, Reply};
use crate::error::{RpcError, Status, StatusCode, TransportError};
use crate::serializer::Serializer;

/// How often a sender waiting for room looks at the server's pool again
/// (other connections' releases do not wake it).
const POOL_RECHECK: Duration = Duration::from_millis(50);

/// The credit of one server-streaming call: items it may still send, and
/// the sender waiting for more.
#[derive(Debug)]
pub(crate) struct StreamCredit {
    state: Mutex<CreditState>,
}

#[derive(Debug)]
struct CreditState {
    available: u64,
    waiting: Option<Waker>,
    /// The call ended: no item can go any more.
    closed: bool,
}

impl StreamCredit {
    /// A call's credit, starting at `initial`.
    pub fn new(initial: u32) -> Arc<StreamCredit> {
        Arc::new(StreamCredit {
            state: Mutex::new(CreditState {
                available: u64::from(initial),
                waiting: None,
                closed: false,
            }),
        })
    }

    /// Adds `count` credits (a credit frame from the client).
    pub fn grant(&self, count: u32) {
        let waiting = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.available = state.available.saturating_add(u64::from(count));
            state.waiting.take()
        };
        if let Some(waker) = waiting {
            waker.wake();
        }
    }

    /// The call ended (its slot is released): a sender that outlived it
    /// (moved into a task of its own) fails instead of waiting for ever.
    pub fn close(&self) {
        let waiting = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.closed = true;
            state.waiting.take()
        };
        if let Some(waker) = waiting {
            waker.wake();
        }
    }

    /// Takes one credit, or waits for one; `Err` once the call has ended.
    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Result<(), ItemSendError>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.closed {
            Poll::Ready(Err(ItemSendError::CallEnded))
        } else if state.available > 0 {
            state.available -= 1;
            Poll::Ready(Ok(()))
        } else {
            state.waiting = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// A credit taken for an item not yet queued: given back if the item does
/// not go (its `send` was dropped while waiting for room).
struct TakenCredit<'a> {
    credit: &'a StreamCredit,
    used: bool,
}

impl Drop for TakenCredit<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.credit.grant(1);
        }
    }
}

/// Why an item could not be sent. Converts into the `RpcError` of any
/// method, so a handler can `?` it.
#[derive(Debug, thiserror::Error)]
pub enum ItemSendError {
    /// The item could not be encoded in the call's serializer.
    #[error("a stream item could not be encoded: {0}")]
    Encode(TransportError),
    /// The item's frame is larger than the server's frame size limit.
    #[error("a stream item is too large: {0}")]
    TooLarge(String),
    /// The connection closed (the stream cannot go on).
    #[error("the connection closed while the stream was sending")]
    ConnectionClosed,
    /// The call has ended (the sender was kept past its handler's end).
    #[error("the streaming call has ended")]
    CallEnded,
}

impl<E> From<ItemSendError> for RpcError<E> {
    /// Status 8 for an item that cannot be encoded, 10 for one too large;
    /// a closed connection as a transport error (nobody hears the answer).
    fn from(error: ItemSendError) -> RpcError<E> {
        match error {
            ItemSendError::Encode(transport) => RpcError::Transport(transport),
            ItemSendError::TooLarge(message) => RpcError::Status(Status::new(
                StatusCode::FrameTooLarge,
                format!("a stream item is too large: {message}"),
            )),
            ItemSendError::ConnectionClosed | ItemSendError::CallEnded => {
                RpcError::Transport(TransportError::ConnectionLost(error.to_string()))
            }
        }
    }
}

/// Sends the items of a server-streaming call (`stream T` result) to the
/// client: one [`send`](ItemSender::send) per item, in order. The handler
/// ends the stream by returning: `Ok(())` after the last item, or an error
/// (a declared error arrives typed after the items before it).
///
/// `send` waits while the client has not given credit for another item
/// (flow control: a slow consumer makes the handler wait), and while the
/// connection holds its byte limit. When the call is cancelled or its
/// deadline passes, the handler is dropped; a sender moved elsewhere then
/// fails with [`ItemSendError::CallEnded`]. `send` may be cancelled (in a
/// `select!` or a timeout): an item not queued gives its credit back.
pub struct ItemSender<T> {
    inner: SenderInner,
    _item: PhantomData<fn(T)>,
}

impl<T> std::fmt::Debug for ItemSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemSender")
            .field("request_id", &self.inner.responder.request_id())
            .field("sent", &self.inner.sent)
            .finish_non_exhaustive()
    }
}

/// What an [`ItemSender`] needs, whatever its item type.
struct SenderInner {
    conn: Arc<ConnShared>,
    slot: SlotId,
    responder: Responder,
    serializer: Serializer,
    credit: Arc<StreamCredit>,
    /// Items sent so far.
    sent: u64,
}

impl<T: Field> ItemSender<T> {
    pub(crate) fn new(
        conn: Arc<ConnShared>,
        slot: SlotId,
        responder: Responder,
        serializer: Serializer,
        credit: Arc<StreamCredit>,
    ) -> ItemSender<T> {
        ItemSender {
            inner: SenderInner {
                conn,
                slot,
                responder,
                serializer,
                credit,
                sent: 0,
            },
            _item: PhantomData,
        }
    }

    /// Sends one item, once the client has given credit for it and the
    /// connection has room. Fails if the item cannot be encoded, is larger
    /// than the server's frame size limit (status 10), or the connection
    /// is closed; with `?` the handler then ends with that error.
    pub async fn send(&mut self, item: T) -> Result<(), ItemSendError> {
        let frame = self
            .inner
            .responder
            .item(self.inner.serializer, &Reply::new(item))?;
        self.inner.queue(frame).await
    }

    /// Items sent so far.
    pub fn sent(&self) -> u64 {
        self.inner.sent
    }
}

impl SenderInner {
    /// Queues an item frame: after the call's response metadata if it is
    /// the first, once the connection has room for it.
    async fn queue(&mut self, frame: Bytes) -> Result<(), ItemSendError> {
        poll_fn(|cx| self.credit.poll_take(cx)).await?;
        let mut taken = TakenCredit {
            credit: &self.credit,
            used: false,
        };
        let conn = &self.conn;
        if !conn.slots.is_live(self.slot) {
            return Err(ItemSendError::CallEnded);
        }
        if self.sent == 0 {
            let (metadata, stale) = conn.slots.close_response_metadata(self.slot);
            if let Some(stale) = stale {
                conn.release(stale.heap_bytes());
            }
            if let Some(metadata) = metadata {
                conn.release(metadata.heap_bytes());
                if let Some(frame) = self.responder.response_metadata(&metadata) {
                    conn.send_control(frame);
                }
            }
        }
        let cost = frame.len() + FRAME_OVERHEAD;
        conn.memory
            .charge_when_room(
                &conn.env.memory,
                cost,
                || conn.outbox.unwritten() == 0,
                POOL_RECHECK,
            )
            .await;
        if conn.outbox.push(frame).is_err() {
            conn.release(cost);
            return Err(ItemSendError::ConnectionClosed);
        }
        taken.used = true;
        self.sent += 1;
        Ok(())
    }
}

impl Responder {
    /// A stream item frame (message type 7) carrying `item`.
    pub(crate) fn item<T: Field>(
        &self,
        serializer: Serializer,
        item: &Reply<T>,
    ) -> Result<Bytes, ItemSendError> {
        let mut builder = self.frame(
            crate::protocol::MessageKind::StreamItem,
            serializer.size_hint(item),
        );
        serializer
            .encode(item, builder.body_mut())
            .map_err(ItemSendError::Encode)?;
        builder
            .finish(self.max_frame_size())
            .map_err(|too_large| ItemSendError::TooLarge(too_large.to_string()))
    }
}
