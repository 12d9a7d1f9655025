//! The client's side of a server-streaming call: [`ItemStream`], a
//! `futures_core::Stream` of its typed items whose last element is the
//! failure or declared error that ended it (a call that ends well just
//! ends), and [`BlockingItems`], the same as an `Iterator` for plain
//! threads.
//!
//! The call opens on the stream's first poll. Credit goes back to the
//! server as the application takes items (half a window at a time, or
//! whenever it has taken every item that came), so a consumer that stops
//! taking stops the server. Dropping the stream before its end cancels the
//! call.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::time::{Instant, Sleep};

use super::call_modes::blocking_would_stall_a_runtime;
use super::channel::Channel;
use super::command::RawResponse;
use super::method::{CallOptions, MethodDescriptor};
use super::pool::StreamHandle;
use super::raw::RawReply;
use super::request::{Encoded, Typed};
use super::response_metadata::ResponseMetadataCapture;
use crate::codegen::{Field, Reply};
use crate::error::{RpcError, Status, StatusCode, TransportError};
use crate::protocol::CREDIT_WINDOW;
use crate::protocol::status_message;
use crate::serializer::{DeclaredError, Serializer, WireMessage};

/// The opening of a stream: a boxed future that owns what it needs.
type Opening =
    Pin<Box<dyn Future<Output = Result<(StreamHandle, Option<Instant>), RpcError>> + Send>>;

/// What a stream's call gives, whatever its item type.
enum Event {
    /// An item, still encoded (its item message).
    Item(Bytes),
    /// The call's end: its response (the items before it were all given),
    /// or why there is none.
    End(Result<RawResponse, TransportError>),
    /// The call never opened, or its deadline passed before its end.
    Failed(RpcError),
}

/// A server-streaming call, untyped: opening, items, credit, deadline,
/// the end. [`ItemStream`] and [`RawItemStream`] decode what it gives.
struct StreamCore {
    state: State,
    capture: Option<ResponseMetadataCapture>,
    /// Items taken whose credit has not been given back yet.
    taken: u32,
}

enum State {
    Opening(Opening),
    Open {
        handle: StreamHandle,
        deadline: Option<Pin<Box<Sleep>>>,
        /// The call's end, once it came, with the items before it still to
        /// take.
        end: Option<Result<RawResponse, TransportError>>,
    },
    Done,
}

impl StreamCore {
    fn opening(opening: Opening, capture: Option<ResponseMetadataCapture>) -> StreamCore {
        if let Some(capture) = &capture {
            capture.record(None);
        }
        StreamCore {
            state: State::Opening(opening),
            capture,
            taken: 0,
        }
    }

    fn open(
        handle: StreamHandle,
        deadline: Option<Instant>,
        capture: Option<ResponseMetadataCapture>,
    ) -> StreamCore {
        if let Some(capture) = &capture {
            capture.record(None);
        }
        StreamCore {
            state: State::Open {
                handle,
                deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
                end: None,
            },
            capture,
            taken: 0,
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn name(&self) -> &'static str {
        match self.state {
            State::Opening(_) => "opening",
            State::Open { .. } => "open",
            State::Done => "done",
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(None),
                State::Opening(opening) => match opening.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok((handle, deadline))) => {
                        self.state = State::Open {
                            handle,
                            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
                            end: None,
                        };
                    }
                    Poll::Ready(Err(error)) => {
                        self.state = State::Done;
                        return Poll::Ready(Some(Event::Failed(error)));
                    }
                },
                State::Open {
                    handle,
                    deadline,
                    end,
                } => {
                    if let Poll::Ready(item) = handle.poll_item(cx) {
                        self.taken += 1;
                        // After the end, credit would go nowhere.
                        if self.taken >= CREDIT_WINDOW / 2 && end.is_none() {
                            handle.give_credit(std::mem::take(&mut self.taken));
                        }
                        return Poll::Ready(Some(Event::Item(item)));
                    }
                    if let Some(mut answer) = end.take() {
                        self.state = State::Done;
                        if let Some(capture) = &self.capture {
                            capture.record(
                                answer
                                    .as_mut()
                                    .ok()
                                    .map(|response| std::mem::take(&mut response.metadata)),
                            );
                        }
                        return Poll::Ready(Some(Event::End(answer)));
                    }
                    // Every item taken: give the rest of the credit back
                    // (a consumer that keeps up never starves the server).
                    if self.taken > 0 {
                        handle.give_credit(std::mem::take(&mut self.taken));
                    }
                    match handle.poll_end(cx) {
                        // Items sent before the end have all arrived now:
                        // take them first.
                        Poll::Ready(answer) => *end = Some(answer),
                        Poll::Pending => {
                            let passed = deadline
                                .as_mut()
                                .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                            if !passed {
                                return Poll::Pending;
                            }
                            self.state = State::Done;
                            return Poll::Ready(Some(Event::Failed(RpcError::Status(
                                Status::deadline_exceeded(
                                    "the stream's deadline passed before its end",
                                ),
                            ))));
                        }
                    }
                }
            }
        }
    }
}

/// The items of a server-streaming call (`stream T` result), as a
/// `futures_core::Stream`: `Ok(item)` for each item in order, then, if the
/// call did not end well, one `Err` (its declared error, a status, or a
/// transport failure), then the end. Its timeout covers the whole stream.
///
/// ```text
/// let mut counts = greeter.count(3, 10);
/// while let Some(item) = counts.next().await {
///     println!("{}", item?);
/// }
/// ```
pub struct ItemStream<T, E> {
    core: StreamCore,
    serializer: Serializer,
    _types: PhantomData<fn() -> (T, E)>,
}

impl<T, E> std::fmt::Debug for ItemStream<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemStream")
            .field("state", &self.core.name())
            .field("serializer", &self.serializer)
            .finish_non_exhaustive()
    }
}

impl<T: Field, E: DeclaredError> ItemStream<T, E> {
    /// Calls `method` with `args` through `channel`, as a server-streaming
    /// call; it opens on the first poll.
    pub fn open<A: WireMessage>(
        channel: &Channel,
        method: &'static MethodDescriptor<'static>,
        args: A,
        options: CallOptions,
    ) -> ItemStream<T, E> {
        let serializer = options.serializer;
        let capture = options.response_metadata.clone();
        let channel = channel.clone();
        let opening: Opening = Box::pin(async move {
            channel
                .caller()
                .open_stream(method, &Typed(&args), &options)
                .await
        });
        ItemStream {
            core: StreamCore::opening(opening, capture),
            serializer,
            _types: PhantomData,
        }
    }

    /// The next item, or the call's failure, or `None` at its end.
    pub async fn next(&mut self) -> Option<Result<T, RpcError<E>>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, RpcError<E>>>> {
        let event = match ready!(self.core.poll_event(cx)) {
            Some(event) => event,
            None => return Poll::Ready(None),
        };
        Poll::Ready(match event {
            Event::Item(item) => Some(
                self.serializer
                    .decode::<Reply<T>>(item)
                    .map(|reply| reply.value)
                    .map_err(RpcError::Transport),
            ),
            Event::End(answer) => self.outcome(answer).map(Err),
            Event::Failed(error) => Some(Err(error.widen())),
        })
    }

    /// The end of the call as the stream's last element: `None` if it
    /// ended well.
    fn outcome(&self, answer: Result<RawResponse, TransportError>) -> Option<RpcError<E>> {
        let response = match answer {
            Ok(response) => response,
            Err(error) => return Some(RpcError::Transport(error)),
        };
        match StatusCode::from_u8(response.status) {
            StatusCode::Ok => None,
            StatusCode::DeclaredError => {
                Some(match E::decode_declared(self.serializer, response.body) {
                    Ok(declared) => RpcError::Declared(declared),
                    Err(error) => RpcError::Transport(error),
                })
            }
            code => Some(RpcError::Status(Status::new(
                code,
                status_message(&response.body),
            ))),
        }
    }
}

/// The items of a server-streaming call made with
/// [`Channel::open_stream_raw`], still encoded: `Ok(RawReply::Ok(item))`
/// for each item (its item message, `{"value": ..}` in JSON), then, if the
/// call did not end well, `Ok(RawReply::Declared(error))` or one `Err`,
/// then the end.
pub struct RawItemStream {
    core: StreamCore,
}

impl std::fmt::Debug for RawItemStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawItemStream")
            .field("state", &self.core.name())
            .finish_non_exhaustive()
    }
}

impl RawItemStream {
    /// The next item, the call's declared error or failure, or `None` at
    /// its end.
    pub async fn next(&mut self) -> Option<Result<RawReply, RpcError>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<RawReply, RpcError>>> {
        let event = match ready!(self.core.poll_event(cx)) {
            Some(event) => event,
            None => return Poll::Ready(None),
        };
        Poll::Ready(match event {
            Event::Item(item) => Some(Ok(RawReply::Ok(item))),
            Event::End(Ok(response)) => match StatusCode::from_u8(response.status) {
                StatusCode::Ok => None,
                StatusCode::DeclaredError => Some(Ok(RawReply::Declared(response.body))),
                code => Some(Err(RpcError::Status(Status::new(
                    code,
                    status_message(&response.body),
                )))),
            },
            Event::End(Err(error)) => Some(Err(RpcError::Transport(error))),
            Event::Failed(error) => Some(Err(error)),
        })
    }
}

impl futures_core::Stream for RawItemStream {
    type Item = Result<RawReply, RpcError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

impl Channel {
    /// Opens a server-streaming call of `method` with `payload`, its args
    /// message already encoded in `options.serializer` (for tools, as
    /// [`Channel::call_raw`] is): returns once the request is handed to a
    /// connection, with the stream of its items.
    pub async fn open_stream_raw(
        &self,
        method: &MethodDescriptor<'_>,
        payload: &[u8],
        options: &CallOptions,
    ) -> Result<RawItemStream, RpcError> {
        let capture = options.response_metadata.clone();
        let (handle, deadline) = self
            .caller()
            .open_stream(method, &Encoded(payload), options)
            .await?;
        Ok(RawItemStream {
            core: StreamCore::open(handle, deadline, capture),
        })
    }
}

impl<T: Field, E: DeclaredError> futures_core::Stream for ItemStream<T, E> {
    type Item = Result<T, RpcError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

impl<T, E> Unpin for ItemStream<T, E> {}

/// The items of a server-streaming call as an `Iterator`, for threads that
/// may block (plain threads, and those of `spawn_blocking`): each `next`
/// blocks until an item, the failure, or the end comes. On a thread that
/// runs async code it yields one
/// [`TransportError::BlockingInAsyncContext`] instead of stalling.
pub struct BlockingItems<T, E> {
    stream: ItemStream<T, E>,
    runtime: Handle,
}

impl<T, E> std::fmt::Debug for BlockingItems<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingItems")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl<T: Field, E: DeclaredError> BlockingItems<T, E> {
    /// `stream`, driven with `runtime`.
    pub fn new(stream: ItemStream<T, E>, runtime: Handle) -> BlockingItems<T, E> {
        BlockingItems { stream, runtime }
    }
}

impl<T: Field, E: DeclaredError> Iterator for BlockingItems<T, E> {
    type Item = Result<T, RpcError<E>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.stream.core.is_done() {
            return None;
        }
        if blocking_would_stall_a_runtime() {
            self.stream.core.state = State::Done;
            return Some(Err(TransportError::BlockingInAsyncContext.into()));
        }
        let stream = &mut self.stream;
        self.runtime.block_on(stream.next())
    }
}
