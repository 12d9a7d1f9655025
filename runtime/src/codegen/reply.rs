//! [`Reply`]: the result message of every method (PROTOCOL.md, "Payload
//! messages"): one field `value`, tag 1, holding the return value; for a
//! `void` method (`Reply<()>`), the empty message.

use std::fmt;
use std::marker::PhantomData;

use bytes::{Buf, BufMut};
use prost::DecodeError;
use prost::encoding::{DecodeContext, WireType};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::field::{Field, Mapped, MappedIn, skip};

/// The result message of a method returning `T` (`()` for `void`): the
/// same for every method, so generated code has no struct of its own per
/// method. In JSON `{"value": ...}` (`{}` for `void`); in protobuf field 1
/// (no field for `void`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply<T> {
    /// The return value.
    pub value: T,
}

impl<T> Reply<T> {
    /// The reply carrying `value`.
    #[inline]
    pub fn new(value: T) -> Self {
        Reply { value }
    }
}

impl<T: Field> prost::Message for Reply<T> {
    #[inline]
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.value.encode_field(1, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => self.value.merge_field(wire_type, buf, ctx),
            _ => skip(wire_type, tag, buf, ctx),
        }
    }

    #[inline]
    fn encoded_len(&self) -> usize {
        self.value.field_len(1)
    }

    fn clear(&mut self) {
        self.value = T::default();
    }
}

/// The one key of the result message.
const VALUE: &str = "value";

impl<T: Field> Serialize for Reply<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if T::IS_UNIT {
            return serializer.serialize_struct("Reply", 0)?.end();
        }
        let mut message = serializer.serialize_struct("Reply", 1)?;
        message.serialize_field(VALUE, &Mapped(&self.value))?;
        message.end()
    }
}

impl<'de, T: Field> Deserialize<'de> for Reply<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ReplyVisitor<T>(PhantomData<T>);

        impl<'de, T: Field> Visitor<'de> for ReplyVisitor<T> {
            type Value = Reply<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a result message")
            }

            // Self-describing formats (JSON, MessagePack): a missing key is
            // the default, unknown keys are ignored (newer peers may add
            // fields), a repeated key is an error (as serde's derive says).
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Reply<T>, A::Error> {
                let mut value = None;
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Value if !T::IS_UNIT => {
                            if value.is_some() {
                                return Err(de::Error::duplicate_field(VALUE));
                            }
                            value = Some(map.next_value::<MappedIn<T>>()?.0);
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Reply::new(value.unwrap_or_default()))
            }

            // Postcard: the fields in order (none for `void`).
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Reply<T>, A::Error> {
                if T::IS_UNIT {
                    return Ok(Reply::default());
                }
                let value = seq.next_element::<MappedIn<T>>()?.map(|value| value.0);
                Ok(Reply::new(value.unwrap_or_default()))
            }
        }

        let fields: &'static [&'static str] = if T::IS_UNIT { &[] } else { &[VALUE] };
        deserializer.deserialize_struct("Reply", fields, ReplyVisitor(PhantomData))
    }
}

/// A key of the result message: `value`, or one this version ignores.
enum Key {
    Value,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(if key == VALUE { Key::Value } else { Key::Other })
            }

            fn visit_bytes<E: de::Error>(self, key: &[u8]) -> Result<Key, E> {
                Ok(if key == VALUE.as_bytes() {
                    Key::Value
                } else {
                    Key::Other
                })
            }

            // serde's derive also accepts a field's index.
            fn visit_u64<E: de::Error>(self, index: u64) -> Result<Key, E> {
                Ok(if index == 0 { Key::Value } else { Key::Other })
            }
        }

        deserializer.deserialize_identifier(KeyVisitor)
    }
}
