//! Comparing the members of a matched pair: fields of structs and errors,
//! union arms, parameters (all by name and by tag), enum variants (by name
//! and by number), and postcard's field positions.

use miette::SourceSpan;

use super::{Walk, no_span};
use crate::compat::idl_text::{type_text, value_text};
use crate::compat::rules::{Rule, Serializer, SerializerSet};
use std::collections::HashSet;

use crate::compat::wire::{self, RenamedTypes};
use crate::model::{EnumDef, Field, FieldType, FileModel, MemberSpans, TypeDef, TypeRef};

/// What holds a list of fields.
#[derive(Clone, Copy)]
pub(super) enum Owner<'a> {
    /// A struct or error.
    Struct(&'a str),
    /// A union (its fields are arms).
    Union(&'a str),
    /// A method (its fields are parameters).
    Method(&'a str, &'a str),
}

impl Owner<'_> {
    fn member(self, name: &str) -> String {
        match self {
            Owner::Struct(ty) => format!("field `{ty}.{name}`"),
            Owner::Union(ty) => format!("arm `{ty}.{name}`"),
            Owner::Method(service, method) => {
                format!("parameter `{name}` of `{service}.{method}`")
            }
        }
    }

    fn spans(self, model: &FileModel, member: &str) -> Option<MemberSpans> {
        match self {
            Owner::Struct(ty) | Owner::Union(ty) => model.spans.member(ty, member),
            Owner::Method(service, method) => model.spans.param(service, method, member),
        }
    }

    fn name_span(self, model: &FileModel) -> SourceSpan {
        match self {
            Owner::Struct(ty) | Owner::Union(ty) => model.spans.type_name(ty),
            Owner::Method(service, method) => model.spans.method(service, method).map(|m| m.name),
        }
        .unwrap_or_else(|| SourceSpan::from(0..0))
    }

    fn is_union(self) -> bool {
        matches!(self, Owner::Union(_))
    }
}

/// A list of fields in one version: which file, and what holds them.
#[derive(Clone, Copy)]
pub(super) struct Fields<'a> {
    pub file: usize,
    pub owner: Owner<'a>,
    pub fields: &'a [Field],
}

impl<'a> Walk<'a> {
    pub(super) fn enum_pair(
        &mut self,
        old_file: usize,
        old: &'a EnumDef,
        new_file: usize,
        new: &'a EnumDef,
    ) {
        let old_model = self.old.model(old_file);
        let new_model = self.new.model(new_file);
        for variant in &old.variants {
            let old_spans = old_model.spans.member(&old.name, &variant.name);
            let by_name = new.variants.iter().find(|v| v.name == variant.name);
            let by_value = new.variants.iter().find(|v| v.value == variant.value);
            let what = format!("variant `{}.{}`", old.name, variant.name);
            match (by_name, by_value) {
                (Some(n), _) if n.value != variant.value => {
                    let new_spans = new_model.spans.member(&new.name, &n.name);
                    self.report(
                        Rule::EnumValueRenumbered,
                        SerializerSet::PROTOBUF.union(SerializerSet::POSTCARD),
                        format!(
                            "{what} changed its number from {} to {}",
                            variant.value, n.value
                        ),
                        Some(self.new.at(
                            new_file,
                            new_spans.map_or_else(no_span, |s| s.tag),
                            format!("now {}", n.value),
                        )),
                        Some(self.old.at(
                            old_file,
                            old_spans.map_or_else(no_span, |s| s.tag),
                            format!("was {}", variant.value),
                        )),
                    );
                }
                (Some(_), _) => {}
                (None, Some(n)) => {
                    let new_spans = new_model.spans.member(&new.name, &n.name);
                    self.report(
                        Rule::EnumValueRenamed,
                        SerializerSet::BY_NAME,
                        format!("{what} (= {}) was renamed to `{}`", variant.value, n.name),
                        Some(self.new.at(
                            new_file,
                            new_spans.map_or_else(no_span, |s| s.name),
                            format!("now `{}`", n.name),
                        )),
                        Some(self.old.at(
                            old_file,
                            old_spans.map_or_else(no_span, |s| s.name),
                            format!("was `{}`", variant.name),
                        )),
                    );
                }
                (None, None) => {
                    let new_span = new_model.spans.type_name(&new.name).unwrap_or_else(no_span);
                    self.report(
                        Rule::EnumValueRemoved,
                        SerializerSet::ALL,
                        format!("{what} (= {}) was removed", variant.value),
                        Some(self.new.at(
                            new_file,
                            new_span,
                            format!("has no `{}` any more", variant.name),
                        )),
                        Some(self.old.at(
                            old_file,
                            old_spans.map_or_else(no_span, |s| s.name),
                            "removed in the new version",
                        )),
                    );
                }
            }
        }
        // A variant with a new name and a new number (a new name on an old
        // number is `EnumValueRenamed`).
        for variant in &new.variants {
            let known = old
                .variants
                .iter()
                .any(|v| v.name == variant.name || v.value == variant.value);
            if known {
                continue;
            }
            let new_span = new_model
                .spans
                .member(&new.name, &variant.name)
                .map_or_else(no_span, |s| s.name);
            let old_span = old_model.spans.type_name(&old.name).unwrap_or_else(no_span);
            self.report(
                Rule::EnumValueAdded,
                SerializerSet::BY_NAME,
                format!(
                    "variant `{}.{}` (= {}) was added",
                    new.name, variant.name, variant.value
                ),
                Some(self.new.at(new_file, new_span, "new variant")),
                Some(
                    self.old
                        .at(old_file, old_span, format!("had no `{}`", variant.name)),
                ),
            );
        }
    }

    /// Fields of a struct or error, arms of a union, or parameters.
    pub(super) fn fields(&mut self, old: Fields<'a>, new: Fields<'a>) {
        let old_model = self.old.model(old.file);
        let new_model = self.new.model(new.file);
        let union = old.owner.is_union();
        for field in old.fields {
            let what = old.owner.member(&field.name);
            let old_spans = old.owner.spans(old_model, &field.name);
            let old_at = |pick: fn(&MemberSpans) -> SourceSpan| {
                old_spans.as_ref().map_or_else(no_span, pick)
            };
            let by_name = new.fields.iter().find(|f| f.name == field.name);
            let by_tag = new.fields.iter().find(|f| f.tag == field.tag);
            if let Some(n) = by_name {
                let new_spans = new.owner.spans(new_model, &n.name);
                let new_at = |pick: fn(&MemberSpans) -> SourceSpan| {
                    new_spans.as_ref().map_or_else(no_span, pick)
                };
                if n.tag != field.tag {
                    let rule = if union {
                        Rule::UnionArmRenumbered
                    } else {
                        Rule::FieldRenumbered
                    };
                    self.report(
                        rule,
                        SerializerSet::PROTOBUF,
                        format!("{what} changed its tag from {} to {}", field.tag, n.tag),
                        Some(self.new.at(
                            new.file,
                            new_at(|s| s.tag),
                            format!("now tag {}", n.tag),
                        )),
                        Some(self.old.at(
                            old.file,
                            old_at(|s| s.tag),
                            format!("was tag {}", field.tag),
                        )),
                    );
                }
                if let Some(change) = wire::compare(&field.ty, &n.ty, &mut self.renamed) {
                    let (old_ty, new_ty) = (type_text(&field.ty), type_text(&n.ty));
                    self.report(
                        change.rule,
                        change.breaks,
                        format!("{what} changed its type from `{old_ty}` to `{new_ty}`"),
                        Some(
                            self.new
                                .at(new.file, new_at(|s| s.ty), format!("now `{new_ty}`")),
                        ),
                        Some(
                            self.old
                                .at(old.file, old_at(|s| s.ty), format!("was `{old_ty}`")),
                        ),
                    );
                }
                if field.default != n.default {
                    let (old_value, new_value) = (
                        value_text(field.default.as_ref()),
                        value_text(n.default.as_ref()),
                    );
                    let new_span = new_spans
                        .and_then(|s| s.default)
                        .unwrap_or(new_at(|s| s.name));
                    let old_span = old_spans
                        .and_then(|s| s.default)
                        .unwrap_or(old_at(|s| s.name));
                    self.report(
                        Rule::DefaultChanged,
                        SerializerSet::PROTOBUF,
                        format!("{what} changed its default from {old_value} to {new_value}"),
                        Some(self.new.at(new.file, new_span, format!("now {new_value}"))),
                        Some(self.old.at(old.file, old_span, format!("was {old_value}"))),
                    );
                }
            }
            if let Some(t) = by_tag.filter(|t| t.name != field.name) {
                let new_spans = new.owner.spans(new_model, &t.name);
                let new_at = |pick: fn(&MemberSpans) -> SourceSpan| {
                    new_spans.as_ref().map_or_else(no_span, pick)
                };
                let mut scratch = Vec::new();
                let change = wire::compare(&field.ty, &t.ty, &mut scratch);
                let protobuf_breaks = change.is_some_and(|c| {
                    c.breaks.contains(Serializer::Protobuf) && c.rule != Rule::IntegerWidthChanged
                });
                if by_name.is_none() {
                    self.report(
                        Rule::FieldRenamed,
                        SerializerSet::BY_NAME,
                        format!("{what} was renamed to `{}` (tag {})", t.name, t.tag),
                        Some(self.new.at(
                            new.file,
                            new_at(|s| s.name),
                            format!("now `{}`", t.name),
                        )),
                        Some(self.old.at(
                            old.file,
                            old_at(|s| s.name),
                            format!("was `{}`", field.name),
                        )),
                    );
                    if !protobuf_breaks {
                        self.renamed.extend(scratch);
                    }
                }
                if protobuf_breaks {
                    let (old_ty, new_ty) = (type_text(&field.ty), type_text(&t.ty));
                    self.report(
                        Rule::TagTypeChanged,
                        SerializerSet::PROTOBUF,
                        format!(
                            "tag {} of `{}` changed type: `{new_ty} {}`, was `{old_ty} {}`",
                            field.tag,
                            new_owner_name(new.owner),
                            t.name,
                            field.name
                        ),
                        Some(self.new.at(
                            new.file,
                            new_at(|s| s.ty),
                            format!("tag {} is now `{new_ty}`", t.tag),
                        )),
                        Some(self.old.at(
                            old.file,
                            old_at(|s| s.ty),
                            format!("tag {} was `{old_ty}`", field.tag),
                        )),
                    );
                }
            }
            if by_name.is_none() && by_tag.is_none() {
                let rule = if union {
                    Rule::UnionArmRemoved
                } else {
                    Rule::FieldRemoved
                };
                let new_span = new.owner.name_span(new_model);
                self.report(
                    rule,
                    SerializerSet::ALL,
                    format!("{what} (tag {}) was removed", field.tag),
                    Some(self.new.at(
                        new.file,
                        new_span,
                        format!("has no `{}` any more", field.name),
                    )),
                    Some(
                        self.old
                            .at(old.file, old_at(|s| s.name), "removed in the new version"),
                    ),
                );
            }
        }
        if self.serializers.contains(Serializer::Postcard) {
            self.postcard_layout(old, new);
        }
    }

    /// Postcard writes fields in declaration order, with nothing to tell
    /// them apart: the sequence of types must stay as it was. A union is
    /// written as its arm's position: arms may only be appended.
    fn postcard_layout(&mut self, old: Fields<'a>, new: Fields<'a>) {
        let union = old.owner.is_union();
        let count = if union {
            old.fields.len()
        } else {
            old.fields.len().max(new.fields.len())
        };
        for position in 0..count {
            let (o, n) = (old.fields.get(position), new.fields.get(position));
            // Declared types that now stand where others stood, laid out
            // differently: `(old, new)` of the first such pair.
            let mut unlike = None;
            let differs = match (o, n) {
                (Some(o), Some(n)) => {
                    let mut renamed = Vec::new();
                    let differs = postcard_breaks(&o.ty, &n.ty, &mut renamed);
                    // A field that kept its name had its types queued for a
                    // full comparison by `fields`; another field now at this
                    // position is compared here, for postcard alone.
                    if !differs && o.name != n.name {
                        let mut assumed = HashSet::new();
                        unlike = renamed
                            .into_iter()
                            .find(|(o, n)| !self.postcard_alike(o, n, &mut assumed));
                    }
                    differs || unlike.is_some()
                }
                _ => true,
            };
            if !differs {
                continue;
            }
            let describe = |f: Option<&Field>| {
                f.map_or_else(
                    || "nothing".to_owned(),
                    |f| format!("`{} {}`", type_text(&f.ty), f.name),
                )
            };
            let what = match old.owner {
                Owner::Struct(ty) => format!("`{ty}`"),
                Owner::Union(ty) => format!("union `{ty}`"),
                Owner::Method(service, method) => format!("the parameters of `{service}.{method}`"),
            };
            let new_model = self.new.model(new.file);
            let old_model = self.old.model(old.file);
            let new_span = n
                .and_then(|n| new.owner.spans(new_model, &n.name))
                .map_or_else(|| new.owner.name_span(new_model), |s| s.name);
            let old_span = o
                .and_then(|o| old.owner.spans(old_model, &o.name))
                .map_or_else(|| old.owner.name_span(old_model), |s| s.name);
            let why = unlike.map_or_else(String::new, |(o, n)| {
                format!(" (`{}` is laid out differently from `{}`)", n.name, o.name)
            });
            self.report(
                Rule::PostcardLayoutChanged,
                SerializerSet::POSTCARD,
                format!(
                    "{what} changed at position {}: {}, was {}{why}",
                    position + 1,
                    describe(n),
                    describe(o)
                ),
                Some(
                    self.new
                        .at(new.file, new_span, format!("position {}", position + 1)),
                ),
                Some(
                    self.old
                        .at(old.file, old_span, format!("position {}", position + 1)),
                ),
            );
            return;
        }
    }
    /// Whether postcard reads a value of the new declared type as one of
    /// the old: the same kind, fields of the same types at the same
    /// positions (union arms and enum numbers only added), recursively.
    /// Pairs in `assumed` are being compared further up (recursive types).
    fn postcard_alike(
        &self,
        old: &TypeRef,
        new: &TypeRef,
        assumed: &mut HashSet<(TypeRef, TypeRef)>,
    ) -> bool {
        let (Some((_, old_def)), Some((_, new_def))) =
            (self.old.type_of(old), self.new.type_of(new))
        else {
            return true;
        };
        if !assumed.insert((old.clone(), new.clone())) {
            return true;
        }
        let fields_alike = |this: &Self, o: &[Field], n: &[Field], assumed: &mut HashSet<_>| {
            o.iter().zip(n).all(|(o, n)| {
                let mut renamed = Vec::new();
                !postcard_breaks(&o.ty, &n.ty, &mut renamed)
                    && renamed
                        .iter()
                        .all(|(o, n)| this.postcard_alike(o, n, assumed))
            })
        };
        match (old_def, new_def) {
            (TypeDef::Struct(o), TypeDef::Struct(n)) => {
                o.fields.len() == n.fields.len()
                    && fields_alike(self, &o.fields, &n.fields, assumed)
            }
            (TypeDef::Union(o), TypeDef::Union(n)) => {
                o.arms.len() <= n.arms.len() && fields_alike(self, &o.arms, &n.arms, assumed)
            }
            (TypeDef::Enum(o), TypeDef::Enum(n)) => o
                .variants
                .iter()
                .all(|v| n.variants.iter().any(|w| w.value == v.value)),
            _ => false,
        }
    }
}

/// Whether a field's type change breaks postcard (an integer's width is a
/// warning, not a layout change). Declared types standing for others are
/// pushed to `renamed`.
fn postcard_breaks(old: &FieldType, new: &FieldType, renamed: &mut RenamedTypes) -> bool {
    wire::compare(old, new, renamed).is_some_and(|c| {
        c.breaks.contains(Serializer::Postcard) && c.rule != Rule::IntegerWidthChanged
    })
}

fn new_owner_name(owner: Owner<'_>) -> String {
    match owner {
        Owner::Struct(ty) | Owner::Union(ty) => ty.to_owned(),
        Owner::Method(service, method) => format!("{service}.{method}"),
    }
}
