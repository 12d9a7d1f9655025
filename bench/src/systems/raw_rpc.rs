//! The RPC-shaped ceiling: the raw echo's framing (Courier's 18-byte
//! header and nothing else: no serializer, no request body, no dispatch)
//! driven like an RPC client. The closed-loop callers of [`crate::load`]
//! (one task per call in flight, exactly as for courier, tonic and tarpc)
//! each make a call that takes a request id, puts a oneshot in a pending
//! map, appends its frame to the connection's output and waits; one
//! connection task reads the answers, completes each call through its
//! oneshot, and writes whatever the callers queued with one write.
//!
//! A ceiling has to batch as well as an RPC client can: a caller that
//! queues a frame wakes the connection task, and tokio runs a task woken
//! by the running task next (its LIFO slot), so the connection would
//! write after every single caller. When other calls are in flight (so
//! other callers may be about to queue theirs), the connection task
//! therefore yields once before it takes the queue, by waking itself and
//! returning `Pending` (which puts it at the back of the run queue, behind
//! the callers that are ready), never with a timer; a lone call (one in
//! flight) is written at once.
//!
//! The server is the raw echo's ([`super::raw::serve`]): so the difference
//! between `raw-tokio` and `raw-rpc` is exactly the client's per-call
//! machinery (task wake-ups, the map, the oneshot), which any RPC client
//! has and the raw echo does not.
//!
//! This is a measuring instrument, not a product: the output is bounded
//! only by the callers (at most `concurrency` frames), and a call whose
//! future is dropped leaves its entry in the map until the connection ends.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::raw::{HEADER_LEN, READ_CHUNK, complete_frame, put_frame, request_id};
use crate::load::Caller;

type PendingMap = HashMap<u64, oneshot::Sender<Bytes>, foldhash::fast::RandomState>;

/// What the callers and the connection task share.
struct State {
    /// Calls waiting for their answer, by request id.
    pending: PendingMap,
    /// Frames queued by callers, not yet taken by the connection task.
    output: BytesMut,
    /// How many frames `output` holds.
    queued: usize,
    /// The next request id.
    next_id: u64,
    /// The connection task, when it parked with nothing to write.
    writer: Option<Waker>,
    /// Why the connection ended, once it has.
    closed: Option<String>,
}

/// A client on one connection; every slot clones it (clones share it).
#[derive(Clone)]
pub struct RawRpcCaller {
    shared: Arc<Mutex<State>>,
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connects to a raw echo server at `addr` and starts the connection task.
pub async fn connect(addr: SocketAddr) -> Result<RawRpcCaller, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("raw-rpc: cannot connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("raw-rpc: {e}"))?;
    let shared = Arc::new(Mutex::new(State {
        pending: PendingMap::default(),
        output: BytesMut::with_capacity(READ_CHUNK),
        queued: 0,
        next_id: 1,
        writer: None,
        closed: None,
    }));
    let task_shared = Arc::clone(&shared);
    tokio::spawn(async move {
        let mut connection = Connection {
            stream,
            shared: Arc::clone(&task_shared),
            input: BytesMut::with_capacity(READ_CHUNK),
            sending: BytesMut::with_capacity(READ_CHUNK),
            yielded: false,
        };
        let why = match poll_fn(|cx| connection.poll(cx)).await {
            Ok(()) => "connection closed".to_owned(),
            Err(e) => e.to_string(),
        };
        let mut state = lock(&task_shared);
        state.closed = Some(why);
        // Dropping the senders fails every call still waiting.
        state.pending.clear();
    });
    Ok(RawRpcCaller { shared })
}

impl Caller for RawRpcCaller {
    async fn call(&mut self, payload: Bytes) -> Result<usize, String> {
        let (tx, rx) = oneshot::channel();
        let writer = {
            let mut state = lock(&self.shared);
            if let Some(why) = &state.closed {
                return Err(format!("raw-rpc: {why}"));
            }
            let id = state.next_id;
            state.next_id += 1;
            state.pending.insert(id, tx);
            put_frame(&mut state.output, 1, id, &payload);
            state.queued += 1;
            state.writer.take()
        };
        if let Some(writer) = writer {
            writer.wake();
        }
        let reply = rx
            .await
            .map_err(|_| "raw-rpc: the connection ended before the answer".to_owned())?;
        Ok(reply.len())
    }
}

/// The connection task's state.
struct Connection {
    stream: TcpStream,
    shared: Arc<Mutex<State>>,
    /// Bytes read, not yet made into answers.
    input: BytesMut,
    /// Frames taken from the callers, being written.
    sending: BytesMut,
    /// Whether the task has yielded once since it last took the queue.
    yielded: bool,
}

impl Connection {
    /// Reads and writes until neither can go on; `Ready` when the
    /// connection ends. It returns `Pending` only once both readiness polls
    /// have (so the task is registered for both): a readiness poll that
    /// returns `Ready` registers nothing, and the `WouldBlock` of the
    /// `try_*` that follows only clears the readiness.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut again = false;
            if let Poll::Ready(ready) = self.stream.poll_read_ready(cx) {
                ready?;
                again = true;
                match self.read()? {
                    None => return Poll::Ready(Ok(())),
                    Some(0) => {}
                    Some(_) => self.complete()?,
                }
            }
            if self.sending.is_empty() {
                let mut state = lock(&self.shared);
                if state.output.is_empty() {
                    if !state
                        .writer
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                    {
                        state.writer = Some(cx.waker().clone());
                    }
                } else if !self.yielded && state.pending.len() > state.queued {
                    // Other calls are in flight: let the callers that are
                    // ready queue their frames first (see the module docs).
                    self.yielded = true;
                    drop(state);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                } else {
                    std::mem::swap(&mut state.output, &mut self.sending);
                    state.queued = 0;
                    self.yielded = false;
                }
            }
            if !self.sending.is_empty()
                && let Poll::Ready(ready) = self.stream.poll_write_ready(cx)
            {
                ready?;
                again = true;
                match self.stream.try_write(&self.sending) {
                    Ok(written) => self.sending.advance(written),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if !again {
                return Poll::Pending;
            }
        }
    }

    /// Reads what is there: `None` at the end of the stream, else how many
    /// bytes (0 when nothing was there after all).
    fn read(&mut self) -> io::Result<Option<usize>> {
        let mut total = 0;
        loop {
            self.input.reserve(READ_CHUNK);
            let room = self.input.capacity() - self.input.len();
            match self.stream.try_read_buf(&mut self.input) {
                Ok(0) => return Ok(None),
                // A read that filled the room may have left more behind.
                Ok(n) if n == room => total += n,
                Ok(n) => return Ok(Some(total + n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(total)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Completes the call of every whole answer read.
    fn complete(&mut self) -> io::Result<()> {
        if complete_frame(&self.input)?.is_none() {
            return Ok(());
        }
        let mut state = lock(&self.shared);
        while let Some(len) = complete_frame(&self.input)? {
            let id = request_id(&self.input);
            let frame = self.input.split_to(len).freeze();
            let Some(tx) = state.pending.remove(&id) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("answer to unknown request {id}"),
                ));
            };
            // The caller may have gone; its answer is dropped with it.
            let _ = tx.send(frame.slice(HEADER_LEN..));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::systems::{payload, raw};

    /// Many large calls in flight at once (the socket buffers fill both
    /// ways, so reads and writes must interleave) all complete.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn many_large_calls_in_flight_complete() {
        let addr = raw::serve().await.expect("serve");
        let caller = connect(addr).await.expect("connect");
        let body = payload(64 * 1024);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..128 {
            let mut caller = caller.clone();
            let body = body.clone();
            tasks.spawn(async move {
                for _ in 0..4 {
                    assert_eq!(caller.call(body.clone()).await, Ok(body.len()));
                }
            });
        }
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(task) = tasks.join_next().await {
                task.expect("caller task");
            }
        })
        .await
        .expect("every call answered");
        assert!(lock(&caller.shared).pending.is_empty());
    }

    /// A peer that closes the connection fails the calls waiting on it and
    /// every later one, with a reason.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_closed_connection_fails_calls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            // Accept, read a little, hang up without answering.
            let (stream, _) = listener.accept().await.expect("accept");
            let _ = stream.readable().await;
            drop(stream);
        });
        let mut caller = connect(addr).await.expect("connect");
        let first = tokio::time::timeout(Duration::from_secs(30), caller.call(payload(16)))
            .await
            .expect("the call ends");
        assert!(first.is_err(), "{first:?}");
        let later = tokio::time::timeout(Duration::from_secs(30), caller.call(payload(16)))
            .await
            .expect("the call ends");
        assert!(later.is_err_and(|e| e.contains("raw-rpc")));
    }
}
