//! The calls in flight on one connection: request id -> the handler task's
//! abort handle, so a cancel frame can stop it, and the count of calls
//! whose handler has not ended yet, so the in-flight limit can be enforced.
//! Locked only briefly, never across an `.await`.
//!
//! A cancelled call leaves the map at once (its id may be reused) but
//! counts against the limit until its task has really stopped: a flood of
//! request + cancel pairs ("rapid reset") can't pile up dying tasks.
//!
//! The map also decides who answers a call: the task that ends it
//! [claims](CallSlots::claim) its entry before answering, and a cancel, a
//! closed connection or a shutdown that cuts the call removes the entry
//! first; whoever removes it owns the call's answer, so a call is never
//! answered twice.
//!
//! Only calls that run in a task of their own enter the map. A call is
//! *inline* from its reservation until its handler finishes when first
//! polled on the reader, or [moves to a task](CallSlots::to_task): the
//! reader does nothing else meanwhile (no cancel, no cut can reach it), so
//! it needs no entry, and one word (its token) says who it is. A call
//! that finishes inline costs no lock and no map operation.

use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
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
    /// The serializer id of the request (for an answer on its behalf).
    serializer: u8,
    /// A one-way request (message type 3): never answered.
    oneway: bool,
}

/// A call stopped from outside ([`CallSlots::cut_all`]), to be answered on
/// its behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CutCall {
    pub request_id: u64,
    pub serializer: u8,
}

/// The in-flight calls of one connection.
#[derive(Debug, Default)]
pub(crate) struct CallSlots {
    /// The calls that can still be cancelled or answered, by request id.
    /// Peers choose the ids: foldhash is seeded per process (and much
    /// cheaper than SipHash, which took ~600 instructions a call here).
    map: Mutex<foldhash::HashMap<u64, Slot>>,
    /// Entries in the map (written under its lock): zero means a lookup
    /// can skip the lock.
    in_map: AtomicUsize,
    /// The token of the inline call (see the module's doc); 0: none.
    inline: AtomicU64,
    /// Reserved slots not yet released: calls whose handler has not ended,
    /// cancelled or not. Only the reader adds to it.
    live: AtomicUsize,
    next_token: AtomicU64,
    /// Set while someone waits for the last call to end.
    empty_wanted: AtomicBool,
    empty: Notify,
}

/// What reserving a slot changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reserved {
    /// The slot's token, for the later calls about it.
    pub token: u64,
    /// The calls the connection held before this one.
    pub held: usize,
}

impl CallSlots {
    fn lock(&self) -> MutexGuard<'_, foldhash::HashMap<u64, Slot>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves a slot for `request_id`, as the inline call (only the
    /// reader reserves, one call at a time). Every reserved slot must be
    /// [released](Self::release) exactly once.
    pub fn reserve(&self, request_id: u64, limit: usize) -> Result<Reserved, ReserveError> {
        // Only the reader reserves: `live` can't grow between this check
        // and the add below.
        let held = self.live.load(Ordering::Acquire);
        if held >= limit {
            return Err(ReserveError::Full);
        }
        if self.in_map.load(Ordering::Acquire) > 0 && self.lock().contains_key(&request_id) {
            return Err(ReserveError::Duplicate);
        }
        // Tokens start at 1: 0 means "no inline call".
        let token = self.next_token.fetch_add(1, Ordering::Relaxed) + 1;
        self.inline.store(token, Ordering::Release);
        let held = self.live.fetch_add(1, Ordering::AcqRel);
        Ok(Reserved { token, held })
    }

    /// The inline call's handler did not finish: it moves to a task, and
    /// its slot into the map (before the task is spawned, so the task
    /// always finds it there), where a cancel or a cut can reach it.
    pub fn to_task(&self, request_id: u64, token: u64, serializer: u8, oneway: bool) {
        let _ = self
            .inline
            .compare_exchange(token, 0, Ordering::AcqRel, Ordering::Acquire);
        let mut map = self.lock();
        if let Entry::Vacant(vacant) = map.entry(request_id) {
            vacant.insert(Slot {
                token,
                abort: None,
                serializer,
                oneway,
            });
            self.in_map.store(map.len(), Ordering::Release);
        }
    }

    /// Attaches the handler task to its slot, unless the call already ended
    /// or was cancelled.
    pub fn attach(&self, request_id: u64, token: u64, abort: AbortHandle) {
        if let Some(slot) = self
            .lock()
            .get_mut(&request_id)
            .filter(|slot| slot.token == token)
        {
            slot.abort = Some(abort);
        }
    }

    /// Takes the call out of the map to answer it; `false` if it was
    /// cancelled or cut meanwhile (then it must not be answered).
    pub fn claim(&self, request_id: u64, token: u64) -> bool {
        if self
            .inline
            .compare_exchange(token, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return true;
        }
        if self.in_map.load(Ordering::Acquire) == 0 {
            return false;
        }
        let mut map = self.lock();
        match map.get(&request_id) {
            Some(slot) if slot.token == token => {
                map.remove(&request_id);
                self.in_map.store(map.len(), Ordering::Release);
                true
            }
            _ => false,
        }
    }

    /// Frees the slot of a call whose handler ended (`claimed`: its entry
    /// was already taken by [`claim`](Self::claim)). Returns whether the
    /// connection has no call left.
    pub fn release(&self, request_id: u64, token: u64, claimed: bool) -> bool {
        if !claimed {
            self.claim(request_id, token);
        }
        let last = self.live.fetch_sub(1, Ordering::AcqRel) == 1;
        if last && self.empty_wanted.load(Ordering::Acquire) {
            self.empty.notify_one();
        }
        last
    }

    /// Stops the handler of `request_id` if it is still running.
    pub fn cancel(&self, request_id: u64) -> bool {
        let slot = {
            let mut map = self.lock();
            let slot = map.remove(&request_id);
            self.in_map.store(map.len(), Ordering::Release);
            slot
        };
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

    /// Stops every call that waits for an answer (its client is gone); the
    /// one-way calls go on.
    pub fn abort_answerable(&self) {
        let stopped: Vec<Slot> = {
            let mut map = self.lock();
            let ids: Vec<u64> = map
                .iter()
                .filter(|(_, slot)| !slot.oneway)
                .map(|(id, _)| *id)
                .collect();
            let stopped = ids.into_iter().filter_map(|id| map.remove(&id)).collect();
            self.in_map.store(map.len(), Ordering::Release);
            stopped
        };
        for abort in stopped.into_iter().filter_map(|slot| slot.abort) {
            abort.abort();
        }
    }

    /// Stops every call, and returns those that wait for an answer (to be
    /// answered on their behalf).
    pub fn cut_all(&self) -> Vec<CutCall> {
        let slots: Vec<(u64, Slot)> = {
            let mut map = self.lock();
            self.in_map.store(0, Ordering::Release);
            map.drain().collect()
        };
        let mut answerable = Vec::new();
        for (request_id, slot) in slots {
            if let Some(abort) = slot.abort {
                abort.abort();
            }
            if !slot.oneway {
                answerable.push(CutCall {
                    request_id,
                    serializer: slot.serializer,
                });
            }
        }
        answerable
    }

    /// Stops every handler (the connection is closing).
    pub fn abort_all(&self) {
        self.cut_all();
    }

    /// Reserved slots not yet released.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Waits until every reserved slot is released.
    pub async fn wait_empty(&self) {
        self.empty_wanted.store(true, Ordering::Release);
        loop {
            let notified = self.empty.notified();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// The number of calls that can still be cancelled.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reserves a slot for a call whose handler then moves to a task.
    fn reserve(slots: &CallSlots, id: u64, limit: usize) -> Result<u64, ReserveError> {
        spawned(slots, id, limit, 1, false)
    }

    fn spawned(
        slots: &CallSlots,
        id: u64,
        limit: usize,
        serializer: u8,
        oneway: bool,
    ) -> Result<u64, ReserveError> {
        let token = slots.reserve(id, limit)?.token;
        slots.to_task(id, token, serializer, oneway);
        Ok(token)
    }

    #[test]
    fn an_inline_call_is_claimed_without_an_entry() {
        let slots = CallSlots::default();
        let a = slots.reserve(1, 2).expect("room").token;
        assert_eq!(slots.len(), 0, "no entry for the inline call");
        assert!(slots.claim(1, a), "the inline call is answered");
        assert!(!slots.claim(1, a), "once");
        assert!(slots.release(1, a, true), "the last call ended");
        // The id is free again; an inline call that is never answered (a
        // one-way call) is released all the same.
        let b = slots.reserve(1, 2).expect("room").token;
        assert!(slots.release(1, b, false));
        assert_eq!(slots.live(), 0);
        assert!(!slots.claim(1, b));
    }

    #[test]
    fn reserve_enforces_the_limit_and_unique_ids() {
        let slots = CallSlots::default();
        let a = reserve(&slots, 1, 2).expect("room");
        assert_eq!(reserve(&slots, 1, 2), Err(ReserveError::Duplicate));
        reserve(&slots, 2, 2).expect("room");
        assert_eq!(reserve(&slots, 3, 2), Err(ReserveError::Full));
        slots.release(1, a, false);
        assert_eq!(slots.len(), 1);
        reserve(&slots, 3, 2).expect("room again");
    }

    #[test]
    fn a_stale_release_does_not_free_a_newer_call() {
        let slots = CallSlots::default();
        let old = reserve(&slots, 7, 10).expect("room");
        assert!(slots.cancel(7));
        let new = reserve(&slots, 7, 10).expect("id reused");
        slots.release(7, old, false);
        assert_eq!(slots.len(), 1);
        assert!(slots.release(7, new, false), "the last call ended");
        assert_eq!(slots.len(), 0);
        assert_eq!(slots.live(), 0);
        assert!(!slots.cancel(7));
    }

    #[test]
    fn cancelled_calls_count_until_their_task_ends() {
        let slots = CallSlots::default();
        let a = reserve(&slots, 1, 2).expect("room");
        let b = reserve(&slots, 2, 2).expect("room");
        assert!(slots.cancel(1));
        assert!(slots.cancel(2));
        assert_eq!(slots.len(), 0);
        // Both tasks are still stopping: no room yet.
        assert_eq!(reserve(&slots, 3, 2), Err(ReserveError::Full));
        slots.release(1, a, false);
        reserve(&slots, 3, 2).expect("room once one ended");
        slots.release(2, b, false);
        assert_eq!(slots.live(), 1);
    }

    #[test]
    fn a_cancelled_or_cut_call_is_never_claimed_for_an_answer() {
        let slots = CallSlots::default();
        let a = reserve(&slots, 1, 10).expect("room");
        let b = spawned(&slots, 2, 10, 3, false).expect("room");
        let c = spawned(&slots, 3, 10, 1, true).expect("room");
        assert!(slots.cancel(1));
        assert!(!slots.claim(1, a), "cancelled: no answer");
        assert_eq!(
            slots.cut_all(),
            vec![CutCall {
                request_id: 2,
                serializer: 3
            }],
            "one-way calls are not answered"
        );
        assert!(!slots.claim(2, b), "cut: answered on its behalf already");
        assert!(!slots.claim(3, c));
    }

    #[test]
    fn a_closed_connection_stops_answerable_calls_and_keeps_one_way_ones() {
        let slots = CallSlots::default();
        let answerable = reserve(&slots, 1, 10).expect("room");
        let oneway = spawned(&slots, 2, 10, 1, true).expect("room");
        slots.abort_answerable();
        assert!(!slots.claim(1, answerable));
        assert!(slots.claim(2, oneway));
    }
}
