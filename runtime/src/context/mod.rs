//! The call context a server handler receives (deadline, metadata, peer,
//! service and method), the [`Metadata`] of a request, and deadline
//! cascading ([`current_deadline`]).

mod cascade;
mod metadata;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::protocol::Utf8Bytes;

pub use cascade::current_deadline;
pub(crate) use cascade::{caller_deadline, cap_timeout, with_caller_deadline};
pub use metadata::Metadata;

/// What a handler (and a server interceptor) knows about the call it serves.
#[derive(Debug, Clone)]
pub struct CallContext {
    deadline: Option<Instant>,
    metadata: Metadata,
    peer: SocketAddr,
    service: &'static str,
    method: Utf8Bytes,
}

impl CallContext {
    /// A context; the runtime builds these for every request. (Service and
    /// method are empty in a context built this way.)
    pub fn new(deadline: Option<Instant>, metadata: Metadata, peer: SocketAddr) -> CallContext {
        CallContext {
            deadline,
            metadata,
            peer,
            service: "",
            method: Utf8Bytes::default(),
        }
    }

    /// The context of a request the server routed to `service`.
    pub(crate) fn for_call(
        deadline: Option<Instant>,
        metadata: Metadata,
        peer: SocketAddr,
        service: &'static str,
        method: Utf8Bytes,
    ) -> CallContext {
        CallContext {
            deadline,
            metadata,
            peer,
            service,
            method,
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

    /// The request's metadata, to change (a server interceptor adding what
    /// it learned, e.g. the authenticated user).
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// The caller's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The wire name of the service called (`hello.Greeter`).
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The wire name of the method called (`say_hello`).
    pub fn method(&self) -> &str {
        self.method.as_str()
    }
}
