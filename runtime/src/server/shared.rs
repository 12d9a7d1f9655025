//! Server-wide state: the services, interceptors and serializers, the
//! configuration, the shutdown phase, the admission of calls, the memory
//! pool, and the open connections.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::watch;

use super::admission::Admission;
use super::call::ServiceHandler;
use super::connection_shared::ConnShared;
use super::interceptor::ServerInterceptor;
use super::listener::DEFAULT_LISTEN_BACKLOG;
use super::memory::MemoryPool;
use crate::protocol::{DEFAULT_MAX_FRAME_SIZE, HEADER_LEN, MetadataLimits};
use crate::serializer::Serializer;

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
        }
    }
}

/// What a server is built from besides its tunables.
#[derive(Default)]
pub(crate) struct ServerParts {
    pub services: HashMap<&'static str, Arc<dyn ServiceHandler>>,
    pub interceptors: Vec<Arc<dyn ServerInterceptor>>,
    /// Custom serializers by id (built-ins are always accepted).
    pub serializers: HashMap<u8, Serializer>,
    /// `Some`: only these serializer ids are accepted.
    pub allowed_serializers: Option<SerializerSet>,
    /// `Some`: every accepted connection speaks TLS.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ServerTlsConfig>,
}

/// A set of serializer ids: one bit per id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SerializerSet([u64; 4]);

impl SerializerSet {
    /// No id.
    pub const EMPTY: SerializerSet = SerializerSet([0; 4]);
    /// Every id.
    pub const ALL: SerializerSet = SerializerSet([u64::MAX; 4]);

    /// Adds `id`.
    pub fn insert(&mut self, id: u8) {
        self.0[usize::from(id >> 6)] |= 1 << (id & 63);
    }

    /// Is `id` in the set?
    pub fn contains(&self, id: u8) -> bool {
        self.0[usize::from(id >> 6)] & (1 << (id & 63)) != 0
    }
}

/// Where a server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Accepting connections and serving calls.
    Running,
    /// Not accepting; new requests are answered status 9; calls in flight
    /// finish.
    Draining,
    /// Connections close.
    Closing,
}

/// The state every connection of a server shares.
pub(crate) struct ServerShared {
    /// Looked up on every request: foldhash, not SipHash.
    pub services: foldhash::HashMap<&'static str, Arc<dyn ServiceHandler>>,
    /// Run on every call before its handler; empty costs nothing.
    pub interceptors: Box<[Arc<dyn ServerInterceptor>]>,
    serializers: HashMap<u8, Serializer>,
    /// The serializer ids requests may use (every id unless restricted).
    allowed_serializers: SerializerSet,
    pub config: ServerConfig,
    phase: watch::Sender<Phase>,
    /// Set once new requests are answered status 9 (checked per request).
    draining: AtomicBool,
    /// Calls in flight, admitted fairly across connections.
    pub admission: Admission,
    /// The bytes connections hold past their reserved shares.
    pub memory: MemoryPool,
    /// Open connections (admitted ones; see [`ConnectionPermit`]).
    connections: AtomicUsize,
    /// Every connection whose state is alive (open, or closed with one-way
    /// calls still running), for the accounting hooks.
    registry: Mutex<foldhash::HashMap<u64, Weak<ConnShared>>>,
    next_connection_id: AtomicU64,
    /// Connections over the limit being answered and closed.
    refusing: AtomicUsize,
    /// `Some`: accepted connections speak TLS (handshake in their task).
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ServerTlsConfig>,
}

impl ServerShared {
    pub fn new(parts: ServerParts, config: ServerConfig) -> ServerShared {
        ServerShared {
            services: parts.services.into_iter().collect(),
            interceptors: parts.interceptors.into_boxed_slice(),
            serializers: parts.serializers,
            allowed_serializers: parts.allowed_serializers.unwrap_or(SerializerSet::ALL),
            #[cfg(feature = "tls")]
            tls: parts.tls,
            phase: watch::Sender::new(Phase::Running),
            draining: AtomicBool::new(false),
            admission: Admission::new(config.max_in_flight),
            memory: MemoryPool::new(config.max_buffered_bytes),
            connections: AtomicUsize::new(0),
            registry: Mutex::new(foldhash::HashMap::default()),
            next_connection_id: AtomicU64::new(0),
            refusing: AtomicUsize::new(0),
            config,
        }
    }

    /// The serializer for a header id: a built-in one, or a registered
    /// custom codec; `None` if unknown or not allowed on this server.
    pub fn serializer(&self, id: u8) -> Option<Serializer> {
        if !self.allowed_serializers.contains(id) {
            return None;
        }
        Serializer::from_id(id).or_else(|| self.serializers.get(&id).copied())
    }

    /// Whether `id` names a serializer this server knows but was told not
    /// to accept (for the message of status 5).
    pub fn serializer_disabled(&self, id: u8) -> bool {
        !self.allowed_serializers.contains(id)
            && (Serializer::from_id(id).is_some() || self.serializers.contains_key(&id))
    }

    /// Admits a new connection unless the server already has
    /// `max_connections` open.
    pub fn try_connection_started(self: &Arc<Self>) -> Option<ConnectionPermit> {
        let limit = self.config.max_connections;
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionPermit {
                server: Arc::clone(self),
            })
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Counts a connection over the limit that will be answered before it
    /// is closed, unless `max` of them already are (then it is closed at
    /// once).
    pub fn try_refusal_started(self: &Arc<Self>, max: usize) -> Option<RefusalPermit> {
        self.refusing
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| RefusalPermit {
                server: Arc::clone(self),
            })
    }

    /// Is the server shutting down?
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Stops the accept loop (phase `Draining`); requests are still served
    /// until [`start_draining`](Self::start_draining).
    pub fn stop_accepting(&self) {
        self.phase.send_replace(Phase::Draining);
    }

    /// From now on new requests are answered status 9.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Connections close (phase `Closing`).
    pub fn close(&self) {
        self.start_draining();
        self.phase.send_replace(Phase::Closing);
    }

    /// Follows the phase.
    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    /// Calls in flight on all connections.
    pub fn in_flight(&self) -> usize {
        self.admission.in_flight()
    }

    /// Waits until no call is in flight.
    pub async fn wait_idle(&self) {
        self.admission.wait_idle().await;
    }

    /// An id for a new connection's state.
    pub fn new_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a connection's state for the accounting hooks.
    pub fn register(&self, id: u64, conn: &Arc<ConnShared>) {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::downgrade(conn));
    }

    /// Forgets a connection's state (it is being dropped).
    pub fn unregister(&self, id: u64) {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// The connections whose state is alive.
    fn registered(&self) -> Vec<Arc<ConnShared>> {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Bytes held by every connection together (see `memory.rs`).
    pub fn buffered_bytes(&self) -> usize {
        self.registered()
            .iter()
            .map(|conn| conn.memory.charged())
            .sum()
    }

    /// The most bytes any one connection holds now.
    pub fn max_connection_bytes(&self) -> usize {
        self.registered()
            .iter()
            .map(|conn| conn.memory.charged())
            .max()
            .unwrap_or(0)
    }
}

/// One admitted connection: counted open until dropped.
pub(crate) struct ConnectionPermit {
    server: Arc<ServerShared>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.server.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One connection being refused (answered status 7, then closed).
pub(crate) struct RefusalPermit {
    server: Arc<ServerShared>,
}

impl Drop for RefusalPermit {
    fn drop(&mut self) {
        self.server.refusing.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits until `phase` reaches `Closing` (or the server is gone).
pub(crate) async fn closing(phase: &mut watch::Receiver<Phase>) {
    // An error means the server state was dropped: close too.
    let _ = phase.wait_for(|phase| *phase == Phase::Closing).await;
}

/// Waits until `phase` leaves `Running` (or the server is gone).
pub(crate) async fn stopped_running(phase: &mut watch::Receiver<Phase>) {
    // An error means the server state was dropped: stop too.
    let _ = phase.wait_for(|phase| *phase != Phase::Running).await;
}
