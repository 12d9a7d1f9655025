//! Type expressions to [`FieldType`]: name resolution and the rules on
//! `optional`, `list` and `map` (no optional collections or elements,
//! scalar map keys; collections nest to any depth).

use super::FileChecker;
use super::symbols::SymbolId;
use crate::diagnostic::DiagnosticKind;
use crate::model::{FieldType, Scalar, TypeRef};
use crate::parse::ast::{TypeExpr, TypeExprKind, TypeName};

impl FileChecker<'_> {
    /// Resolves a type name, reporting it when unknown.
    pub(super) fn resolve_name(&mut self, name: &TypeName) -> Option<(SymbolId, TypeRef)> {
        match self
            .symbols
            .resolve(self.files, self.file, self.visible, name)
        {
            Ok(id) => {
                let type_ref = self.symbols.type_ref(self.files, id)?;
                Some((id, type_ref))
            }
            Err(problem) => {
                self.report(problem);
                None
            }
        }
    }

    /// Checks and converts a type. Reports every problem inside it; `None`
    /// if there was any. Recursion depth is bounded by the parser's nesting
    /// limit. Lists and maps nest to any depth (IDL.md, "Nested
    /// collections").
    pub(super) fn field_type(&mut self, expr: &TypeExpr) -> Option<FieldType> {
        match &expr.kind {
            TypeExprKind::Scalar(scalar) => Some(FieldType::Scalar(*scalar)),
            TypeExprKind::Named(name) => self
                .resolve_name(name)
                .map(|(_, type_ref)| FieldType::Named(type_ref)),
            TypeExprKind::List(element) => {
                let not_optional = self.element_not_optional(element, "list");
                let element = self.field_type(element);
                Some(FieldType::List(Box::new(element?))).filter(|_| not_optional)
            }
            TypeExprKind::Map(key, value) => {
                let key = self.map_key(key);
                let not_optional = self.element_not_optional(value, "map");
                let value = self.field_type(value);
                Some(FieldType::Map(key?, Box::new(value?))).filter(|_| not_optional)
            }
            TypeExprKind::Optional(inner) => {
                let collection = match inner.kind {
                    TypeExprKind::List(_) => Some("list"),
                    TypeExprKind::Map(..) => Some("map"),
                    _ => None,
                };
                if let Some(collection) = collection {
                    self.report(DiagnosticKind::OptionalList {
                        collection: collection.to_owned(),
                        span: expr.span,
                    });
                }
                let inner = self.field_type(inner);
                Some(FieldType::Optional(Box::new(inner?))).filter(|_| collection.is_none())
            }
        }
    }

    /// Reports `list<optional T>` / `map<K, optional V>`.
    fn element_not_optional(&mut self, element: &TypeExpr, collection: &str) -> bool {
        if !matches!(element.kind, TypeExprKind::Optional(_)) {
            return true;
        }
        let written = match collection {
            "list" => format!("list<{}>", self.written(element.span)),
            _ => format!("map<K, {}>", self.written(element.span)),
        };
        self.report(DiagnosticKind::OptionalElement {
            written,
            collection: collection.to_owned(),
            span: element.span,
        });
        false
    }

    fn map_key(&mut self, key: &TypeExpr) -> Option<Scalar> {
        match key.kind {
            TypeExprKind::Scalar(
                scalar @ (Scalar::Bool
                | Scalar::I32
                | Scalar::I64
                | Scalar::U32
                | Scalar::U64
                | Scalar::String),
            ) => Some(scalar),
            _ => {
                // An unknown key type is reported as such; a known one as
                // not allowed.
                if self.field_type(key).is_some() {
                    self.report(DiagnosticKind::MapKeyType {
                        found: self.written(key.span),
                        span: key.span,
                    });
                }
                None
            }
        }
    }
}
