//! Admitting calls under the server's in-flight limit, fairly across
//! connections.
//!
//! Below `max_in_flight`, every call is admitted (the connection's own
//! limit is checked before, by its slots). At the limit, a call is still
//! admitted if its connection holds fewer calls than its **fair share**,
//! `max_in_flight / connections with calls in flight`; a connection at or
//! over its share is answered status 7. So a few connections that fill the
//! server can't lock everyone else out: a new client is served while they
//! hold their calls, and the hogs get no new call until they are back
//! under their share. The server may then hold more than `max_in_flight`
//! calls, but never more than twice as many (the shares add up to the
//! limit).

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The server-wide count of calls in flight.
#[derive(Debug)]
pub(crate) struct Admission {
    limit: usize,
    in_flight: AtomicUsize,
    /// Connections with at least one call in flight (detached one-way calls
    /// of closed connections included).
    busy_connections: AtomicUsize,
    /// Set once someone waits for the server to become idle (a drain):
    /// only then does the last call's end notify.
    idle_wanted: AtomicBool,
    idle: Notify,
}

impl Admission {
    pub fn new(limit: usize) -> Admission {
        Admission {
            limit,
            in_flight: AtomicUsize::new(0),
            busy_connections: AtomicUsize::new(0),
            idle_wanted: AtomicBool::new(false),
            idle: Notify::new(),
        }
    }

    /// Counts a call of a connection that already holds `connection_calls`
    /// others (this one not included), if it is admitted.
    pub fn try_start(&self, connection_calls: usize) -> bool {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if before < self.limit {
            return true;
        }
        // At the limit: the connection's fair share. It has reserved its
        // slot already, so it counts among the busy connections.
        let busy = self.busy_connections.load(Ordering::Acquire).max(1);
        if connection_calls < self.limit / busy {
            return true;
        }
        self.end();
        false
    }

    /// A call admitted by [`try_start`](Self::try_start) ended.
    pub fn end(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1
            && self.idle_wanted.load(Ordering::Acquire)
        {
            self.idle.notify_waiters();
        }
    }

    /// A connection got its first call in flight.
    pub fn connection_busy(&self) {
        self.busy_connections.fetch_add(1, Ordering::AcqRel);
    }

    /// A connection's last call in flight ended.
    pub fn connection_idle(&self) {
        self.busy_connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Waits until no call is in flight.
    pub async fn wait_idle(&self) {
        self.idle_wanted.store(true, Ordering::Release);
        loop {
            let mut notified = pin!(self.idle.notified());
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `connections` connections holding `calls` calls each.
    fn filled(limit: usize, connections: usize, calls: usize) -> Admission {
        let admission = Admission::new(limit);
        for _ in 0..connections {
            admission.connection_busy();
            for held in 0..calls {
                assert!(admission.try_start(held));
            }
        }
        admission
    }

    #[test]
    fn below_the_limit_every_call_is_admitted() {
        let admission = filled(10, 1, 9);
        admission.connection_busy();
        assert!(admission.try_start(0));
        assert_eq!(admission.in_flight(), 10);
    }

    #[test]
    fn at_the_limit_a_connection_under_its_fair_share_is_still_admitted() {
        // 16 connections hold 1024 calls each: the server is full.
        let admission = filled(16 * 1024, 16, 1024);
        assert!(!admission.try_start(1024), "a hog gets status 7");
        // A 17th connection: its share is 16384 / 17 = 963.
        admission.connection_busy();
        for held in 0..963 {
            assert!(admission.try_start(held), "call {held} of the newcomer");
        }
        assert!(!admission.try_start(963), "past its share");
        assert!(!admission.try_start(1023), "a hog still gets status 7");
        assert!(admission.in_flight() <= 2 * 16 * 1024);
    }
}
