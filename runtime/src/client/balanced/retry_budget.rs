//! [`RetryBudget`]: retries limited to a share of calls plus a small floor
//! per second (Finagle's `RetryBudget`, gRPC's retry throttling).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Retry tokens are counted in thousandths.
const TOKEN: i64 = 1000;
/// The most retry tokens calls can save up (so a long quiet spell does not
/// allow a storm later): 100 retries.
const MAX_SAVED_TOKENS: i64 = 100 * TOKEN;

/// Limits retries to a share of calls plus a small floor per second.
pub(super) struct RetryBudget {
    /// Thousandths of a token each call deposits.
    deposit: i64,
    /// Saved tokens, in thousandths.
    balance: AtomicI64,
    min_per_second: u32,
    /// (start of the current second, retries taken from the floor in it).
    floor: Mutex<(Instant, u32)>,
}

impl RetryBudget {
    /// A budget of `ratio` retries per call (clamped to [0, 1]) plus
    /// `min_per_second`.
    pub(super) fn new(ratio: f64, min_per_second: u32) -> RetryBudget {
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
    pub(super) fn deposit(&self) {
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
    pub(super) fn try_withdraw(&self) -> bool {
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
}
