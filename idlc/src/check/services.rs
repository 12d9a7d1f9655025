//! Services and methods: names, parameters, results, `throws`, `oneway`,
//! annotations and the wire name.

use std::collections::HashMap;

use miette::SourceSpan;

use super::FileChecker;
use super::fields::{Container, ContainerKind};
use super::names::{CLIENT_METHOD_SUFFIXES, Case, Clash, NameScope};
use super::symbols::SymbolId;
use crate::diagnostic::DiagnosticKind;
use crate::model::{Field, FieldType, Method, Scalar, Service, Streaming, TypeKind, TypeRef};
use crate::parse::ast::{FieldDecl, MethodDecl, ReturnType, ServiceDecl};
use crate::source::span;

impl FileChecker<'_> {
    /// Checks a service declared in a file of `package`.
    pub(super) fn service(&mut self, decl: &ServiceDecl, package: Option<&str>) -> Service {
        let version = self.service_annotations(&decl.annotations);
        let name = decl.name.name.clone();
        let mut methods = NameScope::new(
            Case::Snake,
            format!(
                "methods of service `{name}`, with their `_blocking`, `_future` and `_with_callback` client forms"
            ),
        );
        let mut checked = Vec::with_capacity(decl.methods.len());
        for method in &decl.methods {
            match methods.declare_with(&method.name, CLIENT_METHOD_SUFFIXES) {
                Ok(()) => {}
                Err(Clash::Duplicate(first)) => self.report(DiagnosticKind::DuplicateMethod {
                    service: name.clone(),
                    name: method.name.name.clone(),
                    span: method.name.span,
                    first: Some(first),
                }),
                Err(Clash::Other(problem)) => self.report(problem),
            }
            checked.push(self.method(method));
        }
        let mut wire_name = match package {
            Some(package) => format!("{package}.{name}"),
            None => name.clone(),
        };
        if let Some(version) = &version {
            wire_name.push(':');
            wire_name.push_str(version);
        }
        Service {
            name,
            docs: decl.docs.clone(),
            wire_name,
            version,
            methods: checked,
        }
    }

    fn method(&mut self, decl: &MethodDecl) -> Method {
        let annotations = self.method_annotations(&decl.annotations);
        let name = decl.name.name.clone();
        let container = Container {
            kind: ContainerKind::Method,
            description: format!("method `{name}`"),
            name: name.clone(),
            layout: None,
        };
        // A stream parameter shares the tags and names of the others.
        let mut params = self.checked_fields(&container, &decl.params);
        let stream_param = self.stream_params(decl, &mut params.fields);
        if let [first, second, ..] = params.hash_keys.as_slice() {
            self.report(DiagnosticKind::MultipleHashKeys {
                method: name.clone(),
                span: *second,
                first: Some(*first),
            });
        }
        for field in params.fields.iter().filter(|f| f.hash_key) {
            if let Some(ty) = unroutable_type(&field.ty) {
                let span = decl
                    .params
                    .iter()
                    .find(|p| p.name.name == field.name)
                    .map_or(decl.name.span, |p| p.ty.span);
                self.report(DiagnosticKind::HashKeyType {
                    method: name.clone(),
                    param: field.name.clone(),
                    ty,
                    span,
                });
            }
        }
        let returns = match &decl.returns {
            ReturnType::Void(void) => {
                if let Some(stream) = decl.stream {
                    self.report(DiagnosticKind::StreamVoid {
                        method: name.clone(),
                        span: span(stream.offset(), void.offset() + void.len()),
                    });
                }
                None
            }
            ReturnType::Type(ty) => {
                // A oneway stream is reported once, as a stream.
                if decl.oneway.is_some() && decl.stream.is_none() {
                    self.report(DiagnosticKind::OnewayWithResult {
                        method: name.clone(),
                        span: ty.span,
                    });
                }
                self.field_type(ty)
            }
        };
        if let Some(oneway_stream) = decl
            .stream
            .or_else(|| decl.params.iter().find_map(|p| p.stream))
            .filter(|_| decl.oneway.is_some())
        {
            self.report(DiagnosticKind::OnewayWithStream {
                method: name.clone(),
                span: oneway_stream,
            });
        }
        let (returns, streaming) = match (decl.stream, returns, stream_param) {
            (None, returns, None) => (returns, Streaming::Unary),
            (None, returns, Some(param)) => (returns, Streaming::Client { param }),
            // `stream void` was reported; its model is never read.
            (Some(_), item, None) => (
                None,
                item.map_or(Streaming::Unary, |item| Streaming::Server { item }),
            ),
            (Some(_), item, Some(param)) => (
                None,
                match item {
                    Some(item) => Streaming::Bidirectional { item, param },
                    None => Streaming::Client { param },
                },
            ),
        };
        if let (Some(_), Some(span)) = (decl.oneway, decl.throws_span) {
            self.report(DiagnosticKind::OnewayWithThrows {
                method: name.clone(),
                span,
            });
        }
        let throws = self.throws(decl);
        Method {
            name,
            docs: decl.docs.clone(),
            oneway: decl.oneway.is_some(),
            params: params.fields,
            returns,
            streaming,
            throws,
            idempotent: annotations.idempotent,
            timeout_ms: annotations.timeout_ms,
        }
    }

    /// Checks the `stream` parameters of a method (at most one, the last,
    /// without `@hash_key` or a default; and, for now, none at all) and
    /// takes the stream parameter out of `fields`, the args message.
    fn stream_params(&mut self, decl: &MethodDecl, fields: &mut Vec<Field>) -> Option<Field> {
        let method = &decl.name.name;
        let streams: Vec<(usize, &FieldDecl, SourceSpan)> = decl
            .params
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.stream.map(|keyword| (i, p, keyword)))
            .collect();
        let &[(index, first, keyword), ..] = streams.as_slice() else {
            return None;
        };
        if let Some(&(_, second, _)) = streams.get(1) {
            self.report(DiagnosticKind::MultipleStreamParams {
                method: method.clone(),
                span: second.name.span,
                first: Some(first.name.span),
            });
        } else if let Some(last) = decl.params.last().filter(|_| index + 1 < decl.params.len()) {
            self.report(DiagnosticKind::StreamParamNotLast {
                method: method.clone(),
                param: first.name.name.clone(),
                span: first.name.span,
                last: Some(last.name.span),
            });
        }
        for &(_, param, _) in &streams {
            if let Some(hash_key) = param.annotations.iter().find(|a| a.name.name == "hash_key") {
                self.report(DiagnosticKind::HashKeyType {
                    method: method.clone(),
                    param: param.name.name.clone(),
                    ty: "a stream".to_owned(),
                    span: hash_key.span,
                });
            }
            if let Some(default) = &param.default {
                self.report(DiagnosticKind::UnexpectedDefault {
                    reason: format!(
                        "stream parameter `{}` cannot have a default value",
                        param.name.name
                    ),
                    span: default.span,
                    help: Some(
                        "drop the default: a stream's items are what the caller sends".to_owned(),
                    ),
                });
            }
        }
        // Temporary: idlc generates server streaming only, and every file
        // it accepts must compile.
        self.report(DiagnosticKind::StreamingNotSupported {
            method: method.clone(),
            span: keyword,
        });
        let is_stream = |field: &Field| {
            streams.iter().any(|(_, p, _)| {
                p.name.name == field.name && u32::try_from(p.tag.value).ok() == Some(field.tag)
            })
        };
        let position = fields.iter().position(is_stream)?;
        let param = fields.remove(position);
        fields.retain(|field| !is_stream(field));
        Some(param)
    }

    fn throws(&mut self, decl: &MethodDecl) -> Vec<TypeRef> {
        let mut seen: HashMap<SymbolId, SourceSpan> = HashMap::new();
        let mut throws = Vec::with_capacity(decl.throws.len());
        for name in &decl.throws {
            let Some((id, type_ref)) = self.resolve_name(name) else {
                continue;
            };
            if type_ref.kind != TypeKind::Error {
                let kind = match type_ref.kind {
                    TypeKind::Struct => "struct",
                    TypeKind::Enum => "enum",
                    TypeKind::Union => "union",
                    TypeKind::Error => "error",
                };
                let kind = match kind {
                    "enum" => "an enum",
                    "union" => "a union",
                    _ => "a struct",
                };
                let help = if type_ref.kind == TypeKind::Struct {
                    format!(
                        "declare it as `error {} {{ ... }}` to make it throwable",
                        type_ref.name
                    )
                } else {
                    "only types declared with `error` can be thrown".to_owned()
                };
                self.report(DiagnosticKind::ThrowsNotError {
                    name: name.written(),
                    kind: kind.to_owned(),
                    span: name.span,
                    help: Some(help),
                });
                continue;
            }
            if let Some(first) = seen.get(&id) {
                self.report(DiagnosticKind::DuplicateThrows {
                    method: decl.name.name.clone(),
                    name: name.written(),
                    span: name.span,
                    first: Some(*first),
                });
                continue;
            }
            seen.insert(id, name.span);
            throws.push(type_ref);
        }
        throws
    }
}

/// What a `@hash_key` parameter's type is, when it cannot be hashed into a
/// routing key (floats, structs, unions, containers); `None` when it can.
fn unroutable_type(ty: &FieldType) -> Option<String> {
    match ty {
        FieldType::Scalar(Scalar::F32) => Some("an `f32`".to_owned()),
        FieldType::Scalar(Scalar::F64) => Some("an `f64`".to_owned()),
        FieldType::Scalar(_) => None,
        FieldType::Named(r) if r.kind == TypeKind::Enum => None,
        FieldType::Named(r) => Some(match r.kind {
            TypeKind::Union => "a union".to_owned(),
            TypeKind::Error => "an error".to_owned(),
            _ => "a struct".to_owned(),
        }),
        FieldType::List(_) => Some("a list".to_owned()),
        FieldType::Map(..) => Some("a map".to_owned()),
        FieldType::Optional(_) => Some("an optional value".to_owned()),
    }
}
