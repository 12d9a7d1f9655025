//! [`BalanceOptions`]: how a balanced channel picks instances, retries,
//! ejects and probes; and [`InstanceState`], what it reports of each
//! instance.

use std::sync::Arc;
use std::time::Duration;

use super::probe::HealthProbe;
use crate::balance::{Balancer, Strategy};
use crate::builtin::health::HealthCheckProbe;
use crate::client::ChannelConfig;

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

/// How a [balanced channel](crate::client::Channel::balanced) picks
/// instances, retries, ejects and probes.
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
    /// How an ejected instance due a probe is checked before it takes
    /// calls again (default [`HealthCheckProbe`]: asks `courier.Health`).
    pub health_probe: Arc<dyn HealthProbe>,
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
            health_probe: Arc::new(HealthCheckProbe),
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
            .finish_non_exhaustive()
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

    /// These options with a health probe of the user's own.
    pub fn health_probe(mut self, probe: impl HealthProbe) -> BalanceOptions {
        self.health_probe = Arc::new(probe);
        self
    }
}

/// One instance of a balanced channel as it is now (see
/// [`Channel::instances`](crate::client::Channel::instances)).
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
