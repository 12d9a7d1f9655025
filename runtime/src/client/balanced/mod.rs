//! The balanced route of a [`Channel`](super::Channel): one endpoint per
//! instance of a service, kept current from a registry watch. Each call
//! asks a [`Balancer`] for an instance ([`pick`]), fails over by the rules
//! of [`policy`] within a [`RetryBudget`] ([`call_loop`]), and ejects
//! instances that keep failing ([`ejection`]); an ejected instance due a
//! probe is checked with the channel's [`HealthProbe`] first ([`probe`]),
//! and only one the probe cannot tell about is probed with a real call.

mod call_loop;
mod ejection;
mod instance;
mod options;
mod pick;
mod policy;
mod probe;
mod retry_budget;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use tokio::runtime::Handle;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use self::instance::{Health, Instance};
pub use self::options::{
    BalanceOptions, DEFAULT_EJECT_AFTER, DEFAULT_EJECT_BASE, DEFAULT_EJECT_MAX,
    DEFAULT_MAX_ATTEMPTS, DEFAULT_MIN_RETRIES_PER_SECOND, DEFAULT_RETRY_RATIO, InstanceState,
};
pub use self::probe::{HEALTH_PROBE_TIMEOUT, HealthProbe, ProbeOutcome, ProbeTarget};
use self::retry_budget::RetryBudget;
use super::endpoint::HostPort;
use super::route::RequestIds;
use crate::balance::Balancer;
use crate::error::TransportError;
use crate::registry::{InstanceWatch, Registry, ServiceInstance};

/// What every clone of a balanced channel shares.
pub(crate) struct Balanced {
    /// Itself, for the health probes it spawns.
    me: Weak<Balanced>,
    service: String,
    balancer: Arc<dyn Balancer>,
    /// The current instances, replaced as a whole when membership changes;
    /// a call clones the `Arc` (no allocation).
    instances: RwLock<Arc<[Arc<Instance>]>>,
    /// The channel's request ids, shared by every instance's endpoint: a
    /// call keeps its id (and its frame) on every attempt.
    ids: Arc<RequestIds>,
    options: BalanceOptions,
    budget: RetryBudget,
    origin: Instant,
    runtime: Handle,
    watcher: Mutex<Option<AbortHandle>>,
}

impl Drop for Balanced {
    fn drop(&mut self) {
        if let Some(watcher) = self
            .watcher
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            watcher.abort();
        }
    }
}

impl Balanced {
    /// Watches `service` and starts keeping its instances.
    pub(super) async fn start(
        registry: Arc<dyn Registry>,
        service: &str,
        options: BalanceOptions,
    ) -> Result<Arc<Balanced>, TransportError> {
        let mut watch = registry
            .watch(service)
            .await
            .map_err(|e| TransportError::Discovery {
                service: service.to_owned(),
                reason: e.to_string(),
            })?;
        let balancer = match &options.balancer {
            Some(balancer) => Arc::clone(balancer),
            None => Arc::from(options.strategy.build()),
        };
        let balanced = Arc::new_cyclic(|me| Balanced {
            me: Weak::clone(me),
            service: service.to_owned(),
            balancer,
            instances: RwLock::new(Arc::from(Vec::new())),
            ids: RequestIds::new(),
            budget: RetryBudget::new(options.retry_ratio, options.min_retries_per_second),
            options,
            origin: Instant::now(),
            runtime: Handle::current(),
            watcher: Mutex::new(None),
        });
        let first = watch.borrow_and_update().clone();
        balanced.update(&first);
        let task = tokio::spawn(keep_current(Arc::downgrade(&balanced), watch, registry));
        *balanced
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        Ok(balanced)
    }

    /// The service's wire name.
    pub(super) fn service(&self) -> &str {
        &self.service
    }

    /// The runtime the channel was created on.
    pub(super) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    fn snapshot(&self) -> Arc<[Arc<Instance>]> {
        Arc::clone(
            &self
                .instances
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Replaces the instances with those of `instances`, keeping the
    /// endpoints (connections, health) of instances still there, and starts
    /// connecting the new ones.
    fn update(&self, listed: &[ServiceInstance]) {
        let old = self.snapshot();
        let mut fresh = Vec::new();
        let next: Vec<Arc<Instance>> = listed
            .iter()
            .map(|listed| {
                let address = HostPort(&listed.address, listed.port).to_string();
                match old.iter().find(|i| {
                    i.instance_id == listed.id && i.address == address && i.tls == listed.tls
                }) {
                    Some(instance) => {
                        instance.weight.store(listed.weight, Ordering::Relaxed);
                        Arc::clone(instance)
                    }
                    None => {
                        let instance = Arc::new(Instance::new(listed));
                        fresh.push(Arc::clone(&instance));
                        instance
                    }
                }
            })
            .collect();
        tracing::debug!(service = %self.service, instances = next.len(), "balanced channel membership changed");
        *self
            .instances
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::from(next);
        // Connect new instances now, so the first calls find them ready;
        // a failure here is retried by the first call.
        for instance in fresh {
            let config = self.options.channel.clone();
            let ids = Arc::clone(&self.ids);
            tokio::spawn(async move {
                let _ = instance.endpoint(&config, &ids).await;
            });
        }
    }

    fn now_ms(&self) -> u64 {
        // At least 1: 0 means "not ejected".
        u64::try_from(self.origin.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Calls waiting for a response on every endpoint.
    pub(super) fn pending_len(&self) -> usize {
        self.snapshot()
            .iter()
            .filter_map(|i| i.connected())
            .map(|endpoint| endpoint.pending_len())
            .sum()
    }

    /// Frames and bytes unwritten on every endpoint.
    pub(super) fn unsent(&self) -> (usize, usize) {
        self.snapshot()
            .iter()
            .filter_map(|i| i.connected())
            .map(|endpoint| endpoint.unsent())
            .fold((0, 0), |(f, b), (f2, b2)| (f + f2, b + b2))
    }

    /// The instances and their state.
    pub(super) fn instances(&self) -> Vec<InstanceState> {
        let now = self.now_ms();
        self.snapshot()
            .iter()
            .map(|i| InstanceState {
                id: i.instance_id.clone(),
                address: i.address.clone(),
                weight: i.weight.load(Ordering::Relaxed),
                in_flight: i.in_flight.load(Ordering::Relaxed),
                attempts: i.attempts.load(Ordering::Relaxed),
                ejected: i.health(now) != Health::InRotation,
            })
            .collect()
    }
}

/// Applies every new list of the watch until the channel is dropped (the
/// task is aborted then) or the registry stops sending (the last list
/// stays). Holds the registry so its watch lives as long as the channel.
async fn keep_current(
    balanced: Weak<Balanced>,
    mut watch: InstanceWatch,
    _registry: Arc<dyn Registry>,
) {
    while watch.changed().await.is_ok() {
        let instances = watch.borrow_and_update().clone();
        let Some(balanced) = balanced.upgrade() else {
            return;
        };
        balanced.update(&instances);
    }
}
