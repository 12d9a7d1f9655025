//! The client's side of PROTOCOL.md's heartbeats, as a timer the
//! connection polls: ping when the link has been quiet for an interval,
//! and give the connection up when the server has sent no frame for three.
//!
//! Timestamps are updated on every read and write; the timer is not reset
//! then (that would touch the timer wheel per frame): when it fires, the
//! next wake-up is computed from the timestamps. Nor is it polled on every
//! pass of the connection: once armed (polled with the connection task's
//! waker), it wakes that task when it fires, and until then a pass only
//! reads its state (`is_elapsed`, one atomic load) instead of polling it
//! (which costs hundreds of instructions a pass).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Intervals of silence from the server after which the connection is
/// dropped (PROTOCOL.md: three).
pub(crate) const DEAD_AFTER_INTERVALS: u32 = 3;
/// Longer intervals are cut to this, so deadlines never overflow.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// What the connection should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Send a ping.
    Ping,
    /// Nothing has come from the server for this long: drop the connection.
    Dead(Duration),
}

/// The heartbeat state of one connection.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    interval: Duration,
    last_sent: Instant,
    last_received: Instant,
    last_ping: Option<Instant>,
    /// Boxed once per connection: `Sleep` is not `Unpin`, and the
    /// connection is a hand-written future that is moved before it is
    /// polled.
    timer: Pin<Box<Sleep>>,
    /// The timer has been polled since it was last set, so it holds the
    /// connection task's waker.
    armed: bool,
}

impl Heartbeat {
    /// Starts with the connection (counts as both sent and received).
    pub fn new(interval: Duration, now: Instant) -> Heartbeat {
        // A zero interval would ping in a busy loop.
        let interval = interval.clamp(Duration::from_millis(1), MAX_INTERVAL);
        Heartbeat {
            interval,
            last_sent: now,
            last_received: now,
            last_ping: None,
            timer: Box::pin(tokio::time::sleep_until(now + interval)),
            armed: false,
        }
    }

    /// Bytes went out.
    pub fn sent(&mut self, now: Instant) {
        self.last_sent = now;
    }

    /// Bytes came in.
    pub fn received(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// Polls the timer; when it fires, decides, re-arms, and says what to do.
    ///
    /// Always from the same task: an armed timer is not polled again until
    /// it fires, and wakes the task it was armed from.
    pub fn poll_beat(&mut self, cx: &mut Context<'_>) -> Poll<Beat> {
        if self.armed && !self.timer.is_elapsed() {
            return Poll::Pending;
        }
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                self.armed = true;
                return Poll::Pending;
            }
            let now = Instant::now();
            let (beat, next) = self.decide(now);
            self.timer.as_mut().reset(next);
            self.armed = false;
            match beat {
                Some(Beat::Ping) => {
                    self.last_ping = Some(now);
                    return Poll::Ready(Beat::Ping);
                }
                Some(dead @ Beat::Dead(_)) => return Poll::Ready(dead),
                // Polling again registers the waker for the new deadline.
                None => {}
            }
        }
    }

    /// What to do at `now`, and when to look again.
    fn decide(&self, now: Instant) -> (Option<Beat>, Instant) {
        let silent_for = now.saturating_duration_since(self.last_received);
        let dead_at = self.last_received + self.interval * DEAD_AFTER_INTERVALS;
        if now >= dead_at {
            return (Some(Beat::Dead(silent_for)), now + self.interval);
        }
        // Quiet in either direction for an interval: ping (PROTOCOL.md asks
        // for it after an interval without sending; pinging when nothing
        // came back either lets a busy client tell a slow server from a
        // dead one). At most one ping per interval.
        let quiet_since = self.last_sent.min(self.last_received);
        let ping_due = match self.last_ping {
            Some(ping) => (quiet_since + self.interval).max(ping + self.interval),
            None => quiet_since + self.interval,
        };
        if now >= ping_due {
            return (Some(Beat::Ping), (now + self.interval).min(dead_at));
        }
        (None, ping_due.min(dead_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Duration = Duration::from_millis(100);

    #[tokio::test(start_paused = true)]
    async fn a_quiet_link_pings_once_per_interval() {
        let start = Instant::now();
        let mut beat = Heartbeat::new(I, start);
        assert_eq!(beat.decide(start + I / 2), (None, start + I));
        assert_eq!(beat.decide(start + I).0, Some(Beat::Ping));
        beat.last_ping = Some(start + I);
        beat.sent(start + I);
        // The pong arrives: no ping until an interval later.
        beat.received(start + I + I / 10);
        let (action, next) = beat.decide(start + I + I / 5);
        assert_eq!(action, None);
        assert_eq!(next, start + 2 * I);
    }

    #[tokio::test(start_paused = true)]
    async fn three_silent_intervals_are_dead_even_while_sending() {
        let start = Instant::now();
        let mut beat = Heartbeat::new(I, start);
        for step in 1..30 {
            beat.sent(start + I / 10 * step);
        }
        let (action, _) = beat.decide(start + 3 * I);
        assert_eq!(action, Some(Beat::Dead(3 * I)));
        // Still alive just before.
        let just_before = beat.decide(start + 3 * I - Duration::from_millis(1)).0;
        assert!(!matches!(just_before, Some(Beat::Dead(_))));
    }

    async fn poll_once(beat: &mut Heartbeat) -> Poll<Beat> {
        std::future::poll_fn(|cx| Poll::Ready(beat.poll_beat(cx))).await
    }

    #[tokio::test(start_paused = true)]
    async fn an_armed_timer_is_only_looked_at_until_it_fires() {
        let mut beat = Heartbeat::new(I, Instant::now());
        assert_eq!(poll_once(&mut beat).await, Poll::Pending);
        assert!(beat.armed);
        tokio::time::advance(I / 2).await;
        assert_eq!(poll_once(&mut beat).await, Poll::Pending);
        // Not polled since it was armed, it still wakes the task.
        let b = std::future::poll_fn(|cx| beat.poll_beat(cx)).await;
        assert_eq!(b, Beat::Ping);
        assert!(
            !beat.armed,
            "fired, decided, and set again: not armed until polled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_fires_pings_then_death() {
        let mut beat = Heartbeat::new(I, Instant::now());
        let mut seen = Vec::new();
        while seen.len() < 4 {
            let b = std::future::poll_fn(|cx| beat.poll_beat(cx)).await;
            seen.push(b);
            if matches!(b, Beat::Dead(_)) {
                break;
            }
            // Our ping was written.
            beat.sent(Instant::now());
        }
        assert_eq!(seen[..2], [Beat::Ping, Beat::Ping]);
        assert!(matches!(seen.last(), Some(Beat::Dead(d)) if *d >= 3 * I));
    }
}
