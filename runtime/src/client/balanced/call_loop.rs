//! The call loop of a balanced channel: pick an instance, send the call's
//! frame to it, record the outcome, and fail over while the outcome
//! allows, attempts remain, the deadline has not passed and the retry
//! budget has a retry. Every attempt sends the call's one encoded frame
//! (same request id, same payload, no new encoding); a retry's carries the
//! time the caller has left in its timeout field.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::Balanced;
use super::instance::InFlight;
use super::policy::{ATTEMPTS_CAP, Outcome, Retry, Tried};
use crate::client::command::RawResponse;
use crate::client::endpoint::Endpoint;
use crate::client::pool::StreamHandle;
use crate::client::route::{CallHead, Route};
use crate::error::TransportError;
use crate::protocol::{HEADER_LEN, timeout_to_ms};

/// One attempt of a call on an endpoint.
trait Attempt: Sync {
    /// What an answered attempt returns (`None`: the deadline passed).
    type Output: Send;

    /// The call's frame, as encoded for its first attempt.
    fn frame(&self) -> &Bytes;

    /// Sends `frame` (the call's, see [`retry_frame`]) to `endpoint`.
    fn send<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        call: &'a CallHead<'a>,
        frame: Bytes,
    ) -> impl Future<Output = Result<Option<Self::Output>, TransportError>> + Send + 'a;
}

/// A request that waits for its response.
struct RoundTrip {
    id: u64,
    frame: Bytes,
}

impl Attempt for RoundTrip {
    type Output = RawResponse;

    fn frame(&self) -> &Bytes {
        &self.frame
    }

    fn send<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        call: &'a CallHead<'a>,
        frame: Bytes,
    ) -> impl Future<Output = Result<Option<RawResponse>, TransportError>> + Send + 'a {
        endpoint.round_trip(call, self.id, frame)
    }
}

/// A one-way request.
struct Oneway {
    id: u64,
    frame: Bytes,
}

impl Attempt for Oneway {
    type Output = ();

    fn frame(&self) -> &Bytes {
        &self.frame
    }

    fn send<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        call: &'a CallHead<'a>,
        frame: Bytes,
    ) -> impl Future<Output = Result<Option<()>, TransportError>> + Send + 'a {
        endpoint.send_oneway(call, self.id, frame)
    }
}

/// The opening of a server-streaming call: an instance is picked for the
/// whole stream, and another is tried only while the request could not be
/// handed to a connection (nothing has moved yet).
struct StreamOpen {
    id: u64,
    frame: Bytes,
}

impl Attempt for StreamOpen {
    type Output = StreamHandle;

    fn frame(&self) -> &Bytes {
        &self.frame
    }

    fn send<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        call: &'a CallHead<'a>,
        frame: Bytes,
    ) -> impl Future<Output = Result<Option<StreamHandle>, TransportError>> + Send + 'a {
        endpoint.open_stream(call, self.id, frame)
    }
}

impl Route for Balanced {
    #[inline]
    fn next_id(&self) -> u64 {
        self.ids.next()
    }

    fn max_frame_size(&self) -> u32 {
        self.options.channel.max_frame_size
    }

    async fn round_trip(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> Result<Option<RawResponse>, TransportError> {
        self.balance(call, &RoundTrip { id, frame }).await
    }

    async fn send_oneway(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> Result<Option<()>, TransportError> {
        self.balance(call, &Oneway { id, frame }).await
    }

    async fn open_stream(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> Result<Option<StreamHandle>, TransportError> {
        self.balance(call, &StreamOpen { id, frame }).await
    }
}

impl Balanced {
    /// Runs one call: picks an instance, makes the attempt on its endpoint
    /// within the call's deadline, and fails over while the outcome
    /// allows, attempts remain, the deadline has not passed and the retry
    /// budget has a retry. `Ok(None)`: the deadline passed (before an
    /// answer, or before an attempt could be sent).
    async fn balance<A>(
        &self,
        call: &CallHead<'_>,
        attempt: &A,
    ) -> Result<Option<A::Output>, TransportError>
    where
        A: Attempt,
        Result<Option<A::Output>, TransportError>: Outcome,
    {
        let instances = self.snapshot();
        self.budget.deposit();
        let max_attempts = (self.options.max_attempts as usize).clamp(1, ATTEMPTS_CAP);
        let mut tried = Tried::default();
        let mut last: Option<Result<Option<A::Output>, TransportError>> = None;
        loop {
            let Some((index, probe)) = self.pick(&instances, call, &tried) else {
                return last.unwrap_or_else(|| {
                    Err(TransportError::NoInstance {
                        service: self.service.clone(),
                    })
                });
            };
            let instance = &instances[index];
            tried.push(instance.key);
            let remaining = call
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return last.unwrap_or(Ok(None));
            }
            let guard = InFlight::start(instance, probe);
            let connecting = instance.endpoint(&self.options.channel, &self.ids);
            let connected = match call.deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, connecting)
                    .await
                    .unwrap_or_else(|_| {
                        Err(TransportError::Connect {
                            addr: instance.address.clone(),
                            source: Arc::new(std::io::ErrorKind::TimedOut.into()),
                        })
                    }),
                None => connecting.await,
            };
            let frame = match tried.len() {
                1 => attempt.frame().clone(),
                _ => retry_frame(attempt.frame(), call),
            };
            let result = match connected {
                Ok(endpoint) => attempt.send(endpoint, call, frame).await,
                Err(error) => Err(error),
            };
            let (verdict, retry) = result.classify();
            self.record(&instances, instance, verdict, probe);
            drop(guard);
            let may_retry = match retry {
                Retry::Never => false,
                Retry::IfIdempotent => call.method.idempotent,
                Retry::Always => true,
            };
            let time_left = call.deadline.is_none_or(|d| Instant::now() < d);
            if !(may_retry && tried.len() < max_attempts && time_left && self.budget.try_withdraw())
            {
                return result;
            }
            let error = result.as_ref().err();
            tracing::debug!(service = %self.service, instance = %instance.instance_id, ?verdict, ?error, "retrying on another instance");
            last = Some(result);
        }
    }
}

/// The frame of a retry: the first attempt's, with its timeout field set
/// to the time the caller has left (PROTOCOL: "u32 milliseconds the caller
/// will wait"), so the next server's deadline, and the deadlines it passes
/// on, are the caller's. The same request id and payload: one copy of the
/// frame per retry, no new encoding. A call without a timeout resends the
/// frame as it is.
fn retry_frame(first: &Bytes, call: &CallHead<'_>) -> Bytes {
    let Some(deadline) = call.deadline else {
        return first.clone();
    };
    let left = deadline.saturating_duration_since(Instant::now());
    // Header, then the request body: service and method (u16 length +
    // UTF-8 each), then the timeout.
    let at = HEADER_LEN + 2 + call.method.service.len() + 2 + call.method.method.len();
    let Some(field) = first.get(at..at + 4) else {
        return first.clone();
    };
    debug_assert_ne!(field, [0; 4], "a call with a deadline has a timeout");
    let mut frame = BytesMut::from(&first[..]);
    // At least 1 ms: 0 would mean "no timeout".
    let millis = timeout_to_ms(Some(left)).max(1);
    frame[at..at + 4].copy_from_slice(&millis.to_be_bytes());
    frame.freeze()
}
