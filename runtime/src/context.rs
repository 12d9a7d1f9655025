//! The call context a server handler receives: deadline, metadata, peer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// String key/value pairs that travel with a request (PROTOCOL.md, request
/// body). Kept in arrival order; keys may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, String)>,
}

impl Metadata {
    /// No entries.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Appends an entry.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.push((key.into(), value.into()));
    }

    /// The first value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl FromIterator<(String, String)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Metadata {
            entries: iter.into_iter().collect(),
        }
    }
}

/// What a handler knows about the call it serves.
#[derive(Debug, Clone)]
pub struct CallContext {
    deadline: Option<Instant>,
    metadata: Metadata,
    peer: SocketAddr,
}

impl CallContext {
    /// A context; the runtime builds these for every request.
    pub fn new(deadline: Option<Instant>, metadata: Metadata, peer: SocketAddr) -> CallContext {
        CallContext {
            deadline,
            metadata,
            peer,
        }
    }

    /// When the caller stops waiting (from the request's timeout), if it set one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (zero once passed); `None` without one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The request's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The caller's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}
