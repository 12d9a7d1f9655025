//! The items of one server-streaming call on the client: the connection
//! task pushes them as they arrive (never more than the credit it gave),
//! the call's [`ItemStream`](crate::client::ItemStream) takes them. Their
//! bytes are counted per connection: past
//! `ChannelConfig::max_buffered_stream_bytes` the connection stops reading
//! its socket until the applications take items.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

/// The bytes of stream items one connection holds that their calls have
/// not taken, and the connection's task while it waits for them to fall
/// to its bound.
#[derive(Debug, Default)]
pub(crate) struct StreamBytes {
    held: AtomicUsize,
    /// Past this, the connection stops reading.
    limit: AtomicUsize,
    /// The connection's task, while it does not read.
    paused: Mutex<Option<Waker>>,
}

impl StreamBytes {
    /// Sets the bound (from the channel's settings).
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    fn add(&self, bytes: usize) {
        self.held.fetch_add(bytes, Ordering::AcqRel);
    }

    /// `bytes` were taken (or dropped): wakes the paused connection when
    /// they bring the count down to its bound.
    fn remove(&self, bytes: usize) {
        let old = self.held.fetch_sub(bytes, Ordering::AcqRel);
        let limit = self.limit.load(Ordering::Relaxed);
        if old > limit && old.saturating_sub(bytes) <= limit {
            let paused = self
                .paused
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(waker) = paused {
                waker.wake();
            }
        }
    }

    /// Whether the connection must not read now; if so, its task is woken
    /// once the count falls to the bound.
    pub fn hold_reads(&self, cx: &mut Context<'_>) -> bool {
        let over = || self.held.load(Ordering::Acquire) > self.limit.load(Ordering::Relaxed);
        if !over() {
            return false;
        }
        *self.paused.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        // Looked at again once registered: a fall in between is not lost.
        over()
    }
}

/// One call's items, between the connection task and the call.
#[derive(Debug)]
pub(crate) struct StreamItems {
    queue: Mutex<Queue>,
    /// The item bytes its connection holds for all its streams.
    buffered: Arc<StreamBytes>,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Bytes>,
    /// The call's task, when it found no item.
    waiting: Option<Waker>,
}

impl StreamItems {
    /// A call's queue, counting its bytes in its connection's `buffered`.
    pub fn new(buffered: Arc<StreamBytes>) -> Arc<StreamItems> {
        Arc::new(StreamItems {
            queue: Mutex::new(Queue::default()),
            buffered,
        })
    }

    /// An item arrived (the connection task).
    pub fn push(&self, item: Bytes) {
        self.buffered.add(item.len());
        let waiting = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.items.push_back(item);
            queue.waiting.take()
        };
        if let Some(waker) = waiting {
            waker.wake();
        }
    }

    /// The next item, if one has arrived; otherwise the task is woken when
    /// one does.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Bytes> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        match queue.items.pop_front() {
            Some(item) => {
                drop(queue);
                self.buffered.remove(item.len());
                Poll::Ready(item)
            }
            None => {
                queue.waiting = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for StreamItems {
    fn drop(&mut self) {
        // Items never taken leave the connection's count with the queue.
        let left: usize = self
            .queue
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .items
            .iter()
            .map(Bytes::len)
            .sum();
        self.buffered.remove(left);
    }
}
