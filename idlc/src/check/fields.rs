//! Fields of structs and errors, union arms and method parameters: tags,
//! names, types, defaults and annotations.

use std::collections::HashMap;

use miette::SourceSpan;

use super::FileChecker;
use super::annotations::Target;
use super::layout::Edge;
use super::names::{Case, Clash, NameScope};
use super::symbols::SymbolId;
use crate::diagnostic::DiagnosticKind;
use crate::model::{Field, FieldType, TypeKind};
use crate::parse::ast::{FieldDecl, TypeExprKind};

/// The largest field tag (protobuf: 2^29 - 1).
pub(super) const MAX_TAG: i128 = 536_870_911;
/// Tags protobuf reserves for itself.
pub(super) const RESERVED_TAGS: std::ops::RangeInclusive<i128> = 19_000..=19_999;

/// What holds the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContainerKind {
    /// A struct or an error.
    Struct,
    /// A union (its fields are arms).
    Union,
    /// A method (its fields are parameters).
    Method,
}

/// Where the fields are declared.
#[derive(Debug)]
pub(super) struct Container {
    pub kind: ContainerKind,
    /// `struct `Order``, `method `get``.
    pub description: String,
    /// The IDL name of the struct, union or method.
    pub name: String,
    /// For structs and unions: where their fields live in the models, for
    /// the layout pass.
    pub layout: Option<LayoutOwner>,
}

/// A struct or union as a node of the layout graph.
#[derive(Debug, Clone, Copy)]
pub(super) struct LayoutOwner {
    pub from: SymbolId,
    pub file_index: usize,
    pub type_index: usize,
}

/// Checked fields, and the spans of their `@hash_key` annotations.
pub(super) struct CheckedFields {
    pub fields: Vec<Field>,
    pub hash_keys: Vec<SourceSpan>,
}

impl FileChecker<'_> {
    /// Checks the fields of a struct or union.
    pub(super) fn fields(&mut self, container: &Container, decls: &[FieldDecl]) -> Vec<Field> {
        self.checked_fields(container, decls).fields
    }

    /// Checks fields, arms or parameters.
    pub(super) fn checked_fields(
        &mut self,
        container: &Container,
        decls: &[FieldDecl],
    ) -> CheckedFields {
        let (case, what) = match container.kind {
            ContainerKind::Struct => (Case::Snake, "fields"),
            ContainerKind::Union => (Case::UpperCamel, "arms"),
            ContainerKind::Method => (Case::Snake, "parameters"),
        };
        let mut names = NameScope::new(case, format!("{what} of {}", container.description));
        let mut tags: HashMap<i128, SourceSpan> = HashMap::new();
        let mut result = CheckedFields {
            fields: Vec::with_capacity(decls.len()),
            hash_keys: Vec::new(),
        };
        for decl in decls {
            self.tag(container, decl, &mut tags, decls);
            self.field_name(container, decl, &mut names);
            let hash_key = match container.kind {
                ContainerKind::Struct => {
                    self.annotations_without_meaning(&decl.annotations, Target::Field);
                    None
                }
                ContainerKind::Union => {
                    self.annotations_without_meaning(&decl.annotations, Target::UnionArm);
                    None
                }
                ContainerKind::Method => self.parameter_annotations(&decl.annotations),
            };
            result.hash_keys.extend(hash_key);
            let ty = self.member_type(container, decl);
            let default = match (&decl.default, &ty) {
                (Some(literal), _) if container.kind == ContainerKind::Union => {
                    self.report(DiagnosticKind::UnexpectedDefault {
                        reason: "a union arm cannot have a default value".to_owned(),
                        span: literal.span,
                        help: Some(
                            "drop the default; an absent union is its own default".to_owned(),
                        ),
                    });
                    None
                }
                (Some(literal), Some(ty)) => match self.value(literal, ty, "the default value") {
                    Ok(value) => Some(value),
                    Err(problem) => {
                        self.report(problem);
                        None
                    }
                },
                _ => None,
            };
            let Some(ty) = ty else { continue };
            if let Some(owner) = container.layout {
                // Only one arm of a union is ever set, so an arm can hold its
                // union again behind a box, like an `optional` field. Not the
                // first arm: it is the union's default, and a default that
                // contains itself is infinitely large.
                let boxable_arm =
                    container.kind == ContainerKind::Union && !result.fields.is_empty();
                self.record_edge(owner, result.fields.len(), &ty, decl, boxable_arm);
            }
            result.fields.push(Field {
                name: decl.name.name.clone(),
                tag: u32::try_from(decl.tag.value).unwrap_or(0),
                ty,
                default,
                boxed: false,
                docs: decl.docs.clone(),
                hash_key: hash_key.is_some(),
            });
        }
        result
    }

    fn tag(
        &mut self,
        container: &Container,
        decl: &FieldDecl,
        tags: &mut HashMap<i128, SourceSpan>,
        all: &[FieldDecl],
    ) {
        let tag = decl.tag.value;
        let reason = if tag <= 0 {
            Some("tags start at 1")
        } else if tag > MAX_TAG {
            Some("the largest tag is 536870911")
        } else if RESERVED_TAGS.contains(&tag) {
            Some("19000-19999 are reserved by protobuf")
        } else {
            None
        };
        if let Some(reason) = reason {
            self.report(DiagnosticKind::TagOutOfRange {
                tag,
                reason: reason.to_owned(),
                span: decl.tag.span,
            });
            return;
        }
        match tags.get(&tag) {
            Some(first) => {
                let help = next_free_tag(all).map(|next| format!("the next free tag is {next}"));
                self.report(DiagnosticKind::DuplicateTag {
                    container: container.description.clone(),
                    tag,
                    span: decl.tag.span,
                    first: Some(*first),
                    help,
                });
            }
            None => {
                tags.insert(tag, decl.tag.span);
            }
        }
    }

    fn field_name(&mut self, container: &Container, decl: &FieldDecl, names: &mut NameScope) {
        match names.declare(&decl.name) {
            Ok(()) => {}
            Err(Clash::Duplicate(first)) => {
                let problem = match container.kind {
                    ContainerKind::Method => DiagnosticKind::DuplicateParameter {
                        method: container.name.clone(),
                        name: decl.name.name.clone(),
                        span: decl.name.span,
                        first: Some(first),
                    },
                    _ => DiagnosticKind::DuplicateField {
                        container: container.name.clone(),
                        name: decl.name.name.clone(),
                        span: decl.name.span,
                        first: Some(first),
                    },
                };
                self.report(problem);
            }
            Err(Clash::Other(problem)) => self.report(problem),
        }
    }

    /// The type of a field, arm or parameter (union arms cannot be optional).
    fn member_type(&mut self, container: &Container, decl: &FieldDecl) -> Option<FieldType> {
        if container.kind == ContainerKind::Union {
            if let TypeExprKind::Optional(inner) = &decl.ty.kind {
                self.report(DiagnosticKind::OptionalUnionArm {
                    name: decl.name.name.clone(),
                    span: decl.ty.span,
                });
                let _ = self.field_type(inner);
                return None;
            }
        }
        self.field_type(&decl.ty)
    }

    /// Notes that the struct or union `owner` holds another one;
    /// `boxable_arm`: the field is a union arm other than the first.
    fn record_edge(
        &mut self,
        owner: LayoutOwner,
        field_index: usize,
        ty: &FieldType,
        decl: &FieldDecl,
        boxable_arm: bool,
    ) {
        let (target, optional) = match ty {
            FieldType::Named(target) => (target, boxable_arm),
            FieldType::Optional(inner) => match inner.as_ref() {
                FieldType::Named(target) => (target, true),
                _ => return,
            },
            _ => return,
        };
        if target.kind == TypeKind::Enum {
            return;
        }
        self.edges.push(Edge {
            owner,
            field_index,
            target: target.clone(),
            optional,
            span: decl.ty.span,
            file: self.file.id,
        });
    }
}

/// One more than the largest valid tag in use, skipping the reserved range.
fn next_free_tag(all: &[FieldDecl]) -> Option<i128> {
    let max = all
        .iter()
        .map(|f| f.tag.value)
        .filter(|t| (1..=MAX_TAG).contains(t))
        .max()
        .unwrap_or(0);
    let next = if RESERVED_TAGS.contains(&(max + 1)) {
        RESERVED_TAGS.end() + 1
    } else {
        max + 1
    };
    (next <= MAX_TAG).then_some(next)
}
