//! [`PendingCall`]: the handle of a call started with
//! [`Channel::spawn_call`](super::Channel::spawn_call).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::Handle;
use tokio::task::{JoinError, JoinHandle};

use crate::catch_unwind::panic_message;
use crate::error::{RpcError, TransportError};

/// A call running on its own task: poll it with [`is_done`](Self::is_done),
/// `.await` it, or [`wait`](Self::wait) for it from a plain thread.
///
/// Dropping it before the call is done cancels the call: its task is
/// stopped, which drops the call's future, which tells the server (a cancel
/// frame) and frees its entry in the pending map.
#[must_use = "dropping a PendingCall cancels the call"]
pub struct PendingCall<T, E> {
    task: JoinHandle<Result<T, RpcError<E>>>,
    runtime: Handle,
}

impl<T, E> std::fmt::Debug for PendingCall<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCall")
            .field("done", &self.is_done())
            .finish()
    }
}

impl<T, E> PendingCall<T, E> {
    pub(super) fn new(task: JoinHandle<Result<T, RpcError<E>>>, runtime: Handle) -> Self {
        PendingCall { task, runtime }
    }

    /// Has the call finished (with any outcome)? Never blocks.
    pub fn is_done(&self) -> bool {
        self.task.is_finished()
    }

    /// Blocks the calling thread until the call is done (its own timeout
    /// bounds the wait), driving it with the runtime the channel was created
    /// on. For the threads that may block: plain threads, and those of
    /// [`tokio::task::spawn_blocking`].
    ///
    /// On a thread that runs async code this would stall the runtime, so it
    /// fails at once with [`TransportError::BlockingInAsyncContext`] (the
    /// same rule as [`Channel::call_blocking`](super::Channel::call_blocking));
    /// as the handle is consumed, the call is cancelled: `.await` the handle
    /// there instead.
    pub fn wait(mut self) -> Result<T, RpcError<E>> {
        if super::call_modes::blocking_would_stall_a_runtime() {
            return Err(TransportError::BlockingInAsyncContext.into());
        }
        let runtime = self.runtime.clone();
        runtime.block_on(&mut self)
    }

    /// Cancels the call now (as dropping the handle does).
    pub fn cancel(self) {
        drop(self);
    }
}

impl<T, E> Future for PendingCall<T, E> {
    type Output = Result<T, RpcError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.task)
            .poll(cx)
            .map(|joined| joined.unwrap_or_else(|e| Err(task_failed(e).into())))
    }
}

impl<T, E> Drop for PendingCall<T, E> {
    fn drop(&mut self) {
        // A no-op once the task has finished.
        self.task.abort();
    }
}

/// The error of a call whose task did not finish normally.
pub(super) fn task_failed(error: JoinError) -> TransportError {
    match error.try_into_panic() {
        Ok(payload) => TransportError::CallPanicked(panic_message(payload.as_ref())),
        Err(_) => TransportError::CallAborted,
    }
}
