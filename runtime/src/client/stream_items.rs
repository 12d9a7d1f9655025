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

/// One call's items, between the connection task and the call.
#[derive(Debug)]
pub(crate) struct StreamItems {
    queue: Mutex<Queue>,
    /// The item bytes its connection holds for all its streams.
    buffered: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Bytes>,
    /// The call's task, when it found no item.
    waiting: Option<Waker>,
}

impl StreamItems {
    /// A call's queue, counting its bytes in its connection's `buffered`.
    pub fn new(buffered: Arc<AtomicUsize>) -> Arc<StreamItems> {
        Arc::new(StreamItems {
            queue: Mutex::new(Queue::default()),
            buffered,
        })
    }

    /// An item arrived (the connection task).
    pub fn push(&self, item: Bytes) {
        self.buffered.fetch_add(item.len(), Ordering::AcqRel);
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
                self.buffered.fetch_sub(item.len(), Ordering::AcqRel);
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
        self.buffered.fetch_sub(left, Ordering::AcqRel);
    }
}
