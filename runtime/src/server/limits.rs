//! The limits a connection's reader enforces besides frame size and calls
//! in flight: the read deadlines (first frame, finishing a frame, idle),
//! all kept by one timer, and the refusal of a connection over the
//! server's connection limit.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::respond::Responder;
use crate::error::StatusCode;

/// How long a refused connection gets to take its answer.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a refused connection's input is drained after the answer, so
/// that closing does not reset the connection before the answer is read.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);
/// At most this much input is drained from a refused connection.
const REFUSAL_LINGER_MAX_BYTES: usize = 64 * 1024;
/// At most this many refused connections linger at once; beyond it they
/// are closed at once, so a connection flood can't pile up tasks.
pub(crate) const MAX_LINGERING_REFUSALS: usize = 64;

/// The read deadlines of a connection; `None` disables one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadTimeouts {
    /// From accept to the end of the first whole frame.
    pub first_frame: Option<Duration>,
    /// From a frame's first byte to its last.
    pub frame: Option<Duration>,
    /// From the last bytes read (three heartbeat intervals).
    pub idle: Option<Duration>,
}

/// Which read deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stall {
    /// No whole frame arrived in time after the connection was accepted.
    FirstFrame,
    /// A frame started but did not arrive whole in time.
    Frame,
    /// Nothing arrived for three heartbeat intervals.
    Idle,
}

impl Stall {
    /// Why the connection is closed, for the debug log.
    pub fn describe(self) -> &'static str {
        match self {
            Stall::FirstFrame => "no whole first frame before the first-frame deadline",
            Stall::Frame => "a frame did not arrive whole before the frame deadline",
            Stall::Idle => "no frame for three heartbeat intervals",
        }
    }
}

/// What the read loop knows about time: when the connection was accepted,
/// when bytes last came, and when the frame being read began.
///
/// The loop keeps one timer. It is armed at [`next_deadline`]; the state
/// changes that move the deadline later (bytes arrive, a frame ends) do
/// not touch it: when it fires early, [`check`] says where to push it. Only
/// a change that can move the deadline earlier (a frame begins) re-arms it,
/// and only if the new deadline is earlier than the armed one.
///
/// [`next_deadline`]: ReadClock::next_deadline
/// [`check`]: ReadClock::check
#[derive(Debug, Clone)]
pub(crate) struct ReadClock {
    timeouts: ReadTimeouts,
    accepted: Instant,
    last_read: Instant,
    /// Whether a whole frame has arrived.
    had_frame: bool,
    /// When the frame being read began (`None` between frames).
    frame_started: Option<Instant>,
}

/// What [`ReadClock::check`] found when the timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// A deadline passed.
    Expired(Stall),
    /// Nothing passed yet: re-arm the timer at this instant.
    RearmAt(Instant),
    /// No deadline applies any more.
    Disarm,
}

impl ReadClock {
    /// The clock of a connection accepted at `now`.
    pub fn new(timeouts: ReadTimeouts, now: Instant) -> ReadClock {
        ReadClock {
            timeouts,
            accepted: now,
            last_read: now,
            had_frame: false,
            frame_started: None,
        }
    }

    /// Whether any deadline is configured (else the timer is never used).
    pub fn enabled(&self) -> bool {
        let t = &self.timeouts;
        t.first_frame.is_some() || t.frame.is_some() || t.idle.is_some()
    }

    /// Notes bytes that arrived at `now`.
    pub fn read(&mut self, now: Instant) {
        self.last_read = now;
    }

    /// The reader did not read for `pause` through no fault of the peer:
    /// every deadline moves that much later.
    pub fn paused_for(&mut self, pause: Duration) {
        self.accepted = saturating_add(self.accepted, pause);
        self.last_read = saturating_add(self.last_read, pause);
        self.frame_started = self
            .frame_started
            .map(|started| saturating_add(started, pause));
    }

    /// Notes what the decoder left after the bytes read last: whether it
    /// decoded any frame, and whether a frame is now part-way in. Returns
    /// `true` when a new frame began, which can move the deadline earlier.
    pub fn decoded(&mut self, any_frame: bool, mid_frame: bool) -> bool {
        if any_frame {
            self.had_frame = true;
        }
        if !mid_frame {
            self.frame_started = None;
            return false;
        }
        // A frame part-way in after whole frames were taken began in the
        // last read; so did one part-way in where there was none.
        if any_frame || self.frame_started.is_none() {
            self.frame_started = Some(self.last_read);
            return true;
        }
        false
    }

    /// The earliest deadline that applies now, and which it is.
    pub fn next_deadline(&self) -> Option<(Instant, Stall)> {
        let t = &self.timeouts;
        let candidates = [
            t.first_frame
                .filter(|_| !self.had_frame)
                .map(|timeout| (self.accepted, timeout, Stall::FirstFrame)),
            t.frame
                .zip(self.frame_started)
                .map(|(timeout, started)| (started, timeout, Stall::Frame)),
            t.idle.map(|timeout| (self.last_read, timeout, Stall::Idle)),
        ];
        candidates
            .into_iter()
            .flatten()
            .map(|(from, timeout, stall)| (saturating_add(from, timeout), stall))
            .min_by_key(|(at, _)| *at)
    }

    /// What to do when the timer fires at `now`.
    pub fn check(&self, now: Instant) -> Check {
        match self.next_deadline() {
            Some((at, stall)) if at <= now => Check::Expired(stall),
            Some((at, _)) => Check::RearmAt(at),
            None => Check::Disarm,
        }
    }
}

/// `from + timeout`, or far in the future if that overflows.
fn saturating_add(from: Instant, timeout: Duration) -> Instant {
    from.checked_add(timeout)
        .unwrap_or_else(|| from + Duration::from_secs(100 * 365 * 24 * 60 * 60))
}

/// A moment far enough away that a timer armed at it never fires.
pub(crate) fn far_future() -> Instant {
    saturating_add(
        Instant::now(),
        Duration::from_secs(100 * 365 * 24 * 60 * 60),
    )
}

/// Answers a connection over the server's limit: one status 7 frame with
/// request id 0 (which no call uses), then the write side is shut, input
/// is drained for a moment so the answer is not lost to a reset, and the
/// connection is closed. With `linger` false it is closed right after the
/// answer is written.
pub(crate) async fn refuse_connection<S>(mut stream: S, limit: usize, linger: bool)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let message = format!(
        "the server has too many connections (limit {limit}); try again later or another instance"
    );
    let frame = Responder::new(0, 0, u32::MAX).status(StatusCode::Overloaded, &message);
    let written = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        stream.write_all(&frame).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) || !linger {
        return;
    }
    let mut scratch = [0u8; 1024];
    let mut total = 0usize;
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        while total < REFUSAL_LINGER_MAX_BYTES {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn clock() -> (ReadClock, Instant) {
        let now = Instant::now();
        let timeouts = ReadTimeouts {
            first_frame: Some(S(10)),
            frame: Some(S(30)),
            idle: Some(S(90)),
        };
        (ReadClock::new(timeouts, now), now)
    }

    #[test]
    fn the_first_frame_deadline_applies_until_a_frame_arrives() {
        let (mut clock, t0) = clock();
        assert_eq!(clock.next_deadline(), Some((t0 + S(10), Stall::FirstFrame)));
        assert_eq!(clock.check(t0 + S(10)), Check::Expired(Stall::FirstFrame));
        clock.read(t0 + S(1));
        assert!(!clock.decoded(true, false));
        assert_eq!(clock.next_deadline(), Some((t0 + S(91), Stall::Idle)));
        assert_eq!(clock.check(t0 + S(10)), Check::RearmAt(t0 + S(91)));
    }

    #[test]
    fn a_frame_begun_must_end_in_time_even_if_bytes_trickle() {
        let (mut clock, t0) = clock();
        clock.read(t0 + S(1));
        assert!(!clock.decoded(true, false));
        clock.read(t0 + S(2));
        assert!(clock.decoded(false, true), "a frame began");
        assert_eq!(clock.next_deadline(), Some((t0 + S(32), Stall::Frame)));
        // More bytes of the same frame do not move its deadline.
        clock.read(t0 + S(20));
        assert!(!clock.decoded(false, true));
        assert_eq!(clock.check(t0 + S(32)), Check::Expired(Stall::Frame));
        // It ends, and the next one begins in the same read.
        clock.read(t0 + S(25));
        assert!(clock.decoded(true, true));
        assert_eq!(clock.next_deadline(), Some((t0 + S(55), Stall::Frame)));
        clock.read(t0 + S(26));
        assert!(!clock.decoded(true, false));
        assert_eq!(clock.next_deadline(), Some((t0 + S(116), Stall::Idle)));
    }

    #[test]
    fn a_pause_moves_every_deadline_later() {
        let (mut clock, t0) = clock();
        clock.read(t0 + S(1));
        assert!(clock.decoded(false, true), "a frame began");
        assert_eq!(clock.next_deadline(), Some((t0 + S(10), Stall::FirstFrame)));
        clock.paused_for(S(100));
        assert_eq!(
            clock.next_deadline(),
            Some((t0 + S(110), Stall::FirstFrame))
        );
        assert!(!clock.decoded(true, false));
        assert_eq!(clock.next_deadline(), Some((t0 + S(191), Stall::Idle)));
    }

    #[test]
    fn disabled_deadlines_never_fire() {
        let now = Instant::now();
        let none = ReadTimeouts {
            first_frame: None,
            frame: None,
            idle: None,
        };
        let mut clock = ReadClock::new(none, now);
        assert!(!clock.enabled());
        clock.decoded(false, true);
        assert_eq!(clock.check(now + S(1_000_000)), Check::Disarm);
    }
}
