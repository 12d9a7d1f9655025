//! The seam between a call and where it goes: a [`Route`] takes a call's
//! encoded request frame and brings back its response. One
//! [`Endpoint`](super::endpoint::Endpoint) is a route, and so is a
//! [balanced](super::balanced::Balanced) set of them; above the seam,
//! typed and raw calls only encode and decode.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::command::RawResponse;
use super::interceptor::ClientInterceptor;
use super::method::MethodDescriptor;
use super::pool::StreamHandle;
use crate::error::{Status, TransportError};
use crate::serializer::Serializer;

/// The interceptors of a channel, in the order they run.
pub(super) type Interceptors = Arc<[Arc<dyn ClientInterceptor>]>;

/// One call as a route sees it: what it needs besides the frame to send it,
/// fail it over, and name it in errors.
#[derive(Clone, Copy)]
pub(crate) struct CallHead<'a> {
    /// The method called.
    pub method: &'a MethodDescriptor<'a>,
    /// The call's timeout, as its frame carries it.
    pub timeout: Option<Duration>,
    /// When the call ends, if it has a timeout.
    pub deadline: Option<Instant>,
    /// The call's hash key, for a consistent-hash balancer.
    pub hash_key: Option<u64>,
    /// The call's serializer.
    pub serializer: Serializer,
    /// The interceptors of the channel making the call (a balanced route
    /// sends the health probes a call starts through them).
    pub interceptors: &'a Interceptors,
}

/// Where calls go: takes an encoded request frame, returns its response.
///
/// The frame's request id comes from [`next_id`](Route::next_id), drawn
/// once per call: a route that tries the call again elsewhere resends the
/// same frame (a `Bytes`: no copy, no new encoding).
pub(crate) trait Route: Sync {
    /// A request id for a new call, unique among the calls of the channel
    /// (all its endpoints).
    fn next_id(&self) -> u64;

    /// The largest request body the route sends.
    fn max_frame_size(&self) -> u32;

    /// Sends a request frame (request id `id`) and waits for its response
    /// until `call.deadline`: `None` once it has passed. Dropping the
    /// future cancels the call. (The pool's own answer: an endpoint adds
    /// nothing to it.)
    fn round_trip(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> impl Future<Output = Result<Option<RawResponse>, TransportError>> + Send;

    /// Sends a one-way frame (request id `id`); returns once it is written,
    /// or `None` if `call.deadline` passed first.
    fn send_oneway(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> impl Future<Output = Result<Option<()>, TransportError>> + Send;

    /// Opens a server-streaming call with its request frame (request id
    /// `id`): once the frame is handed to a connection, the handle to its
    /// items and end; `None` if `call.deadline` passed first.
    fn open_stream(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> impl Future<Output = Result<Option<StreamHandle>, TransportError>> + Send;
}

/// The request ids of one channel: shared by all its endpoints, so a call
/// keeps its id (and its frame) wherever it is sent.
#[derive(Debug)]
pub(crate) struct RequestIds(AtomicU64);

impl RequestIds {
    /// Ids from 1 (0 is left for heartbeats).
    pub fn new() -> Arc<RequestIds> {
        Arc::new(RequestIds(AtomicU64::new(1)))
    }

    /// The next id.
    #[inline]
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// `started + timeout`, if there is a timeout (and it is representable).
pub(super) fn request_deadline(started: Instant, timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|timeout| started.checked_add(timeout))
}

/// Status 6 for a call that ran out of time `when`.
pub(super) fn deadline_exceeded(method: &MethodDescriptor<'_>, when: &str) -> Status {
    Status::deadline_exceeded(format!(
        "the deadline of {}/{} passed {when}",
        method.service, method.method
    ))
}

/// Status 6 for a call that got no answer within its timeout.
pub(super) fn no_answer_in_time(call: &CallHead<'_>) -> Status {
    Status::deadline_exceeded(format!(
        "no answer from {}/{} within {:?}",
        call.method.service,
        call.method.method,
        call.timeout.unwrap_or_default()
    ))
}

/// Status 6 for a one-way call not written within its timeout.
pub(super) fn not_written_in_time(call: &CallHead<'_>) -> Status {
    Status::deadline_exceeded(format!(
        "{}/{} was not written within {:?}",
        call.method.service,
        call.method.method,
        call.timeout.unwrap_or_default()
    ))
}
