//! The calls in flight on one connection, in a slot table the connection
//! owns: no mutex and no map operation per call.
//!
//! Two halves:
//!
//! - [`CallSlots`], shared by the connection's tasks: a slab of slots that
//!   grows in segments and never moves, so a call reaches its slot by a
//!   small index ([`SlotId`]) with no lock. A slot's state is one atomic
//!   word (the call's token and its phase: live, claimed, stopped, ended);
//!   the few transitions are compare-and-swaps between the call (claim its
//!   answer, end) and the connection's task (stop it). The count of calls
//!   whose handler has not ended enforces the in-flight limit.
//! - [`SlotTable`], owned by the connection's task (the reader, then the
//!   code that closes the connection): which slots are free, and, for the
//!   calls that outlive the frame that started them (their handler runs in
//!   a task of its own), an index from request id to slot, so that a cancel
//!   frame stops the right call and a duplicate id is refused. Only that
//!   task touches it: no lock. A call that finishes while the reader
//!   handles its request (most calls: see `call.rs`) never enters the
//!   index; its slot goes straight back to the free list.
//!
//! Request ids are the peer's choice (any `u64`): they key only the index
//! (foldhash, seeded per process), never the slab. A request whose id
//! belongs to a call still running is refused (status 4, a protocol
//! error); a cancelled call, or one that has claimed its answer, frees its
//! id at once (the client may reuse it) but keeps its slot, counted against
//! the limit, until its handler has really stopped: a flood of request +
//! cancel pairs ("rapid reset") can't pile up dying tasks.
//!
//! Who answers a call: the call [claims](CallSlots::claim) its slot before
//! answering, and a cancel, a closed connection or a shutdown
//! [stops](SlotTable::cancel) it first; the one whose compare-and-swap
//! wins owns the call's answer, so a call is never answered twice.
//!
//! Bounds: slots that ended are taken back by the table when it needs one
//! (a sweep, run only when at least half the slots can be taken back, so
//! it costs O(1) per call amortised), so the slab holds at most twice the
//! calls in flight plus [`FIRST_SEGMENT`]; the index and the table's lists
//! never hold more entries than the slab has slots. What the slab takes is
//! charged to the connection as it grows ([`CALL_SLOT_BYTES`] a slot, its
//! share of the index and the lists included: see
//! [`SlotTable::take_grown`]), and released when the connection's state is
//! dropped ([`CallSlots::footprint`]): the table keeps its size after a
//! burst, so the bytes stay charged until then.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::item_sender::StreamCredit;
use crate::context::Metadata;

/// Why a slot could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReserveError {
    /// The connection's in-flight limit is reached.
    Full,
    /// A call with this request id is already in flight.
    Duplicate,
}

/// A call's slot: its index in the slab and the token that tells this call
/// apart from the calls that used the slot before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotId {
    index: u32,
    token: u64,
}

/// A call stopped from outside ([`SlotTable::cut_all`]), to be answered on
/// its behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CutCall {
    pub request_id: u64,
    pub serializer: u8,
}

/// What reserving a slot changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reserved {
    /// The call's slot.
    pub slot: SlotId,
    /// The calls the connection held before this one.
    pub held: usize,
}

/// What releasing a slot left.
#[derive(Debug)]
#[must_use]
pub(crate) struct Released {
    /// The connection has no call left.
    pub last: bool,
    /// Response metadata the call set and never sent, to be released.
    pub response_metadata: Option<Metadata>,
}

/// Slots in the slab's first segment; each next segment doubles.
const FIRST_SEGMENT: usize = 16;

/// What one slot of a connection's table of calls in flight costs the
/// server, charged to the connection from the moment the table grows to
/// hold it until the connection is gone: the slot, and its share of the
/// table's index and lists (each holds at most one entry per slot; twice
/// that for the room their doubling growth leaves). The table grows in
/// segments of 16, 32, 64, ... slots, to at most twice the calls in
/// flight plus 16.
pub const CALL_SLOT_BYTES: usize = std::mem::size_of::<Slot>()
    + 2 * (std::mem::size_of::<(u64, Entry)>()
        + 1
        + std::mem::size_of::<u32>()
        + std::mem::size_of::<SlotId>());
/// Segments: room for 16 × (2²⁰ − 1) ≈ 16.7 million slots, far past any
/// connection's memory limit.
const SEGMENTS: usize = 20;

/// A slot's phases (the low two bits of its state word; the token is the
/// rest).
const LIVE: u64 = 0;
/// The call claimed its answer: no cancel or cut can reach it any more.
const CLAIMED: u64 = 1;
/// The call was cancelled or cut: it must not answer.
const STOPPED: u64 = 2;
/// The call's handler ended: the slot may be reused.
const ENDED: u64 = 3;

fn word(token: u64, phase: u64) -> u64 {
    (token << 2) | phase
}

/// One slot of the slab.
#[derive(Debug)]
struct Slot {
    /// The token of the call that holds (or last held) the slot, and its
    /// phase.
    state: AtomicU64,
    /// The handler's task, once it runs in one, so that it can be stopped.
    /// Locked only by the call (attach, end) and the connection's task
    /// (stop): uncontended, never across an `.await`. Emptied when the call
    /// ends, so a finished task's memory is not kept alive.
    abort: Mutex<Option<AbortHandle>>,
    /// The metadata the handler set to send back before its answer, with
    /// the token of the call that set it (so no other call of the slot
    /// ever takes it). Locked only by the call (set, answer, end), and only
    /// on a connection some call of which set response metadata.
    response_metadata: Mutex<HeldMetadata>,
    /// The credit of a server-streaming call (`item_sender.rs`), for the
    /// reader to add to when the client's credit frames come.
    stream: Mutex<Option<Arc<StreamCredit>>>,
}

/// A slot's response metadata, with the token of the call it is for (so
/// no other call of the slot ever takes it).
#[derive(Debug, Default)]
enum HeldMetadata {
    /// None set.
    #[default]
    Empty,
    /// Set, not yet sent.
    Set(u64, Metadata),
    /// The call's first stream item went: its metadata (if any) went
    /// before it, and none can follow.
    Closed(u64),
}

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            state: AtomicU64::new(word(0, ENDED)),
            abort: Mutex::new(None),
            response_metadata: Mutex::new(HeldMetadata::Empty),
            stream: Mutex::new(None),
        }
    }
}

/// The slab and the count of calls in flight, shared by a connection's
/// tasks.
#[derive(Debug)]
pub(crate) struct CallSlots {
    /// Segment `k` holds `FIRST_SEGMENT << k` slots; allocated by the
    /// connection's task when it needs them, never moved or freed before
    /// the connection.
    segments: [OnceLock<Box<[Slot]>>; SEGMENTS],
    /// Reserved slots not yet ended: calls whose handler has not ended,
    /// cancelled or not. Only the connection's task adds to it.
    live: AtomicUsize,
    /// Set while someone waits for the last call to end.
    empty_wanted: AtomicBool,
    empty: Notify,
    /// Set (for good) once a call of the connection sets response
    /// metadata: until then answering a call looks at no slot's metadata,
    /// so calls that never use it take no lock for it.
    response_metadata_used: AtomicBool,
    /// Set (for good) once a streaming call of the connection started: until
    /// then ending a call looks at no slot's stream credit.
    streams_used: AtomicBool,
}

impl Default for CallSlots {
    fn default() -> CallSlots {
        CallSlots {
            segments: [const { OnceLock::new() }; SEGMENTS],
            live: AtomicUsize::new(0),
            empty_wanted: AtomicBool::new(false),
            empty: Notify::new(),
            response_metadata_used: AtomicBool::new(false),
            streams_used: AtomicBool::new(false),
        }
    }
}

/// The segment and the offset in it of slot `index`.
fn locate(index: u32) -> (usize, usize) {
    let index = index as usize;
    if index < FIRST_SEGMENT {
        return (0, index);
    }
    let group = index / FIRST_SEGMENT + 1;
    let segment = (usize::BITS - 1 - group.leading_zeros()) as usize;
    (segment, index - FIRST_SEGMENT * ((1 << segment) - 1))
}

/// The slots segments `0..n` hold.
fn capacity(segments: usize) -> usize {
    FIRST_SEGMENT * ((1 << segments) - 1)
}

impl CallSlots {
    /// The bytes the slab holds ([`CALL_SLOT_BYTES`] per slot of its
    /// segments): what its connection releases when it is gone.
    pub fn footprint(&self) -> usize {
        self.segments
            .iter()
            .enumerate()
            .filter(|(_, segment)| segment.get().is_some())
            .map(|(k, _)| (FIRST_SEGMENT << k) * CALL_SLOT_BYTES)
            .sum()
    }

    fn slot(&self, index: u32) -> Option<&Slot> {
        let (segment, offset) = locate(index);
        self.segments.get(segment)?.get()?.get(offset)
    }

    fn state(&self, slot: SlotId) -> Option<u64> {
        let state = self.slot(slot.index)?.state.load(Ordering::Acquire);
        // The token is the call's until the table reuses the slot, which
        // it does only once it ended.
        Some(if state >> 2 == slot.token {
            state & 3
        } else {
            ENDED
        })
    }

    fn ended(&self, slot: SlotId) -> bool {
        self.state(slot).is_none_or(|phase| phase == ENDED)
    }

    /// Takes the call's answer: `false` if it was cancelled or cut (then it
    /// must not be answered) or already claimed.
    pub fn claim(&self, slot: SlotId) -> bool {
        self.slot(slot.index).is_some_and(|cell| {
            cell.state
                .compare_exchange(
                    word(slot.token, LIVE),
                    word(slot.token, CLAIMED),
                    // Sequentially consistent, with the flag and the check
                    // in `set_response_metadata`: see there.
                    Ordering::SeqCst,
                    Ordering::Acquire,
                )
                .is_ok()
        })
    }

    /// Keeps `metadata` to be sent before the call's answer, replacing
    /// (and returning) what the call set before, or what an earlier call
    /// of the slot left; gives it back as `Err` if the call has claimed its
    /// answer, was stopped, ended, or sent a stream item.
    ///
    /// Why metadata set here is never missed by the answer: the flag is
    /// raised before the call's phase is checked, and the answer claims
    /// the phase before it reads the flag, all sequentially consistent. A
    /// check that saw the call live came before the claim, so the answer
    /// sees the flag and takes the metadata under the same lock; a check
    /// after the claim fails.
    pub fn set_response_metadata(
        &self,
        slot: SlotId,
        metadata: Metadata,
    ) -> Result<Option<Metadata>, Metadata> {
        let Some(cell) = self.slot(slot.index) else {
            return Err(metadata);
        };
        self.response_metadata_used.store(true, Ordering::SeqCst);
        let mut held = cell
            .response_metadata
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cell.state.load(Ordering::SeqCst) != word(slot.token, LIVE)
            || matches!(*held, HeldMetadata::Closed(token) if token == slot.token)
        {
            return Err(metadata);
        }
        match std::mem::replace(&mut *held, HeldMetadata::Set(slot.token, metadata)) {
            HeldMetadata::Set(_, replaced) => Ok(Some(replaced)),
            HeldMetadata::Empty | HeldMetadata::Closed(_) => Ok(None),
        }
    }

    /// Closes the call's response metadata before its first stream item:
    /// returns what it set (to send now), and what an earlier call of the
    /// slot left (to release); none can be set afterwards.
    pub fn close_response_metadata(&self, slot: SlotId) -> (Option<Metadata>, Option<Metadata>) {
        let Some(cell) = self.slot(slot.index) else {
            return (None, None);
        };
        let mut held = cell
            .response_metadata
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cell.state.load(Ordering::SeqCst) >> 2 != slot.token {
            // The call has ended and the slot is another call's.
            return (None, None);
        }
        match std::mem::replace(&mut *held, HeldMetadata::Closed(slot.token)) {
            HeldMetadata::Set(token, metadata) if token == slot.token => (Some(metadata), None),
            HeldMetadata::Set(_, stale) => (None, Some(stale)),
            HeldMetadata::Empty | HeldMetadata::Closed(_) => (None, None),
        }
    }

    /// Takes the metadata the call set to send back (after it claimed its
    /// answer, or when it ends): `None` at the cost of one load on a
    /// connection none of whose calls ever set any.
    #[inline]
    pub fn take_response_metadata(&self, slot: SlotId) -> Option<Metadata> {
        if !self.response_metadata_used.load(Ordering::SeqCst) {
            return None;
        }
        self.take_set_response_metadata(slot)
    }

    /// [`take_response_metadata`](Self::take_response_metadata) on a
    /// connection where some call set response metadata.
    fn take_set_response_metadata(&self, slot: SlotId) -> Option<Metadata> {
        let mut held = self
            .slot(slot.index)?
            .response_metadata
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match std::mem::take(&mut *held) {
            HeldMetadata::Set(token, metadata) if token == slot.token => Some(metadata),
            other => {
                // An earlier call's (it set it as its slot ended): never
                // this call's to send; released by the next set or end.
                *held = other;
                None
            }
        }
    }

    /// Whether the call in `slot` is still live: not answered, stopped or
    /// ended.
    pub fn is_live(&self, slot: SlotId) -> bool {
        self.state(slot) == Some(LIVE)
    }

    /// Keeps a server-streaming call's credit with its slot, for the
    /// client's credit frames to reach.
    pub fn set_stream_credit(&self, slot: SlotId, credit: Arc<StreamCredit>) {
        if let Some(cell) = self.slot(slot.index) {
            self.streams_used.store(true, Ordering::Relaxed);
            *cell.stream.lock().unwrap_or_else(PoisonError::into_inner) = Some(credit);
        }
    }

    /// The credit of the streaming call in `slot`, if it is one.
    pub fn stream_credit(&self, slot: SlotId) -> Option<Arc<StreamCredit>> {
        let cell = self.slot(slot.index)?;
        if cell.state.load(Ordering::Acquire) >> 2 != slot.token {
            return None;
        }
        cell.stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps the handler's task with its slot, so that a cancel can stop
    /// it; stops it at once if the call was stopped before (its dispatch
    /// ran off the reader).
    pub fn attach(&self, slot: SlotId, abort: AbortHandle) {
        let Some(cell) = self.slot(slot.index) else {
            return;
        };
        let mut held = cell.abort.lock().unwrap_or_else(PoisonError::into_inner);
        match cell.state.load(Ordering::Acquire) {
            state if state == word(slot.token, LIVE) => *held = Some(abort),
            state if state == word(slot.token, STOPPED) => abort.abort(),
            _ => {}
        }
    }

    /// Stops the call in `slot` unless it claimed its answer or ended;
    /// whether it was stopped (then it is never answered by its handler).
    fn stop(&self, slot: SlotId) -> bool {
        let Some(cell) = self.slot(slot.index) else {
            return false;
        };
        let stopped = cell
            .state
            .compare_exchange(
                word(slot.token, LIVE),
                word(slot.token, STOPPED),
                // Sequentially consistent, as `claim`: see
                // `set_response_metadata`.
                Ordering::SeqCst,
                Ordering::Acquire,
            )
            .is_ok();
        if stopped {
            let task = cell
                .abort
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(task) = task {
                task.abort();
            }
        }
        stopped
    }

    /// Frees the slot of a call whose handler ended (once per reserved
    /// slot): whether the connection has no call left, and the response
    /// metadata the call set and never sent (a copy of its context may set
    /// it until the slot ends: it is taken in the same step).
    pub fn release(&self, slot: SlotId) -> Released {
        let mut response_metadata = None;
        if let Some(cell) = self.slot(slot.index) {
            let task = {
                let mut held = cell.abort.lock().unwrap_or_else(PoisonError::into_inner);
                if self.response_metadata_used.load(Ordering::SeqCst) {
                    let mut kept = cell
                        .response_metadata
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    cell.state.store(word(slot.token, ENDED), Ordering::SeqCst);
                    if let HeldMetadata::Set(_, metadata) = std::mem::take(&mut *kept) {
                        response_metadata = Some(metadata);
                    }
                } else {
                    cell.state.store(word(slot.token, ENDED), Ordering::Release);
                }
                held.take()
            };
            drop(task);
            if self.streams_used.load(Ordering::Relaxed) {
                let credit = cell
                    .stream
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(credit) = credit {
                    credit.close();
                }
            }
        }
        let last = self.live.fetch_sub(1, Ordering::AcqRel) == 1;
        if last && self.empty_wanted.load(Ordering::Acquire) {
            self.empty.notify_one();
        }
        Released {
            last,
            response_metadata,
        }
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
}

/// A call in the index: one whose handler outlived the frame that started
/// it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    slot: SlotId,
    /// The serializer id of the request (for an answer on its behalf).
    serializer: u8,
    /// A one-way request (message type 3): never answered.
    oneway: bool,
}

/// The connection task's own half of the slot table (see the module's
/// doc).
#[derive(Debug, Default)]
pub(crate) struct SlotTable {
    /// The calls that can still be cancelled, by request id (entries whose
    /// call has claimed its answer or ended are taken out lazily).
    by_id: foldhash::HashMap<u64, Entry>,
    /// Slots of calls out of the index (cancelled, cut, or their id reused
    /// after their answer) whose handler has not been seen to end.
    draining: Vec<SlotId>,
    /// Slots free for the next call.
    free: Vec<u32>,
    /// Slots handed out of the slab so far.
    allocated: u32,
    /// Bytes of slab segments allocated since [`take_grown`](Self::take_grown)
    /// last took them.
    grown: usize,
    /// The last token handed out (tokens start at 1).
    last_token: u64,
}

impl SlotTable {
    /// Reserves a slot for a call with `request_id`; it is
    /// [released](CallSlots::release) exactly once (by the call, or by the
    /// reader if the call never starts), and handed back to the table with
    /// [`settle`](Self::settle) once the request is handled.
    pub fn reserve(
        &mut self,
        slots: &CallSlots,
        request_id: u64,
        limit: usize,
    ) -> Result<Reserved, ReserveError> {
        // Only this task adds to `live`: it can't grow between this check
        // and the add below.
        let held = slots.live();
        if held >= limit {
            return Err(ReserveError::Full);
        }
        // Most calls end while their request is handled: the index is then
        // empty, and the id need not even be hashed.
        let known = if self.by_id.is_empty() {
            None
        } else {
            self.by_id.get(&request_id)
        };
        if let Some(entry) = known {
            if slots.state(entry.slot) == Some(LIVE) {
                return Err(ReserveError::Duplicate);
            }
            let slot = entry.slot;
            self.by_id.remove(&request_id);
            self.retire(slots, slot);
        }
        let index = self.take_free(slots, held).ok_or(ReserveError::Full)?;
        self.last_token += 1;
        let slot = SlotId {
            index,
            token: self.last_token,
        };
        if let Some(cell) = slots.slot(index) {
            cell.state.store(word(slot.token, LIVE), Ordering::Release);
        }
        let held = slots.live.fetch_add(1, Ordering::AcqRel);
        Ok(Reserved { slot, held })
    }

    /// The request that reserved `slot` was handled (its call finished,
    /// runs in a task, or was refused): the slot is free again if the call
    /// ended, or else enters the index, where a cancel can reach it.
    pub fn settle(
        &mut self,
        slots: &CallSlots,
        request_id: u64,
        slot: SlotId,
        serializer: u8,
        oneway: bool,
    ) {
        if slots.ended(slot) {
            self.free.push(slot.index);
            return;
        }
        let entry = Entry {
            slot,
            serializer,
            oneway,
        };
        if let Some(old) = self.by_id.insert(request_id, entry) {
            self.retire(slots, old.slot);
        }
    }

    /// Stops the call with `request_id` if it is still running; its id is
    /// free at once. Whether a call was stopped.
    pub fn cancel(&mut self, slots: &CallSlots, request_id: u64) -> bool {
        let Some(entry) = self.by_id.remove(&request_id) else {
            return false;
        };
        let stopped = slots.stop(entry.slot);
        self.retire(slots, entry.slot);
        stopped
    }

    /// The credit of the open streaming call with `request_id`, if there
    /// is one (a call that ended, or is not streaming, has none).
    pub fn stream_credit(&self, slots: &CallSlots, request_id: u64) -> Option<Arc<StreamCredit>> {
        slots.stream_credit(self.by_id.get(&request_id)?.slot)
    }

    /// Stops every call that waits for an answer (its client is gone); the
    /// one-way calls go on.
    pub fn abort_answerable(&mut self, slots: &CallSlots) {
        let SlotTable {
            by_id,
            draining,
            free,
            ..
        } = self;
        by_id.retain(|_, entry| {
            if entry.oneway {
                return true;
            }
            slots.stop(entry.slot);
            retire_into(slots, entry.slot, draining, free);
            false
        });
    }

    /// Stops every call, and returns those that wait for an answer (to be
    /// answered on their behalf).
    pub fn cut_all(&mut self, slots: &CallSlots) -> Vec<CutCall> {
        let mut answerable = Vec::new();
        let SlotTable {
            by_id,
            draining,
            free,
            ..
        } = self;
        for (request_id, entry) in by_id.drain() {
            if slots.stop(entry.slot) && !entry.oneway {
                answerable.push(CutCall {
                    request_id,
                    serializer: entry.serializer,
                });
            }
            retire_into(slots, entry.slot, draining, free);
        }
        answerable
    }

    /// Stops every handler (the connection is closing).
    pub fn abort_all(&mut self, slots: &CallSlots) {
        self.cut_all(slots);
    }

    /// A slot out of the index: free if its call ended, else draining.
    fn retire(&mut self, slots: &CallSlots, slot: SlotId) {
        retire_into(slots, slot, &mut self.draining, &mut self.free);
    }

    /// A free slot: one known free; else, if at least half the slab can be
    /// taken back, the slots whose calls ended (a sweep); else a new one.
    /// `None` only past the slab's capacity.
    fn take_free(&mut self, slots: &CallSlots, live: usize) -> Option<u32> {
        if let Some(index) = self.free.pop() {
            return Some(index);
        }
        let allocated = self.allocated as usize;
        if allocated >= live.saturating_mul(2).saturating_add(FIRST_SEGMENT) {
            self.sweep(slots);
            if let Some(index) = self.free.pop() {
                return Some(index);
            }
        }
        if allocated >= capacity(SEGMENTS) {
            return None;
        }
        let index = self.allocated;
        let (segment, _) = locate(index);
        slots.segments[segment].get_or_init(|| {
            self.grown += (FIRST_SEGMENT << segment) * CALL_SLOT_BYTES;
            (0..FIRST_SEGMENT << segment)
                .map(|_| Slot::default())
                .collect()
        });
        self.allocated += 1;
        Some(index)
    }

    /// The bytes the slab grew by since the last call (a new segment's
    /// slots, [`CALL_SLOT_BYTES`] each), for the connection to charge.
    pub fn take_grown(&mut self) -> usize {
        std::mem::take(&mut self.grown)
    }

    /// Takes back every slot whose call ended.
    fn sweep(&mut self, slots: &CallSlots) {
        let SlotTable {
            by_id,
            draining,
            free,
            ..
        } = self;
        by_id.retain(|_, entry| {
            let ended = slots.ended(entry.slot);
            if ended {
                free.push(entry.slot.index);
            }
            !ended
        });
        draining.retain(|slot| {
            let ended = slots.ended(*slot);
            if ended {
                free.push(slot.index);
            }
            !ended
        });
    }

    /// The calls that can still be cancelled (ended ones included until a
    /// sweep).
    #[cfg(test)]
    fn indexed(&self) -> usize {
        self.by_id.len()
    }
}

fn retire_into(slots: &CallSlots, slot: SlotId, draining: &mut Vec<SlotId>, free: &mut Vec<u32>) {
    if slots.ended(slot) {
        free.push(slot.index);
    } else {
        draining.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table and its slab.
    #[derive(Default)]
    struct Conn {
        slots: CallSlots,
        table: SlotTable,
    }

    impl Conn {
        /// Reserves a slot for a call whose handler then runs on (in a
        /// task, or elsewhere): it enters the index.
        fn running(&mut self, id: u64, limit: usize) -> Result<SlotId, ReserveError> {
            self.running_as(id, limit, 1, false)
        }

        fn running_as(
            &mut self,
            id: u64,
            limit: usize,
            serializer: u8,
            oneway: bool,
        ) -> Result<SlotId, ReserveError> {
            let slot = self.table.reserve(&self.slots, id, limit)?.slot;
            self.table.settle(&self.slots, id, slot, serializer, oneway);
            Ok(slot)
        }
    }

    #[test]
    fn slots_are_located_in_doubling_segments() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(15), (0, 15));
        assert_eq!(locate(16), (1, 0));
        assert_eq!(locate(47), (1, 31));
        assert_eq!(locate(48), (2, 0));
        let last = u32::try_from(capacity(SEGMENTS) - 1).expect("fits");
        assert_eq!(
            locate(last),
            (SEGMENTS - 1, (FIRST_SEGMENT << (SEGMENTS - 1)) - 1)
        );
    }

    #[test]
    fn a_call_that_ends_before_its_request_is_settled_never_enters_the_index() {
        let mut conn = Conn::default();
        let a = conn.table.reserve(&conn.slots, 1, 2).expect("room").slot;
        assert!(conn.slots.claim(a), "answered");
        assert!(!conn.slots.claim(a), "once");
        assert!(conn.slots.release(a).last, "the last call ended");
        conn.table.settle(&conn.slots, 1, a, 1, false);
        assert_eq!(conn.table.indexed(), 0, "no entry");
        // The slot is reused, with a new token: the old call's id no longer
        // reaches it.
        let b = conn.table.reserve(&conn.slots, 1, 2).expect("room").slot;
        assert_eq!(b.index, a.index);
        assert_ne!(b.token, a.token);
        assert!(!conn.slots.claim(a));
        assert!(conn.slots.release(b).last);
        assert_eq!(conn.slots.live(), 0);
        assert_eq!(conn.table.allocated, 1, "one slot served both");
    }

    #[test]
    fn the_slabs_growth_is_reported_once_per_segment_and_adds_up_to_its_footprint() {
        let mut conn = Conn::default();
        assert_eq!(conn.slots.footprint(), 0);
        let mut charged = 0;
        let mut growths = Vec::new();
        for id in 0..100 {
            conn.running(id, 1000).expect("room");
            let grown = conn.table.take_grown();
            if grown > 0 {
                growths.push((id, grown / CALL_SLOT_BYTES));
            }
            charged += grown;
        }
        // Segments of 16, 32 and 64 slots, taken by calls 0, 16 and 48.
        assert_eq!(growths, [(0, 16), (16, 32), (48, 64)]);
        assert_eq!(charged, conn.slots.footprint());
        assert_eq!(charged, 112 * CALL_SLOT_BYTES);
    }

    #[test]
    fn reserve_enforces_the_limit_and_unique_ids() {
        let mut conn = Conn::default();
        let a = conn.running(1, 2).expect("room");
        assert_eq!(conn.running(1, 2), Err(ReserveError::Duplicate));
        conn.running(2, 2).expect("room");
        assert_eq!(conn.running(3, 2), Err(ReserveError::Full));
        let _ = conn.slots.release(a);
        conn.running(3, 2).expect("room again");
        // The ended call's id is free again.
        conn.running(1, 3).expect("id 1 reused");
    }

    #[test]
    fn a_claimed_call_frees_its_id_but_not_its_slot() {
        let mut conn = Conn::default();
        let a = conn.running(7, 10).expect("room");
        assert!(conn.slots.claim(a), "answering");
        let b = conn.running(7, 10).expect("the answered id is reused");
        assert_ne!(a.index, b.index, "the first call still holds its slot");
        assert_eq!(conn.slots.live(), 2);
        assert!(!conn.table.cancel(&conn.slots, 99), "unknown id");
        assert!(conn.table.cancel(&conn.slots, 7), "the new call is stopped");
        assert!(!conn.slots.claim(b));
        let _ = conn.slots.release(a);
        assert!(conn.slots.release(b).last, "the last call ended");
    }

    #[test]
    fn a_stale_release_does_not_free_a_newer_call() {
        let mut conn = Conn::default();
        let old = conn.running(7, 10).expect("room");
        assert!(conn.table.cancel(&conn.slots, 7));
        let new = conn.running(7, 10).expect("id reused");
        let _ = conn.slots.release(old);
        assert_eq!(
            conn.running(7, 10),
            Err(ReserveError::Duplicate),
            "the new call still runs"
        );
        assert!(conn.slots.claim(new), "and may answer");
        assert!(conn.slots.release(new).last, "the last call ended");
        assert_eq!(conn.slots.live(), 0);
        assert!(
            !conn.table.cancel(&conn.slots, 7),
            "answered: nothing to stop"
        );
    }

    #[test]
    fn cancelled_calls_count_until_their_task_ends() {
        let mut conn = Conn::default();
        let a = conn.running(1, 2).expect("room");
        let b = conn.running(2, 2).expect("room");
        assert!(conn.table.cancel(&conn.slots, 1));
        assert!(conn.table.cancel(&conn.slots, 2));
        assert_eq!(conn.table.indexed(), 0);
        // Both tasks are still stopping: no room yet.
        assert_eq!(conn.running(3, 2), Err(ReserveError::Full));
        let _ = conn.slots.release(a);
        conn.running(3, 2).expect("room once one ended");
        let _ = conn.slots.release(b);
        assert_eq!(conn.slots.live(), 1);
    }

    #[test]
    fn a_cancelled_or_cut_call_is_never_claimed_for_an_answer() {
        let mut conn = Conn::default();
        let a = conn.running(1, 10).expect("room");
        let b = conn.running_as(2, 10, 3, false).expect("room");
        let c = conn.running_as(3, 10, 1, true).expect("room");
        assert!(conn.table.cancel(&conn.slots, 1));
        assert!(!conn.slots.claim(a), "cancelled: no answer");
        assert_eq!(
            conn.table.cut_all(&conn.slots),
            vec![CutCall {
                request_id: 2,
                serializer: 3
            }],
            "one-way calls are not answered"
        );
        assert!(!conn.slots.claim(b), "cut: answered on its behalf already");
        assert!(!conn.slots.claim(c));
    }

    #[test]
    fn a_closed_connection_stops_answerable_calls_and_keeps_one_way_ones() {
        let mut conn = Conn::default();
        let answerable = conn.running(1, 10).expect("room");
        let oneway = conn.running_as(2, 10, 1, true).expect("room");
        conn.table.abort_answerable(&conn.slots);
        assert!(!conn.slots.claim(answerable));
        assert!(conn.slots.claim(oneway));
    }

    #[test]
    fn ids_are_untrusted_any_u64_keys_only_the_index() {
        let mut conn = Conn::default();
        for id in [0, u64::MAX, 1 << 63, 3] {
            conn.running(id, 10).expect("room");
        }
        assert_eq!(conn.table.allocated, 4, "slots are handed out in order");
        assert_eq!(conn.running(u64::MAX, 10), Err(ReserveError::Duplicate));
        assert!(conn.table.cancel(&conn.slots, u64::MAX));
    }

    #[test]
    fn the_slab_stays_within_twice_the_calls_in_flight() {
        let mut conn = Conn::default();
        // Calls that run in tasks and end in any order, ids never reused,
        // some cancelled: ended slots are taken back, not piled up.
        let mut running = std::collections::VecDeque::new();
        for id in 0..10_000u64 {
            let slot = conn.running(id, 64).expect("room");
            if id % 7 == 0 {
                conn.table.cancel(&conn.slots, id);
            }
            running.push_back(slot);
            if running.len() == 50 {
                for _ in 0..25 {
                    let slot = running.pop_front().expect("running");
                    conn.slots.claim(slot);
                    let _ = conn.slots.release(slot);
                }
            }
        }
        let bound = 2 * 50 + FIRST_SEGMENT;
        assert!(
            (conn.table.allocated as usize) <= bound,
            "{} slots for at most 50 calls",
            conn.table.allocated
        );
        assert!(conn.table.by_id.len() + conn.table.draining.len() <= bound);
        for slot in running {
            let _ = conn.slots.release(slot);
        }
        assert_eq!(conn.slots.live(), 0);
    }

    #[test]
    fn a_call_racing_a_cancel_is_either_answered_or_stopped_never_both() {
        let mut conn = Conn::default();
        let (mut answered, mut stopped) = (0, 0);
        for id in 0..2_000u64 {
            let slot = conn.running(id, 10).expect("room");
            let barrier = std::sync::Barrier::new(2);
            let (claimed, cancelled) = std::thread::scope(|scope| {
                let slots = &conn.slots;
                let claim = scope.spawn(|| {
                    barrier.wait();
                    slots.claim(slot)
                });
                barrier.wait();
                let cancelled = conn.table.cancel(&conn.slots, id);
                (claim.join().expect("no panic"), cancelled)
            });
            assert!(claimed != cancelled, "call {id}: exactly one of them wins");
            answered += usize::from(claimed);
            stopped += usize::from(cancelled);
            let _ = conn.slots.release(slot);
        }
        assert_eq!(answered + stopped, 2_000);
        assert_eq!(conn.slots.live(), 0);
    }

    #[tokio::test]
    async fn a_task_attached_after_its_call_was_stopped_is_aborted() {
        let mut conn = Conn::default();
        let slot = conn.running(5, 10).expect("room");
        assert!(conn.table.cancel(&conn.slots, 5));
        let task = tokio::spawn(std::future::pending::<()>());
        conn.slots.attach(slot, task.abort_handle());
        let joined = task.await;
        assert!(joined.is_err_and(|e| e.is_cancelled()), "stopped");
        let _ = conn.slots.release(slot);
    }

    #[tokio::test]
    async fn a_cancel_aborts_the_attached_task() {
        let mut conn = Conn::default();
        let slot = conn.running(5, 10).expect("room");
        let task = tokio::spawn(std::future::pending::<()>());
        conn.slots.attach(slot, task.abort_handle());
        assert!(conn.table.cancel(&conn.slots, 5));
        assert!(task.await.is_err_and(|e| e.is_cancelled()), "stopped");
        let _ = conn.slots.release(slot);
        assert_eq!(conn.slots.live(), 0);
    }
}
