//! The comparison itself: old models against new ones, by name. Services,
//! methods and declared types here; their members in [`members`].

mod members;
mod throws;

use std::collections::{HashMap, HashSet};

use miette::SourceSpan;

use super::idl_text::return_text;
use super::rules::{Rule, SerializerSet};
use super::wire::{self, RenamedTypes, TypeChange};
use super::{Incompatibility, Location};
use crate::model::{FileModel, Method, MethodSpans, Service, TypeDef, TypeRef};
use crate::source::{SourceText, display_name};
use members::{Fields, Owner};

/// `(package, name)`: how declarations are matched between the versions.
type Key<'a> = (Option<&'a str>, &'a str);

/// One version: its files and what they declare.
struct Side<'a> {
    files: Vec<(&'a FileModel, SourceText)>,
    types: HashMap<Key<'a>, (usize, &'a TypeDef)>,
    services: Vec<(usize, &'a Service)>,
}

impl<'a> Side<'a> {
    fn new(models: &'a [FileModel]) -> Self {
        let mut side = Side {
            files: Vec::with_capacity(models.len()),
            types: HashMap::new(),
            services: Vec::new(),
        };
        for (index, model) in models.iter().enumerate() {
            let source = miette::NamedSource::new(display_name(&model.source), model.text.clone());
            side.files.push((model, source));
            for ty in &model.types {
                side.types
                    .entry((model.package.as_deref(), ty.name()))
                    .or_insert((index, ty));
            }
            side.services
                .extend(model.services.iter().map(|service| (index, service)));
        }
        side
    }

    fn model(&self, file: usize) -> &'a FileModel {
        self.files[file].0
    }

    fn at(&self, file: usize, span: SourceSpan, label: impl Into<String>) -> Location {
        Location::new(self.files[file].1.clone(), span, label)
    }

    fn type_of(&self, r: &TypeRef) -> Option<(usize, &'a TypeDef)> {
        self.types
            .get(&(r.package.as_deref(), r.name.as_str()))
            .copied()
    }
}

struct Walk<'a> {
    old: Side<'a>,
    new: Side<'a>,
    serializers: SerializerSet,
    found: Vec<Incompatibility>,
    renamed: RenamedTypes,
    /// Type pairs already compared: `(package, name)` of old and new.
    compared: HashSet<[(Option<String>, String); 2]>,
}

/// Every incompatibility between `old` and `new` that hurts one of
/// `serializers`.
pub(super) fn compare(
    old: &[FileModel],
    new: &[FileModel],
    serializers: SerializerSet,
) -> Vec<Incompatibility> {
    let mut walk = Walk {
        old: Side::new(old),
        new: Side::new(new),
        serializers,
        found: Vec::new(),
        renamed: Vec::new(),
        compared: HashSet::new(),
    };
    walk.services();
    for model in old {
        for ty in &model.types {
            let key = (model.package.as_deref(), ty.name());
            if let (Some(&(old_file, old_def)), Some(&(new_file, new_def))) =
                (walk.old.types.get(&key), walk.new.types.get(&key))
            {
                walk.type_pair(old_file, old_def, new_file, new_def);
            }
        }
    }
    while let Some((old_ref, new_ref)) = walk.renamed.pop() {
        if let (Some((old_file, old_def)), Some((new_file, new_def))) =
            (walk.old.type_of(&old_ref), walk.new.type_of(&new_ref))
        {
            walk.type_pair(old_file, old_def, new_file, new_def);
        }
    }
    let mut found = walk.found;
    found.sort_by(|a, b| {
        let place = |i: &Incompatibility| {
            let at = i.new_location().or(i.old_location());
            (
                i.new_location().is_none(),
                at.map(|at| at.file_name().to_owned()),
                at.map(|at| at.span().offset()),
            )
        };
        place(a).cmp(&place(b)).then(a.rule().cmp(&b.rule()))
    });
    found
}

pub(super) fn no_span() -> SourceSpan {
    SourceSpan::from(0..0)
}

impl<'a> Walk<'a> {
    fn report(
        &mut self,
        rule: Rule,
        breaks: SerializerSet,
        message: String,
        new: Option<Location>,
        old: Option<Location>,
    ) {
        let breaks = breaks.intersection(self.serializers);
        if breaks.is_empty() {
            return;
        }
        self.found
            .push(Incompatibility::new(rule, message, breaks, new, old));
    }

    fn services(&mut self) {
        let mut matched_new = HashSet::new();
        let mut unmatched_old = Vec::new();
        let old_services = self.old.services.clone();
        for (old_file, old_service) in old_services {
            let package = self.old.model(old_file).package.as_deref();
            let found = self.new.services.iter().copied().find(|(file, s)| {
                s.name == old_service.name && self.new.model(*file).package.as_deref() == package
            });
            match found {
                Some((new_file, new_service)) => {
                    matched_new.insert((new_file, new_service.name.as_str()));
                    self.service(old_file, old_service, new_file, new_service);
                }
                None => unmatched_old.push((old_file, old_service)),
            }
        }
        for (old_file, old_service) in unmatched_old {
            // Same name in another package: the wire name changed.
            let moved = self.new.services.iter().copied().find(|(file, s)| {
                s.name == old_service.name && !matched_new.contains(&(*file, s.name.as_str()))
            });
            let old_span = self
                .old
                .model(old_file)
                .spans
                .service(&old_service.name)
                .map_or_else(no_span, |s| s.name);
            match moved {
                Some((new_file, new_service)) => {
                    matched_new.insert((new_file, new_service.name.as_str()));
                    let new_span = self
                        .new
                        .model(new_file)
                        .spans
                        .service(&new_service.name)
                        .map_or_else(no_span, |s| s.name);
                    self.report(
                        Rule::WireNameChanged,
                        SerializerSet::ALL,
                        format!(
                            "service `{}` changed its wire name from `{}` to `{}`",
                            old_service.name, old_service.wire_name, new_service.wire_name
                        ),
                        Some(self.new.at(
                            new_file,
                            new_span,
                            format!("now `{}`", new_service.wire_name),
                        )),
                        Some(self.old.at(
                            old_file,
                            old_span,
                            format!("was `{}`", old_service.wire_name),
                        )),
                    );
                    self.methods(old_file, old_service, new_file, new_service);
                }
                None => self.report(
                    Rule::ServiceRemoved,
                    SerializerSet::ALL,
                    format!(
                        "service `{}` (wire name `{}`) was removed",
                        old_service.name, old_service.wire_name
                    ),
                    None,
                    Some(
                        self.old
                            .at(old_file, old_span, "removed in the new version"),
                    ),
                ),
            }
        }
    }

    fn service(&mut self, old_file: usize, old: &'a Service, new_file: usize, new: &'a Service) {
        if old.wire_name != new.wire_name {
            let span_of = |side: &Side<'a>, file: usize| {
                side.model(file)
                    .spans
                    .service(&old.name)
                    .map_or_else(no_span, |s| s.version.unwrap_or(s.name))
            };
            let version = |v: &Option<String>| {
                v.as_deref()
                    .map_or_else(|| "none".to_owned(), |v| format!("`{v}`"))
            };
            self.report(
                Rule::VersionChanged,
                SerializerSet::ALL,
                format!(
                    "service `{}` changed its version from {} to {}: its wire name is now `{}`, was `{}`",
                    old.name,
                    version(&old.version),
                    version(&new.version),
                    new.wire_name,
                    old.wire_name
                ),
                Some(self.new.at(new_file, span_of(&self.new, new_file), format!("now `{}`", new.wire_name))),
                Some(self.old.at(old_file, span_of(&self.old, old_file), format!("was `{}`", old.wire_name))),
            );
        }
        self.methods(old_file, old, new_file, new);
    }

    fn methods(&mut self, old_file: usize, old: &'a Service, new_file: usize, new: &'a Service) {
        for old_method in &old.methods {
            match new.methods.iter().find(|m| m.name == old_method.name) {
                Some(new_method) => {
                    self.method((old_file, old, old_method), (new_file, new, new_method))
                }
                None => {
                    let new_span = self
                        .new
                        .model(new_file)
                        .spans
                        .service(&new.name)
                        .map_or_else(no_span, |s| s.name);
                    let old_span = self
                        .old
                        .model(old_file)
                        .spans
                        .method(&old.name, &old_method.name)
                        .map_or_else(no_span, |m| m.name);
                    self.report(
                        Rule::MethodRemoved,
                        SerializerSet::ALL,
                        format!("method `{}.{}` was removed", old.name, old_method.name),
                        Some(self.new.at(
                            new_file,
                            new_span,
                            format!("has no `{}` any more", old_method.name),
                        )),
                        Some(
                            self.old
                                .at(old_file, old_span, "removed in the new version"),
                        ),
                    );
                }
            }
        }
    }

    fn method(
        &mut self,
        (old_file, old_service, old): (usize, &'a Service, &'a Method),
        (new_file, new_service, new): (usize, &'a Service, &'a Method),
    ) {
        let old_spans = self
            .old
            .model(old_file)
            .spans
            .method(&old_service.name, &old.name)
            .cloned();
        let new_spans = self
            .new
            .model(new_file)
            .spans
            .method(&new_service.name, &new.name)
            .cloned();
        let name = format!("{}.{}", new_service.name, new.name);
        let old_name_span = old_spans.as_ref().map_or_else(no_span, |s| s.name);
        let new_name_span = new_spans.as_ref().map_or_else(no_span, |s| s.name);
        if old.oneway != new.oneway {
            let (message, new_label, old_label) = if new.oneway {
                (
                    format!("method `{name}` became oneway"),
                    "now oneway",
                    "was not oneway",
                )
            } else {
                (
                    format!("method `{name}` is no longer oneway"),
                    "no longer oneway",
                    "was oneway",
                )
            };
            let new_span = new_spans
                .as_ref()
                .and_then(|s| s.oneway)
                .unwrap_or(new_name_span);
            let old_span = old_spans
                .as_ref()
                .and_then(|s| s.oneway)
                .unwrap_or(old_name_span);
            self.report(
                Rule::OnewayChanged,
                SerializerSet::ALL,
                message,
                Some(self.new.at(new_file, new_span, new_label)),
                Some(self.old.at(old_file, old_span, old_label)),
            );
        }
        // The args message.
        let owner_old = Owner::Method(&old_service.name, &old.name);
        let owner_new = Owner::Method(&new_service.name, &new.name);
        self.fields(
            Fields {
                file: old_file,
                owner: owner_old,
                fields: &old.params,
            },
            Fields {
                file: new_file,
                owner: owner_new,
                fields: &new.params,
            },
        );
        // The result message.
        if !old.oneway && !new.oneway {
            self.returns(
                &name,
                (old_file, old, &old_spans),
                (new_file, new, &new_spans),
            );
        }
        // The error message: a union of the declared errors, whose arm is
        // the error's position (tag) for protobuf and postcard, and its
        // snake_case type name for JSON and MessagePack.
        self.throws(
            &name,
            (old_file, old, old_spans.as_ref(), old_name_span),
            (new_file, new, new_spans.as_ref(), new_name_span),
        );
    }

    fn returns(
        &mut self,
        name: &str,
        (old_file, old, old_spans): (usize, &Method, &Option<MethodSpans>),
        (new_file, new, new_spans): (usize, &Method, &Option<MethodSpans>),
    ) {
        let change = match (&old.returns, &new.returns) {
            (None, None) => None,
            // Old clients ignore the unknown `value`; new clients of old
            // servers read its default. Postcard runs out of bytes.
            (None, Some(_)) => Some(TypeChange {
                rule: Rule::ReturnTypeChanged,
                breaks: SerializerSet::POSTCARD,
            }),
            (Some(_), None) => Some(TypeChange {
                rule: Rule::ReturnTypeChanged,
                breaks: SerializerSet::ALL,
            }),
            (Some(o), Some(n)) => wire::compare(o, n, &mut self.renamed).map(|c| TypeChange {
                rule: if c.rule == Rule::WireEncodingChanged {
                    Rule::ReturnTypeChanged
                } else {
                    c.rule
                },
                breaks: c.breaks,
            }),
        };
        let Some(change) = change else { return };
        let old_text = return_text(old.returns.as_ref());
        let new_text = return_text(new.returns.as_ref());
        let new_span = new_spans.as_ref().map_or_else(no_span, |s| s.returns);
        let old_span = old_spans.as_ref().map_or_else(no_span, |s| s.returns);
        self.report(
            change.rule,
            change.breaks,
            format!("method `{name}` changed its return type from `{old_text}` to `{new_text}`"),
            Some(self.new.at(new_file, new_span, format!("now `{new_text}`"))),
            Some(self.old.at(old_file, old_span, format!("was `{old_text}`"))),
        );
    }

    fn type_pair(&mut self, old_file: usize, old: &'a TypeDef, new_file: usize, new: &'a TypeDef) {
        let key = |side: &Side<'a>, file: usize, def: &TypeDef| {
            (side.model(file).package.clone(), def.name().to_owned())
        };
        let pair = [key(&self.old, old_file, old), key(&self.new, new_file, new)];
        if !self.compared.insert(pair) {
            return;
        }
        match (old, new) {
            (TypeDef::Struct(o), TypeDef::Struct(n)) => {
                let old = Fields {
                    file: old_file,
                    owner: Owner::Struct(&o.name),
                    fields: &o.fields,
                };
                let new = Fields {
                    file: new_file,
                    owner: Owner::Struct(&n.name),
                    fields: &n.fields,
                };
                self.fields(old, new);
            }
            (TypeDef::Union(o), TypeDef::Union(n)) => {
                let old = Fields {
                    file: old_file,
                    owner: Owner::Union(&o.name),
                    fields: &o.arms,
                };
                let new = Fields {
                    file: new_file,
                    owner: Owner::Union(&n.name),
                    fields: &n.arms,
                };
                self.fields(old, new);
            }
            (TypeDef::Enum(o), TypeDef::Enum(n)) => self.enum_pair(old_file, o, new_file, n),
            _ => {
                let kind = |def: &TypeDef| match def {
                    TypeDef::Struct(s) if s.is_error => "an error",
                    TypeDef::Struct(_) => "a struct",
                    TypeDef::Enum(_) => "an enum",
                    TypeDef::Union(_) => "a union",
                };
                let new_span = self
                    .new
                    .model(new_file)
                    .spans
                    .type_name(new.name())
                    .unwrap_or_else(no_span);
                let old_span = self
                    .old
                    .model(old_file)
                    .spans
                    .type_name(old.name())
                    .unwrap_or_else(no_span);
                self.report(
                    Rule::WireEncodingChanged,
                    SerializerSet::ALL,
                    format!(
                        "`{}` changed from {} to {}",
                        new.name(),
                        kind(old),
                        kind(new)
                    ),
                    Some(
                        self.new
                            .at(new_file, new_span, format!("now {}", kind(new))),
                    ),
                    Some(
                        self.old
                            .at(old_file, old_span, format!("was {}", kind(old))),
                    ),
                );
            }
        }
    }
}
