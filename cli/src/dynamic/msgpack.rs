//! MessagePack, as the runtime writes the generated types through
//! rmp-serde (`with_struct_map`, `with_binary`, enums by name): a struct is
//! a map of every field, keyed by its IDL name, in declaration order;
//! integers in their smallest form; `f32` as float 32; `bytes` as `bin`;
//! enums as their IDL name (the number if unknown); `optional` as nil or
//! the value; a union as a one-entry map `{arm: value}`.

use idlc::model::{FieldType, Scalar, TypeKind};
use rmp::Marker;
use rmp::encode;

use super::value::{Dyn, Shape, dedup_map_entries, enum_def, field_default};
use super::{DynError, MAX_DEPTH};
use crate::schema::Schema;

fn mismatch(what: &str) -> DynError {
    DynError::Schema(format!("a {what} does not match the schema"))
}

fn write_error<E: std::fmt::Display>(error: E) -> DynError {
    DynError::Schema(format!("cannot write MessagePack: {error}"))
}

fn len32(len: usize) -> Result<u32, DynError> {
    u32::try_from(len).map_err(|_| DynError::Schema("a value too long for MessagePack".into()))
}

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
            encode::write_map_len(buf, len32(fields.len())?).map_err(write_error)?;
            for (field, value) in fields.iter().zip(values) {
                encode::write_str(buf, &field.name).map_err(write_error)?;
                encode_value(schema, &field.ty, value, buf, depth)?;
            }
            Ok(())
        }
        (Shape::Union(arms), Dyn::Union(index, value)) => {
            let arm = arms.get(*index).ok_or_else(|| mismatch("union arm"))?;
            encode::write_map_len(buf, 1).map_err(write_error)?;
            encode::write_str(buf, &arm.name).map_err(write_error)?;
            encode_value(schema, &arm.ty, value, buf, depth)
        }
        _ => Err(mismatch("message")),
    }
}

fn encode_value(
    schema: &Schema,
    ty: &FieldType,
    value: &Dyn,
    buf: &mut Vec<u8>,
    depth: usize,
) -> Result<(), DynError> {
    match (ty, value) {
        (_, Dyn::Bool(b)) => encode::write_bool(buf, *b).map_err(write_error)?,
        (_, Dyn::Int(i)) => encode::write_sint(buf, *i).map(drop).map_err(write_error)?,
        (_, Dyn::Uint(u)) => encode::write_uint(buf, *u).map(drop).map_err(write_error)?,
        (_, Dyn::F32(f)) => encode::write_f32(buf, *f).map_err(write_error)?,
        (_, Dyn::F64(f)) => encode::write_f64(buf, *f).map_err(write_error)?,
        (_, Dyn::Str(s)) => encode::write_str(buf, s).map_err(write_error)?,
        (_, Dyn::Bytes(b)) => encode::write_bin(buf, b).map_err(write_error)?,
        (FieldType::Named(r), Dyn::Enum(v)) => {
            let def = enum_def(schema, r)?;
            match def.variants.iter().find(|variant| variant.value == *v) {
                Some(variant) => encode::write_str(buf, &variant.name).map_err(write_error)?,
                None => encode::write_sint(buf, i64::from(*v))
                    .map(drop)
                    .map_err(write_error)?,
            }
        }
        (FieldType::Named(r), value @ (Dyn::Struct(_) | Dyn::Union(..))) => {
            encode_message(schema, &Shape::of(schema, r)?, value, buf, depth + 1)?
        }
        (FieldType::List(inner), Dyn::List(items)) => {
            encode::write_array_len(buf, len32(items.len())?).map_err(write_error)?;
            for item in items {
                encode_value(schema, inner, item, buf, depth + 1)?;
            }
        }
        (FieldType::Map(key, inner), Dyn::Map(entries)) => {
            encode::write_map_len(buf, len32(entries.len())?).map_err(write_error)?;
            let key_ty = FieldType::Scalar(*key);
            for (k, v) in entries {
                encode_value(schema, &key_ty, k, buf, depth + 1)?;
                encode_value(schema, inner, v, buf, depth + 1)?;
            }
        }
        (FieldType::Optional(_), Dyn::Optional(None)) => {
            encode::write_nil(buf).map_err(write_error)?
        }
        (FieldType::Optional(inner), Dyn::Optional(Some(value))) => {
            encode_value(schema, inner, value, buf, depth + 1)?
        }
        _ => return Err(mismatch("value")),
    }
    Ok(())
}

/// A MessagePack value, read without a schema.
#[derive(Debug, Clone, PartialEq)]
enum Mp {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Mp>),
    Map(Vec<(Mp, Mp)>),
}

struct Reader<'a> {
    bytes: &'a [u8],
}

fn truncated() -> DynError {
    DynError::Decode("the message ends too soon".into())
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DynError> {
        if n > self.bytes.len() {
            return Err(truncated());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn uint(&mut self, n: usize) -> Result<u64, DynError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// A count of items that each take at least one byte (never more than
    /// the bytes left, so nothing is reserved for a claimed length).
    fn count(&mut self, n: usize) -> Result<usize, DynError> {
        let count = usize::try_from(self.uint(n)?).map_err(|_| truncated())?;
        if count > self.bytes.len() {
            return Err(truncated());
        }
        Ok(count)
    }

    fn value(&mut self, depth: usize) -> Result<Mp, DynError> {
        if depth > MAX_DEPTH {
            return Err(DynError::TooDeep);
        }
        let first = *self.take(1)?.first().ok_or_else(truncated)?;
        Ok(match Marker::from_u8(first) {
            Marker::FixPos(v) => Mp::Int(i128::from(v)),
            Marker::FixNeg(v) => Mp::Int(i128::from(v)),
            Marker::Null => Mp::Nil,
            Marker::True => Mp::Bool(true),
            Marker::False => Mp::Bool(false),
            Marker::U8 => Mp::Int(i128::from(self.uint(1)?)),
            Marker::U16 => Mp::Int(i128::from(self.uint(2)?)),
            Marker::U32 => Mp::Int(i128::from(self.uint(4)?)),
            Marker::U64 => Mp::Int(i128::from(self.uint(8)?)),
            Marker::I8 => Mp::Int(i128::from(self.uint(1)? as u8 as i8)),
            Marker::I16 => Mp::Int(i128::from(self.uint(2)? as u16 as i16)),
            Marker::I32 => Mp::Int(i128::from(self.uint(4)? as u32 as i32)),
            Marker::I64 => Mp::Int(i128::from(self.uint(8)? as i64)),
            Marker::F32 => Mp::Float(f64::from(f32::from_bits(self.uint(4)? as u32))),
            Marker::F64 => Mp::Float(f64::from_bits(self.uint(8)?)),
            Marker::FixStr(n) => self.string(usize::from(n))?,
            Marker::Str8 => {
                let n = self.uint(1)? as usize;
                self.string(n)?
            }
            Marker::Str16 => {
                let n = self.uint(2)? as usize;
                self.string(n)?
            }
            Marker::Str32 => {
                let n = usize::try_from(self.uint(4)?).map_err(|_| truncated())?;
                self.string(n)?
            }
            Marker::Bin8 => {
                let n = self.uint(1)? as usize;
                Mp::Bin(self.take(n)?.to_vec())
            }
            Marker::Bin16 => {
                let n = self.uint(2)? as usize;
                Mp::Bin(self.take(n)?.to_vec())
            }
            Marker::Bin32 => {
                let n = usize::try_from(self.uint(4)?).map_err(|_| truncated())?;
                Mp::Bin(self.take(n)?.to_vec())
            }
            Marker::FixArray(n) => self.array(usize::from(n), depth)?,
            Marker::Array16 => {
                let n = self.count(2)?;
                self.array(n, depth)?
            }
            Marker::Array32 => {
                let n = self.count(4)?;
                self.array(n, depth)?
            }
            Marker::FixMap(n) => self.map(usize::from(n), depth)?,
            Marker::Map16 => {
                let n = self.count(2)?;
                self.map(n, depth)?
            }
            Marker::Map32 => {
                let n = self.count(4)?;
                self.map(n, depth)?
            }
            other => {
                return Err(DynError::Decode(format!(
                    "unsupported MessagePack marker {other:?}"
                )));
            }
        })
    }

    fn string(&mut self, n: usize) -> Result<Mp, DynError> {
        let raw = self.take(n)?;
        std::str::from_utf8(raw)
            .map(|s| Mp::Str(s.to_owned()))
            .map_err(|_| DynError::Decode("a string that is not UTF-8".into()))
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Mp, DynError> {
        let mut items = Vec::with_capacity(n.min(self.bytes.len()));
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Mp::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Mp, DynError> {
        let mut entries = Vec::with_capacity(n.min(self.bytes.len() / 2));
        for _ in 0..n {
            let key = self.value(depth + 1)?;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        Ok(Mp::Map(entries))
    }
}

/// Decodes a message of `shape` as the generated serde code reads it:
/// missing fields take their defaults, unknown ones are ignored, enums are
/// accepted by name or number.
pub(crate) fn decode(schema: &Schema, shape: &Shape<'_>, bytes: &[u8]) -> Result<Dyn, DynError> {
    let value = Reader { bytes }.value(0)?;
    message_from_mp(schema, shape, &value, 0)
}

fn bad(expected: &str, got: &Mp) -> DynError {
    DynError::Decode(format!("expected {expected}, got {got:?}"))
}

fn message_from_mp(
    schema: &Schema,
    shape: &Shape<'_>,
    value: &Mp,
    depth: usize,
) -> Result<Dyn, DynError> {
    if depth > MAX_DEPTH {
        return Err(DynError::TooDeep);
    }
    match shape {
        Shape::Struct(fields) => match value {
            Mp::Map(entries) => {
                let mut values = Vec::with_capacity(fields.len());
                for field in *fields {
                    let found = entries
                        .iter()
                        .find(|(k, _)| matches!(k, Mp::Str(name) if *name == field.name));
                    values.push(match found {
                        Some((_, v)) => from_mp(schema, &field.ty, v, depth + 1)?,
                        None => field_default(schema, field, depth)?,
                    });
                }
                Ok(Dyn::Struct(values))
            }
            // rmp-serde also reads a struct written as an array.
            Mp::Array(items) => {
                let mut values = Vec::with_capacity(fields.len());
                for (i, field) in fields.iter().enumerate() {
                    values.push(match items.get(i) {
                        Some(v) => from_mp(schema, &field.ty, v, depth + 1)?,
                        None => field_default(schema, field, depth)?,
                    });
                }
                Ok(Dyn::Struct(values))
            }
            other => Err(bad("a map (struct)", other)),
        },
        Shape::Union(arms) => {
            let Mp::Map(entries) = value else {
                return Err(bad("a one-entry map (union)", value));
            };
            let [(key, arm_value)] = entries.as_slice() else {
                return Err(bad("a one-entry map (union)", value));
            };
            let index = match key {
                Mp::Str(name) => arms.iter().position(|a| &a.name == name),
                Mp::Int(i) => usize::try_from(*i).ok().filter(|i| *i < arms.len()),
                _ => None,
            }
            .ok_or_else(|| bad("a union arm", key))?;
            Ok(Dyn::Union(
                index,
                Box::new(from_mp(schema, &arms[index].ty, arm_value, depth + 1)?),
            ))
        }
    }
}

fn from_mp(schema: &Schema, ty: &FieldType, value: &Mp, depth: usize) -> Result<Dyn, DynError> {
    let int_in = |lo: i128, hi: i128| match value {
        Mp::Int(i) if (lo..=hi).contains(i) => Ok(*i),
        other => Err(bad("an integer in range", other)),
    };
    Ok(match ty {
        FieldType::Scalar(s) => match (s, value) {
            (Scalar::Bool, Mp::Bool(b)) => Dyn::Bool(*b),
            (Scalar::I32, _) => Dyn::Int(int_in(i32::MIN.into(), i32::MAX.into())? as i64),
            (Scalar::I64, _) => Dyn::Int(int_in(i64::MIN.into(), i64::MAX.into())? as i64),
            (Scalar::U32, _) => Dyn::Uint(int_in(0, u32::MAX.into())? as u64),
            (Scalar::U64, _) => Dyn::Uint(int_in(0, u64::MAX.into())? as u64),
            (Scalar::F32, Mp::Float(f)) => Dyn::F32(*f as f32),
            (Scalar::F32, Mp::Int(i)) => Dyn::F32(*i as f32),
            (Scalar::F64, Mp::Float(f)) => Dyn::F64(*f),
            (Scalar::F64, Mp::Int(i)) => Dyn::F64(*i as f64),
            (Scalar::String, Mp::Str(text)) => Dyn::Str(text.clone()),
            (Scalar::String, Mp::Bin(raw)) => Dyn::Str(
                String::from_utf8(raw.clone())
                    .map_err(|_| DynError::Decode("a string that is not UTF-8".into()))?,
            ),
            (Scalar::Bytes, Mp::Bin(raw)) => Dyn::Bytes(raw.clone()),
            (Scalar::Bytes, Mp::Array(items)) => Dyn::Bytes(
                items
                    .iter()
                    .map(|item| match item {
                        Mp::Int(b) => u8::try_from(*b).map_err(|_| bad("a byte", item)),
                        other => Err(bad("a byte", other)),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (_, other) => return Err(bad(super::value::scalar_name(*s), other)),
        },
        FieldType::Named(r) if r.kind == TypeKind::Enum => match value {
            Mp::Str(name) => {
                let def = enum_def(schema, r)?;
                let variant = def.variants.iter().find(|v| &v.name == name);
                Dyn::Enum(variant.ok_or_else(|| bad("a variant name", value))?.value)
            }
            Mp::Int(i) => Dyn::Enum(i32::try_from(*i).map_err(|_| bad("an enum number", value))?),
            other => return Err(bad("an enum", other)),
        },
        FieldType::Named(r) => message_from_mp(schema, &Shape::of(schema, r)?, value, depth + 1)?,
        FieldType::List(inner) => match value {
            Mp::Array(items) => Dyn::List(
                items
                    .iter()
                    .map(|item| from_mp(schema, inner, item, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            other => return Err(bad("an array", other)),
        },
        FieldType::Map(key, inner) => match value {
            Mp::Map(entries) => {
                let key_ty = FieldType::Scalar(*key);
                let mut out: Vec<(Dyn, Dyn)> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let k = from_mp(schema, &key_ty, k, depth + 1)?;
                    let v = from_mp(schema, inner, v, depth + 1)?;
                    out.push((k, v));
                }
                dedup_map_entries(&mut out);
                Dyn::Map(out)
            }
            other => return Err(bad("a map", other)),
        },
        FieldType::Optional(inner) => match value {
            Mp::Nil => Dyn::Optional(None),
            value => Dyn::Optional(Some(Box::new(from_mp(schema, inner, value, depth + 1)?))),
        },
    })
}
