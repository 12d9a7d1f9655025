//! [`ResponseMetadataCapture`]: where a client reads the response metadata
//! (message type 10) of its calls.

use std::sync::{Arc, Mutex, PoisonError};

use crate::context::Metadata;

/// Receives the response metadata of the calls made with it: put it in a
/// stub's options ([`Stub::capture_response_metadata`](crate::client::Stub::capture_response_metadata)
/// or [`CallOptions::response_metadata`](crate::client::CallOptions::response_metadata))
/// and read it once the call has ended, in any call mode (`.await`,
/// blocking, future, callback) and for raw calls.
///
/// Each call made with the capture replaces what it holds when the call
/// ends: `Some` with the entries the server sent with its answer (empty
/// if it sent none) whatever the answer was (a result, a declared error,
/// a status), `None` if no answer came (a transport failure, the local
/// timeout, a call dropped before its answer: a call empties the capture
/// when it starts). One-way calls leave it as it is. Clones share one capture,
/// so for calls running at the same time use one capture per call (stubs
/// are cheap to clone). As grpc-java's `MetadataUtils` capture does, it
/// keeps the typed stubs' plain return types unchanged.
///
/// ```text
/// let capture = ResponseMetadataCapture::new();
/// let greeting = greeter.clone().capture_response_metadata(&capture).say_hello("Bob").await?;
/// let served_by = capture.take().and_then(|m| m.get("served-by").map(str::to_owned));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ResponseMetadataCapture {
    latest: Arc<Mutex<Option<Metadata>>>,
}

impl ResponseMetadataCapture {
    /// An empty capture.
    pub fn new() -> ResponseMetadataCapture {
        ResponseMetadataCapture::default()
    }

    /// Takes what the last call that ended left (see the type's doc),
    /// leaving `None`.
    pub fn take(&self) -> Option<Metadata> {
        self.lock().take()
    }

    /// A copy of what the last call that ended left.
    pub fn get(&self) -> Option<Metadata> {
        self.lock().clone()
    }

    /// Whether `other` is this capture or a clone of it.
    pub fn same_as(&self, other: &ResponseMetadataCapture) -> bool {
        Arc::ptr_eq(&self.latest, &other.latest)
    }

    /// A call ended: `Some` with its answer's metadata, `None` without an
    /// answer.
    pub(crate) fn record(&self, metadata: Option<Metadata>) {
        *self.lock() = metadata;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Metadata>> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
