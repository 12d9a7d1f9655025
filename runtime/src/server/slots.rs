//! The calls in flight on one connection: request id -> the handler task's
//! abort handle, so a cancel frame can stop it, and the count of calls
//! whose handler has not ended yet, so the in-flight limit can be enforced.
//! Locked only briefly, never across an `.await`.
//!
//! A cancelled call leaves the map at once (its id may be reused) but
//! counts against the limit until its task has really stopped: a flood of
//! request + cancel pairs ("rapid reset") can't pile up dying tasks.

use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::task::AbortHandle;

/// Why a slot could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReserveError {
    /// The connection's in-flight limit is reached.
    Full,
    /// A call with this request id is already in flight.
    Duplicate,
}

#[derive(Debug)]
struct Slot {
    /// Tells this call apart from a later one that reuses the request id.
    token: u64,
    /// Set once the handler task is spawned.
    abort: Option<AbortHandle>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The calls that can still be cancelled, by request id.
    /// Peers choose the ids: foldhash is seeded per process (and much
    /// cheaper than SipHash, which took ~600 instructions a call here).
    map: foldhash::HashMap<u64, Slot>,
    /// Reserved slots not yet released: calls whose handler has not ended,
    /// cancelled or not.
    live: usize,
}

/// The in-flight calls of one connection.
#[derive(Debug, Default)]
pub(crate) struct CallSlots {
    inner: Mutex<Inner>,
    next_token: AtomicU64,
}

impl CallSlots {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves a slot for `request_id`; returns its token. Every reserved
    /// slot must be [released](Self::release) exactly once.
    pub fn reserve(&self, request_id: u64, limit: usize) -> Result<u64, ReserveError> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.lock();
        if inner.live >= limit {
            return Err(ReserveError::Full);
        }
        match inner.map.entry(request_id) {
            Entry::Occupied(_) => Err(ReserveError::Duplicate),
            Entry::Vacant(vacant) => {
                vacant.insert(Slot { token, abort: None });
                inner.live += 1;
                Ok(token)
            }
        }
    }

    /// Attaches the handler task to its slot, unless the call already ended
    /// or was cancelled.
    pub fn attach(&self, request_id: u64, token: u64, abort: AbortHandle) {
        let mut inner = self.lock();
        if let Some(slot) = inner
            .map
            .get_mut(&request_id)
            .filter(|slot| slot.token == token)
        {
            slot.abort = Some(abort);
        }
    }

    /// Frees the slot of a call that ended (its handler task is done or
    /// dropped).
    pub fn release(&self, request_id: u64, token: u64) {
        let mut inner = self.lock();
        inner.live = inner.live.saturating_sub(1);
        if inner
            .map
            .get(&request_id)
            .is_some_and(|slot| slot.token == token)
        {
            inner.map.remove(&request_id);
        }
    }

    /// Stops the handler of `request_id` if it is still running.
    pub fn cancel(&self, request_id: u64) -> bool {
        let slot = self.lock().map.remove(&request_id);
        match slot {
            Some(slot) => {
                if let Some(abort) = slot.abort {
                    abort.abort();
                }
                true
            }
            None => false,
        }
    }

    /// Stops every handler (the connection is closing).
    pub fn abort_all(&self) {
        let slots: Vec<Slot> = self.lock().map.drain().map(|(_, slot)| slot).collect();
        for abort in slots.into_iter().filter_map(|slot| slot.abort) {
            abort.abort();
        }
    }

    /// The number of calls that can still be cancelled.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Reserved slots not yet released.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.lock().live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_enforces_the_limit_and_unique_ids() {
        let slots = CallSlots::default();
        let a = slots.reserve(1, 2).expect("room");
        assert_eq!(slots.reserve(1, 2), Err(ReserveError::Duplicate));
        slots.reserve(2, 2).expect("room");
        assert_eq!(slots.reserve(3, 2), Err(ReserveError::Full));
        slots.release(1, a);
        assert_eq!(slots.len(), 1);
        slots.reserve(3, 2).expect("room again");
    }

    #[test]
    fn a_stale_release_does_not_free_a_newer_call() {
        let slots = CallSlots::default();
        let old = slots.reserve(7, 10).expect("room");
        assert!(slots.cancel(7));
        let new = slots.reserve(7, 10).expect("id reused");
        slots.release(7, old);
        assert_eq!(slots.len(), 1);
        slots.release(7, new);
        assert_eq!(slots.len(), 0);
        assert_eq!(slots.live(), 0);
        assert!(!slots.cancel(7));
    }

    #[test]
    fn cancelled_calls_count_until_their_task_ends() {
        let slots = CallSlots::default();
        let a = slots.reserve(1, 2).expect("room");
        let b = slots.reserve(2, 2).expect("room");
        assert!(slots.cancel(1));
        assert!(slots.cancel(2));
        assert_eq!(slots.len(), 0);
        // Both tasks are still stopping: no room yet.
        assert_eq!(slots.reserve(3, 2), Err(ReserveError::Full));
        slots.release(1, a);
        slots.reserve(3, 2).expect("room once one ended");
        slots.release(2, b);
        assert_eq!(slots.live(), 1);
    }
}
