//! [`ChannelConfig`]: how a channel connects and what it accepts.

use std::time::Duration;

use super::backoff::Backoff;
use crate::protocol::{DEFAULT_MAX_FRAME_SIZE, MetadataLimits};
use crate::server::{DEFAULT_MAX_METADATA_BYTES, DEFAULT_MAX_METADATA_ENTRIES};

/// The default time one connection attempt may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default number of connections a channel keeps to its server.
pub const DEFAULT_CONNECTIONS: usize = 1;
/// The default heartbeat interval: a ping after this long without traffic,
/// and the connection is dropped after three intervals without a frame from
/// the server.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// The default number of request and one-way frames a connection holds
/// unwritten before callers wait for room.
pub const DEFAULT_MAX_QUEUED_CALLS: usize = 1024;
/// The default number of bytes of request and one-way frames a connection
/// holds unwritten before callers wait for room (4 MiB).
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;

/// The default bytes of stream items a connection holds untaken before it
/// stops reading (64 MiB).
pub const DEFAULT_MAX_BUFFERED_STREAM_BYTES: usize = 64 * 1024 * 1024;

/// How a channel connects and what it accepts.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// The largest response body accepted (default 16 MiB) and the largest
    /// request body sent.
    pub max_frame_size: u32,
    /// The timeout of calls whose options and method set none.
    pub default_timeout: Option<Duration>,
    /// How long one connection attempt may take (default 5 s).
    pub connect_timeout: Duration,
    /// How many connections to the server the channel keeps (default
    /// [`DEFAULT_CONNECTIONS`]; at least 1). Calls are spread over them in
    /// turn; each is multiplexed.
    pub connections: usize,
    /// The heartbeat interval (default 30 s); `None` turns heartbeats off.
    pub heartbeat_interval: Option<Duration>,
    /// How reconnection attempts are spaced after failures.
    pub reconnect_backoff: Backoff,
    /// How many request and one-way frames each connection holds
    /// unwritten (default [`DEFAULT_MAX_QUEUED_CALLS`]; at least 1). A
    /// call beyond it waits for room, within its timeout, and then fails
    /// with [`TransportError::SendQueueFull`](crate::TransportError::SendQueueFull)
    /// without being sent. Frames leave the queue when they are written, or
    /// at once when their call is cancelled before any of it was written.
    pub max_queued_calls: usize,
    /// How many bytes of request and one-way frames each connection holds
    /// unwritten (default [`DEFAULT_MAX_QUEUED_BYTES`], 4 MiB; at least 1).
    /// As for [`max_queued_calls`](Self::max_queued_calls); a frame larger
    /// than this is sent when the queue is empty, alone.
    pub max_queued_bytes: usize,
    /// How much response metadata (message type 10) a call accepts
    /// (default 64 entries and 8 KiB of keys and values, the server's
    /// default limits for request metadata). A call whose server sends more
    /// fails with a protocol error.
    pub max_response_metadata: MetadataLimits,
    /// How many bytes of server-streaming items each connection holds that
    /// their streams' consumers have not taken yet (default
    /// [`DEFAULT_MAX_BUFFERED_STREAM_BYTES`], 64 MiB). Each stream holds at
    /// most its credit window (16 items) of them; this bounds the sum when
    /// many consumers stop at once: past it the connection stops reading
    /// its socket until they take some (and holds up the other calls of
    /// the connection meanwhile).
    pub max_buffered_stream_bytes: usize,
    /// `Some`: connections speak TLS with these roots (and client
    /// certificate, for mutual TLS); default `None`, plain TCP. A balanced
    /// channel with TLS uses only instances registered with TLS
    /// (`sslPort`), and one without TLS only plaintext instances.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ClientTlsConfig>,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            default_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            connections: DEFAULT_CONNECTIONS,
            heartbeat_interval: Some(DEFAULT_HEARTBEAT_INTERVAL),
            reconnect_backoff: Backoff::default(),
            max_queued_calls: DEFAULT_MAX_QUEUED_CALLS,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            max_response_metadata: MetadataLimits {
                max_entries: DEFAULT_MAX_METADATA_ENTRIES,
                max_bytes: DEFAULT_MAX_METADATA_BYTES,
            },
            max_buffered_stream_bytes: DEFAULT_MAX_BUFFERED_STREAM_BYTES,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}
