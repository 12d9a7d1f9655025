//! Encoding a request frame (one buffer: header, request body, payload)
//! and turning a response into a call's result. A typed call and a raw
//! call differ only here: in their [`RequestPayload`] and in how they read
//! the response.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::command::RawResponse;
use super::method::MethodDescriptor;
use crate::context::Metadata;
use crate::error::{RpcError, Status, StatusCode, TransportError};
use crate::protocol::{
    FrameBuilder, FrameHeader, MessageKind, encode_request_prefix, status_message, timeout_to_ms,
};
use crate::serializer::{DeclaredError, Serializer, WireMessage};

/// What goes into one request frame besides the args.
pub(crate) struct RequestHead<'a> {
    pub kind: MessageKind,
    pub id: u64,
    pub method: &'a MethodDescriptor<'a>,
    pub serializer: Serializer,
    pub metadata: &'a Metadata,
    pub timeout: Option<Duration>,
}

/// The args message of a request, as it goes into the frame.
pub(crate) trait RequestPayload {
    /// About how many bytes it takes (room is reserved for them).
    fn size_hint(&self, serializer: Serializer) -> usize;

    /// Appends it to the frame's body.
    fn encode(&self, serializer: Serializer, body: &mut BytesMut) -> Result<(), RpcError>;
}

/// The args of a typed call, encoded by the call's serializer.
pub(crate) struct Typed<'a, Args>(pub &'a Args);

impl<Args: WireMessage> RequestPayload for Typed<'_, Args> {
    #[inline]
    fn size_hint(&self, serializer: Serializer) -> usize {
        serializer.size_hint(self.0)
    }

    #[inline]
    fn encode(&self, serializer: Serializer, body: &mut BytesMut) -> Result<(), RpcError> {
        Ok(serializer.encode(self.0, body)?)
    }
}

/// The args of a raw call: already encoded by the caller, copied as given.
pub(crate) struct Encoded<'a>(pub &'a [u8]);

impl RequestPayload for Encoded<'_> {
    #[inline]
    fn size_hint(&self, _: Serializer) -> usize {
        self.0.len()
    }

    #[inline]
    fn encode(&self, _: Serializer, body: &mut BytesMut) -> Result<(), RpcError> {
        body.extend_from_slice(self.0);
        Ok(())
    }
}

/// Encodes a whole request frame in one buffer.
pub(crate) fn encode_request(
    head: &RequestHead<'_>,
    payload: &impl RequestPayload,
    max_frame_size: u32,
) -> Result<Bytes, RpcError> {
    let RequestHead {
        kind,
        id,
        method,
        serializer,
        metadata,
        timeout,
    } = *head;
    let prefix_len = 10 + method.service.len() + method.method.len();
    let mut builder = FrameBuilder::new(
        FrameHeader {
            serializer: serializer.id(),
            kind,
            status: 0,
            request_id: id,
            body_len: 0,
        },
        prefix_len + payload.size_hint(serializer),
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
    payload.encode(serializer, builder.body_mut())?;
    builder
        .finish(max_frame_size)
        .map_err(|e| RpcError::Status(Status::new(StatusCode::FrameTooLarge, e.to_string())))
}

/// Turns a response into a typed call's result.
pub(crate) fn decode_response<Reply: WireMessage, E: DeclaredError>(
    response: RawResponse,
    serializer: Serializer,
) -> Result<Reply, RpcError<E>> {
    match StatusCode::from_u8(response.status) {
        StatusCode::Ok => Ok(serializer.decode(response.body)?),
        StatusCode::DeclaredError => match E::decode_declared(serializer, response.body) {
            Ok(declared) => Err(RpcError::Declared(declared)),
            Err(e) => Err(RpcError::Transport(e)),
        },
        code => Err(RpcError::Status(Status::new(
            code,
            status_message(&response.body),
        ))),
    }
}
