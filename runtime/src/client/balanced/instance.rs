//! [`Instance`]: one instance of a balanced service, its endpoint
//! (connected on first use, or when it appears) and its health.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::OnceCell;

use crate::balance::{Candidate, hash_key_of};
use crate::client::ChannelConfig;
use crate::client::endpoint::Endpoint;
use crate::client::endpoint::HostPort;
use crate::client::route::RequestIds;
use crate::error::TransportError;
use crate::registry::ServiceInstance;

/// One instance: its endpoint and its health.
pub(super) struct Instance {
    pub(super) instance_id: String,
    /// A stable hash of the instance id: the [`Candidate::id`].
    pub(super) key: u64,
    pub(super) address: String,
    /// The instance speaks TLS (registered with `sslPort`).
    pub(super) tls: bool,
    pub(super) weight: AtomicU32,
    endpoint: OnceCell<Endpoint>,
    pub(super) in_flight: AtomicUsize,
    pub(super) attempts: AtomicU64,
    /// Consecutive failures.
    pub(super) failures: AtomicU32,
    /// Ejections in a row (the backoff exponent).
    pub(super) ejections: AtomicU32,
    /// Milliseconds since the channel's origin until which the instance is
    /// ejected; 0 while it is in rotation. Once passed, the instance is due
    /// a probe.
    pub(super) ejected_until: AtomicU64,
    /// A probe (a health check or a call) is in flight.
    pub(super) probing: AtomicBool,
    /// The instance's health probe found nothing it can use (it does not
    /// serve `courier.Health`, say): its probe is the next real call.
    pub(super) no_health_probe: AtomicBool,
}

/// How an instance may be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    InRotation,
    Ejected,
    ProbeDue,
}

impl Instance {
    pub(super) fn new(instance: &ServiceInstance) -> Instance {
        Instance {
            instance_id: instance.id.clone(),
            key: hash_key_of(instance.id.as_str()),
            address: HostPort(&instance.address, instance.port).to_string(),
            tls: instance.tls,
            weight: AtomicU32::new(instance.weight),
            endpoint: OnceCell::new(),
            in_flight: AtomicUsize::new(0),
            attempts: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            no_health_probe: AtomicBool::new(false),
        }
    }

    pub(super) fn health(&self, now_ms: u64) -> Health {
        match self.ejected_until.load(Ordering::Acquire) {
            0 => Health::InRotation,
            until if now_ms < until => Health::Ejected,
            _ => Health::ProbeDue,
        }
    }

    /// The instance's endpoint, connected on first use; its calls draw
    /// their request ids from `ids`, the balanced channel's.
    pub(super) async fn endpoint(
        &self,
        config: &ChannelConfig,
        ids: &Arc<RequestIds>,
    ) -> Result<&Endpoint, TransportError> {
        self.endpoint
            .get_or_try_init(|| {
                Endpoint::connect_instance(&self.address, self.tls, config, Arc::clone(ids))
            })
            .await
    }

    /// The endpoint, if it is connected.
    pub(super) fn connected(&self) -> Option<&Endpoint> {
        self.endpoint.get()
    }

    /// The instance as the balancer sees it.
    pub(super) fn candidate(&self) -> Candidate {
        Candidate {
            id: self.key,
            weight: self.weight.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

/// Counts a call in flight on an instance; ends a probe if the call was
/// one (also when the call's future is dropped).
pub(super) struct InFlight<'a> {
    instance: &'a Instance,
    probe: bool,
}

impl<'a> InFlight<'a> {
    pub(super) fn start(instance: &'a Instance, probe: bool) -> InFlight<'a> {
        instance.in_flight.fetch_add(1, Ordering::Relaxed);
        instance.attempts.fetch_add(1, Ordering::Relaxed);
        InFlight { instance, probe }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.instance.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.probe {
            self.instance.probing.store(false, Ordering::Release);
        }
    }
}
