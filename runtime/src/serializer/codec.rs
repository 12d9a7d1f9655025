//! The extension point for user-supplied serializers: [`PayloadCodec`].
//!
//! A codec sees messages type-erased through [`erased_serde`], so one
//! codec object serves every generated message type. Built-in serializers
//! never go through here.

use bytes::BytesMut;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::enum_mode::with_named_enums;

/// The error a codec reports; the runtime turns it into
/// [`TransportError::Encode`](crate::TransportError::Encode) or
/// [`Decode`](crate::TransportError::Decode) with its text.
pub type CodecError = Box<dyn std::error::Error + Send + Sync>;

/// A serializer a user adds under its own header id (5..=255).
///
/// Use it on a client with `CallOptions { serializer:
/// Serializer::custom(&MY_CODEC)?, .. }`; a server accepts it once it is
/// registered with [`ServerBuilder::add_serializer`](crate::server::ServerBuilder::add_serializer).
/// Both ends must agree on what the id means.
///
/// ```
/// use bytes::{BufMut, BytesMut};
/// use courier::serializer::{erased_serde, CodecError, DecodeSink, PayloadCodec};
///
/// /// MessagePack with positional (array) structs, under id 200.
/// struct CompactMsgpack;
///
/// impl PayloadCodec for CompactMsgpack {
///     fn id(&self) -> u8 { 200 }
///     fn name(&self) -> &'static str { "msgpack-compact" }
///     fn encode(&self, message: &dyn erased_serde::Serialize, buf: &mut BytesMut) -> Result<(), CodecError> {
///         let mut serializer = rmp_serde::Serializer::new(buf.writer());
///         message.erased_serialize(&mut <dyn erased_serde::Serializer>::erase(&mut serializer))?;
///         Ok(())
///     }
///     fn decode(&self, payload: &[u8], sink: &mut DecodeSink<'_>) -> Result<(), CodecError> {
///         let mut deserializer = rmp_serde::Deserializer::from_read_ref(payload);
///         sink.deserialize(&mut <dyn erased_serde::Deserializer>::erase(&mut deserializer))?;
///         Ok(())
///     }
/// }
///
/// static COMPACT: CompactMsgpack = CompactMsgpack;
/// let serializer = courier::Serializer::custom(&COMPACT).expect("id 200 is free");
/// assert_eq!(serializer.id(), 200);
/// ```
pub trait PayloadCodec: Send + Sync + 'static {
    /// The id carried in byte 3 of the header: 5..=255 (0..=4 are
    /// PROTOCOL.md's).
    fn id(&self) -> u8;

    /// A short name for messages and logs.
    fn name(&self) -> &'static str;

    /// Whether IDL enums travel by name even when the format is not
    /// human-readable (as MessagePack does). By default they follow serde's
    /// `is_human_readable()`: names in text formats, numbers in binary ones.
    fn enums_by_name(&self) -> bool {
        false
    }

    /// Appends `message` to `buf`.
    fn encode(
        &self,
        message: &dyn erased_serde::Serialize,
        buf: &mut BytesMut,
    ) -> Result<(), CodecError>;

    /// Decodes `payload`: builds a deserializer over it and hands it to
    /// [`DecodeSink::deserialize`].
    fn decode(&self, payload: &[u8], sink: &mut DecodeSink<'_>) -> Result<(), CodecError>;
}

/// Where a [`PayloadCodec`] delivers the message it decodes: the runtime
/// knows the message type, the codec knows the format.
pub struct DecodeSink<'a> {
    accept: &'a mut dyn FnMut(
        &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<(), erased_serde::Error>,
}

impl std::fmt::Debug for DecodeSink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeSink").finish_non_exhaustive()
    }
}

impl DecodeSink<'_> {
    /// Deserializes the expected message from `deserializer`.
    pub fn deserialize(
        &mut self,
        deserializer: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<(), erased_serde::Error> {
        (self.accept)(deserializer)
    }
}

/// A custom codec's id collides with a built-in serializer's (0..=4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("serializer id {0} is reserved by PROTOCOL.md; custom codecs use 5..=255")]
pub struct ReservedSerializerId(pub u8);

/// Runs `f` in the codec's enum mode.
fn in_enum_mode<R>(codec: &dyn PayloadCodec, f: impl FnOnce() -> R) -> R {
    if codec.enums_by_name() {
        with_named_enums(f)
    } else {
        f()
    }
}

/// Encodes `message` with a custom codec.
pub(super) fn encode<M: Serialize>(
    codec: &dyn PayloadCodec,
    message: &M,
    buf: &mut BytesMut,
) -> Result<(), String> {
    in_enum_mode(codec, || codec.encode(message, buf)).map_err(|e| e.to_string())
}

/// Decodes a `M` with a custom codec.
pub(super) fn decode<M: DeserializeOwned>(
    codec: &dyn PayloadCodec,
    payload: &[u8],
) -> Result<M, String> {
    let mut decoded: Option<M> = None;
    let mut accept = |deserializer: &mut dyn erased_serde::Deserializer<'_>| {
        decoded = Some(erased_serde::deserialize::<M>(deserializer)?);
        Ok(())
    };
    let mut sink = DecodeSink {
        accept: &mut accept,
    };
    in_enum_mode(codec, || codec.decode(payload, &mut sink)).map_err(|e| e.to_string())?;
    decoded.ok_or_else(|| format!("the {} codec decoded no message", codec.name()))
}
