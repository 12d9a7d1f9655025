//! Picking the instance of an attempt: the balancer chooses among the
//! instances in rotation the call has not tried, plus at most one ejected
//! instance due a call probe; an ejected instance due a health probe gets
//! one in the background instead; with none in rotation, any untried one.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Balanced;
use super::instance::{Health, Instance};
use super::policy::Tried;
use crate::balance::Candidate;
use crate::client::route::CallHead;

thread_local! {
    /// The candidates of the call being balanced on this thread and the
    /// index of each one's instance: reused, so picking allocates nothing
    /// once warm.
    static SCRATCH: RefCell<(Vec<Candidate>, Vec<usize>)> = const {
        RefCell::new((Vec::new(), Vec::new()))
    };
}

impl Balanced {
    /// Picks an instance for an attempt of `call`, among those not tried
    /// yet: its index, and whether the attempt is the instance's probe.
    pub(super) fn pick(
        &self,
        instances: &[Arc<Instance>],
        call: &CallHead<'_>,
        tried: &Tried,
    ) -> Option<(usize, bool)> {
        let now = self.now_ms();
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let (candidates, indexes) = &mut *scratch;
            candidates.clear();
            indexes.clear();
            let mut probe = None;
            for (index, instance) in instances.iter().enumerate() {
                if tried.contains(instance.key) {
                    continue;
                }
                let usable = match instance.health(now) {
                    Health::InRotation => true,
                    Health::Ejected => false,
                    Health::ProbeDue if !instance.no_health_probe.load(Ordering::Acquire) => {
                        if instance
                            .probing
                            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                            .is_ok()
                        {
                            self.spawn_health_probe(instance, call);
                        }
                        false
                    }
                    Health::ProbeDue => {
                        probe.is_none()
                            && instance
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
                    candidates.push(instance.candidate());
                    indexes.push(index);
                }
            }
            if candidates.is_empty() {
                // Everything left is ejected: better a sick instance than
                // none ("panic mode").
                for (index, instance) in instances.iter().enumerate() {
                    if !tried.contains(instance.key) {
                        candidates.push(instance.candidate());
                        indexes.push(index);
                    }
                }
            }
            if candidates.is_empty() {
                return None;
            }
            let picked = self
                .balancer
                .pick(candidates, call.hash_key)
                .min(candidates.len() - 1);
            let chosen = indexes[picked];
            if let Some(probe) = probe
                && probe != chosen
            {
                instances[probe].probing.store(false, Ordering::Release);
            }
            Some((chosen, probe == Some(chosen)))
        })
    }
}
