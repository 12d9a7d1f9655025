//! How generated types travel as fields: [`MessageKind`] for structs,
//! errors and unions (nested messages), [`EnumKind`] for enums (real Rust
//! enums on top of protobuf's `int32`, [`IdlEnum`]). The generated impls
//! of [`Field`](super::Field) delegate to them.

use bytes::{Buf, BufMut};
use prost::DecodeError;
use prost::encoding::{self as pe, DecodeContext, WireType};

use super::field::{encode_enum_list, enum_list_len, enum_varint, merge_enum_list, read_enum};

/// A generated enum: a real Rust enum that travels as its `i32` value.
///
/// Values this version does not know (sent by a newer peer) decode to the
/// enum's `Unrecognized(i32)` variant, so they survive a round trip.
pub trait IdlEnum: Copy + Default + PartialEq + Send + Sync + 'static {
    /// Every known variant: its number and IDL name (`"PAID"`).
    const NAMES: &'static [(i32, &'static str)];

    /// The number on the wire.
    fn to_i32(self) -> i32;

    /// The variant for a number; unknown numbers give `Unrecognized`.
    fn from_i32(value: i32) -> Self;

    /// The variant's IDL name (`"PAID"`); `None` for `Unrecognized`.
    fn idl_name(self) -> Option<&'static str> {
        let value = self.to_i32();
        Self::NAMES
            .iter()
            .find(|(number, _)| *number == value)
            .map(|(_, name)| *name)
    }

    /// The variant with this IDL name.
    fn from_idl_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(number, _)| Self::from_i32(*number))
    }
}

/// The protobuf encoding of one kind of generated type (the leaves of the
/// [field codec](super::Field)).
pub trait Kind<T> {
    /// Whether a singular field holding `value` is left out.
    fn skipped(value: &T) -> bool;
    /// Appends the value with its key.
    fn encode(value: &T, tag: u32, buf: &mut impl BufMut);
    /// The encoded length of [`Kind::encode`]'s output.
    fn encoded_len(value: &T, tag: u32) -> usize;
    /// Merges one occurrence.
    fn merge(
        value: &mut T,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError>;
    /// Appends a list.
    fn encode_list(values: &[T], tag: u32, buf: &mut impl BufMut);
    /// The encoded length of [`Kind::encode_list`]'s output.
    fn list_len(values: &[T], tag: u32) -> usize;
    /// Merges one occurrence of a list field.
    fn merge_list(
        values: &mut Vec<T>,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError>;
}

/// Structs, errors and unions: nested messages, always written.
#[derive(Debug, Clone, Copy)]
pub struct MessageKind;

impl<M: prost::Message + Default> Kind<M> for MessageKind {
    #[inline]
    fn skipped(_: &M) -> bool {
        false
    }

    #[inline]
    fn encode(value: &M, tag: u32, buf: &mut impl BufMut) {
        pe::message::encode(tag, value, buf);
    }

    #[inline]
    fn encoded_len(value: &M, tag: u32) -> usize {
        pe::message::encoded_len(tag, value)
    }

    #[inline]
    fn merge(
        value: &mut M,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        pe::message::merge(wire_type, value, buf, ctx)
    }

    #[inline]
    fn encode_list(values: &[M], tag: u32, buf: &mut impl BufMut) {
        pe::message::encode_repeated(tag, values, buf);
    }

    #[inline]
    fn list_len(values: &[M], tag: u32) -> usize {
        pe::message::encoded_len_repeated(tag, values)
    }

    #[inline]
    fn merge_list(
        values: &mut Vec<M>,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        pe::message::merge_repeated(wire_type, values, buf, ctx)
    }
}

/// Enums: `int32`, left out of a singular field when it is the variant 0,
/// packed in lists.
#[derive(Debug, Clone, Copy)]
pub struct EnumKind;

impl<E: IdlEnum> Kind<E> for EnumKind {
    #[inline]
    fn skipped(value: &E) -> bool {
        *value == E::default()
    }

    #[inline]
    fn encode(value: &E, tag: u32, buf: &mut impl BufMut) {
        pe::encode_key(tag, WireType::Varint, buf);
        pe::encode_varint(enum_varint(value), buf);
    }

    #[inline]
    fn encoded_len(value: &E, tag: u32) -> usize {
        pe::key_len(tag) + pe::encoded_len_varint(enum_varint(value))
    }

    #[inline]
    fn merge(
        value: &mut E,
        wire_type: WireType,
        buf: &mut impl Buf,
        _ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        pe::check_wire_type(WireType::Varint, wire_type)?;
        *value = read_enum(buf)?;
        Ok(())
    }

    #[inline]
    fn encode_list(values: &[E], tag: u32, buf: &mut impl BufMut) {
        encode_enum_list(values, tag, buf);
    }

    #[inline]
    fn list_len(values: &[E], tag: u32) -> usize {
        enum_list_len(values, tag)
    }

    #[inline]
    fn merge_list(
        values: &mut Vec<E>,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        merge_enum_list(values, wire_type, buf, ctx)
    }
}
