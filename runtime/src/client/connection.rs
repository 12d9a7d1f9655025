//! The client's connection: one hand-written future that owns the socket
//! and the pending map, and interleaves taking commands, writing frames and
//! reading responses, so that reading and writing never wait on each other.
//! It also keeps the heartbeat: pings when quiet, and gives up on a server
//! that has sent nothing for three intervals (also while its writes are
//! stalled: reading and the heartbeat never wait for the socket to take
//! bytes).
//!
//! Its write queue (`outbox.rs`) is bounded by the room its callers took
//! (`send_room.rs`). A cancelled call's frame that has not begun to be
//! written is dropped from it (the server never hears of the call); one
//! partly written is finished, so the framing holds, and a cancel frame
//! follows it.

use std::collections::hash_map::Entry;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;

use super::answers::{Answers, Ticket};
use super::command::{Command, RawResponse};
use super::command_queue::CommandReceiver;
use super::heartbeat::{Beat, Heartbeat};
use super::outbox::Outbox;
use super::stream::ClientStream;
use super::stream_items::{StreamBytes, StreamItems};
use super::task::Shared;
use crate::context::Metadata;
use crate::error::TransportError;
use crate::protocol::CREDIT_WINDOW;
use crate::protocol::{
    BodyError, Frame, FrameDecoder, FrameError, MessageKind, MetadataLimits,
    parse_response_metadata,
};
use crate::tls::{TlsError, is_tls_record_start};

/// Free room kept in the read buffer before each read.
const MIN_READ_ROOM: usize = 8 * 1024;
/// Commands taken per round before the socket gets a turn.
const COMMANDS_PER_ROUND: usize = 256;
/// While the queue holds fewer bytes than this, a new frame may wait one
/// pass of the run queue for the frames of callers known to be runnable;
/// a larger queue amortises its write on its own and goes out at once.
const COALESCE_BELOW_BYTES: usize = 64 * 1024;

/// What every connection of a channel is set up with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionSettings {
    /// The largest response body accepted.
    pub max_frame_size: u32,
    /// The heartbeat interval; `None`: no heartbeats.
    pub heartbeat_interval: Option<Duration>,
    /// Request and one-way frames a connection holds unwritten; also the
    /// most cancel frames it holds unwritten.
    pub max_queued_calls: usize,
    /// Bytes of request and one-way frames a connection holds unwritten.
    pub max_queued_bytes: usize,
    /// The response metadata a call accepts.
    pub max_response_metadata: MetadataLimits,
    /// Bytes of stream items not yet taken by their calls past which the
    /// connection stops reading.
    pub max_buffered_stream_bytes: usize,
}

/// How a connection ended.
#[derive(Debug)]
pub(crate) enum ConnectionEnd {
    /// Every `Channel` is gone: the task can stop.
    ChannelDropped,
    /// The connection broke; every call on it has been failed with this.
    Lost(TransportError),
}

/// The calls waiting for a response, by request id: the slot of each in
/// the connection's [`Answers`]. Its size is mirrored into a counter the
/// `Channel` can read (a test hook).
#[derive(Debug)]
pub(crate) struct Pending {
    /// foldhash: SipHash cost more than the rest of the bookkeeping.
    map: foldhash::HashMap<u64, Ticket>,
    /// Response metadata that came for a call still waiting, until its
    /// response: one entry per call at most, each within the channel's
    /// limits (`ChannelConfig::max_response_metadata`).
    metadata: foldhash::HashMap<u64, Metadata>,
    /// The open server-streaming calls among them: where their items go,
    /// and the credit the server has left for each.
    streams: foldhash::HashMap<u64, OpenStream>,
    answers: Arc<Answers>,
    len: Arc<AtomicUsize>,
}

/// A server-streaming call, as its connection sees it.
#[derive(Debug)]
struct OpenStream {
    items: Arc<StreamItems>,
    /// Items the server may still send: the window, plus what the call
    /// gave back, minus what came.
    credit: u64,
}

impl Pending {
    pub fn new(answers: Arc<Answers>, len: Arc<AtomicUsize>) -> Pending {
        Pending {
            map: foldhash::HashMap::default(),
            metadata: foldhash::HashMap::default(),
            streams: foldhash::HashMap::default(),
            answers,
            len,
        }
    }

    fn sync_len(&self) {
        self.len.store(self.map.len(), Ordering::Release);
    }

    fn insert(&mut self, id: u64, ticket: Ticket) {
        if let Some(previous) = self.map.insert(id, ticket) {
            self.metadata.remove(&id);
            // Ids are unique among the calls in flight; a clash means a
            // bug upstream.
            self.answers.answer(
                previous,
                Err(TransportError::Protocol(format!("request id {id} reused"))),
            );
        }
        self.sync_len();
    }

    fn remove(&mut self, id: u64) -> Option<Ticket> {
        let ticket = self.map.remove(&id);
        if !self.metadata.is_empty() {
            self.metadata.remove(&id);
        }
        if !self.streams.is_empty() {
            self.streams.remove(&id);
        }
        self.sync_len();
        ticket
    }

    /// Answers call `id` with its response (and the response metadata that
    /// came before it), if it waits; `true` if its caller was still there.
    fn respond(&mut self, id: u64, mut response: RawResponse) -> bool {
        if !self.metadata.is_empty() {
            if let Some(metadata) = self.metadata.remove(&id) {
                response.metadata = metadata;
            }
        }
        match self.remove(id) {
            Some(ticket) => self.answers.answer(ticket, Ok(response)),
            None => false,
        }
    }

    /// Keeps the response metadata of call `id` for its response; fails
    /// the call if it is the second for it, or cannot be read within
    /// `limits`. Metadata for calls not waiting (given up) is dropped.
    fn keep_metadata(&mut self, id: u64, body: bytes::Bytes, limits: MetadataLimits) {
        if !self.map.contains_key(&id) {
            return;
        }
        let error = match self.metadata.entry(id) {
            Entry::Occupied(_) => {
                format!("the server sent response metadata twice for request {id}")
            }
            Entry::Vacant(vacant) => match parse_response_metadata(body, limits) {
                Ok(metadata) => {
                    vacant.insert(metadata);
                    return;
                }
                Err(BodyError::TooManyMetadataEntries { count, max }) => format!(
                    "the server sent {count} response metadata entries for request {id}; at most {max} are accepted"
                ),
                Err(BodyError::MetadataTooLarge { max }) => format!(
                    "the server sent more than {max} bytes of response metadata for request {id}"
                ),
                Err(e) => format!("malformed response metadata for request {id}: {e}"),
            },
        };
        if let Some(ticket) = self.remove(id) {
            self.answers
                .answer(ticket, Err(TransportError::Protocol(error)));
        }
    }

    /// Opens streaming call `id`: its items go to `items`.
    fn open_stream(&mut self, id: u64, ticket: Ticket, items: Arc<StreamItems>) {
        self.insert(id, ticket);
        self.streams.insert(
            id,
            OpenStream {
                items,
                credit: u64::from(CREDIT_WINDOW),
            },
        );
    }

    /// An item of streaming call `id` arrived: handed to the call, or, sent
    /// without credit, the call fails (`false`: the server is to be told).
    /// Items for calls not open (given up, or not streaming) are dropped.
    fn stream_item(&mut self, id: u64, item: bytes::Bytes) -> bool {
        let Some(stream) = self.streams.get_mut(&id) else {
            return true;
        };
        if stream.credit == 0 {
            let error = format!("the server sent an item of request {id} without credit");
            if let Some(ticket) = self.remove(id) {
                self.answers
                    .answer(ticket, Err(TransportError::Protocol(error)));
            }
            return false;
        }
        stream.credit -= 1;
        stream.items.push(item);
        true
    }

    /// The call took `count` items: the server may send as many more.
    /// Whether the call is still open (its credit frame is then sent).
    fn give_credit(&mut self, id: u64, count: u32) -> bool {
        match self.streams.get_mut(&id) {
            Some(stream) => {
                stream.credit = stream.credit.saturating_add(u64::from(count));
                true
            }
            None => false,
        }
    }

    fn fail_all(&mut self, error: &TransportError) {
        // The count drops before the callers wake, so none of them can see
        // its own call still pending.
        self.metadata.clear();
        self.streams.clear();
        let failed = std::mem::take(&mut self.map);
        self.sync_len();
        for (_, ticket) in failed {
            self.answers.answer(ticket, Err(error.clone()));
        }
    }

    /// Answers every waiting call with one status (the server refused the
    /// whole connection, so none of them ran).
    fn answer_all(&mut self, status: u8, body: &bytes::Bytes) {
        self.metadata.clear();
        self.streams.clear();
        let answered = std::mem::take(&mut self.map);
        self.sync_len();
        for (_, ticket) in answered {
            self.answers.answer(
                ticket,
                Ok(RawResponse {
                    status,
                    body: body.clone(),
                    metadata: Metadata::new(),
                }),
            );
        }
    }
}

/// One live connection of a channel.
pub(crate) struct Connection<'a> {
    stream: ClientStream,
    /// Where the connection goes (for errors).
    target: &'a str,
    commands: &'a mut CommandReceiver,
    pending: Pending,
    outbox: Outbox,
    read_buf: BytesMut,
    decoder: FrameDecoder,
    heartbeat: Option<Heartbeat>,
    /// What the server said when it refused the whole connection (a status
    /// answer to request id 0, which no call uses), for the error of calls
    /// that meet the close.
    refusal: Option<String>,
    /// Whether the server answered anything but a refusal (a response or a
    /// pong): a connection that never was is a failed attempt, for the
    /// reconnect backoff.
    served: bool,
    /// When to let the callers that are runnable queue their frames
    /// before writing.
    batch: Batch,
    /// The response metadata a call accepts.
    max_response_metadata: MetadataLimits,
    /// The bytes of stream items that no call has taken yet (past its
    /// bound the connection stops reading its socket).
    stream_bytes: Arc<StreamBytes>,
}

/// When the connection lets other callers' frames join a write.
///
/// A caller that hands over a frame wakes the connection task, and tokio
/// runs a task woken by the running task next (its LIFO slot): written at
/// once, every frame would take a write of its own even with hundreds of
/// calls in flight. So when the connection takes new frames while callers
/// it has answered have not sent again yet (they are runnable: their
/// answers woke them), it wakes itself and returns `Pending` once. A
/// self-wake puts the task at the back of the run queue, behind those
/// callers, without waiting for a timer or the I/O driver (as `yield_now`
/// would); their frames join the next write. It reads before it waits, so
/// answers that arrived wake their callers first. A lone call (nobody else
/// answered and silent) and a queue of 64 KiB or more go out at once.
///
/// The models: Netty's `FlushConsolidationHandler` (flush after the read
/// batch, or once the producers have run), Redis's write before sleeping
/// in `epoll_wait`, netpoll's batch flush.
#[derive(Debug, Default)]
struct Batch {
    /// Callers answered since the connection last waited for them that
    /// have not handed over a frame since (an estimate: a caller may not
    /// call again).
    answered_silent: usize,
    /// The connection has waited once for this batch: write now.
    waited: bool,
}

impl Batch {
    /// A caller was answered (its task is now runnable).
    fn answered(&mut self) {
        self.answered_silent += 1;
    }

    /// A frame was handed over.
    fn handed_over(&mut self) {
        self.answered_silent = self.answered_silent.saturating_sub(1);
    }

    /// Whether to wait one pass of the run queue before writing `queued`
    /// bytes; if so, the next decision writes.
    fn wait_for_callers(&mut self, queued: usize) -> bool {
        if self.waited || self.answered_silent == 0 || queued >= COALESCE_BELOW_BYTES {
            return false;
        }
        self.waited = true;
        // They get this one chance; those that do not call meanwhile are
        // not waited for again.
        self.answered_silent = 0;
        true
    }

    /// The queue was written.
    fn wrote(&mut self) {
        self.waited = false;
    }
}

impl<'a> Connection<'a> {
    /// Takes over a connected socket.
    pub fn new(
        stream: ClientStream,
        target: &'a str,
        commands: &'a mut CommandReceiver,
        shared: &Shared,
        settings: ConnectionSettings,
    ) -> Connection<'a> {
        // A ping first: the server closes a connection whose first frame
        // does not come within its first-frame deadline (10 s by default),
        // and a channel may connect long before its first call.
        let mut outbox = Outbox::new(settings.max_queued_calls, Arc::clone(&shared.unsent));
        outbox.ping();
        Connection {
            stream,
            target,
            commands,
            pending: Pending::new(Arc::clone(&shared.answers), Arc::clone(&shared.pending_len)),
            stream_bytes: Arc::clone(&shared.stream_bytes),
            outbox,
            read_buf: BytesMut::with_capacity(MIN_READ_ROOM),
            decoder: FrameDecoder::new(settings.max_frame_size),
            heartbeat: settings
                .heartbeat_interval
                .map(|interval| Heartbeat::new(interval, Instant::now())),
            refusal: None,
            served: false,
            batch: Batch::default(),
            max_response_metadata: settings.max_response_metadata,
        }
    }

    /// Whether the server ever answered on this connection (a response or
    /// a pong, not a refusal).
    pub fn served(&self) -> bool {
        self.served
    }

    /// Takes one command: registers calls and queues frames.
    pub fn accept(&mut self, command: Command) {
        match command {
            Command::Call {
                id,
                frame,
                ticket,
                room,
            } => {
                self.batch.handed_over();
                // A caller that gave up already has its cancel behind this
                // command: the frame leaves the queue again then.
                self.pending.insert(id, ticket);
                self.outbox.request(id, frame, room);
            }
            Command::Oneway {
                id,
                frame,
                written,
                room,
            } => {
                self.batch.handed_over();
                if written.is_closed() {
                    return;
                }
                self.outbox.oneway(id, frame, written, room);
            }
            Command::Stream {
                id,
                frame,
                ticket,
                room,
                items,
            } => {
                self.batch.handed_over();
                self.pending.open_stream(id, ticket, items);
                self.outbox.request(id, frame, room);
            }
            Command::Credit { id, count } => {
                if self.pending.give_credit(id, count) {
                    self.outbox.credit(id, count);
                }
            }
            Command::Cancel { id } => {
                let was_pending = self.pending.remove(id).is_some();
                // Unwritten, the request leaves the queue and the server
                // never hears of it; begun, it is finished and cancelled.
                if !self.outbox.drop_unwritten(id) && was_pending {
                    self.outbox.cancel(id);
                }
            }
        }
    }

    /// Takes the commands that are ready: whether it took any, and whether
    /// it stopped at [`COMMANDS_PER_ROUND`] (more may be ready; otherwise
    /// the channel was found empty and will wake the task). `Err` when
    /// every sender is gone.
    fn take_commands(&mut self, cx: &mut Context<'_>) -> Result<(bool, bool), ConnectionEnd> {
        for taken in 0..COMMANDS_PER_ROUND {
            match self.commands.poll_recv(cx) {
                Poll::Ready(Some(command)) => self.accept(command),
                Poll::Ready(None) => return Err(ConnectionEnd::ChannelDropped),
                Poll::Pending => return Ok((taken > 0, false)),
            }
        }
        // The queue spends none of tokio's budget: once the socket has spent
        // it, the task yields after a full round (woken at once, behind the
        // tasks already runnable) instead of taking more.
        if !tokio::task::coop::has_budget_remaining() {
            cx.waker().wake_by_ref();
            return Ok((true, false));
        }
        Ok((true, true))
    }

    /// Writes queued frames until the queue is empty or the socket is full.
    fn write_queued(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let wrote = self.outbox.write(&mut self.stream, cx)?;
        if wrote {
            self.batch.wrote();
        }
        Ok(wrote)
    }

    /// Reads once (if the socket has bytes) and completes the calls whose
    /// responses arrived.
    fn read_responses(&mut self, cx: &mut Context<'_>) -> Result<bool, TransportError> {
        // Room for the next read: in the read buffer, or in the own buffer
        // of a large body being read (exact-size, grown only as its bytes
        // arrive: no doubling, no copy of a partial body).
        self.decoder
            .reserve_for_read(&mut self.read_buf, MIN_READ_ROOM);
        let mut room = self.decoder.read_buffer(&mut self.read_buf);
        match self.stream.poll_read(cx, &mut room) {
            Poll::Pending => Ok(false),
            Poll::Ready(Ok(0)) => {
                // A TLS server answers a plaintext client with a TLS alert
                // record, shorter than a frame header, and closes.
                // (Only at a frame boundary: mid-frame, these are body bytes.)
                if let (false, Some(&[a, b])) =
                    (self.decoder.in_body(), self.read_buf.first_chunk::<2>())
                {
                    if is_tls_record_start(u16::from_be_bytes([a, b])) {
                        return Err(self.tls_error(TlsError::ServerRequiresTls));
                    }
                }
                let message = match &self.refusal {
                    Some(refusal) => format!("the server closed the connection: {refusal}"),
                    None => "the server closed the connection".to_owned(),
                };
                Err(TransportError::ConnectionLost(message))
            }
            Poll::Ready(Ok(_)) => {
                self.complete_responses()?;
                Ok(true)
            }
            Poll::Ready(Err(e)) => Err(self.read_error(e)),
        }
    }

    /// A failed read: a TLS alert from the server (such as a refused client
    /// certificate), or a broken connection.
    fn read_error(&self, e: io::Error) -> TransportError {
        #[cfg(feature = "tls")]
        if let Some(tls) = crate::tls::handshake::client_error(&e, "") {
            return self.tls_error(tls);
        }
        lost(e)
    }

    fn tls_error(&self, source: TlsError) -> TransportError {
        TransportError::Tls {
            addr: self.target.to_owned(),
            source,
        }
    }

    /// Decodes every whole frame in the read buffer.
    fn complete_responses(&mut self) -> Result<(), TransportError> {
        loop {
            let frame = self
                .decoder
                .decode(&mut self.read_buf)
                .map_err(|e| match e {
                    FrameError::BadMagic { found } if is_tls_record_start(found) => {
                        self.tls_error(TlsError::ServerRequiresTls)
                    }
                    e => TransportError::Protocol(e.to_string()),
                })?;
            let Some(Frame { header, body }) = frame else {
                return Ok(());
            };
            match header.kind {
                // Request id 0 is no call's: a status there refuses the
                // whole connection (e.g. the server's connection limit).
                MessageKind::Response if header.request_id == 0 && header.status > 1 => {
                    let message = crate::protocol::refusal_message(&body);
                    tracing::debug!(status = header.status, %message, "the server refused the connection");
                    self.pending.answer_all(header.status, &body);
                    self.refusal = Some(format!("status {}: {message}", header.status));
                }
                MessageKind::Response => {
                    self.served = true;
                    // Unknown ids are answers to calls already given up.
                    let response = RawResponse {
                        status: header.status,
                        body,
                        metadata: Metadata::new(),
                    };
                    if self.pending.respond(header.request_id, response) {
                        self.batch.answered();
                    }
                }
                MessageKind::StreamItem => {
                    self.served = true;
                    if !self.pending.stream_item(header.request_id, body) {
                        // The call failed here: its handler need not go on.
                        self.outbox.cancel(header.request_id);
                    }
                }
                MessageKind::ResponseMetadata => {
                    self.pending
                        .keep_metadata(header.request_id, body, self.max_response_metadata);
                }
                MessageKind::Pong => self.served = true,
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
        self.outbox.fail_all(error);
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
                self.outbox.ping();
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
        // Each source registers the waker when it returns pending, and is
        // polled again in this call only if it may have more: the commands
        // if a round stopped at its limit, the socket after a read that
        // brought bytes (until it is found empty), the write queue once
        // frames were added to it (tokio's budget bounds a round).
        let (mut poll_commands, mut poll_read, mut poll_write) = (true, true, true);
        loop {
            let took = if poll_commands {
                match this.take_commands(cx) {
                    Ok((took, more)) => {
                        poll_commands = more;
                        took
                    }
                    Err(end) => return this.end(end),
                }
            } else {
                false
            };
            // Read first: answers that arrived wake their callers, who may
            // then join the write below.
            // Items its calls have not taken hold the connection's reads
            // (woken by their credit commands as they take them).
            let held = this.stream_bytes.hold_reads(cx);
            let read = poll_read
                && !held
                && match this.read_responses(cx) {
                    Ok(read) => read,
                    Err(e) => return this.end(ConnectionEnd::Lost(e)),
                };
            poll_read = read;
            if took && this.batch.wait_for_callers(this.outbox.queued_bytes()) {
                // To the back of the run queue, behind the callers (see
                // `Batch`); every source's waker is registered by now or
                // the next poll comes from this wake.
                cx.waker().wake_by_ref();
                this.outbox.note_batch_wait();
                this.outbox.publish();
                return Poll::Pending;
            }
            let wrote = (poll_write || took)
                && match this.write_queued(cx) {
                    Ok(wrote) => wrote,
                    Err(e) => return this.end(ConnectionEnd::Lost(lost(e))),
                };
            // Reads held back by the calls' own items are no sign of a
            // silent server.
            let pinged = match this.keep_heartbeat(cx, wrote, read || held) {
                Ok(pinged) => pinged,
                Err(e) => return this.end(ConnectionEnd::Lost(e)),
            };
            // A ping is a frame to write.
            poll_write = pinged;
            if !(poll_commands || poll_read || poll_write) {
                this.outbox.publish();
                return Poll::Pending;
            }
        }
    }
}

fn lost(e: io::Error) -> TransportError {
    TransportError::ConnectionLost(e.to_string())
}
