//! Encoding a request frame (one buffer: header, request body, payload)
//! and turning a response into a call's result.

use std::time::Duration;

use bytes::Bytes;

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
    pub method: &'a MethodDescriptor,
    pub serializer: Serializer,
    pub metadata: &'a Metadata,
    pub timeout: Option<Duration>,
}

/// Encodes a whole request frame in one buffer.
pub(crate) fn encode_request<Args: WireMessage>(
    head: &RequestHead<'_>,
    args: &Args,
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
        prefix_len + serializer.size_hint(args),
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
    serializer.encode(args, builder.body_mut())?;
    builder
        .finish(max_frame_size)
        .map_err(|e| RpcError::Status(Status::new(StatusCode::FrameTooLarge, e.to_string())))
}

/// Turns a response into the call's result.
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
