//! IDL text of model values, for messages: `optional list<Order>`, `1`.

use crate::model::{FieldType, Scalar, Value};

/// A type as written in the IDL: `optional list<Order>`.
pub(super) fn type_text(ty: &FieldType) -> String {
    match ty {
        FieldType::Scalar(s) => scalar_text(*s).to_owned(),
        FieldType::Named(r) => match &r.package {
            Some(package) => format!("{package}.{}", r.name),
            None => r.name.clone(),
        },
        FieldType::List(inner) => format!("list<{}>", type_text(inner)),
        FieldType::Map(key, value) => format!("map<{}, {}>", scalar_text(*key), type_text(value)),
        FieldType::Optional(inner) => format!("optional {}", type_text(inner)),
    }
}

fn scalar_text(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::Bool => "bool",
        Scalar::I32 => "i32",
        Scalar::I64 => "i64",
        Scalar::U32 => "u32",
        Scalar::U64 => "u64",
        Scalar::F32 => "f32",
        Scalar::F64 => "f64",
        Scalar::String => "string",
        Scalar::Bytes => "bytes",
    }
}

pub(super) fn value_text(value: Option<&Value>) -> String {
    match value {
        None => "none (the type's zero value)".to_owned(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::Float(f)) => format!("{f:?}"),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(Value::EnumVariant(v)) => v.clone(),
    }
}

pub(super) fn return_text(ty: Option<&FieldType>) -> String {
    ty.map_or_else(|| "void".to_owned(), type_text)
}
