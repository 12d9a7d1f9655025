//! One accepted connection: the reader loop that decodes frames and routes
//! requests (and closes the connection once the client has been silent for
//! three heartbeat intervals), and the lifetime of its writer task.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::call::{CallParts, IncomingCall};
use super::connection_shared::{ConnShared, SlotGuard};
use super::respond::Responder;
use super::shared::{Phase, ServerShared, closing};
use super::slots::ReserveError;
use super::writer::write_frames;
use crate::error::StatusCode;
use crate::protocol::{Frame, FrameDecoder, FrameError, MessageKind, RequestBody, empty_frame};

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
    /// The client sent nothing for three heartbeat intervals.
    Idle,
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
    tracing::debug!(%peer, "connection accepted");
    let mut phase = server.subscribe();
    let (mut read_half, write_half) = stream.into_split();
    let capacity = server.config.max_in_flight_per_connection.clamp(16, 4096);
    let (tx, rx) = mpsc::channel(capacity);
    let mut writer = AbortOnDrop(tokio::spawn(write_frames(write_half, rx)));
    let conn = Arc::new(ConnShared::new(server, tx, peer));

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
        ReadEnd::Idle => {
            tracing::debug!(%peer, "no frame for three heartbeat intervals; closing");
            conn.slots.abort_all();
            false
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
async fn read_frames(
    conn: &Arc<ConnShared>,
    socket: &mut OwnedReadHalf,
    phase: &mut watch::Receiver<Phase>,
) -> ReadEnd {
    let mut buf = BytesMut::with_capacity(MIN_READ_ROOM);
    let mut decoder = FrameDecoder::new(conn.server.config.max_frame_size);
    let idle_timeout = conn.server.config.idle_timeout();
    let mut last_read = Instant::now();
    // Not reset per read (that would touch the timer wheel per frame): when
    // it fires, it is pushed out to `last_read + idle_timeout` if needed.
    let idle = tokio::time::sleep(idle_timeout.unwrap_or_default());
    tokio::pin!(idle);
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => handle_frame(conn, frame).await,
                Ok(None) => break,
                Err(e) => return ReadEnd::Framing(e),
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
                    if idle_timeout.is_some() {
                        last_read = Instant::now();
                    }
                }
                Err(e) => return ReadEnd::Io(e),
            },
            () = &mut idle, if idle_timeout.is_some() => {
                let silent_until = last_read + idle_timeout.unwrap_or_default();
                if Instant::now() >= silent_until {
                    return ReadEnd::Idle;
                }
                idle.as_mut().reset(silent_until);
            }
        }
    }
}

/// Handles one frame from the client.
async fn handle_frame(conn: &Arc<ConnShared>, frame: Frame) {
    let header = frame.header;
    match header.kind {
        MessageKind::Request => handle_request(conn, frame, false).await,
        MessageKind::OnewayRequest => handle_request(conn, frame, true).await,
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
        }
    }
}

/// Checks a request and hands it to its service.
async fn handle_request(conn: &Arc<ConnShared>, frame: Frame, oneway: bool) {
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
        }
    };
    if conn.server.is_draining() {
        return reject(StatusCode::ShuttingDown, "the server is shutting down").await;
    }
    let Some(serializer) = conn.server.serializer(header.serializer) else {
        let message = format!("serializer id {} is not supported", header.serializer);
        return reject(StatusCode::UnsupportedSerializer, &message).await;
    };
    let body = match RequestBody::parse(frame.body) {
        Ok(body) => body,
        Err(e) => return reject(StatusCode::BadRequest, &e.to_string()).await,
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
            return reject(StatusCode::BadRequest, &message).await;
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
}

/// Reads and drops input until EOF, a read error, [`LINGER`] or
/// [`LINGER_MAX_BYTES`].
async fn discard_input(socket: &mut OwnedReadHalf) {
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
