//! Protobuf, as idlc's generated `prost::Message` impls write and read it
//! (`idlc/src/codegen/wire_codec.rs`): fields in declaration order; a
//! singular scalar or enum left out when it equals its default (the IDL
//! default, else zero); nested messages and `optional` values that are set
//! always written; numeric lists packed, strings, bytes and messages
//! repeated; map entries as prost writes them (a key or value equal to its
//! type's default left out); a union's active arm always written; a list or
//! map inside a list or map (a list item, a map value) as a message with
//! one field, tag 1, holding it (the runtime's field codec,
//! `courier::codegen::Field`, writes them the same way).

use idlc::model::{Field, FieldType, Scalar, TypeKind};

use super::value::{Dyn, Shape, dedup_maps, default_of_shape, field_default, zero};
use super::{DynError, MAX_DEPTH};
use crate::schema::Schema;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Encodes a message of `shape`.
pub(crate) fn encode(
    schema: &Schema,
    shape: &Shape<'_>,
    value: &Dyn,
    buf: &mut Vec<u8>,
) -> Result<(), DynError> {
    encode_message(schema, shape, value, buf, 0)
}

fn encode_message(
    schema: &Schema,
    shape: &Shape<'_>,
    value: &Dyn,
    buf: &mut Vec<u8>,
    depth: usize,
) -> Result<(), DynError> {
    if depth > MAX_DEPTH {
        return Err(DynError::TooDeep);
    }
    match (shape, value) {
        (Shape::Struct(fields), Dyn::Struct(values)) => {
            for (field, value) in fields.iter().zip(values) {
                encode_field(schema, field, value, false, buf, depth)?;
            }
            Ok(())
        }
        (Shape::Union(arms), Dyn::Union(index, value)) => {
            let arm = arms.get(*index).ok_or_else(|| mismatch("union arm"))?;
            encode_field(schema, arm, value, true, buf, depth)
        }
        _ => Err(mismatch("message")),
    }
}

fn mismatch(what: &str) -> DynError {
    DynError::Schema(format!("a {what} does not match the schema"))
}

fn encode_field(
    schema: &Schema,
    field: &Field,
    value: &Dyn,
    always: bool,
    buf: &mut Vec<u8>,
    depth: usize,
) -> Result<(), DynError> {
    let tag = field.tag;
    match &field.ty {
        FieldType::Named(r) if r.kind != TypeKind::Enum => {
            encode_nested(schema, tag, &field.ty, value, buf, depth)
        }
        FieldType::Scalar(_) | FieldType::Named(_) => {
            if always || *value != field_default(schema, field, depth)? {
                encode_value(schema, tag, &field.ty, value, buf, depth)?;
            }
            Ok(())
        }
        FieldType::Optional(inner) => match value {
            Dyn::Optional(Some(value)) => encode_value(schema, tag, inner, value, buf, depth),
            Dyn::Optional(None) => Ok(()),
            _ => Err(mismatch("optional value")),
        },
        FieldType::List(inner) => {
            let Dyn::List(items) = value else {
                return Err(mismatch("list"));
            };
            if is_packable(inner) {
                if items.is_empty() {
                    return Ok(());
                }
                let mut packed = Vec::new();
                for item in items {
                    write_scalar_payload(item, inner, &mut packed)?;
                }
                write_key(tag, LEN, buf);
                write_len_delimited(&packed, buf);
                return Ok(());
            }
            for item in items {
                encode_value(schema, tag, inner, item, buf, depth)?;
            }
            Ok(())
        }
        FieldType::Map(key_type, value_type) => {
            let Dyn::Map(entries) = value else {
                return Err(mismatch("map"));
            };
            let key_ty = FieldType::Scalar(*key_type);
            let key_default = zero(schema, &key_ty, depth)?;
            let value_default = zero(schema, value_type, depth)?;
            for (key, value) in entries {
                let mut entry = Vec::new();
                if *key != key_default {
                    encode_value(schema, 1, &key_ty, key, &mut entry, depth)?;
                }
                if *value != value_default {
                    encode_value(schema, 2, value_type, value, &mut entry, depth)?;
                }
                write_key(tag, LEN, buf);
                write_len_delimited(&entry, buf);
            }
            Ok(())
        }
    }
}

/// One value with its key, whatever it holds.
fn encode_value(
    schema: &Schema,
    tag: u32,
    ty: &FieldType,
    value: &Dyn,
    buf: &mut Vec<u8>,
    depth: usize,
) -> Result<(), DynError> {
    match ty {
        FieldType::Named(r) if r.kind != TypeKind::Enum => {
            encode_nested(schema, tag, ty, value, buf, depth)
        }
        FieldType::Scalar(Scalar::String | Scalar::Bytes) => {
            write_key(tag, LEN, buf);
            match value {
                Dyn::Str(s) => write_len_delimited(s.as_bytes(), buf),
                Dyn::Bytes(b) => write_len_delimited(b, buf),
                _ => return Err(mismatch("string")),
            }
            Ok(())
        }
        FieldType::Scalar(_) | FieldType::Named(_) => {
            write_key(tag, wire_type(ty), buf);
            write_scalar_payload(value, ty, buf)
        }
        FieldType::List(_) | FieldType::Map(..) => {
            if depth > MAX_DEPTH {
                return Err(DynError::TooDeep);
            }
            let mut wrapper = Vec::new();
            encode_field(schema, &wrapped(ty), value, false, &mut wrapper, depth + 1)?;
            write_key(tag, LEN, buf);
            write_len_delimited(&wrapper, buf);
            Ok(())
        }
        FieldType::Optional(_) => Err(DynError::Schema(
            "an optional value inside a list or map".into(),
        )),
    }
}

/// The one field, tag 1, of the message a list or map travels in when it
/// is inside a list or map.
fn wrapped(ty: &FieldType) -> Field {
    Field {
        name: "value".into(),
        tag: 1,
        ty: ty.clone(),
        default: None,
        boxed: false,
        docs: Vec::new(),
        hash_key: false,
    }
}

fn encode_nested(
    schema: &Schema,
    tag: u32,
    ty: &FieldType,
    value: &Dyn,
    buf: &mut Vec<u8>,
    depth: usize,
) -> Result<(), DynError> {
    let FieldType::Named(r) = ty else {
        return Err(mismatch("message"));
    };
    let mut nested = Vec::new();
    encode_message(
        schema,
        &Shape::of(schema, r)?,
        value,
        &mut nested,
        depth + 1,
    )?;
    write_key(tag, LEN, buf);
    write_len_delimited(&nested, buf);
    Ok(())
}

fn is_packable(ty: &FieldType) -> bool {
    match ty {
        FieldType::Scalar(Scalar::String | Scalar::Bytes) => false,
        FieldType::Scalar(_) => true,
        FieldType::Named(r) => r.kind == TypeKind::Enum,
        _ => false,
    }
}

fn wire_type(ty: &FieldType) -> u8 {
    match ty {
        FieldType::Scalar(Scalar::F32) => FIXED32,
        FieldType::Scalar(Scalar::F64) => FIXED64,
        FieldType::Scalar(Scalar::String | Scalar::Bytes) => LEN,
        FieldType::Scalar(_) => VARINT,
        FieldType::Named(r) if r.kind == TypeKind::Enum => VARINT,
        _ => LEN,
    }
}

/// A numeric, bool or enum value without its key.
fn write_scalar_payload(value: &Dyn, ty: &FieldType, buf: &mut Vec<u8>) -> Result<(), DynError> {
    match value {
        Dyn::Bool(b) => write_varint(u64::from(*b), buf),
        // int32 and enums are sign-extended to 64 bits, as prost does.
        Dyn::Int(i) => write_varint(*i as u64, buf),
        Dyn::Enum(v) => write_varint(i64::from(*v) as u64, buf),
        Dyn::Uint(u) => write_varint(*u, buf),
        Dyn::F32(f) => buf.extend_from_slice(&f.to_le_bytes()),
        Dyn::F64(f) => buf.extend_from_slice(&f.to_le_bytes()),
        _ => return Err(mismatch(&format!("{ty:?} value"))),
    }
    Ok(())
}

fn write_key(tag: u32, wire_type: u8, buf: &mut Vec<u8>) {
    write_varint((u64::from(tag) << 3) | u64::from(wire_type), buf);
}

fn write_len_delimited(bytes: &[u8], buf: &mut Vec<u8>) {
    write_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

fn write_varint(mut value: u64, buf: &mut Vec<u8>) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Decodes a message of `shape` (missing fields take their defaults,
/// unknown fields are skipped, repeated singular fields merge as prost
/// merges them).
pub(crate) fn decode(schema: &Schema, shape: &Shape<'_>, bytes: &[u8]) -> Result<Dyn, DynError> {
    let mut value = default_of_shape(schema, shape, 0)?;
    merge_message(schema, shape, &mut value, bytes, 0)?;
    // Map entries are appended as read; repeated keys are merged once, at
    // the end, in linear time.
    dedup_maps(&mut value);
    Ok(value)
}

/// A cursor over protobuf bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DynError> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some((&byte, rest)) = self.bytes.split_first() else {
                return Err(truncated("a varint"));
            };
            self.bytes = rest;
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DynError::Decode("a varint longer than 10 bytes".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DynError> {
        if n > self.bytes.len() {
            return Err(truncated("a field"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], DynError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| truncated("a length"))?;
        self.take(len)
    }

    fn skip(&mut self, wire_type: u8) -> Result<(), DynError> {
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => self.take(4).map(drop),
            other => Err(DynError::Decode(format!("unsupported wire type {other}"))),
        }
    }
}

fn truncated(what: &str) -> DynError {
    DynError::Decode(format!("the message ends inside {what}"))
}

fn merge_message(
    schema: &Schema,
    shape: &Shape<'_>,
    value: &mut Dyn,
    bytes: &[u8],
    depth: usize,
) -> Result<(), DynError> {
    if depth > MAX_DEPTH {
        return Err(DynError::TooDeep);
    }
    let mut reader = Reader { bytes };
    while !reader.bytes.is_empty() {
        let key = reader.varint()?;
        let wire_type = (key & 7) as u8;
        let tag =
            u32::try_from(key >> 3).map_err(|_| DynError::Decode("a tag out of range".into()))?;
        if tag == 0 {
            return Err(DynError::Decode("field tag 0".into()));
        }
        match (shape, &mut *value) {
            (Shape::Struct(fields), Dyn::Struct(values)) => {
                match fields.iter().position(|f| f.tag == tag) {
                    Some(i) => merge_field(
                        schema,
                        &fields[i].ty,
                        &mut values[i],
                        wire_type,
                        &mut reader,
                        depth,
                    )?,
                    None => reader.skip(wire_type)?,
                }
            }
            (Shape::Union(arms), Dyn::Union(current, arm_value)) => {
                match arms.iter().position(|a| a.tag == tag) {
                    Some(i) => {
                        if *current != i {
                            *current = i;
                            **arm_value = zero(schema, &arms[i].ty, depth)?;
                        }
                        merge_field(
                            schema,
                            &arms[i].ty,
                            arm_value,
                            wire_type,
                            &mut reader,
                            depth,
                        )?;
                    }
                    None => reader.skip(wire_type)?,
                }
            }
            _ => return Err(mismatch("message")),
        }
    }
    Ok(())
}

fn expect_wire_type(expected: u8, actual: u8) -> Result<(), DynError> {
    if expected == actual {
        Ok(())
    } else {
        Err(DynError::Decode(format!(
            "invalid wire type: expected {expected}, got {actual}"
        )))
    }
}

fn merge_field(
    schema: &Schema,
    ty: &FieldType,
    slot: &mut Dyn,
    wire_type: u8,
    reader: &mut Reader<'_>,
    depth: usize,
) -> Result<(), DynError> {
    match ty {
        FieldType::Named(r) if r.kind != TypeKind::Enum => {
            expect_wire_type(LEN, wire_type)?;
            let bytes = reader.len_delimited()?;
            merge_message(schema, &Shape::of(schema, r)?, slot, bytes, depth + 1)
        }
        FieldType::Scalar(_) | FieldType::Named(_) => {
            expect_wire_type(wire_type_of(ty), wire_type)?;
            *slot = read_scalar(ty, reader)?;
            Ok(())
        }
        FieldType::Optional(inner) => {
            let Dyn::Optional(option) = slot else {
                return Err(mismatch("optional value"));
            };
            let inner_slot = match option {
                Some(existing) => existing,
                None => option.insert(Box::new(zero(schema, inner, depth)?)),
            };
            merge_field(schema, inner, inner_slot, wire_type, reader, depth)
        }
        FieldType::List(inner) => {
            let Dyn::List(items) = slot else {
                return Err(mismatch("list"));
            };
            if is_packable(inner) && wire_type == LEN {
                let mut packed = Reader {
                    bytes: reader.len_delimited()?,
                };
                while !packed.bytes.is_empty() {
                    items.push(read_scalar(inner, &mut packed)?);
                }
                return Ok(());
            }
            let mut item = zero(schema, inner, depth)?;
            merge_value(schema, inner, &mut item, wire_type, reader, depth)?;
            items.push(item);
            Ok(())
        }
        FieldType::Map(key_type, value_type) => {
            expect_wire_type(LEN, wire_type)?;
            let Dyn::Map(entries) = slot else {
                return Err(mismatch("map"));
            };
            let key_ty = FieldType::Scalar(*key_type);
            let mut key = zero(schema, &key_ty, depth)?;
            let mut value = zero(schema, value_type, depth)?;
            let mut entry = Reader {
                bytes: reader.len_delimited()?,
            };
            while !entry.bytes.is_empty() {
                let k = entry.varint()?;
                let wire_type = (k & 7) as u8;
                match k >> 3 {
                    1 => merge_field(schema, &key_ty, &mut key, wire_type, &mut entry, depth)?,
                    2 => merge_value(schema, value_type, &mut value, wire_type, &mut entry, depth)?,
                    _ => entry.skip(wire_type)?,
                }
            }
            entries.push((key, value));
            Ok(())
        }
    }
}

/// Merges one value of a list or map: a list or map inside it comes
/// wrapped in a one-field message (tag 1); anything else as a field.
fn merge_value(
    schema: &Schema,
    ty: &FieldType,
    slot: &mut Dyn,
    wire_type: u8,
    reader: &mut Reader<'_>,
    depth: usize,
) -> Result<(), DynError> {
    if !matches!(ty, FieldType::List(_) | FieldType::Map(..)) {
        return merge_field(schema, ty, slot, wire_type, reader, depth);
    }
    if depth > MAX_DEPTH {
        return Err(DynError::TooDeep);
    }
    expect_wire_type(LEN, wire_type)?;
    let mut wrapper = Reader {
        bytes: reader.len_delimited()?,
    };
    while !wrapper.bytes.is_empty() {
        let key = wrapper.varint()?;
        let wire_type = (key & 7) as u8;
        match key >> 3 {
            0 => return Err(DynError::Decode("field tag 0".into())),
            1 => merge_field(schema, ty, slot, wire_type, &mut wrapper, depth + 1)?,
            _ => wrapper.skip(wire_type)?,
        }
    }
    Ok(())
}

fn wire_type_of(ty: &FieldType) -> u8 {
    wire_type(ty)
}

fn read_scalar(ty: &FieldType, reader: &mut Reader<'_>) -> Result<Dyn, DynError> {
    Ok(match ty {
        FieldType::Scalar(Scalar::Bool) => Dyn::Bool(reader.varint()? != 0),
        FieldType::Scalar(Scalar::I32) => Dyn::Int(i64::from(reader.varint()? as i32)),
        FieldType::Scalar(Scalar::I64) => Dyn::Int(reader.varint()? as i64),
        FieldType::Scalar(Scalar::U32) => Dyn::Uint(u64::from(reader.varint()? as u32)),
        FieldType::Scalar(Scalar::U64) => Dyn::Uint(reader.varint()?),
        FieldType::Scalar(Scalar::F32) => {
            let raw: [u8; 4] = reader
                .take(4)?
                .try_into()
                .map_err(|_| truncated("a float"))?;
            Dyn::F32(f32::from_le_bytes(raw))
        }
        FieldType::Scalar(Scalar::F64) => {
            let raw: [u8; 8] = reader
                .take(8)?
                .try_into()
                .map_err(|_| truncated("a double"))?;
            Dyn::F64(f64::from_le_bytes(raw))
        }
        FieldType::Scalar(Scalar::String) => {
            let raw = reader.len_delimited()?;
            Dyn::Str(
                std::str::from_utf8(raw)
                    .map_err(|_| DynError::Decode("a string that is not UTF-8".into()))?
                    .to_owned(),
            )
        }
        FieldType::Scalar(Scalar::Bytes) => Dyn::Bytes(reader.len_delimited()?.to_vec()),
        FieldType::Named(_) => Dyn::Enum(reader.varint()? as i32),
        _ => return Err(mismatch("scalar")),
    })
}
