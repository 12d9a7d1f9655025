//! pest pairs to the AST. Positions are mapped once here into
//! [`SourceSpan`]s (absolute: `base` is where the parsed slice starts).
//! Literals are decoded here, so bad escapes and oversized numbers are
//! reported with their exact spans. Nothing here can panic: a parse tree of
//! an unexpected shape becomes an internal syntax diagnostic.

use miette::SourceSpan;
use pest::iterators::Pair;

use super::ast::*;
use super::grammar::Rule;
use crate::diagnostic::DiagnosticKind;
use crate::source::span;

/// One lowered top-level declaration.
pub(crate) enum Lowered {
    Package(Package),
    Import(Import),
    Decl(Decl),
}

/// Lowers pairs of a slice that starts at byte `base` of the file.
pub(crate) struct Lower<'a> {
    pub base: usize,
    pub diagnostics: &'a mut Vec<DiagnosticKind>,
}

type P<'i> = Pair<'i, Rule>;

impl Lower<'_> {
    fn span(&self, pair: &P<'_>) -> SourceSpan {
        let s = pair.as_span();
        span(self.base + s.start(), self.base + s.end())
    }

    fn ident(&self, pair: &P<'_>) -> Ident {
        Ident {
            name: pair.as_str().to_owned(),
            span: self.span(pair),
        }
    }

    fn internal(&mut self, pair: &P<'_>, what: &str) {
        self.diagnostics.push(DiagnosticKind::Syntax {
            message: format!("internal parser error: malformed {what}"),
            label: "here".to_owned(),
            span: self.span(pair),
            help: Some("please report this as an idlc bug".to_owned()),
        });
    }

    /// Lowers the child of a `decl_step` pair (`None` at end of input).
    pub(crate) fn decl_step(&mut self, step: P<'_>) -> Option<Lowered> {
        let pair = step.into_inner().find(|p| p.as_rule() != Rule::EOI)?;
        match pair.as_rule() {
            Rule::package_decl => self.package(pair).map(Lowered::Package),
            Rule::import_decl => self.import(pair).map(Lowered::Import),
            Rule::const_decl => self.const_decl(pair).map(|d| Lowered::Decl(Decl::Const(d))),
            Rule::struct_decl => self
                .struct_decl(pair)
                .map(|d| Lowered::Decl(Decl::Struct(d))),
            Rule::enum_decl => self.enum_decl(pair).map(|d| Lowered::Decl(Decl::Enum(d))),
            Rule::service_decl => self
                .service_decl(pair)
                .map(|d| Lowered::Decl(Decl::Service(d))),
            _ => {
                self.internal(&pair, "declaration");
                None
            }
        }
    }

    fn package(&mut self, pair: P<'_>) -> Option<Package> {
        let outer = pair.clone();
        match pair
            .into_inner()
            .find(|p| p.as_rule() == Rule::package_path)
        {
            Some(path) => Some(Package {
                name: path.as_str().to_owned(),
                span: self.span(&path),
            }),
            None => {
                self.internal(&outer, "package declaration");
                None
            }
        }
    }

    fn import(&mut self, pair: P<'_>) -> Option<Import> {
        let outer = pair.clone();
        let Some(lit) = pair.into_inner().find(|p| p.as_rule() == Rule::string_lit) else {
            self.internal(&outer, "import");
            return None;
        };
        let span = self.span(&lit);
        let path = self.string(lit)?;
        Some(Import { path, span })
    }

    fn const_decl(&mut self, pair: P<'_>) -> Option<ConstDecl> {
        let outer = pair.clone();
        let (mut docs, mut annotations) = (Vec::new(), Vec::new());
        let (mut ty, mut name, mut value) = (None, None, None);
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => docs.push(doc_line(child.as_str())),
                Rule::annotation => annotations.extend(self.annotation(child)),
                Rule::scalar_type => ty = scalar(child.as_str()).map(|s| (s, self.span(&child))),
                Rule::ident => name = Some(self.ident(&child)),
                Rule::value => value = Some(self.value(child)?),
                _ => {}
            }
        }
        match (ty, name, value) {
            (Some((ty, ty_span)), Some(name), Some(value)) => Some(ConstDecl {
                docs,
                annotations,
                ty,
                ty_span,
                name,
                value,
            }),
            _ => {
                self.internal(&outer, "constant");
                None
            }
        }
    }

    fn struct_decl(&mut self, pair: P<'_>) -> Option<StructDecl> {
        let outer = pair.clone();
        let (mut docs, mut annotations, mut fields) = (Vec::new(), Vec::new(), Vec::new());
        let (mut kind, mut name) = (None, None);
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => docs.push(doc_line(child.as_str())),
                Rule::annotation => annotations.extend(self.annotation(child)),
                Rule::struct_keyword => {
                    kind = match child.as_str() {
                        "struct" => Some(StructKind::Struct),
                        "error" => Some(StructKind::Error),
                        "union" => Some(StructKind::Union),
                        _ => None,
                    }
                }
                Rule::type_name => name = Some(self.ident(&child)),
                Rule::field => fields.extend(self.field(child)),
                _ => {}
            }
        }
        match (kind, name) {
            (Some(kind), Some(name)) => Some(StructDecl {
                docs,
                annotations,
                kind,
                name,
                fields,
            }),
            _ => {
                self.internal(&outer, "struct");
                None
            }
        }
    }

    /// A `field` or a `param`.
    fn field(&mut self, pair: P<'_>) -> Option<FieldDecl> {
        let outer = pair.clone();
        let (mut docs, mut annotations) = (Vec::new(), Vec::new());
        let (mut tag, mut ty, mut name, mut default) = (None, None, None, None);
        let mut stream = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => docs.push(doc_line(child.as_str())),
                Rule::annotation => annotations.extend(self.annotation(child)),
                Rule::kw_stream => stream = Some(self.span(&child)),
                Rule::tag => {
                    let Some(int) = child.into_inner().next() else {
                        self.internal(&outer, "tag");
                        return None;
                    };
                    let span = self.span(&int);
                    tag = Some(Tag {
                        value: self.int(&int)?,
                        span,
                    });
                }
                Rule::field_type => ty = Some(self.field_type(child)?),
                Rule::ident => name = Some(self.ident(&child)),
                Rule::default_value => {
                    let Some(value) = child.into_inner().find(|p| p.as_rule() == Rule::value)
                    else {
                        self.internal(&outer, "default value");
                        return None;
                    };
                    default = Some(self.value(value)?);
                }
                _ => {}
            }
        }
        match (tag, ty, name) {
            (Some(tag), Some(ty), Some(name)) => Some(FieldDecl {
                docs,
                annotations,
                tag,
                stream,
                ty,
                name,
                default,
            }),
            _ => {
                self.internal(&outer, "field");
                None
            }
        }
    }

    fn field_type(&mut self, pair: P<'_>) -> Option<TypeExpr> {
        let outer = pair.clone();
        let whole = self.span(&pair);
        let mut optional = false;
        let mut inner = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::kw_optional => optional = true,
                Rule::scalar_type => {
                    inner = scalar(child.as_str()).map(|s| TypeExpr {
                        kind: TypeExprKind::Scalar(s),
                        span: self.span(&child),
                    })
                }
                Rule::type_path => {
                    let name = self.type_path(&child);
                    inner = Some(TypeExpr {
                        span: name.span,
                        kind: TypeExprKind::Named(name),
                    });
                }
                Rule::list_type => {
                    let span = self.span(&child);
                    let mut args = self.type_args(child)?;
                    inner = match (args.pop(), args.pop()) {
                        (Some(element), None) => Some(TypeExpr {
                            kind: TypeExprKind::List(Box::new(element)),
                            span,
                        }),
                        _ => None,
                    };
                }
                Rule::map_type => {
                    let span = self.span(&child);
                    let mut args = self.type_args(child)?;
                    inner = match (args.pop(), args.pop(), args.pop()) {
                        (Some(value), Some(key), None) => Some(TypeExpr {
                            kind: TypeExprKind::Map(Box::new(key), Box::new(value)),
                            span,
                        }),
                        _ => None,
                    };
                }
                _ => {}
            }
        }
        let Some(inner) = inner else {
            self.internal(&outer, "type");
            return None;
        };
        Some(if optional {
            TypeExpr {
                kind: TypeExprKind::Optional(Box::new(inner)),
                span: whole,
            }
        } else {
            inner
        })
    }

    /// The `field_type` children of a `list_type` or `map_type`. Depth is
    /// bounded by the prescan, so this recursion is too.
    fn type_args(&mut self, pair: P<'_>) -> Option<Vec<TypeExpr>> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::field_type)
            .map(|p| self.field_type(p))
            .collect()
    }

    fn type_path(&self, pair: &P<'_>) -> TypeName {
        let text = pair.as_str();
        let (package, name) = match text.rsplit_once('.') {
            Some((package, name)) => (Some(package.to_owned()), name.to_owned()),
            None => (None, text.to_owned()),
        };
        TypeName {
            package,
            name,
            span: self.span(pair),
        }
    }

    fn enum_decl(&mut self, pair: P<'_>) -> Option<EnumDecl> {
        let outer = pair.clone();
        let (mut docs, mut annotations, mut variants) = (Vec::new(), Vec::new(), Vec::new());
        let mut name = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => docs.push(doc_line(child.as_str())),
                Rule::annotation => annotations.extend(self.annotation(child)),
                Rule::type_name => name = Some(self.ident(&child)),
                Rule::variant => variants.extend(self.variant(child)),
                _ => {}
            }
        }
        let Some(name) = name else {
            self.internal(&outer, "enum");
            return None;
        };
        Some(EnumDecl {
            docs,
            annotations,
            name,
            variants,
        })
    }

    fn variant(&mut self, pair: P<'_>) -> Option<VariantDecl> {
        let outer = pair.clone();
        let (mut docs, mut annotations) = (Vec::new(), Vec::new());
        let (mut name, mut value) = (None, None);
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => docs.push(doc_line(child.as_str())),
                Rule::annotation => annotations.extend(self.annotation(child)),
                Rule::ident => name = Some(self.ident(&child)),
                Rule::int_lit => value = Some((self.int(&child)?, self.span(&child))),
                _ => {}
            }
        }
        match (name, value) {
            (Some(name), Some((value, value_span))) => Some(VariantDecl {
                docs,
                annotations,
                name,
                value,
                value_span,
            }),
            _ => {
                self.internal(&outer, "enum variant");
                None
            }
        }
    }

    fn service_decl(&mut self, pair: P<'_>) -> Option<ServiceDecl> {
        let outer = pair.clone();
        let (mut docs, mut annotations, mut methods) = (Vec::new(), Vec::new(), Vec::new());
        let mut name = None;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => docs.push(doc_line(child.as_str())),
                Rule::annotation => annotations.extend(self.annotation(child)),
                Rule::type_name => name = Some(self.ident(&child)),
                Rule::method => methods.extend(self.method(child)),
                _ => {}
            }
        }
        let Some(name) = name else {
            self.internal(&outer, "service");
            return None;
        };
        Some(ServiceDecl {
            docs,
            annotations,
            name,
            methods,
        })
    }

    fn method(&mut self, pair: P<'_>) -> Option<MethodDecl> {
        let outer = pair.clone();
        let (mut docs, mut annotations, mut params) = (Vec::new(), Vec::new(), Vec::new());
        let (mut oneway, mut stream, mut returns, mut name) = (None, None, None, None);
        let (mut throws, mut throws_span) = (Vec::new(), None);
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::doc => docs.push(doc_line(child.as_str())),
                Rule::annotation => annotations.extend(self.annotation(child)),
                Rule::kw_oneway => oneway = Some(self.span(&child)),
                Rule::return_type => {
                    for part in child.into_inner() {
                        match part.as_rule() {
                            Rule::kw_stream => stream = Some(self.span(&part)),
                            Rule::field_type => {
                                returns = Some(ReturnType::Type(self.field_type(part)?));
                            }
                            Rule::kw_void => returns = Some(ReturnType::Void(self.span(&part))),
                            _ => {}
                        }
                    }
                }
                Rule::ident => name = Some(self.ident(&child)),
                Rule::param_list => {
                    for param in child.into_inner().filter(|p| p.as_rule() == Rule::param) {
                        params.extend(self.field(param));
                    }
                }
                Rule::throws_clause => {
                    throws_span = Some(self.span(&child));
                    throws = child
                        .into_inner()
                        .filter(|p| p.as_rule() == Rule::type_path)
                        .map(|p| self.type_path(&p))
                        .collect();
                }
                _ => {}
            }
        }
        match (returns, name) {
            (Some(returns), Some(name)) => Some(MethodDecl {
                docs,
                annotations,
                oneway,
                stream,
                returns,
                name,
                params,
                throws,
                throws_span,
            }),
            _ => {
                self.internal(&outer, "method");
                None
            }
        }
    }

    fn annotation(&mut self, pair: P<'_>) -> Option<Annotation> {
        let outer = pair.clone();
        // The pair also covers whitespace after a bare `@name`; the span
        // ends at the name or the closing parenthesis.
        let start = self.base + pair.as_span().start();
        let mut end = start;
        let (mut name, mut args) = (None, Vec::new());
        for child in pair.into_inner() {
            end = end.max(self.base + child.as_span().end());
            match child.as_rule() {
                Rule::at_name => {
                    name = child
                        .clone()
                        .into_inner()
                        .find(|p| p.as_rule() == Rule::ident)
                        .map(|ident| Ident {
                            name: ident.as_str().to_owned(),
                            span: self.span(&child),
                        });
                }
                Rule::annotation_args => {
                    for arg in child
                        .into_inner()
                        .filter(|p| p.as_rule() == Rule::annotation_arg)
                    {
                        args.extend(self.annotation_arg(arg));
                    }
                }
                _ => {}
            }
        }
        let Some(name) = name else {
            self.internal(&outer, "annotation");
            return None;
        };
        Some(Annotation {
            name,
            args,
            span: span(start, end),
        })
    }

    fn annotation_arg(&mut self, pair: P<'_>) -> Option<AnnotationArg> {
        let outer = pair.clone();
        let (mut key, mut value) = (None, None);
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::ident => key = Some(self.ident(&child)),
                Rule::value => value = Some(self.value(child)?),
                _ => {}
            }
        }
        let Some(value) = value else {
            self.internal(&outer, "annotation argument");
            return None;
        };
        Some(AnnotationArg { key, value })
    }

    fn value(&mut self, pair: P<'_>) -> Option<Literal> {
        let outer = pair.clone();
        let Some(inner) = pair.into_inner().next() else {
            self.internal(&outer, "value");
            return None;
        };
        let span = self.span(&inner);
        let kind = match inner.as_rule() {
            Rule::int_lit => LiteralKind::Int(self.int(&inner)?),
            Rule::float_lit => LiteralKind::Float(self.float(&inner)?),
            Rule::bool_lit => LiteralKind::Bool(inner.as_str() == "true"),
            Rule::string_lit => LiteralKind::String(self.string(inner)?),
            Rule::ident => LiteralKind::Ident(inner.as_str().to_owned()),
            _ => {
                self.internal(&outer, "value");
                return None;
            }
        };
        Some(Literal { kind, span })
    }

    fn int(&mut self, pair: &P<'_>) -> Option<i128> {
        let text = pair.as_str();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let parsed = match digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            Some(hex) => i128::from_str_radix(hex, 16),
            None => digits.parse::<i128>(),
        };
        match parsed {
            Ok(value) => Some(if negative { -value } else { value }),
            Err(_) => {
                self.diagnostics.push(DiagnosticKind::Syntax {
                    message: format!("integer literal `{text}` is too large"),
                    label: "too large".to_owned(),
                    span: self.span(pair),
                    help: None,
                });
                None
            }
        }
    }

    fn float(&mut self, pair: &P<'_>) -> Option<f64> {
        match pair.as_str().parse::<f64>() {
            Ok(value) if value.is_finite() => Some(value),
            _ => {
                self.diagnostics.push(DiagnosticKind::Syntax {
                    message: format!("float literal `{}` is out of range", pair.as_str()),
                    label: "out of range".to_owned(),
                    span: self.span(pair),
                    help: None,
                });
                None
            }
        }
    }

    /// Decodes a `string_lit` pair.
    fn string(&mut self, pair: P<'_>) -> Option<String> {
        let outer = pair.clone();
        let Some(body) = pair.into_inner().find(|p| p.as_rule() == Rule::string_body) else {
            self.internal(&outer, "string");
            return None;
        };
        let start = self.base + body.as_span().start();
        match unescape(body.as_str(), start) {
            Ok(text) => Some(text),
            Err(diagnostic) => {
                self.diagnostics.push(diagnostic);
                None
            }
        }
    }
}

/// A `///` line without the slashes, one leading space and trailing
/// whitespace.
fn doc_line(text: &str) -> String {
    let line = text.strip_prefix("///").unwrap_or(text);
    let line = line.strip_prefix(' ').unwrap_or(line);
    line.trim_end().to_owned()
}

fn scalar(text: &str) -> Option<Scalar> {
    Some(match text {
        "bool" => Scalar::Bool,
        "i32" => Scalar::I32,
        "i64" => Scalar::I64,
        "u32" => Scalar::U32,
        "u64" => Scalar::U64,
        "f32" => Scalar::F32,
        "f64" => Scalar::F64,
        "string" => Scalar::String,
        "bytes" => Scalar::Bytes,
        _ => return None,
    })
}

/// Resolves `\" \\ \n \t \u{...}` in a string body that starts at byte
/// `start` of the file.
fn unescape(raw: &str, start: usize) -> Result<String, DiagnosticKind> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escape_error = |end: usize, message: String| DiagnosticKind::Syntax {
            message,
            label: "invalid escape".to_owned(),
            span: span(start + i, start + end),
            help: Some(
                "the escapes are `\\\"`, `\\\\`, `\\n`, `\\t` and `\\u{...}` (1 to 6 hex digits)"
                    .to_owned(),
            ),
        };
        match chars.next() {
            Some((_, '"')) => out.push('"'),
            Some((_, '\\')) => out.push('\\'),
            Some((_, 'n')) => out.push('\n'),
            Some((_, 't')) => out.push('\t'),
            Some((j, 'u')) => {
                let rest = &raw[j + 1..];
                let close = rest.find('}');
                let digits = match (rest.strip_prefix('{'), close) {
                    (Some(_), Some(close)) => &rest[1..close],
                    _ => {
                        return Err(escape_error(
                            j + 1,
                            "`\\u` must be followed by `{hex digits}`".to_owned(),
                        ));
                    }
                };
                let end = j + 1 + close.unwrap_or(0) + 1;
                let valid_digits = !digits.is_empty()
                    && digits.len() <= 6
                    && digits.chars().all(|d| d.is_ascii_hexdigit());
                let ch = valid_digits
                    .then(|| u32::from_str_radix(digits, 16).ok())
                    .flatten()
                    .and_then(char::from_u32);
                match ch {
                    Some(ch) => out.push(ch),
                    None => {
                        return Err(escape_error(
                            end,
                            format!("`\\u{{{digits}}}` is not a Unicode scalar value"),
                        ));
                    }
                }
                while chars.peek().is_some_and(|&(k, _)| k < end) {
                    chars.next();
                }
            }
            Some((j, other)) => {
                return Err(escape_error(
                    j + other.len_utf8(),
                    format!("unknown escape `\\{other}`"),
                ));
            }
            None => return Err(escape_error(i + 1, "unfinished escape".to_owned())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn escapes() {
        assert_eq!(
            unescape(r#"a\"b\\c\nd\te\u{1F600}\u{41}"#, 0).ok(),
            Some("a\"b\\c\nd\te\u{1F600}A".to_owned())
        );
        assert!(unescape(r"\q", 0).is_err());
        assert!(unescape(r"\u{D800}", 0).is_err());
        assert!(unescape(r"\u{1234567}", 0).is_err());
        assert!(unescape(r"\u41", 0).is_err());
        assert!(unescape(r"\u{}", 0).is_err());
        assert!(unescape("\\", 0).is_err());
    }
}
