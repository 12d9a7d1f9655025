//! [`Random`] and [`WeightedRandom`].

use rand::Rng;

use super::{Balancer, Candidate};

/// Picks uniformly at random.
#[derive(Debug, Clone, Copy, Default)]
pub struct Random;

impl Balancer for Random {
    fn pick(&self, candidates: &[Candidate], _key: Option<u64>) -> usize {
        rand::rng().random_range(0..candidates.len())
    }
}

/// Picks at random, proportionally to weight.
#[derive(Debug, Clone, Copy, Default)]
pub struct WeightedRandom;

impl Balancer for WeightedRandom {
    fn pick(&self, candidates: &[Candidate], _key: Option<u64>) -> usize {
        let total: u64 = candidates.iter().map(Candidate::effective_weight).sum();
        let mut point = rand::rng().random_range(0..total);
        for (index, candidate) in candidates.iter().enumerate() {
            let weight = candidate.effective_weight();
            if point < weight {
                return index;
            }
            point -= weight;
        }
        candidates.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{CHI_SQUARE_4_DOF_P1E6, candidates, chi_square};
    use super::*;

    fn counts(balancer: &dyn Balancer, candidates: &[Candidate], picks: usize) -> Vec<u64> {
        let mut counts = vec![0u64; candidates.len()];
        for _ in 0..picks {
            counts[balancer.pick(candidates, None)] += 1;
        }
        counts
    }

    #[test]
    fn random_is_uniform_over_five_instances() {
        let five = candidates(5, &[]);
        let counts = counts(&Random, &five, 100_000);
        let chi = chi_square(&counts, &[0.2; 5]);
        assert!(
            chi < CHI_SQUARE_4_DOF_P1E6,
            "chi-square {chi} for {counts:?}"
        );
    }

    #[test]
    fn weighted_random_follows_the_weights() {
        let weights = [100, 200, 300, 400, 0];
        let five = candidates(5, &weights);
        let counts = counts(&WeightedRandom, &five, 100_000);
        // Weight 0 counts as 1.
        let total = 1001.0;
        let shares = [
            100.0 / total,
            200.0 / total,
            300.0 / total,
            400.0 / total,
            1.0 / total,
        ];
        let chi = chi_square(&counts, &shares);
        assert!(
            chi < CHI_SQUARE_4_DOF_P1E6,
            "chi-square {chi} for {counts:?}"
        );
    }
}
