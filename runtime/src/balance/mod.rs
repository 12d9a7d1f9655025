//! Load balancing: which instance of a service a call goes to.
//!
//! A [`Balancer`] picks one of the current [`Candidate`]s for each call.
//! The strategies the seed design names are here, and users can add their
//! own by implementing the trait:
//!
//! | strategy | type | picks |
//! |---|---|---|
//! | random | [`Random`] | uniformly |
//! | weighted random | [`WeightedRandom`] | proportionally to weight |
//! | round robin | [`RoundRobin`] | in turn, smoothly weighted (nginx's algorithm) |
//! | least in-flight | [`LeastInFlight`] | the less loaded of two random choices |
//! | consistent hash | [`ConsistentHash`] | by the call's hash key on a ring of virtual nodes, optionally with bounded loads |

mod consistent_hash;
mod least_in_flight;
mod random;
mod round_robin;

pub use consistent_hash::{ConsistentHash, DEFAULT_VIRTUAL_NODES};
pub use least_in_flight::LeastInFlight;
pub use random::{Random, WeightedRandom};
pub use round_robin::RoundRobin;

/// A call's hash key from any hashable value (a user id, an order id): what
/// [`CallOptions::hash_key`](crate::client::CallOptions::hash_key) takes and
/// what generated stubs compute from a method's `@hash_key` parameter.
///
/// Stable within a process (every call with an equal value gets the same
/// key), not across processes or versions: it uses a fixed-key SipHash
/// ([`std::hash::DefaultHasher::new`]).
pub fn hash_key_of<T: std::hash::Hash + ?Sized>(value: &T) -> u64 {
    use std::hash::Hasher;
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// What a strategy knows about one instance when it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// A stable identity of the instance (for example a hash of its
    /// registry id): strategies with state per instance key it by this.
    pub id: u64,
    /// Its weight from the registry (default 100); 0 is treated as 1.
    pub weight: u32,
    /// Calls in flight to it right now.
    pub in_flight: usize,
}

impl Candidate {
    /// The weight, never 0.
    pub fn effective_weight(&self) -> u64 {
        u64::from(self.weight.max(1))
    }
}

/// A load-balancing strategy.
pub trait Balancer: Send + Sync + 'static {
    /// Picks one of `candidates` (never empty) for a call and returns its
    /// index; `key` is the call's hash key, if it has one.
    fn pick(&self, candidates: &[Candidate], key: Option<u64>) -> usize;
}

/// The strategies by name, for configuration and URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// [`Random`].
    Random,
    /// [`WeightedRandom`] (the default).
    #[default]
    WeightedRandom,
    /// [`RoundRobin`].
    RoundRobin,
    /// [`LeastInFlight`].
    LeastInFlight,
    /// [`ConsistentHash`] without a load bound.
    ConsistentHash,
}

impl Strategy {
    /// A new balancer of this strategy.
    pub fn build(self) -> Box<dyn Balancer> {
        match self {
            Strategy::Random => Box::new(Random),
            Strategy::WeightedRandom => Box::new(WeightedRandom),
            Strategy::RoundRobin => Box::new(RoundRobin::new()),
            Strategy::LeastInFlight => Box::new(LeastInFlight),
            Strategy::ConsistentHash => Box::new(ConsistentHash::new()),
        }
    }
}

/// A strategy name that is not known.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown balancing strategy `{0}` (expected random, weighted_random, round_robin, least_in_flight or consistent_hash)"
)]
pub struct UnknownStrategy(pub String);

impl std::str::FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "random" => Ok(Strategy::Random),
            "weighted_random" => Ok(Strategy::WeightedRandom),
            "round_robin" => Ok(Strategy::RoundRobin),
            "least_in_flight" => Ok(Strategy::LeastInFlight),
            "consistent_hash" => Ok(Strategy::ConsistentHash),
            _ => Err(UnknownStrategy(s.to_owned())),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Candidate;

    /// `n` instances with ids 1..=n, the given weights (100 if too few) and
    /// no load.
    pub fn candidates(n: usize, weights: &[u32]) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                id: i as u64 + 1,
                weight: weights.get(i).copied().unwrap_or(100),
                in_flight: 0,
            })
            .collect()
    }

    /// Pearson's chi-square statistic of observed counts against expected
    /// shares (which sum to 1).
    pub fn chi_square(observed: &[u64], expected_share: &[f64]) -> f64 {
        let total: u64 = observed.iter().sum();
        observed
            .iter()
            .zip(expected_share)
            .map(|(&o, &share)| {
                let e = share * total as f64;
                (o as f64 - e).powi(2) / e
            })
            .sum()
    }

    /// The chi-square critical value for 4 degrees of freedom (5
    /// instances) at p < 10⁻⁶ (P(X > x) = e^(−x/2)(1 + x/2) = 4.6 × 10⁻⁷ at
    /// 35): a fair strategy exceeds it less than once in a million runs
    /// (at p = 0.001 it failed once in a full test run), while a strategy
    /// that ignores the weights over 100,000 picks scores in the thousands.
    pub const CHI_SQUARE_4_DOF_P1E6: f64 = 35.0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_by_name() {
        assert_eq!(
            "round-robin".parse::<Strategy>().unwrap(),
            Strategy::RoundRobin
        );
        assert_eq!(
            "CONSISTENT_HASH".parse::<Strategy>().unwrap(),
            Strategy::ConsistentHash
        );
        assert!("fastest".parse::<Strategy>().is_err());
    }
}
