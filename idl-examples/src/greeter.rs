//! An implementation of `hello.Greeter`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use courier::server::ItemSender;
use courier::{CallContext, Metadata, RpcError};
use tokio::sync::watch;

use crate::hello::greeter::{CountError, Greeter, SayHelloError};
use crate::hello::{EmptyName, TooMany};

/// `count` counts to at most this, then ends with `TooMany`.
pub const COUNT_MAX: u32 = 100;

/// At most this many events are kept: the most recent ones.
pub const MAX_EVENTS: usize = 1024;
/// At most this many bytes of events are kept, all events together; an
/// event longer than this alone is not kept at all.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Greets (sending back how many greetings it has made as the response
/// metadata `greetings`), sleeps, and records the events it is sent (the
/// most recent [`MAX_EVENTS`], at most [`MAX_EVENT_BYTES`] of them: a
/// server keeps what it is sent within a bound, however many clients
/// send).
#[derive(Debug)]
pub struct HelloGreeter {
    /// Greetings made so far.
    greetings: AtomicU64,
    events: watch::Sender<Vec<String>>,
    /// Bytes of the events kept (changed only inside `send_modify`).
    event_bytes: AtomicUsize,
    /// Events dropped to stay within the bounds.
    dropped: AtomicU64,
}

impl Default for HelloGreeter {
    fn default() -> Self {
        HelloGreeter {
            greetings: AtomicU64::new(0),
            events: watch::Sender::new(Vec::new()),
            event_bytes: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

impl HelloGreeter {
    /// Follows the events received through `notify`, in arrival order (the
    /// most recent ones; see [`MAX_EVENTS`]).
    pub fn events(&self) -> watch::Receiver<Vec<String>> {
        self.events.subscribe()
    }

    /// How many events were dropped (the oldest ones, or one too long to
    /// keep) to stay within the bounds.
    pub fn dropped_events(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Keeps `event`, dropping the oldest events past the bounds.
    fn record(&self, event: String) {
        if event.len() > MAX_EVENT_BYTES {
            tracing::debug!(bytes = event.len(), "an event too long to keep");
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.events.send_modify(|events| {
            let mut bytes = self.event_bytes.load(Ordering::Relaxed) + event.len();
            events.push(event);
            let mut dropped = 0;
            while events.len() - dropped > MAX_EVENTS || bytes > MAX_EVENT_BYTES {
                bytes -= events[dropped].len();
                dropped += 1;
            }
            events.drain(..dropped);
            self.event_bytes.store(bytes, Ordering::Relaxed);
            self.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        });
    }
}

impl Greeter for HelloGreeter {
    async fn say_hello(
        &self,
        ctx: CallContext,
        name: String,
    ) -> Result<String, RpcError<SayHelloError>> {
        if name.is_empty() {
            return Err(EmptyName {
                hint: "pass a non-empty name, e.g. \"Bob\"".into(),
            }
            .into());
        }
        let greetings = self.greetings.fetch_add(1, Ordering::Relaxed) + 1;
        let mut metadata = Metadata::new();
        metadata.insert("greetings", greetings.to_string());
        ctx.set_response_metadata(metadata)?;
        Ok(format!("Hello, {name}!"))
    }

    async fn sleep(&self, _ctx: CallContext, ms: u32) -> Result<u32, RpcError> {
        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
        Ok(ms)
    }

    async fn notify(&self, _ctx: CallContext, event: String) {
        self.record(event);
    }

    async fn count(
        &self,
        _ctx: CallContext,
        n: u32,
        interval_ms: u32,
        mut items: ItemSender<u32>,
    ) -> Result<(), RpcError<CountError>> {
        for i in 1..=n.min(COUNT_MAX) {
            if interval_ms > 0 {
                tokio::time::sleep(Duration::from_millis(u64::from(interval_ms))).await;
            }
            items.send(i).await?;
        }
        if n > COUNT_MAX {
            return Err(TooMany { max: COUNT_MAX }.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_most_recent_events_are_kept() {
        let greeter = HelloGreeter::default();
        for i in 0..MAX_EVENTS + 10 {
            greeter.record(i.to_string());
        }
        let events = greeter.events().borrow().clone();
        assert_eq!(events.len(), MAX_EVENTS);
        assert_eq!(events[0], "10");
        assert_eq!(events[MAX_EVENTS - 1], (MAX_EVENTS + 9).to_string());
        assert_eq!(greeter.dropped_events(), 10);
    }

    #[test]
    fn events_are_bounded_in_bytes() {
        let greeter = HelloGreeter::default();
        let big = "x".repeat(MAX_EVENT_BYTES / 4 + 1);
        for _ in 0..10 {
            greeter.record(big.clone());
        }
        let kept: usize = greeter.events().borrow().iter().map(String::len).sum();
        assert!(kept <= MAX_EVENT_BYTES, "{kept} bytes kept");
        assert_eq!(greeter.events().borrow().len(), 3);
        greeter.record("x".repeat(MAX_EVENT_BYTES + 1));
        assert_eq!(greeter.events().borrow().len(), 3, "too long: not kept");
        assert_eq!(greeter.dropped_events(), 8);
    }
}
