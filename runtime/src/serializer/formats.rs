//! The serde-based built-in formats: JSON, postcard and MessagePack.
//!
//! Errors are returned as text; [`Serializer`](super::Serializer) wraps
//! them into a typed [`TransportError`](crate::TransportError).

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::enum_mode::with_named_enums;

/// JSON: PROTOCOL.md's mapping (enums by name, base64 bytes: serde_json is
/// human-readable).
pub(super) fn json_encode<M: Serialize>(message: &M, buf: &mut BytesMut) -> Result<(), String> {
    serde_json::to_writer(buf.writer(), message).map_err(|e| e.to_string())
}

/// postcard: enums as numbers and bytes as raw bytes (postcard is not
/// human-readable, and enums are not switched to names).
pub(super) fn postcard_encode<M: Serialize>(message: &M, buf: &mut BytesMut) -> Result<(), String> {
    postcard::serialize_with_flavor(message, AppendTo(buf)).map_err(|e| e.to_string())
}

/// Decodes a postcard payload. Bytes after the message are ignored, so a
/// newer peer may append fields to the top-level message.
pub(super) fn postcard_decode<M: DeserializeOwned>(payload: &[u8]) -> Result<M, String> {
    postcard::from_bytes(payload).map_err(|e| e.to_string())
}

/// MessagePack: structs as maps with named fields (`with_struct_map`),
/// not human-readable (so `bytes` are `bin`), but enums by IDL name like
/// JSON (the named-enum mode of the enum helpers).
pub(super) fn msgpack_encode<M: Serialize>(message: &M, buf: &mut BytesMut) -> Result<(), String> {
    let mut serializer = rmp_serde::Serializer::new(buf.writer())
        .with_struct_map()
        .with_binary();
    with_named_enums(|| message.serialize(&mut serializer)).map_err(|e| e.to_string())
}

/// Decodes a MessagePack payload; enums are accepted as names or numbers.
pub(super) fn msgpack_decode<M: DeserializeOwned>(payload: &[u8]) -> Result<M, String> {
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(payload).with_binary();
    with_named_enums(|| M::deserialize(&mut deserializer)).map_err(|e| e.to_string())
}

/// A postcard output flavor that appends to a `BytesMut` (one buffer per
/// frame, no intermediate `Vec`).
struct AppendTo<'a>(&'a mut BytesMut);

impl postcard::ser_flavors::Flavor for AppendTo<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.put_u8(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}
