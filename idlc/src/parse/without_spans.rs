//! Syntax trees with every span set to `0..0`, so that two trees can be
//! compared for what they say rather than where it was written (the
//! formatter checks its output this way).

use miette::SourceSpan;

use super::ast::*;

/// The span every span becomes.
fn nowhere() -> SourceSpan {
    crate::source::span(0, 0)
}

impl File {
    /// The same tree with every span set to `0..0`: two files that say the
    /// same thing, however they are laid out, give equal results. Recursion
    /// is as deep as the deepest type (the parser's nesting limit for parsed
    /// files).
    pub fn without_spans(&self) -> File {
        File {
            package: self.package.as_ref().map(|p| Package {
                name: p.name.clone(),
                span: nowhere(),
            }),
            imports: self
                .imports
                .iter()
                .map(|i| Import {
                    path: i.path.clone(),
                    span: nowhere(),
                })
                .collect(),
            decls: self.decls.iter().map(decl).collect(),
        }
    }
}

fn ident(ident: &Ident) -> Ident {
    Ident {
        name: ident.name.clone(),
        span: nowhere(),
    }
}

fn decl(decl: &Decl) -> Decl {
    match decl {
        Decl::Const(c) => Decl::Const(ConstDecl {
            docs: c.docs.clone(),
            annotations: annotations(&c.annotations),
            ty: c.ty,
            ty_span: nowhere(),
            name: ident(&c.name),
            value: literal(&c.value),
        }),
        Decl::Struct(s) => Decl::Struct(StructDecl {
            docs: s.docs.clone(),
            annotations: annotations(&s.annotations),
            kind: s.kind,
            name: ident(&s.name),
            fields: s.fields.iter().map(field).collect(),
        }),
        Decl::Enum(e) => Decl::Enum(EnumDecl {
            docs: e.docs.clone(),
            annotations: annotations(&e.annotations),
            name: ident(&e.name),
            variants: e
                .variants
                .iter()
                .map(|v| VariantDecl {
                    docs: v.docs.clone(),
                    annotations: annotations(&v.annotations),
                    name: ident(&v.name),
                    value: v.value,
                    value_span: nowhere(),
                })
                .collect(),
        }),
        Decl::Service(s) => Decl::Service(ServiceDecl {
            docs: s.docs.clone(),
            annotations: annotations(&s.annotations),
            name: ident(&s.name),
            methods: s.methods.iter().map(method).collect(),
        }),
    }
}

fn method(m: &MethodDecl) -> MethodDecl {
    MethodDecl {
        docs: m.docs.clone(),
        annotations: annotations(&m.annotations),
        oneway: m.oneway.map(|_| nowhere()),
        stream: m.stream.map(|_| nowhere()),
        returns: match &m.returns {
            ReturnType::Void(_) => ReturnType::Void(nowhere()),
            ReturnType::Type(ty) => ReturnType::Type(type_expr(ty)),
        },
        name: ident(&m.name),
        params: m.params.iter().map(field).collect(),
        throws: m.throws.iter().map(type_name).collect(),
        throws_span: m.throws_span.map(|_| nowhere()),
    }
}

fn field(f: &FieldDecl) -> FieldDecl {
    FieldDecl {
        docs: f.docs.clone(),
        annotations: annotations(&f.annotations),
        tag: Tag {
            value: f.tag.value,
            span: nowhere(),
        },
        stream: f.stream.map(|_| nowhere()),
        ty: type_expr(&f.ty),
        name: ident(&f.name),
        default: f.default.as_ref().map(literal),
    }
}

fn type_expr(ty: &TypeExpr) -> TypeExpr {
    let kind = match &ty.kind {
        TypeExprKind::Scalar(s) => TypeExprKind::Scalar(*s),
        TypeExprKind::Named(name) => TypeExprKind::Named(type_name(name)),
        TypeExprKind::List(element) => TypeExprKind::List(Box::new(type_expr(element))),
        TypeExprKind::Map(key, value) => {
            TypeExprKind::Map(Box::new(type_expr(key)), Box::new(type_expr(value)))
        }
        TypeExprKind::Optional(inner) => TypeExprKind::Optional(Box::new(type_expr(inner))),
    };
    TypeExpr {
        kind,
        span: nowhere(),
    }
}

fn type_name(name: &TypeName) -> TypeName {
    TypeName {
        package: name.package.clone(),
        name: name.name.clone(),
        span: nowhere(),
    }
}

fn annotations(annotations: &[Annotation]) -> Vec<Annotation> {
    annotations
        .iter()
        .map(|a| Annotation {
            name: ident(&a.name),
            args: a
                .args
                .iter()
                .map(|arg| AnnotationArg {
                    key: arg.key.as_ref().map(ident),
                    value: literal(&arg.value),
                })
                .collect(),
            span: nowhere(),
        })
        .collect()
}

fn literal(literal: &Literal) -> Literal {
    Literal {
        kind: literal.kind.clone(),
        span: nowhere(),
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::parse;

    #[test]
    fn layout_does_not_matter() {
        let a = parse("struct A { 1: list<u32> x = 5 @a(b = 1); }").file;
        let b = parse("struct   A {\n  1 : list< u32 >  x @a( b = 1, ) = 5 ;\n}\n").file;
        assert_ne!(a, b);
        assert_eq!(a.without_spans(), b.without_spans());
        let c = parse("struct A { 1: list<u32> y = 5 @a(b = 1); }").file;
        assert_ne!(a.without_spans(), c.without_spans());
    }
}
