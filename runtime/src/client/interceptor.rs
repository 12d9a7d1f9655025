//! Client interceptors: async hooks that see every outgoing call before it
//! is sent, and can add metadata (an auth token, a trace id), change its
//! timeout, or reject it.

use std::time::Duration;

use super::method::MethodDescriptor;
use crate::BoxFuture;
use crate::context::Metadata;
use crate::error::Status;
use crate::serializer::Serializer;

/// A hook every call of a [`Channel`](super::Channel) passes through,
/// installed with [`Channel::with_interceptor`](super::Channel::with_interceptor).
///
/// Interceptors run in the order they were added, before the request is
/// encoded; the first `Err` ends the call with that status (nothing is
/// sent). A channel without interceptors pays nothing for them.
///
/// ```
/// use courier::client::{ClientInterceptor, OutgoingRequest};
/// use courier::{BoxFuture, Status};
///
/// struct BearerToken(String);
///
/// impl ClientInterceptor for BearerToken {
///     fn intercept<'a>(&'a self, request: &'a mut OutgoingRequest) -> BoxFuture<'a, Result<(), Status>> {
///         Box::pin(async move {
///             request.metadata_mut().insert("authorization", format!("Bearer {}", self.0));
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait ClientInterceptor: Send + Sync + 'static {
    /// Looks at (and may change) one outgoing call; `Err` rejects it.
    fn intercept<'a>(
        &'a self,
        request: &'a mut OutgoingRequest<'_>,
    ) -> BoxFuture<'a, Result<(), Status>>;
}

/// An outgoing call as interceptors see it. It borrows the call's
/// [`MethodDescriptor`], which lives as long as the call: an interceptor
/// that keeps the names copies them.
#[derive(Debug, Clone)]
pub struct OutgoingRequest<'m> {
    method: &'m MethodDescriptor<'m>,
    serializer: Serializer,
    metadata: Metadata,
    timeout: Option<Duration>,
}

impl<'m> OutgoingRequest<'m> {
    pub(crate) fn new(
        method: &'m MethodDescriptor<'m>,
        serializer: Serializer,
        metadata: Metadata,
        timeout: Option<Duration>,
    ) -> OutgoingRequest<'m> {
        OutgoingRequest {
            method,
            serializer,
            metadata,
            timeout,
        }
    }

    /// The method called.
    pub fn method(&self) -> &'m MethodDescriptor<'m> {
        self.method
    }

    /// The serializer of the request.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// The metadata that will be sent.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The metadata that will be sent, to change.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// The call's timeout (after options, method and channel defaults).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Changes the call's timeout. It is still capped by the deadline a
    /// server handler inherited from its own caller.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    pub(crate) fn into_parts(self) -> (Metadata, Option<Duration>) {
        (self.metadata, self.timeout)
    }
}
