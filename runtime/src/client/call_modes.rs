//! The call modes beyond `.await`: blocking ([`Channel::call_blocking`]),
//! future ([`Channel::spawn_call`] → [`PendingCall`]) and callback
//! ([`Channel::spawn_call_with_callback`]). Each takes a call made by a
//! generated stub (any future of a call's result).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;

use tokio::runtime::Handle;

use super::channel::Channel;
use super::pending_call::PendingCall;
use crate::catch_unwind::{CatchUnwind, panic_message};
use crate::context::{caller_deadline, with_caller_deadline};
use crate::error::{RpcError, TransportError};

impl Channel {
    /// Runs `call` to its end, blocking the calling thread: the sync call
    /// mode, for threads that may block: plain threads, and the threads of
    /// [`tokio::task::spawn_blocking`].
    ///
    /// The call is driven with the runtime the channel was created on
    /// (which must be a multi-thread runtime, or one whose `block_on` is
    /// running on another thread: the channel's connection tasks run
    /// there). The call's own timeout bounds the wait.
    ///
    /// On a thread that runs async code (a runtime's worker thread, the
    /// thread of a runtime's `block_on`, or one inside
    /// `tokio::task::block_in_place`), blocking would stall the runtime (or
    /// deadlock a single-threaded one), so this fails at once with
    /// [`TransportError::BlockingInAsyncContext`] without running `call`.
    /// So does a plain thread that holds a runtime's
    /// [`EnterGuard`](tokio::runtime::EnterGuard), which tokio's public API
    /// cannot tell from a `block_on` thread: drop the guard first.
    ///
    /// ```text
    /// // On a plain thread, with a generated client on `channel`:
    /// let greeter = hello::GreeterClient::new(channel.clone());
    /// let greeting = channel.call_blocking(greeter.say_hello("Bob"))?;
    /// ```
    pub fn call_blocking<T, E>(
        &self,
        call: impl Future<Output = Result<T, RpcError<E>>> + Send,
    ) -> Result<T, RpcError<E>> {
        if blocking_would_stall_a_runtime() {
            return Err(TransportError::BlockingInAsyncContext.into());
        }
        self.runtime().block_on(call)
    }

    /// Starts `call` on its own task and returns its handle at once: the
    /// future call mode.
    ///
    /// The handle can be polled ([`PendingCall::is_done`]), awaited, or
    /// waited for from a plain thread ([`PendingCall::wait`]); dropping it
    /// cancels the call. A panic in the call's task comes back as
    /// [`TransportError::CallPanicked`]. A deadline inherited from the call
    /// a server handler serves is carried over to the new task.
    pub fn spawn_call<T, E>(
        &self,
        call: impl Future<Output = Result<T, RpcError<E>>> + Send + 'static,
    ) -> PendingCall<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let task = self
            .runtime()
            .spawn(with_caller_deadline(caller_deadline(), call));
        PendingCall::new(task, self.runtime().clone())
    }

    /// Starts `call` on its own task and runs `callback` with its outcome:
    /// the callback call mode.
    ///
    /// `callback` runs exactly once, on a runtime thread (keep it short or
    /// hand the work off): with the reply, the declared error, a status
    /// (e.g. the timeout's status 6), or a transport failure. If the call
    /// panics it gets [`TransportError::CallPanicked`]; if its task is
    /// stopped first (the runtime shuts down) it gets
    /// [`TransportError::CallAborted`].
    pub fn spawn_call_with_callback<T, E>(
        &self,
        call: impl Future<Output = Result<T, RpcError<E>>> + Send + 'static,
        callback: impl FnOnce(Result<T, RpcError<E>>) + Send + 'static,
    ) where
        T: Send + 'static,
        E: Send + 'static,
    {
        let mut once = CallbackOnce::new(callback);
        let deadline = caller_deadline();
        let task = async move {
            let call = pin!(with_caller_deadline(deadline, call));
            let result = match CatchUnwind(call).await {
                Ok(result) => result,
                Err(payload) => Err(RpcError::Transport(TransportError::CallPanicked(
                    panic_message(payload.as_ref()),
                ))),
            };
            once.run(result);
        };
        // The handle is not needed: the callback reports the outcome.
        drop(self.runtime().spawn(task));
    }
}

/// Whether blocking the current thread would stall async code: true on a
/// runtime's worker thread (and on the thread that drives a current-thread
/// runtime), and in a multi-thread runtime's `block_on`, which has the
/// runtime's handle but runs no task. False on plain threads and in
/// `spawn_blocking` closures (tokio runs those as tasks, on threads that
/// may block), where tokio's own blocking calls are allowed too.
pub(super) fn blocking_would_stall_a_runtime() -> bool {
    if tokio::runtime::worker_index().is_some() {
        return true;
    }
    Handle::try_current().is_ok() && tokio::task::try_id().is_none()
}

/// Runs the callback once: with the outcome, or, if dropped before that
/// (the task was stopped), with [`TransportError::CallAborted`].
struct CallbackOnce<F, T, E>
where
    F: FnOnce(Result<T, RpcError<E>>),
{
    callback: Option<F>,
    _outcome: PhantomData<fn(T, E)>,
}

impl<F, T, E> CallbackOnce<F, T, E>
where
    F: FnOnce(Result<T, RpcError<E>>),
{
    fn new(callback: F) -> Self {
        CallbackOnce {
            callback: Some(callback),
            _outcome: PhantomData,
        }
    }

    fn run(&mut self, result: Result<T, RpcError<E>>) {
        if let Some(callback) = self.callback.take() {
            callback(result);
        }
    }
}

impl<F, T, E> Drop for CallbackOnce<F, T, E>
where
    F: FnOnce(Result<T, RpcError<E>>),
{
    fn drop(&mut self) {
        self.run(Err(TransportError::CallAborted.into()));
    }
}
