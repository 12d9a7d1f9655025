//! Literal values (defaults and constants) checked against their types.

use super::FileChecker;
use crate::diagnostic::DiagnosticKind;
use crate::model::{FieldType, Scalar, TypeKind, TypeRef, Value};
use crate::parse::ast::{Decl, Literal, LiteralKind};

impl FileChecker<'_> {
    /// Checks `literal` against `ty`; `what` names it in messages ("the
    /// default value").
    pub(super) fn value(
        &self,
        literal: &Literal,
        ty: &FieldType,
        what: &str,
    ) -> Result<Value, DiagnosticKind> {
        let no_default = |reason: String, help: &str| DiagnosticKind::UnexpectedDefault {
            reason,
            span: literal.span,
            help: Some(help.to_owned()),
        };
        match ty {
            FieldType::Optional(_) => Err(no_default(
                "an `optional` field cannot have a default value: it is absent until set"
                    .to_owned(),
                "drop the default, or drop `optional` to have a value that is always present",
            )),
            FieldType::List(_) | FieldType::Map(..) => Err(no_default(
                format!(
                    "{} cannot have a default value: it starts empty",
                    type_text(ty)
                ),
                "drop the default",
            )),
            FieldType::Named(type_ref) if type_ref.kind != TypeKind::Enum => Err(no_default(
                format!(
                    "a field of type `{}` cannot have a default value; only scalar and enum fields can",
                    type_ref.name
                ),
                "drop the default",
            )),
            FieldType::Named(type_ref) => self.enum_value(literal, type_ref, what),
            FieldType::Scalar(scalar) => scalar_value(literal, *scalar, what),
        }
    }

    fn enum_value(
        &self,
        literal: &Literal,
        type_ref: &TypeRef,
        what: &str,
    ) -> Result<Value, DiagnosticKind> {
        let variants = self.enum_variants(type_ref);
        if let LiteralKind::Ident(name) = &literal.kind {
            if variants.iter().any(|v| v == name) {
                return Ok(Value::EnumVariant(name.clone()));
            }
        }
        let listed = variants
            .iter()
            .take(5)
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let more = if variants.len() > 5 { ", ..." } else { "" };
        let found = match &literal.kind {
            LiteralKind::Ident(name) => format!("`{name}`"),
            _ => describe(&literal.kind),
        };
        let help = match &literal.kind {
            LiteralKind::Ident(name) => format!(
                "`{}` has no variant `{name}`; write one of {listed}{more}",
                type_ref.name
            ),
            _ => format!("write a variant name: {listed}{more}"),
        };
        Err(DiagnosticKind::ValueTypeMismatch {
            what: what.to_owned(),
            found,
            expected: type_ref.name.clone(),
            span: literal.span,
            help: Some(help),
        })
    }

    /// The variant names of the enum `type_ref` refers to.
    fn enum_variants(&self, type_ref: &TypeRef) -> Vec<String> {
        self.files
            .iter()
            .filter(|file| file.module_name == type_ref.module_name)
            .flat_map(|file| &file.ast.decls)
            .find_map(|decl| match decl {
                Decl::Enum(e) if e.name.name == type_ref.name => {
                    Some(e.variants.iter().map(|v| v.name.name.clone()).collect())
                }
                _ => None,
            })
            .unwrap_or_default()
    }
}

/// A literal of a scalar type.
fn scalar_value(literal: &Literal, scalar: Scalar, what: &str) -> Result<Value, DiagnosticKind> {
    let mismatch = |example: &str| DiagnosticKind::ValueTypeMismatch {
        what: what.to_owned(),
        found: describe(&literal.kind),
        expected: scalar_name(scalar).to_owned(),
        span: literal.span,
        help: Some(format!(
            "write a `{}` value, e.g. `{example}`",
            scalar_name(scalar)
        )),
    };
    match (&literal.kind, scalar) {
        (LiteralKind::Bool(b), Scalar::Bool) => Ok(Value::Bool(*b)),
        (LiteralKind::Int(v), Scalar::I32 | Scalar::I64 | Scalar::U32 | Scalar::U64) => {
            let (min, max) = int_range(scalar);
            if (min..=max).contains(v) {
                Ok(Value::Int(*v))
            } else {
                Err(DiagnosticKind::ValueOutOfRange {
                    value: v.to_string(),
                    ty: scalar_name(scalar).to_owned(),
                    range: format!("{min} to {max}"),
                    span: literal.span,
                })
            }
        }
        (LiteralKind::Int(v), Scalar::F32 | Scalar::F64) => {
            float_in_range(*v as f64, scalar, literal)
        }
        (LiteralKind::Float(v), Scalar::F32 | Scalar::F64) => float_in_range(*v, scalar, literal),
        (LiteralKind::String(s), Scalar::String | Scalar::Bytes) => Ok(Value::String(s.clone())),
        (_, Scalar::Bool) => Err(mismatch("true")),
        (_, Scalar::I32 | Scalar::I64 | Scalar::U32 | Scalar::U64) => Err(mismatch("0")),
        (_, Scalar::F32 | Scalar::F64) => Err(mismatch("0.5")),
        (_, Scalar::String | Scalar::Bytes) => Err(mismatch("\"text\"")),
    }
}

fn float_in_range(value: f64, scalar: Scalar, literal: &Literal) -> Result<Value, DiagnosticKind> {
    if scalar == Scalar::F32 && value.abs() > f64::from(f32::MAX) {
        return Err(DiagnosticKind::ValueOutOfRange {
            value: value.to_string(),
            ty: "f32".to_owned(),
            range: format!("{} to {}", f32::MIN, f32::MAX),
            span: literal.span,
        });
    }
    Ok(Value::Float(value))
}

fn int_range(scalar: Scalar) -> (i128, i128) {
    match scalar {
        Scalar::I32 => (i128::from(i32::MIN), i128::from(i32::MAX)),
        Scalar::I64 => (i128::from(i64::MIN), i128::from(i64::MAX)),
        Scalar::U32 => (0, i128::from(u32::MAX)),
        _ => (0, i128::from(u64::MAX)),
    }
}

/// How a literal is described in "X is Y, but the type is Z".
fn describe(kind: &LiteralKind) -> String {
    match kind {
        LiteralKind::Bool(b) => format!("`{b}`"),
        LiteralKind::Int(v) => format!("the integer `{v}`"),
        LiteralKind::Float(v) => format!("the float `{v}`"),
        LiteralKind::String(_) => "a string".to_owned(),
        LiteralKind::Ident(name) => format!("the name `{name}`"),
    }
}

/// The IDL spelling of a scalar.
pub(super) fn scalar_name(scalar: Scalar) -> &'static str {
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

/// A short IDL spelling of a type ("a `list<..>`").
fn type_text(ty: &FieldType) -> String {
    match ty {
        FieldType::List(_) => "a `list<..>`".to_owned(),
        FieldType::Map(..) => "a `map<..>`".to_owned(),
        FieldType::Optional(_) => "an `optional` field".to_owned(),
        FieldType::Scalar(s) => format!("`{}`", scalar_name(*s)),
        FieldType::Named(t) => format!("`{}`", t.name),
    }
}
