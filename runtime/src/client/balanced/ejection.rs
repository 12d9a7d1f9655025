//! Ejection: an instance that keeps failing leaves the rotation for a
//! period that doubles with each ejection in a row, unless it is the last
//! one in rotation; an answer (or a passed probe) brings it back.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Balanced;
use super::instance::Instance;
use super::policy::Verdict;

impl Balanced {
    /// Records an attempt's verdict on its instance: resets it, or counts a
    /// failure and ejects it (or ejects it again after a failed probe),
    /// unless it is the last instance in rotation.
    pub(super) fn record(
        &self,
        instances: &[Arc<Instance>],
        instance: &Instance,
        verdict: Verdict,
        probe: bool,
    ) {
        match verdict {
            Verdict::Neutral => {}
            Verdict::Healthy => {
                instance.failures.store(0, Ordering::Relaxed);
                if instance.ejected_until.load(Ordering::Acquire) != 0 {
                    instance.ejected_until.store(0, Ordering::Release);
                    instance.ejections.store(0, Ordering::Relaxed);
                    tracing::debug!(service = %self.service, instance = %instance.instance_id, "instance back in rotation");
                }
            }
            Verdict::Failed => {
                let failures = instance.failures.fetch_add(1, Ordering::Relaxed) + 1;
                let threshold = self.options.eject_after;
                let in_rotation = instance.ejected_until.load(Ordering::Acquire) == 0;
                let eject = threshold > 0
                    && (probe || (in_rotation && failures >= threshold))
                    && instances.iter().any(|other| {
                        !std::ptr::eq(other.as_ref(), instance)
                            && other.ejected_until.load(Ordering::Acquire) == 0
                    });
                if eject {
                    let exponent = instance.ejections.fetch_add(1, Ordering::Relaxed).min(16);
                    let period = self
                        .options
                        .eject_base
                        .saturating_mul(1 << exponent)
                        .min(self.options.eject_max);
                    let until = self
                        .now_ms()
                        .saturating_add(u64::try_from(period.as_millis()).unwrap_or(u64::MAX));
                    instance.ejected_until.store(until, Ordering::Release);
                    tracing::debug!(service = %self.service, instance = %instance.instance_id, ?period, failures, "instance ejected");
                }
            }
        }
    }
}
