//! [`RoundRobin`]: smooth weighted round robin (nginx's algorithm).

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Balancer, Candidate};

/// Picks in turn, each instance as often as its weight says, spread out
/// evenly: with weights 5, 1, 1 the order is a a b a c a a, not a a a a a b c.
///
/// Each pick adds every candidate's weight to its running score, takes the
/// highest score, and subtracts the total weight from it.
#[derive(Debug, Default)]
pub struct RoundRobin {
    scores: Mutex<HashMap<u64, i64>>,
}

impl RoundRobin {
    /// A balancer with no history.
    pub fn new() -> RoundRobin {
        RoundRobin::default()
    }
}

impl Balancer for RoundRobin {
    fn pick(&self, candidates: &[Candidate], _key: Option<u64>) -> usize {
        // The lock is held for a few additions, never across an await.
        let mut scores = self
            .scores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if scores.len() > candidates.len() {
            scores.retain(|id, _| candidates.iter().any(|c| c.id == *id));
        }
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (index, candidate) in candidates.iter().enumerate() {
            let weight = i64::from(candidate.weight.max(1));
            total += weight;
            let score = scores.entry(candidate.id).or_insert(0);
            *score += weight;
            if best.is_none_or(|(_, best_score)| *score > best_score) {
                best = Some((index, *score));
            }
        }
        let (index, _) = best.unwrap_or((0, 0));
        if let Some(candidate) = candidates.get(index) {
            if let Some(score) = scores.get_mut(&candidate.id) {
                *score -= total;
            }
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::candidates;
    use super::*;

    #[test]
    fn equal_weights_take_strict_turns() {
        let five = candidates(5, &[]);
        let rr = RoundRobin::new();
        let picks: Vec<usize> = (0..10).map(|_| rr.pick(&five, None)).collect();
        assert_eq!(picks, vec![0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn weights_are_met_exactly_and_smoothly() {
        let three = candidates(3, &[5, 1, 1]);
        let rr = RoundRobin::new();
        let picks: Vec<usize> = (0..7).map(|_| rr.pick(&three, None)).collect();
        assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);

        let five = candidates(5, &[100, 200, 300, 400, 500]);
        let rr = RoundRobin::new();
        let mut counts = [0u64; 5];
        for _ in 0..100_000 {
            counts[rr.pick(&five, None)] += 1;
        }
        // 100,000 is not a multiple of 15 (the weight cycle): each count is
        // its exact share give or take one cycle.
        for (i, count) in counts.iter().enumerate() {
            let expected = 100_000.0 * (i as f64 + 1.0) / 15.0;
            assert!((*count as f64 - expected).abs() <= 5.0, "{counts:?}");
        }
    }

    #[test]
    fn membership_changes_keep_working() {
        let rr = RoundRobin::new();
        let five = candidates(5, &[]);
        for _ in 0..7 {
            rr.pick(&five, None);
        }
        let two = candidates(2, &[]);
        let picks: Vec<usize> = (0..4).map(|_| rr.pick(&two, None)).collect();
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 2, "{picks:?}");
    }
}
