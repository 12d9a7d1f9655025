//! Serializers: how a payload message becomes bytes (PROTOCOL.md, byte 3 of
//! the header). The server answers in the serializer of the request.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{NoDeclaredError, TransportError};

/// A payload message: every generated struct, args, result and error message.
///
/// It can be carried by every serializer: protobuf through [`prost::Message`],
/// the others through serde.
pub trait WireMessage:
    prost::Message + Default + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<T> WireMessage for T where
    T: prost::Message + Default + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

/// The serializer of a frame: the id in byte 3 of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Serializer {
    /// 1: protobuf, through prost. The default.
    #[default]
    Protobuf,
    /// 2: JSON, through serde_json, with PROTOCOL.md's JSON mapping.
    Json,
}

impl Serializer {
    /// Every serializer this runtime supports, in id order.
    pub const ALL: [Serializer; 2] = [Serializer::Protobuf, Serializer::Json];

    /// The id carried in the frame header.
    pub const fn id(self) -> u8 {
        match self {
            Serializer::Protobuf => 1,
            Serializer::Json => 2,
        }
    }

    /// The serializer for a header id, if this runtime supports it.
    pub const fn from_id(id: u8) -> Option<Serializer> {
        match id {
            1 => Some(Serializer::Protobuf),
            2 => Some(Serializer::Json),
            _ => None,
        }
    }

    /// The name used in configuration, URLs and the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Serializer::Protobuf => "protobuf",
            Serializer::Json => "json",
        }
    }

    /// Appends `message` to `buf` in this serializer.
    pub fn encode<M: WireMessage>(
        self,
        message: &M,
        buf: &mut BytesMut,
    ) -> Result<(), TransportError> {
        match self {
            Serializer::Protobuf => {
                buf.reserve(message.encoded_len());
                message.encode_raw(buf);
                Ok(())
            }
            Serializer::Json => {
                serde_json::to_writer(buf.writer(), message).map_err(|e| TransportError::Encode {
                    what: std::any::type_name::<M>(),
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Decodes a whole payload in this serializer.
    pub fn decode<M: WireMessage>(self, payload: Bytes) -> Result<M, TransportError> {
        let result = match self {
            Serializer::Protobuf => M::decode(payload).map_err(|e| e.to_string()),
            Serializer::Json => serde_json::from_slice(&payload).map_err(|e| e.to_string()),
        };
        result.map_err(|reason| TransportError::Decode {
            what: std::any::type_name::<M>(),
            reason,
        })
    }
}

impl std::fmt::Display for Serializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown serializer name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown serializer `{0}` (expected one of: protobuf, json)")]
pub struct UnknownSerializer(pub String);

impl std::str::FromStr for Serializer {
    type Err = UnknownSerializer;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Serializer::ALL
            .into_iter()
            .find(|ser| ser.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSerializer(s.to_owned()))
    }
}

/// The declared error of a method (its `throws`), as the runtime carries it
/// in a status-1 response.
pub trait DeclaredError: std::fmt::Debug + Send + Sync + 'static + Sized {
    /// Appends the error message to `buf`.
    fn encode_declared(
        &self,
        serializer: Serializer,
        buf: &mut BytesMut,
    ) -> Result<(), TransportError>;
    /// Decodes the error message of a status-1 response.
    fn decode_declared(serializer: Serializer, payload: Bytes) -> Result<Self, TransportError>;
}

impl<M: WireMessage + std::fmt::Debug> DeclaredError for M {
    fn encode_declared(
        &self,
        serializer: Serializer,
        buf: &mut BytesMut,
    ) -> Result<(), TransportError> {
        serializer.encode(self, buf)
    }

    fn decode_declared(serializer: Serializer, payload: Bytes) -> Result<Self, TransportError> {
        serializer.decode(payload)
    }
}

impl DeclaredError for NoDeclaredError {
    fn encode_declared(&self, _: Serializer, _: &mut BytesMut) -> Result<(), TransportError> {
        match *self {}
    }

    fn decode_declared(_: Serializer, _: Bytes) -> Result<Self, TransportError> {
        Err(TransportError::Protocol(
            "a declared error (status 1) came back for a method that declares none".into(),
        ))
    }
}
