//! The declaration spans of one file ([`DeclSpans`]), read off its syntax
//! tree. Where a name is declared twice (an error), the first one is kept.

use crate::model::{DeclSpans, MemberSpans, MethodSpans, ServiceSpans};
use crate::parse::ast::{Decl, FieldDecl, File, ReturnType};

/// The spans of every type, member, service, method and parameter of `file`.
pub(super) fn of_file(file: &File) -> DeclSpans {
    let mut spans = DeclSpans::default();
    for decl in &file.decls {
        match decl {
            Decl::Const(_) => {}
            Decl::Struct(s) => {
                spans
                    .types
                    .entry(s.name.name.clone())
                    .or_insert(s.name.span);
                for field in &s.fields {
                    spans
                        .members
                        .entry((s.name.name.clone(), field.name.name.clone()))
                        .or_insert_with(|| member(field));
                }
            }
            Decl::Enum(e) => {
                spans
                    .types
                    .entry(e.name.name.clone())
                    .or_insert(e.name.span);
                for variant in &e.variants {
                    spans
                        .members
                        .entry((e.name.name.clone(), variant.name.name.clone()))
                        .or_insert(MemberSpans {
                            name: variant.name.span,
                            tag: variant.value_span,
                            ty: variant.name.span,
                            default: None,
                        });
                }
            }
            Decl::Service(s) => {
                let version = s
                    .annotations
                    .iter()
                    .find(|a| a.name.name == "version")
                    .map(|a| a.span);
                spans
                    .services
                    .entry(s.name.name.clone())
                    .or_insert(ServiceSpans {
                        name: s.name.span,
                        version,
                    });
                for method in &s.methods {
                    let key = (s.name.name.clone(), method.name.name.clone());
                    if spans.methods.contains_key(&key) {
                        continue;
                    }
                    for param in &method.params {
                        spans
                            .params
                            .entry((key.0.clone(), key.1.clone(), param.name.name.clone()))
                            .or_insert_with(|| member(param));
                    }
                    let returns = match &method.returns {
                        ReturnType::Void(span) => *span,
                        ReturnType::Type(ty) => ty.span,
                    };
                    spans.methods.insert(
                        key,
                        MethodSpans {
                            name: method.name.span,
                            oneway: method.oneway,
                            stream: method.stream,
                            returns,
                            throws: method.throws.iter().map(|t| t.span).collect(),
                        },
                    );
                }
            }
        }
    }
    spans
}

fn member(field: &FieldDecl) -> MemberSpans {
    MemberSpans {
        name: field.name.span,
        tag: field.tag.span,
        ty: field.ty.span,
        default: field.default.as_ref().map(|d| d.span),
    }
}
