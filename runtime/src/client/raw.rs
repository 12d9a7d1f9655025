//! Untyped calls, for tools that learn the methods they call at run time
//! (the `courier` command-line client, gateways, test harnesses): the
//! service and method are strings, the args message arrives already
//! encoded in the call's serializer, and the answer comes back as bytes.
//!
//! [`Channel::call_raw`] and [`Channel::oneway_raw`] take the same path as
//! the typed [`Channel::unary`] and [`Channel::oneway`] (interceptors,
//! timeouts, deadline cascading, cancel on drop, balanced failover), and
//! leave the typed path as it was.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::balanced::ProbeSender;
use super::channel::{Channel, ChannelShared, Target};
use super::method::{CallOptions, MethodDescriptor};
use crate::context::{Metadata, cap_timeout};
use crate::error::{RpcError, Status, StatusCode, TransportError};
use crate::protocol::{
    FrameBuilder, FrameHeader, MessageKind, encode_request_prefix, status_message, timeout_to_ms,
};
use crate::serializer::Serializer;

/// The most distinct methods [`intern`] keeps (see [`RawMethod`]).
const MAX_INTERNED: usize = 1024;

/// A method named at run time: what a [`MethodDescriptor`] says about a
/// generated method, for one that has no generated code.
///
/// Calls through a [balanced channel](Channel::balanced), or through a
/// channel with [interceptors](Channel::with_interceptor), need a
/// `'static` descriptor; for those the runtime keeps one copy of each
/// distinct method for the life of the process (at most 1024; past that
/// such calls fail with [`TransportError::Encode`]). Calls to one endpoint
/// without interceptors keep nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawMethod<'a> {
    /// The service's wire name (`hello.Greeter`, `shop.Orders:2`).
    pub service: &'a str,
    /// The method's wire name.
    pub method: &'a str,
    /// `@idempotent`: a balanced channel may retry the call on another
    /// instance after a connection loss.
    pub idempotent: bool,
    /// `@timeout(ms = N)`: used when the call's options set no timeout.
    pub default_timeout: Option<Duration>,
}

impl<'a> RawMethod<'a> {
    /// `service/method`, not idempotent, with no default timeout.
    pub fn new(service: &'a str, method: &'a str) -> RawMethod<'a> {
        RawMethod {
            service,
            method,
            idempotent: false,
            default_timeout: None,
        }
    }
}

/// The answer to a [`Channel::call_raw`] that the server handled: the
/// payload, still encoded in the call's serializer. Any other status is an
/// [`RpcError::Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawReply {
    /// Status 0: the method's result message (`{"value": ..}` in JSON).
    Ok(Bytes),
    /// Status 1: the method's error message (one field per declared error,
    /// exactly one set).
    Declared(Bytes),
}

impl Channel {
    /// Calls `method` with `payload`, its args message already encoded in
    /// `options.serializer`, and waits for the answer.
    ///
    /// Everything else is as in [`Channel::unary`]: the timeout (the
    /// call's, else `method.default_timeout`, else the channel's) travels
    /// to the server and bounds the wait, interceptors run first, a
    /// balanced channel picks an instance and fails over, and dropping the
    /// future cancels the call.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use courier::Serializer;
    /// use courier::client::{CallOptions, Channel, RawMethod, RawReply};
    ///
    /// let channel = Channel::connect("127.0.0.1:7070").await?;
    /// let options = CallOptions { serializer: Serializer::Json, ..CallOptions::default() };
    /// let method = RawMethod::new("hello.Greeter", "say_hello");
    /// match channel.call_raw(&method, br#"{"name":"Bob"}"#, &options).await? {
    ///     RawReply::Ok(result) => println!("{}", String::from_utf8_lossy(&result)),
    ///     RawReply::Declared(error) => println!("declared {}", String::from_utf8_lossy(&error)),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_raw(
        &self,
        method: &RawMethod<'_>,
        payload: &[u8],
        options: &CallOptions,
    ) -> Result<RawReply, RpcError> {
        let (metadata, timeout) = self.raw_prelude(method, options).await?;
        let serializer = options.serializer;
        match &self.target {
            Target::Endpoint(shared) => {
                shared
                    .call_raw(method, payload, serializer, &metadata, timeout)
                    .await
            }
            Target::Balanced(balanced) => {
                let descriptor = intern(method)?;
                let metadata = &metadata;
                balanced
                    .call(
                        descriptor,
                        timeout,
                        options.hash_key,
                        ProbeSender {
                            interceptors: &self.interceptors,
                            serializer,
                        },
                        |shared, timeout| async move {
                            shared
                                .call_raw(method, payload, serializer, metadata, timeout)
                                .await
                        },
                    )
                    .await
            }
        }
    }

    /// Sends a one-way request (message type 3) with `payload`, its args
    /// message already encoded in `options.serializer`; returns once the
    /// frame is written, as [`Channel::oneway`] does.
    pub async fn oneway_raw(
        &self,
        method: &RawMethod<'_>,
        payload: &[u8],
        options: &CallOptions,
    ) -> Result<(), RpcError> {
        let (metadata, timeout) = self.raw_prelude(method, options).await?;
        let serializer = options.serializer;
        match &self.target {
            Target::Endpoint(shared) => {
                shared
                    .oneway_raw(method, payload, serializer, &metadata, timeout)
                    .await
            }
            Target::Balanced(balanced) => {
                let descriptor = intern(method)?;
                let metadata = &metadata;
                balanced
                    .call(
                        descriptor,
                        timeout,
                        options.hash_key,
                        ProbeSender {
                            interceptors: &self.interceptors,
                            serializer,
                        },
                        |shared, timeout| async move {
                            shared
                                .oneway_raw(method, payload, serializer, metadata, timeout)
                                .await
                        },
                    )
                    .await
            }
        }
    }

    /// The call's timeout, and its metadata and timeout after the
    /// interceptors (if the channel has any).
    async fn raw_prelude<'o>(
        &self,
        method: &RawMethod<'_>,
        options: &'o CallOptions,
    ) -> Result<(Cow<'o, Metadata>, Option<Duration>), RpcError> {
        let timeout = options
            .timeout
            .or(method.default_timeout)
            .or(self.default_timeout);
        if self.interceptors.is_empty() {
            return Ok((Cow::Borrowed(&options.metadata), timeout));
        }
        let descriptor = intern(method)?;
        let (metadata, timeout) = self.intercept(descriptor, options, timeout).await?;
        Ok((Cow::Owned(metadata), timeout))
    }
}

impl ChannelShared {
    /// One raw unary call on this endpoint.
    async fn call_raw(
        &self,
        method: &RawMethod<'_>,
        payload: &[u8],
        serializer: Serializer,
        metadata: &Metadata,
        timeout: Option<Duration>,
    ) -> Result<RawReply, RpcError> {
        let timeout = cap_timeout(timeout);
        if timeout == Some(Duration::ZERO) {
            return Err(passed_before_sent(method).into());
        }
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_raw_request(
            MessageKind::Request,
            id,
            method,
            serializer,
            payload,
            metadata,
            timeout,
            self.max_frame_size,
        )?;
        let Some(response) = self.round_trip(id, frame, deadline).await? else {
            return Err(Status::deadline_exceeded(format!(
                "no answer from {}/{} within {:?}",
                method.service,
                method.method,
                timeout.unwrap_or_default()
            ))
            .into());
        };
        match StatusCode::from_u8(response.status) {
            StatusCode::Ok => Ok(RawReply::Ok(response.body)),
            StatusCode::DeclaredError => Ok(RawReply::Declared(response.body)),
            code => Err(Status::new(code, status_message(&response.body)).into()),
        }
    }

    /// One raw one-way call on this endpoint.
    async fn oneway_raw(
        &self,
        method: &RawMethod<'_>,
        payload: &[u8],
        serializer: Serializer,
        metadata: &Metadata,
        timeout: Option<Duration>,
    ) -> Result<(), RpcError> {
        let timeout = cap_timeout(timeout);
        if timeout == Some(Duration::ZERO) {
            return Err(passed_before_sent(method).into());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_raw_request(
            MessageKind::OnewayRequest,
            id,
            method,
            serializer,
            payload,
            metadata,
            timeout,
            self.max_frame_size,
        )?;
        self.send_oneway_frame(id, frame, timeout, method.service, method.method)
            .await
    }
}

/// Status 6 for a call whose deadline passed before it was sent.
fn passed_before_sent(method: &RawMethod<'_>) -> Status {
    Status::deadline_exceeded(format!(
        "the deadline of {}/{} passed before it was sent",
        method.service, method.method
    ))
}

/// Encodes a whole request frame around an encoded payload, in one buffer.
#[allow(
    clippy::too_many_arguments,
    reason = "the fields of one frame, each used once"
)]
fn encode_raw_request(
    kind: MessageKind,
    id: u64,
    method: &RawMethod<'_>,
    serializer: Serializer,
    payload: &[u8],
    metadata: &Metadata,
    timeout: Option<Duration>,
    max_frame_size: u32,
) -> Result<Bytes, RpcError> {
    let prefix_len = 10 + method.service.len() + method.method.len();
    let mut builder = FrameBuilder::new(
        FrameHeader {
            serializer: serializer.id(),
            kind,
            status: 0,
            request_id: id,
            body_len: 0,
        },
        prefix_len + payload.len(),
    );
    encode_request_prefix(
        builder.body_mut(),
        method.service,
        method.method,
        timeout_to_ms(timeout),
        metadata,
    )
    .map_err(|e| TransportError::Encode {
        what: "request body",
        reason: e.to_string(),
    })?;
    builder.body_mut().extend_from_slice(payload);
    builder
        .finish(max_frame_size)
        .map_err(|e| RpcError::Status(Status::new(StatusCode::FrameTooLarge, e.to_string())))
}

/// The one `'static` descriptor of `method`, made on first use and kept for
/// the life of the process (at most [`MAX_INTERNED`] of them).
fn intern(method: &RawMethod<'_>) -> Result<&'static MethodDescriptor, TransportError> {
    static INTERNED: Mutex<Vec<&'static MethodDescriptor>> = Mutex::new(Vec::new());
    let same = |d: &&&'static MethodDescriptor| {
        d.service == method.service
            && d.method == method.method
            && d.idempotent == method.idempotent
            && d.default_timeout == method.default_timeout
    };
    let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&descriptor) = interned.iter().find(same) {
        return Ok(descriptor);
    }
    if interned.len() >= MAX_INTERNED {
        return Err(TransportError::Encode {
            what: "raw method",
            reason: format!(
                "more than {MAX_INTERNED} distinct methods were called raw through balanced channels or interceptors"
            ),
        });
    }
    let descriptor: &'static MethodDescriptor = Box::leak(Box::new(MethodDescriptor {
        service: Box::leak(method.service.into()),
        method: Box::leak(method.method.into()),
        idempotent: method.idempotent,
        default_timeout: method.default_timeout,
    }));
    interned.push(descriptor);
    Ok(descriptor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_keeps_one_descriptor_per_method() {
        let a = intern(&RawMethod::new("raw.Test", "a")).expect("interned");
        let again = intern(&RawMethod::new(&String::from("raw.Test"), "a")).expect("interned");
        assert!(std::ptr::eq(a, again));
        let idempotent = intern(&RawMethod {
            idempotent: true,
            ..RawMethod::new("raw.Test", "a")
        })
        .expect("interned");
        assert!(!std::ptr::eq(a, idempotent));
        assert_eq!((a.service, a.method), ("raw.Test", "a"));
    }

    #[test]
    fn frames_carry_the_payload_as_given() {
        let method = RawMethod::new("hello.Greeter", "say_hello");
        let frame = encode_raw_request(
            MessageKind::Request,
            7,
            &method,
            Serializer::Json,
            br#"{"name":"Bob"}"#,
            &Metadata::new(),
            Some(Duration::from_millis(1500)),
            1 << 20,
        )
        .expect("encoded");
        assert_eq!(
            &frame[..6],
            &[0xCA, 0x11, 1, 2, 1, 0],
            "magic, version, JSON, request"
        );
        assert_eq!(&frame[6..14], &7u64.to_be_bytes(), "the request id");
        let body = &frame[18..];
        assert_eq!(&frame[14..18], &(body.len() as u32).to_be_bytes());
        assert!(body.ends_with(br#"{"name":"Bob"}"#));
        let too_small = encode_raw_request(
            MessageKind::Request,
            8,
            &method,
            Serializer::Json,
            &[0; 64],
            &Metadata::new(),
            None,
            16,
        );
        assert_eq!(
            too_small.expect_err("over the limit").code(),
            StatusCode::FrameTooLarge
        );
    }
}
