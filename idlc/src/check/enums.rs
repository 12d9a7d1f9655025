//! Enums: variants, their names and values, the first value being 0.

use std::collections::HashMap;

use miette::SourceSpan;

use super::FileChecker;
use super::annotations::Target;
use super::names::{Case, Clash, NameScope};
use crate::diagnostic::DiagnosticKind;
use crate::model::{EnumDef, EnumVariant};
use crate::parse::ast::EnumDecl;

impl FileChecker<'_> {
    /// Checks an enum.
    pub(super) fn enum_def(&mut self, decl: &EnumDecl) -> EnumDef {
        self.annotations_without_meaning(&decl.annotations, Target::Enum);
        let name = &decl.name.name;
        match decl.variants.first() {
            None => self.report(DiagnosticKind::EmptyEnum {
                name: name.clone(),
                span: decl.name.span,
            }),
            Some(first) if first.value != 0 => self.report(DiagnosticKind::FirstEnumValueNotZero {
                enum_name: name.clone(),
                value: first.value,
                span: first.value_span,
            }),
            Some(_) => {}
        }
        let mut names = NameScope::new(Case::UpperCamel, format!("variants of enum `{name}`"));
        let mut values: HashMap<i128, SourceSpan> = HashMap::new();
        let mut variants = Vec::with_capacity(decl.variants.len());
        for variant in &decl.variants {
            self.annotations_without_meaning(&variant.annotations, Target::Variant);
            match names.declare(&variant.name) {
                Ok(()) => {}
                Err(Clash::Duplicate(first)) => self.report(DiagnosticKind::DuplicateVariant {
                    enum_name: name.clone(),
                    name: variant.name.name.clone(),
                    span: variant.name.span,
                    first: Some(first),
                }),
                Err(Clash::Other(problem)) => self.report(problem),
            }
            let Ok(value) = i32::try_from(variant.value) else {
                self.report(DiagnosticKind::ValueOutOfRange {
                    value: variant.value.to_string(),
                    ty: "enum value (i32)".to_owned(),
                    range: format!("{} to {}", i32::MIN, i32::MAX),
                    span: variant.value_span,
                });
                continue;
            };
            if let Some(first) = values.get(&variant.value) {
                let next = decl
                    .variants
                    .iter()
                    .filter_map(|v| i32::try_from(v.value).ok())
                    .max()
                    .and_then(|max| max.checked_add(1));
                self.report(DiagnosticKind::DuplicateEnumValue {
                    enum_name: name.clone(),
                    value: variant.value,
                    span: variant.value_span,
                    first: Some(*first),
                    help: next.map(|next| format!("the next free value is {next}")),
                });
            } else {
                values.insert(variant.value, variant.value_span);
            }
            variants.push(EnumVariant {
                name: variant.name.name.clone(),
                value,
                docs: variant.docs.clone(),
            });
        }
        EnumDef {
            name: name.clone(),
            docs: decl.docs.clone(),
            variants,
        }
    }
}
