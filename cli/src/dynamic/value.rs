//! [`Dyn`]: a value typed by the schema, between JSON and the binary
//! formats. JSON is checked against the schema on the way in
//! ([`from_json`]) and written in PROTOCOL.md's JSON mapping on the way out
//! ([`to_json`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use idlc::model::{
    EnumDef, Field, FieldType, Scalar, TypeDef, TypeKind, TypeRef, Value as Literal,
};
use serde_json::{Map, Number, Value};

use super::{DynError, MAX_DEPTH};
use crate::schema::Schema;

/// A value of an IDL type.
#[derive(Debug, Clone, PartialEq)]
pub enum Dyn {
    /// `bool`
    Bool(bool),
    /// `i32`, `i64`
    Int(i64),
    /// `u32`, `u64`
    Uint(u64),
    /// `f32`
    F32(f32),
    /// `f64`
    F64(f64),
    /// `string`
    Str(String),
    /// `bytes`
    Bytes(Vec<u8>),
    /// An enum value (known or not).
    Enum(i32),
    /// A struct, error or message: every field, in declaration order.
    Struct(Vec<Dyn>),
    /// A union: the arm's index in declaration order, and its value.
    Union(usize, Box<Dyn>),
    /// `list<T>`
    List(Vec<Dyn>),
    /// `map<K, V>`, in the order read.
    Map(Vec<(Dyn, Dyn)>),
    /// `optional T`
    Optional(Option<Box<Dyn>>),
}

/// A map key as a hash key (map keys are scalars).
#[derive(PartialEq, Eq, Hash)]
enum KeyOf<'a> {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Bits(u64),
    Str(&'a str),
    Bytes(&'a [u8]),
    Enum(i32),
    /// Not a scalar: never merged with another key.
    Other(usize),
}

impl<'a> KeyOf<'a> {
    fn of(key: &'a Dyn, position: usize) -> KeyOf<'a> {
        match key {
            Dyn::Bool(b) => KeyOf::Bool(*b),
            Dyn::Int(i) => KeyOf::Int(*i),
            Dyn::Uint(u) => KeyOf::Uint(*u),
            Dyn::F32(f) => KeyOf::Bits(u64::from(f.to_bits())),
            Dyn::F64(f) => KeyOf::Bits(f.to_bits()),
            Dyn::Str(s) => KeyOf::Str(s),
            Dyn::Bytes(b) => KeyOf::Bytes(b),
            Dyn::Enum(e) => KeyOf::Enum(*e),
            _ => KeyOf::Other(position),
        }
    }
}

/// Merges the entries of a map read entry by entry: a repeated key keeps
/// its first position and takes its last value (as prost and rmp-serde
/// decode maps). Linear: one hash lookup per entry, whatever the input.
pub(crate) fn dedup_map_entries(entries: &mut Vec<(Dyn, Dyn)>) {
    let mut first_of: std::collections::HashMap<KeyOf<'_>, usize> =
        std::collections::HashMap::with_capacity(entries.len());
    // For each entry, the position of the first entry with its key.
    let mut target = Vec::with_capacity(entries.len());
    for (position, (key, _)) in entries.iter().enumerate() {
        target.push(*first_of.entry(KeyOf::of(key, position)).or_insert(position));
    }
    drop(first_of);
    if target.iter().enumerate().all(|(i, t)| i == *t) {
        return;
    }
    // The index in `merged` of each kept (first) position.
    let mut kept_at = vec![0usize; entries.len()];
    let mut merged: Vec<(Dyn, Dyn)> = Vec::with_capacity(entries.len());
    for (position, (key, value)) in std::mem::take(entries).into_iter().enumerate() {
        let first = target[position];
        if first == position {
            kept_at[position] = merged.len();
            merged.push((key, value));
        } else if let Some(slot) = merged.get_mut(kept_at[first]) {
            slot.1 = value;
        }
    }
    *entries = merged;
}

/// Applies [`dedup_map_entries`] to every map in `value`.
pub(crate) fn dedup_maps(value: &mut Dyn) {
    match value {
        Dyn::Map(entries) => {
            dedup_map_entries(entries);
            for (_, v) in entries {
                dedup_maps(v);
            }
        }
        Dyn::Struct(items) | Dyn::List(items) => items.iter_mut().for_each(dedup_maps),
        Dyn::Union(_, inner) => dedup_maps(inner),
        Dyn::Optional(Some(inner)) => dedup_maps(inner),
        _ => {}
    }
}

/// The fields of a message-like declaration: a struct's fields, or a
/// union's arms.
pub(crate) enum Shape<'a> {
    /// A struct or error (or an args or result message).
    Struct(&'a [Field]),
    /// A union (or the error message of a method).
    Union(&'a [Field]),
}

impl<'a> Shape<'a> {
    /// The shape of a declared struct, error or union.
    pub(crate) fn of(schema: &'a Schema, ty: &TypeRef) -> Result<Shape<'a>, DynError> {
        match schema.resolve(ty) {
            Some(TypeDef::Struct(s)) => Ok(Shape::Struct(&s.fields)),
            Some(TypeDef::Union(u)) => Ok(Shape::Union(&u.arms)),
            _ => Err(DynError::Schema(format!(
                "type `{}` is missing from the schema",
                ty.name
            ))),
        }
    }
}

/// A declared enum.
pub(crate) fn enum_def<'a>(schema: &'a Schema, ty: &TypeRef) -> Result<&'a EnumDef, DynError> {
    match schema.resolve(ty) {
        Some(TypeDef::Enum(e)) => Ok(e),
        _ => Err(DynError::Schema(format!(
            "enum `{}` is missing from the schema",
            ty.name
        ))),
    }
}

/// The value a missing field decodes as: its IDL default, else its type's
/// zero value.
pub(crate) fn field_default(schema: &Schema, field: &Field, depth: usize) -> Result<Dyn, DynError> {
    match (&field.default, &field.ty) {
        (Some(literal), ty) => literal_value(schema, literal, ty),
        (None, ty) => zero(schema, ty, depth),
    }
}

fn literal_value(schema: &Schema, literal: &Literal, ty: &FieldType) -> Result<Dyn, DynError> {
    Ok(match (literal, ty) {
        (Literal::Bool(b), _) => Dyn::Bool(*b),
        (Literal::Int(i), FieldType::Scalar(Scalar::U32 | Scalar::U64)) => {
            Dyn::Uint(u64::try_from(*i).unwrap_or_default())
        }
        (Literal::Int(i), FieldType::Scalar(Scalar::F32)) => Dyn::F32(*i as f32),
        (Literal::Int(i), FieldType::Scalar(Scalar::F64)) => Dyn::F64(*i as f64),
        (Literal::Int(i), _) => Dyn::Int(i64::try_from(*i).unwrap_or_default()),
        (Literal::Float(f), FieldType::Scalar(Scalar::F32)) => Dyn::F32(*f as f32),
        (Literal::Float(f), _) => Dyn::F64(*f),
        (Literal::String(s), FieldType::Scalar(Scalar::Bytes)) => Dyn::Bytes(s.as_bytes().to_vec()),
        (Literal::String(s), _) => Dyn::Str(s.clone()),
        (Literal::EnumVariant(name), FieldType::Named(r)) => {
            let def = enum_def(schema, r)?;
            Dyn::Enum(
                def.variants
                    .iter()
                    .find(|v| &v.name == name)
                    .map_or(0, |v| v.value),
            )
        }
        (Literal::EnumVariant(_), _) => Dyn::Enum(0),
    })
}

/// The zero value of a type (what Rust's `Default` gives).
pub(crate) fn zero(schema: &Schema, ty: &FieldType, depth: usize) -> Result<Dyn, DynError> {
    if depth > MAX_DEPTH {
        return Err(DynError::TooDeep);
    }
    Ok(match ty {
        FieldType::Scalar(s) => match s {
            Scalar::Bool => Dyn::Bool(false),
            Scalar::I32 | Scalar::I64 => Dyn::Int(0),
            Scalar::U32 | Scalar::U64 => Dyn::Uint(0),
            Scalar::F32 => Dyn::F32(0.0),
            Scalar::F64 => Dyn::F64(0.0),
            Scalar::String => Dyn::Str(String::new()),
            Scalar::Bytes => Dyn::Bytes(Vec::new()),
        },
        FieldType::Named(r) if r.kind == TypeKind::Enum => Dyn::Enum(0),
        FieldType::Named(r) => default_of_shape(schema, &Shape::of(schema, r)?, depth + 1)?,
        FieldType::List(_) => Dyn::List(Vec::new()),
        FieldType::Map(..) => Dyn::Map(Vec::new()),
        FieldType::Optional(_) => Dyn::Optional(None),
    })
}

/// The default of a struct (every field's default) or a union (its first
/// arm's default).
pub(crate) fn default_of_shape(
    schema: &Schema,
    shape: &Shape<'_>,
    depth: usize,
) -> Result<Dyn, DynError> {
    match shape {
        Shape::Struct(fields) => Ok(Dyn::Struct(
            fields
                .iter()
                .map(|f| field_default(schema, f, depth))
                .collect::<Result<_, _>>()?,
        )),
        Shape::Union(arms) => match arms.first() {
            Some(first) => Ok(Dyn::Union(0, Box::new(zero(schema, &first.ty, depth)?))),
            None => Err(DynError::Schema("a union without arms".into())),
        },
    }
}

/// Where in the JSON a problem is (`$.items[0].sku`).
#[derive(Debug, Clone)]
struct JsonPath(String);

impl JsonPath {
    fn key(&self, key: &str) -> JsonPath {
        JsonPath(format!("{}.{key}", self.0))
    }

    fn index(&self, index: usize) -> JsonPath {
        JsonPath(format!("{}[{index}]", self.0))
    }

    fn error(&self, problem: impl Into<String>) -> DynError {
        DynError::Json {
            path: self.0.clone(),
            problem: problem.into(),
        }
    }
}

/// Reads JSON as a message of `shape`, checking it against the schema:
/// types, ranges, enum names, union arms; keys not in the schema are an
/// error (they are usually typos), missing keys take their defaults.
pub(crate) fn message_from_json(
    schema: &Schema,
    shape: &Shape<'_>,
    json: &Value,
) -> Result<Dyn, DynError> {
    shape_from_json(schema, shape, json, &JsonPath("$".into()), 0)
}

fn shape_from_json(
    schema: &Schema,
    shape: &Shape<'_>,
    json: &Value,
    path: &JsonPath,
    depth: usize,
) -> Result<Dyn, DynError> {
    if depth > MAX_DEPTH {
        return Err(DynError::TooDeep);
    }
    let Value::Object(object) = json else {
        return Err(path.error(format!("expected an object, got {}", kind_of(json))));
    };
    match shape {
        Shape::Struct(fields) => {
            if let Some(unknown) = object
                .keys()
                .find(|k| !fields.iter().any(|f| &f.name == *k))
            {
                let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                return Err(path.key(unknown).error(format!(
                    "no such field; the fields are: {}",
                    if known.is_empty() {
                        "(none)".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            let mut values = Vec::with_capacity(fields.len());
            for field in *fields {
                let value = match object.get(&field.name) {
                    None => field_default(schema, field, depth)?,
                    Some(Value::Null) if !matches!(field.ty, FieldType::Optional(_)) => {
                        return Err(path.key(&field.name).error(format!(
                            "null is only allowed for optional fields; this one is {}",
                            type_name(&field.ty)
                        )));
                    }
                    Some(json) => {
                        from_json(schema, &field.ty, json, &path.key(&field.name), depth + 1)?
                    }
                };
                values.push(value);
            }
            Ok(Dyn::Struct(values))
        }
        Shape::Union(arms) => {
            let names = || {
                arms.iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if object.len() != 1 {
                return Err(path.error(format!(
                    "a union is an object with exactly one key, the arm: one of {}",
                    names()
                )));
            }
            let Some((key, value)) = object.iter().next() else {
                return Err(path.error("an empty union"));
            };
            let Some(index) = arms.iter().position(|a| &a.name == key) else {
                return Err(path
                    .key(key)
                    .error(format!("no such arm; the arms are: {}", names())));
            };
            let arm = from_json(schema, &arms[index].ty, value, &path.key(key), depth + 1)?;
            Ok(Dyn::Union(index, Box::new(arm)))
        }
    }
}

fn from_json(
    schema: &Schema,
    ty: &FieldType,
    json: &Value,
    path: &JsonPath,
    depth: usize,
) -> Result<Dyn, DynError> {
    if depth > MAX_DEPTH {
        return Err(DynError::TooDeep);
    }
    let mismatch = || path.error(format!("expected {}, got {}", type_name(ty), kind_of(json)));
    match ty {
        FieldType::Scalar(scalar) => scalar_from_json(*scalar, json, path).ok_or_else(mismatch)?,
        FieldType::Named(r) if r.kind == TypeKind::Enum => {
            let def = enum_def(schema, r)?;
            match json {
                Value::String(name) => def
                    .variants
                    .iter()
                    .find(|v| &v.name == name)
                    .map(|v| Dyn::Enum(v.value))
                    .ok_or_else(|| {
                        path.error(format!(
                            "`{name}` is not a variant of {}; the variants are: {}",
                            r.name,
                            def.variants
                                .iter()
                                .map(|v| v.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }),
                Value::Number(n) => n
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .map(Dyn::Enum)
                    .ok_or_else(mismatch),
                _ => Err(mismatch()),
            }
        }
        FieldType::Named(r) => shape_from_json(schema, &Shape::of(schema, r)?, json, path, depth),
        FieldType::List(inner) => {
            let Value::Array(items) = json else {
                return Err(mismatch());
            };
            items
                .iter()
                .enumerate()
                .map(|(i, item)| from_json(schema, inner, item, &path.index(i), depth + 1))
                .collect::<Result<_, _>>()
                .map(Dyn::List)
        }
        FieldType::Map(key, value) => {
            let Value::Object(entries) = json else {
                return Err(mismatch());
            };
            let mut out = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let key_path = path.key(k);
                let key = map_key_from_text(*key, k).ok_or_else(|| {
                    key_path.error(format!("the key `{k}` is not a {}", scalar_name(*key)))
                })?;
                out.push((key, from_json(schema, value, v, &key_path, depth + 1)?));
            }
            Ok(Dyn::Map(out))
        }
        FieldType::Optional(inner) => match json {
            Value::Null => Ok(Dyn::Optional(None)),
            json => Ok(Dyn::Optional(Some(Box::new(from_json(
                schema,
                inner,
                json,
                path,
                depth + 1,
            )?)))),
        },
    }
}

/// A scalar from JSON; `None` on a type mismatch; `Some(Err)` when the type
/// fits but the value does not (range, base64).
fn scalar_from_json(
    scalar: Scalar,
    json: &Value,
    path: &JsonPath,
) -> Option<Result<Dyn, DynError>> {
    let out_of_range = |n: &Number| {
        path.error(format!(
            "{n} is out of the range of {}",
            scalar_name(scalar)
        ))
    };
    Some(match (scalar, json) {
        (Scalar::Bool, Value::Bool(b)) => Ok(Dyn::Bool(*b)),
        (Scalar::I32, Value::Number(n)) if n.is_i64() || n.is_u64() => n
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .map(|v| Dyn::Int(v.into()))
            .ok_or_else(|| out_of_range(n)),
        (Scalar::I64, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            n.as_i64().map(Dyn::Int).ok_or_else(|| out_of_range(n))
        }
        (Scalar::U32, Value::Number(n)) if n.is_i64() || n.is_u64() => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .map(|v| Dyn::Uint(v.into()))
            .ok_or_else(|| out_of_range(n)),
        (Scalar::U64, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            n.as_u64().map(Dyn::Uint).ok_or_else(|| out_of_range(n))
        }
        (Scalar::F32, Value::Number(n)) => Ok(Dyn::F32(n.as_f64().unwrap_or_default() as f32)),
        (Scalar::F64, Value::Number(n)) => Ok(Dyn::F64(n.as_f64().unwrap_or_default())),
        (Scalar::String, Value::String(s)) => Ok(Dyn::Str(s.clone())),
        (Scalar::Bytes, Value::String(s)) => STANDARD
            .decode(s)
            .map(Dyn::Bytes)
            .map_err(|e| path.error(format!("bytes are standard base64 with padding: {e}"))),
        _ => return None,
    })
}

/// A map key from its JSON text (`"42"`, `"true"`).
fn map_key_from_text(scalar: Scalar, text: &str) -> Option<Dyn> {
    match scalar {
        Scalar::String => Some(Dyn::Str(text.to_owned())),
        Scalar::Bool => text.parse().ok().map(Dyn::Bool),
        Scalar::I32 => text.parse::<i32>().ok().map(|v| Dyn::Int(v.into())),
        Scalar::I64 => text.parse().ok().map(Dyn::Int),
        Scalar::U32 => text.parse::<u32>().ok().map(|v| Dyn::Uint(v.into())),
        Scalar::U64 => text.parse().ok().map(Dyn::Uint),
        _ => None,
    }
}

/// A message of `shape` as PROTOCOL.md's JSON (what the generated serde
/// code writes with serde_json).
pub(crate) fn message_to_json(
    schema: &Schema,
    shape: &Shape<'_>,
    value: &Dyn,
) -> Result<Value, DynError> {
    match (shape, value) {
        (Shape::Struct(fields), Dyn::Struct(values)) => {
            let mut object = Map::new();
            for (field, value) in fields.iter().zip(values) {
                object.insert(field.name.clone(), to_json(schema, &field.ty, value)?);
            }
            Ok(Value::Object(object))
        }
        (Shape::Union(arms), Dyn::Union(index, value)) => {
            let arm = arms
                .get(*index)
                .ok_or_else(|| DynError::Schema(format!("union arm {index} is out of range")))?;
            let mut object = Map::new();
            object.insert(arm.name.clone(), to_json(schema, &arm.ty, value)?);
            Ok(Value::Object(object))
        }
        _ => Err(DynError::Schema(
            "a value does not match its message".into(),
        )),
    }
}

/// A value as PROTOCOL.md's JSON.
pub(crate) fn to_json(schema: &Schema, ty: &FieldType, value: &Dyn) -> Result<Value, DynError> {
    Ok(match (ty, value) {
        (_, Dyn::Bool(b)) => Value::Bool(*b),
        (_, Dyn::Int(i)) => Value::from(*i),
        (_, Dyn::Uint(u)) => Value::from(*u),
        // The shortest text that reads back as the same f32 (as serde_json
        // writes an f32), not the f64 widening of it.
        (_, Dyn::F32(f)) => f
            .to_string()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number),
        (_, Dyn::F64(f)) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        (_, Dyn::Str(s)) => Value::String(s.clone()),
        (_, Dyn::Bytes(b)) => Value::String(STANDARD.encode(b)),
        (FieldType::Named(r), Dyn::Enum(v)) => {
            let def = enum_def(schema, r)?;
            match def.variants.iter().find(|variant| variant.value == *v) {
                Some(variant) => Value::String(variant.name.clone()),
                None => Value::from(*v),
            }
        }
        (FieldType::Named(r), value @ (Dyn::Struct(_) | Dyn::Union(..))) => {
            message_to_json(schema, &Shape::of(schema, r)?, value)?
        }
        (FieldType::List(inner), Dyn::List(items)) => Value::Array(
            items
                .iter()
                .map(|item| to_json(schema, inner, item))
                .collect::<Result<_, _>>()?,
        ),
        (FieldType::Map(_, inner), Dyn::Map(entries)) => {
            let mut object = Map::new();
            for (key, value) in entries {
                let key = match key {
                    Dyn::Str(s) => s.clone(),
                    Dyn::Bool(b) => b.to_string(),
                    Dyn::Int(i) => i.to_string(),
                    Dyn::Uint(u) => u.to_string(),
                    _ => return Err(DynError::Schema("a map key that is not a scalar".into())),
                };
                object.insert(key, to_json(schema, inner, value)?);
            }
            Value::Object(object)
        }
        (FieldType::Optional(_), Dyn::Optional(None)) => Value::Null,
        (FieldType::Optional(inner), Dyn::Optional(Some(value))) => to_json(schema, inner, value)?,
        _ => return Err(DynError::Schema("a value does not match its type".into())),
    })
}

/// `u32`, `list<string>`, `optional Order`: a type as the IDL writes it.
pub(crate) fn type_name(ty: &FieldType) -> String {
    match ty {
        FieldType::Scalar(s) => scalar_name(*s).to_owned(),
        FieldType::Named(r) => match r.kind {
            TypeKind::Enum => format!("enum {} (a variant name)", r.name),
            TypeKind::Union => format!("union {} (an object with one arm)", r.name),
            _ => format!("{} (an object)", r.name),
        },
        FieldType::List(inner) => format!("list<{}>", type_name(inner)),
        FieldType::Map(k, v) => format!("map<{}, {}>", scalar_name(*k), type_name(v)),
        FieldType::Optional(inner) => format!("optional {}", type_name(inner)),
    }
}

pub(crate) fn scalar_name(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::Bool => "bool",
        Scalar::I32 => "i32",
        Scalar::I64 => "i64",
        Scalar::U32 => "u32",
        Scalar::U64 => "u64",
        Scalar::F32 => "f32",
        Scalar::F64 => "f64",
        Scalar::String => "string",
        Scalar::Bytes => "bytes (base64 text)",
    }
}

fn kind_of(json: &Value) -> &'static str {
    match json {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(n) if n.is_i64() && n.as_i64().is_some_and(|v| v < 0) => "a negative number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
