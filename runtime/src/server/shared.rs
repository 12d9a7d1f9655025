//! Server-wide state: the services, interceptors and custom serializers,
//! the configuration, the shutdown phase and the count of calls in flight.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::call::ServiceHandler;
use super::interceptor::ServerInterceptor;
use crate::protocol::DEFAULT_MAX_FRAME_SIZE;
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

/// Tunables of a server.
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    pub max_frame_size: u32,
    pub max_in_flight_per_connection: usize,
    pub max_in_flight: usize,
    pub drain_timeout: Duration,
    /// `None`: idle connections are never closed.
    pub heartbeat_interval: Option<Duration>,
}

impl ServerConfig {
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_in_flight_per_connection: DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            heartbeat_interval: Some(DEFAULT_SERVER_HEARTBEAT_INTERVAL),
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
    pub services: HashMap<&'static str, Arc<dyn ServiceHandler>>,
    /// Run on every call before its handler; empty costs nothing.
    pub interceptors: Box<[Arc<dyn ServerInterceptor>]>,
    serializers: HashMap<u8, Serializer>,
    pub config: ServerConfig,
    phase: watch::Sender<Phase>,
    /// Set once new requests are answered status 9 (checked per request).
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl ServerShared {
    pub fn new(parts: ServerParts, config: ServerConfig) -> ServerShared {
        ServerShared {
            services: parts.services,
            interceptors: parts.interceptors.into_boxed_slice(),
            serializers: parts.serializers,
            config,
            phase: watch::Sender::new(Phase::Running),
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    /// The serializer for a header id: a built-in one, or a registered
    /// custom codec.
    pub fn serializer(&self, id: u8) -> Option<Serializer> {
        Serializer::from_id(id).or_else(|| self.serializers.get(&id).copied())
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

    /// Counts a call as in flight unless the server-wide limit is reached.
    pub fn try_call_started(&self) -> bool {
        let limit = self.config.max_in_flight;
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// A call freed its slot.
    pub fn call_ended(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Calls in flight on all connections.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Waits until no call is in flight.
    pub async fn wait_idle(&self) {
        loop {
            let mut notified = pin!(self.idle.notified());
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
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
