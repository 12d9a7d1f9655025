//! The call context a server handler receives (deadline, metadata, peer,
//! service and method), the [`Metadata`] of a request, and deadline
//! cascading ([`current_deadline`]).

mod cascade;
mod metadata;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::Utf8Bytes;
use crate::server::ResponseMetadataSlot;
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
    /// Where response metadata goes: the call's slot on its connection;
    /// `None` for one-way calls and contexts built outside a server.
    response_metadata: Option<ResponseMetadataSlot>,
}

/// Why [`CallContext::set_response_metadata`] did not take the metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseMetadataError {
    /// More entries than the server's metadata limit
    /// ([`ServerBuilder::max_metadata`](crate::server::ServerBuilder::max_metadata),
    /// the same limit as for requests; at most 65535).
    #[error("response metadata has {count} entries; at most {max} can be sent")]
    TooManyEntries {
        /// The entries given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Keys and values add up to more bytes than the server's metadata
    /// limit, one key or value is longer than 65535 bytes, or the frame
    /// would be larger than the server's frame size limit.
    #[error("response metadata takes {bytes} bytes; at most {max} can be sent")]
    TooLarge {
        /// The bytes given (all keys and values, or the one too long).
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The call's answer is already on its way, or the call was cancelled,
    /// stopped at its deadline, or ended: the metadata can no longer go
    /// before the answer.
    #[error(
        "the call has already been answered or stopped: response metadata can't be sent any more"
    )]
    AlreadyAnswered,
    /// The context is not the context of a call that gets an answer: a
    /// one-way call's, or one built outside a server (tests).
    #[error("this call sends no answer: there is nothing to send response metadata with")]
    NoAnswer,
}

impl From<ResponseMetadataError> for crate::error::Status {
    /// Status 8 (internal) with the error's text: a handler that can't send
    /// the metadata it meant to send failed.
    fn from(error: ResponseMetadataError) -> crate::error::Status {
        crate::error::Status::internal(error.to_string())
    }
}

impl<E> From<ResponseMetadataError> for crate::error::RpcError<E> {
    fn from(error: ResponseMetadataError) -> crate::error::RpcError<E> {
        crate::error::RpcError::Status(error.into())
    }
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
            response_metadata: None,
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
            response_metadata: None,
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

    /// Sets the metadata sent back to the caller with this call's answer
    /// (one response metadata frame, message type 10, just before the
    /// answer, whatever the answer is: a result, a declared error or a
    /// status, a deadline's status 6 included). A later call replaces what
    /// an earlier one set. The caller reads it with
    /// [`ResponseMetadataCapture`](crate::client::ResponseMetadataCapture).
    ///
    /// The server's metadata limits apply
    /// ([`ServerBuilder::max_metadata`](crate::server::ServerBuilder::max_metadata):
    /// 64 entries and 8 KiB of keys and values by default), and the bytes
    /// are charged to the connection until they are sent. Fails once the
    /// call is answered or stopped, and on one-way calls; with `?` in a
    /// handler the error becomes status 8.
    ///
    /// ```text
    /// let mut metadata = Metadata::new();
    /// metadata.insert("served-by", "eu-west-1a");
    /// ctx.set_response_metadata(metadata)?;
    /// ```
    pub fn set_response_metadata(&self, metadata: Metadata) -> Result<(), ResponseMetadataError> {
        match &self.response_metadata {
            Some(slot) => slot.set(metadata),
            None => Err(ResponseMetadataError::NoAnswer),
        }
    }

    /// Lets the handler send response metadata through its call's slot.
    pub(crate) fn set_response_metadata_slot(&mut self, slot: ResponseMetadataSlot) {
        self.response_metadata = Some(slot);
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
