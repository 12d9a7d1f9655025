//! The call loop of a balanced channel: pick an instance, send the call's
//! frame to it, record the outcome, and fail over while the outcome
//! allows, attempts remain, the deadline has not passed and the retry
//! budget has a retry. Every attempt sends the same frame (same request
//! id, same bytes: a `Bytes` clone, no new encoding).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::Balanced;
use super::instance::InFlight;
use super::policy::{ATTEMPTS_CAP, Outcome, Retry, Tried};
use crate::client::command::RawResponse;
use crate::client::endpoint::Endpoint;
use crate::client::route::{CallHead, Route};
use crate::error::TransportError;

/// One attempt of a call on an endpoint.
trait Attempt: Sync {
    /// What an answered attempt returns (`None`: the deadline passed).
    type Output: Send;

    /// Sends the call's frame to `endpoint`.
    fn send<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        call: &'a CallHead<'a>,
    ) -> impl Future<Output = Result<Option<Self::Output>, TransportError>> + Send + 'a;
}

/// A request that waits for its response.
struct RoundTrip {
    id: u64,
    frame: Bytes,
}

impl Attempt for RoundTrip {
    type Output = RawResponse;

    fn send<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        call: &'a CallHead<'a>,
    ) -> impl Future<Output = Result<Option<RawResponse>, TransportError>> + Send + 'a {
        endpoint.round_trip(call, self.id, self.frame.clone())
    }
}

/// A one-way request.
struct Oneway {
    id: u64,
    frame: Bytes,
}

impl Attempt for Oneway {
    type Output = ();

    fn send<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        call: &'a CallHead<'a>,
    ) -> impl Future<Output = Result<Option<()>, TransportError>> + Send + 'a {
        endpoint.send_oneway(call, self.id, self.frame.clone())
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
            let result = match connected {
                Ok(endpoint) => attempt.send(endpoint, call).await,
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
