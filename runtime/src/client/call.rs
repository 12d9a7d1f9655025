//! One call, whatever its route: the interceptors, the timeout and the
//! deadline it cascades, one request id and one encoding of the request
//! frame, the round trip over a [`Route`], the span, and the reply. Typed
//! and raw calls take this same path and differ only in their payload and
//! in how they read the response.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

use super::command::RawResponse;
use super::interceptor::OutgoingRequest;
use super::method::{CallOptions, MethodDescriptor};
use super::pool::StreamHandle;
use super::request::{RequestHead, RequestPayload, encode_request};
use super::route::{
    CallHead, Interceptors, Route, deadline_exceeded, no_answer_in_time, not_written_in_time,
    request_deadline,
};
use crate::context::{Metadata, cap_timeout};
use crate::error::{RpcError, Status, TransportError};
use crate::protocol::MessageKind;

/// Makes calls over a route as a channel does: with its interceptors and
/// default timeout.
pub(crate) struct Caller<'a, R> {
    /// Where the calls go.
    pub route: &'a R,
    /// The channel's interceptors.
    pub interceptors: &'a Interceptors,
    /// The timeout of calls whose options and method set none.
    pub default_timeout: Option<Duration>,
    /// Names the route in spans (the server's address, or the balanced
    /// service).
    pub peer: &'a str,
}

impl<'a, R: Route> Caller<'a, R> {
    /// A request-response call: the response, or why there is none.
    pub async fn unary(
        &self,
        method: &MethodDescriptor<'_>,
        payload: &impl RequestPayload,
        options: &CallOptions,
    ) -> Result<RawResponse, RpcError> {
        let timeout = options.effective_timeout(method, self.default_timeout);
        if let Some(capture) = &options.response_metadata {
            // A call that never ends (dropped, cancelled) leaves `None`.
            capture.record(None);
        }
        let mut answer = if self.interceptors.is_empty() {
            self.send_unary(method, payload, options, &options.metadata, timeout)
                .await
        } else {
            match self.intercept(method, options, timeout).await {
                Ok((metadata, timeout)) => {
                    self.send_unary(method, payload, options, &metadata, timeout)
                        .await
                }
                Err(rejected) => Err(rejected.into()),
            }
        };
        if let Some(capture) = &options.response_metadata {
            capture.record(
                answer
                    .as_mut()
                    .ok()
                    .map(|response| std::mem::take(&mut response.metadata)),
            );
        }
        answer
    }

    /// A one-way call: `Ok` once its frame is written.
    pub async fn oneway(
        &self,
        method: &MethodDescriptor<'_>,
        payload: &impl RequestPayload,
        options: &CallOptions,
    ) -> Result<(), RpcError> {
        let (head, id, frame) = self
            .intercept_and_encode(MessageKind::OnewayRequest, method, payload, options)
            .await?;
        match self.route.send_oneway(&head, id, frame).await? {
            Some(()) => Ok(()),
            None => Err(not_written_in_time(&head).into()),
        }
    }

    /// Opens a server-streaming call: runs the interceptors, encodes its
    /// request once, and hands it to a connection of the route. The
    /// returned handle brings the items and the end; the deadline (when the
    /// call's timeout passes) comes with it.
    pub async fn open_stream(
        &self,
        method: &MethodDescriptor<'_>,
        payload: &impl RequestPayload,
        options: &CallOptions,
    ) -> Result<(StreamHandle, Option<Instant>), RpcError> {
        let (head, id, frame) = self
            .intercept_and_encode(MessageKind::Request, method, payload, options)
            .await?;
        match self.route.open_stream(&head, id, frame).await? {
            Some(handle) => Ok((handle, head.deadline)),
            None => Err(no_answer_in_time(&head).into()),
        }
    }

    /// The interceptors, then the request frame, encoded once (the
    /// deadline runs from now): the way of the calls that are not the
    /// request-response hot path (one-way calls, streams).
    async fn intercept_and_encode<'h>(
        &self,
        kind: MessageKind,
        method: &'h MethodDescriptor<'h>,
        payload: &impl RequestPayload,
        options: &CallOptions,
    ) -> Result<(CallHead<'h>, u64, Bytes), RpcError>
    where
        'a: 'h,
    {
        let timeout = options.effective_timeout(method, self.default_timeout);
        let (metadata, timeout) = self.intercept(method, options, timeout).await?;
        self.encode(
            kind,
            method,
            payload,
            options,
            &metadata,
            timeout,
            Instant::now(),
        )
    }

    /// The call's metadata and timeout after the interceptors: the
    /// options' own (no copy) if there are none. The interceptors run on a
    /// copy of the metadata, within the timeout, which is then reduced by
    /// the time they took.
    pub async fn intercept<'o>(
        &self,
        method: &MethodDescriptor<'_>,
        options: &'o CallOptions,
        timeout: Option<Duration>,
    ) -> Result<(Cow<'o, Metadata>, Option<Duration>), Status> {
        if self.interceptors.is_empty() {
            return Ok((Cow::Borrowed(&options.metadata), timeout));
        }
        let started = Instant::now();
        let mut request = OutgoingRequest::new(
            method,
            options.serializer,
            options.metadata.clone(),
            cap_timeout(timeout),
        );
        let deadline = request_deadline(started, request.timeout());
        let run = async {
            for interceptor in self.interceptors.iter() {
                interceptor.intercept(&mut request).await?;
            }
            Ok::<_, Status>(())
        };
        match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, run)
                .await
                .unwrap_or_else(|_| Err(deadline_exceeded(method, "in its interceptors")))?,
            None => run.await?,
        }
        let (metadata, timeout) = request.into_parts();
        let timeout = timeout.map(|timeout| timeout.saturating_sub(started.elapsed()));
        Ok((Cow::Owned(metadata), timeout))
    }

    /// A request-response call after its interceptors: encodes it once,
    /// sends it over the route, traces it.
    pub async fn send_unary(
        &self,
        method: &MethodDescriptor<'_>,
        payload: &impl RequestPayload,
        options: &CallOptions,
        metadata: &Metadata,
        timeout: Option<Duration>,
    ) -> Result<RawResponse, RpcError> {
        let started = Instant::now();
        let (head, id, frame) = self.encode(
            MessageKind::Request,
            method,
            payload,
            options,
            metadata,
            timeout,
            started,
        )?;
        if !crate::trace::debug_spans_enabled() {
            return answer_of(&head, self.route.round_trip(&head, id, frame).await);
        }
        let span = tracing::debug_span!(
            "courier.call",
            service = method.service,
            method = method.method,
            request_id = id,
            peer = %self.peer,
            status = Empty,
            latency_us = Empty,
        );
        if span.is_disabled() {
            return answer_of(&head, self.route.round_trip(&head, id, frame).await);
        }
        let answer = answer_of(
            &head,
            self.route
                .round_trip(&head, id, frame)
                .instrument(span.clone())
                .await,
        );
        let status = match &answer {
            Ok(response) => response.status,
            Err(error) => error.code().as_u8(),
        };
        span.record("status", status);
        span.record("latency_us", micros(started.elapsed()));
        answer
    }

    /// Draws the call's request id and encodes its frame, once: the route
    /// sends these same bytes on every attempt. The deadline runs from
    /// `started`.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one call, each used once"
    )]
    fn encode<'h>(
        &self,
        kind: MessageKind,
        method: &'h MethodDescriptor<'h>,
        payload: &impl RequestPayload,
        options: &CallOptions,
        metadata: &Metadata,
        timeout: Option<Duration>,
        started: Instant,
    ) -> Result<(CallHead<'h>, u64, Bytes), RpcError>
    where
        'a: 'h,
    {
        let timeout = cap_timeout(timeout);
        if timeout == Some(Duration::ZERO) {
            return Err(deadline_exceeded(method, "before it was sent").into());
        }
        let deadline = request_deadline(started, timeout);
        let id = self.route.next_id();
        let head = RequestHead {
            kind,
            id,
            method,
            serializer: options.serializer,
            metadata,
            timeout,
        };
        let frame = encode_request(&head, payload, self.route.max_frame_size())?;
        let call = CallHead {
            method,
            timeout,
            deadline,
            hash_key: options.hash_key,
            serializer: options.serializer,
            interceptors: self.interceptors,
        };
        Ok((call, id, frame))
    }
}

/// A route's answer as the call's: status 6 if the deadline passed first.
#[inline]
fn answer_of(
    call: &CallHead<'_>,
    answer: Result<Option<RawResponse>, TransportError>,
) -> Result<RawResponse, RpcError> {
    match answer? {
        Some(response) => Ok(response),
        None => Err(no_answer_in_time(call).into()),
    }
}

/// Whole microseconds, saturating.
fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}
