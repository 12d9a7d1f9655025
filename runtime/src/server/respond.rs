//! Building response frames: one buffer per response, header and body.

use bytes::{BufMut, Bytes};

use crate::context::Metadata;
use crate::error::{RpcError, StatusCode};
use crate::protocol::{FrameBuilder, FrameHeader, MessageKind, encode_response_metadata};
use crate::serializer::{DeclaredError, Serializer, WireMessage};

/// The longest status message sent; longer ones are cut (at a char
/// boundary), so an error message can't make a frame too large.
const MAX_STATUS_MESSAGE: usize = 4096;

/// Builds the response frames of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Responder {
    request_id: u64,
    serializer: u8,
    max_frame_size: u32,
}

impl Responder {
    /// Answers `request_id` in `serializer` (echoed as sent).
    pub fn new(request_id: u64, serializer: u8, max_frame_size: u32) -> Responder {
        Responder {
            request_id,
            serializer,
            max_frame_size,
        }
    }

    /// The request id answered.
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// The largest frame the server sends.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// A frame of `kind` for the call, status 0, with room for
    /// `body_hint` bytes.
    pub fn frame(&self, kind: MessageKind, body_hint: usize) -> FrameBuilder {
        FrameBuilder::new(
            FrameHeader {
                serializer: self.serializer,
                kind,
                status: 0,
                request_id: self.request_id,
                body_len: 0,
            },
            body_hint,
        )
    }

    fn builder(&self, status: StatusCode, body_hint: usize) -> FrameBuilder {
        FrameBuilder::new(
            FrameHeader {
                serializer: self.serializer,
                kind: MessageKind::Response,
                status: status.as_u8(),
                request_id: self.request_id,
                body_len: 0,
            },
            body_hint,
        )
    }

    /// A response with a status and a message for humans.
    pub fn status(&self, code: StatusCode, message: &str) -> Bytes {
        let message = truncate(message, MAX_STATUS_MESSAGE);
        let mut builder = self.builder(code, message.len());
        builder.body_mut().put_slice(message.as_bytes());
        // The message is bounded well below any sane limit; an absurdly
        // small limit still gets an answer, without the message.
        builder.finish(self.max_frame_size).unwrap_or_else(|_| {
            let mut builder = self.builder(code, 0);
            builder.clear_body();
            builder.finish(u32::MAX).unwrap_or_default()
        })
    }

    /// Status 0 with the reply message.
    pub fn reply<M: WireMessage>(&self, serializer: Serializer, reply: &M) -> Bytes {
        let mut builder = self.builder(StatusCode::Ok, serializer.size_hint(reply));
        if let Serializer::Protobuf = serializer {
            // The hint is the exact length (`encoded_len`, which walks the
            // whole message): the buffer has room, no second walk.
            reply.encode_raw(builder.body_mut());
        } else if let Err(e) = serializer.encode(reply, builder.body_mut()) {
            return self.status(StatusCode::Internal, &e.to_string());
        }
        self.finish(builder)
    }

    /// Status 0 with the empty message (a one-way method called as a
    /// request that expects an answer).
    pub fn empty_reply(&self, serializer: Serializer) -> Bytes {
        self.reply(serializer, &EmptyMessage {})
    }

    /// The answer for a handler's error.
    ///
    /// A transport error (a handler passing on the failure of a call it
    /// made) is answered with [`RpcError::code`], the code the handler's
    /// own caller would see for it: status 6 for
    /// [`TransportError::SendQueueFull`](crate::TransportError::SendQueueFull)
    /// (the deadline, which the handler's calls inherit, passed while the
    /// call waited to be sent), status 8 for the others.
    pub fn error<E: DeclaredError>(&self, serializer: Serializer, error: RpcError<E>) -> Bytes {
        let code = error.code();
        match error {
            RpcError::Declared(declared) => {
                let mut builder = self.builder(StatusCode::DeclaredError, 64);
                if let Err(e) = declared.encode_declared(serializer, builder.body_mut()) {
                    return self.status(StatusCode::Internal, &e.to_string());
                }
                self.finish(builder)
            }
            RpcError::Status(status) => match status.code() {
                // 0 and 1 carry messages, not text: a handler can't use them.
                StatusCode::Ok | StatusCode::DeclaredError => self.status(
                    StatusCode::Internal,
                    &format!(
                        "handler failed with status {}: {}",
                        status.code(),
                        status.message()
                    ),
                ),
                code => self.status(code, status.message()),
            },
            RpcError::Transport(transport) => self.status(code, &transport.to_string()),
        }
    }

    /// The response metadata frame (message type 10) of the call, before
    /// its answer; `None` if the metadata does not fit the wire format
    /// (checked earlier, when the handler set it).
    pub fn response_metadata(&self, metadata: &Metadata) -> Option<Bytes> {
        let body = encode_response_metadata(metadata).ok()?;
        let mut builder = FrameBuilder::new(
            FrameHeader {
                serializer: self.serializer,
                kind: MessageKind::ResponseMetadata,
                status: 0,
                request_id: self.request_id,
                body_len: 0,
            },
            body.len(),
        );
        builder.body_mut().put_slice(&body);
        builder.finish(self.max_frame_size).ok()
    }

    fn finish(&self, builder: FrameBuilder) -> Bytes {
        match builder.finish(self.max_frame_size) {
            Ok(frame) => frame,
            Err(too_large) => self.status(
                StatusCode::Internal,
                &format!("the reply is too large: {too_large}"),
            ),
        }
    }
}

/// The empty message (a `void` result): zero bytes in protobuf and
/// postcard, `{}` in JSON, an empty map in MessagePack.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct EmptyMessage {}

impl prost::Message for EmptyMessage {
    fn encode_raw(&self, _: &mut impl bytes::BufMut) {}

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        0
    }

    fn clear(&mut self) {}
}

/// `s` cut to at most `max` bytes at a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Status;

    fn parse(frame: &Bytes) -> (u8, u8, u64, &[u8]) {
        (
            frame[3],
            frame[5],
            u64::from_be_bytes(frame[6..14].try_into().expect("8")),
            &frame[18..],
        )
    }

    #[test]
    fn status_frames_carry_the_message() {
        let frame = Responder::new(9, 2, 1024).status(StatusCode::UnknownMethod, "no such method");
        assert_eq!(parse(&frame), (2, 3, 9, &b"no such method"[..]));
    }

    #[test]
    fn handler_statuses_0_and_1_become_internal() {
        let responder = Responder::new(1, 1, 1024);
        let frame = responder.error::<crate::NoDeclaredError>(
            Serializer::Protobuf,
            RpcError::Status(Status::new(StatusCode::Ok, "x")),
        );
        assert_eq!(frame[5], 8);
    }

    #[test]
    fn every_other_handler_status_goes_out_as_is() {
        let responder = Responder::new(3, 2, 1024);
        for byte in (2..=21).chain([22, 255]) {
            let frame = responder.error::<crate::NoDeclaredError>(
                Serializer::Json,
                RpcError::Status(Status::new(StatusCode::from_u8(byte), "why")),
            );
            assert_eq!(parse(&frame), (2, byte, 3, &b"why"[..]), "status {byte}");
        }
        let frame = responder.error::<crate::NoDeclaredError>(
            Serializer::Json,
            RpcError::Status(Status::new(StatusCode::DeclaredError, "x")),
        );
        assert_eq!(frame[5], 8);
    }

    #[test]
    fn a_transport_error_is_answered_with_its_own_code() {
        let responder = Responder::new(1, 1, 1 << 20);
        let answer = |error: crate::TransportError| {
            responder.error::<crate::NoDeclaredError>(Serializer::Protobuf, error.into())
        };
        let stalled = answer(crate::TransportError::SendQueueFull {
            addr: "10.0.0.1:7070".to_owned(),
            waited: std::time::Duration::from_millis(50),
            queued_calls: 1024,
            queued_bytes: 4 << 20,
        });
        assert_eq!(stalled[5], StatusCode::DeadlineExceeded.as_u8());
        let message = String::from_utf8_lossy(&stalled[18..]).into_owned();
        assert!(
            message.contains("waiting for room in the send queue"),
            "{message}"
        );
        let lost = answer(crate::TransportError::ConnectionLost("reset".to_owned()));
        assert_eq!(lost[5], StatusCode::Internal.as_u8());
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
        let frame = Responder::new(1, 1, 1 << 20).status(StatusCode::Internal, &"é".repeat(5000));
        assert!(frame.len() - 18 <= MAX_STATUS_MESSAGE);
    }

    #[test]
    fn the_empty_reply_in_every_serializer() {
        let body = |serializer| Responder::new(1, 0, 64).empty_reply(serializer)[18..].to_vec();
        assert_eq!(body(Serializer::Protobuf), b"");
        assert_eq!(body(Serializer::Json), b"{}");
        assert_eq!(body(Serializer::Postcard), b"");
        assert_eq!(body(Serializer::MessagePack), [0x80]);
    }

    #[test]
    fn a_reply_over_the_limit_becomes_internal() {
        // prost implements `Message` for `String` (a wrapper message).
        let frame = Responder::new(1, 2, 4).reply(Serializer::Json, &"a long string".to_owned());
        assert_eq!(frame[5], 8);
        let frame = Responder::new(1, 2, 64).reply(Serializer::Json, &"short".to_owned());
        assert_eq!(parse(&frame), (2, 0, 1, &b"\"short\""[..]));
    }
}
