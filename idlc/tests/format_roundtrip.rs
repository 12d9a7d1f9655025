//! Property tests of `idlc fmt`: random valid syntax trees are written out
//! with random layout (spaces, line breaks, tabs, blank lines) and random
//! comments between tokens; formatting that text must give text that
//! parses back to the same tree (spans aside), keeps every comment in
//! order, and is its own formatting (idempotence).

use idlc::format::format_source;
use idlc::parse::ast::*;
use idlc::parse::parse;
use idlc::source::span;
use proptest::prelude::*;

const RESERVED: &[&str] = &[
    "bool", "i32", "i64", "u32", "u64", "f32", "f64", "string", "bytes", "list", "map", "optional",
    "void", "struct", "error", "enum", "union", "service", "const", "import", "package", "oneway",
    "throws", "true", "false",
];

const SCALARS: &[(&str, Scalar)] = &[
    ("bool", Scalar::Bool),
    ("i32", Scalar::I32),
    ("i64", Scalar::I64),
    ("u32", Scalar::U32),
    ("u64", Scalar::U64),
    ("f32", Scalar::F32),
    ("f64", Scalar::F64),
    ("string", Scalar::String),
    ("bytes", Scalar::Bytes),
];

// ------------------------------------------------------------ generation

/// A name that is not a keyword (type names, literal identifiers).
fn plain_name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,6}".prop_filter("not a keyword", |s| !RESERVED.contains(&s.as_str()))
}

/// A name of a field, parameter, method, variant, constant or annotation:
/// keywords are legal there, and so is the contextual `stream`.
fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => plain_name(),
        2 => proptest::sample::select(RESERVED).prop_map(str::to_owned),
        1 => Just("stream".to_owned()),
    ]
}

/// A name of a declared type: `stream` is one too.
fn declared_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => plain_name(),
        1 => Just("stream".to_owned()),
    ]
}

fn ident(name: String) -> Ident {
    Ident {
        name,
        span: span(0, 0),
    }
}

/// A literal: its spelling and what the parser makes of it.
fn literal() -> impl Strategy<Value = (String, LiteralKind)> {
    let int = int_literal().prop_map(|(text, value)| (text, LiteralKind::Int(value)));
    let float = (
        any::<bool>(),
        0u32..100_000,
        0u32..1000,
        proptest::option::of(-40i32..40),
    )
        .prop_map(|(negative, whole, fraction, exponent)| {
            let sign = if negative { "-" } else { "" };
            let text = match exponent {
                Some(e) if fraction % 2 == 0 => format!("{sign}{whole}e{e}"),
                Some(e) => format!("{sign}{whole}.{fraction}E{e:+}"),
                None => format!("{sign}{whole}.{fraction}"),
            };
            let value: f64 = text.parse().unwrap_or_default();
            (text, LiteralKind::Float(value))
        });
    let string = proptest::collection::vec(
        prop_oneof![
            "[a-z ]{1,4}".prop_map(|s| (s.clone(), s)),
            Just(("\\\"".to_owned(), "\"".to_owned())),
            Just(("\\\\".to_owned(), "\\".to_owned())),
            Just(("\\n".to_owned(), "\n".to_owned())),
            Just(("\\t".to_owned(), "\t".to_owned())),
            Just(("\\u{1F600}".to_owned(), "\u{1F600}".to_owned())),
            Just(("é/*//".to_owned(), "é/*//".to_owned())),
        ],
        0..4,
    )
    .prop_map(|pieces| {
        let text: String = pieces.iter().map(|(t, _)| t.as_str()).collect();
        let value: String = pieces.iter().map(|(_, v)| v.as_str()).collect();
        (format!("\"{text}\""), LiteralKind::String(value))
    });
    prop_oneof![
        any::<bool>().prop_map(|b| (b.to_string(), LiteralKind::Bool(b))),
        int,
        float,
        string,
        plain_name().prop_map(|name| (name.clone(), LiteralKind::Ident(name))),
    ]
}

/// An integer literal in decimal or hex, maybe negative.
fn int_literal() -> impl Strategy<Value = (String, i128)> {
    (any::<bool>(), 0u8..3, any::<u64>(), 0u64..30).prop_map(|(negative, form, big, small)| {
        let magnitude = if form == 2 { big } else { small };
        let sign = if negative { "-" } else { "" };
        let text = match form {
            0 => format!("{sign}{magnitude}"),
            1 => format!("{sign}0x{magnitude:x}"),
            _ => format!("{sign}0X{magnitude:X}"),
        };
        let value = i128::from(magnitude);
        (text, if negative { -value } else { value })
    })
}

/// An annotation, its spelling, and whether empty parentheses are
/// written / a trailing comma is added.
#[derive(Debug, Clone)]
struct GenAnnotation {
    annotation: Annotation,
    /// `(key, value)` spellings.
    args_text: Vec<(Option<String>, String)>,
    empty_parens: bool,
    trailing_comma: bool,
}

fn annotation() -> impl Strategy<Value = GenAnnotation> {
    (
        member_name(),
        proptest::collection::vec((proptest::option::of(member_name()), literal()), 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(name, args, empty_parens, trailing_comma)| {
            let args_text = args
                .iter()
                .map(|(key, (text, _))| (key.clone(), text.clone()))
                .collect();
            let args = args
                .into_iter()
                .map(|(key, (_, kind))| AnnotationArg {
                    key: key.map(ident),
                    value: Literal {
                        kind,
                        span: span(0, 0),
                    },
                })
                .collect();
            GenAnnotation {
                annotation: Annotation {
                    name: ident(name),
                    args,
                    span: span(0, 0),
                },
                args_text,
                empty_parens,
                trailing_comma,
            }
        })
}

fn docs() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("( ?[a-z*/]{1,6}( [a-z]{1,4})?)?", 0..3)
}

fn type_name() -> impl Strategy<Value = TypeName> {
    (
        proptest::collection::vec(plain_name(), 0..3),
        declared_name(),
    )
        .prop_map(|(package, name)| TypeName {
            package: (!package.is_empty()).then(|| package.join(".")),
            name,
            span: span(0, 0),
        })
}

fn type_expr() -> impl Strategy<Value = TypeExpr> {
    let leaf = prop_oneof![
        proptest::sample::select(SCALARS).prop_map(|(_, s)| TypeExprKind::Scalar(s)),
        type_name().prop_map(TypeExprKind::Named),
    ]
    .prop_map(|kind| TypeExpr {
        kind,
        span: span(0, 0),
    });
    leaf.prop_recursive(3, 12, 2, |inner| {
        let expr = |kind| TypeExpr {
            kind,
            span: span(0, 0),
        };
        prop_oneof![
            inner
                .clone()
                .prop_map(move |t| expr(TypeExprKind::List(Box::new(t)))),
            (inner.clone(), inner.clone())
                .prop_map(move |(k, v)| expr(TypeExprKind::Map(Box::new(k), Box::new(v)))),
            // `optional optional T` does not parse.
            inner.prop_map(move |t| match t.kind {
                TypeExprKind::Optional(_) => t,
                _ => expr(TypeExprKind::Optional(Box::new(t))),
            }),
        ]
    })
}

/// A field or parameter, with where its annotations are written: the first
/// `pre` before the tag, the next `mid` after the name, the rest after the
/// default value.
#[derive(Debug, Clone)]
struct GenField {
    field: FieldDecl,
    annotations: Vec<GenAnnotation>,
    tag_text: String,
    default_text: Option<String>,
    pre: usize,
    mid: usize,
}

fn field() -> impl Strategy<Value = GenField> {
    (
        docs(),
        proptest::collection::vec(annotation(), 0..3),
        int_literal(),
        type_expr(),
        member_name(),
        proptest::option::of(literal()),
        0usize..4,
        0usize..4,
    )
        .prop_map(
            |(docs, annotations, (tag_text, tag), ty, name, default, a, b)| {
                let pre = a.min(annotations.len());
                let mid = b.min(annotations.len() - pre);
                GenField {
                    field: FieldDecl {
                        docs,
                        annotations: annotations.iter().map(|a| a.annotation.clone()).collect(),
                        tag: Tag {
                            value: tag,
                            span: span(0, 0),
                        },
                        stream: None,
                        ty,
                        name: ident(name),
                        default: default.as_ref().map(|(_, kind)| Literal {
                            kind: kind.clone(),
                            span: span(0, 0),
                        }),
                    },
                    annotations,
                    tag_text,
                    default_text: default.map(|(text, _)| text),
                    pre,
                    mid,
                }
            },
        )
}

/// A parameter: a field that may be a stream parameter (`1: stream T x`).
fn param() -> impl Strategy<Value = GenField> {
    (field(), proptest::bool::weighted(0.2)).prop_map(|(mut param, stream)| {
        param.field.stream = stream.then(|| span(0, 0));
        param
    })
}

#[derive(Debug, Clone)]
struct GenVariant {
    variant: VariantDecl,
    annotations: Vec<GenAnnotation>,
    value_text: String,
    pre: usize,
}

fn variant() -> impl Strategy<Value = GenVariant> {
    (
        docs(),
        proptest::collection::vec(annotation(), 0..3),
        member_name(),
        int_literal(),
        0usize..4,
    )
        .prop_map(
            |(docs, annotations, name, (value_text, value), pre)| GenVariant {
                pre: pre.min(annotations.len()),
                variant: VariantDecl {
                    docs,
                    annotations: annotations.iter().map(|a| a.annotation.clone()).collect(),
                    name: ident(name),
                    value,
                    value_span: span(0, 0),
                },
                annotations,
                value_text,
            },
        )
}

#[derive(Debug, Clone)]
struct GenMethod {
    method: MethodDecl,
    annotations: Vec<GenAnnotation>,
    params: Vec<GenField>,
    trailing_comma: bool,
}

fn method() -> impl Strategy<Value = GenMethod> {
    (
        docs(),
        proptest::collection::vec(annotation(), 0..3),
        (any::<bool>(), proptest::bool::weighted(0.3)),
        proptest::option::of(type_expr()),
        member_name(),
        proptest::collection::vec(param(), 0..5),
        any::<bool>(),
        proptest::collection::vec(type_name(), 0..3),
    )
        .prop_map(
            |(
                docs,
                annotations,
                (oneway, stream),
                returns,
                name,
                params,
                trailing_comma,
                throws,
            )| {
                GenMethod {
                    method: MethodDecl {
                        docs,
                        annotations: annotations.iter().map(|a| a.annotation.clone()).collect(),
                        oneway: oneway.then(|| span(0, 0)),
                        stream: stream.then(|| span(0, 0)),
                        returns: match returns {
                            Some(ty) => ReturnType::Type(ty),
                            None => ReturnType::Void(span(0, 0)),
                        },
                        name: ident(name),
                        params: params.iter().map(|p| p.field.clone()).collect(),
                        throws_span: (!throws.is_empty()).then(|| span(0, 0)),
                        throws,
                    },
                    annotations,
                    trailing_comma: trailing_comma && !params.is_empty(),
                    params,
                }
            },
        )
}

#[derive(Debug, Clone)]
enum GenDecl {
    Const {
        docs: Vec<String>,
        annotations: Vec<GenAnnotation>,
        ty: (&'static str, Scalar),
        name: String,
        value: (String, LiteralKind),
    },
    Struct {
        docs: Vec<String>,
        annotations: Vec<GenAnnotation>,
        kind: StructKind,
        name: String,
        fields: Vec<GenField>,
    },
    Enum {
        docs: Vec<String>,
        annotations: Vec<GenAnnotation>,
        name: String,
        variants: Vec<GenVariant>,
    },
    Service {
        docs: Vec<String>,
        annotations: Vec<GenAnnotation>,
        name: String,
        methods: Vec<GenMethod>,
    },
}

fn decl() -> impl Strategy<Value = GenDecl> {
    let annotations = || proptest::collection::vec(annotation(), 0..3);
    prop_oneof![
        (
            docs(),
            annotations(),
            proptest::sample::select(SCALARS),
            member_name(),
            literal()
        )
            .prop_map(|(docs, annotations, ty, name, value)| GenDecl::Const {
                docs,
                annotations,
                ty,
                name,
                value,
            }),
        (
            docs(),
            annotations(),
            proptest::sample::select(
                &[StructKind::Struct, StructKind::Error, StructKind::Union][..]
            ),
            declared_name(),
            proptest::collection::vec(field(), 0..5)
        )
            .prop_map(|(docs, annotations, kind, name, fields)| GenDecl::Struct {
                docs,
                annotations,
                kind,
                name,
                fields,
            }),
        (
            docs(),
            annotations(),
            declared_name(),
            proptest::collection::vec(variant(), 0..5)
        )
            .prop_map(|(docs, annotations, name, variants)| GenDecl::Enum {
                docs,
                annotations,
                name,
                variants,
            }),
        (
            docs(),
            annotations(),
            declared_name(),
            proptest::collection::vec(method(), 0..4)
        )
            .prop_map(|(docs, annotations, name, methods)| GenDecl::Service {
                docs,
                annotations,
                name,
                methods,
            }),
    ]
}

#[derive(Debug, Clone)]
struct GenFile {
    package: Option<(Vec<String>, String)>,
    imports: Vec<(Vec<String>, String)>,
    decls: Vec<GenDecl>,
    /// Drives the layout: which separator goes between two tokens.
    layout: Vec<u8>,
}

fn file() -> impl Strategy<Value = GenFile> {
    (
        proptest::option::of((docs(), "[a-z_]{1,5}(\\.[a-z_]{1,5}){0,2}")),
        proptest::collection::vec((docs(), "[a-z_/]{1,8}\\.rpc"), 0..3),
        proptest::collection::vec(decl(), 0..6),
        proptest::collection::vec(any::<u8>(), 1..64),
    )
        .prop_map(|(package, imports, decls, layout)| GenFile {
            package,
            imports,
            decls,
            layout,
        })
}

// ------------------------------------------------------------ the tree

fn gen_annotations(annotations: &[GenAnnotation]) -> Vec<Annotation> {
    annotations.iter().map(|a| a.annotation.clone()).collect()
}

fn tree(file: &GenFile) -> File {
    let decls = file
        .decls
        .iter()
        .map(|decl| match decl {
            GenDecl::Const {
                docs,
                annotations,
                ty,
                name,
                value,
            } => Decl::Const(ConstDecl {
                docs: docs.clone(),
                annotations: gen_annotations(annotations),
                ty: ty.1,
                ty_span: span(0, 0),
                name: ident(name.clone()),
                value: Literal {
                    kind: value.1.clone(),
                    span: span(0, 0),
                },
            }),
            GenDecl::Struct {
                docs,
                annotations,
                kind,
                name,
                fields,
            } => Decl::Struct(StructDecl {
                docs: docs.clone(),
                annotations: gen_annotations(annotations),
                kind: *kind,
                name: ident(name.clone()),
                fields: fields.iter().map(|f| f.field.clone()).collect(),
            }),
            GenDecl::Enum {
                docs,
                annotations,
                name,
                variants,
            } => Decl::Enum(EnumDecl {
                docs: docs.clone(),
                annotations: gen_annotations(annotations),
                name: ident(name.clone()),
                variants: variants.iter().map(|v| v.variant.clone()).collect(),
            }),
            GenDecl::Service {
                docs,
                annotations,
                name,
                methods,
            } => Decl::Service(ServiceDecl {
                docs: docs.clone(),
                annotations: gen_annotations(annotations),
                name: ident(name.clone()),
                methods: methods.iter().map(|m| m.method.clone()).collect(),
            }),
        })
        .collect();
    File {
        package: file.package.as_ref().map(|(_, name)| Package {
            name: name.clone(),
            span: span(0, 0),
        }),
        imports: file
            .imports
            .iter()
            .map(|(_, path)| Import {
                path: path.clone(),
                span: span(0, 0),
            })
            .collect(),
        decls,
    }
}

// ------------------------------------------------------------ messy text

/// Writes tokens with a separator before each one, chosen by the layout
/// bytes; the separators include comments, numbered in order.
struct Messy {
    text: String,
    layout: Vec<u8>,
    at: usize,
    comments: usize,
}

impl Messy {
    fn next(&mut self) -> u8 {
        let byte = self.layout[self.at % self.layout.len()];
        self.at += 1;
        byte.wrapping_add((self.at / self.layout.len()) as u8)
    }

    fn comment_id(&mut self) -> usize {
        self.comments += 1;
        self.comments
    }

    fn sep(&mut self) {
        let choice = self.next() % 20;
        let sep = match choice {
            0..=7 => " ".to_owned(),
            8 => "\n".to_owned(),
            9 => "\n\n\n    ".to_owned(),
            10 => "\t".to_owned(),
            11 => " \r\n".to_owned(),
            12 => format!(" /* ~{}~ */ ", self.comment_id()),
            13 => format!("/*~{}~*/", self.comment_id()),
            14 => format!(" // ~{}~\n", self.comment_id()),
            15 => format!("\n// ~{}~\n", self.comment_id()),
            16 => format!("\n\n/* ~{}~\n   second line */\n\n", self.comment_id()),
            17 => format!(" //// ~{}~\n", self.comment_id()),
            18 => format!("\n  /** ~{}~ */ ", self.comment_id()),
            _ => "  ".to_owned(),
        };
        self.text.push_str(&sep);
    }

    fn tok(&mut self, token: &str) {
        self.sep();
        self.text.push_str(token);
    }

    fn docs(&mut self, docs: &[String]) {
        for doc in docs {
            self.sep();
            // `////` would be a plain comment.
            if !doc.starts_with([' ', '/']) && self.next() % 2 == 0 {
                self.text.push_str(&format!("///{doc}"));
            } else {
                self.text.push_str(&format!("/// {doc}"));
            }
            self.text.push('\n');
        }
    }

    fn annotation(&mut self, a: &GenAnnotation) {
        self.tok(&format!("@{}", a.annotation.name.name));
        if a.args_text.is_empty() {
            if a.empty_parens {
                self.tok("(");
                self.tok(")");
            }
            return;
        }
        self.tok("(");
        for (i, (key, value)) in a.args_text.iter().enumerate() {
            if i > 0 {
                self.tok(",");
            }
            if let Some(key) = key {
                self.tok(key);
                self.tok("=");
            }
            self.tok(value);
        }
        if a.trailing_comma {
            self.tok(",");
        }
        self.tok(")");
    }

    fn ty(&mut self, ty: &TypeExpr) {
        match &ty.kind {
            TypeExprKind::Scalar(s) => {
                let name = SCALARS
                    .iter()
                    .find(|(_, scalar)| scalar == s)
                    .map_or("u32", |(name, _)| name);
                self.tok(name);
            }
            TypeExprKind::Named(name) => self.tok(&name.written()),
            TypeExprKind::List(element) => {
                self.tok("list");
                self.tok("<");
                self.ty(element);
                self.tok(">");
            }
            TypeExprKind::Map(key, value) => {
                self.tok("map");
                self.tok("<");
                self.ty(key);
                self.tok(",");
                self.ty(value);
                self.tok(">");
            }
            TypeExprKind::Optional(inner) => {
                self.tok("optional");
                self.ty(inner);
            }
        }
    }

    fn field(&mut self, f: &GenField, semi: bool) {
        self.docs(&f.field.docs);
        let (pre, rest) = f.annotations.split_at(f.pre);
        let (mid, post) = rest.split_at(f.mid);
        for a in pre {
            self.annotation(a);
        }
        self.tok(&f.tag_text);
        self.tok(":");
        if f.field.stream.is_some() {
            self.tok("stream");
        }
        self.ty(&f.field.ty);
        self.tok(&f.field.name.name);
        for a in mid {
            self.annotation(a);
        }
        if let Some(default) = &f.default_text {
            self.tok("=");
            self.tok(default);
        }
        for a in post {
            self.annotation(a);
        }
        if semi {
            self.tok(";");
        }
    }

    fn head(&mut self, docs: &[String], annotations: &[GenAnnotation]) {
        self.docs(docs);
        for a in annotations {
            self.annotation(a);
        }
    }

    fn decl(&mut self, decl: &GenDecl) {
        match decl {
            GenDecl::Const {
                docs,
                annotations,
                ty,
                name,
                value,
            } => {
                self.head(docs, annotations);
                for token in ["const", ty.0, name, "=", &value.0, ";"] {
                    self.tok(token);
                }
            }
            GenDecl::Struct {
                docs,
                annotations,
                kind,
                name,
                fields,
            } => {
                self.head(docs, annotations);
                self.tok(match kind {
                    StructKind::Struct => "struct",
                    StructKind::Error => "error",
                    StructKind::Union => "union",
                });
                self.tok(name);
                self.tok("{");
                for f in fields {
                    self.field(f, true);
                }
                self.tok("}");
            }
            GenDecl::Enum {
                docs,
                annotations,
                name,
                variants,
            } => {
                self.head(docs, annotations);
                self.tok("enum");
                self.tok(name);
                self.tok("{");
                for v in variants {
                    self.docs(&v.variant.docs);
                    let (pre, post) = v.annotations.split_at(v.pre);
                    for a in pre {
                        self.annotation(a);
                    }
                    self.tok(&v.variant.name.name);
                    self.tok("=");
                    self.tok(&v.value_text);
                    for a in post {
                        self.annotation(a);
                    }
                    self.tok(";");
                }
                self.tok("}");
            }
            GenDecl::Service {
                docs,
                annotations,
                name,
                methods,
            } => {
                self.head(docs, annotations);
                self.tok("service");
                self.tok(name);
                self.tok("{");
                for m in methods {
                    self.method(m);
                }
                self.tok("}");
            }
        }
    }

    fn method(&mut self, m: &GenMethod) {
        self.head(&m.method.docs, &m.annotations);
        if m.method.oneway.is_some() {
            self.tok("oneway");
        }
        if m.method.stream.is_some() {
            self.tok("stream");
        }
        match &m.method.returns {
            ReturnType::Void(_) => self.tok("void"),
            ReturnType::Type(ty) => self.ty(ty),
        }
        self.tok(&m.method.name.name);
        self.tok("(");
        for (i, p) in m.params.iter().enumerate() {
            if i > 0 {
                self.tok(",");
            }
            self.field(p, false);
        }
        if m.trailing_comma {
            self.tok(",");
        }
        self.tok(")");
        for (i, name) in m.method.throws.iter().enumerate() {
            self.tok(if i == 0 { "throws" } else { "," });
            self.tok(&name.written());
        }
        self.tok(";");
    }
}

fn messy_text(file: &GenFile) -> (String, usize) {
    let mut out = Messy {
        text: String::new(),
        layout: file.layout.clone(),
        at: 0,
        comments: 0,
    };
    if let Some((docs, name)) = &file.package {
        out.docs(docs);
        out.tok("package");
        out.tok(name);
        out.tok(";");
    }
    for (docs, path) in &file.imports {
        out.docs(docs);
        out.tok("import");
        out.tok(&format!("\"{path}\""));
        out.tok(";");
    }
    for decl in &file.decls {
        out.decl(decl);
    }
    out.sep();
    (out.text, out.comments)
}

/// Whether comments `~1~` .. `~count~` appear in `text` once each, in order.
fn comments_in_order(text: &str, count: usize) -> bool {
    let mut from = 0;
    for id in 1..=count {
        let marker = format!("~{id}~");
        match text[from..].find(&marker) {
            Some(at) => from += at + marker.len(),
            None => return false,
        }
        if text.matches(&marker).count() != 1 {
            return false;
        }
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn formatting_keeps_the_tree_and_the_comments_and_is_idempotent(file in file()) {
        let expected = tree(&file).without_spans();
        let (messy, comments) = messy_text(&file);

        let parsed = parse(&messy);
        prop_assert!(parsed.errors.is_empty(), "generated text must parse: {:#?}\n{}", parsed.errors, messy);
        prop_assert_eq!(&parsed.file.without_spans(), &expected, "generator and parser disagree\n{}", messy);

        let formatted = match format_source(&messy) {
            Ok(formatted) => formatted,
            Err(diagnostics) => {
                return Err(TestCaseError::fail(format!("{diagnostics:?}\n{messy}")));
            }
        };
        let reparsed = parse(&formatted);
        prop_assert!(reparsed.errors.is_empty(), "{:#?}\n{}", reparsed.errors, formatted);
        prop_assert_eq!(&reparsed.file.without_spans(), &expected, "\n{}", formatted);
        prop_assert!(comments_in_order(&formatted, comments), "comments lost or moved:\n{}\n---\n{}", messy, formatted);

        let again = format_source(&formatted).map_err(|d| TestCaseError::fail(format!("{d:?}")))?;
        prop_assert_eq!(&again, &formatted, "not idempotent; input:\n{}", messy);
        prop_assert!(!formatted.lines().any(|line| line.ends_with(' ') || line.ends_with('\t')), "trailing whitespace:\n{}", formatted);
    }
}
