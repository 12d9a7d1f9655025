//! One accepted connection: admission under the connection limit, the
//! reader loop that decodes frames and routes requests (and closes the
//! connection when a read deadline passes, the peer exceeds its budget of
//! protocol errors, or its answers pile up unread), the lifetime of its
//! writer task, and what happens to its calls when it closes.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use super::call::{CallParts, IncomingCall};
use super::config::READ_CHUNK;
use super::connection_shared::{ConnShared, SlotGuard};
use super::environment::CloseSignal;
use super::limits::{
    Check, MAX_LINGERING_REFUSALS, ReadClock, Stall, far_future, refuse_connection,
};
use super::respond::Responder;
use super::shared::{ConnectionPermit, Phase, ServerShared, closing};
use super::slots::{ReserveError, SlotTable};
use super::writer::{WriterEnd, write_at_once, write_frames};
use crate::error::StatusCode;
use crate::protocol::{
    BodyError, Frame, FrameDecoder, FrameError, HEADER_LEN, MessageKind, RequestBody, empty_frame,
};
use crate::tls::{PeerIdentity, is_tls_record_start};

/// Free room the reader keeps in its buffer before reading, so that many
/// small frames arrive in one read.
const MIN_READ_ROOM: usize = 8 * 1024;
/// Unwritten answer bytes at which the reader stops handling requests
/// until the writer has written half of them (or half the connection's
/// memory limit, if that is smaller).
const MAX_ANSWER_BACKLOG: usize = 1024 * 1024;
/// After answering status 10 or 11, how long unread input is drained
/// before the socket is closed (closing with unread input sends a reset,
/// which can destroy the answer before the peer reads it).
const LINGER: Duration = Duration::from_millis(500);
/// At most this much input is drained while lingering.
const LINGER_MAX_BYTES: usize = 1 << 20;
/// Once the reader stopped, how long the writer gets to write the answers
/// already queued (a peer that does not read them is not waited for).
const FINAL_FLUSH: Duration = Duration::from_secs(1);
/// How often a reader paused because the server's pool is spent looks at
/// the pool again (its own writer wakes it for its own answers).
const POOL_POLL: Duration = Duration::from_millis(20);
/// How often a reader paused by its own calls, whose read deadlines are
/// held, looks again whether they should run (answers may have come).
const HELD_DEADLINE_POLL: Duration = Duration::from_millis(100);
/// How often a paused reader looks whether its peer closed the connection.
const CLOSE_POLL: Duration = Duration::from_millis(100);
/// The longest time between the pongs a reader paused by its own calls
/// sends (half the heartbeat interval, at most this).
const MAX_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Why the reader stopped.
enum ReadEnd {
    /// The peer closed its side.
    Eof,
    /// The socket failed.
    Io(std::io::Error),
    /// The server is closing.
    Closing,
    /// A read deadline passed: no first frame, a frame that did not
    /// arrive whole, or nothing for three heartbeat intervals.
    Stalled(Stall),
    /// The reader stayed paused, with answers waiting to be written, for
    /// the write-stall timeout: the peer does not take its answers.
    AnswersPiledUp,
    /// The writer ended before the reader: the peer took no bytes for the
    /// write-stall timeout, or the socket failed.
    WriterEnded(WriterEnd),
    /// The peer made more protocol errors than its budget.
    TooManyErrors(u32),
    /// The peer broke the framing.
    Framing(FrameError),
}

/// The read side of a connection: what the reader reads from, and, where
/// the transport can tell without reading, whether the peer has closed or
/// reset the connection (a paused reader does not read, so it would not
/// see the end of the stream).
pub(crate) trait ReadSide: AsyncRead + Unpin {
    /// Whether the peer is known to have closed or reset the connection.
    fn peer_closed(&self) -> bool {
        false
    }

    /// The TCP socket under this side, if it is a plain TCP connection:
    /// the reader may then write the answers it produced itself, without
    /// waking the writer task (see `Outbox::reader_done`). A write through
    /// it does not wait and never interleaves with the writer's: the
    /// outbox lets only one of them write at a time.
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }
}

/// TCP: the socket's readiness says so (`EPOLLRDHUP` / `EPOLLHUP` on
/// Linux), even with unread bytes before the end.
impl ReadSide for tokio::net::tcp::OwnedReadHalf {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }

    fn peer_closed(&self) -> bool {
        let ready = std::pin::pin!(self.ready(tokio::io::Interest::READABLE));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::future::Future::poll(ready, &mut cx) {
            std::task::Poll::Ready(Ok(ready)) => ready.is_read_closed(),
            std::task::Poll::Ready(Err(_)) => true,
            std::task::Poll::Pending => false,
        }
    }
}

/// TLS and other streams split by `tokio::io::split`: not known until the
/// reader reads again.
impl<T: AsyncRead> ReadSide for tokio::io::ReadHalf<T> {}

/// Aborts the task when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves one connection until it closes.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    server: Arc<ServerShared>,
) {
    configure(&stream, peer);
    let Some(permit) = server.try_connection_started() else {
        let limit = server.config().max_connections;
        tracing::debug!(%peer, limit, "too many connections; refusing");
        let refusal = server.try_refusal_started(MAX_LINGERING_REFUSALS);
        refuse_connection(stream, limit, refusal.is_some()).await;
        return;
    };
    tracing::debug!(%peer, "connection accepted");
    #[cfg(feature = "tls")]
    if let Some(tls) = &server.tls {
        // In this connection's task, never in the accept loop; bounded by
        // the handshake timeout.
        match crate::tls::handshake::accept(tls, stream).await {
            Ok((stream, identity)) => {
                let (read_half, write_half) = tokio::io::split(stream);
                serve_halves(read_half, write_half, peer, identity, server, permit).await;
            }
            // A peer that connects and closes (port scans, TCP health
            // checks) is routine: debug. Certificates refused, timeouts and
            // plaintext clients are worth an operator's eye: info.
            Err(e @ crate::tls::TlsError::Handshake(_)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed")
            }
            Err(e) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
        }
        return;
    }
    let (read_half, write_half) = stream.into_split();
    serve_halves(read_half, write_half, peer, None, server, permit).await;
}

/// Serves one connection over a stream the caller already connected
/// ([`ServerHandle::serve_stream`](super::ServerHandle::serve_stream)):
/// as it is, with no TLS, under the connection limit.
pub(crate) async fn serve_stream<S>(stream: S, peer: SocketAddr, server: Arc<ServerShared>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Some(permit) = server.try_connection_started() else {
        let limit = server.config().max_connections;
        tracing::debug!(%peer, limit, "too many connections; refusing a served stream");
        let refusal = server.try_refusal_started(MAX_LINGERING_REFUSALS);
        refuse_connection(stream, limit, refusal.is_some()).await;
        return;
    };
    tracing::debug!(%peer, "serving a stream");
    let (read_half, write_half) = tokio::io::split(stream);
    serve_halves(read_half, write_half, peer, None, server, permit).await;
}

/// Serves a connection, whatever it runs over (TCP halves from
/// `into_split`, or `tokio::io::split` halves of TLS and other streams),
/// until it closes; then stops its calls (see [`end_calls`]) and lets its
/// one-way calls finish for a while.
async fn serve_halves<R, W>(
    mut read_half: R,
    write_half: W,
    peer: SocketAddr,
    identity: Option<Arc<PeerIdentity>>,
    server: Arc<ServerShared>,
    permit: ConnectionPermit,
) where
    R: ReadSide,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let mut phase = server.subscribe();
    let conn = ConnShared::new(Arc::clone(&server.env), peer, identity);
    let mut writer = AbortOnDrop(tokio::spawn(write_frames(write_half, Arc::clone(&conn))));
    // The connection's own half of its slot table: only this task (the
    // reader, then the code below) touches it.
    let mut calls = CallsOfTheTask {
        conn: Arc::clone(&conn),
        table: SlotTable::default(),
    };
    let table = &mut calls.table;

    let end = read_frames(
        &server,
        &conn,
        table,
        &mut read_half,
        &mut phase,
        &mut writer.0,
    )
    .await;
    let after = end_calls(&conn, table, end);
    conn.outbox.close();
    match after {
        // The writer is gone already.
        After::WriterEnded => {}
        // Nothing more is written; waiting for the aborted writer lets it
        // release what it held.
        After::CloseNow => {
            writer.0.abort();
            let _ = (&mut writer.0).await;
        }
        After::Flush | After::FlushAndLinger => {
            if tokio::time::timeout(FINAL_FLUSH, &mut writer.0)
                .await
                .is_err()
            {
                tracing::debug!(%peer, "the peer does not take its last answers; closing");
                writer.0.abort();
                let _ = (&mut writer.0).await;
            }
        }
    }
    conn.release_unsent();
    if let After::FlushAndLinger = after {
        discard_input(&mut read_half).await;
    }
    drop(read_half);
    drop(writer);
    tracing::debug!(%peer, "connection closed");
    finish_orphaned_oneway_calls(&conn, table, &mut phase).await;
    // Only now does the connection stop counting against the limit: its
    // one-way calls hold their slots and request bytes, and its reserved
    // share, until they end. (Released at once, a peer could park one-way
    // calls on ever more closed connections, each with a share of memory
    // outside the pool.)
    drop(permit);
}

/// The connection task's slot table, which stops the calls still in it
/// when the task is dropped before it ended them itself (a shutdown whose
/// close grace passed aborts it): no handler is left running for a
/// connection that is gone, and the shutdown can wait for them to end.
struct CallsOfTheTask {
    conn: Arc<ConnShared>,
    table: SlotTable,
}

impl Drop for CallsOfTheTask {
    fn drop(&mut self) {
        self.table.abort_all(&self.conn.slots);
    }
}

/// What happens to the connection's socket once the reader stopped.
enum After {
    /// The writer already ended.
    WriterEnded,
    /// Close at once; nothing more is written.
    CloseNow,
    /// The writer writes what is queued (for at most [`FINAL_FLUSH`]).
    Flush,
    /// The same, then unread input is drained for a moment so the last
    /// answer is not destroyed by a reset.
    FlushAndLinger,
}

/// Stops the calls of a connection whose reader stopped, and answers what
/// must be answered.
///
/// The calls that wait for an answer are stopped at once: a peer that
/// closes (or half-closes) its connection, breaks the protocol or stops
/// reading is gone, and its calls must not hold their slots (Courier
/// clients never half-close; other clients must keep their write side open
/// until their answers have arrived). One-way calls go on (their client
/// may well have sent them and left), for at most
/// [`orphaned_oneway_timeout`](super::ServerBuilder::orphaned_oneway_timeout).
/// A server shutdown cuts every call and answers the ones that wait
/// status 6.
fn end_calls(conn: &ConnShared, table: &mut SlotTable, end: ReadEnd) -> After {
    let peer = conn.peer;
    let after = match end {
        ReadEnd::Eof => {
            tracing::debug!(%peer, "peer closed the connection");
            After::Flush
        }
        ReadEnd::Io(e) => {
            tracing::debug!(%peer, error = %e, "read failed; closing");
            After::Flush
        }
        ReadEnd::Closing => {
            tracing::debug!(%peer, "server closing the connection");
            for cut in table.cut_all(&conn.slots) {
                let responder = Responder::new(
                    cut.request_id,
                    cut.serializer,
                    conn.env.config.max_frame_size,
                );
                conn.send_control(responder.status(
                    StatusCode::DeadlineExceeded,
                    "the server shut down before the call finished (its drain timeout passed)",
                ));
            }
            return After::Flush;
        }
        ReadEnd::Stalled(stall) => {
            tracing::debug!(%peer, reason = stall.describe(), "read deadline passed; closing");
            After::Flush
        }
        ReadEnd::AnswersPiledUp => {
            tracing::debug!(%peer, held = conn.memory.charged(), "the peer does not take its answers; closing");
            After::CloseNow
        }
        ReadEnd::WriterEnded(end) => {
            tracing::debug!(%peer, %end, "the writer ended; closing");
            After::WriterEnded
        }
        ReadEnd::TooManyErrors(errors) => {
            tracing::debug!(%peer, errors, "too many protocol errors; closing");
            After::FlushAndLinger
        }
        ReadEnd::Framing(FrameError::BadMagic { found }) if is_tls_record_start(found) => {
            tracing::info!(
                %peer,
                "a TLS client connected, but this server has no TLS configured; closing (configure TLS on the server, or remove it from the client)"
            );
            After::CloseNow
        }
        ReadEnd::Framing(e @ FrameError::BadMagic { .. }) => {
            tracing::debug!(%peer, error = %e, "bad magic; closing at once");
            After::CloseNow
        }
        ReadEnd::Framing(e) => {
            tracing::debug!(%peer, error = %e, "framing error; answering and closing");
            let (request_id, serializer, code) = match e {
                FrameError::UnsupportedVersion {
                    request_id,
                    serializer,
                    ..
                } => (request_id, serializer, StatusCode::UnsupportedVersion),
                FrameError::FrameTooLarge {
                    request_id,
                    serializer,
                    ..
                } => (request_id, serializer, StatusCode::FrameTooLarge),
                FrameError::BadMagic { .. } => (0, 0, StatusCode::Internal),
            };
            let responder = Responder::new(request_id, serializer, conn.env.config.max_frame_size);
            conn.send_control(responder.status(code, &e.to_string()));
            After::FlushAndLinger
        }
    };
    table.abort_answerable(&conn.slots);
    after
}

/// Lets the one-way calls of a closed connection finish, for at most the
/// orphaned one-way timeout (or until the server closes), then stops them;
/// returns once every call of the connection has ended.
async fn finish_orphaned_oneway_calls(
    conn: &ConnShared,
    table: &mut SlotTable,
    phase: &mut watch::Receiver<Phase>,
) {
    if conn.slots.live() == 0 {
        return;
    }
    let grace = conn.env.config.orphaned_oneway_timeout;
    tokio::select! {
        () = conn.slots.wait_empty() => return,
        () = tokio::time::sleep(grace) => {
            tracing::debug!(peer = %conn.peer, calls = conn.slots.live(), "one-way calls outlived their closed connection; stopping them");
        }
        () = closing(phase) => {}
    }
    table.abort_all(&conn.slots);
    // An aborted task ends at its next turn on the runtime, where its
    // handler is dropped and its slot and bytes released: waited for, so
    // that no call outlives its connection's task (nor the server's
    // shutdown, which waits for these tasks).
    conn.slots.wait_empty().await;
}

/// TCP_NODELAY (answers go out at once) and SO_KEEPALIVE.
fn configure(stream: &TcpStream, peer: SocketAddr) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    if let Err(e) = socket2::SockRef::from(stream).set_keepalive(true) {
        tracing::debug!(%peer, error = %e, "cannot set SO_KEEPALIVE");
    }
}

/// Reads and routes frames until the connection ends.
///
/// Every byte read is charged to the connection (see `memory.rs`); a
/// frame's bytes go to its call, or are released once the frame is
/// handled. While the connection holds more than it may, the reader stops
/// reading (see [`Paused::wait_for_room`]).
async fn read_frames<R: ReadSide>(
    server: &ServerShared,
    conn: &Arc<ConnShared>,
    table: &mut SlotTable,
    socket: &mut R,
    phase: &mut watch::Receiver<Phase>,
    writer: &mut JoinHandle<WriterEnd>,
) -> ReadEnd {
    let mut buf = BytesMut::with_capacity(MIN_READ_ROOM);
    let config = &conn.env.config;
    let mut decoder = FrameDecoder::new(config.max_frame_size);
    let max_errors = config.max_protocol_errors;
    let mut errors = 0u32;
    // Bytes read and charged, not yet handed on as frames.
    let mut unframed = 0usize;
    // Bytes allocated ahead of arrived ones for a large body, charged.
    let mut charged_ahead = 0usize;
    // One timer for every read deadline (see `ReadClock`): not reset per
    // read or per frame; pushed out when it fires early.
    let mut clock = ReadClock::new(config.read_timeouts(), Instant::now());
    let timed = clock.enabled();
    let timer = tokio::time::sleep_until(clock.next_deadline().map_or_else(far_future, |d| d.0));
    tokio::pin!(timer);
    // The server's close, one atomic load a turn (see `CloseSignal`).
    let mut close_signal = CloseSignal::new(&conn.env, conn.id());
    let mut closing_read = std::future::poll_fn(|cx| close_signal.poll_closed(cx));
    let pool = &conn.env.memory;
    // Unwritten answers at which the reader stops handling requests until
    // the peer has read half of them.
    let backlog = MAX_ANSWER_BACKLOG.min(config.connection_memory_limit() / 2);
    // The answers the reader writes itself (see `answers_out`).
    let mut answers: Vec<Bytes> = Vec::new();
    let end = 'read: loop {
        let mut any_frame = false;
        // The frames already read are handled, also past the connection's
        // limits, as long as handling them queues no answer: a request
        // handed to its call keeps the bytes it was charged as it was read
        // (left in the buffer until a call ends, it could wait for ever:
        // for a call its other calls wait on); what its call adds (its
        // task, its metadata's copy: see `SlotGuard::charge`) is charged
        // too, and bounded by the connection's in-flight limit. Once a
        // frame's handling queued an answer over the limits (a pong, the
        // answer to a refused request, which can outgrow the request), the
        // rest waits in the buffer, charged, until there is room again. (An
        // answer goes unnoticed here only if the writer wrote as many bytes
        // meanwhile: the peer is reading then.)
        let mut answered = false;
        // Whether every whole frame in the buffer was handled (else the
        // loop stopped for the limits or the backlog, and the rest must be
        // handled before the socket is read again: the peer may have sent
        // everything already).
        let mut all_handled = false;
        // What the frames of this read produce (answers of calls that
        // finish inline, control frames) goes out in one write as soon as
        // the reader has handled them (see `answers_out` and `outbox.rs`).
        conn.outbox.reader_busy();
        while !(answered && conn.memory.must_pause(pool)) && conn.outbox.unwritten() < backlog {
            let before = conn.outbox.unwritten();
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    any_frame = true;
                    let size = HEADER_LEN + frame.body.len();
                    unframed = unframed.saturating_sub(size);
                    let handled = handle_frame(server, conn, table, frame, size);
                    answered = conn.outbox.unwritten() > before;
                    if let Handled::ProtocolError = handled {
                        errors += 1;
                        if errors > max_errors {
                            break 'read ReadEnd::TooManyErrors(errors);
                        }
                    }
                    if !tokio::task::coop::has_budget_remaining() {
                        // The answers so far go out while the reader yields.
                        answers_out(conn, &*socket, &mut answers);
                        spend_budget().await;
                        conn.outbox.reader_busy();
                    } else {
                        spend_budget().await;
                    }
                }
                Ok(None) => {
                    all_handled = true;
                    break;
                }
                Err(e) => break 'read ReadEnd::Framing(e),
            }
        }
        answers_out(conn, &*socket, &mut answers);
        if timed && clock.decoded(any_frame, decoder.in_body() || !buf.is_empty()) {
            // A frame began: its deadline may come before the armed one.
            if let Some((at, _)) = clock.next_deadline() {
                if at < timer.deadline() {
                    timer.as_mut().reset(at);
                }
            }
        }
        // Also when the answers queued outrun the socket (calls that finish
        // inline answer as fast as requests arrive): no more requests are
        // handled until the writer has written half of them, so a peer that
        // reads gets its answers instead of status 18 for those past the
        // connection's limits.
        if conn.memory.must_pause(pool) || conn.outbox.unwritten() >= backlog {
            let paused = Paused {
                backlog,
                held_by_reader: unframed + charged_ahead,
                conn,
                socket: &mut *socket,
                phase: &mut *phase,
                writer: &mut *writer,
                clock: &mut clock,
                timer: timer.as_mut(),
                timed,
            };
            match paused.wait_for_room().await {
                Some(end) => break end,
                // Frames may be waiting in the buffer: handle them first.
                None => continue,
            }
        }
        if !all_handled {
            // Room came back meanwhile (the writer wrote): the frames left
            // in the buffer come first.
            continue;
        }
        // Room for the next read: in the read buffer, or in the own buffer
        // of a large body being read (which grows only as its bytes
        // arrive; what it holds ahead of them is charged too).
        decoder.reserve_for_read(&mut buf, MIN_READ_ROOM);
        let ahead = decoder.reserved_ahead();
        if ahead > charged_ahead {
            conn.charge_forced(ahead - charged_ahead);
        } else {
            conn.release(charged_ahead - ahead);
        }
        charged_ahead = ahead;
        // At most one chunk per read: what a connection can hold past its
        // limits before it pauses.
        let mut room = decoder.read_buffer(&mut buf).limit(READ_CHUNK);
        tokio::select! {
            biased;
            () = &mut closing_read => break ReadEnd::Closing,
            ended = &mut *writer => break ReadEnd::WriterEnded(writer_end(ended)),
            read = socket.read_buf(&mut room) => match read {
                Ok(0) => break ReadEnd::Eof,
                Ok(read) => {
                    // Bytes read into room charged ahead are charged
                    // already: they move from the one count to the other.
                    let filled = read.min(charged_ahead);
                    charged_ahead -= filled;
                    conn.charge_forced(read - filled);
                    unframed += read;
                    if timed {
                        clock.read(Instant::now());
                    }
                }
                // A TLS peer that closes without close_notify (every peer
                // that just drops its socket) reads as UnexpectedEof; a
                // TCP read never returns it. Either way the peer is gone.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break ReadEnd::Eof,
                Err(e) => break ReadEnd::Io(e),
            },
            () = &mut timer, if timed => match clock.check(Instant::now()) {
                Check::Expired(stall) => break ReadEnd::Stalled(stall),
                Check::RearmAt(at) => timer.as_mut().reset(at),
                Check::Disarm => timer.as_mut().reset(far_future()),
            },
        }
    };
    answers_out(conn, &*socket, &mut answers);
    conn.release(unframed + charged_ahead);
    end
}

/// The reader is done with what it read: the answers it produced go out
/// now, written by the reader itself with one write when the writer has
/// nothing in hand and the socket is plain TCP (which saves the writer
/// task's wake-up and poll: ~1,000 instructions a call, callgrind), else
/// by the writer, woken for them. `scratch` is the reader's own vector
/// for them (empty between uses: no allocation per batch).
fn answers_out<R: ReadSide>(conn: &ConnShared, socket: &R, scratch: &mut Vec<Bytes>) {
    let tcp = socket.tcp();
    if conn.outbox.reader_done(tcp.is_some(), scratch) {
        if let Some(tcp) = tcp {
            write_at_once(conn, tcp, scratch);
        }
        conn.outbox.reader_wrote(scratch);
    }
}

/// Spends one unit of tokio's cooperative budget for a frame handled, and
/// returns to the runtime first if the budget is spent (the task is woken
/// at once, behind the tasks already runnable).
///
/// One read can bring a thousand small requests, each served inline when
/// its handler finishes at once: without this, a peer that keeps its
/// socket full would keep the reader, and every other task of its worker
/// (the other connections' readers, its own writer), waiting for as long
/// as it floods, or until its answers reach the connection's limit. Socket
/// reads spend the budget too, but only once per read, and a transport
/// from outside tokio may not spend it at all. The answers of the frames
/// handled so far go out before the reader yields (the read loop sends
/// them when the budget is spent: see `answers_out`).
async fn spend_budget() {
    tokio::task::consume_budget().await;
}

/// What a writer task that ended returned (a panic or an abort is a
/// failure).
fn writer_end(joined: Result<WriterEnd, tokio::task::JoinError>) -> WriterEnd {
    joined.unwrap_or_else(|e| WriterEnd::Failed(std::io::Error::other(e.to_string())))
}

/// A reader waiting for its connection to have room again.
struct Paused<'a, R> {
    conn: &'a ConnShared,
    /// Unwritten answer bytes the reader stops at: it goes on below half.
    backlog: usize,
    /// The connection's bytes the reader holds itself (read, not yet
    /// handed on as frames; allocated ahead for a large body).
    held_by_reader: usize,
    socket: &'a mut R,
    phase: &'a mut watch::Receiver<Phase>,
    writer: &'a mut JoinHandle<WriterEnd>,
    clock: &'a mut ReadClock,
    timer: Pin<&'a mut Sleep>,
    timed: bool,
}

impl<R: ReadSide> Paused<'_, R> {
    /// Waits until the connection may read again (besides the reader's own
    /// bytes it holds at most half its limit, and in all less than its
    /// limit, within its reserved share or with room in the pool, and
    /// at most half the answer backlog is unwritten: the writer's releases
    /// wake it);
    /// returns why the connection must close instead: the server closes,
    /// the writer ends, a read deadline passes, or the writer stays stuck
    /// for the write-stall timeout while the connection is over its limit.
    ///
    /// The read deadlines keep running while the peer does not take its
    /// answers (the writer waits for the socket) or the pool is spent.
    /// When only the connection's own calls in flight hold its bytes, the
    /// peer is not at fault for the silence the server chose not to read:
    /// the time paused then does not count against the deadlines, and the
    /// server sends a pong every half heartbeat interval, so that the
    /// peer's heartbeat, whose pings are not read, still hears from it (and
    /// a peer that has left answers the pong with a reset, which ends the
    /// connection). A peer that closes or resets its connection is also
    /// noticed where the transport can tell ([`ReadSide::peer_closed`]),
    /// within [`CLOSE_POLL`].
    async fn wait_for_room(mut self) -> Option<ReadEnd> {
        let conn = self.conn;
        let pool = &conn.env.memory;
        let stall = conn.env.config.write_stall_timeout;
        let stall_timer =
            tokio::time::sleep_until(stall.map_or_else(far_future, |stall| Instant::now() + stall));
        tokio::pin!(stall_timer);
        let keepalive =
            conn.env.config.heartbeat_interval.map(|interval| {
                (interval / 2).clamp(Duration::from_millis(1), MAX_KEEPALIVE_INTERVAL)
            });
        let keepalive_timer = tokio::time::sleep_until(
            keepalive.map_or_else(far_future, |every| Instant::now() + every),
        );
        tokio::pin!(keepalive_timer);
        tracing::trace!(peer = %conn.peer, held = conn.memory.charged(), "reader paused");
        let paused_at = Instant::now();
        let mut deadlines_held = false;
        conn.memory.reader_paused(self.held_by_reader);
        let end = loop {
            if conn.memory.may_resume(pool) && conn.outbox.unwritten() <= self.backlog / 2 {
                break None;
            }
            let waits_for_pool = conn.memory.waits_for_pool(pool);
            // Held by its own calls: no answer is stuck, the pool has room.
            let held = || !conn.memory.waits_for_pool(pool) && !conn.writer_waiting();
            tokio::select! {
                biased;
                () = closing(self.phase) => break Some(ReadEnd::Closing),
                ended = &mut *self.writer => break Some(ReadEnd::WriterEnded(writer_end(ended))),
                () = conn.memory.room() => {}
                () = tokio::time::sleep(POOL_POLL), if waits_for_pool => {}
                () = tokio::time::sleep(CLOSE_POLL) => {
                    if self.socket.peer_closed() {
                        break Some(ReadEnd::Eof);
                    }
                }
                () = &mut stall_timer => {
                    if conn.writer_waiting() {
                        break Some(ReadEnd::AnswersPiledUp);
                    }
                    // Calls in flight hold the bytes, not unread answers:
                    // wait on (they end, or their deadlines stop them).
                    let next = stall.map_or_else(far_future, |stall| Instant::now() + stall);
                    stall_timer.as_mut().reset(next);
                }
                () = &mut keepalive_timer, if keepalive.is_some() => {
                    let every = keepalive.unwrap_or(MAX_KEEPALIVE_INTERVAL);
                    if held() {
                        conn.send_control(empty_frame(MessageKind::Pong, 0, 0));
                    }
                    keepalive_timer.as_mut().reset(Instant::now() + every);
                }
                () = self.timer.as_mut(), if self.timed => {
                    let now = Instant::now();
                    if held() {
                        // Held by its own calls: look again in a while.
                        deadlines_held = true;
                        self.timer.as_mut().reset(now + HELD_DEADLINE_POLL);
                        continue;
                    }
                    match self.clock.check(now) {
                        Check::Expired(stall) => break Some(ReadEnd::Stalled(stall)),
                        Check::RearmAt(at) => self.timer.as_mut().reset(at),
                        Check::Disarm => self.timer.as_mut().reset(far_future()),
                    }
                }
            }
        };
        conn.memory.reader_resumed();
        if end.is_none() {
            if deadlines_held {
                self.clock.paused_for(paused_at.elapsed());
                let next = self.clock.next_deadline().map_or_else(far_future, |d| d.0);
                self.timer.as_mut().reset(next);
            }
            tracing::trace!(peer = %conn.peer, held = conn.memory.charged(), "reader resumed");
        }
        end
    }
}

/// Whether a frame was one a correct client could send.
enum Handled {
    /// Served, answered or rejected for a reason a correct client can
    /// meet (a limit, an unknown service, a disabled serializer), or
    /// ignored as PROTOCOL.md says.
    Fine,
    /// The frame breaks PROTOCOL.md: counted against the connection's
    /// budget of protocol errors.
    ProtocolError,
}

/// Handles one frame from the client; `size` is the frame's bytes, charged
/// to the connection: handed to the call the frame starts, or released.
fn handle_frame(
    server: &ServerShared,
    conn: &Arc<ConnShared>,
    table: &mut SlotTable,
    frame: Frame,
    size: usize,
) -> Handled {
    let header = frame.header;
    let handled = match header.kind {
        MessageKind::Request => return handle_request(server, conn, table, frame, size, false),
        MessageKind::OnewayRequest => {
            return handle_request(server, conn, table, frame, size, true);
        }
        MessageKind::Ping => {
            conn.send_control(empty_frame(
                MessageKind::Pong,
                header.serializer,
                header.request_id,
            ));
            Handled::Fine
        }
        MessageKind::Cancel => {
            table.cancel(&conn.slots, header.request_id);
            Handled::Fine
        }
        MessageKind::Credit => match table.stream_credit(&conn.slots, header.request_id) {
            Some(credit) => match <[u8; 4]>::try_from(&frame.body[..]) {
                Ok(count) => {
                    credit.grant(u32::from_be_bytes(count));
                    Handled::Fine
                }
                Err(_) => {
                    tracing::debug!(peer = %conn.peer, request_id = header.request_id, len = frame.body.len(), "a credit frame whose body is not a u32 (a protocol error)");
                    Handled::ProtocolError
                }
            },
            None => {
                tracing::trace!(peer = %conn.peer, request_id = header.request_id, "ignoring credit for a call that is not an open stream");
                Handled::Fine
            }
        },
        // No method takes client items yet (client and bidirectional
        // streaming): every such frame is for a call that is not an open
        // stream of client items, which the protocol has ignored.
        MessageKind::StreamItem | MessageKind::StreamEnd => {
            tracing::trace!(
                peer = %conn.peer,
                kind = header.kind.as_u8(),
                request_id = header.request_id,
                "ignoring a stream frame for a call that is not an open stream"
            );
            Handled::Fine
        }
        // Never answered: an answer to a frame that is not a request would
        // be a response for a request id the client may be using for a
        // call of its own.
        MessageKind::Response
        | MessageKind::Pong
        | MessageKind::ResponseMetadata
        | MessageKind::Unknown(_) => {
            tracing::debug!(
                peer = %conn.peer,
                kind = header.kind.as_u8(),
                request_id = header.request_id,
                "ignoring a frame a server does not take (a protocol error)"
            );
            Handled::ProtocolError
        }
    };
    conn.release(size);
    handled
}

/// Checks a request and hands it to its service; `size` is the request
/// frame's bytes, which the call holds until it ends.
fn handle_request(
    server: &ServerShared,
    conn: &Arc<ConnShared>,
    table: &mut SlotTable,
    frame: Frame,
    size: usize,
    oneway: bool,
) -> Handled {
    let received = Instant::now();
    let header = frame.header;
    let request_id = header.request_id;
    let reject = |code: StatusCode, message: &str| {
        conn.release(size);
        if oneway {
            tracing::debug!(request_id, status = %code, "one-way request dropped");
        } else {
            let responder = Responder::new(
                request_id,
                header.serializer,
                conn.env.config.max_frame_size,
            );
            conn.send_control(responder.status(code, message));
        }
        Handled::Fine
    };
    if server.is_draining() {
        return reject(StatusCode::ShuttingDown, "the server is shutting down");
    }
    let Some(serializer) = server.serializer(header.serializer) else {
        let message = if server.serializer_disabled(header.serializer) {
            format!(
                "serializer id {} is disabled on this server",
                header.serializer
            )
        } else {
            format!("serializer id {} is not supported", header.serializer)
        };
        return reject(StatusCode::UnsupportedSerializer, &message);
    };
    let body = match RequestBody::parse_limited(frame.body, conn.env.config.metadata_limits) {
        Ok(body) => body,
        Err(e) => {
            reject(StatusCode::BadRequest, &e.to_string());
            return match e {
                BodyError::TooManyMetadataEntries { .. } | BodyError::MetadataTooLarge { .. } => {
                    Handled::Fine
                }
                _ => Handled::ProtocolError,
            };
        }
    };
    let Some((service_name, service)) = server.router.route(body.service.as_bytes()) else {
        let message = format!("unknown service `{}`", body.service);
        return reject(StatusCode::UnknownService, &message);
    };
    // The connection's slot first, then the server's admission (released
    // in the opposite order), so the server never counts more calls than
    // the connections hold.
    let admission = &conn.env.admission;
    let limit = conn.env.config.max_in_flight_per_connection;
    let reserved = match table.reserve(&conn.slots, request_id, limit) {
        Ok(reserved) => {
            let grown = table.take_grown();
            if grown > 0 {
                // Held until the connection's state is dropped (see
                // `slots.rs`).
                conn.charge_fixed(grown);
            }
            reserved
        }
        Err(ReserveError::Full) => {
            return reject(
                StatusCode::Overloaded,
                "too many calls in flight on this connection",
            );
        }
        Err(ReserveError::Duplicate) => {
            let message = format!("request id {request_id} is already in flight");
            reject(StatusCode::BadRequest, &message);
            return Handled::ProtocolError;
        }
    };
    if reserved.held == 0 {
        admission.connection_busy();
    }
    let slot = reserved.slot;
    if !admission.try_start(reserved.held) {
        // Not started: no handler could have set response metadata.
        if conn.slots.release(slot).last {
            admission.connection_idle();
        }
        table.settle(&conn.slots, request_id, slot, header.serializer, oneway);
        return reject(
            StatusCode::Overloaded,
            "too many calls in flight on this server (and this connection holds its fair share)",
        );
    }
    let deadline = body
        .timeout()
        .and_then(|timeout| received.checked_add(timeout));
    let call = IncomingCall::new(CallParts {
        service: service_name,
        method: body.method,
        serializer,
        oneway,
        payload: body.payload,
        metadata: body.metadata,
        deadline,
        slot: SlotGuard::new(Arc::clone(conn), request_id, slot, size),
    });
    // A panicking `dispatch` drops the call while unwinding, which answers
    // it status 8; the connection goes on.
    if catch_unwind(AssertUnwindSafe(|| service.dispatch(call))).is_err() {
        tracing::warn!(request_id, "a service's dispatch panicked");
    }
    // Most calls have ended by now (their handler finished when first
    // polled): their slot is free again. The others enter the index, where
    // a cancel frame finds them.
    table.settle(&conn.slots, request_id, slot, header.serializer, oneway);
    Handled::Fine
}

/// Reads and drops input until EOF, a read error, [`LINGER`] or
/// [`LINGER_MAX_BYTES`].
async fn discard_input<R: AsyncRead + Unpin>(socket: &mut R) {
    let mut scratch = [0u8; 4096];
    let mut total = 0usize;
    let _ = tokio::time::timeout(LINGER, async {
        while total < LINGER_MAX_BYTES {
            match socket.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}
