//! [`LeastInFlight`]: the power of two choices.

use rand::Rng;

use super::{Balancer, Candidate};

/// Picks two different instances at random and takes the one with fewer
/// calls in flight per unit of weight ("the power of two random choices":
/// nearly as good as asking every instance, at the cost of two).
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastInFlight;

impl Balancer for LeastInFlight {
    fn pick(&self, candidates: &[Candidate], _key: Option<u64>) -> usize {
        let n = candidates.len();
        if n < 2 {
            return 0;
        }
        let mut rng = rand::rng();
        let first = rng.random_range(0..n);
        let mut second = rng.random_range(0..n - 1);
        if second >= first {
            second += 1;
        }
        // Compare in_flight / weight without dividing.
        let load = |i: usize, other: usize| {
            candidates[i].in_flight as u128 * u128::from(candidates[other].effective_weight())
        };
        if load(second, first) < load(first, second) {
            second
        } else {
            first
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::candidates;
    use super::*;

    #[test]
    fn never_picks_the_most_loaded_of_five_and_favours_the_idle() {
        let mut five = candidates(5, &[]);
        for (i, c) in five.iter_mut().enumerate() {
            c.in_flight = i * 10; // instance 0 idle ... instance 4 busiest
        }
        let mut counts = [0u64; 5];
        for _ in 0..100_000 {
            counts[LeastInFlight.pick(&five, None)] += 1;
        }
        // With two distinct random choices, instance k wins against every
        // more loaded one: P(k) = 2 (4 - k) / 20.
        assert_eq!(counts[4], 0, "{counts:?}");
        for (k, &count) in counts.iter().enumerate().take(4) {
            let expected = 100_000.0 * 2.0 * (4 - k) as f64 / 20.0;
            let tolerance = 0.05 * 100_000.0;
            assert!((count as f64 - expected).abs() < tolerance, "{counts:?}");
        }
    }

    #[test]
    fn one_candidate_is_always_picked() {
        assert_eq!(LeastInFlight.pick(&candidates(1, &[]), None), 0);
    }
}
