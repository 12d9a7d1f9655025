//! The queue of commands from a connection's callers to its task: a
//! `VecDeque` under a lock, which the task empties a batch at a time.
//!
//! Unbounded as a queue, bounded by what it carries: every call and
//! one-way command holds room in the connection's send queue
//! (`send_room.rs`) until its frame leaves the connection's queue, and
//! there is at most one cancel per call. Cheaper per call than tokio's
//! unbounded channel (its block list, its semaphore and its atomic waker):
//! one short lock to push, one per batch to take (~400 instructions a
//! call, callgrind). The lock is never held across an `.await`, nor while
//! a waker runs or a command is dropped.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use super::command::Command;

/// The callers' end (the one `Link` of the connection).
#[derive(Debug)]
pub(crate) struct CommandSender {
    shared: Arc<Shared>,
}

/// The connection task's end.
#[derive(Debug)]
pub(crate) struct CommandReceiver {
    shared: Arc<Shared>,
    /// The batch taken from the queue, not yet handed out.
    taken: VecDeque<Command>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Command>,
    /// The task, when it found the queue empty.
    waker: Option<Waker>,
    /// The sender is gone: once the queue is empty, nothing more comes.
    sender_gone: bool,
    /// The receiver is gone: sends fail.
    receiver_gone: bool,
}

/// A new queue.
pub(crate) fn command_queue() -> (CommandSender, CommandReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waker: None,
            sender_gone: false,
            receiver_gone: false,
        }),
    });
    (
        CommandSender {
            shared: Arc::clone(&shared),
        },
        CommandReceiver {
            shared,
            taken: VecDeque::new(),
        },
    )
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the
        // state is still consistent (each change is one assignment).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CommandSender {
    /// Queues `command` and wakes the task; gives it back if the task is
    /// gone.
    pub fn send(&self, command: Command) -> Result<(), Command> {
        self.shared.send(command)
    }

    /// Another way in for the commands of one call that outlives the
    /// caller's borrow of the connection (a stream's credits and cancel);
    /// unlike the sender, dropping it does not end the connection.
    pub fn handle(&self) -> CommandHandle {
        CommandHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Sends commands to a connection task without owning it (see
/// [`CommandSender::handle`]).
#[derive(Debug, Clone)]
pub(crate) struct CommandHandle {
    shared: Arc<Shared>,
}

impl CommandHandle {
    /// Queues `command` and wakes the task; gives it back if the task is
    /// gone.
    pub fn send(&self, command: Command) -> Result<(), Command> {
        self.shared.send(command)
    }
}

impl Shared {
    fn send(&self, command: Command) -> Result<(), Command> {
        let waker = {
            let mut state = self.lock();
            if state.receiver_gone {
                return Err(command);
            }
            state.queue.push_back(command);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl Drop for CommandSender {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.sender_gone = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl CommandReceiver {
    /// The next command; `None` once the sender is gone and every command
    /// was taken. When there is none yet, `cx` is woken by the next send.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        if let Some(command) = self.taken.pop_front() {
            return Poll::Ready(Some(command));
        }
        let mut state = self.shared.lock();
        if !state.queue.is_empty() {
            // The whole batch at once; both keep their capacity.
            std::mem::swap(&mut state.queue, &mut self.taken);
            drop(state);
            return Poll::Ready(self.taken.pop_front());
        }
        if state.sender_gone {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Waits for the next command (see [`poll_recv`](Self::poll_recv)).
    pub async fn recv(&mut self) -> Option<Command> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next command if there is one now.
    pub fn try_recv(&mut self) -> Option<Command> {
        if let Some(command) = self.taken.pop_front() {
            return Some(command);
        }
        let mut state = self.shared.lock();
        std::mem::swap(&mut state.queue, &mut self.taken);
        drop(state);
        self.taken.pop_front()
    }

    /// Commands queued now.
    pub fn len(&self) -> usize {
        self.taken.len() + self.shared.lock().queue.len()
    }
}

impl Drop for CommandReceiver {
    fn drop(&mut self) {
        // Later sends fail; the commands queued are dropped here, outside
        // the lock (their room in the send queue goes back).
        let queued = {
            let mut state = self.shared.lock();
            state.receiver_gone = true;
            state.waker = None;
            std::mem::take(&mut state.queue)
        };
        drop(queued);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_waker::CountingWaker;

    fn cancel(id: u64) -> Command {
        Command::Cancel { id }
    }

    fn id_of(command: Option<Command>) -> Option<u64> {
        match command {
            Some(Command::Cancel { id }) => Some(id),
            Some(other) => panic!("unexpected {other:?}"),
            None => None,
        }
    }

    #[test]
    fn commands_come_in_order_and_a_send_wakes_the_waiting_task() {
        let (sender, mut receiver) = command_queue();
        let (woken, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        assert!(receiver.poll_recv(&mut cx).is_pending());
        sender.send(cancel(1)).expect("open");
        sender.send(cancel(2)).expect("open");
        assert_eq!(woken.wakes(), 1, "one wake");
        assert_eq!(receiver.len(), 2);
        let Poll::Ready(first) = receiver.poll_recv(&mut cx) else {
            panic!("a command is queued");
        };
        assert_eq!(id_of(first), Some(1));
        sender.send(cancel(3)).expect("open");
        assert_eq!(id_of(receiver.try_recv()), Some(2));
        assert_eq!(id_of(receiver.try_recv()), Some(3));
        assert!(receiver.try_recv().is_none());
        assert_eq!(receiver.len(), 0);
    }

    #[test]
    fn the_sender_gone_ends_the_queue_after_its_last_command() {
        let (sender, mut receiver) = command_queue();
        let (woken, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        sender.send(cancel(7)).expect("open");
        drop(sender);
        assert!(matches!(receiver.poll_recv(&mut cx), Poll::Ready(Some(_))));
        assert!(matches!(receiver.poll_recv(&mut cx), Poll::Ready(None)));

        let (sender, mut receiver) = command_queue();
        assert!(receiver.poll_recv(&mut cx).is_pending());
        drop(sender);
        assert_eq!(woken.wakes(), 1, "woken by the drop");
        assert!(matches!(receiver.poll_recv(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn sends_fail_once_the_receiver_is_gone() {
        let (sender, receiver) = command_queue();
        sender.send(cancel(1)).expect("open");
        drop(receiver);
        assert!(sender.send(cancel(2)).is_err());
    }
}
