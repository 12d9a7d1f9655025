//! The client's connection: one hand-written future that owns the socket
//! and the pending map, and interleaves taking commands, writing frames and
//! reading responses, so that reading and writing never wait on each other.
//! It also keeps the heartbeat: pings when quiet, and gives up on a server
//! that has sent nothing for three intervals.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::command::{Command, RawResponse, ReplySender, WrittenSender};
use super::heartbeat::{Beat, Heartbeat};
use crate::error::TransportError;
use crate::protocol::write_queue::{WriteQueue, empty_slices};
use crate::protocol::{Frame, FrameDecoder, MessageKind, empty_frame};

/// Free room kept in the read buffer before each read.
const MIN_READ_ROOM: usize = 8 * 1024;
/// Commands taken per round before the socket gets a turn.
const COMMANDS_PER_ROUND: usize = 256;

/// What every connection of a channel is set up with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionSettings {
    /// The largest response body accepted.
    pub max_frame_size: u32,
    /// The heartbeat interval; `None`: no heartbeats.
    pub heartbeat_interval: Option<Duration>,
}

/// How a connection ended.
#[derive(Debug)]
pub(crate) enum ConnectionEnd {
    /// Every `Channel` is gone: the task can stop.
    ChannelDropped,
    /// The connection broke; every call on it has been failed with this.
    Lost(TransportError),
}

/// The calls waiting for a response, by request id. Its size is mirrored
/// into a counter the `Channel` can read (a test hook).
#[derive(Debug)]
pub(crate) struct Pending {
    map: HashMap<u64, ReplySender>,
    len: Arc<AtomicUsize>,
}

impl Pending {
    pub fn new(len: Arc<AtomicUsize>) -> Pending {
        Pending {
            map: HashMap::new(),
            len,
        }
    }

    fn sync_len(&self) {
        self.len.store(self.map.len(), Ordering::Release);
    }

    fn insert(&mut self, id: u64, reply: ReplySender) {
        if let Some(previous) = self.map.insert(id, reply) {
            // Ids come from a 64-bit counter; a clash means a bug upstream.
            let _ = previous.send(Err(TransportError::Protocol(format!(
                "request id {id} reused"
            ))));
        }
        self.sync_len();
    }

    fn remove(&mut self, id: u64) -> Option<ReplySender> {
        let reply = self.map.remove(&id);
        self.sync_len();
        reply
    }

    fn fail_all(&mut self, error: &TransportError) {
        // The count drops before the callers wake, so none of them can see
        // its own call still pending.
        let failed = std::mem::take(&mut self.map);
        self.sync_len();
        for (_, reply) in failed {
            let _ = reply.send(Err(error.clone()));
        }
    }
}

/// One live connection of a channel.
pub(crate) struct Connection<'a> {
    stream: TcpStream,
    commands: &'a mut mpsc::UnboundedReceiver<Command>,
    pending: Pending,
    queue: WriteQueue<Option<WrittenSender>>,
    read_buf: BytesMut,
    decoder: FrameDecoder,
    heartbeat: Option<Heartbeat>,
}

impl<'a> Connection<'a> {
    /// Takes over a connected socket.
    pub fn new(
        stream: TcpStream,
        commands: &'a mut mpsc::UnboundedReceiver<Command>,
        pending_len: Arc<AtomicUsize>,
        settings: ConnectionSettings,
    ) -> Connection<'a> {
        Connection {
            stream,
            commands,
            pending: Pending::new(pending_len),
            queue: WriteQueue::default(),
            read_buf: BytesMut::with_capacity(MIN_READ_ROOM),
            decoder: FrameDecoder::new(settings.max_frame_size),
            heartbeat: settings
                .heartbeat_interval
                .map(|interval| Heartbeat::new(interval, Instant::now())),
        }
    }

    /// Takes one command: registers calls and queues frames.
    pub fn accept(&mut self, command: Command) {
        match command {
            Command::Call { id, frame, reply } => {
                if reply.is_closed() {
                    // The caller already gave up; its cancel follows.
                    return;
                }
                self.pending.insert(id, reply);
                self.queue.push(frame, None);
            }
            Command::Oneway { frame, written } => self.queue.push(frame, Some(written)),
            Command::Cancel { id } => {
                if self.pending.remove(id).is_some() {
                    self.queue
                        .push(empty_frame(MessageKind::Cancel, 0, id), None);
                }
            }
        }
    }

    /// Takes the commands that are ready. `Err` when every sender is gone.
    fn take_commands(&mut self, cx: &mut Context<'_>) -> Result<bool, ConnectionEnd> {
        let mut progressed = false;
        for _ in 0..COMMANDS_PER_ROUND {
            match self.commands.poll_recv(cx) {
                Poll::Ready(Some(command)) => {
                    self.accept(command);
                    progressed = true;
                }
                Poll::Ready(None) => return Err(ConnectionEnd::ChannelDropped),
                Poll::Pending => break,
            }
        }
        Ok(progressed)
    }

    /// Writes queued frames until the queue is empty or the socket is full.
    fn write_queued(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut progressed = false;
        while !self.queue.is_empty() {
            match self.stream.poll_write_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(result) => result?,
            }
            let mut slices = empty_slices();
            let used = self.queue.fill(&mut slices);
            match self.stream.try_write_vectored(&slices[..used]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    self.queue.advance(written, |written| {
                        if let Some(written) = written {
                            let _ = written.send(Ok(()));
                        }
                    });
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(progressed)
    }

    /// Reads once (if the socket has bytes) and completes the calls whose
    /// responses arrived.
    fn read_responses(&mut self, cx: &mut Context<'_>) -> Result<bool, TransportError> {
        loop {
            match self.stream.poll_read_ready(cx) {
                Poll::Pending => return Ok(false),
                Poll::Ready(result) => result.map_err(lost)?,
            }
            if self.read_buf.capacity() - self.read_buf.len() < MIN_READ_ROOM {
                self.read_buf.reserve(MIN_READ_ROOM);
            }
            match self.stream.try_read_buf(&mut self.read_buf) {
                Ok(0) => {
                    return Err(TransportError::ConnectionLost(
                        "the server closed the connection".to_owned(),
                    ));
                }
                Ok(_) => {
                    self.complete_responses()?;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(lost(e)),
            }
        }
    }

    /// Decodes every whole frame in the read buffer.
    fn complete_responses(&mut self) -> Result<(), TransportError> {
        loop {
            let frame = self
                .decoder
                .decode(&mut self.read_buf)
                .map_err(|e| TransportError::Protocol(e.to_string()))?;
            let Some(Frame { header, body }) = frame else {
                return Ok(());
            };
            match header.kind {
                MessageKind::Response => {
                    // Unknown ids are answers to calls already given up.
                    if let Some(reply) = self.pending.remove(header.request_id) {
                        let _ = reply.send(Ok(RawResponse {
                            status: header.status,
                            body,
                        }));
                    }
                }
                MessageKind::Pong => {}
                kind => tracing::debug!(
                    kind = kind.as_u8(),
                    "ignoring a frame a client does not expect"
                ),
            }
        }
    }

    /// Fails every call and one-way send still waiting on this connection.
    fn fail_everything(&mut self, error: &TransportError) {
        self.pending.fail_all(error);
        for written in self.queue.drain_tokens().flatten() {
            let _ = written.send(Err(error.clone()));
        }
    }

    /// Notes traffic for the heartbeat, and acts on its timer: queues a
    /// ping, or ends a connection whose server has gone silent.
    fn keep_heartbeat(
        &mut self,
        cx: &mut Context<'_>,
        wrote: bool,
        read: bool,
    ) -> Result<bool, TransportError> {
        let Some(heartbeat) = self.heartbeat.as_mut() else {
            return Ok(false);
        };
        if wrote || read {
            let now = Instant::now();
            if wrote {
                heartbeat.sent(now);
            }
            if read {
                heartbeat.received(now);
            }
        }
        match heartbeat.poll_beat(cx) {
            Poll::Pending => Ok(false),
            Poll::Ready(Beat::Ping) => {
                self.queue.push(empty_frame(MessageKind::Ping, 0, 0), None);
                Ok(true)
            }
            Poll::Ready(Beat::Dead(silent_for)) => {
                Err(TransportError::HeartbeatTimeout { silent_for })
            }
        }
    }

    fn end(&mut self, end: ConnectionEnd) -> Poll<ConnectionEnd> {
        let error = match &end {
            ConnectionEnd::Lost(error) => error.clone(),
            ConnectionEnd::ChannelDropped => {
                TransportError::ConnectionLost("the channel was dropped".to_owned())
            }
        };
        self.fail_everything(&error);
        Poll::Ready(end)
    }
}

impl Future for Connection<'_> {
    type Output = ConnectionEnd;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ConnectionEnd> {
        let this = self.get_mut();
        // Each source registers the waker when it returns pending; loop
        // while any of them made progress (tokio's budget bounds a round).
        loop {
            let took = match this.take_commands(cx) {
                Ok(took) => took,
                Err(end) => return this.end(end),
            };
            let wrote = match this.write_queued(cx) {
                Ok(wrote) => wrote,
                Err(e) => return this.end(ConnectionEnd::Lost(lost(e))),
            };
            let read = match this.read_responses(cx) {
                Ok(read) => read,
                Err(e) => return this.end(ConnectionEnd::Lost(e)),
            };
            let pinged = match this.keep_heartbeat(cx, wrote, read) {
                Ok(pinged) => pinged,
                Err(e) => return this.end(ConnectionEnd::Lost(e)),
            };
            if !(took || wrote || read || pinged) {
                return Poll::Pending;
            }
        }
    }
}

fn lost(e: io::Error) -> TransportError {
    TransportError::ConnectionLost(e.to_string())
}
