//! A latency histogram of fixed size, shared by concurrent callers:
//! log-linear buckets (exact below 128 ns, then 64 buckets per power of
//! two, so a reported value is at most 1/64 ≈ 1.6 % above the true one),
//! whatever the number of calls recorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Values below this many nanoseconds have a bucket each.
const EXACT: u64 = 128;
/// Buckets per power of two above [`EXACT`].
const PER_OCTAVE: u64 = 64;
/// Buckets for every `u64` nanosecond value: 128 exact, then 64 for each
/// power of two from 2^7 to 2^63.
const BUCKETS: usize = (EXACT + (63 - 6) * PER_OCTAVE) as usize;

/// Latencies in nanoseconds, counted in log-linear buckets (about 30 KiB,
/// allocated once). Recording is lock-free.
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    /// Counts one latency.
    pub fn record(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        if let Some(bucket) = self.buckets.get(bucket_of(nanos)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(nanos, Ordering::Relaxed);
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The largest latency recorded (exact), zero if none.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max.load(Ordering::Relaxed))
    }

    /// The nearest-rank `p`-th percentile (0 < p ≤ 100): the highest value
    /// of the bucket that holds it, never above [`max`](Self::max); zero
    /// if nothing was recorded.
    pub fn percentile(&self, p: f64) -> Duration {
        let count = self.count();
        if count == 0 {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * count as f64).ceil().clamp(1.0, count as f64) as u64;
        let mut seen = 0u64;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                let highest = highest_in_bucket(index);
                return Duration::from_nanos(highest.min(self.max.load(Ordering::Relaxed)));
            }
        }
        self.max()
    }
}

/// The bucket of a value.
fn bucket_of(nanos: u64) -> usize {
    if nanos < EXACT {
        return nanos as usize;
    }
    // 2^e <= nanos < 2^(e+1), e >= 7; the 6 bits after the leading one
    // pick the bucket within the octave.
    let e = u64::from(63 - nanos.leading_zeros());
    let shift = e - 6;
    let top = nanos >> shift; // in [64, 128)
    (EXACT + (shift - 1) * PER_OCTAVE + (top - PER_OCTAVE)) as usize
}

/// The highest value that falls in a bucket.
fn highest_in_bucket(index: usize) -> u64 {
    let index = index as u64;
    if index < EXACT {
        return index;
    }
    let shift = (index - EXACT) / PER_OCTAVE + 1;
    let top = (index - EXACT) % PER_OCTAVE + PER_OCTAVE;
    let lowest = top << shift;
    lowest.saturating_add((1u64 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(127), 127);
        assert_eq!(bucket_of(128), 128);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        let mut values: Vec<u64> = (0..64u32)
            .flat_map(|shift| [0u64, 1, 3].map(|offset| (1u64 << shift).saturating_add(offset)))
            .chain([u64::MAX])
            .collect();
        values.sort_unstable();
        let mut previous = 0;
        for value in values {
            {
                let bucket = bucket_of(value);
                assert!(bucket >= previous, "{value}");
                assert!(highest_in_bucket(bucket) >= value, "{value}");
                // At most 1/64 above the value.
                assert!(highest_in_bucket(bucket) - value <= value / 64, "{value}");
                previous = bucket;
            }
        }
    }

    #[test]
    fn percentiles_are_nearest_rank_within_the_bucket_width() {
        let histogram = Histogram::new();
        assert_eq!(histogram.percentile(50.0), Duration::ZERO);
        for ms in 1..=100 {
            histogram.record(Duration::from_millis(ms));
        }
        assert_eq!(histogram.count(), 100);
        assert_eq!(histogram.max(), Duration::from_millis(100));
        for (p, ms) in [(50.0, 50u64), (99.0, 99), (100.0, 100), (1.0, 1)] {
            let got = histogram.percentile(p).as_nanos() as u64;
            let exact = ms * 1_000_000;
            assert!(got >= exact && got - exact <= exact / 64, "p{p}: {got}");
        }
        // Memory does not grow with the number of calls.
        for _ in 0..100_000 {
            histogram.record(Duration::from_micros(250));
        }
        assert_eq!(histogram.buckets.len(), BUCKETS);
    }
}
