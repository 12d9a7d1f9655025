//! One request handed to a service: [`ServiceHandler`] and [`IncomingCall`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use pin_project_lite::pin_project;
use tokio::task::JoinHandle;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

use super::connection_shared::{ConnShared, SlotGuard};
use super::environment::ServerEnv;
use super::item_sender::{ItemSender, StreamCredit};
use super::respond::Responder;
use super::response_metadata::ResponseMetadataSlot;
use crate::catch_unwind::{Guarded, Interrupted, guard_deadline, run_guarded};
use crate::codegen::{Field, Reply};
use crate::context::{CallContext, Metadata, with_caller_deadline};
use crate::error::{NoDeclaredError, RpcError, StatusCode, TransportError};
use crate::protocol::CREDIT_WINDOW;
use crate::protocol::Utf8Bytes;
use crate::serializer::{DeclaredError, Serializer, WireMessage};

/// A service the server serves: generated code implements it for each IDL
/// service (`GreeterServer<T>`), and it can be written by hand.
pub trait ServiceHandler: Send + Sync + 'static {
    /// The service's wire name (`hello.Greeter`).
    fn wire_name(&self) -> &'static str;

    /// Routes one call by [`IncomingCall::method`]; must consume the call
    /// (serve it or reject it). Runs on the connection's reader: it must not
    /// block. The serve methods poll the handler once right there and
    /// spawn it as a task only if it is not done: what a handler does until
    /// it first has to wait (an `.await` on something not ready yet) also
    /// runs on the reader, and holds up the connection's other requests
    /// meanwhile. Work of microseconds is fine; a handler that computes for
    /// longer can start with `tokio::task::yield_now().await` to run as a
    /// task from there on, and blocking work belongs in `spawn_blocking`.
    fn dispatch(&self, call: IncomingCall);

    /// The `.rpc` sources the service was generated from, for server
    /// reflection: generated adapters answer the sources idlc embedded
    /// (unless it was told not to); `None` (the default) for handlers
    /// written by hand.
    fn idl(&self) -> Option<&'static crate::codegen::ServiceIdl> {
        None
    }
}

/// One request on its way to a handler.
///
/// It must be consumed by one of [`serve_unary`](IncomingCall::serve_unary),
/// [`serve_oneway`](IncomingCall::serve_oneway) or
/// [`reject_unknown_method`](IncomingCall::reject_unknown_method); a call
/// dropped without being served is answered status 8.
pub struct IncomingCall {
    /// Taken by the method that consumes the call; `None` afterwards.
    inner: Option<CallParts>,
}

impl std::fmt::Debug for IncomingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("IncomingCall");
        if let Some(inner) = &self.inner {
            debug
                .field("request_id", &inner.slot.request_id)
                .field("method", &inner.method)
                .field("serializer", &inner.serializer)
                .field("oneway", &inner.oneway)
                .field("payload_len", &inner.payload.len());
        }
        debug.finish_non_exhaustive()
    }
}

/// The parts of a call the reader has checked.
pub(crate) struct CallParts {
    pub service: &'static str,
    pub method: Utf8Bytes,
    pub serializer: Serializer,
    /// A one-way request (message type 3): never answered.
    pub oneway: bool,
    pub payload: Bytes,
    pub metadata: Metadata,
    pub deadline: Option<Instant>,
    pub slot: SlotGuard,
}

impl IncomingCall {
    pub(crate) fn new(parts: CallParts) -> IncomingCall {
        IncomingCall { inner: Some(parts) }
    }

    /// The method's wire name.
    pub fn method(&self) -> &str {
        self.inner
            .as_ref()
            .map_or("", |inner| inner.method.as_str())
    }

    /// The serializer of the request (and of its answer).
    pub fn serializer(&self) -> Serializer {
        self.inner
            .as_ref()
            .map_or_else(Serializer::default, |inner| inner.serializer)
    }

    /// Runs the handler (polled once inline, then as a task if it is not
    /// done): decodes `Args` (status 4 on failure),
    /// runs the handler and answers: `Ok` -> status 0 with the reply;
    /// `Err(RpcError::Declared(e))` -> status 1 with `e`;
    /// `Err(RpcError::Status(s))` -> `s.code()` with its message;
    /// `Err(RpcError::Transport(t))` -> its [`RpcError::code`] (status 8,
    /// or 6 for [`TransportError::SendQueueFull`], a deadline that passed)
    /// with its message.
    ///
    /// A panicking handler is answered status 8 and the server keeps
    /// serving. If the request carried a timeout, the handler is stopped
    /// when it passes and status 6 is answered then. A one-way request
    /// served this way runs the handler and answers nothing.
    pub fn serve_unary<Args, Reply, E, F, Fut>(self, handler: F)
    where
        Args: WireMessage,
        Reply: WireMessage,
        E: DeclaredError,
        F: FnOnce(CallContext, Args) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Reply, RpcError<E>>> + Send + 'static,
    {
        self.serve_answered(false, handler);
    }

    /// [`serve_unary`](Self::serve_unary)'s work, also for the end of a
    /// server stream (`stream`: its end is queued like a control frame).
    #[inline]
    fn serve_answered<Args, Reply, E, F, Fut>(mut self, stream: bool, handler: F)
    where
        Args: WireMessage,
        Reply: WireMessage,
        E: DeclaredError,
        F: FnOnce(CallContext, Args) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Reply, RpcError<E>>> + Send + 'static,
    {
        let Some(call) = self.inner.take() else {
            return;
        };
        let (mut ctx, payload, mut call) = call.into_context();
        call.stream = stream;
        let metadata_bytes = ctx.metadata().heap_bytes();
        let (serializer, responder) = (call.serializer, call.responder);
        let interceptors = call.interceptors();
        let work = async move {
            if let Some(server) = interceptors {
                if let Err(rejection) = intercept(&server, &mut ctx).await {
                    return Some(rejection.answer(&responder, serializer));
                }
            }
            let args = match serializer.decode::<Args>(payload) {
                Ok(args) => args,
                Err(e) => {
                    let message = bad_args_message(&ctx, serializer, e);
                    return Some(responder.status(StatusCode::BadRequest, &message));
                }
            };
            Some(match handler(ctx, args).await {
                Ok(reply) => responder.reply(serializer, &reply),
                Err(error) => responder.error(serializer, error),
            })
        };
        spawn_call(call, metadata_bytes, work);
    }

    /// Runs the handler of a server-streaming method (`stream T` result),
    /// as [`serve_unary`](Self::serve_unary) runs a unary one: decodes
    /// `Args` (status 4 on failure), gives the handler an [`ItemSender`]
    /// for its items, and answers when it returns: `Ok(())` -> status 0
    /// with the empty message after the items; an error -> its status (a
    /// declared error as status 1) after the items sent before it. The
    /// deadline covers the whole stream (status 6 when it passes), and a
    /// cancel stops the handler. A one-way request for a streaming method
    /// is dropped (it could carry no items).
    pub fn serve_server_stream<Args, Item, E, F, Fut>(mut self, handler: F)
    where
        Args: WireMessage,
        Item: Field + Send + 'static,
        E: DeclaredError,
        F: FnOnce(CallContext, Args, ItemSender<Item>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), RpcError<E>>> + Send + 'static,
    {
        let Some(call) = self.inner.as_ref() else {
            return;
        };
        if call.oneway {
            tracing::debug!(request_id = call.slot.request_id, method = %call.method, "a one-way request for a streaming method: dropped");
            self.inner = None;
            return;
        }
        let (conn, slot) = (&call.slot.conn, call.slot.slot);
        let credit = StreamCredit::new(CREDIT_WINDOW);
        conn.slots.set_stream_credit(slot, Arc::clone(&credit));
        let items = ItemSender::new(
            Arc::clone(conn),
            slot,
            call.slot.responder(call.serializer.id()),
            call.serializer,
            credit,
        );
        // The stream's end: the empty message, or the handler's error.
        self.serve_answered(true, move |ctx, args| async move {
            handler(ctx, args, items).await.map(Reply::new)
        });
    }

    /// Runs the handler of a one-way method (inline, then as a task if it
    /// is not done): decodes `Args` and
    /// runs the handler; nothing is ever answered. Undecodable args, a
    /// panic or a passed deadline are logged at debug level. A one-way
    /// method called with a request that expects an answer is answered
    /// status 0 with the empty message once the handler is done.
    pub fn serve_oneway<Args, F, Fut>(mut self, handler: F)
    where
        Args: WireMessage,
        F: FnOnce(CallContext, Args) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(call) = self.inner.take() else {
            return;
        };
        let (mut ctx, payload, call) = call.into_context();
        let metadata_bytes = ctx.metadata().heap_bytes();
        let (serializer, responder) = (call.serializer, call.responder);
        let request_id = call.slot.request_id;
        let interceptors = call.interceptors();
        let work = async move {
            if let Some(server) = interceptors {
                if let Err(rejection) = intercept(&server, &mut ctx).await {
                    tracing::debug!(request_id, status = %rejection.0.code(), "one-way call rejected by an interceptor");
                    return Some(rejection.answer(&responder, serializer));
                }
            }
            match serializer.decode::<Args>(payload) {
                Ok(args) => handler(ctx, args).await,
                Err(e) => {
                    tracing::debug!(request_id, error = %e, "undecodable args for a one-way method");
                    let message = bad_args_message(&ctx, serializer, e);
                    return Some(responder.status(StatusCode::BadRequest, &message));
                }
            }
            Some(responder.empty_reply(serializer))
        };
        spawn_call(call, metadata_bytes, work);
    }

    /// Answers status 3 (unknown method).
    pub fn reject_unknown_method(mut self) {
        let Some(mut call) = self.inner.take() else {
            return;
        };
        let message = format!("unknown method `{}`", call.method);
        answer_now(&mut call, StatusCode::UnknownMethod, &message);
    }
}

impl Drop for IncomingCall {
    fn drop(&mut self) {
        if let Some(mut call) = self.inner.take() {
            tracing::debug!(request_id = call.slot.request_id, method = %call.method, "call dropped unserved");
            answer_now(
                &mut call,
                StatusCode::Internal,
                "the service did not serve the call",
            );
        }
    }
}

/// What the task serving a call needs, once the handler's context is split
/// off.
struct CallTask {
    service: &'static str,
    method: Utf8Bytes,
    serializer: Serializer,
    responder: Responder,
    deadline: Option<Instant>,
    /// Whether the client waits for an answer (not a one-way request).
    answer: bool,
    /// A streaming call: its end is queued like a control frame, whatever
    /// its items left of the connection's room (see `CallEnd::stream`).
    stream: bool,
    slot: SlotGuard,
}

impl CallParts {
    /// Splits the call into the handler's context (taking the metadata,
    /// not copying it), the args payload, and the rest.
    fn into_context(self) -> (CallContext, Bytes, CallTask) {
        let CallParts {
            service,
            method,
            serializer,
            oneway,
            payload,
            metadata,
            deadline,
            slot,
        } = self;
        let mut ctx = CallContext::for_call(
            deadline.map(Instant::into_std),
            metadata,
            slot.conn.peer,
            service,
            method.clone(),
        );
        if slot.conn.peer_identity.is_some() {
            ctx.set_peer_identity(slot.conn.peer_identity.clone());
        }
        if !oneway {
            ctx.set_response_metadata_slot(ResponseMetadataSlot::new(&slot.conn, slot.slot));
        }
        let task = CallTask {
            service,
            method,
            serializer,
            responder: slot.responder(serializer.id()),
            deadline,
            answer: !oneway,
            stream: false,
            slot,
        };
        (ctx, payload, task)
    }
}

/// Answers a call from synchronous code (unless it is one-way), through
/// the connection's outbox like every answer; its slot is freed when
/// `call` is dropped.
fn answer_now(call: &mut CallParts, code: StatusCode, message: &str) {
    if !call.oneway {
        let frame = call
            .slot
            .responder(call.serializer.id())
            .status(code, message);
        call.slot.answer_status(frame);
    }
}

impl CallTask {
    /// The server's environment, if it has interceptors to run (no clone
    /// otherwise).
    fn interceptors(&self) -> Option<Arc<ServerEnv>> {
        let env = &self.slot.conn.env;
        (!env.interceptors.is_empty()).then(|| Arc::clone(env))
    }
}

/// An interceptor's rejection of a call.
struct Rejection(crate::error::Status);

impl Rejection {
    /// The answer to the rejected call (statuses 0 and 1 become 8).
    fn answer(self, responder: &Responder, serializer: Serializer) -> Bytes {
        responder.error::<NoDeclaredError>(serializer, RpcError::Status(self.0))
    }
}

/// Runs the server's interceptors over the call's context, in order.
async fn intercept(server: &ServerEnv, ctx: &mut CallContext) -> Result<(), Rejection> {
    for interceptor in server.interceptors.iter() {
        interceptor.intercept(ctx).await.map_err(Rejection)?;
    }
    Ok(())
}

/// Spawns a call's task: runs `work` guarded against panics and the
/// deadline, with the deadline inherited by the calls it makes, sends the
/// answer (if the client waits for one), then frees the slot. The task is
/// registered so that a cancel frame can abort it.
///
/// The call's slot is charged what the call holds besides its request
/// frame, until it is answered or ends: the task, and `metadata_bytes`,
/// the heap its metadata's copy takes (the handler's context owns it).
fn spawn_call<W>(call: CallTask, metadata_bytes: usize, work: W)
where
    W: Future<Output = Option<Bytes>> + Send + 'static,
{
    let CallTask {
        service,
        method,
        serializer: _,
        responder,
        deadline,
        answer,
        stream,
        mut slot,
    } = call;
    let conn = Arc::clone(&slot.conn);
    let (request_id, slot_id) = (slot.request_id, slot.slot);
    let span = if crate::trace::debug_spans_enabled() {
        tracing::debug_span!(
            "courier.serve",
            service,
            method = %method,
            request_id,
            peer = %conn.peer,
            status = Empty,
            latency_us = Empty,
        )
    } else {
        tracing::Span::none()
    };
    let traced = !span.is_disabled();
    slot.charge(std::mem::size_of::<RunCall<W>>() + TASK_OVERHEAD + metadata_bytes);
    let end = CallEnd {
        slot,
        responder,
        answer,
        stream,
        recorder: traced.then(|| (span.clone(), Instant::now())),
    };
    let handle = if traced {
        run_inline_or_spawn(
            &conn,
            Box::pin(run_call(work, deadline, end).instrument(span)),
        )
    } else {
        // Built in one expression, in its box: each move of the task on its
        // way there is a memcpy of all of it (~100 instructions each,
        // callgrind).
        run_inline_or_spawn(
            &conn,
            Box::pin(RunCall {
                work: Some(Guarded {
                    work: match deadline {
                        None => Scoped::Unscoped { work },
                        Some(_) => Scoped::Scoped {
                            work: with_caller_deadline(deadline, work),
                        },
                    },
                    deadline: guard_deadline(deadline),
                }),
                end: Some(end),
            }),
        )
    };
    if let Some(handle) = handle {
        conn.slots.attach(slot_id, handle.abort_handle());
    }
}

/// Polls a call's task once, here on the connection's reader, and spawns
/// it only if it did not finish: most handlers answer at once, and then the
/// call costs no task, no wake-up of another task and no abort handle, and
/// its answer goes out with the other answers of the same read. The task's
/// panic guard and deadline are inside it (`run_call`), so they hold
/// inline as in a task. Polled with a no-op waker: a task that is spawned
/// is polled again at once by the runtime, with its own waker, and looks
/// at everything again then. The call's slot is the same either way: the
/// reader puts it in the connection's index of request ids once it has
/// handled the request, if the call has not ended by then (see `slots.rs`).
/// With `inline_handlers(false)` every call is spawned, unpolled.
fn run_inline_or_spawn<F>(conn: &Arc<ConnShared>, mut task: Pin<Box<F>>) -> Option<JoinHandle<()>>
where
    F: Future<Output = ()> + Send + 'static,
{
    if conn.env.config.inline_handlers {
        let mut cx = Context::from_waker(Waker::noop());
        if task.as_mut().poll(&mut cx).is_ready() {
            return None;
        }
    }
    let running = conn.call_task_started();
    Some(tokio::spawn(async move {
        let _running = running;
        task.await;
    }))
}

pin_project! {
    /// A call's task (see [`spawn_call`]): the work, guarded against
    /// panics and the deadline, with the deadline inherited by the calls it
    /// makes; then the answer. A hand-written future: an `async` block
    /// would hold the work several times over (as its capture, and as the
    /// argument and the pinned local of each future it is passed to) and
    /// move it between them, a memcpy of the whole work each time.
    struct RunCall<W> {
        // Dropped as soon as it is done, before the slot is released: the
        // slot outlives the handler, so whoever waits for a connection's
        // calls to end (a closed connection, a shutdown) finds every
        // handler, and everything it holds, gone.
        #[pin]
        work: Option<Guarded<Scoped<W>>>,
        end: Option<CallEnd>,
    }
}

pin_project! {
    /// The work, in the scope of the call's deadline if it has one (with
    /// none, the scope would hold nothing: outside one, as in every
    /// connection's and call's task, the inherited deadline is none too).
    #[project = ScopedProj]
    enum Scoped<W> {
        Unscoped { #[pin] work: W },
        Scoped { #[pin] work: TaskLocalFuture<Option<Instant>, W> },
    }
}

impl<W: Future> Future for Scoped<W> {
    type Output = W::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<W::Output> {
        match self.project() {
            ScopedProj::Unscoped { work } => work.poll(cx),
            ScopedProj::Scoped { work } => work.poll(cx),
        }
    }
}

/// What a call's task does once its work is done.
struct CallEnd {
    slot: SlotGuard,
    responder: Responder,
    /// Whether the client waits for an answer (not a one-way request).
    answer: bool,
    /// A streaming call: its items may fill the connection's room up to its
    /// limit by design, so its end (small, one per call) is charged past
    /// it rather than replaced by status 18.
    stream: bool,
    /// The call's span and when it started, if it is traced.
    recorder: Option<(tracing::Span, Instant)>,
}

/// The task of a call (see [`spawn_call`]).
fn run_call<W>(work: W, deadline: Option<Instant>, end: CallEnd) -> RunCall<W>
where
    W: Future<Output = Option<Bytes>>,
{
    let work = match deadline {
        None => Scoped::Unscoped { work },
        Some(_) => Scoped::Scoped {
            work: with_caller_deadline(deadline, work),
        },
    };
    RunCall {
        work: Some(run_guarded(work, deadline)),
        end: Some(end),
    }
}

impl<W> Future for RunCall<W>
where
    W: Future<Output = Option<Bytes>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(work) = this.work.as_mut().as_pin_mut() else {
            // Polled after it was done.
            return Poll::Ready(());
        };
        let outcome = ready!(work.poll(cx));
        // The handler goes first (see the field).
        this.work.set(None);
        let Some(CallEnd {
            mut slot,
            responder,
            answer,
            stream,
            recorder,
        }) = this.end.take()
        else {
            // Taken only here, with the work: not reached.
            return Poll::Ready(());
        };
        let frame = match outcome {
            Ok(frame) => frame,
            Err(Interrupted::Panicked(message)) => {
                tracing::warn!(request_id = slot.request_id, panic = %message, "handler panicked");
                Some(responder.status(StatusCode::Internal, "the handler panicked"))
            }
            Err(Interrupted::DeadlineExceeded) => Some(responder.status(
                StatusCode::DeadlineExceeded,
                "the deadline passed on the server",
            )),
        };
        if let Some((recorder, started)) = recorder {
            // The status byte of the answer (offset 5 of the header).
            if let Some(status) = frame.as_ref().and_then(|frame| frame.get(5)) {
                recorder.record("status", *status);
            }
            recorder.record(
                "latency_us",
                u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            );
        }
        if answer {
            if let Some(frame) = frame {
                if stream {
                    slot.answer_stream_end(frame, &responder);
                } else {
                    slot.answer(frame, &responder);
                }
            }
        }
        drop(slot);
        Poll::Ready(())
    }
}

/// What a call's task holds besides its future: tokio's header and
/// trailer around the future (about 120 bytes), its rounding of the task's
/// allocation to 128 bytes, the call's span when it is traced, and the
/// call's entry in its connection's slots (with the map's spare room);
/// rounded up.
const TASK_OVERHEAD: usize = 384;

/// The status-4 message for undecodable args: names the method and the
/// serializer, never the server's Rust type paths.
fn bad_args_message(ctx: &CallContext, serializer: Serializer, error: TransportError) -> String {
    let reason = match error {
        TransportError::Decode { reason, .. } => reason,
        other => other.to_string(),
    };
    format!(
        "cannot decode the arguments of {}/{} ({serializer}): {reason}",
        ctx.service(),
        ctx.method()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_handlers_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        fn assert_object_safe(_: Option<&dyn ServiceHandler>) {}
        assert_send::<IncomingCall>();
        assert_object_safe(None);
    }
}
