//! Name scopes: duplicate IDL names, and different IDL names that map to the
//! same Rust name (with `heck`, as codegen maps them).

use std::collections::HashMap;

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use miette::SourceSpan;

use crate::diagnostic::DiagnosticKind;
use crate::parse::ast::Ident;

/// How a kind of name is cased in Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    /// Types, enum variants, union arms: `UpperCamelCase`.
    UpperCamel,
    /// Fields, parameters, methods: `snake_case`.
    Snake,
    /// Constants: `SCREAMING_SNAKE_CASE`.
    ShoutySnake,
}

impl Case {
    /// The Rust form of an IDL name.
    pub(crate) fn apply(self, name: &str) -> String {
        match self {
            Case::UpperCamel => name.to_upper_camel_case(),
            Case::Snake => name.to_snake_case(),
            Case::ShoutySnake => name.to_shouty_snake_case(),
        }
    }
}

/// Suffixes of the extra client methods generated per IDL method (IDL.md:
/// `_blocking`, `_future`, `_with_callback`); they share the client's
/// method namespace.
pub(crate) const CLIENT_METHOD_SUFFIXES: &[&str] = &["_blocking", "_future", "_with_callback"];

/// Why a name could not be declared.
#[derive(Debug)]
pub(crate) enum Clash {
    /// The same IDL name was declared before, here.
    Duplicate(SourceSpan),
    /// Another problem, already a diagnostic (Rust name collision or no
    /// valid Rust name).
    Other(DiagnosticKind),
}

/// The names declared in one scope (the fields of a struct, the types of a
/// module, ...).
#[derive(Debug)]
pub(crate) struct NameScope {
    case: Case,
    description: String,
    idl: HashMap<String, SourceSpan>,
    rust: HashMap<String, (String, SourceSpan)>,
}

impl NameScope {
    /// An empty scope; `description` completes "both become `X` in Rust
    /// (...)", e.g. "fields of `Order`".
    pub(crate) fn new(case: Case, description: impl Into<String>) -> Self {
        NameScope {
            case,
            description: description.into(),
            idl: HashMap::new(),
            rust: HashMap::new(),
        }
    }

    /// Declares `name`.
    pub(crate) fn declare(&mut self, name: &Ident) -> Result<(), Clash> {
        self.declare_with(name, &[])
    }

    /// Declares `name` together with the derived Rust names `rust + suffix`
    /// that codegen generates from it.
    pub(crate) fn declare_with(&mut self, name: &Ident, suffixes: &[&str]) -> Result<(), Clash> {
        if let Some(first) = self.idl.get(&name.name) {
            return Err(Clash::Duplicate(*first));
        }
        self.idl.insert(name.name.clone(), name.span);
        let rust = self.case.apply(&name.name);
        if !is_rust_identifier(&rust) {
            return Err(Clash::Other(DiagnosticKind::InvalidRustName {
                name: name.name.clone(),
                rust,
                span: name.span,
            }));
        }
        let forms: Vec<String> = std::iter::once(rust.clone())
            .chain(suffixes.iter().map(|suffix| format!("{rust}{suffix}")))
            .collect();
        for form in &forms {
            if let Some((other, first)) = self.rust.get(form) {
                return Err(Clash::Other(DiagnosticKind::RustNameCollision {
                    name: name.name.clone(),
                    other: other.clone(),
                    rust: form.clone(),
                    scope: self.description.clone(),
                    span: name.span,
                    first: Some(*first),
                }));
            }
        }
        for form in forms {
            self.rust.insert(form, (name.name.clone(), name.span));
        }
        Ok(())
    }
}

/// Whether `text` can be a Rust identifier (raw or not) once cased.
pub(crate) fn is_rust_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if first.is_ascii_alphabetic() || first == '_' => {}
        _ => return false,
    }
    text != "_" && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::span;

    fn ident(name: &str, at: usize) -> Ident {
        Ident {
            name: name.to_owned(),
            span: span(at, at + name.len()),
        }
    }

    #[test]
    fn cases_follow_heck() {
        assert_eq!(Case::UpperCamel.apply("PENDING"), "Pending");
        assert_eq!(Case::UpperCamel.apply("line_item"), "LineItem");
        assert_eq!(Case::Snake.apply("getUser"), "get_user");
        assert_eq!(Case::ShoutySnake.apply("maxItems"), "MAX_ITEMS");
    }

    #[test]
    fn duplicates_and_collisions() {
        let mut scope = NameScope::new(Case::Snake, "fields of `A`");
        assert!(scope.declare(&ident("userId", 0)).is_ok());
        assert!(matches!(
            scope.declare(&ident("userId", 10)),
            Err(Clash::Duplicate(_))
        ));
        assert!(matches!(
            scope.declare(&ident("user_id", 20)),
            Err(Clash::Other(DiagnosticKind::RustNameCollision { .. }))
        ));
        assert!(matches!(
            scope.declare(&ident("_", 30)),
            Err(Clash::Other(DiagnosticKind::InvalidRustName { .. }))
        ));
    }

    #[test]
    fn derived_names_collide() {
        let mut scope = NameScope::new(Case::Snake, "methods");
        assert!(
            scope
                .declare_with(&ident("get", 0), CLIENT_METHOD_SUFFIXES)
                .is_ok()
        );
        assert!(
            scope
                .declare_with(&ident("getBlocking", 10), CLIENT_METHOD_SUFFIXES)
                .is_err()
        );
    }
}
