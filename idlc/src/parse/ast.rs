//! The syntax tree of one `.rpc` file, as written: nothing is resolved or
//! checked yet. Every name, type, tag, value and annotation carries its span
//! (byte offsets into the file).

use miette::SourceSpan;

pub use crate::model::Scalar;

/// Doc comment lines (`///`), without the slashes, one leading space and
/// trailing whitespace.
pub type Docs = Vec<String>;

/// A parsed file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct File {
    /// `package a.b;`, if given.
    pub package: Option<Package>,
    /// `import "x.rpc";` statements, in order.
    pub imports: Vec<Import>,
    /// Every other declaration, in order.
    pub decls: Vec<Decl>,
}

/// A name with its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The name as written.
    pub name: String,
    /// Where.
    pub span: SourceSpan,
}

/// `package a.b;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The dotted name.
    pub name: String,
    /// The name's span.
    pub span: SourceSpan,
}

/// `import "path";`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The path, escapes resolved.
    pub path: String,
    /// The string literal's span.
    pub span: SourceSpan,
}

/// A top-level declaration other than `package` and `import`.
#[derive(Debug, Clone, PartialEq)]
pub enum Decl {
    /// `const T NAME = value;`
    Const(ConstDecl),
    /// `struct`, `error` or `union`.
    Struct(StructDecl),
    /// `enum`.
    Enum(EnumDecl),
    /// `service`.
    Service(ServiceDecl),
}

impl Decl {
    /// The declared name.
    pub fn name(&self) -> &Ident {
        match self {
            Decl::Const(c) => &c.name,
            Decl::Struct(s) => &s.name,
            Decl::Enum(e) => &e.name,
            Decl::Service(s) => &s.name,
        }
    }
}

/// `@name` or `@name(key = value, value, ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// The name, without `@`.
    pub name: Ident,
    /// The arguments (empty without parentheses).
    pub args: Vec<AnnotationArg>,
    /// The whole annotation.
    pub span: SourceSpan,
}

/// One annotation argument.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotationArg {
    /// `key` of `key = value`; `None` for a positional argument.
    pub key: Option<Ident>,
    /// The value.
    pub value: Literal,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    /// What it is.
    pub kind: LiteralKind,
    /// Where.
    pub span: SourceSpan,
}

/// The kinds of literal.
#[derive(Debug, Clone, PartialEq)]
pub enum LiteralKind {
    /// `true` / `false`.
    Bool(bool),
    /// An integer (decimal or hex, maybe negative).
    Int(i128),
    /// A float.
    Float(f64),
    /// A string, escapes resolved.
    String(String),
    /// A bare identifier (an enum variant name).
    Ident(String),
}

/// `const u32 MAX = 100;`
#[derive(Debug, Clone, PartialEq)]
pub struct ConstDecl {
    /// Doc comment.
    pub docs: Docs,
    /// Annotations.
    pub annotations: Vec<Annotation>,
    /// The scalar type.
    pub ty: Scalar,
    /// The type's span.
    pub ty_span: SourceSpan,
    /// The name.
    pub name: Ident,
    /// The value.
    pub value: Literal,
}

/// Which keyword introduced a [`StructDecl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructKind {
    /// `struct`
    Struct,
    /// `error`
    Error,
    /// `union`
    Union,
}

/// `struct`, `error` or `union` with fields.
#[derive(Debug, Clone, PartialEq)]
pub struct StructDecl {
    /// Doc comment.
    pub docs: Docs,
    /// Annotations.
    pub annotations: Vec<Annotation>,
    /// The keyword.
    pub kind: StructKind,
    /// The name.
    pub name: Ident,
    /// Fields (union arms), in order.
    pub fields: Vec<FieldDecl>,
}

/// A field, a union arm or a method parameter:
/// `1: u32 quantity = 1;`, `1: stream Chunk chunks`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDecl {
    /// Doc comment.
    pub docs: Docs,
    /// Annotations before the tag and after the name, in order.
    pub annotations: Vec<Annotation>,
    /// The tag.
    pub tag: Tag,
    /// The span of `stream` in a stream parameter (`1: stream Chunk
    /// chunks`); always `None` for fields and union arms, which cannot
    /// stream.
    pub stream: Option<SourceSpan>,
    /// The type.
    pub ty: TypeExpr,
    /// The name.
    pub name: Ident,
    /// `= value`, if given.
    pub default: Option<Literal>,
}

/// A field tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The number as written.
    pub value: i128,
    /// Where.
    pub span: SourceSpan,
}

/// A type as written.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeExpr {
    /// What it is.
    pub kind: TypeExprKind,
    /// The whole type.
    pub span: SourceSpan,
}

/// The kinds of type expression.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeExprKind {
    /// A built-in scalar.
    Scalar(Scalar),
    /// `Name` or `package.Name`.
    Named(TypeName),
    /// `list<T>`.
    List(Box<TypeExpr>),
    /// `map<K, V>`.
    Map(Box<TypeExpr>, Box<TypeExpr>),
    /// `optional T`.
    Optional(Box<TypeExpr>),
}

/// A reference to a declared type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeName {
    /// The package qualifier (`common` of `common.Money`).
    pub package: Option<String>,
    /// The type's name.
    pub name: String,
    /// The whole reference.
    pub span: SourceSpan,
}

impl TypeName {
    /// The reference as written: `package.Name` or `Name`.
    pub fn written(&self) -> String {
        match &self.package {
            Some(package) => format!("{package}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// `enum Name { A = 0; ... }`
#[derive(Debug, Clone, PartialEq)]
pub struct EnumDecl {
    /// Doc comment.
    pub docs: Docs,
    /// Annotations.
    pub annotations: Vec<Annotation>,
    /// The name.
    pub name: Ident,
    /// Variants, in order.
    pub variants: Vec<VariantDecl>,
}

/// `PENDING = 0;`
#[derive(Debug, Clone, PartialEq)]
pub struct VariantDecl {
    /// Doc comment.
    pub docs: Docs,
    /// Annotations.
    pub annotations: Vec<Annotation>,
    /// The name.
    pub name: Ident,
    /// The number as written.
    pub value: i128,
    /// The number's span.
    pub value_span: SourceSpan,
}

/// `service Name { ... }`
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDecl {
    /// Doc comment.
    pub docs: Docs,
    /// Annotations.
    pub annotations: Vec<Annotation>,
    /// The name.
    pub name: Ident,
    /// Methods, in order.
    pub methods: Vec<MethodDecl>,
}

/// `[oneway] [stream] Result name(params) [throws E, ...];`
#[derive(Debug, Clone, PartialEq)]
pub struct MethodDecl {
    /// Doc comment.
    pub docs: Docs,
    /// Annotations.
    pub annotations: Vec<Annotation>,
    /// The span of `oneway`, if given.
    pub oneway: Option<SourceSpan>,
    /// The span of `stream` before the result (`stream Quote watch(..)`),
    /// if given: [`MethodDecl::returns`] is then the type of the items.
    pub stream: Option<SourceSpan>,
    /// The result (of a `stream` result: the item type, `void` included,
    /// which the checker rejects).
    pub returns: ReturnType,
    /// The name.
    pub name: Ident,
    /// Parameters, in order.
    pub params: Vec<FieldDecl>,
    /// The `throws` list (empty without `throws`).
    pub throws: Vec<TypeName>,
    /// The whole `throws` clause, if given.
    pub throws_span: Option<SourceSpan>,
}

/// A method's result.
#[derive(Debug, Clone, PartialEq)]
pub enum ReturnType {
    /// `void`, with its span.
    Void(SourceSpan),
    /// A type.
    Type(TypeExpr),
}
