//! Services and methods: names, parameters, results, `throws`, `oneway`,
//! annotations and the wire name.

use std::collections::HashMap;

use miette::SourceSpan;

use super::FileChecker;
use super::fields::{Container, ContainerKind};
use super::names::{CLIENT_METHOD_SUFFIXES, Case, Clash, NameScope};
use super::symbols::SymbolId;
use crate::diagnostic::DiagnosticKind;
use crate::model::{FieldType, Method, Scalar, Service, TypeKind, TypeRef};
use crate::parse::ast::{MethodDecl, ReturnType, ServiceDecl};

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
        let params = self.checked_fields(&container, &decl.params);
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
            ReturnType::Void(_) => None,
            ReturnType::Type(ty) => {
                if decl.oneway.is_some() {
                    self.report(DiagnosticKind::OnewayWithResult {
                        method: name.clone(),
                        span: ty.span,
                    });
                }
                self.field_type(ty)
            }
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
            throws,
            idempotent: annotations.idempotent,
            timeout_ms: annotations.timeout_ms,
        }
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
