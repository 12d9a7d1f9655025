//! The balanced target of a [`Channel`](super::Channel): one endpoint per
//! instance of a service, kept current from a registry watch; each call
//! asks a [`Balancer`] for an instance, fails over by the rules of
//! [`Retry`], spends a [`RetryBudget`], and ejects instances that keep
//! failing. An ejected instance due a probe is asked `courier.Health`
//! first (in the background, sent as the channel sends its calls); only an
//! instance that does not serve it, or refuses the check, is probed with a
//! real call.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::OnceCell;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::channel::{ChannelShared, HostPort};
use super::config::ChannelConfig;
use super::interceptor::{ClientInterceptor, OutgoingRequest};
use super::method::MethodDescriptor;
use crate::balance::{Balancer, Candidate, Strategy, hash_key_of};
use crate::builtin::generated::health::health::{self, CheckArgs};
use crate::builtin::health::{CheckError, ServingStatus};
use crate::codegen::Reply;
use crate::context::Metadata;
use crate::context::cap_timeout;
use crate::error::{RpcError, Status, StatusCode, TransportError};
use crate::registry::{InstanceWatch, Registry, ServiceInstance};
use crate::serializer::Serializer;

/// The default share of calls that may be retried: 20%.
pub const DEFAULT_RETRY_RATIO: f64 = 0.2;
/// The default number of retries allowed per second whatever the ratio.
pub const DEFAULT_MIN_RETRIES_PER_SECOND: u32 = 10;
/// The default number of attempts of one call (the first one included).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The default number of consecutive failures that eject an instance.
pub const DEFAULT_EJECT_AFTER: u32 = 5;
/// The default first ejection period (doubled on each ejection in a row).
pub const DEFAULT_EJECT_BASE: Duration = Duration::from_secs(1);
/// The default longest ejection period.
pub const DEFAULT_EJECT_MAX: Duration = Duration::from_secs(30);

/// How long a health probe of an ejected instance may take (connecting
/// included) before it counts as failed.
pub const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The most attempts a call can make, whatever the options say.
const ATTEMPTS_CAP: usize = 8;
/// Retry tokens are counted in thousandths.
const TOKEN: i64 = 1000;
/// The most retry tokens calls can save up (so a long quiet spell does not
/// allow a storm later): 100 retries.
const MAX_SAVED_TOKENS: i64 = 100 * TOKEN;

/// How a [balanced channel](super::Channel::balanced) picks instances,
/// retries and ejects.
#[derive(Clone)]
pub struct BalanceOptions {
    /// The strategy (default [`Strategy::WeightedRandom`]); ignored if
    /// [`balancer`](Self::balancer) is set.
    pub strategy: Strategy,
    /// A balancer of the user's own (or a configured built-in one, such as
    /// [`ConsistentHash::with_load_bound`](crate::balance::ConsistentHash::with_load_bound)).
    pub balancer: Option<Arc<dyn Balancer>>,
    /// How each endpoint connects (the default timeout applies to the
    /// balanced channel's calls).
    pub channel: ChannelConfig,
    /// At most this many attempts per call, the first included (default
    /// [`DEFAULT_MAX_ATTEMPTS`]; 1 turns failover off; at most 8).
    pub max_attempts: u32,
    /// The share of calls that may be retried (default
    /// [`DEFAULT_RETRY_RATIO`]).
    pub retry_ratio: f64,
    /// Retries allowed per second beyond the ratio (default
    /// [`DEFAULT_MIN_RETRIES_PER_SECOND`]), so a quiet client can still
    /// fail over.
    pub min_retries_per_second: u32,
    /// Consecutive failures (connection failures, status 8, 9 or 19) that
    /// eject an instance (default [`DEFAULT_EJECT_AFTER`]; 0 turns ejection
    /// off).
    pub eject_after: u32,
    /// The first ejection period (default [`DEFAULT_EJECT_BASE`]); each
    /// ejection in a row doubles it.
    pub eject_base: Duration,
    /// The longest ejection period (default [`DEFAULT_EJECT_MAX`]).
    pub eject_max: Duration,
}

impl Default for BalanceOptions {
    fn default() -> Self {
        BalanceOptions {
            strategy: Strategy::default(),
            balancer: None,
            channel: ChannelConfig::default(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_ratio: DEFAULT_RETRY_RATIO,
            min_retries_per_second: DEFAULT_MIN_RETRIES_PER_SECOND,
            eject_after: DEFAULT_EJECT_AFTER,
            eject_base: DEFAULT_EJECT_BASE,
            eject_max: DEFAULT_EJECT_MAX,
        }
    }
}

impl std::fmt::Debug for BalanceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalanceOptions")
            .field("strategy", &self.strategy)
            .field("custom_balancer", &self.balancer.is_some())
            .field("channel", &self.channel)
            .field("max_attempts", &self.max_attempts)
            .field("retry_ratio", &self.retry_ratio)
            .field("min_retries_per_second", &self.min_retries_per_second)
            .field("eject_after", &self.eject_after)
            .field("eject_base", &self.eject_base)
            .field("eject_max", &self.eject_max)
            .finish()
    }
}

impl BalanceOptions {
    /// The defaults with another strategy.
    pub fn with_strategy(strategy: Strategy) -> BalanceOptions {
        BalanceOptions {
            strategy,
            ..BalanceOptions::default()
        }
    }

    /// These options with a balancer of the user's own.
    pub fn balancer(mut self, balancer: impl Balancer) -> BalanceOptions {
        self.balancer = Some(Arc::new(balancer));
        self
    }
}

/// One instance of a balanced channel as it is now (see
/// [`Channel::instances`](super::Channel::instances)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceState {
    /// The instance's registry id.
    pub id: String,
    /// Where it is (`host:port`).
    pub address: String,
    /// Its weight.
    pub weight: u32,
    /// Calls in flight to it.
    pub in_flight: usize,
    /// Attempts made to it so far (first attempts and retries).
    pub attempts: u64,
    /// Whether it is ejected (out of rotation until a probe succeeds).
    pub ejected: bool,
}

/// Limits retries to a share of calls plus a small floor per second
/// (Finagle's `RetryBudget`, gRPC's retry throttling).
struct RetryBudget {
    /// Thousandths of a token each call deposits.
    deposit: i64,
    /// Saved tokens, in thousandths.
    balance: AtomicI64,
    min_per_second: u32,
    /// (start of the current second, retries taken from the floor in it).
    floor: Mutex<(Instant, u32)>,
}

impl RetryBudget {
    fn new(ratio: f64, min_per_second: u32) -> RetryBudget {
        let ratio = if ratio.is_finite() {
            ratio.clamp(0.0, 1.0)
        } else {
            0.0
        };
        RetryBudget {
            // Truncation is fine: `ratio` is in [0, 1].
            deposit: (ratio * TOKEN as f64) as i64,
            balance: AtomicI64::new(0),
            min_per_second,
            floor: Mutex::new((Instant::now(), 0)),
        }
    }

    /// A call starts: it earns its share of a retry.
    fn deposit(&self) {
        if self.deposit == 0 {
            return;
        }
        let _ = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b < MAX_SAVED_TOKENS).then(|| (b + self.deposit).min(MAX_SAVED_TOKENS))
            });
    }

    /// Takes one retry from the saved tokens, else from this second's
    /// floor; `false` if neither has one.
    fn try_withdraw(&self) -> bool {
        let saved = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b >= TOKEN).then(|| b - TOKEN)
            });
        if saved.is_ok() {
            return true;
        }
        let mut floor = self.floor.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if now.duration_since(floor.0) >= Duration::from_secs(1) {
            *floor = (now, 0);
        }
        if floor.1 < self.min_per_second {
            floor.1 += 1;
            true
        } else {
            false
        }
    }
}

/// One instance: its endpoint (connected lazily, or eagerly when it
/// appears) and its health.
struct Endpoint {
    instance_id: String,
    /// A stable hash of the instance id: the [`Candidate::id`].
    key: u64,
    address: String,
    /// The instance speaks TLS (registered with `sslPort`).
    tls: bool,
    weight: AtomicU32,
    connection: OnceCell<Arc<ChannelShared>>,
    in_flight: AtomicUsize,
    attempts: AtomicU64,
    /// Consecutive failures.
    failures: AtomicU32,
    /// Ejections in a row (the backoff exponent).
    ejections: AtomicU32,
    /// Milliseconds since the channel's origin until which the instance is
    /// ejected; 0 while it is in rotation. Once passed, the instance is due
    /// a probe.
    ejected_until: AtomicU64,
    /// A probe (a health check or a call) is in flight.
    probing: AtomicBool,
    /// The instance does not serve `courier.Health` (or not for this
    /// service): its probe is the next real call.
    no_health_probe: AtomicBool,
}

/// How an endpoint may be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    InRotation,
    Ejected,
    ProbeDue,
}

impl Endpoint {
    fn new(instance: &ServiceInstance) -> Endpoint {
        Endpoint {
            instance_id: instance.id.clone(),
            key: hash_key_of(instance.id.as_str()),
            address: HostPort(&instance.address, instance.port).to_string(),
            tls: instance.tls,
            weight: AtomicU32::new(instance.weight),
            connection: OnceCell::new(),
            in_flight: AtomicUsize::new(0),
            attempts: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            no_health_probe: AtomicBool::new(false),
        }
    }

    fn health(&self, now_ms: u64) -> Health {
        match self.ejected_until.load(Ordering::Acquire) {
            0 => Health::InRotation,
            until if now_ms < until => Health::Ejected,
            _ => Health::ProbeDue,
        }
    }

    /// The endpoint's connections, opened on first use.
    async fn connection(
        &self,
        config: &ChannelConfig,
    ) -> Result<&Arc<ChannelShared>, TransportError> {
        self.connection
            .get_or_try_init(|| ChannelShared::connect_instance(&self.address, self.tls, config))
            .await
    }
}

/// Counts a call in flight on an endpoint; ends a probe if the call was
/// one (also when the call's future is dropped).
struct InFlight<'a> {
    endpoint: &'a Endpoint,
    probe: bool,
}

impl<'a> InFlight<'a> {
    fn start(endpoint: &'a Endpoint, probe: bool) -> InFlight<'a> {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        endpoint.attempts.fetch_add(1, Ordering::Relaxed);
        InFlight { endpoint, probe }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.probe {
            self.endpoint.probing.store(false, Ordering::Release);
        }
    }
}

/// Ends a health probe (also when its task is dropped).
struct ProbeGuard(Arc<Endpoint>);

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        self.0.probing.store(false, Ordering::Release);
    }
}

/// What a health probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeOutcome {
    /// `SERVING`: back in rotation.
    Serving,
    /// `NOT_SERVING`, a failure (connection, status 8, 9 or 19) or no answer
    /// in time: stays ejected.
    NotServing,
    /// The instance has no health service this channel can use: it does
    /// not serve `courier.Health` (status 2 or 3) or does not know the
    /// service, or it refuses the check (status 12 or 13: credentials;
    /// 4 or 5: the serializer), or the channel's interceptors do, or the
    /// check cannot be encoded or its answer decoded. The next real call is
    /// the probe.
    NoHealthService,
}

/// Sorts a health check's outcome.
fn classify_probe(result: &Result<ServingStatus, RpcError<CheckError>>) -> ProbeOutcome {
    match result {
        Ok(ServingStatus::Serving) => ProbeOutcome::Serving,
        Ok(_) => ProbeOutcome::NotServing,
        Err(RpcError::Declared(CheckError::NoSuchService(_))) => ProbeOutcome::NoHealthService,
        Err(RpcError::Status(status))
            if matches!(
                status.code(),
                StatusCode::UnknownService
                    | StatusCode::UnknownMethod
                    | StatusCode::BadRequest
                    | StatusCode::UnsupportedSerializer
                    | StatusCode::Unauthenticated
                    | StatusCode::PermissionDenied
            ) =>
        {
            ProbeOutcome::NoHealthService
        }
        // The check or its answer does not go through the serializer here:
        // every check would fail the same way.
        Err(RpcError::Transport(TransportError::Encode { .. } | TransportError::Decode { .. })) => {
            ProbeOutcome::NoHealthService
        }
        Err(_) => ProbeOutcome::NotServing,
    }
}

/// How the health probes a call starts are sent: as the channel making the
/// call sends it, through its interceptors (credentials, say) and in the
/// call's serializer, so a server that takes the calls takes the checks.
#[derive(Clone, Copy)]
pub(super) struct ProbeSender<'a> {
    /// The calling channel's interceptors.
    pub(super) interceptors: &'a Arc<[Arc<dyn ClientInterceptor>]>,
    /// The call's serializer.
    pub(super) serializer: Serializer,
}

/// Asks `endpoint` `courier.Health.check(args.service)` as a channel with
/// `interceptors` sends a call in `serializer`, all within
/// [`HEALTH_PROBE_TIMEOUT`] (interceptors and connecting included).
async fn check_health(
    endpoint: &Endpoint,
    config: &ChannelConfig,
    interceptors: &[Arc<dyn ClientInterceptor>],
    serializer: Serializer,
    args: &CheckArgs,
) -> ProbeOutcome {
    let check = async {
        let mut request = OutgoingRequest::new(
            &health::CHECK,
            serializer,
            Metadata::default(),
            Some(HEALTH_PROBE_TIMEOUT),
        );
        for interceptor in interceptors {
            if let Err(status) = interceptor.intercept(&mut request).await {
                // Every check would be refused the same way; it says
                // nothing about the instance.
                tracing::debug!(instance = %endpoint.instance_id, code = status.code().as_u8(), "the channel's interceptors refused a health probe");
                return ProbeOutcome::NoHealthService;
            }
        }
        let (metadata, timeout) = request.into_parts();
        let timeout = timeout.map_or(HEALTH_PROBE_TIMEOUT, |t| t.min(HEALTH_PROBE_TIMEOUT));
        let result: Result<ServingStatus, RpcError<CheckError>> = async {
            let shared = endpoint.connection(config).await?;
            let reply: Reply<ServingStatus> = shared
                .call(&health::CHECK, args, serializer, &metadata, Some(timeout))
                .await?;
            Ok(reply.value)
        }
        .await;
        classify_probe(&result)
    };
    // No answer in time: as a failed check.
    tokio::time::timeout(HEALTH_PROBE_TIMEOUT, check)
        .await
        .unwrap_or(ProbeOutcome::NotServing)
}

/// What an attempt's outcome says about the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// It answered: in rotation, failures reset.
    Healthy,
    /// It failed in a way that counts toward ejection.
    Failed,
    /// Says nothing about the instance (overload, deadline, codec).
    Neutral,
}

/// Whether a failed attempt may be retried on another instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Never: the call may have run.
    Never,
    /// Only if the method is `@idempotent`: the call may have run.
    IfIdempotent,
    /// Always: the call did not run, or may safely run again elsewhere
    /// (status 7, 9 or 19, or it was never sent).
    Always,
}

/// Sorts an attempt's outcome.
fn classify<T, E>(result: &Result<T, RpcError<E>>) -> (Verdict, Retry) {
    match result {
        Ok(_) | Err(RpcError::Declared(_)) => (Verdict::Healthy, Retry::Never),
        Err(RpcError::Status(status)) => match status.code() {
            StatusCode::Overloaded => (Verdict::Neutral, Retry::Always),
            // Not executed (9), or transient (19): both "safe to retry
            // elsewhere" (PROTOCOL.md), and both say the instance can't
            // serve now.
            StatusCode::ShuttingDown | StatusCode::Unavailable => (Verdict::Failed, Retry::Always),
            StatusCode::Internal => (Verdict::Failed, Retry::Never),
            StatusCode::DeadlineExceeded => (Verdict::Neutral, Retry::Never),
            _ => (Verdict::Healthy, Retry::Never),
        },
        Err(RpcError::Transport(error)) => match error {
            // A TLS failure happens before the server reads any request.
            TransportError::Connect { .. } | TransportError::Tls { .. } => {
                (Verdict::Failed, Retry::Always)
            }
            // No room in the send queue before the deadline: nothing was
            // sent (but no time is left). Like overload, it may be the
            // client's own burst, so it says nothing about the instance.
            TransportError::SendQueueFull { .. } => (Verdict::Neutral, Retry::Always),
            TransportError::ConnectionLost(_) | TransportError::HeartbeatTimeout { .. } => {
                (Verdict::Failed, Retry::IfIdempotent)
            }
            _ => (Verdict::Neutral, Retry::Never),
        },
    }
}

/// The instances one call has tried, so a retry goes elsewhere.
#[derive(Default)]
struct Tried {
    keys: [u64; ATTEMPTS_CAP],
    len: usize,
}

impl Tried {
    fn contains(&self, key: u64) -> bool {
        self.keys[..self.len].contains(&key)
    }

    fn push(&mut self, key: u64) {
        if self.len < ATTEMPTS_CAP {
            self.keys[self.len] = key;
            self.len += 1;
        }
    }
}

thread_local! {
    /// The candidates of the call being balanced on this thread and the
    /// index of each one's endpoint: reused, so picking allocates nothing
    /// once warm.
    static SCRATCH: RefCell<(Vec<Candidate>, Vec<usize>)> = const {
        RefCell::new((Vec::new(), Vec::new()))
    };
}

/// What every clone of a balanced channel shares.
pub(super) struct Balanced {
    /// Itself, for the health probes it spawns.
    me: Weak<Balanced>,
    service: String,
    balancer: Arc<dyn Balancer>,
    /// The current endpoints, replaced as a whole when membership changes;
    /// a call clones the `Arc` (no allocation).
    endpoints: RwLock<Arc<[Arc<Endpoint>]>>,
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
    /// Watches `service` and starts keeping its endpoints.
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
            endpoints: RwLock::new(Arc::from(Vec::new())),
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

    pub(super) fn service(&self) -> &str {
        &self.service
    }

    pub(super) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    fn snapshot(&self) -> Arc<[Arc<Endpoint>]> {
        Arc::clone(
            &self
                .endpoints
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Replaces the endpoints with those of `instances`, keeping the
    /// endpoints (connections, health) of instances still there, and starts
    /// connecting the new ones.
    fn update(&self, instances: &[ServiceInstance]) {
        let old = self.snapshot();
        let mut fresh = Vec::new();
        let next: Vec<Arc<Endpoint>> = instances
            .iter()
            .map(|instance| {
                let address = HostPort(&instance.address, instance.port).to_string();
                match old.iter().find(|e| {
                    e.instance_id == instance.id && e.address == address && e.tls == instance.tls
                }) {
                    Some(endpoint) => {
                        endpoint.weight.store(instance.weight, Ordering::Relaxed);
                        Arc::clone(endpoint)
                    }
                    None => {
                        let endpoint = Arc::new(Endpoint::new(instance));
                        fresh.push(Arc::clone(&endpoint));
                        endpoint
                    }
                }
            })
            .collect();
        tracing::debug!(service = %self.service, instances = next.len(), "balanced channel membership changed");
        *self
            .endpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::from(next);
        // Connect new instances now, so the first calls find them ready;
        // a failure here is retried by the first call.
        for endpoint in fresh {
            let config = self.options.channel.clone();
            tokio::spawn(async move {
                let _ = endpoint.connection(&config).await;
            });
        }
    }

    fn now_ms(&self) -> u64 {
        // At least 1: 0 means "not ejected".
        u64::try_from(self.origin.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Picks an endpoint for an attempt, among those not tried yet: those
    /// in rotation, plus at most one ejected instance due a probe that does
    /// not serve `courier.Health` (the attempt is then its probe). Ejected
    /// instances due a probe that may serve it get a health probe in the
    /// background instead. If none is in rotation, any untried one.
    fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        key: Option<u64>,
        tried: &Tried,
        sender: ProbeSender<'_>,
    ) -> Option<(usize, bool)> {
        let now = self.now_ms();
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let (candidates, indexes) = &mut *scratch;
            candidates.clear();
            indexes.clear();
            let mut probe = None;
            for (index, endpoint) in endpoints.iter().enumerate() {
                if tried.contains(endpoint.key) {
                    continue;
                }
                let usable = match endpoint.health(now) {
                    Health::InRotation => true,
                    Health::Ejected => false,
                    Health::ProbeDue if !endpoint.no_health_probe.load(Ordering::Acquire) => {
                        if endpoint
                            .probing
                            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                            .is_ok()
                        {
                            self.spawn_health_probe(endpoint, sender);
                        }
                        false
                    }
                    Health::ProbeDue => {
                        probe.is_none()
                            && endpoint
                                .probing
                                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                                .is_ok()
                            && {
                                probe = Some(index);
                                true
                            }
                    }
                };
                if usable {
                    candidates.push(candidate(endpoint));
                    indexes.push(index);
                }
            }
            if candidates.is_empty() {
                // Everything left is ejected: better a sick instance than
                // none ("panic mode").
                for (index, endpoint) in endpoints.iter().enumerate() {
                    if !tried.contains(endpoint.key) {
                        candidates.push(candidate(endpoint));
                        indexes.push(index);
                    }
                }
            }
            if candidates.is_empty() {
                return None;
            }
            let picked = self
                .balancer
                .pick(candidates, key)
                .min(candidates.len() - 1);
            let chosen = indexes[picked];
            if let Some(probe) = probe
                && probe != chosen
            {
                endpoints[probe].probing.store(false, Ordering::Release);
            }
            Some((chosen, probe == Some(chosen)))
        })
    }

    /// Asks an ejected `endpoint` (whose `probing` flag the caller set)
    /// `courier.Health.check(service)` — the service's full wire name, the
    /// registry's service name — in a task of its own, as `sender` sends
    /// calls, within [`HEALTH_PROBE_TIMEOUT`]: `SERVING` readmits it,
    /// `NOT_SERVING` or a failure ejects it again (longer); an instance
    /// with no health service the channel can use is left due a probe, and
    /// the next call to pick it is the probe.
    fn spawn_health_probe(&self, endpoint: &Arc<Endpoint>, sender: ProbeSender<'_>) {
        let guard = ProbeGuard(Arc::clone(endpoint));
        let balanced = Weak::clone(&self.me);
        let config = self.options.channel.clone();
        let interceptors = Arc::clone(sender.interceptors);
        let serializer = sender.serializer;
        let args = CheckArgs {
            service: self.service.clone(),
        };
        self.runtime.spawn(async move {
            let endpoint = &guard.0;
            let outcome = check_health(endpoint, &config, &interceptors, serializer, &args).await;
            let Some(balanced) = balanced.upgrade() else {
                return;
            };
            tracing::debug!(service = %balanced.service, instance = %endpoint.instance_id, ?outcome, "health probe");
            let endpoints = balanced.snapshot();
            match outcome {
                ProbeOutcome::Serving => {
                    balanced.record(&endpoints, endpoint, Verdict::Healthy, true);
                }
                ProbeOutcome::NotServing => {
                    balanced.record(&endpoints, endpoint, Verdict::Failed, true);
                }
                ProbeOutcome::NoHealthService => {
                    endpoint.no_health_probe.store(true, Ordering::Release);
                }
            }
        });
    }

    /// Records an attempt's verdict on its endpoint: resets it, or counts a
    /// failure and ejects it (or ejects it again after a failed probe),
    /// unless it is the last instance in rotation.
    fn record(
        &self,
        endpoints: &[Arc<Endpoint>],
        endpoint: &Endpoint,
        verdict: Verdict,
        probe: bool,
    ) {
        match verdict {
            Verdict::Neutral => {}
            Verdict::Healthy => {
                endpoint.failures.store(0, Ordering::Relaxed);
                if endpoint.ejected_until.load(Ordering::Acquire) != 0 {
                    endpoint.ejected_until.store(0, Ordering::Release);
                    endpoint.ejections.store(0, Ordering::Relaxed);
                    tracing::debug!(service = %self.service, instance = %endpoint.instance_id, "instance back in rotation");
                }
            }
            Verdict::Failed => {
                let failures = endpoint.failures.fetch_add(1, Ordering::Relaxed) + 1;
                let threshold = self.options.eject_after;
                let in_rotation = endpoint.ejected_until.load(Ordering::Acquire) == 0;
                let eject = threshold > 0
                    && (probe || (in_rotation && failures >= threshold))
                    && endpoints.iter().any(|other| {
                        !std::ptr::eq(other.as_ref(), endpoint)
                            && other.ejected_until.load(Ordering::Acquire) == 0
                    });
                if eject {
                    let exponent = endpoint.ejections.fetch_add(1, Ordering::Relaxed).min(16);
                    let period = self
                        .options
                        .eject_base
                        .saturating_mul(1 << exponent)
                        .min(self.options.eject_max);
                    let until = self
                        .now_ms()
                        .saturating_add(u64::try_from(period.as_millis()).unwrap_or(u64::MAX));
                    endpoint.ejected_until.store(until, Ordering::Release);
                    tracing::debug!(service = %self.service, instance = %endpoint.instance_id, ?period, failures, "instance ejected");
                }
            }
        }
    }

    /// Runs one call: picks an instance, runs `attempt` on its connections
    /// with what is left of the deadline, and fails over while the outcome
    /// allows, attempts remain, the deadline has not passed and the retry
    /// budget has a retry.
    pub(super) async fn call<T, E, F, Fut>(
        &self,
        method: &'static MethodDescriptor,
        timeout: Option<Duration>,
        key: Option<u64>,
        sender: ProbeSender<'_>,
        attempt: F,
    ) -> Result<T, RpcError<E>>
    where
        F: Fn(Arc<ChannelShared>, Option<Duration>) -> Fut,
        Fut: Future<Output = Result<T, RpcError<E>>>,
    {
        let timeout = cap_timeout(timeout);
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let endpoints = self.snapshot();
        self.budget.deposit();
        let max_attempts = (self.options.max_attempts as usize).clamp(1, ATTEMPTS_CAP);
        let mut tried = Tried::default();
        let mut last: Option<RpcError<E>> = None;
        loop {
            let Some((index, probe)) = self.pick(&endpoints, key, &tried, sender) else {
                return Err(last.unwrap_or_else(|| {
                    TransportError::NoInstance {
                        service: self.service.clone(),
                    }
                    .into()
                }));
            };
            let endpoint = &endpoints[index];
            tried.push(endpoint.key);
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return Err(last.unwrap_or_else(|| {
                    Status::deadline_exceeded(format!(
                        "the deadline of {}/{} passed before it was sent",
                        method.service, method.method
                    ))
                    .into()
                }));
            }
            let guard = InFlight::start(endpoint, probe);
            let connected = match deadline {
                Some(deadline) => {
                    tokio::time::timeout_at(deadline, endpoint.connection(&self.options.channel))
                        .await
                        .unwrap_or_else(|_| {
                            Err(TransportError::Connect {
                                addr: endpoint.address.clone(),
                                source: Arc::new(std::io::ErrorKind::TimedOut.into()),
                            })
                        })
                }
                None => endpoint.connection(&self.options.channel).await,
            };
            let result = match connected {
                Ok(shared) => attempt(Arc::clone(shared), remaining).await,
                Err(error) => Err(error.into()),
            };
            let (verdict, retry) = classify(&result);
            self.record(&endpoints, endpoint, verdict, probe);
            drop(guard);
            let error = match result {
                Ok(reply) => return Ok(reply),
                Err(error) => error,
            };
            let may_retry = match retry {
                Retry::Never => false,
                Retry::IfIdempotent => method.idempotent,
                Retry::Always => true,
            };
            let time_left = deadline.is_none_or(|d| Instant::now() < d);
            if !(may_retry && tried.len < max_attempts && time_left && self.budget.try_withdraw()) {
                return Err(error);
            }
            tracing::debug!(service = %self.service, instance = %endpoint.instance_id, code = error.code().as_u8(), "retrying on another instance");
            last = Some(error);
        }
    }

    /// Calls waiting for a response on every endpoint.
    pub(super) fn pending_len(&self) -> usize {
        self.snapshot()
            .iter()
            .filter_map(|e| e.connection.get())
            .map(|shared| shared.pending_len())
            .sum()
    }

    /// Frames and bytes unwritten on every endpoint.
    pub(super) fn unsent(&self) -> (usize, usize) {
        self.snapshot()
            .iter()
            .filter_map(|e| e.connection.get())
            .map(|shared| shared.unsent())
            .fold((0, 0), |(f, b), (f2, b2)| (f + f2, b + b2))
    }

    /// The endpoints and their state.
    pub(super) fn instances(&self) -> Vec<InstanceState> {
        let now = self.now_ms();
        self.snapshot()
            .iter()
            .map(|e| InstanceState {
                id: e.instance_id.clone(),
                address: e.address.clone(),
                weight: e.weight.load(Ordering::Relaxed),
                in_flight: e.in_flight.load(Ordering::Relaxed),
                attempts: e.attempts.load(Ordering::Relaxed),
                ejected: e.health(now) != Health::InRotation,
            })
            .collect()
    }
}

fn candidate(endpoint: &Endpoint) -> Candidate {
    Candidate {
        id: endpoint.key,
        weight: endpoint.weight.load(Ordering::Relaxed),
        in_flight: endpoint.in_flight.load(Ordering::Relaxed),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_its_share_and_the_floor() {
        let budget = RetryBudget::new(0.2, 2);
        for _ in 0..100 {
            budget.deposit();
        }
        let mut granted = 0;
        while budget.try_withdraw() {
            granted += 1;
            assert!(granted <= 100, "the budget never runs out");
        }
        assert_eq!(granted, 20 + 2);
    }

    #[test]
    fn health_probe_outcomes_are_classified() {
        let serving = Ok(ServingStatus::Serving);
        assert_eq!(classify_probe(&serving), ProbeOutcome::Serving);
        let down = Ok(ServingStatus::NotServing);
        assert_eq!(classify_probe(&down), ProbeOutcome::NotServing);
        let stopping = Err(Status::new(StatusCode::ShuttingDown, "").into());
        assert_eq!(classify_probe(&stopping), ProbeOutcome::NotServing);
        let lost = Err(TransportError::ConnectionLost("reset".into()).into());
        assert_eq!(classify_probe(&lost), ProbeOutcome::NotServing);
        let unknown = Err(Status::new(StatusCode::UnknownService, "").into());
        assert_eq!(classify_probe(&unknown), ProbeOutcome::NoHealthService);
        let not_served = Err(RpcError::Declared(CheckError::NoSuchService(
            crate::builtin::health::NoSuchService::default(),
        )));
        assert_eq!(classify_probe(&not_served), ProbeOutcome::NoHealthService);
        for refused in [
            StatusCode::BadRequest,
            StatusCode::UnsupportedSerializer,
            StatusCode::Unauthenticated,
            StatusCode::PermissionDenied,
        ] {
            let refused = Err(Status::new(refused, "").into());
            assert_eq!(classify_probe(&refused), ProbeOutcome::NoHealthService);
        }
        let undecodable = Err(TransportError::Decode {
            what: "CheckReply",
            reason: "bad".into(),
        }
        .into());
        assert_eq!(classify_probe(&undecodable), ProbeOutcome::NoHealthService);
        let timed_out = Err(Status::deadline_exceeded("").into());
        assert_eq!(classify_probe(&timed_out), ProbeOutcome::NotServing);
    }

    #[test]
    fn outcomes_are_classified() {
        let lost: Result<(), RpcError> = Err(TransportError::ConnectionLost("reset".into()).into());
        assert_eq!(classify(&lost), (Verdict::Failed, Retry::IfIdempotent));
        let overloaded: Result<(), RpcError> = Err(Status::new(StatusCode::Overloaded, "").into());
        assert_eq!(classify(&overloaded), (Verdict::Neutral, Retry::Always));
        let stopping: Result<(), RpcError> = Err(Status::new(StatusCode::ShuttingDown, "").into());
        assert_eq!(classify(&stopping), (Verdict::Failed, Retry::Always));
        let unavailable: Result<(), RpcError> =
            Err(Status::new(StatusCode::Unavailable, "").into());
        assert_eq!(classify(&unavailable), (Verdict::Failed, Retry::Always));
        let stalled: Result<(), RpcError> = Err(TransportError::SendQueueFull {
            addr: "127.0.0.1:1".into(),
            waited: std::time::Duration::from_millis(50),
            queued_calls: 1024,
            queued_bytes: 1 << 20,
        }
        .into());
        assert_eq!(classify(&stalled), (Verdict::Neutral, Retry::Always));
        let internal: Result<(), RpcError> = Err(Status::internal("boom").into());
        assert_eq!(classify(&internal), (Verdict::Failed, Retry::Never));
        assert_eq!(
            classify(&Ok::<(), RpcError>(())),
            (Verdict::Healthy, Retry::Never)
        );
    }
}
