//! Items for declared types: structs and errors, enums, unions, constants;
//! and the message structs and union-shaped enums services reuse.

use super::docs::{doc_lines, write_docs};
use super::layout::{Doc, Tok, Writer, path_tokens};
use super::rust_types::{Scope, byte_string, constant_name, string_literal};
use crate::model::{ConstDef, EnumDef, Field, FieldType, Scalar, StructDef, UnionDef, Value};
use crate::rust_names::{field_name, serde_rename, snake, type_name};

/// Whether a type holds `bytes` anywhere (its serde impl then follows
/// PROTOCOL.md's mapping through `__rt::mapped`: base64 in JSON).
fn holds_bytes(ty: &FieldType) -> bool {
    match ty {
        FieldType::Scalar(Scalar::Bytes) => true,
        FieldType::Scalar(_) | FieldType::Named(_) => false,
        FieldType::List(inner) | FieldType::Optional(inner) => holds_bytes(inner),
        FieldType::Map(_, value) => holds_bytes(value),
    }
}

/// Whether a type nests a list or map inside a list or map: clippy's
/// `type_complexity` then flags the Rust type, whose shape is the IDL's.
pub fn nests_collections(ty: &FieldType) -> bool {
    fn depth(ty: &FieldType) -> usize {
        match ty {
            FieldType::Scalar(_) | FieldType::Named(_) => 0,
            FieldType::Optional(inner) => depth(inner),
            FieldType::List(inner) | FieldType::Map(_, inner) => 1 + depth(inner),
        }
    }
    depth(ty) >= 2
}

/// `#[serde(...)]` of a field or arm: its IDL name on the wire when Rust's
/// differs (always for arms), and the mapping of `bytes`.
fn serde_attribute(rename: Option<&str>, ty: &FieldType) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(name) = rename {
        parts.push(format!("rename = {}", string_literal(name)));
    }
    if holds_bytes(ty) {
        parts.push("with = \"__rt::mapped\"".to_owned());
    }
    (!parts.is_empty()).then(|| format!("#[serde({})]", parts.join(", ")))
}

/// The derives of every message struct (without `Default` when the
/// struct implements it by hand for its IDL defaults).
fn message_derives(default: bool) -> &'static str {
    if default {
        "#[derive(Clone, Debug, PartialEq, Default, __rt::Serialize, __rt::Deserialize)]"
    } else {
        "#[derive(Clone, Debug, PartialEq, __rt::Serialize, __rt::Deserialize)]"
    }
}

/// A message struct: a user `struct`/`error`, or a method's args message,
/// and its impls (`__rt::message!`). `docs` are its doc lines,
/// `attributes` any extra attribute lines, `markers` what the impls add
/// (`error "words"`, `args`).
pub fn message_struct(
    w: &mut Writer,
    name: &str,
    docs: &[String],
    attributes: &[String],
    fields: &[Field],
    markers: &[Vec<Tok>],
    scope: Scope<'_>,
) {
    let idents: Vec<String> = fields.iter().map(|f| field_name(&f.name)).collect();
    let has_idl_defaults = fields.iter().any(|f| f.default.is_some());
    write_docs(w, docs);
    for attribute in attributes {
        w.line(attribute);
    }
    if fields.iter().any(|f| nests_collections(&f.ty)) {
        w.line("#[allow(clippy::type_complexity)]");
    }
    w.line(message_derives(!has_idl_defaults));
    w.line("#[serde(crate = \"__rt::serde\", default)]");
    if fields.is_empty() {
        w.line_fmt(format_args!("pub struct {name} {{}}"));
    } else {
        w.open(format!("pub struct {name}"));
        for (field, ident) in fields.iter().zip(&idents) {
            let docs = doc_lines(&field.docs, || {
                format!("Field {} (`{}`).", field.tag, field.name)
            });
            write_docs(w, &docs);
            if let Some(attribute) =
                serde_attribute(serde_rename(&field.name, ident).as_deref(), &field.ty)
            {
                w.line(attribute);
            }
            let ty = scope.ty(&field.ty, field.boxed);
            w.doc(
                &Doc::Cat(vec![Doc::text(format!("pub {ident}: ")), ty]),
                ",",
            );
        }
        w.close("");
    }
    w.blank();
    let mut tokens = vec![Tok::Word(name.to_owned()), Tok::Semi];
    for (i, (field, ident)) in fields.iter().zip(&idents).enumerate() {
        if i > 0 {
            tokens.push(Tok::Comma);
        }
        tokens.push(Tok::Word(field.tag.to_string()));
        tokens.push(Tok::Word(ident.clone()));
        if let Some(default) = &field.default {
            tokens.push(Tok::Eq);
            scope.default_tokens(default, &field.ty, &mut tokens);
        }
    }
    let mut markers = markers.to_vec();
    if has_idl_defaults {
        markers.insert(0, vec![Tok::Word("default".into())]);
    }
    for (i, marker) in markers.into_iter().enumerate() {
        tokens.push(if i == 0 { Tok::Semi } else { Tok::Comma });
        tokens.extend(marker);
    }
    w.macro_call("__rt::message", &tokens);
}

/// A user `struct` or `error`. Errors also implement `Display` (their name
/// in words and their fields: `not found: sku "NOPE"`) and `Error`.
pub fn struct_item(w: &mut Writer, def: &StructDef, scope: Scope<'_>) {
    let name = type_name(&def.name);
    let kind = if def.is_error { "error" } else { "struct" };
    let docs = doc_lines(&def.docs, || format!("The `{}` {kind}.", def.name));
    let attributes = scope.type_attributes(&def.name);
    let markers = if def.is_error {
        let words = snake(&def.name).replace('_', " ");
        vec![vec![
            Tok::Word("error".into()),
            Tok::Word(string_literal(&words)),
        ]]
    } else {
        Vec::new()
    };
    message_struct(w, &name, &docs, &attributes, &def.fields, &markers, scope);
}

/// A user `enum`: a Rust enum with a catch-all for values from newer peers.
pub fn enum_item(w: &mut Writer, def: &EnumDef, catch_all: &str, scope: Scope<'_>) {
    let name = type_name(&def.name);
    write_docs(
        w,
        &doc_lines(&def.docs, || format!("The `{}` enum.", def.name)),
    );
    for attribute in scope.type_attributes(&def.name) {
        w.line(attribute);
    }
    // Variant names are the IDL's (`STATUS_ACTIVE` in `Status`).
    w.line("#[allow(clippy::enum_variant_names)]");
    w.line("#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]");
    w.open(format!("pub enum {name}"));
    let variants: Vec<String> = def.variants.iter().map(|v| type_name(&v.name)).collect();
    for (variant, v) in variants.iter().zip(&def.variants) {
        write_docs(
            w,
            &doc_lines(&v.docs, || format!("`{}` ({}).", v.name, v.value)),
        );
        if v.value == 0 {
            w.line("#[default]");
        }
        w.line_fmt(format_args!("{variant},"));
    }
    w.line("/// A value this version does not know (sent by a newer peer); kept as sent.");
    w.line_fmt(format_args!("{catch_all}(i32),"));
    w.close("");
    w.blank();

    let mut tokens = vec![
        Tok::Word(name.clone()),
        Tok::Comma,
        Tok::Word(catch_all.to_owned()),
        Tok::Semi,
    ];
    for (i, (variant, v)) in variants.iter().zip(&def.variants).enumerate() {
        if i > 0 {
            tokens.push(Tok::Comma);
        }
        tokens.push(Tok::Word(variant.clone()));
        tokens.push(Tok::Word(string_literal(&v.name)));
        tokens.push(Tok::Eq);
        if v.value < 0 {
            tokens.push(Tok::Minus);
        }
        tokens.push(Tok::Word(v.value.unsigned_abs().to_string()));
    }
    w.macro_call("__rt::idl_enum", &tokens);
}

/// A union-shaped Rust enum: one tuple variant per arm. Used for IDL
/// `union`s and for the declared-error enum of a throwing method
/// (`errors`: the path of each arm's error type; the impls then add the
/// conversions from them, `Display` and `Error`). `variants` are the
/// arms' variant names.
#[allow(clippy::too_many_arguments, reason = "one call per union shape")]
pub fn union_enum(
    w: &mut Writer,
    name: &str,
    docs: &[String],
    attributes: &[String],
    arms: &[Field],
    variants: &[String],
    errors: &[String],
    scope: Scope<'_>,
) {
    write_docs(w, docs);
    for attribute in attributes {
        w.line(attribute);
    }
    // Arm names and types are the IDL's.
    let mut lints = vec!["clippy::enum_variant_names", "clippy::large_enum_variant"];
    if arms.iter().any(|arm| nests_collections(&arm.ty)) {
        lints.push("clippy::type_complexity");
    }
    w.attribute_list("allow", &lints);
    w.line("#[derive(Clone, Debug, PartialEq, __rt::Serialize, __rt::Deserialize)]");
    w.line("#[serde(crate = \"__rt::serde\")]");
    w.open(format!("pub enum {name}"));
    for (arm, variant) in arms.iter().zip(variants) {
        write_docs(
            w,
            &doc_lines(&arm.docs, || format!("Arm {} (`{}`).", arm.tag, arm.name)),
        );
        if let Some(attribute) = serde_attribute(Some(&arm.name), &arm.ty) {
            w.line(attribute);
        }
        let ty = scope.ty(&arm.ty, false);
        let ty = if arm.boxed {
            Doc::list(scope.std("Box"), "<", vec![ty], ">")
        } else {
            ty
        };
        w.doc(&Doc::list(variant.as_str(), "(", vec![ty], ")"), ",");
    }
    w.close("");
    w.blank();
    let mut tokens = vec![Tok::Word(name.to_owned()), Tok::Semi];
    for (i, (arm, variant)) in arms.iter().zip(variants).enumerate() {
        if i > 0 {
            tokens.push(Tok::Comma);
        }
        tokens.push(Tok::Word(arm.tag.to_string()));
        tokens.push(Tok::Word(variant.clone()));
        if let Some(error) = errors.get(i) {
            path_tokens(error, &mut tokens);
        }
    }
    let macro_name = if errors.is_empty() {
        "__rt::union"
    } else {
        "__rt::declared_error"
    };
    w.macro_call(macro_name, &tokens);
}

/// A user `union`.
pub fn union_item(w: &mut Writer, def: &UnionDef, scope: Scope<'_>) {
    let name = type_name(&def.name);
    let docs = doc_lines(&def.docs, || {
        format!("The `{}` union: exactly one arm is set.", def.name)
    });
    let variants: Vec<String> = def.arms.iter().map(|a| type_name(&a.name)).collect();
    let attributes = scope.type_attributes(&def.name);
    union_enum(
        w,
        &name,
        &docs,
        &attributes,
        &def.arms,
        &variants,
        &[],
        scope,
    );
}

/// A `const`.
pub fn const_item(w: &mut Writer, def: &ConstDef, scope: Scope<'_>) {
    write_docs(
        w,
        &doc_lines(&def.docs, || format!("The constant `{}`.", def.name)),
    );
    let name = constant_name(&def.name);
    let (ty, value) = match (&def.value, def.ty) {
        (Value::String(s), Scalar::String) => ("&str".to_owned(), string_literal(s)),
        (Value::String(s), Scalar::Bytes) => ("&[u8]".to_owned(), byte_string(s)),
        (value, ty) => (scope.scalar(ty), scope.value(value, &FieldType::Scalar(ty))),
    };
    w.line_fmt(format_args!("pub const {name}: {ty} = {value};"));
}
