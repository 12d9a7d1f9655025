//! Health probes: the seam ([`HealthProbe`]) through which a balanced
//! channel asks an ejected instance whether it serves again, and the task
//! that runs one. The built-in probe,
//! [`HealthCheckProbe`](crate::builtin::health::HealthCheckProbe), asks
//! `courier.Health`; the balanced channel knows nothing of it beyond this
//! trait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Balanced;
use super::instance::Instance;
use super::policy::Verdict;
use crate::BoxFuture;
use crate::client::ChannelConfig;
use crate::client::call::Caller;
use crate::client::endpoint::Endpoint;
use crate::client::method::{CallOptions, MethodDescriptor};
use crate::client::request::{Typed, decode_response};
use crate::client::route::{CallHead, Interceptors, RequestIds};
use crate::error::RpcError;
use crate::serializer::{DeclaredError, Serializer, WireMessage};

/// How long a health probe of an ejected instance may take (connecting
/// included) before it counts as failed.
pub const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Checks whether an ejected instance serves again, before it takes calls.
/// Set with [`BalanceOptions::health_probe`](super::BalanceOptions::health_probe);
/// the default, [`HealthCheckProbe`](crate::builtin::health::HealthCheckProbe),
/// asks `courier.Health`.
///
/// A probe runs in a task of its own, within [`HEALTH_PROBE_TIMEOUT`]
/// (connecting included; no answer in time is
/// [`ProbeOutcome::NotServing`]), and calls the instance through the
/// [`ProbeTarget`] it is given.
pub trait HealthProbe: Send + Sync + 'static {
    /// Checks the instance behind `target`.
    fn check<'a>(&'a self, target: &'a ProbeTarget<'_>) -> BoxFuture<'a, ProbeOutcome>;
}

/// What a health probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// It serves: back in rotation.
    Serving,
    /// It does not serve, failed, or did not answer in time: it stays
    /// ejected (for longer).
    NotServing,
    /// The probe cannot tell (the instance has no health service the
    /// channel can use): the next real call to pick the instance is its
    /// probe, and it is not health-probed again.
    NoHealthService,
}

/// The instance a [`HealthProbe`] checks: calls made through it go to that
/// instance alone, as the channel whose call started the probe sends its
/// calls (its interceptors, the call's serializer), with a timeout of
/// [`HEALTH_PROBE_TIMEOUT`].
pub struct ProbeTarget<'a> {
    caller: Caller<'a, Endpoint>,
    service: &'a str,
    serializer: Serializer,
    /// The channel's interceptors refused a call: whatever the probe makes
    /// of it, it says nothing about the instance.
    refused: AtomicBool,
}

impl std::fmt::Debug for ProbeTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeTarget")
            .field("service", &self.service)
            .field("address", &self.address())
            .field("serializer", &self.serializer)
            .finish()
    }
}

impl ProbeTarget<'_> {
    /// The balanced service's wire name (its registry name).
    pub fn service(&self) -> &str {
        self.service
    }

    /// The instance's address (`host:port`).
    pub fn address(&self) -> &str {
        self.caller.route.target()
    }

    /// The serializer of the calls made through this target.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// Calls `method` on the instance with `args` and waits for the reply.
    pub async fn unary<Args, Reply, E>(
        &self,
        method: &MethodDescriptor<'_>,
        args: &Args,
    ) -> Result<Reply, RpcError<E>>
    where
        Args: WireMessage,
        Reply: WireMessage,
        E: DeclaredError,
    {
        let options = CallOptions {
            serializer: self.serializer,
            timeout: Some(HEALTH_PROBE_TIMEOUT),
            ..CallOptions::default()
        };
        let (metadata, timeout) = match self
            .caller
            .intercept(method, &options, options.timeout)
            .await
        {
            Ok(intercepted) => intercepted,
            Err(status) => {
                tracing::debug!(instance = %self.address(), code = status.code().as_u8(), "the channel's interceptors refused a health probe");
                self.refused.store(true, Ordering::Relaxed);
                return Err(status.into());
            }
        };
        let timeout = timeout.map(|t| t.min(HEALTH_PROBE_TIMEOUT));
        let response = self
            .caller
            .send_unary(method, &Typed(args), &options, &metadata, timeout)
            .await
            .map_err(RpcError::widen)?;
        decode_response(response, self.serializer)
    }
}

/// Ends a health probe (also when its task is dropped).
struct ProbeGuard(Arc<Instance>);

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        self.0.probing.store(false, Ordering::Release);
    }
}

impl Balanced {
    /// Probes an ejected `instance` (whose `probing` flag the caller set)
    /// with the channel's [`HealthProbe`], in a task of its own, sent as
    /// `call` is sent (its channel's interceptors, its serializer), within
    /// [`HEALTH_PROBE_TIMEOUT`]: `Serving` readmits it, `NotServing` (or
    /// no outcome in time) ejects it again, for longer; `NoHealthService`
    /// leaves it due a probe, and the next call to pick it is the probe.
    pub(super) fn spawn_health_probe(&self, instance: &Arc<Instance>, call: &CallHead<'_>) {
        let guard = ProbeGuard(Arc::clone(instance));
        let balanced = Weak::clone(&self.me);
        let sender = ProbeSender {
            probe: Arc::clone(&self.options.health_probe),
            config: self.options.channel.clone(),
            ids: Arc::clone(&self.ids),
            service: self.service.clone(),
            interceptors: Arc::clone(call.interceptors),
            serializer: call.serializer,
        };
        self.runtime.spawn(async move {
            let instance = &guard.0;
            let outcome = tokio::time::timeout(HEALTH_PROBE_TIMEOUT, sender.probe(instance))
                .await
                .unwrap_or(ProbeOutcome::NotServing);
            let Some(balanced) = balanced.upgrade() else {
                return;
            };
            tracing::debug!(service = %balanced.service, instance = %instance.instance_id, ?outcome, "health probe");
            let instances = balanced.snapshot();
            match outcome {
                ProbeOutcome::Serving => {
                    balanced.record(&instances, instance, Verdict::Healthy, true);
                }
                ProbeOutcome::NotServing => {
                    balanced.record(&instances, instance, Verdict::Failed, true);
                }
                ProbeOutcome::NoHealthService => {
                    instance.no_health_probe.store(true, Ordering::Release);
                }
            }
        });
    }
}

/// What a probe task needs of the balanced channel and of the call that
/// started it.
struct ProbeSender {
    probe: Arc<dyn HealthProbe>,
    config: ChannelConfig,
    ids: Arc<RequestIds>,
    service: String,
    interceptors: Interceptors,
    serializer: Serializer,
}

impl ProbeSender {
    /// Connects to `instance` and runs the health probe on it.
    async fn probe(&self, instance: &Instance) -> ProbeOutcome {
        let endpoint = match instance.endpoint(&self.config, &self.ids).await {
            Ok(endpoint) => endpoint,
            Err(_) => return ProbeOutcome::NotServing,
        };
        let target = ProbeTarget {
            caller: Caller {
                route: endpoint,
                interceptors: &self.interceptors,
                default_timeout: None,
                peer: endpoint.target(),
            },
            service: &self.service,
            serializer: self.serializer,
            refused: AtomicBool::new(false),
        };
        let outcome = self.probe.check(&target).await;
        if target.refused.load(Ordering::Relaxed) {
            // Every check would be refused the same way.
            return ProbeOutcome::NoHealthService;
        }
        outcome
    }
}
