//! Errors a call can end with, on either side: [`RpcError`], [`Status`] and
//! [`StatusCode`] (the status byte of PROTOCOL.md), and [`TransportError`].

use std::fmt;
use std::sync::Arc;

/// The status byte of a response frame (PROTOCOL.md, "Status codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// 0: ok.
    Ok,
    /// 1: a declared error (typed, from `throws`).
    DeclaredError,
    /// 2: the server does not serve this service.
    UnknownService,
    /// 3: the service has no such method.
    UnknownMethod,
    /// 4: the args could not be decoded.
    BadRequest,
    /// 5: the server does not support the frame's serializer.
    UnsupportedSerializer,
    /// 6: the deadline passed.
    DeadlineExceeded,
    /// 7: the server's concurrency limit is reached; safe to retry elsewhere.
    Overloaded,
    /// 8: the handler failed or panicked.
    Internal,
    /// 9: the server is shutting down; not executed, safe to retry elsewhere.
    ShuttingDown,
    /// 10: the frame is larger than the peer accepts.
    FrameTooLarge,
    /// 11: the protocol version is not supported.
    UnsupportedVersion,
    /// 12: missing or bad credentials.
    Unauthenticated,
    /// 13: the caller may not call this.
    PermissionDenied,
    /// 14: the handler rejected the arguments.
    InvalidArgument,
    /// 15: what the call names does not exist.
    NotFound,
    /// 16: what the call would create already exists.
    AlreadyExists,
    /// 17: the system is not in a state for this call.
    FailedPrecondition,
    /// 18: a quota or a limit was reached (the server answers it when a
    /// call's answer does not fit the connection's buffers).
    ResourceExhausted,
    /// 19: transient; safe to retry elsewhere.
    Unavailable,
    /// 20: the method exists but this server does not implement it.
    Unimplemented,
    /// 21: a conflict (e.g. a concurrent update); the caller may retry the
    /// whole operation.
    Aborted,
    /// A code this version does not know (a newer peer); kept as sent.
    Other(u8),
}

impl StatusCode {
    /// The status byte on the wire.
    pub const fn as_u8(self) -> u8 {
        match self {
            StatusCode::Ok => 0,
            StatusCode::DeclaredError => 1,
            StatusCode::UnknownService => 2,
            StatusCode::UnknownMethod => 3,
            StatusCode::BadRequest => 4,
            StatusCode::UnsupportedSerializer => 5,
            StatusCode::DeadlineExceeded => 6,
            StatusCode::Overloaded => 7,
            StatusCode::Internal => 8,
            StatusCode::ShuttingDown => 9,
            StatusCode::FrameTooLarge => 10,
            StatusCode::UnsupportedVersion => 11,
            StatusCode::Unauthenticated => 12,
            StatusCode::PermissionDenied => 13,
            StatusCode::InvalidArgument => 14,
            StatusCode::NotFound => 15,
            StatusCode::AlreadyExists => 16,
            StatusCode::FailedPrecondition => 17,
            StatusCode::ResourceExhausted => 18,
            StatusCode::Unavailable => 19,
            StatusCode::Unimplemented => 20,
            StatusCode::Aborted => 21,
            StatusCode::Other(code) => code,
        }
    }

    /// The code for a status byte read from the wire.
    pub const fn from_u8(code: u8) -> StatusCode {
        match code {
            0 => StatusCode::Ok,
            1 => StatusCode::DeclaredError,
            2 => StatusCode::UnknownService,
            3 => StatusCode::UnknownMethod,
            4 => StatusCode::BadRequest,
            5 => StatusCode::UnsupportedSerializer,
            6 => StatusCode::DeadlineExceeded,
            7 => StatusCode::Overloaded,
            8 => StatusCode::Internal,
            9 => StatusCode::ShuttingDown,
            10 => StatusCode::FrameTooLarge,
            11 => StatusCode::UnsupportedVersion,
            12 => StatusCode::Unauthenticated,
            13 => StatusCode::PermissionDenied,
            14 => StatusCode::InvalidArgument,
            15 => StatusCode::NotFound,
            16 => StatusCode::AlreadyExists,
            17 => StatusCode::FailedPrecondition,
            18 => StatusCode::ResourceExhausted,
            19 => StatusCode::Unavailable,
            20 => StatusCode::Unimplemented,
            21 => StatusCode::Aborted,
            other => StatusCode::Other(other),
        }
    }

    /// A short lower-case name (`"unknown method"`), for messages and logs.
    pub const fn name(self) -> &'static str {
        match self {
            StatusCode::Ok => "ok",
            StatusCode::DeclaredError => "declared error",
            StatusCode::UnknownService => "unknown service",
            StatusCode::UnknownMethod => "unknown method",
            StatusCode::BadRequest => "bad request",
            StatusCode::UnsupportedSerializer => "unsupported serializer",
            StatusCode::DeadlineExceeded => "deadline exceeded",
            StatusCode::Overloaded => "overloaded",
            StatusCode::Internal => "internal",
            StatusCode::ShuttingDown => "shutting down",
            StatusCode::FrameTooLarge => "frame too large",
            StatusCode::UnsupportedVersion => "unsupported protocol version",
            StatusCode::Unauthenticated => "unauthenticated",
            StatusCode::PermissionDenied => "permission denied",
            StatusCode::InvalidArgument => "invalid argument",
            StatusCode::NotFound => "not found",
            StatusCode::AlreadyExists => "already exists",
            StatusCode::FailedPrecondition => "failed precondition",
            StatusCode::ResourceExhausted => "resource exhausted",
            StatusCode::Unavailable => "unavailable",
            StatusCode::Unimplemented => "unimplemented",
            StatusCode::Aborted => "aborted",
            StatusCode::Other(_) => "unknown status",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_u8())
    }
}

/// A non-ok, non-declared outcome: a status code and a message for humans.
///
/// A handler answers its domain's errors the typed way, with its method's
/// declared errors (`throws`), which callers match on. A `Status` is for the
/// generic cases any method can meet; build it with the constructor of its
/// code ([`invalid_argument`](Status::invalid_argument),
/// [`not_found`](Status::not_found), [`unavailable`](Status::unavailable),
/// ...), whose documentation says when each fits. Statuses 0 and 1 carry
/// a result or a declared error, not text: a handler that answers them as
/// a `Status` is answered 8 (internal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    code: StatusCode,
    message: String,
}

impl Status {
    /// A status with a code and a message.
    pub fn new(code: StatusCode, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }

    /// Status 8: the handler failed (a bug, a broken invariant, an
    /// unexpected error from something it uses), and no other status says
    /// more.
    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(StatusCode::Internal, message)
    }

    /// Status 4: the args could not be decoded. The runtime answers it
    /// when the args of a call do not decode; a handler that decoded its
    /// args and rejects their values answers
    /// [`invalid_argument`](Status::invalid_argument) (14).
    pub fn bad_request(message: impl Into<String>) -> Status {
        Status::new(StatusCode::BadRequest, message)
    }

    /// Status 6: the deadline passed.
    pub fn deadline_exceeded(message: impl Into<String>) -> Status {
        Status::new(StatusCode::DeadlineExceeded, message)
    }

    /// Status 12: the call has no credentials, or bad ones (a missing or
    /// expired token). Who the caller is could not be established; for a
    /// known caller who may not do this, use
    /// [`permission_denied`](Status::permission_denied).
    pub fn unauthenticated(message: impl Into<String>) -> Status {
        Status::new(StatusCode::Unauthenticated, message)
    }

    /// Status 13: the caller is known but may not make this call (or may
    /// not touch what it names).
    pub fn permission_denied(message: impl Into<String>) -> Status {
        Status::new(StatusCode::PermissionDenied, message)
    }

    /// Status 14: the args decoded, but the handler rejects their values
    /// (an empty name, a negative quantity, a malformed id), whatever the
    /// state of the system. Say which argument and why in the message. Not
    /// [`bad_request`](Status::bad_request) (4): that is the runtime's
    /// "the args could not be decoded".
    pub fn invalid_argument(message: impl Into<String>) -> Status {
        Status::new(StatusCode::InvalidArgument, message)
    }

    /// Status 15: what the call names (a key, an id, a file) does not
    /// exist.
    pub fn not_found(message: impl Into<String>) -> Status {
        Status::new(StatusCode::NotFound, message)
    }

    /// Status 16: what the call would create already exists.
    pub fn already_exists(message: impl Into<String>) -> Status {
        Status::new(StatusCode::AlreadyExists, message)
    }

    /// Status 17: the args are valid, but the system is not in a state in
    /// which the call can run (a non-empty directory to delete, an order
    /// already shipped to change); the same call will fail again until
    /// that state changes. For a conflict with a concurrent call, where
    /// trying the whole operation again may succeed, use
    /// [`aborted`](Status::aborted).
    pub fn failed_precondition(message: impl Into<String>) -> Status {
        Status::new(StatusCode::FailedPrecondition, message)
    }

    /// Status 18: a quota or a limit was reached (a per-user quota, a rate
    /// limit, a full disk). The server answers it too when a call's answer
    /// does not fit the connection's buffers.
    pub fn resource_exhausted(message: impl Into<String>) -> Status {
        Status::new(StatusCode::ResourceExhausted, message)
    }

    /// Status 19: transient; the handler could not take the call on now
    /// (a dependency is down, a warm-up is not done) and did **not** run
    /// it, so the call is safe to try again elsewhere. Balanced channels
    /// do so for every method, as for status 7 and 9; answer it only when
    /// nothing of the call was done.
    pub fn unavailable(message: impl Into<String>) -> Status {
        Status::new(StatusCode::Unavailable, message)
    }

    /// Status 20: the method is declared, but this server does not
    /// implement it (not yet, or no longer, or not in this deployment).
    pub fn unimplemented(message: impl Into<String>) -> Status {
        Status::new(StatusCode::Unimplemented, message)
    }

    /// Status 21: the call was stopped by a conflict with another (a
    /// concurrent update, a failed compare-and-set, a transaction abort);
    /// the caller may retry the whole operation (read again, then write).
    pub fn aborted(message: impl Into<String>) -> Status {
        Status::new(StatusCode::Aborted, message)
    }

    /// The code.
    pub fn code(&self) -> StatusCode {
        self.code
    }

    /// The message for humans (may be empty).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "status {}", self.code)
        } else {
            write!(f, "status {}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Status {}

/// A failure below the call: the connection, the framing or the codec.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Where we tried to connect.
        addr: String,
        /// Why it failed.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// TLS failed: the handshake, a certificate check (on either side), a
    /// TLS alert from the server, or TLS on one side only. The message
    /// says what to fix.
    #[error("TLS with {addr} failed: {source}")]
    Tls {
        /// The server.
        addr: String,
        /// What went wrong.
        #[source]
        source: crate::tls::TlsError,
    },
    /// The connection was closed or broke while the call was in flight.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The peer sent something that breaks PROTOCOL.md.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A message could not be encoded.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serializer's reason.
        reason: String,
    },
    /// A message from the peer could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The serializer's reason.
        reason: String,
    },
    /// No instance of the service could be found to call.
    #[error("no instance of {service} is available")]
    NoInstance {
        /// The service's wire name.
        service: String,
    },
    /// The registry could not be asked for the service's instances.
    #[error("cannot discover {service}: {reason}")]
    Discovery {
        /// The service's wire name.
        service: String,
        /// The registry's reason.
        reason: String,
    },
    /// The server sent no frame for three heartbeat intervals (not even a
    /// pong): the connection was dropped as dead.
    #[error(
        "no frame from the server for {silent_for:?} (three heartbeat intervals); the connection was dropped"
    )]
    HeartbeatTimeout {
        /// How long the server had been silent.
        silent_for: std::time::Duration,
    },
    /// The call's deadline passed while it waited for room in its
    /// connection's send queue, which stayed full
    /// ([`ChannelConfig::max_queued_calls`](crate::client::ChannelConfig::max_queued_calls),
    /// [`max_queued_bytes`](crate::client::ChannelConfig::max_queued_bytes)):
    /// the server reads what it is sent more slowly than calls come (or not
    /// at all), or the connection is down and waiting to reconnect. Nothing
    /// of the call was sent. Its [`RpcError::code`] is
    /// [`StatusCode::DeadlineExceeded`], as for any call whose deadline
    /// passed.
    #[error(
        "the deadline passed after {waited:?} waiting for room in the send queue to {addr} ({queued_calls} frames, {queued_bytes} bytes waiting to be written: the server reads more slowly than calls come, or not at all, or the connection is down); nothing was sent"
    )]
    SendQueueFull {
        /// The server.
        addr: String,
        /// How long the call waited for room.
        waited: std::time::Duration,
        /// Frames waiting to be written when the call gave up.
        queued_calls: usize,
        /// Bytes waiting to be written when the call gave up.
        queued_bytes: usize,
    },
    /// A blocking call ([`Channel::call_blocking`](crate::client::Channel::call_blocking),
    /// [`PendingCall::wait`](crate::client::PendingCall::wait)) was made on
    /// a thread that runs async code (a runtime's worker thread, or inside a
    /// runtime's `block_on`), where blocking would stall or deadlock the
    /// runtime. Await the call instead, or block on a thread that may: a
    /// plain thread, or inside `tokio::task::spawn_blocking`.
    #[error(
        "a blocking call was made on a thread that runs async code; await the call instead, or block in spawn_blocking or on a plain thread"
    )]
    BlockingInAsyncContext,
    /// The task running a spawned call panicked.
    #[error("the call's task panicked: {0}")]
    CallPanicked(String),
    /// The task running a spawned call was stopped before it finished (its
    /// runtime shut down, or it was aborted).
    #[error("the call's task was stopped before the call finished")]
    CallAborted,
}

/// How a call ended, if not with its result.
///
/// `E` is the method's declared error enum (generated from `throws`); methods
/// that declare none use [`NoDeclaredError`]. Servers return it too: a
/// handler answers `Err(RpcError::Declared(..))` for a declared error (status
/// 1) and `Err(RpcError::Status(..))` for anything else.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError<E = NoDeclaredError> {
    /// The method's declared error, typed (status 1).
    #[error("declared error: {0:?}")]
    Declared(E),
    /// Any other status: from the server, or a deadline that passed locally.
    #[error(transparent)]
    Status(Status),
    /// The call could not be carried (connection, framing, codec).
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl<E> RpcError<E> {
    /// The status code this error travels as (or would): declared errors
    /// are 1, transport failures are reported as `Internal` (8), except
    /// [`TransportError::SendQueueFull`], a deadline that passed while the
    /// call waited to be sent: `DeadlineExceeded` (6), like every call
    /// whose deadline passed.
    pub fn code(&self) -> StatusCode {
        match self {
            RpcError::Declared(_) => StatusCode::DeclaredError,
            RpcError::Status(status) => status.code(),
            RpcError::Transport(TransportError::SendQueueFull { .. }) => {
                StatusCode::DeadlineExceeded
            }
            RpcError::Transport(_) => StatusCode::Internal,
        }
    }

    /// The declared error, if that is what this is.
    pub fn declared(&self) -> Option<&E> {
        match self {
            RpcError::Declared(e) => Some(e),
            _ => None,
        }
    }

    /// The status, if that is what this is.
    pub fn status(&self) -> Option<&Status> {
        match self {
            RpcError::Status(s) => Some(s),
            _ => None,
        }
    }
}

impl<E> From<Status> for RpcError<E> {
    fn from(status: Status) -> Self {
        RpcError::Status(status)
    }
}

impl RpcError<NoDeclaredError> {
    /// Widens an error of a method without `throws` into any method's error,
    /// so `?` works across them.
    pub fn widen<E>(self) -> RpcError<E> {
        match self {
            RpcError::Declared(never) => match never {},
            RpcError::Status(s) => RpcError::Status(s),
            RpcError::Transport(t) => RpcError::Transport(t),
        }
    }
}

/// The declared error of a method that declares none: it has no values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoDeclaredError {}

impl fmt::Display for NoDeclaredError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code of PROTOCOL.md's table, with its byte.
    const TABLE: [(u8, StatusCode); 22] = [
        (0, StatusCode::Ok),
        (1, StatusCode::DeclaredError),
        (2, StatusCode::UnknownService),
        (3, StatusCode::UnknownMethod),
        (4, StatusCode::BadRequest),
        (5, StatusCode::UnsupportedSerializer),
        (6, StatusCode::DeadlineExceeded),
        (7, StatusCode::Overloaded),
        (8, StatusCode::Internal),
        (9, StatusCode::ShuttingDown),
        (10, StatusCode::FrameTooLarge),
        (11, StatusCode::UnsupportedVersion),
        (12, StatusCode::Unauthenticated),
        (13, StatusCode::PermissionDenied),
        (14, StatusCode::InvalidArgument),
        (15, StatusCode::NotFound),
        (16, StatusCode::AlreadyExists),
        (17, StatusCode::FailedPrecondition),
        (18, StatusCode::ResourceExhausted),
        (19, StatusCode::Unavailable),
        (20, StatusCode::Unimplemented),
        (21, StatusCode::Aborted),
    ];

    #[test]
    fn every_code_round_trips_through_its_byte() {
        for (byte, code) in TABLE {
            assert_eq!(StatusCode::from_u8(byte), code, "from_u8({byte})");
            assert_eq!(code.as_u8(), byte, "{code:?}");
            assert_ne!(code.name(), "unknown status", "{code:?}");
        }
        let names: std::collections::HashSet<&str> =
            TABLE.iter().map(|(_, code)| code.name()).collect();
        assert_eq!(names.len(), TABLE.len(), "every name is distinct");
    }

    #[test]
    fn an_unknown_code_is_kept_as_sent() {
        for byte in [22, 100, 255] {
            let code = StatusCode::from_u8(byte);
            assert_eq!(code, StatusCode::Other(byte));
            assert_eq!(code.as_u8(), byte);
            assert_eq!(code.to_string(), format!("unknown status ({byte})"));
        }
    }

    #[test]
    fn the_constructors_give_their_code_and_message() {
        type Constructor = fn(String) -> Status;
        let constructors: [(Constructor, u8); 13] = [
            (Status::bad_request, 4),
            (Status::deadline_exceeded, 6),
            (Status::internal, 8),
            (Status::unauthenticated, 12),
            (Status::permission_denied, 13),
            (Status::invalid_argument, 14),
            (Status::not_found, 15),
            (Status::already_exists, 16),
            (Status::failed_precondition, 17),
            (Status::resource_exhausted, 18),
            (Status::unavailable, 19),
            (Status::unimplemented, 20),
            (Status::aborted, 21),
        ];
        for (constructor, byte) in constructors {
            let status = constructor(format!("why {byte}"));
            assert_eq!(status.code().as_u8(), byte);
            assert_eq!(status.code(), StatusCode::from_u8(byte));
            assert_eq!(status.message(), format!("why {byte}"));
        }
        assert_eq!(
            Status::not_found("no order 7").to_string(),
            "status not found (15): no order 7"
        );
    }
}
