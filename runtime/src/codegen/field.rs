//! The field codec: how one value of any IDL type travels, in protobuf and
//! in PROTOCOL.md's serde mapping, whatever its shape — scalars, enums,
//! messages, lists, maps and optional values, nested to any depth.
//!
//! Generated `prost::Message` impls (written by the macros of
//! `codegen::macros` from a type's list of fields) call it once per field
//! and function, so the wire mapping lives here, once, instead of being
//! spelled out by the code generator for every field. Every call is static
//! and generic: it compiles to the prost encoding functions a hand-written
//! impl would call.
//!
//! Protobuf rules (IDL.md, PROTOCOL.md "Payload messages"):
//! - a singular scalar or enum field is left out when it equals its default
//!   (the type's zero value; fields with an IDL default compare with it in
//!   [`encode_unless`]); a nested message is always written; an `optional`
//!   value is written exactly when it is set; a union arm always;
//! - lists of numbers, bools and enums are packed; lists of strings, bytes
//!   and messages repeat the field; map entries are prost's (a key or value
//!   equal to its type's default is left out of the entry);
//! - a list or map *inside* a list or map (a list item, a map value) travels
//!   as a message with one field, tag 1, holding it: `list<list<u32>>` is
//!   `repeated Inner` with `message Inner { repeated uint32 value = 1; }`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes};
use prost::DecodeError;
use prost::encoding::{
    self as pe, DecodeContext, WireType, encode_key, encode_varint, encoded_len_varint, key_len,
};
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::json::{BytesIn, BytesOut};
use super::types::IdlEnum;

/// A type that can be a field, parameter, result, list item, map value or
/// union arm of a generated message: how it travels in protobuf, as a field
/// and as a value, and in PROTOCOL.md's serde mapping.
///
/// Implemented for the scalars (`bool`, `i32`, `i64`, `u32`, `u64`, `f32`,
/// `f64`, `String`, `Bytes`), for generated structs, unions and enums (by
/// the generated code's `__rt::message!`, `__rt::union!` and
/// `__rt::idl_enum!`), and for `Vec`, `HashMap`, `BTreeMap`, `Option` and
/// `Box` of field types.
pub trait Field: fmt::Debug + Default + PartialEq + Send + Sync + 'static {
    /// `()`: the "value" of a `void` method's result message, which has no
    /// field at all.
    #[doc(hidden)]
    const IS_UNIT: bool = false;

    /// Appends the field with `tag`, unless it is absent (a scalar or enum
    /// equal to its zero value, an empty list or map, an unset optional).
    fn encode_field(&self, tag: u32, buf: &mut impl BufMut);

    /// The encoded length of [`encode_field`](Field::encode_field)'s output.
    fn field_len(&self, tag: u32) -> usize;

    /// Merges one occurrence of the field from `buf` (prost's semantics: a
    /// scalar is replaced, a message merged, a list or map extended).
    fn merge_field(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError>;

    /// Appends the value with `tag`, always (a list item, a map value, a set
    /// optional, a union arm). Lists and maps are wrapped in a one-field
    /// message.
    fn encode_value(&self, tag: u32, buf: &mut impl BufMut);

    /// The encoded length of [`encode_value`](Field::encode_value)'s output.
    fn value_len(&self, tag: u32) -> usize;

    /// Merges one value written by [`encode_value`](Field::encode_value).
    fn merge_value(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError>;

    /// Appends the value as a union arm: always, even when it holds its
    /// default (a list or map arm is written as a list or map field: a
    /// union is a protobuf `oneof`).
    #[inline]
    fn encode_arm(&self, tag: u32, buf: &mut impl BufMut) {
        self.encode_value(tag, buf);
    }

    /// The encoded length of [`encode_arm`](Field::encode_arm)'s output.
    #[inline]
    fn arm_len(&self, tag: u32) -> usize {
        self.value_len(tag)
    }

    /// Merges one occurrence of a union arm.
    #[inline]
    fn merge_arm(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        self.merge_value(wire_type, buf, ctx)
    }

    /// Appends a list of values as the field `tag` (one field per item, or
    /// packed for numbers, bools and enums).
    fn encode_list(values: &[Self], tag: u32, buf: &mut impl BufMut) {
        for value in values {
            value.encode_value(tag, buf);
        }
    }

    /// The encoded length of [`encode_list`](Field::encode_list)'s output.
    fn list_len(values: &[Self], tag: u32) -> usize {
        values.iter().map(|value| value.value_len(tag)).sum()
    }

    /// Merges one occurrence of a list field (one item, or a packed run).
    fn merge_list(
        values: &mut Vec<Self>,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let mut value = Self::default();
        value.merge_value(wire_type, buf, ctx)?;
        values.push(value);
        Ok(())
    }

    /// Serializes the value in PROTOCOL.md's mapping (`bytes` as base64 in
    /// text formats, as raw bytes in binary ones; everything else as its own
    /// `Serialize` impl writes it).
    fn serialize_mapped<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;

    /// Deserializes a value written by [`serialize_mapped`](Field::serialize_mapped).
    fn deserialize_mapped<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// Appends a struct field with `tag` unless it is absent (see [`Field`]).
#[inline]
pub fn encode<T: Field>(tag: u32, value: &T, buf: &mut impl BufMut) {
    value.encode_field(tag, buf);
}

/// The encoded length of a struct field.
#[inline]
pub fn encoded_len<T: Field>(tag: u32, value: &T) -> usize {
    value.field_len(tag)
}

/// Merges one occurrence of a struct field.
#[inline]
pub fn merge<T: Field>(
    wire_type: WireType,
    value: &mut T,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    value.merge_field(wire_type, buf, ctx)
}

/// Appends a union arm (always written, even when it holds its default).
#[inline]
pub fn encode_arm<T: Field>(tag: u32, value: &T, buf: &mut impl BufMut) {
    value.encode_arm(tag, buf);
}

/// The encoded length of a union arm.
#[inline]
pub fn arm_len<T: Field>(tag: u32, value: &T) -> usize {
    value.arm_len(tag)
}

/// Merges a union arm into the value it already holds.
#[inline]
pub fn merge_arm<T: Field>(
    wire_type: WireType,
    value: &mut T,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    value.merge_arm(wire_type, buf, ctx)
}

/// Decodes a union arm that is not the one `union` holds: a new value of
/// the arm (made by `arm`, the variant) replaces it.
#[inline]
pub fn replace_arm<U, T: Field>(
    union: &mut U,
    arm: fn(T) -> U,
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    let mut value = T::default();
    value.merge_arm(wire_type, buf, ctx)?;
    *union = arm(value);
    Ok(())
}

/// Skips a field this version does not know.
#[inline]
pub fn skip(
    wire_type: WireType,
    tag: u32,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    pe::skip_field(wire_type, tag, buf, ctx)
}

/// `#[serde(with = "__rt::mapped")]`: a field whose type holds `bytes`
/// somewhere (`bytes`, `optional bytes`, `list<list<bytes>>`,
/// `map<string, bytes>`, ...), serialized in PROTOCOL.md's mapping.
pub mod mapped {
    use super::*;

    /// Serializes the field.
    pub fn serialize<T: Field, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        value.serialize_mapped(serializer)
    }

    /// Deserializes the field.
    pub fn deserialize<'de, T: Field, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        T::deserialize_mapped(deserializer)
    }
}

/// A value serialized through [`Field::serialize_mapped`].
pub(crate) struct Mapped<'a, T>(pub(crate) &'a T);

impl<T: Field> Serialize for Mapped<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_mapped(serializer)
    }
}

/// A value deserialized through [`Field::deserialize_mapped`].
pub(crate) struct MappedIn<T>(pub(crate) T);

impl<'de, T: Field> Deserialize<'de> for MappedIn<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize_mapped(deserializer).map(MappedIn)
    }
}

/// How many items a collection reserves room for before any has arrived,
/// whatever length its input claims.
const MAX_PREALLOCATED: usize = 4096;

// ---- scalars ----------------------------------------------------------------

/// A scalar that prost encodes with one of its `encoding` modules.
macro_rules! scalar {
    ($ty:ty, $module:ident, packed: $packed:tt, zero: |$v:ident| $is_zero:expr, serde: $serde:ident) => {
        impl Field for $ty {
            #[inline]
            fn encode_field(&self, tag: u32, buf: &mut impl BufMut) {
                let $v = self;
                if !$is_zero {
                    pe::$module::encode(tag, self, buf);
                }
            }

            #[inline]
            fn field_len(&self, tag: u32) -> usize {
                let $v = self;
                if $is_zero {
                    0
                } else {
                    pe::$module::encoded_len(tag, self)
                }
            }

            #[inline]
            fn merge_field(
                &mut self,
                wire_type: WireType,
                buf: &mut impl Buf,
                ctx: DecodeContext,
            ) -> Result<(), DecodeError> {
                pe::$module::merge(wire_type, self, buf, ctx)
            }

            #[inline]
            fn encode_value(&self, tag: u32, buf: &mut impl BufMut) {
                pe::$module::encode(tag, self, buf);
            }

            #[inline]
            fn value_len(&self, tag: u32) -> usize {
                pe::$module::encoded_len(tag, self)
            }

            #[inline]
            fn merge_value(
                &mut self,
                wire_type: WireType,
                buf: &mut impl Buf,
                ctx: DecodeContext,
            ) -> Result<(), DecodeError> {
                pe::$module::merge(wire_type, self, buf, ctx)
            }

            scalar!(@list $module, $packed);

            #[inline]
            fn merge_list(
                values: &mut Vec<Self>,
                wire_type: WireType,
                buf: &mut impl Buf,
                ctx: DecodeContext,
            ) -> Result<(), DecodeError> {
                pe::$module::merge_repeated(wire_type, values, buf, ctx)
            }

            scalar!(@serde $serde, $ty);
        }
    };
    (@list $module:ident, true) => {
        #[inline]
        fn encode_list(values: &[Self], tag: u32, buf: &mut impl BufMut) {
            pe::$module::encode_packed(tag, values, buf);
        }

        #[inline]
        fn list_len(values: &[Self], tag: u32) -> usize {
            pe::$module::encoded_len_packed(tag, values)
        }
    };
    (@list $module:ident, false) => {
        #[inline]
        fn encode_list(values: &[Self], tag: u32, buf: &mut impl BufMut) {
            pe::$module::encode_repeated(tag, values, buf);
        }

        #[inline]
        fn list_len(values: &[Self], tag: u32) -> usize {
            pe::$module::encoded_len_repeated(tag, values)
        }
    };
    (@serde base64, $ty:ty) => {
        fn serialize_mapped<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            BytesOut(self).serialize(serializer)
        }

        fn deserialize_mapped<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            BytesIn::deserialize(deserializer).map(|bytes| bytes.0)
        }
    };
    (@serde own, $ty:ty) => {
        #[inline]
        fn serialize_mapped<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            self.serialize(serializer)
        }

        #[inline]
        fn deserialize_mapped<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            <$ty>::deserialize(deserializer)
        }
    };
}

scalar!(bool, bool, packed: true, zero: |v| !*v, serde: own);
scalar!(i32, int32, packed: true, zero: |v| *v == 0, serde: own);
scalar!(i64, int64, packed: true, zero: |v| *v == 0, serde: own);
scalar!(u32, uint32, packed: true, zero: |v| *v == 0, serde: own);
scalar!(u64, uint64, packed: true, zero: |v| *v == 0, serde: own);
scalar!(f32, float, packed: true, zero: |v| *v == 0.0, serde: own);
scalar!(f64, double, packed: true, zero: |v| *v == 0.0, serde: own);
scalar!(String, string, packed: false, zero: |v| v.is_empty(), serde: own);
scalar!(Bytes, bytes, packed: false, zero: |v| v.is_empty(), serde: base64);

// ---- generated types and boxes -------------------------------------------------

// Generated structs, unions and enums implement `Field` through the
// macros of `codegen::macros`, which delegate to their `Kind`.

/// A boxed value (a union arm or `optional` field that holds its own type
/// again) travels as the value.
impl<T: Field> Field for Box<T> {
    #[inline]
    fn encode_field(&self, tag: u32, buf: &mut impl BufMut) {
        (**self).encode_field(tag, buf);
    }

    #[inline]
    fn field_len(&self, tag: u32) -> usize {
        (**self).field_len(tag)
    }

    #[inline]
    fn merge_field(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        (**self).merge_field(wire_type, buf, ctx)
    }

    #[inline]
    fn encode_value(&self, tag: u32, buf: &mut impl BufMut) {
        (**self).encode_value(tag, buf);
    }

    #[inline]
    fn value_len(&self, tag: u32) -> usize {
        (**self).value_len(tag)
    }

    #[inline]
    fn merge_value(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        (**self).merge_value(wire_type, buf, ctx)
    }

    #[inline]
    fn encode_arm(&self, tag: u32, buf: &mut impl BufMut) {
        (**self).encode_arm(tag, buf);
    }

    #[inline]
    fn arm_len(&self, tag: u32) -> usize {
        (**self).arm_len(tag)
    }

    #[inline]
    fn merge_arm(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        (**self).merge_arm(wire_type, buf, ctx)
    }

    fn serialize_mapped<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize_mapped(serializer)
    }

    fn deserialize_mapped<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize_mapped(deserializer).map(Box::new)
    }
}

/// Whether a field's value differs from its IDL default (it is then
/// written).
#[inline]
pub fn differs<T: PartialEq<D>, D>(value: &T, default: &D) -> bool {
    value != default
}

/// An IDL default as the value of a field of type `T` (a string literal
/// becomes a `String` or `Bytes`; everything else is already a `T`).
pub trait IdlDefault<T> {
    /// The field's value.
    fn into_field(self) -> T;
}

impl<T> IdlDefault<T> for T {
    #[inline]
    fn into_field(self) -> T {
        self
    }
}

impl IdlDefault<String> for &'static str {
    #[inline]
    fn into_field(self) -> String {
        String::from(self)
    }
}

impl IdlDefault<Bytes> for &'static str {
    #[inline]
    fn into_field(self) -> Bytes {
        Bytes::from_static(self.as_bytes())
    }
}

/// The protobuf side of an enum: `int32` on the wire (sign-extended, as
/// prost writes it), packed in lists.
pub(crate) fn enum_varint<E: IdlEnum>(value: &E) -> u64 {
    value.to_i32() as i64 as u64
}

/// Reads one enum value (a varint) of a packed run or a single field.
pub(crate) fn read_enum<E: IdlEnum>(buf: &mut impl Buf) -> Result<E, DecodeError> {
    Ok(E::from_i32(pe::decode_varint(buf)? as i32))
}

/// Merges one occurrence of a list of enums: a packed run or one value.
pub(crate) fn merge_enum_list<E: IdlEnum>(
    values: &mut Vec<E>,
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    if wire_type == WireType::LengthDelimited {
        return pe::merge_loop(values, buf, ctx, |values, buf, _ctx| {
            values.push(read_enum(buf)?);
            Ok(())
        });
    }
    pe::check_wire_type(WireType::Varint, wire_type)?;
    values.push(read_enum(buf)?);
    Ok(())
}

/// The encoded length of a packed run of enums' payload.
pub(crate) fn packed_enums_len<E: IdlEnum>(values: &[E]) -> usize {
    values
        .iter()
        .map(|value| encoded_len_varint(enum_varint(value)))
        .sum()
}

/// Appends a list of enums, packed (the proto3 default).
pub(crate) fn encode_enum_list<E: IdlEnum>(values: &[E], tag: u32, buf: &mut impl BufMut) {
    if values.is_empty() {
        return;
    }
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(packed_enums_len(values) as u64, buf);
    for value in values {
        encode_varint(enum_varint(value), buf);
    }
}

/// The encoded length of a packed list of enums.
pub(crate) fn enum_list_len<E: IdlEnum>(values: &[E], tag: u32) -> usize {
    if values.is_empty() {
        return 0;
    }
    let len = packed_enums_len(values);
    key_len(tag) + encoded_len_varint(len as u64) + len
}

// ---- lists and maps -------------------------------------------------------------

/// A list or map inside a list or map travels as this message: one field,
/// tag 1, holding it (IDL.md, "Nested collections").
#[derive(Debug, Default)]
struct Wrapper<V>(V);

impl<V: Field> prost::Message for Wrapper<V> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.0.encode_field(1, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => self.0.merge_field(wire_type, buf, ctx),
            _ => pe::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        self.0.field_len(1)
    }

    fn clear(&mut self) {
        self.0 = V::default();
    }
}

/// Appends `collection` wrapped: key, length, then the collection as field 1.
fn encode_wrapped<V: Field>(collection: &V, tag: u32, buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(collection.field_len(1) as u64, buf);
    collection.encode_field(1, buf);
}

/// The encoded length of a wrapped collection.
fn wrapped_len<V: Field>(collection: &V, tag: u32) -> usize {
    let len = collection.field_len(1);
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Merges a wrapped collection (with prost's recursion limit, as any
/// nested message).
fn merge_wrapped<V: Field>(
    collection: &mut V,
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    let mut wrapper = Wrapper(std::mem::take(collection));
    let result = pe::message::merge(wire_type, &mut wrapper, buf, ctx);
    *collection = wrapper.0;
    result
}

/// A list or map as a union arm is written as a field (unwrapped), as a
/// `oneof` would hold it if protobuf let it hold collections.
macro_rules! collection_arm {
    () => {
        #[inline]
        fn encode_arm(&self, tag: u32, buf: &mut impl BufMut) {
            self.encode_field(tag, buf);
        }

        #[inline]
        fn arm_len(&self, tag: u32) -> usize {
            self.field_len(tag)
        }

        #[inline]
        fn merge_arm(
            &mut self,
            wire_type: WireType,
            buf: &mut impl Buf,
            ctx: DecodeContext,
        ) -> Result<(), DecodeError> {
            self.merge_field(wire_type, buf, ctx)
        }
    };
}

impl<T: Field> Field for Vec<T> {
    #[inline]
    fn encode_field(&self, tag: u32, buf: &mut impl BufMut) {
        T::encode_list(self, tag, buf);
    }

    #[inline]
    fn field_len(&self, tag: u32) -> usize {
        T::list_len(self, tag)
    }

    #[inline]
    fn merge_field(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        T::merge_list(self, wire_type, buf, ctx)
    }

    fn encode_value(&self, tag: u32, buf: &mut impl BufMut) {
        encode_wrapped(self, tag, buf);
    }

    fn value_len(&self, tag: u32) -> usize {
        wrapped_len(self, tag)
    }

    fn merge_value(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        merge_wrapped(self, wire_type, buf, ctx)
    }

    collection_arm!();

    fn serialize_mapped<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for item in self {
            seq.serialize_element(&Mapped(item))?;
        }
        seq.end()
    }

    fn deserialize_mapped<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(PhantomData<T>);

        impl<'de, T: Field> Visitor<'de> for ListVisitor<T> {
            type Value = Vec<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut items =
                    Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOCATED));
                while let Some(MappedIn(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(items)
            }
        }

        deserializer.deserialize_seq(ListVisitor(PhantomData))
    }
}

/// A map key type: integers, `string` and `bool` (IDL.md).
pub trait MapKey: Field + Eq + Hash + Ord + Serialize + DeserializeOwned {}

impl MapKey for bool {}
impl MapKey for i32 {}
impl MapKey for i64 {}
impl MapKey for u32 {}
impl MapKey for u64 {}
impl MapKey for String {}

/// `HashMap` and `BTreeMap` fields (codegen's `MapType`).
macro_rules! map_field {
    ($map:ident, $module:ident) => {
        impl<K: MapKey, V: Field> Field for $map<K, V> {
            fn encode_field(&self, tag: u32, buf: &mut impl BufMut) {
                pe::$module::encode(
                    |tag, key: &K, buf| key.encode_value(tag, buf),
                    |tag, key: &K| key.value_len(tag),
                    |tag, value: &V, buf| value.encode_value(tag, buf),
                    |tag, value: &V| value.value_len(tag),
                    tag,
                    self,
                    buf,
                );
            }

            fn field_len(&self, tag: u32) -> usize {
                pe::$module::encoded_len(
                    |tag, key: &K| key.value_len(tag),
                    |tag, value: &V| value.value_len(tag),
                    tag,
                    self,
                )
            }

            fn merge_field(
                &mut self,
                wire_type: WireType,
                buf: &mut impl Buf,
                ctx: DecodeContext,
            ) -> Result<(), DecodeError> {
                pe::check_wire_type(WireType::LengthDelimited, wire_type)?;
                pe::$module::merge(
                    |wire_type, key: &mut K, buf, ctx| key.merge_value(wire_type, buf, ctx),
                    |wire_type, value: &mut V, buf, ctx| value.merge_value(wire_type, buf, ctx),
                    self,
                    buf,
                    ctx,
                )
            }

            fn encode_value(&self, tag: u32, buf: &mut impl BufMut) {
                encode_wrapped(self, tag, buf);
            }

            fn value_len(&self, tag: u32) -> usize {
                wrapped_len(self, tag)
            }

            fn merge_value(
                &mut self,
                wire_type: WireType,
                buf: &mut impl Buf,
                ctx: DecodeContext,
            ) -> Result<(), DecodeError> {
                merge_wrapped(self, wire_type, buf, ctx)
            }

            collection_arm!();

            fn serialize_mapped<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.len()))?;
                for (key, value) in self {
                    map.serialize_entry(key, &Mapped(value))?;
                }
                map.end()
            }

            fn deserialize_mapped<'de, D: Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                struct MapVisitor<K, V>(PhantomData<(K, V)>);

                impl<'de, K: MapKey, V: Field> Visitor<'de> for MapVisitor<K, V> {
                    type Value = $map<K, V>;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a map")
                    }

                    fn visit_map<A: MapAccess<'de>>(
                        self,
                        mut entries: A,
                    ) -> Result<$map<K, V>, A::Error> {
                        let mut map = $map::default();
                        while let Some((key, MappedIn(value))) = entries.next_entry()? {
                            map.insert(key, value);
                        }
                        Ok(map)
                    }
                }

                deserializer.deserialize_map(MapVisitor(PhantomData))
            }
        }
    };
}

map_field!(HashMap, hash_map);
map_field!(BTreeMap, btree_map);

// ---- optional values and `void` ----------------------------------------------------

impl<T: Field> Field for Option<T> {
    #[inline]
    fn encode_field(&self, tag: u32, buf: &mut impl BufMut) {
        if let Some(value) = self {
            value.encode_value(tag, buf);
        }
    }

    #[inline]
    fn field_len(&self, tag: u32) -> usize {
        self.as_ref().map_or(0, |value| value.value_len(tag))
    }

    #[inline]
    fn merge_field(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        self.get_or_insert_with(T::default)
            .merge_value(wire_type, buf, ctx)
    }

    // `optional` is never a list item, map value or union arm (IDL.md): as
    // a value it is the same as a field.
    fn encode_value(&self, tag: u32, buf: &mut impl BufMut) {
        self.encode_field(tag, buf);
    }

    fn value_len(&self, tag: u32) -> usize {
        self.field_len(tag)
    }

    fn merge_value(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        self.merge_field(wire_type, buf, ctx)
    }

    fn serialize_mapped<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(value) => serializer.serialize_some(&Mapped(value)),
            None => serializer.serialize_none(),
        }
    }

    fn deserialize_mapped<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<MappedIn<T>>::deserialize(deserializer).map(|value| value.map(|value| value.0))
    }
}

/// The result of a `void` method: its result message has no field.
impl Field for () {
    const IS_UNIT: bool = true;

    fn encode_field(&self, _tag: u32, _buf: &mut impl BufMut) {}

    fn field_len(&self, _tag: u32) -> usize {
        0
    }

    fn merge_field(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        // A field the empty message does not have: skipped, as any unknown
        // field (`Reply` only asks about tag 1).
        pe::skip_field(wire_type, 1, buf, ctx)
    }

    fn encode_value(&self, _tag: u32, _buf: &mut impl BufMut) {}

    fn value_len(&self, _tag: u32) -> usize {
        0
    }

    fn merge_value(
        &mut self,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        self.merge_field(wire_type, buf, ctx)
    }

    fn serialize_mapped<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }

    fn deserialize_mapped<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        de::IgnoredAny::deserialize(deserializer).map(drop)
    }
}
