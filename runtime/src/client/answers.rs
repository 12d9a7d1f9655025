//! The answers to one connection's calls: a slab of slots, one per call
//! waiting, shared by its callers and the connection task.
//!
//! A caller takes a slot before it hands its frame over and waits on it;
//! the connection task puts the answer in (a response, or the error that
//! ended the call) and wakes the caller, who takes it and frees the slot.
//! Freed slots are reused (a generation tells the call holding a slot from
//! an earlier one), so once the slab has grown to the calls in flight a
//! call allocates nothing here: no oneshot channel (an allocation and its
//! own atomics per call), just a short lock on each side.
//!
//! A caller that gives up frees its slot at once; an answer that comes
//! later finds a newer generation (or a free slot) and is dropped. The
//! connection task finds a call's slot from its request id in its own map
//! of the calls it has taken over (`connection.rs`), so request ids may be
//! anything the channel chooses: unique among the calls in flight, neither
//! contiguous nor the connection's own.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use super::command::RawResponse;
use crate::error::TransportError;

/// What a call gets: its response, or why there is none.
pub(crate) type Answer = Result<RawResponse, TransportError>;

/// A call's claim on its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    index: u32,
    generation: u32,
}

/// The slots of one connection (kept across its reconnects).
#[derive(Debug, Default)]
pub(crate) struct Answers {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    slots: Vec<Slot>,
    /// Indexes of free slots, reused last freed first (warm in cache).
    free: Vec<u32>,
}

#[derive(Debug, Default)]
struct Slot {
    /// Bumped each time the slot is freed.
    generation: u32,
    state: State,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Free,
    /// Its caller waits (with this waker once it has polled).
    Waiting(Option<Waker>),
    /// The answer, not yet taken.
    Answered(Answer),
}

impl Table {
    /// The slot `ticket` holds, if it still holds it.
    fn slot(&mut self, ticket: Ticket) -> Option<&mut Slot> {
        let slot = self.slots.get_mut(usize::try_from(ticket.index).ok()?)?;
        (slot.generation == ticket.generation && !matches!(slot.state, State::Free)).then_some(slot)
    }

    fn release(&mut self, ticket: Ticket) {
        if let Some(slot) = self.slot(ticket) {
            slot.state = State::Free;
            slot.generation = slot.generation.wrapping_add(1);
            self.free.push(ticket.index);
        }
    }
}

impl Answers {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // Nothing panics while holding the lock; if something did, the
        // table is still consistent (each change is one assignment).
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot for a call about to be handed over.
    pub fn open(&self) -> Ticket {
        let mut table = self.lock();
        let index = match table.free.pop() {
            Some(index) => index,
            None => {
                // One slot per caller waiting: callers are futures in
                // memory, so `u32::MAX` of them cannot exist.
                let index = u32::try_from(table.slots.len()).unwrap_or(u32::MAX);
                table.slots.push(Slot::default());
                index
            }
        };
        let slot = &mut table.slots[index as usize];
        slot.state = State::Waiting(None);
        Ticket {
            index,
            generation: slot.generation,
        }
    }

    /// The caller's poll: takes the answer (freeing the slot) if it came,
    /// else registers the waker. A ticket given up on is never polled.
    pub fn poll(&self, ticket: Ticket, cx: &mut Context<'_>) -> Poll<Answer> {
        let mut table = self.lock();
        let Some(slot) = table.slot(ticket) else {
            // Not reachable through `Pool`; an answer rather than a hang.
            return Poll::Ready(Err(TransportError::ConnectionLost(
                "the call's answer slot was released".to_owned(),
            )));
        };
        match &mut slot.state {
            State::Waiting(Some(waker)) if waker.will_wake(cx.waker()) => Poll::Pending,
            State::Waiting(waker) => {
                *waker = Some(cx.waker().clone());
                Poll::Pending
            }
            State::Answered(_) => {
                let State::Answered(answer) = std::mem::take(&mut slot.state) else {
                    unreachable!("matched above")
                };
                slot.generation = slot.generation.wrapping_add(1);
                table.free.push(ticket.index);
                Poll::Ready(answer)
            }
            State::Free => unreachable!("`slot` skips free slots"),
        }
    }

    /// The caller gives up: frees the slot. `true` if the call was still
    /// waiting (not answered), so the connection should forget it.
    pub fn close(&self, ticket: Ticket) -> bool {
        let mut table = self.lock();
        let waiting = matches!(
            table.slot(ticket).map(|slot| &slot.state),
            Some(State::Waiting(_))
        );
        table.release(ticket);
        waiting
    }

    /// The connection answers a call and wakes its caller; `false` if the
    /// caller had given up (the answer is dropped).
    pub fn answer(&self, ticket: Ticket, answer: Answer) -> bool {
        let waker = {
            let mut table = self.lock();
            let Some(slot) = table.slot(ticket) else {
                return false;
            };
            match std::mem::replace(&mut slot.state, State::Answered(answer)) {
                State::Waiting(waker) => waker,
                // Answered twice (a bug upstream): the first answer stays.
                previous @ State::Answered(_) => {
                    slot.state = previous;
                    return true;
                }
                State::Free => unreachable!("`slot` skips free slots"),
            }
        };
        // Woken outside the lock: the caller takes it next.
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Answers every call still waiting with `error` (the connection task
    /// is gone).
    pub fn fail_waiting(&self, error: &TransportError) {
        let wakers: Vec<Waker> = {
            let mut table = self.lock();
            table
                .slots
                .iter_mut()
                .filter_map(|slot| match &mut slot.state {
                    State::Waiting(waker) => {
                        let waker = waker.take();
                        slot.state = State::Answered(Err(error.clone()));
                        waker
                    }
                    _ => None,
                })
                .collect()
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether the call holding `ticket` still waits for its answer.
    pub fn is_waiting(&self, ticket: Ticket) -> bool {
        matches!(
            self.lock().slot(ticket).map(|slot| &slot.state),
            Some(State::Waiting(_))
        )
    }

    /// Slots held by calls (waiting, or answered and not yet taken).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        let table = self.lock();
        table.slots.len() - table.free.len()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::test_waker::CountingWaker;

    fn response(status: u8) -> Answer {
        Ok(RawResponse {
            status,
            body: Bytes::from_static(b"x"),
            metadata: crate::context::Metadata::new(),
        })
    }

    #[test]
    fn an_answer_wakes_its_caller_and_frees_the_slot() {
        let answers = Answers::default();
        let (woken, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        let ticket = answers.open();
        assert!(answers.poll(ticket, &mut cx).is_pending());
        assert!(answers.answer(ticket, response(7)));
        assert_eq!(woken.wakes(), 1);
        match answers.poll(ticket, &mut cx) {
            Poll::Ready(Ok(RawResponse { status: 7, .. })) => {}
            other => panic!("expected the answer, got {other:?}"),
        }
        assert_eq!(answers.held(), 0);
        // The slot is reused, under a new generation.
        let next = answers.open();
        assert_eq!(next.index, ticket.index);
        assert_ne!(next.generation, ticket.generation);
    }

    #[test]
    fn a_closed_slot_ignores_a_late_answer_even_once_reused() {
        let answers = Answers::default();
        let given_up = answers.open();
        assert!(answers.close(given_up), "it was still waiting");
        assert_eq!(answers.held(), 0);
        let reused = answers.open();
        assert_eq!(reused.index, given_up.index);
        // The answer to the call given up is not the new call's.
        assert!(!answers.answer(given_up, response(1)));
        assert!(answers.is_waiting(reused));
        assert!(!answers.is_waiting(given_up));
        // Closing after the answer came: nothing to cancel.
        assert!(answers.answer(reused, response(2)));
        assert!(!answers.close(reused));
        assert_eq!(answers.held(), 0);
    }
}
