//! A JSON template of a message: every field with its IDL default, or an
//! example value of its type, to show what a method takes.

use idlc::model::{Field, FieldType, Scalar, TypeKind};
use serde_json::{Map, Value};

use super::value::{Shape, enum_def, field_default, to_json};
use crate::schema::Schema;

/// How deep a template goes before it writes `null` (recursive types).
const MAX_TEMPLATE_DEPTH: usize = 6;

/// A template of a message of `shape`.
pub(crate) fn message(schema: &Schema, shape: &Shape<'_>, depth: usize) -> Value {
    match shape {
        Shape::Struct(fields) => Value::Object(
            fields
                .iter()
                .map(|f| (f.name.clone(), of_field(schema, f, depth + 1)))
                .collect::<Map<_, _>>(),
        ),
        Shape::Union(arms) => {
            let mut object = Map::new();
            if let Some(first) = arms.first() {
                object.insert(first.name.clone(), of_type(schema, &first.ty, depth + 1));
            }
            Value::Object(object)
        }
    }
}

/// A field's default as JSON (`"limit": 10` for `u32 limit = 10`), else an
/// example of its type.
fn of_field(schema: &Schema, field: &Field, depth: usize) -> Value {
    if field.default.is_some() {
        let default =
            field_default(schema, field, depth).and_then(|d| to_json(schema, &field.ty, &d));
        if let Ok(value) = default {
            return value;
        }
    }
    of_type(schema, &field.ty, depth)
}

fn of_type(schema: &Schema, ty: &FieldType, depth: usize) -> Value {
    if depth > MAX_TEMPLATE_DEPTH {
        return Value::Null;
    }
    match ty {
        FieldType::Scalar(s) => match s {
            Scalar::Bool => Value::Bool(false),
            Scalar::I32 | Scalar::I64 | Scalar::U32 | Scalar::U64 => Value::from(0),
            Scalar::F32 | Scalar::F64 => Value::from(0.0),
            Scalar::String => Value::String(String::new()),
            Scalar::Bytes => Value::String("BASE64".into()),
        },
        FieldType::Named(r) if r.kind == TypeKind::Enum => match enum_def(schema, r) {
            Ok(def) => Value::String(
                def.variants
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            Err(_) => Value::Null,
        },
        FieldType::Named(r) => match Shape::of(schema, r) {
            Ok(shape) => message(schema, &shape, depth),
            Err(_) => Value::Null,
        },
        FieldType::List(inner) => Value::Array(vec![of_type(schema, inner, depth + 1)]),
        FieldType::Map(key, inner) => {
            let key = match key {
                Scalar::String => "KEY",
                Scalar::Bool => "true",
                _ => "0",
            };
            let mut object = Map::new();
            object.insert(key.to_owned(), of_type(schema, inner, depth + 1));
            Value::Object(object)
        }
        // Recursion through `optional` stops at once: null is a valid value.
        FieldType::Optional(inner) => match inner.as_ref() {
            FieldType::Named(r) if r.kind != TypeKind::Enum && depth > 1 => Value::Null,
            inner => of_type(schema, inner, depth + 1),
        },
    }
}
