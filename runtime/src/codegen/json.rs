//! serde helpers for PROTOCOL.md's JSON and MessagePack mapping: enums by
//! IDL name (numbers accepted), `bytes` as standard base64 in text formats
//! and as raw bytes in binary ones (at any depth of nesting, through
//! [`mapped`](super::mapped)).
//!
//! Text or binary is decided by serde's `is_human_readable()`, so compact
//! formats (postcard) carry enums as numbers and bytes as bytes. MessagePack
//! is not human-readable (its `bytes` are `bin`) but carries enums by name
//! like JSON: it encodes and decodes inside the runtime's *named-enum*
//! scope, which [`serialize_enum`] and [`deserialize_enum`] check too.

use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::types::IdlEnum;

/// Do enums travel by name in this format? In human-readable ones, and in
/// binary ones inside the named-enum scope (MessagePack).
fn enums_by_name(is_human_readable: bool) -> bool {
    is_human_readable || crate::serializer::named_enums_active()
}

/// Serializes an enum: its IDL name in text formats and MessagePack (its
/// number when it is `Unrecognized`), its number in compact binary ones
/// (postcard).
pub fn serialize_enum<E: IdlEnum, S: Serializer>(
    value: &E,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value.idl_name() {
        Some(name) if enums_by_name(serializer.is_human_readable()) => {
            serializer.serialize_str(name)
        }
        _ => serializer.serialize_i32(value.to_i32()),
    }
}

/// Deserializes an enum from its IDL name or its number.
pub fn deserialize_enum<'de, E: IdlEnum, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<E, D::Error> {
    struct EnumVisitor<E>(PhantomData<E>);

    impl<E: IdlEnum> Visitor<'_> for EnumVisitor<E> {
        type Value = E;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an enum variant name or number")
        }

        fn visit_str<Err: de::Error>(self, name: &str) -> Result<E, Err> {
            E::from_idl_name(name)
                .ok_or_else(|| Err::custom(format_args!("unknown enum variant `{name}`")))
        }

        fn visit_i64<Err: de::Error>(self, v: i64) -> Result<E, Err> {
            i32::try_from(v)
                .map(E::from_i32)
                .map_err(|_| Err::custom(format_args!("enum value {v} is out of the i32 range")))
        }

        fn visit_u64<Err: de::Error>(self, v: u64) -> Result<E, Err> {
            i32::try_from(v)
                .map(E::from_i32)
                .map_err(|_| Err::custom(format_args!("enum value {v} is out of the i32 range")))
        }
    }

    // Self-describing formats say whether a name or a number came; compact
    // ones (postcard) can only be asked for the number.
    if enums_by_name(deserializer.is_human_readable()) {
        deserializer.deserialize_any(EnumVisitor(PhantomData))
    } else {
        deserializer.deserialize_i32(EnumVisitor(PhantomData))
    }
}

/// `bytes` borrowed for serializing in the mapping's form.
pub(crate) struct BytesOut<'a>(pub(crate) &'a Bytes);

impl Serialize for BytesOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&STANDARD.encode(self.0))
        } else {
            serializer.serialize_bytes(self.0)
        }
    }
}

/// `bytes` deserialized from the mapping's form.
pub(crate) struct BytesIn(pub(crate) Bytes);

impl<'de> Deserialize<'de> for BytesIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = BytesIn;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("standard base64 text or raw bytes")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<BytesIn, E> {
                STANDARD
                    .decode(text)
                    .map(|raw| BytesIn(Bytes::from(raw)))
                    .map_err(|e| E::custom(format_args!("invalid base64: {e}")))
            }

            fn visit_bytes<E: de::Error>(self, raw: &[u8]) -> Result<BytesIn, E> {
                Ok(BytesIn(Bytes::copy_from_slice(raw)))
            }

            fn visit_byte_buf<E: de::Error>(self, raw: Vec<u8>) -> Result<BytesIn, E> {
                Ok(BytesIn(Bytes::from(raw)))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<BytesIn, A::Error> {
                let mut raw = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(byte) = seq.next_element::<u8>()? {
                    raw.push(byte);
                }
                Ok(BytesIn(Bytes::from(raw)))
            }
        }

        if deserializer.is_human_readable() {
            deserializer.deserialize_str(BytesVisitor)
        } else {
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }
}

/// `#[serde(with)]` for a `bytes` field.
pub mod bytes_field {
    use super::*;

    /// Serializes the field.
    pub fn serialize<S: Serializer>(value: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        BytesOut(value).serialize(serializer)
    }

    /// Deserializes the field.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        BytesIn::deserialize(deserializer).map(|b| b.0)
    }
}
