//! Postcard, as serde's derives on the generated types write it through
//! postcard: every field in declaration order (no names, no tags), varint
//! integers (zigzag for signed ones), enums as their `i32` number, `bytes`
//! and strings with a varint length, `optional` as a 0/1 byte, lists and
//! maps with a varint count, a union as its arm's index in declaration
//! order (a varint) then the arm's value. Not self-describing: the schema
//! must be exactly the peer's.

use idlc::model::{FieldType, Scalar, TypeKind};

use super::value::{Dyn, Shape};
use super::{DynError, MAX_DEPTH};
use crate::schema::Schema;

/// Encodes a message of `shape`.
pub(crate) fn encode(
    schema: &Schema,
    shape: &Shape<'_>,
    value: &Dyn,
    buf: &mut Vec<u8>,
) -> Result<(), DynError> {
    encode_message(schema, shape, value, buf, 0)
}

fn mismatch(what: &str) -> DynError {
    DynError::Schema(format!("a {what} does not match the schema"))
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
                encode_value(schema, &field.ty, value, buf, depth)?;
            }
            Ok(())
        }
        (Shape::Union(arms), Dyn::Union(index, value)) => {
            let arm = arms.get(*index).ok_or_else(|| mismatch("union arm"))?;
            write_varint(*index as u64, buf);
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
        (_, Dyn::Bool(b)) => buf.push(u8::from(*b)),
        (FieldType::Scalar(Scalar::I32), Dyn::Int(i)) => write_varint(zigzag(*i), buf),
        (_, Dyn::Int(i)) => write_varint(zigzag(*i), buf),
        (_, Dyn::Uint(u)) => write_varint(*u, buf),
        (_, Dyn::F32(f)) => buf.extend_from_slice(&f.to_le_bytes()),
        (_, Dyn::F64(f)) => buf.extend_from_slice(&f.to_le_bytes()),
        (_, Dyn::Str(s)) => write_bytes(s.as_bytes(), buf),
        (_, Dyn::Bytes(b)) => write_bytes(b, buf),
        (_, Dyn::Enum(v)) => write_varint(zigzag(i64::from(*v)), buf),
        (FieldType::Named(r), value @ (Dyn::Struct(_) | Dyn::Union(..))) => {
            encode_message(schema, &Shape::of(schema, r)?, value, buf, depth + 1)?
        }
        (FieldType::List(inner), Dyn::List(items)) => {
            write_varint(items.len() as u64, buf);
            for item in items {
                encode_value(schema, inner, item, buf, depth + 1)?;
            }
        }
        (FieldType::Map(key, inner), Dyn::Map(entries)) => {
            write_varint(entries.len() as u64, buf);
            let key_ty = FieldType::Scalar(*key);
            for (k, v) in entries {
                encode_value(schema, &key_ty, k, buf, depth + 1)?;
                encode_value(schema, inner, v, buf, depth + 1)?;
            }
        }
        (FieldType::Optional(_), Dyn::Optional(None)) => buf.push(0),
        (FieldType::Optional(inner), Dyn::Optional(Some(value))) => {
            buf.push(1);
            encode_value(schema, inner, value, buf, depth + 1)?;
        }
        _ => return Err(mismatch("value")),
    }
    Ok(())
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn write_varint(mut value: u64, buf: &mut Vec<u8>) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn write_bytes(bytes: &[u8], buf: &mut Vec<u8>) {
    write_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

/// Decodes a message of `shape`; bytes after it are ignored (as the
/// runtime's postcard decoding does).
pub(crate) fn decode(schema: &Schema, shape: &Shape<'_>, bytes: &[u8]) -> Result<Dyn, DynError> {
    let mut reader = Reader {
        bytes,
        empty_items_left: MAX_EMPTY_ITEMS,
    };
    decode_message(schema, shape, &mut reader, 0)
}

struct Reader<'a> {
    bytes: &'a [u8],
    /// How many more list items that take no bytes (`list<Empty>`) this
    /// message may hold.
    empty_items_left: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DynError> {
        let (&byte, rest) = self.bytes.split_first().ok_or_else(truncated)?;
        self.bytes = rest;
        Ok(byte)
    }

    /// A varint of at most `max_bytes` bytes (5 for 32-bit values, 10 for
    /// 64-bit ones).
    fn varint(&mut self, max_bytes: u32) -> Result<u64, DynError> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DynError::Decode("a varint that is too long".into()))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], DynError> {
        let n = usize::try_from(n).map_err(|_| truncated())?;
        if n > self.bytes.len() {
            return Err(truncated());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// A count of items of a list or map. It may exceed the bytes left
    /// (an item of `list<Empty>` takes none), but not [`MAX_EMPTY_ITEMS`];
    /// items that do take bytes run out of them, and
    /// [`Reader::item_read`] bounds the ones that do not.
    fn count(&mut self) -> Result<usize, DynError> {
        let n = self.varint(10)?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_EMPTY_ITEMS)
            .ok_or_else(|| {
                DynError::Decode(format!("a count of {n} items (at most {MAX_EMPTY_ITEMS})"))
            })
    }

    /// What to reserve for `n` claimed items: never more than one per byte
    /// left, whatever the claim.
    fn capacity(&self, n: usize) -> usize {
        n.min(self.bytes.len())
    }

    /// Accounts for an item read when `before` bytes were left: an item
    /// that took none is charged to the message's budget of empty items.
    fn item_read(&mut self, before: usize) -> Result<(), DynError> {
        if self.bytes.len() < before {
            return Ok(());
        }
        self.empty_items_left = self.empty_items_left.checked_sub(1).ok_or_else(|| {
            DynError::Decode(format!(
                "more than {MAX_EMPTY_ITEMS} items that take no bytes (list<Empty>)"
            ))
        })?;
        Ok(())
    }
}

/// The most list items that take no bytes (`list<Empty>`) one message may
/// hold, in all its lists together; also the most items any list or map
/// may claim. Every other item takes at least one byte, so the bytes bound
/// those.
const MAX_EMPTY_ITEMS: usize = 1 << 20;

fn truncated() -> DynError {
    DynError::Decode("the message ends too soon".into())
}

fn decode_message(
    schema: &Schema,
    shape: &Shape<'_>,
    reader: &mut Reader<'_>,
    depth: usize,
) -> Result<Dyn, DynError> {
    if depth > MAX_DEPTH {
        return Err(DynError::TooDeep);
    }
    match shape {
        Shape::Struct(fields) => fields
            .iter()
            .map(|f| decode_value(schema, &f.ty, reader, depth))
            .collect::<Result<_, _>>()
            .map(Dyn::Struct),
        Shape::Union(arms) => {
            let index = reader.varint(5)?;
            let arm = usize::try_from(index)
                .ok()
                .and_then(|i| arms.get(i).map(|arm| (i, arm)));
            let Some((index, arm)) = arm else {
                return Err(DynError::Decode(format!(
                    "union arm {index} does not exist"
                )));
            };
            Ok(Dyn::Union(
                index,
                Box::new(decode_value(schema, &arm.ty, reader, depth)?),
            ))
        }
    }
}

fn decode_value(
    schema: &Schema,
    ty: &FieldType,
    reader: &mut Reader<'_>,
    depth: usize,
) -> Result<Dyn, DynError> {
    Ok(match ty {
        FieldType::Scalar(s) => match s {
            Scalar::Bool => match reader.byte()? {
                0 => Dyn::Bool(false),
                1 => Dyn::Bool(true),
                other => return Err(DynError::Decode(format!("{other} is not a bool"))),
            },
            Scalar::I32 => {
                let v = unzigzag(reader.varint(5)?);
                Dyn::Int(i64::from(
                    i32::try_from(v).map_err(|_| DynError::Decode("an i32 out of range".into()))?,
                ))
            }
            Scalar::I64 => Dyn::Int(unzigzag(reader.varint(10)?)),
            Scalar::U32 => {
                let v = reader.varint(5)?;
                Dyn::Uint(u64::from(
                    u32::try_from(v).map_err(|_| DynError::Decode("a u32 out of range".into()))?,
                ))
            }
            Scalar::U64 => Dyn::Uint(reader.varint(10)?),
            Scalar::F32 => {
                let raw: [u8; 4] = reader.take(4)?.try_into().map_err(|_| truncated())?;
                Dyn::F32(f32::from_le_bytes(raw))
            }
            Scalar::F64 => {
                let raw: [u8; 8] = reader.take(8)?.try_into().map_err(|_| truncated())?;
                Dyn::F64(f64::from_le_bytes(raw))
            }
            Scalar::String => {
                let len = reader.varint(10)?;
                let raw = reader.take(len)?;
                Dyn::Str(
                    std::str::from_utf8(raw)
                        .map_err(|_| DynError::Decode("a string that is not UTF-8".into()))?
                        .to_owned(),
                )
            }
            Scalar::Bytes => {
                let len = reader.varint(10)?;
                Dyn::Bytes(reader.take(len)?.to_vec())
            }
        },
        FieldType::Named(r) if r.kind == TypeKind::Enum => {
            let v = unzigzag(reader.varint(5)?);
            Dyn::Enum(
                i32::try_from(v).map_err(|_| DynError::Decode("an enum out of range".into()))?,
            )
        }
        FieldType::Named(r) => decode_message(schema, &Shape::of(schema, r)?, reader, depth + 1)?,
        FieldType::List(inner) => {
            let n = reader.count()?;
            let mut items = Vec::with_capacity(reader.capacity(n));
            for _ in 0..n {
                let before = reader.bytes.len();
                items.push(decode_value(schema, inner, reader, depth + 1)?);
                reader.item_read(before)?;
            }
            Dyn::List(items)
        }
        FieldType::Map(key, inner) => {
            // A key takes at least one byte: the bytes bound the entries.
            let n = reader.count()?;
            let key_ty = FieldType::Scalar(*key);
            let mut entries = Vec::with_capacity(reader.capacity(n));
            for _ in 0..n {
                let k = decode_value(schema, &key_ty, reader, depth + 1)?;
                let v = decode_value(schema, inner, reader, depth + 1)?;
                entries.push((k, v));
            }
            Dyn::Map(entries)
        }
        FieldType::Optional(inner) => match reader.byte()? {
            0 => Dyn::Optional(None),
            1 => Dyn::Optional(Some(Box::new(decode_value(
                schema,
                inner,
                reader,
                depth + 1,
            )?))),
            other => return Err(DynError::Decode(format!("{other} is not an option tag"))),
        },
    })
}
