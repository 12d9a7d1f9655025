//! The fixed 18-byte frame header (PROTOCOL.md, "Frame").

use bytes::{BufMut, BytesMut};

/// The first two bytes of every frame.
pub const MAGIC: u16 = 0xCA11;
/// The protocol version this runtime speaks.
pub const VERSION: u8 = 1;
/// The length of the header in bytes.
pub const HEADER_LEN: usize = 18;

/// Offset of the body length field inside the header.
pub(crate) const BODY_LEN_OFFSET: usize = 14;

/// The message type (byte 4 of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// 1: a request that expects a response.
    Request,
    /// 2: the response to a request.
    Response,
    /// 3: a request that is never answered.
    OnewayRequest,
    /// 4: a heartbeat ping.
    Ping,
    /// 5: the answer to a ping.
    Pong,
    /// 6: the client gave up on a request id.
    Cancel,
    /// 7: one item of a streaming call (body: the item message).
    StreamItem,
    /// 8: the client sent its last item (empty body).
    StreamEnd,
    /// 9: credit for more items of a streaming call (body: u32 count).
    Credit,
    /// 10: metadata the server sends back for a call, before its answer
    /// (body: the request body's metadata layout).
    ResponseMetadata,
    /// A type this version does not know; such frames are skipped, not fatal.
    Unknown(u8),
}

impl MessageKind {
    /// The byte on the wire.
    pub const fn as_u8(self) -> u8 {
        match self {
            MessageKind::Request => 1,
            MessageKind::Response => 2,
            MessageKind::OnewayRequest => 3,
            MessageKind::Ping => 4,
            MessageKind::Pong => 5,
            MessageKind::Cancel => 6,
            MessageKind::StreamItem => 7,
            MessageKind::StreamEnd => 8,
            MessageKind::Credit => 9,
            MessageKind::ResponseMetadata => 10,
            MessageKind::Unknown(other) => other,
        }
    }

    /// The kind for a byte read from the wire.
    pub const fn from_u8(kind: u8) -> MessageKind {
        match kind {
            1 => MessageKind::Request,
            2 => MessageKind::Response,
            3 => MessageKind::OnewayRequest,
            4 => MessageKind::Ping,
            5 => MessageKind::Pong,
            6 => MessageKind::Cancel,
            7 => MessageKind::StreamItem,
            8 => MessageKind::StreamEnd,
            9 => MessageKind::Credit,
            10 => MessageKind::ResponseMetadata,
            other => MessageKind::Unknown(other),
        }
    }
}

/// A frame header; magic and version are implied (always [`MAGIC`] and
/// [`VERSION`] when encoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The serializer id (byte 3), kept raw: an unsupported id is the
    /// receiver's business (status 5), not a framing error.
    pub serializer: u8,
    /// The message type (byte 4).
    pub kind: MessageKind,
    /// The status (byte 5): 0 in requests.
    pub status: u8,
    /// The request id (bytes 6..14).
    pub request_id: u64,
    /// The number of body bytes after the header (bytes 14..18).
    pub body_len: u32,
}

impl FrameHeader {
    /// Appends the 18 header bytes to `buf`.
    pub fn encode_into(&self, buf: &mut BytesMut) {
        buf.reserve(HEADER_LEN);
        buf.put_u16(MAGIC);
        buf.put_u8(VERSION);
        buf.put_u8(self.serializer);
        buf.put_u8(self.kind.as_u8());
        buf.put_u8(self.status);
        buf.put_u64(self.request_id);
        buf.put_u32(self.body_len);
    }
}

/// The raw fields of a header, before magic and version are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawHeader {
    pub magic: u16,
    pub version: u8,
    pub header: FrameHeader,
}

impl RawHeader {
    /// Reads the fields of a header from exactly [`HEADER_LEN`] bytes.
    pub fn read(bytes: &[u8; HEADER_LEN]) -> RawHeader {
        let [
            m0,
            m1,
            version,
            serializer,
            kind,
            status,
            id @ ..,
            l0,
            l1,
            l2,
            l3,
        ] = *bytes;
        RawHeader {
            magic: u16::from_be_bytes([m0, m1]),
            version,
            header: FrameHeader {
                serializer,
                kind: MessageKind::from_u8(kind),
                status,
                request_id: u64::from_be_bytes(id),
                body_len: u32::from_be_bytes([l0, l1, l2, l3]),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_the_table() {
        let header = FrameHeader {
            serializer: 2,
            kind: MessageKind::Response,
            status: 6,
            request_id: 0x0102_0304_0506_0708,
            body_len: 0x0A0B_0C0D,
        };
        let mut buf = BytesMut::new();
        header.encode_into(&mut buf);
        assert_eq!(
            &buf[..],
            &[
                0xCA, 0x11, // magic
                0x01, // version
                0x02, // serializer
                0x02, // message type
                0x06, // status
                0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // request id
                0x0A, 0x0B, 0x0C, 0x0D, // body length
            ]
        );
        assert_eq!(buf.len(), HEADER_LEN);
    }

    #[test]
    fn raw_header_reads_what_was_encoded() {
        let header = FrameHeader {
            serializer: 1,
            kind: MessageKind::OnewayRequest,
            status: 0,
            request_id: u64::MAX,
            body_len: 7,
        };
        let mut buf = BytesMut::new();
        header.encode_into(&mut buf);
        let bytes: [u8; HEADER_LEN] = buf[..].try_into().expect("18 bytes");
        let raw = RawHeader::read(&bytes);
        assert_eq!(raw.magic, MAGIC);
        assert_eq!(raw.version, VERSION);
        assert_eq!(raw.header, header);
    }

    #[test]
    fn message_kinds_round_trip_and_unknown_is_kept() {
        for byte in 0..=u8::MAX {
            assert_eq!(MessageKind::from_u8(byte).as_u8(), byte);
        }
        assert_eq!(MessageKind::from_u8(1), MessageKind::Request);
        assert_eq!(MessageKind::from_u8(6), MessageKind::Cancel);
        assert_eq!(MessageKind::from_u8(7), MessageKind::StreamItem);
        assert_eq!(MessageKind::from_u8(9), MessageKind::Credit);
        assert_eq!(MessageKind::from_u8(10), MessageKind::ResponseMetadata);
        assert_eq!(MessageKind::from_u8(42), MessageKind::Unknown(42));
    }
}
