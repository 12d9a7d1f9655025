//! The call context a server handler receives (deadline, metadata, peer,
//! service and method), the [`Metadata`] of a request, and deadline
//! cascading ([`current_deadline`]).

mod cascade;
mod metadata;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::Utf8Bytes;
use crate::tls::PeerIdentity;

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
    /// Who the caller is, as a server interceptor established it.
    principal: Option<Arc<str>>,
    /// The client certificate's identity (mutual TLS); shared by every call
    /// of the connection, so cloning it costs a refcount.
    peer_identity: Option<Arc<PeerIdentity>>,
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
            principal: None,
            peer_identity: None,
        }
    }

    /// This context with the client's certificate identity (the runtime
    /// sets it under mutual TLS; this is for tests of handlers and
    /// interceptors).
    pub fn with_peer_identity(mut self, identity: Arc<PeerIdentity>) -> CallContext {
        self.peer_identity = Some(identity);
        self
    }

    /// Sets the connection's certificate identity, if it has one.
    pub(crate) fn set_peer_identity(&mut self, identity: Option<Arc<PeerIdentity>>) {
        self.peer_identity = identity;
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
            principal: None,
            peer_identity: None,
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

    /// The client's identity from the certificate it presented, on a
    /// server with mutual TLS (see [`crate::tls`]); `None` on plaintext
    /// and server-only TLS connections.
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.peer_identity.as_deref()
    }

    /// The wire name of the service called (`hello.Greeter`).
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The wire name of the method called (`say_hello`).
    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    /// Who the caller is, if a server interceptor authenticated it (e.g.
    /// [`BearerTokenAuth`](crate::auth::BearerTokenAuth)). Unlike metadata,
    /// a client can't set it.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// Records who the caller is (for server interceptors that
    /// authenticate).
    pub fn set_principal(&mut self, principal: impl Into<Arc<str>>) {
        self.principal = Some(principal.into());
    }
}
