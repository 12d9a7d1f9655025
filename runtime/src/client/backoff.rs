//! Reconnecting with exponential backoff and jitter.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// How a channel spaces its reconnection attempts after failed ones.
///
/// The first attempt after a connection is lost is made at once (when a
/// call needs the connection); after `n` failed attempts in a row the next
/// waits `initial × multiplier^(n-1)`, capped at `max`, and spread by
/// ±`jitter` (a fraction) so that many clients do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The wait after the first failure (default 50 ms).
    pub initial: Duration,
    /// The longest wait (default 5 s).
    pub max: Duration,
    /// The growth per failure (default 2).
    pub multiplier: f64,
    /// The random spread, a fraction of the wait (default 0.2: ±20 %).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt after `failures` failed ones in a
    /// row, before jitter; zero for none.
    pub fn base_delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(failures - 1).unwrap_or(i32::MAX);
        let factor = self.multiplier.max(1.0).powi(exponent);
        let secs = self.initial.as_secs_f64() * factor;
        // `from_secs_f64` rejects NaN and overflow; both mean "a lot".
        Duration::try_from_secs_f64(secs)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// [`base_delay`](Self::base_delay) spread by the jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let base = self.base_delay(failures);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if base.is_zero() || jitter == 0.0 {
            return base;
        }
        let factor = rand::rng().random_range(1.0 - jitter..=1.0 + jitter);
        Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
    }
}

/// The failures of one connection's attempts so far.
#[derive(Debug)]
pub(crate) struct Reconnect {
    backoff: Backoff,
    failures: u32,
    next_attempt: Option<Instant>,
}

impl Reconnect {
    pub fn new(backoff: Backoff) -> Reconnect {
        Reconnect {
            backoff,
            failures: 0,
            next_attempt: None,
        }
    }

    /// When the next attempt may be made (`None`: now).
    pub fn next_attempt(&self) -> Option<Instant> {
        self.next_attempt
    }

    /// An attempt failed: the next one waits longer.
    pub fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
        let now = Instant::now();
        // A wait too long for the clock is a day (still "a long time").
        let wait = self.backoff.delay(self.failures);
        self.next_attempt = Some(
            now.checked_add(wait)
                .unwrap_or_else(|| now + Duration::from_secs(24 * 60 * 60)),
        );
    }

    /// An attempt succeeded: the next loss reconnects at once.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.next_attempt = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let backoff = Backoff::default();
        let ms = |n| backoff.base_delay(n).as_millis();
        assert_eq!([ms(0), ms(1), ms(2), ms(3), ms(4)], [0, 50, 100, 200, 400]);
        assert_eq!(ms(8), 5000, "capped");
        assert_eq!(ms(u32::MAX), 5000, "no overflow");
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let backoff = Backoff::default();
        for _ in 0..1000 {
            let d = backoff.delay(3).as_secs_f64();
            assert!((0.16..=0.24).contains(&d), "{d}");
        }
        let flat = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        assert_eq!(flat.delay(2), Duration::from_millis(100));
    }

    #[test]
    fn absurd_settings_do_not_panic() {
        let huge = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
            multiplier: f64::INFINITY,
            jitter: 5.0,
        };
        for failures in [1, 2, 100, u32::MAX] {
            let _ = huge.delay(failures);
        }
        let nan = Backoff {
            multiplier: f64::NAN,
            ..Backoff::default()
        };
        let _ = nan.delay(3);
    }

    #[tokio::test(start_paused = true)]
    async fn success_resets() {
        let mut reconnect = Reconnect::new(Backoff::default());
        assert_eq!(reconnect.next_attempt(), None);
        reconnect.failed();
        assert!(
            reconnect
                .next_attempt()
                .is_some_and(|at| at > Instant::now())
        );
        reconnect.succeeded();
        assert_eq!(reconnect.next_attempt(), None);
    }
}
