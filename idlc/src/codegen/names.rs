//! IDL names to Rust identifiers (with `heck`), keyword-safe.
//!
//! A name that is a Rust keyword becomes a raw identifier (`r#type`), except
//! the four that cannot be raw (`self`, `Self`, `super`, `crate`): those get
//! a trailing underscore (`self_`, `Self_`). The wire keeps the IDL name.

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Ident, Span};

/// Keywords of every edition (strict, reserved and weak-but-unusable).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate"];

/// The identifier for an already-cased Rust name, escaping keywords.
pub fn ident(name: &str) -> Ident {
    if NOT_RAW.contains(&name) {
        Ident::new(&format!("{name}_"), Span::call_site())
    } else if KEYWORDS.contains(&name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

/// The Rust name of a type, service or enum variant: `UpperCamelCase`.
pub fn type_name(idl: &str) -> String {
    idl.to_upper_camel_case()
}

/// The identifier of a type, service or enum variant.
pub fn type_ident(idl: &str) -> Ident {
    ident(&type_name(idl))
}

/// The identifier of a field, parameter or method: `snake_case`.
pub fn field_ident(idl: &str) -> Ident {
    ident(&idl.to_snake_case())
}

/// The identifier of a constant or a method's descriptor: `SCREAMING_SNAKE_CASE`.
pub fn const_ident(idl: &str) -> Ident {
    ident(&idl.to_shouty_snake_case())
}

/// The identifier of a module (snake_case).
pub fn module_ident(idl: &str) -> Ident {
    ident(&idl.to_snake_case())
}

/// The name serde writes for a field, once `r#` is stripped: the wire key.
/// Returns `Some(idl)` when serde's own name would differ from the IDL name.
pub fn serde_rename(idl: &str, rust: &Ident) -> Option<String> {
    let rust = rust.to_string();
    let rust = rust.strip_prefix("r#").unwrap_or(&rust);
    (rust != idl).then(|| idl.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_become_raw_or_suffixed() {
        assert_eq!(field_ident("type").to_string(), "r#type");
        assert_eq!(field_ident("self").to_string(), "self_");
        assert_eq!(type_ident("Self").to_string(), "Self_");
        assert_eq!(field_ident("crate").to_string(), "crate_");
        assert_eq!(field_ident("userName").to_string(), "user_name");
        assert_eq!(type_ident("PENDING").to_string(), "Pending");
        assert_eq!(const_ident("maxItems").to_string(), "MAX_ITEMS");
    }

    #[test]
    fn serde_rename_only_when_the_wire_name_differs() {
        assert_eq!(serde_rename("type", &field_ident("type")), None);
        assert_eq!(
            serde_rename("self", &field_ident("self")),
            Some("self".into())
        );
        assert_eq!(
            serde_rename("userName", &field_ident("userName")),
            Some("userName".into())
        );
        assert_eq!(serde_rename("sku", &field_ident("sku")), None);
    }
}
