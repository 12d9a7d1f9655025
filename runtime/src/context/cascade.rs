//! Deadline cascading: the deadline of the call a server handler serves is
//! kept in a task-local while the handler runs, and every call the handler
//! makes through a [`Channel`](crate::client::Channel) is capped at the
//! time that is left. So a chain A → B → C gives up together, without the
//! user threading the deadline by hand.
//!
//! Cancellation cascades without help: when A's caller goes away, A's
//! handler task is stopped, which drops its call to B, whose guard sends B
//! the cancel frame.
//!
//! Task-locals do not follow `tokio::spawn`: a handler that spawns its own
//! task and calls from there loses the cap (the runtime's `spawn_call`
//! and `spawn_call_with_callback` carry it over).

use std::future::Future;
use std::time::Duration;

use tokio::task::futures::TaskLocalFuture;
use tokio::time::Instant;

tokio::task_local! {
    /// The deadline of the call being served on this task (`None`: the
    /// caller set no timeout).
    static CALLER_DEADLINE: Option<Instant>;
}

/// The deadline of the call the current task serves, if it is a server
/// handler (or a call spawned from one) and its caller set a timeout.
pub fn current_deadline() -> Option<std::time::Instant> {
    caller_deadline().map(Instant::into_std)
}

/// The inherited deadline, in tokio's clock.
pub(crate) fn caller_deadline() -> Option<Instant> {
    CALLER_DEADLINE
        .try_with(|deadline| *deadline)
        .ok()
        .flatten()
}

/// Runs `work` with `deadline` as the inherited deadline.
pub(crate) fn with_caller_deadline<F: Future>(
    deadline: Option<Instant>,
    work: F,
) -> TaskLocalFuture<Option<Instant>, F> {
    CALLER_DEADLINE.scope(deadline, work)
}

/// Caps a call's timeout at what is left of the inherited deadline.
/// `Some(Duration::ZERO)` means the deadline has already passed.
pub(crate) fn cap_timeout(timeout: Option<Duration>) -> Option<Duration> {
    match caller_deadline() {
        None => timeout,
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            Some(timeout.map_or(left, |timeout| timeout.min(left)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_cap_applies_inside_the_scope_only() {
        let ten = Some(Duration::from_secs(10));
        assert_eq!(cap_timeout(ten), ten);
        assert_eq!(cap_timeout(None), None);
        let deadline = Instant::now() + Duration::from_secs(2);
        with_caller_deadline(Some(deadline), async {
            assert_eq!(cap_timeout(ten), Some(Duration::from_secs(2)));
            assert_eq!(cap_timeout(None), Some(Duration::from_secs(2)));
            assert_eq!(
                cap_timeout(Some(Duration::from_secs(1))),
                Some(Duration::from_secs(1))
            );
            tokio::time::advance(Duration::from_secs(3)).await;
            assert_eq!(cap_timeout(ten), Some(Duration::ZERO));
        })
        .await;
        with_caller_deadline(None, async {
            assert_eq!(cap_timeout(ten), ten);
            assert_eq!(current_deadline(), None);
        })
        .await;
    }
}
