//! Running a future so that neither a panic nor a passed deadline takes
//! its task down with it: server handlers, and the client's spawned calls.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use tokio::time::Instant;

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
pub(crate) async fn run_guarded<F: Future>(
    work: F,
    deadline: Option<Instant>,
) -> Result<F::Output, Interrupted> {
    let work = pin!(work);
    let caught = CatchUnwind(work);
    let result = match deadline {
        Some(deadline) => match tokio::time::timeout_at(deadline, caught).await {
            Ok(result) => result,
            Err(_) => return Err(Interrupted::DeadlineExceeded),
        },
        None => caught.await,
    };
    result.map_err(|payload| Interrupted::Panicked(panic_message(payload.as_ref())))
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
