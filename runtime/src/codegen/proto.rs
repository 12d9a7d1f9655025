//! Protobuf helpers for generated `prost::Message` impls: enums as real Rust
//! enums on top of the standard `int32` encoding.

use bytes::{Buf, BufMut};
use prost::DecodeError;
use prost::encoding::{
    DecodeContext, WireType, encode_key, encode_varint, encoded_len_varint, int32, key_len,
};

/// A generated enum: a real Rust enum that travels as its `i32` value.
///
/// Values this version does not know (sent by a newer peer) decode to the
/// enum's `Unrecognized(i32)` variant, so they survive a round trip.
pub trait IdlEnum: Copy + Default + PartialEq + Send + Sync + 'static {
    /// The number on the wire.
    fn to_i32(self) -> i32;
    /// The variant for a number; unknown numbers give `Unrecognized`.
    fn from_i32(value: i32) -> Self;
    /// The variant's IDL name (`"PAID"`); `None` for `Unrecognized`.
    fn idl_name(self) -> Option<&'static str>;
    /// The variant with this IDL name.
    fn from_idl_name(name: &str) -> Option<Self>;
}

/// Encodes a singular enum field (as `int32`).
pub fn encode<E: IdlEnum>(tag: u32, value: &E, buf: &mut impl BufMut) {
    int32::encode(tag, &value.to_i32(), buf);
}

/// Merges a singular enum field.
pub fn merge<E: IdlEnum>(
    wire_type: WireType,
    value: &mut E,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    let mut raw = 0i32;
    int32::merge(wire_type, &mut raw, buf, ctx)?;
    *value = E::from_i32(raw);
    Ok(())
}

/// The encoded length of a singular enum field.
pub fn encoded_len<E: IdlEnum>(tag: u32, value: &E) -> usize {
    int32::encoded_len(tag, &value.to_i32())
}

fn varint_len(value: i32) -> usize {
    encoded_len_varint(value as i64 as u64)
}

/// Encodes a repeated enum field, packed (the proto3 default).
pub fn encode_packed<E: IdlEnum>(tag: u32, values: &[E], buf: &mut impl BufMut) {
    if values.is_empty() {
        return;
    }
    encode_key(tag, WireType::LengthDelimited, buf);
    let len: usize = values.iter().map(|v| varint_len(v.to_i32())).sum();
    encode_varint(len as u64, buf);
    for value in values {
        encode_varint(value.to_i32() as i64 as u64, buf);
    }
}

/// Merges a repeated enum field, packed or not.
pub fn merge_repeated<E: IdlEnum>(
    wire_type: WireType,
    values: &mut Vec<E>,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    let mut raw = Vec::new();
    int32::merge_repeated(wire_type, &mut raw, buf, ctx)?;
    values.extend(raw.into_iter().map(E::from_i32));
    Ok(())
}

/// The encoded length of a packed repeated enum field.
pub fn encoded_len_packed<E: IdlEnum>(tag: u32, values: &[E]) -> usize {
    if values.is_empty() {
        return 0;
    }
    let len: usize = values.iter().map(|v| varint_len(v.to_i32())).sum();
    key_len(tag) + encoded_len_varint(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    enum Color {
        #[default]
        Red,
        Blue,
        Unrecognized(i32),
    }

    impl IdlEnum for Color {
        fn to_i32(self) -> i32 {
            match self {
                Color::Red => 0,
                Color::Blue => 7,
                Color::Unrecognized(v) => v,
            }
        }
        fn from_i32(value: i32) -> Self {
            match value {
                0 => Color::Red,
                7 => Color::Blue,
                v => Color::Unrecognized(v),
            }
        }
        fn idl_name(self) -> Option<&'static str> {
            match self {
                Color::Red => Some("RED"),
                Color::Blue => Some("BLUE"),
                Color::Unrecognized(_) => None,
            }
        }
        fn from_idl_name(name: &str) -> Option<Self> {
            match name {
                "RED" => Some(Color::Red),
                "BLUE" => Some(Color::Blue),
                _ => None,
            }
        }
    }

    #[test]
    fn packed_enums_round_trip_including_unknown_and_negative_values() {
        let values = vec![
            Color::Blue,
            Color::Red,
            Color::Unrecognized(-3),
            Color::Unrecognized(99),
        ];
        let mut buf = Vec::new();
        encode_packed(4, &values, &mut buf);
        assert_eq!(buf.len(), encoded_len_packed(4, &values));
        let mut slice = &buf[..];
        let (tag, wire_type) = prost::encoding::decode_key(&mut slice).unwrap();
        assert_eq!(tag, 4);
        let mut decoded: Vec<Color> = Vec::new();
        merge_repeated(
            wire_type,
            &mut decoded,
            &mut slice,
            DecodeContext::default(),
        )
        .unwrap();
        assert_eq!(decoded, values);
    }

    #[test]
    fn singular_enum_matches_int32_encoding() {
        let mut ours = Vec::new();
        encode(2, &Color::Blue, &mut ours);
        let mut reference = Vec::new();
        int32::encode(2, &7, &mut reference);
        assert_eq!(ours, reference);
        assert_eq!(ours.len(), encoded_len(2, &Color::Blue));
    }
}
