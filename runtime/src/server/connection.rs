//! One accepted connection: admission under the connection limit, the
//! reader loop that decodes frames and routes requests (and closes the
//! connection when a read deadline passes or the peer exceeds its budget of
//! protocol errors), and the lifetime of its writer task.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::call::{CallParts, IncomingCall};
use super::connection_shared::{ConnShared, SlotGuard};
use super::limits::{
    Check, MAX_LINGERING_REFUSALS, ReadClock, Stall, far_future, refuse_connection,
};
use super::respond::Responder;
use super::shared::{Phase, ServerShared, closing};
use super::slots::ReserveError;
use super::writer::write_frames;
use crate::error::StatusCode;
use crate::protocol::{
    BodyError, Frame, FrameDecoder, FrameError, MessageKind, RequestBody, empty_frame,
};
use crate::tls::{PeerIdentity, is_tls_record_start};

/// Free room the reader keeps in its buffer before reading, so that many
/// small frames arrive in one read.
const MIN_READ_ROOM: usize = 8 * 1024;
/// After answering status 10 or 11, how long unread input is drained
/// before the socket is closed (closing with unread input sends a reset,
/// which can destroy the answer before the peer reads it).
const LINGER: Duration = Duration::from_millis(500);
/// At most this much input is drained while lingering.
const LINGER_MAX_BYTES: usize = 1 << 20;

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
    /// The peer made more protocol errors than its budget.
    TooManyErrors(u32),
    /// The peer broke the framing.
    Framing(FrameError),
}

/// Aborts the task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
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
    let Some(_permit) = server.try_connection_started() else {
        let limit = server.config.max_connections;
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
                serve_halves(read_half, write_half, peer, identity, server).await;
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
    serve_halves(read_half, write_half, peer, None, server).await;
}

/// Serves one connection over a stream the caller already connected
/// ([`ServerHandle::serve_stream`](super::ServerHandle::serve_stream)):
/// as it is, with no TLS, under the connection limit.
pub(crate) async fn serve_stream<S>(stream: S, peer: SocketAddr, server: Arc<ServerShared>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Some(_permit) = server.try_connection_started() else {
        let limit = server.config.max_connections;
        tracing::debug!(%peer, limit, "too many connections; refusing a served stream");
        let refusal = server.try_refusal_started(MAX_LINGERING_REFUSALS);
        refuse_connection(stream, limit, refusal.is_some()).await;
        return;
    };
    tracing::debug!(%peer, "serving a stream");
    let (read_half, write_half) = tokio::io::split(stream);
    serve_halves(read_half, write_half, peer, None, server).await;
}

/// Serves a connection, whatever it runs over (TCP halves from
/// `into_split`, or `tokio::io::split` halves of TLS and other streams),
/// until it closes.
async fn serve_halves<R, W>(
    mut read_half: R,
    write_half: W,
    peer: SocketAddr,
    identity: Option<Arc<PeerIdentity>>,
    server: Arc<ServerShared>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let mut phase = server.subscribe();
    let capacity = server.config.max_in_flight_per_connection.clamp(16, 4096);
    let (tx, rx) = mpsc::channel(capacity);
    let mut writer = AbortOnDrop(tokio::spawn(write_frames(write_half, rx)));
    let conn = Arc::new(ConnShared::new(server, tx, peer, identity));

    let end = read_frames(&conn, &mut read_half, &mut phase).await;
    let linger = match end {
        ReadEnd::Eof => {
            // Calls in flight finish and are answered; the writer ends with
            // the last of them.
            tracing::debug!(%peer, "peer closed the connection");
            false
        }
        ReadEnd::Io(e) => {
            tracing::debug!(%peer, error = %e, "read failed; closing");
            conn.slots.abort_all();
            false
        }
        ReadEnd::Closing => {
            tracing::debug!(%peer, "server closing the connection");
            conn.slots.abort_all();
            false
        }
        ReadEnd::Stalled(stall) => {
            tracing::debug!(%peer, reason = stall.describe(), "read deadline passed; closing");
            conn.slots.abort_all();
            false
        }
        ReadEnd::TooManyErrors(errors) => {
            tracing::debug!(%peer, errors, "too many protocol errors; closing");
            conn.slots.abort_all();
            true
        }
        ReadEnd::Framing(FrameError::BadMagic { found }) if is_tls_record_start(found) => {
            tracing::info!(
                %peer,
                "a TLS client connected, but this server has no TLS configured; closing (configure TLS on the server, or remove it from the client)"
            );
            conn.slots.abort_all();
            return;
        }
        ReadEnd::Framing(e @ FrameError::BadMagic { .. }) => {
            tracing::debug!(%peer, error = %e, "bad magic; closing at once");
            conn.slots.abort_all();
            return;
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
            let responder =
                Responder::new(request_id, serializer, conn.server.config.max_frame_size);
            conn.send(responder.status(code, &e.to_string())).await;
            conn.slots.abort_all();
            true
        }
    };
    // The writer ends once every sender is gone: ours now, the handlers'
    // when they finish or are aborted.
    drop(conn);
    let _ = (&mut writer.0).await;
    if linger {
        discard_input(&mut read_half).await;
    }
    tracing::debug!(%peer, "connection closed");
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
async fn read_frames<R: AsyncRead + Unpin>(
    conn: &Arc<ConnShared>,
    socket: &mut R,
    phase: &mut watch::Receiver<Phase>,
) -> ReadEnd {
    let mut buf = BytesMut::with_capacity(MIN_READ_ROOM);
    let config = &conn.server.config;
    let mut decoder = FrameDecoder::new(config.max_frame_size);
    let max_errors = config.max_protocol_errors;
    let mut errors = 0u32;
    // One timer for every read deadline (see `ReadClock`): not reset per
    // read or per frame; pushed out when it fires early.
    let mut clock = ReadClock::new(config.read_timeouts(), Instant::now());
    let timed = clock.enabled();
    let timer = tokio::time::sleep_until(clock.next_deadline().map_or_else(far_future, |d| d.0));
    tokio::pin!(timer);
    loop {
        let mut any_frame = false;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    any_frame = true;
                    if let Handled::ProtocolError = handle_frame(conn, frame).await {
                        errors += 1;
                        if errors > max_errors {
                            return ReadEnd::TooManyErrors(errors);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => return ReadEnd::Framing(e),
            }
        }
        if timed && clock.decoded(any_frame, decoder.in_body() || !buf.is_empty()) {
            // A frame began: its deadline may come before the armed one.
            if let Some((at, _)) = clock.next_deadline() {
                if at < timer.deadline() {
                    timer.as_mut().reset(at);
                }
            }
        }
        if buf.capacity() - buf.len() < MIN_READ_ROOM {
            buf.reserve(MIN_READ_ROOM);
        }
        tokio::select! {
            biased;
            () = closing(phase) => return ReadEnd::Closing,
            read = socket.read_buf(&mut buf) => match read {
                Ok(0) => return ReadEnd::Eof,
                Ok(_) => {
                    if timed {
                        clock.read(Instant::now());
                    }
                }
                // A TLS peer that closes without close_notify (every peer
                // that just drops its socket) reads as UnexpectedEof; a
                // TCP read never returns it. Either way the peer is gone
                // and its calls in flight finish, as on plain TCP.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return ReadEnd::Eof,
                Err(e) => return ReadEnd::Io(e),
            },
            () = &mut timer, if timed => match clock.check(Instant::now()) {
                Check::Expired(stall) => return ReadEnd::Stalled(stall),
                Check::RearmAt(at) => timer.as_mut().reset(at),
                Check::Disarm => timer.as_mut().reset(far_future()),
            },
        }
    }
}

/// Whether a frame was one a correct client could send.
enum Handled {
    /// Served, answered or rejected for a reason a correct client can
    /// meet (a limit, an unknown service, a disabled serializer).
    Fine,
    /// The frame breaks PROTOCOL.md: counted against the connection's
    /// budget of protocol errors.
    ProtocolError,
}

/// Handles one frame from the client.
async fn handle_frame(conn: &Arc<ConnShared>, frame: Frame) -> Handled {
    let header = frame.header;
    match header.kind {
        MessageKind::Request => return handle_request(conn, frame, false).await,
        MessageKind::OnewayRequest => return handle_request(conn, frame, true).await,
        MessageKind::Ping => {
            conn.send(empty_frame(
                MessageKind::Pong,
                header.serializer,
                header.request_id,
            ))
            .await;
        }
        MessageKind::Cancel => {
            conn.slots.cancel(header.request_id);
        }
        MessageKind::Response | MessageKind::Pong | MessageKind::Unknown(_) => {
            tracing::debug!(
                peer = %conn.peer,
                kind = header.kind.as_u8(),
                request_id = header.request_id,
                "ignoring a frame a server does not expect"
            );
            return Handled::ProtocolError;
        }
    }
    Handled::Fine
}

/// Checks a request and hands it to its service.
async fn handle_request(conn: &Arc<ConnShared>, frame: Frame, oneway: bool) -> Handled {
    let received = Instant::now();
    let header = frame.header;
    let request_id = header.request_id;
    let reject = |code: StatusCode, message: &str| {
        let frame = (!oneway).then(|| {
            Responder::new(
                request_id,
                header.serializer,
                conn.server.config.max_frame_size,
            )
            .status(code, message)
        });
        async move {
            match frame {
                Some(frame) => conn.send(frame).await,
                None => tracing::debug!(request_id, status = %code, "one-way request dropped"),
            }
            Handled::Fine
        }
    };
    if conn.server.is_draining() {
        return reject(StatusCode::ShuttingDown, "the server is shutting down").await;
    }
    let Some(serializer) = conn.server.serializer(header.serializer) else {
        let message = if conn.server.serializer_disabled(header.serializer) {
            format!(
                "serializer id {} is disabled on this server",
                header.serializer
            )
        } else {
            format!("serializer id {} is not supported", header.serializer)
        };
        return reject(StatusCode::UnsupportedSerializer, &message).await;
    };
    let body = match RequestBody::parse_limited(frame.body, conn.server.config.metadata_limits) {
        Ok(body) => body,
        Err(e) => {
            reject(StatusCode::BadRequest, &e.to_string()).await;
            return match e {
                BodyError::TooManyMetadataEntries { .. } | BodyError::MetadataTooLarge { .. } => {
                    Handled::Fine
                }
                _ => Handled::ProtocolError,
            };
        }
    };
    let Some((&service_name, service)) = conn.server.services.get_key_value(body.service.as_str())
    else {
        let message = format!("unknown service `{}`", body.service);
        return reject(StatusCode::UnknownService, &message).await;
    };
    // The connection's slot first, then the server's count (released in
    // the opposite order), so the server never counts more calls than the
    // connections hold.
    let token = match conn
        .slots
        .reserve(request_id, conn.server.config.max_in_flight_per_connection)
    {
        Ok(token) => token,
        Err(ReserveError::Full) => {
            return reject(
                StatusCode::Overloaded,
                "too many calls in flight on this connection",
            )
            .await;
        }
        Err(ReserveError::Duplicate) => {
            let message = format!("request id {request_id} is already in flight");
            reject(StatusCode::BadRequest, &message).await;
            return Handled::ProtocolError;
        }
    };
    if !conn.server.try_call_started() {
        conn.slots.release(request_id, token);
        return reject(
            StatusCode::Overloaded,
            "too many calls in flight on this server",
        )
        .await;
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
        slot: SlotGuard::new(Arc::clone(conn), request_id, token),
    });
    // A panicking `dispatch` drops the call while unwinding, which answers
    // it status 8; the connection goes on.
    if catch_unwind(AssertUnwindSafe(|| service.dispatch(call))).is_err() {
        tracing::warn!(request_id, "a service's dispatch panicked");
    }
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
