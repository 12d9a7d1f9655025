//! The connections of a channel: each is one task that owns its socket and
//! its pending map (one owner per connection), with a bounded send queue
//! its callers take room in; calls are spread over them in turn.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::answers::{Answer, Answers, Ticket};
use super::backoff::Backoff;
use super::command::{Command, RawResponse};
use super::command_queue::{CommandHandle, CommandSender, command_queue};
use super::connection::ConnectionSettings;
use super::dial::Dialer;
use super::outbox::Unsent;
use super::send_room::{SendPermit, SendRoom};
use super::stream_items::{StreamBytes, StreamItems};
use super::task::{Shared, run_connection};
use crate::error::{StatusCode, TransportError};

/// The caller's end of one connection task.
#[derive(Debug)]
pub(crate) struct Link {
    /// Unbounded as a queue, bounded by `room`: every call and one-way
    /// command holds room until its frame leaves the connection's queue,
    /// and there is at most one cancel per call.
    commands: CommandSender,
    /// Room in the connection's send queue.
    room: Arc<SendRoom>,
    /// Where its calls' answers come.
    answers: Arc<Answers>,
    /// The size of the connection's pending map (a test hook).
    pending_len: Arc<AtomicUsize>,
    /// What the connection holds unwritten, by its own count (a test hook).
    unsent: Arc<Unsent>,
    /// The bytes of stream items it holds that no call has taken yet.
    stream_bytes: Arc<StreamBytes>,
}

impl Link {
    /// Hands a command to the connection task.
    pub fn send(&self, command: Command) -> Result<(), TransportError> {
        self.commands.send(command).map_err(|_| task_gone())
    }

    /// Tells the connection task to forget `id` (best effort: if the task
    /// is gone, so is the pending entry).
    pub fn cancel(&self, id: u64) {
        let _ = self.commands.send(Command::Cancel { id });
    }

    /// The error of a call that waited `waited` for room in this
    /// connection's queue, to `target`, and got none.
    fn queue_full(&self, target: &str, waited: Duration) -> TransportError {
        TransportError::SendQueueFull {
            addr: target.to_owned(),
            waited,
            queued_calls: self.room.queued_calls(),
            queued_bytes: self.room.queued_bytes(),
        }
    }
}

/// Every connection of a channel.
#[derive(Debug)]
pub(crate) struct Pool {
    links: Box<[Link]>,
    next: AtomicUsize,
}

impl Pool {
    /// Opens `count` connections (at least one) and starts their tasks;
    /// fails if any cannot be opened.
    pub async fn connect(
        dialer: Dialer,
        count: usize,
        settings: ConnectionSettings,
        backoff: Backoff,
    ) -> Result<Pool, TransportError> {
        let count = count.max(1);
        let mut streams = Vec::with_capacity(count);
        for _ in 0..count {
            streams.push(dialer.dial().await?);
        }
        let dialer = Arc::new(dialer);
        let links = streams
            .into_iter()
            .map(|stream| {
                let (commands, receiver) = command_queue();
                let shared = Shared::default();
                shared
                    .stream_bytes
                    .set_limit(settings.max_buffered_stream_bytes);
                tokio::spawn(run_connection(
                    receiver,
                    stream,
                    Arc::clone(&dialer),
                    settings,
                    backoff,
                    shared.clone(),
                ));
                let Shared {
                    answers,
                    pending_len,
                    unsent,
                    stream_bytes,
                } = shared;
                Link {
                    commands,
                    room: SendRoom::new(settings.max_queued_calls, settings.max_queued_bytes),
                    answers,
                    pending_len,
                    unsent,
                    stream_bytes,
                }
            })
            .collect();
        Ok(Pool {
            links,
            next: AtomicUsize::new(0),
        })
    }

    /// A connection with room now for a frame of `len` bytes, and the
    /// room: the next one in turn, else any other.
    pub fn try_admit(&self, len: usize) -> Option<(&Link, SendPermit)> {
        let first = self.next_index();
        let link = &self.links[first];
        if let Some(room) = link.room.try_reserve(len) {
            return Some((link, room));
        }
        let others = self.links.iter().cycle().skip(first + 1);
        others
            .take(self.links.len() - 1)
            .find_map(|other| Some((other, other.room.try_reserve(len)?)))
    }

    /// Waits for room for a frame of `len` bytes on the next connection in
    /// turn, until `deadline` ([`TransportError::SendQueueFull`] after
    /// that; `target` names the server in it). For when
    /// [`try_admit`](Self::try_admit) found none.
    pub async fn admit(
        &self,
        len: usize,
        deadline: Option<Instant>,
        target: &str,
    ) -> Result<(&Link, SendPermit), TransportError> {
        let link = &self.links[self.next_index()];
        let waiting_since = Instant::now();
        let reserve = link.room.reserve(len);
        let room = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, reserve)
                .await
                .map_err(|_| link.queue_full(target, waiting_since.elapsed()))?,
            None => reserve.await,
        };
        Ok((link, room))
    }

    /// Sends an encoded request frame (request id `id`) on one of the
    /// connections and waits for its response until `deadline`: `None`
    /// once the deadline has passed. The frame first waits for room in the
    /// connection's send queue, until the deadline
    /// ([`TransportError::SendQueueFull`] after that; `target` names the
    /// server in it). A call given up (deadline passed, or this future
    /// dropped) is forgotten by its connection: its frame is dropped if
    /// none of it was written yet, and otherwise the server is told.
    pub async fn round_trip(
        &self,
        id: u64,
        frame: Bytes,
        deadline: Option<Instant>,
        target: &str,
    ) -> Result<Option<RawResponse>, TransportError> {
        // Room at once on most calls; waiting for it is the slow path.
        let (link, room) = match self.try_admit(frame.len()) {
            Some(admitted) => admitted,
            None => self.admit(frame.len(), deadline, target).await?,
        };
        let ticket = link.answers.open();
        let mut waiting = WaitForAnswer {
            link,
            id,
            ticket,
            done: false,
        };
        link.send(Command::Call {
            id,
            frame,
            ticket,
            room,
        })?;
        let response = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, &mut waiting).await {
                Ok(response) => response,
                // `waiting` is dropped unanswered: the call is cancelled.
                Err(_) => return Ok(None),
            },
            None => (&mut waiting).await,
        };
        match response {
            // The server's deadline is the call's own (it travels in the
            // request), so its status 6 can arrive in the same instant as
            // the local timer fires, and win: one cause, one answer.
            Ok(RawResponse { status, .. })
                if status == StatusCode::DeadlineExceeded.as_u8()
                    && deadline.is_some_and(|deadline| Instant::now() >= deadline) =>
            {
                Ok(None)
            }
            response => response.map(Some),
        }
    }

    /// Sends an encoded one-way frame (request id `id`) on one of the
    /// connections; returns once it is written, or `None` if `deadline`
    /// passed first (the frame is then dropped unless its writing had
    /// begun). The frame first waits for room in the connection's send
    /// queue, until the deadline ([`TransportError::SendQueueFull`] after
    /// that). Dropping the future drops the frame the same way.
    pub async fn send_oneway(
        &self,
        id: u64,
        frame: Bytes,
        deadline: Option<Instant>,
        target: &str,
    ) -> Result<Option<()>, TransportError> {
        let (link, room) = match self.try_admit(frame.len()) {
            Some(admitted) => admitted,
            None => self.admit(frame.len(), deadline, target).await?,
        };
        let (written, written_rx) = oneshot::channel();
        link.send(Command::Oneway {
            id,
            frame,
            written,
            room,
        })?;
        let mut cancel = CancelOnDrop {
            link,
            id,
            armed: true,
        };
        let written = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, written_rx).await {
                Ok(written) => written,
                // `cancel` is dropped armed.
                Err(_) => return Ok(None),
            },
            None => written_rx.await,
        };
        cancel.armed = false;
        written.map_err(|_| task_gone())??;
        Ok(Some(()))
    }

    /// Opens a server-streaming call: hands its request frame (request id
    /// `id`) to one of the connections, after waiting for room as
    /// [`round_trip`](Self::round_trip) does (until `deadline`:
    /// [`TransportError::SendQueueFull`] after it). The items and the end
    /// come through the returned handle; it is always `Some` (the
    /// [`Route`](super::route::Route) signature leaves room for routes
    /// whose deadline can pass first).
    pub async fn open_stream(
        &self,
        id: u64,
        frame: Bytes,
        deadline: Option<Instant>,
        target: &str,
    ) -> Result<Option<StreamHandle>, TransportError> {
        let (link, room) = match self.try_admit(frame.len()) {
            Some(admitted) => admitted,
            None => self.admit(frame.len(), deadline, target).await?,
        };
        let ticket = link.answers.open();
        let items = StreamItems::new(Arc::clone(&link.stream_bytes));
        let handle = StreamHandle {
            commands: link.commands.handle(),
            answers: Arc::clone(&link.answers),
            ticket,
            id,
            items: Arc::clone(&items),
            done: false,
        };
        link.send(Command::Stream {
            id,
            frame,
            ticket,
            room,
            items,
        })?;
        Ok(Some(handle))
    }

    /// The index of the next connection in turn (round robin).
    fn next_index(&self) -> usize {
        match self.links.len() {
            1 => 0,
            n => self.next.fetch_add(1, Ordering::Relaxed) % n,
        }
    }

    /// Calls waiting for a response on all connections.
    pub fn pending_len(&self) -> usize {
        self.links
            .iter()
            .map(|link| link.pending_len.load(Ordering::Acquire))
            .sum()
    }

    /// Frames and bytes the connections hold unwritten, by their own
    /// count (control frames included).
    pub fn unsent(&self) -> (usize, usize) {
        self.links.iter().fold((0, 0), |(frames, bytes), link| {
            let (f, b) = link.unsent.get();
            (frames + f, bytes + b)
        })
    }

    /// The number of connections.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Answer slots held by calls on all connections.
    #[cfg(test)]
    fn answer_slots_held(&self) -> usize {
        self.links.iter().map(|link| link.answers.held()).sum()
    }

    /// Times the connections waited for runnable callers before writing.
    #[cfg(test)]
    fn batch_waits(&self) -> usize {
        self.links
            .iter()
            .map(|link| link.unsent.batch_waits())
            .sum()
    }

    /// Writes (syscalls that took bytes) on all connections so far.
    #[cfg(test)]
    fn writes(&self) -> usize {
        self.links.iter().map(|link| link.unsent.writes()).sum()
    }
}

/// The error of a call whose connection task is gone.
pub(crate) fn task_gone() -> TransportError {
    TransportError::ConnectionLost("the channel's connection task stopped".to_owned())
}

/// A call's wait for its answer, in its slot of the connection's
/// [`Answers`]. Dropped unanswered (the caller gave up, or its deadline
/// passed), it frees the slot and tells the connection task to forget the
/// call: its frame leaves the queue if none of it is written yet, else the
/// server gets a cancel.
struct WaitForAnswer<'a> {
    link: &'a Link,
    id: u64,
    ticket: Ticket,
    done: bool,
}

impl Future for WaitForAnswer<'_> {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        let this = self.get_mut();
        let answer = this.link.answers.poll(this.ticket, cx);
        this.done = answer.is_ready();
        answer
    }
}

impl Drop for WaitForAnswer<'_> {
    fn drop(&mut self) {
        // If the send failed, the slot is freed here too (and the cancel
        // goes nowhere).
        if !self.done && self.link.answers.close(self.ticket) {
            self.link.cancel(self.id);
        }
    }
}

/// A server-streaming call's way to its connection: its items, its
/// answer (the end of the call), and commands for credit and cancel. Owns
/// what it holds, so the call's stream can outlive the borrow of the
/// pool. Dropped before the end, it cancels the call.
#[derive(Debug)]
pub(crate) struct StreamHandle {
    commands: CommandHandle,
    answers: Arc<Answers>,
    ticket: Ticket,
    id: u64,
    items: Arc<StreamItems>,
    /// The answer was taken.
    done: bool,
}

impl StreamHandle {
    /// The next item, if one arrived.
    pub fn poll_item(&self, cx: &mut Context<'_>) -> Poll<Bytes> {
        self.items.poll_next(cx)
    }

    /// The call's end: its response, or why there is none. Every item sent
    /// before the response has arrived once this is ready.
    pub fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Answer> {
        let answer = ready!(self.answers.poll(self.ticket, cx));
        self.done = true;
        Poll::Ready(answer)
    }

    /// Gives the server `count` more credits (the application took that
    /// many items).
    pub fn give_credit(&self, count: u32) {
        let _ = self.commands.send(Command::Credit { id: self.id, count });
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        if !self.done && self.answers.close(self.ticket) {
            let _ = self.commands.send(Command::Cancel { id: self.id });
        }
    }
}

/// Tells the connection task to forget a call whose future was dropped
/// (or timed out) before its response came (or, for a one-way call,
/// before its frame was written).
struct CancelOnDrop<'a> {
    link: &'a Link,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.link.cancel(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::{Bytes, BytesMut};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::time::Instant;

    use super::Pool;
    use crate::client::backoff::Backoff;
    use crate::client::connection::ConnectionSettings;
    use crate::client::dial::Dialer;
    use crate::error::TransportError;
    use crate::protocol::{Frame, FrameDecoder, FrameHeader, MessageKind, empty_frame};

    const SETTINGS: ConnectionSettings = ConnectionSettings {
        max_frame_size: 1 << 20,
        heartbeat_interval: None,
        max_queued_calls: 1024,
        max_queued_bytes: 4 << 20,
        max_response_metadata: crate::protocol::MetadataLimits::UNLIMITED,
        max_buffered_stream_bytes: 1 << 20,
    };

    /// A server on a real socket that answers each request with an empty
    /// status-0 response (and each ping with a pong), all the answers to
    /// one read in one write.
    async fn answering_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut decoder = FrameDecoder::new(1 << 20);
                    let mut buf = BytesMut::with_capacity(64 * 1024);
                    let mut answers = BytesMut::new();
                    loop {
                        match socket.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        while let Some(Frame { header, .. }) =
                            decoder.decode(&mut buf).expect("a valid frame")
                        {
                            let kind = match header.kind {
                                MessageKind::Request => MessageKind::Response,
                                MessageKind::Ping => MessageKind::Pong,
                                _ => continue,
                            };
                            answers.extend_from_slice(&empty_frame(kind, 1, header.request_id));
                        }
                        if socket.write_all(&answers).await.is_err() {
                            return;
                        }
                        answers.clear();
                    }
                });
            }
        });
        addr
    }

    async fn pool_to(addr: SocketAddr) -> Pool {
        let dialer = Dialer {
            addrs: vec![addr],
            target: addr.to_string(),
            connect_timeout: Duration::from_secs(10),
            #[cfg(feature = "tls")]
            tls: None,
        };
        Pool::connect(dialer, 1, SETTINGS, Backoff::default())
            .await
            .expect("connect")
    }

    fn request(id: u64, body: &[u8]) -> Bytes {
        let mut frame = BytesMut::new();
        FrameHeader {
            serializer: 1,
            kind: MessageKind::Request,
            status: 0,
            request_id: id,
            body_len: u32::try_from(body.len()).expect("small"),
        }
        .encode_into(&mut frame);
        frame.extend_from_slice(body);
        frame.freeze()
    }

    /// `callers` tasks each make `calls` calls in a closed loop; ids are
    /// spread over the whole u64 range (not contiguous, not from 1).
    async fn closed_loop(pool: &Arc<Pool>, callers: u64, calls: u64, body: usize) {
        let tasks: Vec<_> = (0..callers)
            .map(|caller| {
                let pool = Arc::clone(pool);
                tokio::spawn(async move {
                    for call in 0..calls {
                        let id = (caller << 40 | call).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                        let deadline = Instant::now() + Duration::from_secs(30);
                        let answer = pool
                            .round_trip(id, request(id, &vec![7; body]), Some(deadline), "test")
                            .await
                            .expect("no transport error")
                            .expect("answered in time");
                        assert_eq!(answer.status, 0);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("caller");
        }
    }

    // One worker: tokio's LIFO slot would run the connection task right
    // after each caller that wakes it, the case the batching is for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn frames_of_runnable_callers_leave_in_few_writes() {
        let pool = Arc::new(pool_to(answering_server().await).await);
        let (callers, calls) = (64, 40);
        // Run on the worker (the test body runs on another thread).
        let measured = Arc::clone(&pool);
        tokio::spawn(async move { closed_loop(&measured, callers, calls, 1024).await })
            .await
            .expect("callers");
        let writes = pool.writes();
        let total = usize::try_from(callers * calls).expect("small");
        // One write per call without batching (1.0); a handful per round
        // of answers with it.
        assert!(
            writes * 5 < total,
            "{writes} writes for {total} calls: more than 0.2 per call"
        );
        assert!(pool.batch_waits() > 0);
        assert_eq!(pool.pending_len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_lone_callers_frames_go_out_at_once() {
        let pool = Arc::new(pool_to(answering_server().await).await);
        let measured = Arc::clone(&pool);
        tokio::spawn(async move { closed_loop(&measured, 1, 200, 1024).await })
            .await
            .expect("caller");
        // Nobody else to wait for: each frame went out at once.
        assert_eq!(pool.batch_waits(), 0);
        assert!(pool.writes() >= 200, "{} writes", pool.writes());
        assert_eq!(pool.pending_len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn large_frames_go_out_at_once() {
        let pool = Arc::new(pool_to(answering_server().await).await);
        let measured = Arc::clone(&pool);
        tokio::spawn(async move { closed_loop(&measured, 16, 5, 64 * 1024).await })
            .await
            .expect("callers");
        // Each queue held a 64 KiB frame: worth its own write, no waiting.
        assert_eq!(pool.batch_waits(), 0);
        assert_eq!(pool.pending_len(), 0);
    }

    /// A server that tells the test each frame's kind and id, and answers
    /// the requests it holds (those given up on included) when told to.
    async fn holding_server() -> (
        SocketAddr,
        tokio::sync::mpsc::UnboundedReceiver<(MessageKind, u64)>,
        tokio::sync::mpsc::UnboundedSender<Option<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (seen_tx, seen) = tokio::sync::mpsc::unbounded_channel();
        // `Some`: answer what is held; `None`: close the connection.
        let (control, mut control_rx) = tokio::sync::mpsc::unbounded_channel::<Option<()>>();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut decoder = FrameDecoder::new(1 << 20);
            let mut buf = BytesMut::with_capacity(64 * 1024);
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    read = socket.read_buf(&mut buf) => {
                        if !matches!(read, Ok(n) if n > 0) {
                            return;
                        }
                        while let Some(Frame { header, .. }) =
                            decoder.decode(&mut buf).expect("a valid frame")
                        {
                            let _ = seen_tx.send((header.kind, header.request_id));
                            if header.kind == MessageKind::Request {
                                held.push(header.request_id);
                            }
                        }
                    }
                    order = control_rx.recv() => match order {
                        Some(Some(())) => {
                            let mut answers = BytesMut::new();
                            for id in held.drain(..) {
                                answers.extend_from_slice(&empty_frame(MessageKind::Response, 1, id));
                            }
                            socket.write_all(&answers).await.expect("write");
                        }
                        _ => return,
                    },
                }
            }
        });
        (addr, seen, control)
    }

    /// Waits until the server has seen a frame of `kind` with `id`.
    async fn seen(
        seen: &mut tokio::sync::mpsc::UnboundedReceiver<(MessageKind, u64)>,
        kind: MessageKind,
        id: u64,
    ) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(frame) = seen.recv().await {
                if frame == (kind, id) {
                    return;
                }
            }
            panic!("the server ended before {kind:?} {id}");
        })
        .await
        .expect("the frame reached the server");
    }

    #[tokio::test]
    async fn a_call_given_up_frees_its_slot_and_its_late_answer_is_dropped() {
        let (addr, mut frames, control) = holding_server().await;
        let pool = Arc::new(pool_to(addr).await);
        // Call 41 is written, then its deadline passes.
        let soon = Instant::now() + Duration::from_millis(50);
        let given_up = pool.round_trip(41, request(41, b"a"), Some(soon), "test");
        assert!(given_up.await.expect("no transport error").is_none());
        assert_eq!(pool.answer_slots_held(), 0);
        // Its request was written, so the server hears of the cancel.
        seen(&mut frames, MessageKind::Request, 41).await;
        seen(&mut frames, MessageKind::Cancel, 41).await;
        assert_eq!(pool.pending_len(), 0);
        // The next call reuses the slot; the late answer to 41 comes first
        // and must not be taken for its own.
        let next = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.round_trip(7, request(7, b"b"), None, "test").await }
        });
        seen(&mut frames, MessageKind::Request, 7).await;
        assert_eq!(pool.answer_slots_held(), 1);
        control.send(Some(())).expect("server");
        let answer = next
            .await
            .expect("caller")
            .expect("answered")
            .expect("in time");
        assert_eq!(answer.status, 0);
        assert_eq!(pool.answer_slots_held(), 0);
        assert_eq!(pool.pending_len(), 0);
    }

    #[tokio::test]
    async fn a_lost_connection_wakes_every_caller_with_an_error() {
        let (addr, mut frames, control) = holding_server().await;
        let pool = Arc::new(pool_to(addr).await);
        let callers: Vec<_> = (1..=50u64)
            .map(|id| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    pool.round_trip(id * 3, request(id * 3, b"c"), None, "test")
                        .await
                })
            })
            .collect();
        for id in 1..=50u64 {
            seen(&mut frames, MessageKind::Request, id * 3).await;
        }
        assert_eq!(pool.pending_len(), 50);
        // The server goes away without answering.
        control.send(None).expect("server");
        for caller in callers {
            let ended = tokio::time::timeout(Duration::from_secs(10), caller)
                .await
                .expect("woken, not hanging")
                .expect("caller");
            assert!(
                matches!(ended, Err(TransportError::ConnectionLost(_))),
                "{ended:?}"
            );
        }
        assert_eq!(pool.answer_slots_held(), 0);
        assert_eq!(pool.pending_len(), 0);
    }
}
