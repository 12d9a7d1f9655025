//! A server's tunables ([`ServerConfig`]) and their defaults.

use std::time::Duration;

use super::listener::DEFAULT_LISTEN_BACKLOG;
use crate::protocol::{DEFAULT_MAX_FRAME_SIZE, HEADER_LEN, MetadataLimits};

/// The default limit of calls in flight on one connection.
pub const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION: usize = 1024;
/// The default limit of calls in flight on the whole server.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16 * 1024;
/// The default time a graceful shutdown waits for calls in flight.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The default heartbeat interval of a server: a connection that sends
/// nothing (not even a ping) for three intervals is closed.
pub const DEFAULT_SERVER_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// The default limit of open connections on a server.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// The default time a new connection has to deliver its first whole frame.
pub const DEFAULT_FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time a frame has to arrive whole once its first byte came.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit of metadata entries in one request.
pub const DEFAULT_MAX_METADATA_ENTRIES: usize = 64;
/// The default limit of metadata bytes (keys and values) in one request.
pub const DEFAULT_MAX_METADATA_BYTES: usize = 8 * 1024;
/// The default number of protocol errors a connection may make; the next
/// one closes it.
pub const DEFAULT_MAX_PROTOCOL_ERRORS: u32 = 16;
/// The default size of the server-wide pool of bytes that connections
/// borrow from once they hold more than their reserved share.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 128 * 1024 * 1024;
/// The default limit of bytes one connection may hold (read buffer,
/// requests of its calls in flight, answers not yet written): room for a
/// largest request and a largest answer.
pub const DEFAULT_MAX_BUFFERED_BYTES_PER_CONNECTION: usize = 32 * 1024 * 1024;
/// The default share of bytes each connection can always hold, whatever
/// other connections hold.
pub const DEFAULT_RESERVED_BYTES_PER_CONNECTION: usize = 64 * 1024;
/// The default time a connection's writes may make no progress (or its
/// answers stay over its limit) before it is closed.
pub const DEFAULT_WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The default time one-way calls go on after their connection closed.
pub const DEFAULT_ORPHANED_ONEWAY_TIMEOUT: Duration = Duration::from_secs(30);

/// At most this many bytes are read from a socket at once: what a
/// connection can hold past its limits before its reader pauses.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// Tunables of a server.
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    pub max_frame_size: u32,
    pub max_in_flight_per_connection: usize,
    pub max_in_flight: usize,
    pub drain_timeout: Duration,
    /// `None`: idle connections are never closed.
    pub heartbeat_interval: Option<Duration>,
    pub max_connections: usize,
    /// `None`: no deadline for the first frame.
    pub first_frame_timeout: Option<Duration>,
    /// `None`: no deadline for finishing a frame.
    pub frame_timeout: Option<Duration>,
    pub metadata_limits: MetadataLimits,
    pub max_protocol_errors: u32,
    /// The server-wide pool connections borrow from past their share.
    pub max_buffered_bytes: usize,
    /// The most one connection may hold (raised to fit a largest frame).
    pub max_buffered_bytes_per_connection: usize,
    /// What each connection can always hold.
    pub reserved_bytes_per_connection: usize,
    /// `None`: a connection whose peer stops reading is never closed for it.
    pub write_stall_timeout: Option<Duration>,
    /// How long one-way calls go on once their connection closed.
    pub orphaned_oneway_timeout: Duration,
    /// The accept queue of listeners the server binds.
    pub listen_backlog: u32,
    /// Whether a handler is polled once on its connection's reader before
    /// it gets a task of its own (only if it has to wait).
    pub inline_handlers: bool,
}

impl ServerConfig {
    /// The limits of the read loop's single timer.
    pub fn read_timeouts(&self) -> super::limits::ReadTimeouts {
        super::limits::ReadTimeouts {
            first_frame: self.first_frame_timeout,
            frame: self.frame_timeout,
            idle: self.idle_timeout(),
        }
    }

    /// How long a connection may stay silent before it is closed: three
    /// heartbeat intervals (an interval is cut to one day at most).
    pub fn idle_timeout(&self) -> Option<Duration> {
        const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
        self.heartbeat_interval.map(|interval| {
            interval
                .clamp(Duration::from_millis(1), MAX_INTERVAL)
                .saturating_mul(3)
        })
    }

    /// The most one connection may hold: the configured limit, raised if
    /// needed so that a largest frame can always be read whole.
    pub fn connection_memory_limit(&self) -> usize {
        let largest_frame = usize::try_from(self.max_frame_size)
            .unwrap_or(usize::MAX)
            .saturating_add(HEADER_LEN + READ_CHUNK);
        self.max_buffered_bytes_per_connection
            .max(largest_frame)
            .max(self.reserved_bytes_per_connection)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_in_flight_per_connection: DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            heartbeat_interval: Some(DEFAULT_SERVER_HEARTBEAT_INTERVAL),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            first_frame_timeout: Some(DEFAULT_FIRST_FRAME_TIMEOUT),
            frame_timeout: Some(DEFAULT_FRAME_TIMEOUT),
            metadata_limits: MetadataLimits {
                max_entries: DEFAULT_MAX_METADATA_ENTRIES,
                max_bytes: DEFAULT_MAX_METADATA_BYTES,
            },
            max_protocol_errors: DEFAULT_MAX_PROTOCOL_ERRORS,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            max_buffered_bytes_per_connection: DEFAULT_MAX_BUFFERED_BYTES_PER_CONNECTION,
            reserved_bytes_per_connection: DEFAULT_RESERVED_BYTES_PER_CONNECTION,
            write_stall_timeout: Some(DEFAULT_WRITE_STALL_TIMEOUT),
            orphaned_oneway_timeout: DEFAULT_ORPHANED_ONEWAY_TIMEOUT,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            inline_handlers: true,
        }
    }
}
