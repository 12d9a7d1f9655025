//! The connections of a channel: each is one task that owns its socket and
//! its pending map (one owner per connection), with a bounded send queue
//! its callers take room in; calls are spread over them in turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::backoff::Backoff;
use super::command::{Command, RawResponse};
use super::connection::ConnectionSettings;
use super::dial::Dialer;
use super::outbox::Unsent;
use super::send_room::{SendPermit, SendRoom};
use super::task::run_connection;
use crate::error::{StatusCode, TransportError};

/// The caller's end of one connection task.
#[derive(Debug)]
pub(crate) struct Link {
    /// Unbounded as a channel, bounded by `room`: every call and one-way
    /// command holds room until its frame leaves the connection's queue,
    /// and there is at most one cancel per call.
    commands: mpsc::UnboundedSender<Command>,
    /// Room in the connection's send queue.
    room: Arc<SendRoom>,
    /// The size of the connection's pending map (a test hook).
    pending_len: Arc<AtomicUsize>,
    /// What the connection holds unwritten, by its own count (a test hook).
    unsent: Arc<Unsent>,
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
                let (commands, receiver) = mpsc::unbounded_channel();
                let pending_len = Arc::new(AtomicUsize::new(0));
                let unsent = Arc::new(Unsent::default());
                tokio::spawn(run_connection(
                    receiver,
                    stream,
                    Arc::clone(&dialer),
                    settings,
                    backoff,
                    Arc::clone(&pending_len),
                    Arc::clone(&unsent),
                ));
                Link {
                    commands,
                    room: SendRoom::new(settings.max_queued_calls, settings.max_queued_bytes),
                    pending_len,
                    unsent,
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
        let (reply, response) = oneshot::channel();
        link.send(Command::Call {
            id,
            frame,
            reply,
            room,
        })?;
        let mut cancel = CancelOnDrop {
            link,
            id,
            armed: true,
        };
        let response = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, response).await {
                Ok(response) => response,
                // `cancel` is dropped armed.
                Err(_) => return Ok(None),
            },
            None => response.await,
        };
        cancel.armed = false;
        let response = response.map_err(|_| task_gone())?;
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
    use crate::protocol::{Frame, FrameDecoder, FrameHeader, MessageKind, empty_frame};

    const SETTINGS: ConnectionSettings = ConnectionSettings {
        max_frame_size: 1 << 20,
        heartbeat_interval: None,
        max_queued_calls: 1024,
        max_queued_bytes: 4 << 20,
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
    async fn closed_loop(pool: &Arc<Pool>, callers: u64, calls: u64) {
        let tasks: Vec<_> = (0..callers)
            .map(|caller| {
                let pool = Arc::clone(pool);
                tokio::spawn(async move {
                    for call in 0..calls {
                        let id = (caller << 40 | call).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                        let deadline = Instant::now() + Duration::from_secs(30);
                        let answer = pool
                            .round_trip(id, request(id, &[7; 1024]), Some(deadline), "test")
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
        tokio::spawn(async move { closed_loop(&measured, callers, calls).await })
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
        assert_eq!(pool.pending_len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_lone_caller_is_answered_call_after_call() {
        let pool = Arc::new(pool_to(answering_server().await).await);
        let measured = Arc::clone(&pool);
        tokio::spawn(async move { closed_loop(&measured, 1, 200).await })
            .await
            .expect("caller");
        // Each lone frame went out by itself (plus the first ping).
        assert!(pool.writes() >= 200, "{} writes", pool.writes());
        assert_eq!(pool.pending_len(), 0);
    }
}
