//! Running a future so that neither a panic nor a passed deadline takes
//! its task down with it: server handlers, and the client's spawned calls.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::task::Unconstrained;
use tokio::time::{Instant, Sleep, sleep_until};

/// Why a guarded handler gave no output.
#[derive(Debug)]
pub(crate) enum Interrupted {
    /// It panicked; the panic message, if it had one.
    Panicked(String),
    /// The deadline passed; the handler was dropped.
    DeadlineExceeded,
}

/// Runs `work` to completion, catching a panic in any of its polls, and
/// dropping it when `deadline` passes.
pub(crate) fn run_guarded<F: Future>(work: F, deadline: Option<Instant>) -> Guarded<F> {
    Guarded {
        work,
        deadline: guard_deadline(deadline),
    }
}

/// The timer of [`Guarded`] for `deadline`. Not budgeted: work that spent
/// tokio's budget must still see its deadline pass (as
/// `tokio::time::timeout` makes sure).
pub(crate) fn guard_deadline(deadline: Option<Instant>) -> Option<Unconstrained<Sleep>> {
    deadline.map(|deadline| tokio::task::unconstrained(sleep_until(deadline)))
}

pin_project! {
    /// The future of [`run_guarded`]: the work itself, in place (an
    /// `async fn` would hold it twice, as its argument and as its pinned
    /// local, and move it between the two), and the deadline's timer only
    /// if there is a deadline.
    pub(crate) struct Guarded<F> {
        #[pin]
        pub(crate) work: F,
        #[pin]
        pub(crate) deadline: Option<Unconstrained<Sleep>>,
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = Result<F::Output, Interrupted>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let work = this.work;
        // The work first: an output that is ready wins over the deadline.
        match catch_unwind(AssertUnwindSafe(|| work.poll(cx))) {
            Ok(Poll::Ready(output)) => return Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => {}
            Err(payload) => {
                return Poll::Ready(Err(Interrupted::Panicked(panic_message(payload.as_ref()))));
            }
        }
        match this.deadline.as_pin_mut().map(|deadline| deadline.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(Interrupted::DeadlineExceeded)),
            _ => Poll::Pending,
        }
    }
}

/// Polls the inner future inside `catch_unwind`.
pub(crate) struct CatchUnwind<'a, F>(pub Pin<&'a mut F>);

impl<F: Future> Future for CatchUnwind<'_, F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.get_mut().0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// The message of a panic payload (`panic!("..")` gives a `&str` or a
/// `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn output_passes_through() {
        assert_eq!(run_guarded(async { 7 }, None).await.ok(), Some(7));
    }

    #[tokio::test]
    async fn a_panic_is_caught() {
        let result = run_guarded(
            async {
                tokio::task::yield_now().await;
                panic!("boom");
            },
            None,
        )
        .await;
        match result {
            Err(Interrupted::Panicked(message)) => assert_eq!(message, "boom"),
            other => panic!("expected a caught panic, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stops_the_work() {
        let deadline = Instant::now() + Duration::from_millis(100);
        let result = run_guarded(std::future::pending::<()>(), Some(deadline)).await;
        assert!(matches!(result, Err(Interrupted::DeadlineExceeded)));
    }
}
