//! Untyped calls, for tools that learn the methods they call at run time
//! (the `courier` command-line client, gateways, test harnesses): the
//! method is a [`MethodDescriptor`] that borrows its names, the args
//! message arrives already encoded in the call's serializer, and the answer
//! comes back as bytes.
//!
//! [`Channel::call_raw`] and [`Channel::oneway_raw`] take the path of the
//! typed [`Channel::unary`] and [`Channel::oneway`] (interceptors,
//! timeouts, deadline cascading, cancel on drop, balanced failover); they
//! differ only in the payload they put in the frame and in how they read
//! the answer. Nothing is kept of the method after the call.

use bytes::Bytes;

use super::channel::Channel;
use super::command::RawResponse;
use super::method::{CallOptions, MethodDescriptor};
use super::request::Encoded;
use crate::error::{RpcError, Status, StatusCode};
use crate::protocol::status_message;

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
    /// balanced channel picks an instance and fails over (resending the
    /// same frame), and dropping the future cancels the call.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use courier::Serializer;
    /// use courier::client::{CallOptions, Channel, MethodDescriptor, RawReply};
    ///
    /// let channel = Channel::connect("127.0.0.1:7070").await?;
    /// let options = CallOptions { serializer: Serializer::Json, ..CallOptions::default() };
    /// let method = MethodDescriptor::new("hello.Greeter", "say_hello");
    /// match channel.call_raw(&method, br#"{"name":"Bob"}"#, &options).await? {
    ///     RawReply::Ok(result) => println!("{}", String::from_utf8_lossy(&result)),
    ///     RawReply::Declared(error) => println!("declared {}", String::from_utf8_lossy(&error)),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_raw(
        &self,
        method: &MethodDescriptor<'_>,
        payload: &[u8],
        options: &CallOptions,
    ) -> Result<RawReply, RpcError> {
        let response = self
            .caller()
            .unary(method, &Encoded(payload), options)
            .await?;
        raw_reply(response)
    }

    /// Sends a one-way request (message type 3) with `payload`, its args
    /// message already encoded in `options.serializer`; returns once the
    /// frame is written, as [`Channel::oneway`] does.
    pub async fn oneway_raw(
        &self,
        method: &MethodDescriptor<'_>,
        payload: &[u8],
        options: &CallOptions,
    ) -> Result<(), RpcError> {
        self.caller()
            .oneway(method, &Encoded(payload), options)
            .await
    }
}

/// A response as a raw call's result.
fn raw_reply(response: RawResponse) -> Result<RawReply, RpcError> {
    match StatusCode::from_u8(response.status) {
        StatusCode::Ok => Ok(RawReply::Ok(response.body)),
        StatusCode::DeclaredError => Ok(RawReply::Declared(response.body)),
        code => Err(Status::new(code, status_message(&response.body)).into()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::client::request::{RequestHead, encode_request};
    use crate::context::Metadata;
    use crate::protocol::MessageKind;
    use crate::serializer::Serializer;

    fn frame(id: u64, payload: &[u8], max_frame_size: u32) -> Result<Bytes, RpcError> {
        let method = MethodDescriptor::new("hello.Greeter", "say_hello");
        let head = RequestHead {
            kind: MessageKind::Request,
            id,
            method: &method,
            serializer: Serializer::Json,
            metadata: &Metadata::new(),
            timeout: Some(Duration::from_millis(1500)),
        };
        encode_request(&head, &Encoded(payload), max_frame_size)
    }

    #[test]
    fn frames_carry_the_payload_as_given() {
        let frame = frame(7, br#"{"name":"Bob"}"#, 1 << 20).expect("encoded");
        assert_eq!(
            &frame[..6],
            &[0xCA, 0x11, 1, 2, 1, 0],
            "magic, version, JSON, request"
        );
        assert_eq!(&frame[6..14], &7u64.to_be_bytes(), "the request id");
        let body = &frame[18..];
        assert_eq!(&frame[14..18], &(body.len() as u32).to_be_bytes());
        assert!(body.ends_with(br#"{"name":"Bob"}"#));
        let too_small = frame_or_error(8);
        assert_eq!(
            too_small.expect_err("over the limit").code(),
            StatusCode::FrameTooLarge
        );
    }

    fn frame_or_error(id: u64) -> Result<Bytes, RpcError> {
        frame(id, &[0; 64], 16)
    }
}
