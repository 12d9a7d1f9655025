//! The comparison itself: old models against new ones, by name. Services,
//! methods and declared types here; their members in [`members`].

mod members;
mod throws;

use std::collections::{HashMap, HashSet};

use miette::SourceSpan;

use super::idl_text::{return_text, type_text};
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
        let same_shape =
            std::mem::discriminant(&old.streaming) == std::mem::discriminant(&new.streaming);
        if same_shape {
            self.stream_items(
                &name,
                (old_file, old_service, old, &old_spans),
                (new_file, new_service, new, &new_spans),
            );
        } else {
            let old_span = self.shape_span(&self.old, old_file, old_service, old, &old_spans);
            let new_span = self.shape_span(&self.new, new_file, new_service, new, &new_spans);
            let (was, now) = (old.streaming.shape(), new.streaming.shape());
            self.report(
                Rule::StreamingChanged,
                SerializerSet::ALL,
                format!("method `{name}` changed from {was} to {now}"),
                Some(self.new.at(new_file, new_span, format!("now {now}"))),
                Some(self.old.at(old_file, old_span, format!("was {was}"))),
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
        // The result message (of another shape, a change of it is part of
        // `streaming-changed`).
        if !old.oneway && !new.oneway && same_shape {
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

    /// Where a method's streaming shape shows: its result's `stream`, else
    /// its stream parameter, else its name.
    fn shape_span(
        &self,
        side: &Side<'a>,
        file: usize,
        service: &Service,
        method: &Method,
        spans: &Option<MethodSpans>,
    ) -> SourceSpan {
        let name = spans.as_ref().map_or_else(no_span, |s| s.name);
        let stream_result = spans.as_ref().and_then(|s| s.stream);
        let stream_param = method.streaming.client_param().and_then(|param| {
            side.model(file)
                .spans
                .param(&service.name, &method.name, &param.name)
                .map(|p| p.name)
        });
        stream_result.or(stream_param).unwrap_or(name)
    }

    /// The item types of the streams of two methods of the same shape: the
    /// server's items (`stream T` results) and the client's (`stream`
    /// parameters). Each item is a message like the result message, so a
    /// change follows the rules of a result type's.
    fn stream_items(
        &mut self,
        name: &str,
        (old_file, old_service, old, old_spans): (usize, &Service, &Method, &Option<MethodSpans>),
        (new_file, new_service, new, new_spans): (usize, &Service, &Method, &Option<MethodSpans>),
    ) {
        let server = match (old.streaming.server_item(), new.streaming.server_item()) {
            (Some(o), Some(n)) => Some((
                o,
                n,
                old_spans.as_ref().map_or_else(no_span, |s| s.returns),
                new_spans.as_ref().map_or_else(no_span, |s| s.returns),
                "result",
            )),
            _ => None,
        };
        let param_span = |side: &Side<'a>, file: usize, service: &Service, method: &Method| {
            let param = method.streaming.client_param()?;
            side.model(file)
                .spans
                .param(&service.name, &method.name, &param.name)
                .map(|p| p.ty)
        };
        let client = match (old.streaming.client_param(), new.streaming.client_param()) {
            (Some(o), Some(n)) => Some((
                &o.ty,
                &n.ty,
                param_span(&self.old, old_file, old_service, old).unwrap_or_else(no_span),
                param_span(&self.new, new_file, new_service, new).unwrap_or_else(no_span),
                "parameter",
            )),
            _ => None,
        };
        for (o, n, old_span, new_span, which) in server.into_iter().chain(client) {
            let Some(change) = wire::compare(o, n, &mut self.renamed) else {
                continue;
            };
            let rule = if change.rule == Rule::WireEncodingChanged {
                Rule::StreamItemTypeChanged
            } else {
                change.rule
            };
            let (old_text, new_text) = (type_text(o), type_text(n));
            self.report(
                rule,
                change.breaks,
                format!(
                    "method `{name}` changed the item type of its stream {which} from `{old_text}` to `{new_text}`"
                ),
                Some(self.new.at(new_file, new_span, format!("now `{new_text}`"))),
                Some(self.old.at(old_file, old_span, format!("was `{old_text}`"))),
            );
        }
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::compat::rules::Rule;

    /// The model of one file, whatever `check` says about it: the shapes
    /// with a stream parameter are rejected for now
    /// (`idl::streaming_not_supported`), but modelled in full.
    fn models(text: &str) -> Vec<FileModel> {
        let texts = HashMap::from([("m.rpc".to_owned(), std::sync::Arc::from(text))]);
        let loaded = crate::load::load_in_memory(&["m.rpc".to_owned()], &texts);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let checked = crate::check::check(&loaded.files);
        let others: Vec<_> = checked
            .problems
            .iter()
            .filter(|(_, p)| {
                !matches!(
                    p,
                    crate::diagnostic::DiagnosticKind::StreamingNotSupported { .. }
                )
            })
            .collect();
        assert!(others.is_empty(), "{others:?}");
        checked.models
    }

    fn rules(old: &str, new: &str) -> Vec<(Rule, String)> {
        let (old, new) = (models(old), models(new));
        compare(&old, &new, SerializerSet::ALL)
            .into_iter()
            .map(|finding| (finding.rule(), finding.to_string()))
            .collect()
    }

    /// Every change of shape is `streaming-changed`, and only that (the
    /// result's change is part of it).
    #[test]
    fn every_change_of_shape_breaks() {
        let shapes = [
            ("unary", "u64 f(1: string a);"),
            ("server streaming", "stream u64 f(1: string a);"),
            ("client streaming", "u64 f(1: string a, 2: stream u64 b);"),
            (
                "bidirectional streaming",
                "stream u64 f(1: string a, 2: stream u64 b);",
            ),
        ];
        for (old_shape, old) in shapes {
            for (new_shape, new) in shapes {
                let found = rules(
                    &format!("service S {{ {old} }}"),
                    &format!("service S {{ {new} }}"),
                );
                if old_shape == new_shape {
                    assert!(found.is_empty(), "{old} -> {new}: {found:?}");
                } else {
                    assert_eq!(
                        found,
                        [(
                            Rule::StreamingChanged,
                            format!("method `S.f` changed from {old_shape} to {new_shape}")
                        )],
                        "{old} -> {new}"
                    );
                }
            }
        }
    }

    /// The items of either side follow the rules of a result's type.
    #[test]
    fn item_types_follow_the_rules_of_results() {
        let service = |result: &str, param: &str| {
            format!(
                "struct A {{ 1: u32 x; }}\nstruct B {{ 1: string x; }}\nservice S {{ stream {result} f(1: stream {param} p); }}"
            )
        };
        let found = rules(&service("u32", "u32"), &service("string", "u32"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, Rule::StreamItemTypeChanged);
        assert!(found[0].1.contains("stream result from `u32` to `string`"));
        let found = rules(&service("u32", "u32"), &service("u32", "optional u32"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, Rule::OptionalityChanged);
        assert!(found[0].1.contains("stream parameter"));
        assert_eq!(
            rules(&service("u32", "u32"), &service("u64", "u32"))[0].0,
            Rule::IntegerWidthChanged
        );
        // Another item type of the same kind: its members are compared.
        let found = rules(&service("A", "u32"), &service("B", "u32"));
        assert_eq!(found[0].0, Rule::WireEncodingChanged, "{found:?}");
        assert!(found[0].1.contains("field `A.x`"), "{found:?}");
        assert!(rules(&service("A", "u32"), &service("A", "u32")).is_empty());
        // The stream parameter is not in the args message: its name and
        // tag do not travel.
        let renamed = service("u32", "u32").replace("1: stream u32 p", "7: stream u32 q");
        assert!(rules(&service("u32", "u32"), &renamed).is_empty());
    }
}
