//! Server-wide state: the router, the serializers, the shutdown phase, the
//! open connections, and the environment its connections and calls share
//! (`environment.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::watch;

use super::call::ServiceHandler;
use super::config::ServerConfig;
use super::environment::ServerEnv;
use super::interceptor::ServerInterceptor;
use super::router::Router;
use crate::serializer::Serializer;

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
    /// What connections and their calls need from the server: its
    /// tunables, interceptors, admission and memory.
    pub env: Arc<ServerEnv>,
    /// The services, by wire name.
    pub router: Router,
    serializers: HashMap<u8, Serializer>,
    /// The serializer ids requests may use (every id unless restricted).
    allowed_serializers: SerializerSet,
    phase: watch::Sender<Phase>,
    /// Set once new requests are answered status 9 (checked per request).
    draining: AtomicBool,
    /// Open connections (admitted ones; see [`ConnectionPermit`]).
    connections: AtomicUsize,
    /// Connections over the limit being answered and closed.
    refusing: AtomicUsize,
    /// `Some`: accepted connections speak TLS (handshake in their task).
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ServerTlsConfig>,
}

impl ServerShared {
    pub fn new(parts: ServerParts, config: ServerConfig) -> ServerShared {
        ServerShared {
            env: Arc::new(ServerEnv::new(
                config,
                parts.interceptors.into_boxed_slice(),
            )),
            router: Router::new(parts.services),
            serializers: parts.serializers,
            allowed_serializers: parts.allowed_serializers.unwrap_or(SerializerSet::ALL),
            #[cfg(feature = "tls")]
            tls: parts.tls,
            phase: watch::Sender::new(Phase::Running),
            draining: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            refusing: AtomicUsize::new(0),
        }
    }

    /// The server's tunables.
    pub fn config(&self) -> &ServerConfig {
        &self.env.config
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
        let limit = self.config().max_connections;
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
        self.env.close_connections();
    }

    /// Follows the phase.
    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    /// Calls in flight on all connections.
    pub fn in_flight(&self) -> usize {
        self.env.admission.in_flight()
    }

    /// Waits until no call is in flight.
    pub async fn wait_idle(&self) {
        self.env.admission.wait_idle().await;
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
