//! Request bodies (the protocol's "Request body"), response metadata
//! bodies (message type 10) and response messages.

use std::ops::Range;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::context::Metadata;

/// A request body field that could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body ends inside a field, or a length runs past its end.
    #[error("request body is truncated in {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A string field is not UTF-8.
    #[error("request body field {field} is not valid UTF-8")]
    BadUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// The request carries more metadata entries than the receiver accepts
    /// ([`MetadataLimits::max_entries`]).
    #[error("request metadata has {count} entries; at most {max} are accepted")]
    TooManyMetadataEntries {
        /// The entry count the request declares.
        count: u16,
        /// The limit.
        max: usize,
    },
    /// The request's metadata keys and values add up to more bytes than the
    /// receiver accepts ([`MetadataLimits::max_bytes`]).
    #[error("request metadata exceeds {max} bytes of keys and values")]
    MetadataTooLarge {
        /// The limit.
        max: usize,
    },
    /// Bytes follow the last field of a body that has no payload (response
    /// metadata).
    #[error("{len} bytes follow the last metadata entry")]
    TrailingBytes {
        /// How many.
        len: usize,
    },
    /// A string or list is longer than its `u16` length prefix can say.
    #[error("request body field {field} is too long ({len}, at most 65535)")]
    TooLong {
        /// The field being written.
        field: &'static str,
        /// Its length (bytes, or entries for metadata).
        len: usize,
    },
}

/// Bytes that are known to be UTF-8: a string field split zero-copy out of
/// a frame body.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wraps `bytes` if they are UTF-8.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Utf8Bytes, std::str::Utf8Error> {
        // ASCII (every service and method name in practice) is UTF-8, and
        // cheaper to check: `from_utf8` walks a short string byte by byte.
        if !bytes.is_ascii() {
            std::str::from_utf8(&bytes)?;
        }
        Ok(Utf8Bytes(bytes))
    }

    /// A static string, without copying.
    pub const fn from_static(s: &'static str) -> Utf8Bytes {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // Checked on construction; the fallback is never taken.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The string's bytes (no check, unlike [`as_str`](Self::as_str)).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl std::fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much metadata a receiver accepts in one request: checked while the
/// body is parsed, before any entry over the limit is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataLimits {
    /// The most entries.
    pub max_entries: usize,
    /// The most bytes of keys and values together (length prefixes not
    /// counted).
    pub max_bytes: usize,
}

impl MetadataLimits {
    /// No limit beyond what the wire format can say (65535 entries).
    pub const UNLIMITED: MetadataLimits = MetadataLimits {
        max_entries: usize::MAX,
        max_bytes: usize::MAX,
    };
}

/// A parsed request body (message types 1 and 3). Strings and the payload
/// share the frame's buffer; only metadata entries are copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBody {
    /// The service's wire name.
    pub service: Utf8Bytes,
    /// The method's wire name.
    pub method: Utf8Bytes,
    /// Milliseconds the caller will wait; 0 = none.
    pub timeout_ms: u32,
    /// The request's metadata.
    pub metadata: Metadata,
    /// The args message, in the frame's serializer.
    pub payload: Bytes,
}

impl RequestBody {
    /// Parses a request body; every length is checked against what is there.
    pub fn parse(body: Bytes) -> Result<RequestBody, BodyError> {
        RequestBody::parse_limited(body, MetadataLimits::UNLIMITED)
    }

    /// Parses a request body, refusing metadata over `limits` before the
    /// entry that passes them is copied.
    pub fn parse_limited(body: Bytes, limits: MetadataLimits) -> Result<RequestBody, BodyError> {
        let mut reader = Reader { body, pos: 0 };
        let service = reader.utf8_bytes("service")?;
        let method = reader.utf8_bytes("method")?;
        let timeout_ms = reader.u32("timeout")?;
        let metadata = reader.metadata(limits)?;
        Ok(RequestBody {
            service,
            method,
            timeout_ms,
            metadata,
            payload: reader.rest(),
        })
    }

    /// The caller's timeout, if it set one.
    pub fn timeout(&self) -> Option<Duration> {
        (self.timeout_ms != 0).then(|| Duration::from_millis(u64::from(self.timeout_ms)))
    }
}

/// A cursor over a body.
struct Reader {
    body: Bytes,
    pos: usize,
}

impl Reader {
    fn remaining(&self) -> usize {
        self.body.len().saturating_sub(self.pos)
    }

    /// The next `len` bytes' place in the body (checked), moving past them.
    // Inlined into every field read: left to the compiler, whether it was
    // inlined changed with unrelated code elsewhere in the crate (~190
    // instructions a call, measured with callgrind).
    #[inline]
    fn advance(&mut self, len: usize, field: &'static str) -> Result<Range<usize>, BodyError> {
        let start = self.pos;
        let end = start
            .checked_add(len)
            .filter(|end| *end <= self.body.len())
            .ok_or(BodyError::Truncated { field })?;
        self.pos = end;
        Ok(start..end)
    }

    /// The next `len` bytes, sharing the body's buffer.
    #[inline]
    fn take(&mut self, len: usize, field: &'static str) -> Result<Bytes, BodyError> {
        let range = self.advance(len, field)?;
        Ok(self.body.slice(range))
    }

    /// A fixed-size field, read in place (a `Bytes` slice of it would cost
    /// a reference count taken and dropped).
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], BodyError> {
        let range = self.advance(N, field)?;
        <[u8; N]>::try_from(&self.body[range]).map_err(|_| BodyError::Truncated { field })
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, BodyError> {
        self.array(field).map(u16::from_be_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, BodyError> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn utf8_bytes(&mut self, field: &'static str) -> Result<Utf8Bytes, BodyError> {
        let len = self.u16(field)?;
        let bytes = self.take(usize::from(len), field)?;
        Utf8Bytes::try_from_bytes(bytes).map_err(|_| BodyError::BadUtf8 { field })
    }

    /// A string whose length is taken from `budget` before it is copied.
    fn bounded_string(
        &mut self,
        field: &'static str,
        budget: &mut usize,
        max: usize,
    ) -> Result<String, BodyError> {
        let len = self.u16(field)?;
        *budget = budget
            .checked_sub(usize::from(len))
            .ok_or(BodyError::MetadataTooLarge { max })?;
        let range = self.advance(usize::from(len), field)?;
        std::str::from_utf8(&self.body[range])
            .map(str::to_owned)
            .map_err(|_| BodyError::BadUtf8 { field })
    }

    /// A metadata list (u16 count, then key and value strings), refused
    /// past `limits` before the entry that passes them is copied.
    fn metadata(&mut self, limits: MetadataLimits) -> Result<Metadata, BodyError> {
        let count = self.u16("metadata count")?;
        if usize::from(count) > limits.max_entries {
            return Err(BodyError::TooManyMetadataEntries {
                count,
                max: limits.max_entries,
            });
        }
        // Each entry takes at least 4 bytes: never reserve more than could fit.
        let mut entries = Vec::with_capacity(usize::from(count).min(self.remaining() / 4));
        let mut budget = limits.max_bytes;
        for _ in 0..count {
            let key = self.bounded_string("metadata key", &mut budget, limits.max_bytes)?;
            let value = self.bounded_string("metadata value", &mut budget, limits.max_bytes)?;
            entries.push((key, value));
        }
        Ok(entries.into_iter().collect())
    }

    fn rest(self) -> Bytes {
        self.body.slice(self.pos.min(self.body.len())..)
    }
}

/// Appends the fields of a request body up to, not including, the payload;
/// the caller appends the payload after it.
pub fn encode_request_prefix(
    buf: &mut BytesMut,
    service: &str,
    method: &str,
    timeout_ms: u32,
    metadata: &Metadata,
) -> Result<(), BodyError> {
    buf.reserve(2 + service.len() + 2 + method.len() + 4 + metadata_len(metadata));
    put_str(buf, service, "service")?;
    put_str(buf, method, "method")?;
    buf.put_u32(timeout_ms);
    put_metadata(buf, metadata)
}

/// The bytes `metadata` takes on the wire (its count included).
fn metadata_len(metadata: &Metadata) -> usize {
    2 + metadata
        .iter()
        .map(|(k, v)| 4 + k.len() + v.len())
        .sum::<usize>()
}

/// Appends a metadata list: u16 count, then per entry u16 length + UTF-8
/// key, u16 length + UTF-8 value.
fn put_metadata(buf: &mut BytesMut, metadata: &Metadata) -> Result<(), BodyError> {
    let count = u16::try_from(metadata.len()).map_err(|_| BodyError::TooLong {
        field: "metadata count",
        len: metadata.len(),
    })?;
    buf.put_u16(count);
    for (key, value) in metadata.iter() {
        put_str(buf, key, "metadata key")?;
        put_str(buf, value, "metadata value")?;
    }
    Ok(())
}

/// The body of a response metadata frame (message type 10): the metadata
/// in the request body's layout.
pub fn encode_response_metadata(metadata: &Metadata) -> Result<BytesMut, BodyError> {
    let mut buf = BytesMut::with_capacity(metadata_len(metadata));
    put_metadata(&mut buf, metadata)?;
    Ok(buf)
}

/// Parses the body of a response metadata frame (message type 10),
/// refusing metadata over `limits` before the entry that passes them is
/// copied, and a body with bytes after its last entry.
pub fn parse_response_metadata(body: Bytes, limits: MetadataLimits) -> Result<Metadata, BodyError> {
    let mut reader = Reader { body, pos: 0 };
    let metadata = reader.metadata(limits)?;
    if reader.remaining() > 0 {
        return Err(BodyError::TrailingBytes {
            len: reader.remaining(),
        });
    }
    Ok(metadata)
}

fn put_str(buf: &mut BytesMut, s: &str, field: &'static str) -> Result<(), BodyError> {
    let len = u16::try_from(s.len()).map_err(|_| BodyError::TooLong {
        field,
        len: s.len(),
    })?;
    buf.put_u16(len);
    buf.put_slice(s.as_bytes());
    Ok(())
}

/// The timeout field for a timeout: whole milliseconds, rounded up so that
/// a short timeout does not become "none", saturating at `u32::MAX`.
pub fn timeout_to_ms(timeout: Option<Duration>) -> u32 {
    let Some(timeout) = timeout else { return 0 };
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    u32::try_from(millis).unwrap_or(u32::MAX)
}

/// The message of a response whose status is neither 0 nor 1. Invalid
/// UTF-8 from a peer is replaced, not rejected.
pub fn status_message(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// Longest refusal text [`refusal_message`] keeps, in characters.
const REFUSAL_MESSAGE_MAX_CHARS: usize = 256;

/// The message of a connection-level refusal (a status on request id 0,
/// possibly sent before TLS by anyone on the path), made safe to put in an
/// error or a log line: control characters escaped, at most 256 characters.
pub fn refusal_message(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(REFUSAL_MESSAGE_MAX_CHARS)
        .flat_map(char::escape_debug)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Metadata {
        let mut metadata = Metadata::new();
        metadata.insert("trace-id", "abc");
        metadata.insert("user", "bob");
        metadata
    }

    fn encoded(
        service: &str,
        method: &str,
        timeout_ms: u32,
        metadata: &Metadata,
        payload: &[u8],
    ) -> Bytes {
        let mut buf = BytesMut::new();
        encode_request_prefix(&mut buf, service, method, timeout_ms, metadata).expect("encodes");
        buf.extend_from_slice(payload);
        buf.freeze()
    }

    #[test]
    fn body_layout_matches_the_table() {
        let mut metadata = Metadata::new();
        metadata.insert("k", "vv");
        let body = encoded("a.S", "m", 0x0102_0304, &metadata, &[0xAA, 0xBB]);
        assert_eq!(
            &body[..],
            &[
                0, 3, b'a', b'.', b'S', // service
                0, 1, b'm', // method
                1, 2, 3, 4, // timeout
                0, 1, // metadata count
                0, 1, b'k', 0, 2, b'v', b'v', // entry
                0xAA, 0xBB, // payload
            ]
        );
    }

    #[test]
    fn round_trip() {
        let body = encoded(
            "hello.Greeter:2",
            "say_hello",
            250,
            &metadata(),
            b"\x0a\x03Bob",
        );
        let parsed = RequestBody::parse(body).expect("parses");
        assert_eq!(parsed.service.as_str(), "hello.Greeter:2");
        assert_eq!(parsed.method.as_str(), "say_hello");
        assert_eq!(parsed.timeout_ms, 250);
        assert_eq!(parsed.timeout(), Some(Duration::from_millis(250)));
        assert_eq!(parsed.metadata, metadata());
        assert_eq!(&parsed.payload[..], b"\x0a\x03Bob");
    }

    #[test]
    fn empty_payload_and_no_timeout() {
        let parsed =
            RequestBody::parse(encoded("s", "m", 0, &Metadata::new(), b"")).expect("parses");
        assert!(parsed.payload.is_empty());
        assert_eq!(parsed.timeout(), None);
        assert!(parsed.metadata.is_empty());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let body = encoded("svc", "method", 9, &metadata(), b"");
        for len in 0..body.len() {
            let result = RequestBody::parse(body.slice(..len));
            assert!(
                matches!(result, Err(BodyError::Truncated { .. })),
                "{len} bytes: {result:?}"
            );
        }
    }

    #[test]
    fn lengths_that_overrun_are_errors() {
        let body = Bytes::from_static(&[0xFF, 0xFF, b'a']);
        assert_eq!(
            RequestBody::parse(body),
            Err(BodyError::Truncated { field: "service" })
        );
        // A metadata count far larger than the entries present.
        let mut buf = BytesMut::new();
        encode_request_prefix(&mut buf, "s", "m", 0, &Metadata::new()).expect("encodes");
        let len = buf.len();
        buf[len - 2..].copy_from_slice(&[0xFF, 0xFF]);
        assert_eq!(
            RequestBody::parse(buf.freeze()),
            Err(BodyError::Truncated {
                field: "metadata key"
            })
        );
    }

    #[test]
    fn metadata_limits_are_checked_while_parsing() {
        let body = encoded("s", "m", 0, &metadata(), b"");
        let limits = |max_entries, max_bytes| MetadataLimits {
            max_entries,
            max_bytes,
        };
        // `metadata()` has 2 entries of 8 + 3 and 4 + 3 bytes: 18 bytes.
        assert!(RequestBody::parse_limited(body.clone(), limits(2, 18)).is_ok());
        assert_eq!(
            RequestBody::parse_limited(body.clone(), limits(1, 18)),
            Err(BodyError::TooManyMetadataEntries { count: 2, max: 1 })
        );
        assert_eq!(
            RequestBody::parse_limited(body, limits(2, 17)),
            Err(BodyError::MetadataTooLarge { max: 17 })
        );
    }

    #[test]
    fn response_metadata_has_the_request_metadata_layout() {
        let body = encode_response_metadata(&metadata())
            .expect("encodes")
            .freeze();
        assert_eq!(
            &body[..],
            b"\x00\x02\x00\x08trace-id\x00\x03abc\x00\x04user\x00\x03bob"
        );
        let limits = |max_entries, max_bytes| MetadataLimits {
            max_entries,
            max_bytes,
        };
        assert_eq!(
            parse_response_metadata(body.clone(), limits(2, 18)),
            Ok(metadata())
        );
        assert_eq!(
            parse_response_metadata(body.clone(), limits(1, 18)),
            Err(BodyError::TooManyMetadataEntries { count: 2, max: 1 })
        );
        assert_eq!(
            parse_response_metadata(body.clone(), limits(2, 17)),
            Err(BodyError::MetadataTooLarge { max: 17 })
        );
        for cut in 0..body.len() {
            assert!(matches!(
                parse_response_metadata(body.slice(..cut), MetadataLimits::UNLIMITED),
                Err(BodyError::Truncated { .. })
            ));
        }
        let mut longer = BytesMut::from(&body[..]);
        longer.put_u8(0);
        assert_eq!(
            parse_response_metadata(longer.freeze(), MetadataLimits::UNLIMITED),
            Err(BodyError::TrailingBytes { len: 1 })
        );
        assert_eq!(
            encode_response_metadata(&Metadata::new()).expect("encodes")[..],
            [0, 0]
        );
    }

    #[test]
    fn bad_utf8_is_an_error() {
        let body = Bytes::from_static(&[0, 2, 0xC3, 0x28, 0, 1, b'm', 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            RequestBody::parse(body),
            Err(BodyError::BadUtf8 { field: "service" })
        );
        let body = Bytes::from_static(&[0, 1, b's', 0, 1, 0xFF, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            RequestBody::parse(body),
            Err(BodyError::BadUtf8 { field: "method" })
        );
        let body = Bytes::from_static(&[
            0, 1, b's', 0, 1, b'm', 0, 0, 0, 0, 0, 1, 0, 1, b'k', 0, 1, 0x80,
        ]);
        assert_eq!(
            RequestBody::parse(body),
            Err(BodyError::BadUtf8 {
                field: "metadata value"
            })
        );
    }

    #[test]
    fn too_long_fields_are_refused_when_encoding() {
        let long = "x".repeat(70_000);
        let mut buf = BytesMut::new();
        assert_eq!(
            encode_request_prefix(&mut buf, &long, "m", 0, &Metadata::new()),
            Err(BodyError::TooLong {
                field: "service",
                len: 70_000
            })
        );
    }

    #[test]
    fn timeouts_round_up_and_saturate() {
        assert_eq!(timeout_to_ms(None), 0);
        assert_eq!(timeout_to_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_to_ms(Some(Duration::from_millis(1500))), 1500);
        assert_eq!(timeout_to_ms(Some(Duration::from_secs(u64::MAX))), u32::MAX);
    }

    #[test]
    fn refusal_messages_are_escaped_and_bounded() {
        assert_eq!(
            refusal_message(b"too many\nconnections"),
            "too many\\nconnections"
        );
        assert_eq!(
            refusal_message(&[b'x'; 1000]).len(),
            REFUSAL_MESSAGE_MAX_CHARS
        );
    }

    #[test]
    fn status_messages_tolerate_bad_utf8() {
        assert_eq!(status_message(b"unknown method"), "unknown method");
        assert_eq!(status_message(&[b'a', 0xFF]), "a\u{FFFD}");
    }
}
