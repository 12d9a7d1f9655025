//! IDL types and literal values as Rust text.

use std::collections::BTreeSet;

use super::layout::{Doc, Tok, path_tokens};
use super::options::{CodegenOptions, MapType};
use crate::model::{FieldType, Scalar, TypeRef, Value};
use crate::rust_names::{const_name, field_name, type_name};

/// Where generated code stands: which module (for paths to declared
/// types), which names its module declares (so a user type called `String`
/// makes generated code say `__rt::String`), and the options.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The options of this run.
    pub options: &'a CodegenOptions,
    /// The package of the file being generated.
    pub package: Option<&'a str>,
    /// The module of the file being generated.
    pub module_name: &'a str,
    /// 0 in the file's module, 1 in a service's module.
    pub depth: usize,
    /// The type namespace of the module the code is in.
    pub taken: &'a BTreeSet<String>,
}

impl Scope<'_> {
    /// The extra attributes the options give the declared type `name`, one
    /// per line.
    pub fn type_attributes(self, name: &str) -> Vec<String> {
        self.options.attributes_for(self.package, name)
    }

    /// A standard type (`String`, `Vec`, ...): bare unless the module
    /// declares a type of that name.
    pub fn std(self, name: &str) -> String {
        if self.taken.contains(name) {
            format!("__rt::{name}")
        } else {
            name.to_owned()
        }
    }

    /// The path to a declared type. Types of other files live in sibling
    /// modules named after their file.
    pub fn path(self, ty: &TypeRef) -> String {
        let mut path = "super::".repeat(self.depth);
        if ty.module_name != self.module_name {
            path.push_str("super::");
            path.push_str(&field_name(&ty.module_name));
            path.push_str("::");
        }
        path.push_str(&type_name(&ty.name));
        path
    }

    /// The Rust type of a field; `boxed` boxes the inside of an `optional`.
    pub fn ty(self, ty: &FieldType, boxed: bool) -> Doc<'static> {
        match ty {
            FieldType::Scalar(s) => Doc::text(self.scalar(*s)),
            FieldType::Named(r) => Doc::text(self.path(r)),
            FieldType::List(inner) => {
                Doc::list(self.std("Vec"), "<", vec![self.ty(inner, false)], ">")
            }
            FieldType::Map(key, value) => {
                let map = match self.options.map_type {
                    MapType::HashMap => "__rt::HashMap",
                    MapType::BTreeMap => "__rt::BTreeMap",
                };
                Doc::list(
                    map,
                    "<",
                    vec![Doc::text(self.scalar(*key)), self.ty(value, false)],
                    ">",
                )
            }
            FieldType::Optional(inner) => {
                let inner = self.ty(inner, false);
                let inner = if boxed {
                    Doc::list(self.std("Box"), "<", vec![inner], ">")
                } else {
                    inner
                };
                Doc::list(self.std("Option"), "<", vec![inner], ">")
            }
        }
    }

    /// The Rust type of a scalar.
    pub fn scalar(self, scalar: Scalar) -> String {
        match scalar {
            Scalar::Bool => "bool".into(),
            Scalar::I32 => "i32".into(),
            Scalar::I64 => "i64".into(),
            Scalar::U32 => "u32".into(),
            Scalar::U64 => "u64".into(),
            Scalar::F32 => "f32".into(),
            Scalar::F64 => "f64".into(),
            Scalar::String => self.std("String"),
            Scalar::Bytes => "__rt::Bytes".into(),
        }
    }

    /// A value of type `ty` (a field default or a constant), as an
    /// expression of that type.
    pub fn value(self, value: &Value, ty: &FieldType) -> String {
        match (value, ty) {
            (Value::String(s), FieldType::Scalar(Scalar::Bytes)) => {
                format!("__rt::Bytes::from_static({})", byte_string(s))
            }
            (Value::String(s), _) => format!("__rt::String::from({})", string_literal(s)),
            (value, ty) => self.literal(value, ty),
        }
    }

    /// An IDL default as the tokens of a `__rt::message!` call: compared
    /// with the field's value (strings and bytes as `&str`) and converted
    /// to the field's type for its `Default`.
    pub fn default_tokens(self, value: &Value, ty: &FieldType, out: &mut Vec<Tok>) {
        match value {
            Value::Bool(b) => out.push(Tok::Word(b.to_string())),
            Value::Int(i) => {
                if *i < 0 {
                    out.push(Tok::Minus);
                }
                out.push(Tok::Word(i.unsigned_abs().to_string()));
            }
            Value::Float(f) if f.is_finite() => {
                if f.is_sign_negative() {
                    out.push(Tok::Minus);
                }
                let text = float_literal(f.abs(), matches!(ty, FieldType::Scalar(Scalar::F32)));
                out.push(Tok::Word(text));
            }
            Value::Float(f) => {
                let float = if matches!(ty, FieldType::Scalar(Scalar::F32)) {
                    "f32"
                } else {
                    "f64"
                };
                let name = if f.is_nan() {
                    "NAN"
                } else if *f > 0.0 {
                    "INFINITY"
                } else {
                    "NEG_INFINITY"
                };
                out.extend([
                    Tok::Lt,
                    Tok::Word(float.into()),
                    Tok::GtJoint,
                    Tok::PathSep,
                    Tok::Word(name.into()),
                ]);
            }
            Value::String(s) => out.push(Tok::Word(string_literal(s))),
            Value::EnumVariant(name) => match ty {
                FieldType::Named(r) => {
                    path_tokens(&format!("{}::{}", self.path(r), type_name(name)), out)
                }
                _ => out.push(Tok::Word("__rt::Default::default()".into())),
            },
        }
    }

    fn literal(self, value: &Value, ty: &FieldType) -> String {
        match value {
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => float_literal(*f, matches!(ty, FieldType::Scalar(Scalar::F32))),
            Value::String(s) => string_literal(s),
            Value::EnumVariant(name) => match ty {
                FieldType::Named(r) => format!("{}::{}", self.path(r), type_name(name)),
                _ => "__rt::Default::default()".into(),
            },
        }
    }
}

/// A float literal; infinities and NaN by name (of `f32` when `is_f32`).
pub fn float_literal(value: f64, is_f32: bool) -> String {
    let float = if is_f32 { "f32" } else { "f64" };
    if value.is_nan() {
        format!("<{float}>::NAN")
    } else if value.is_infinite() {
        let name = if value > 0.0 {
            "INFINITY"
        } else {
            "NEG_INFINITY"
        };
        format!("<{float}>::{name}")
    } else {
        // `{:?}` keeps a decimal point or exponent: always a float literal.
        let text = if is_f32 {
            format!("{:?}", (value.abs() as f32))
        } else {
            format!("{:?}", value.abs())
        };
        if value.is_sign_negative() {
            format!("-{text}")
        } else {
            text
        }
    }
}

/// A Rust string literal.
pub fn string_literal(text: &str) -> String {
    format!("{text:?}")
}

/// A Rust byte string literal of the text's UTF-8.
pub fn byte_string(text: &str) -> String {
    format!("b\"{}\"", text.as_bytes().escape_ascii())
}

/// The Rust name of a constant.
pub fn constant_name(idl: &str) -> String {
    const_name(idl)
}
