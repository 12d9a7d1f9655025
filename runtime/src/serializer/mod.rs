//! Serializers: how a payload message becomes bytes (PROTOCOL.md, byte 3 of
//! the header). The server answers in the serializer of the request.
//!
//! The four built-in serializers (protobuf, JSON, postcard, MessagePack) are
//! dispatched statically; a user-supplied [`PayloadCodec`] is reached
//! through [`Serializer::custom`] (one dynamic call per message).

mod codec;
mod declared;
mod enum_mode;
mod formats;

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::TransportError;

pub use codec::{CodecError, DecodeSink, PayloadCodec, ReservedSerializerId};
pub use declared::DeclaredError;
pub(crate) use enum_mode::named_enums_active;
pub use erased_serde;

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
#[derive(Clone, Copy, Default)]
pub enum Serializer {
    /// 1: protobuf, through prost. The default.
    #[default]
    Protobuf,
    /// 2: JSON, through serde_json, with PROTOCOL.md's JSON mapping.
    Json,
    /// 3: postcard: compact, not self-describing, fields in declaration
    /// order, enums as numbers; for Rust-to-Rust links.
    Postcard,
    /// 4: MessagePack, through rmp-serde: the JSON mapping's shape (maps
    /// with named fields, enums by IDL name), with `bytes` as `bin`.
    MessagePack,
    /// A user-supplied codec with its own id (5..=255); build it with
    /// [`Serializer::custom`]. Equal when the ids are.
    Custom(&'static dyn PayloadCodec),
}

impl Serializer {
    /// The built-in serializers, in id order. Every server supports them.
    pub const ALL: [Serializer; 4] = [
        Serializer::Protobuf,
        Serializer::Json,
        Serializer::Postcard,
        Serializer::MessagePack,
    ];

    /// The highest id reserved for built-in serializers (and 0 for "none");
    /// custom codecs use ids above it.
    pub const LAST_BUILTIN_ID: u8 = 4;

    /// A serializer for a user-supplied codec. Fails if the codec's id is
    /// reserved (0..=4). Servers must [register](crate::server::ServerBuilder::add_serializer)
    /// it to accept it; a client just uses it in its `CallOptions`.
    pub fn custom(codec: &'static dyn PayloadCodec) -> Result<Serializer, ReservedSerializerId> {
        let id = codec.id();
        if id <= Serializer::LAST_BUILTIN_ID {
            return Err(ReservedSerializerId(id));
        }
        Ok(Serializer::Custom(codec))
    }

    /// The id carried in the frame header.
    pub fn id(self) -> u8 {
        match self {
            Serializer::Protobuf => 1,
            Serializer::Json => 2,
            Serializer::Postcard => 3,
            Serializer::MessagePack => 4,
            Serializer::Custom(codec) => codec.id(),
        }
    }

    /// The built-in serializer for a header id (custom codecs are looked
    /// up by the server that registered them).
    pub const fn from_id(id: u8) -> Option<Serializer> {
        match id {
            1 => Some(Serializer::Protobuf),
            2 => Some(Serializer::Json),
            3 => Some(Serializer::Postcard),
            4 => Some(Serializer::MessagePack),
            _ => None,
        }
    }

    /// The name used in configuration, URLs and the command line.
    pub fn name(self) -> &'static str {
        match self {
            Serializer::Protobuf => "protobuf",
            Serializer::Json => "json",
            Serializer::Postcard => "postcard",
            Serializer::MessagePack => "msgpack",
            Serializer::Custom(codec) => codec.name(),
        }
    }

    /// A guess of the encoded size of `message`, to size the frame buffer:
    /// exact for protobuf; for the others, the protobuf length and a
    /// quarter (at least 64 bytes).
    pub(crate) fn size_hint<M: WireMessage>(self, message: &M) -> usize {
        match self {
            Serializer::Protobuf => message.encoded_len(),
            // The protobuf length is a close guess for the serde formats
            // (a large `bytes` field is its own length in each; JSON's
            // base64 is a third longer): a 64 KiB payload then takes one
            // buffer, not seven doublings from 64 bytes, whose freed
            // 32 and 64 KiB steps made glibc trim and re-fault its heap.
            _ => (message.encoded_len() + message.encoded_len() / 4).max(64),
        }
    }

    /// Appends `message` to `buf` in this serializer.
    pub fn encode<M: WireMessage>(
        self,
        message: &M,
        buf: &mut BytesMut,
    ) -> Result<(), TransportError> {
        let result = match self {
            Serializer::Protobuf => {
                buf.reserve(message.encoded_len());
                message.encode_raw(buf);
                Ok(())
            }
            Serializer::Json => formats::json_encode(message, buf),
            Serializer::Postcard => formats::postcard_encode(message, buf),
            Serializer::MessagePack => formats::msgpack_encode(message, buf),
            Serializer::Custom(codec) => codec::encode(codec, message, buf),
        };
        result.map_err(|reason| TransportError::Encode {
            what: std::any::type_name::<M>(),
            reason,
        })
    }

    /// Decodes a whole payload in this serializer.
    pub fn decode<M: WireMessage>(self, payload: Bytes) -> Result<M, TransportError> {
        let result = match self {
            Serializer::Protobuf => M::decode(payload).map_err(|e| e.to_string()),
            Serializer::Json => serde_json::from_slice(&payload).map_err(|e| e.to_string()),
            Serializer::Postcard => formats::postcard_decode(&payload),
            Serializer::MessagePack => formats::msgpack_decode(&payload),
            Serializer::Custom(codec) => codec::decode(codec, &payload),
        };
        result.map_err(|reason| TransportError::Decode {
            what: std::any::type_name::<M>(),
            reason,
        })
    }
}

impl PartialEq for Serializer {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for Serializer {}

impl std::hash::Hash for Serializer {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl std::fmt::Debug for Serializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Serializer::Protobuf => f.write_str("Protobuf"),
            Serializer::Json => f.write_str("Json"),
            Serializer::Postcard => f.write_str("Postcard"),
            Serializer::MessagePack => f.write_str("MessagePack"),
            Serializer::Custom(codec) => f
                .debug_struct("Custom")
                .field("id", &codec.id())
                .field("name", &codec.name())
                .finish(),
        }
    }
}

impl std::fmt::Display for Serializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown serializer name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown serializer `{0}` (expected one of: protobuf, json, postcard, msgpack)")]
pub struct UnknownSerializer(pub String);

impl std::str::FromStr for Serializer {
    type Err = UnknownSerializer;

    /// Parses a built-in serializer's name (`messagepack` is accepted for
    /// `msgpack`), ignoring case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("messagepack") {
            return Ok(Serializer::MessagePack);
        }
        Serializer::ALL
            .into_iter()
            .find(|ser| ser.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSerializer(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for serializer in Serializer::ALL {
            assert_eq!(Serializer::from_id(serializer.id()), Some(serializer));
            assert_eq!(
                serializer.name().parse::<Serializer>().ok(),
                Some(serializer)
            );
        }
        assert_eq!(
            "MessagePack".parse::<Serializer>().ok(),
            Some(Serializer::MessagePack)
        );
        assert!(Serializer::from_id(0).is_none());
        assert!(Serializer::from_id(5).is_none());
        assert!("cbor".parse::<Serializer>().is_err());
    }
}
