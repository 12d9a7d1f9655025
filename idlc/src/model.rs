//! The checked model: what the `check` stage produces and `codegen` reads.
//!
//! Every name here is still the IDL name as written; mapping to Rust names is
//! codegen's job. Every reference is resolved and every rule of IDL.md has
//! been checked, so codegen never has to report an error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use miette::SourceSpan;

/// One checked `.rpc` file: it becomes one generated Rust module.
#[derive(Debug, Clone, PartialEq)]
pub struct FileModel {
    /// The file this model was checked from.
    pub source: PathBuf,
    /// The name of the generated module (and output file): the file stem.
    pub module_name: String,
    /// The name its embedded source goes by: `/`-separated and relative
    /// (`hello.rpc`, `common/money.rpc`), never an absolute path. A file
    /// named to idlc is its file name; an imported file is named so that
    /// every `import` resolves in the tree of names as idlc resolved it.
    pub idl_name: String,
    /// The file's text, as read.
    pub text: Arc<str>,
    /// The module names of every file it imports, transitively, each once,
    /// breadth first in import order (itself excluded).
    pub imports: Vec<String>,
    /// The dotted `package` declaration, if any.
    pub package: Option<String>,
    /// Constants, in declaration order.
    pub constants: Vec<ConstDef>,
    /// Structs, errors, enums and unions, in declaration order.
    pub types: Vec<TypeDef>,
    /// Services, in declaration order.
    pub services: Vec<Service>,
    /// Where each declaration is in [`FileModel::text`] (for tools that
    /// point at the source, such as `idlc compat`; codegen ignores it).
    pub spans: DeclSpans,
    /// Every Rust identifier codegen writes for this file, filled by
    /// `check` (which reports the clashes generated code cannot avoid);
    /// codegen takes its names from here.
    pub rust_names: crate::rust_names::RustNames,
}

/// Doc comment lines (`///`), without the slashes and one leading space.
pub type Docs = Vec<String>;

/// A named type declared in a file.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeDef {
    /// A `struct` or an `error` (see [`StructDef::is_error`]).
    Struct(StructDef),
    /// An `enum`.
    Enum(EnumDef),
    /// A `union`: exactly one of its arms is set.
    Union(UnionDef),
}

impl TypeDef {
    /// The IDL name of the type.
    pub fn name(&self) -> &str {
        match self {
            TypeDef::Struct(s) => &s.name,
            TypeDef::Enum(e) => &e.name,
            TypeDef::Union(u) => &u.name,
        }
    }
}

/// A `struct` or `error` declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct StructDef {
    /// IDL name.
    pub name: String,
    /// Doc comment.
    pub docs: Docs,
    /// Declared with `error` (it may be thrown).
    pub is_error: bool,
    /// Fields in declaration order.
    pub fields: Vec<Field>,
}

/// A union declaration; its arms are fields, exactly one of which is set.
#[derive(Debug, Clone, PartialEq)]
pub struct UnionDef {
    /// IDL name.
    pub name: String,
    /// Doc comment.
    pub docs: Docs,
    /// The arms, in declaration order (never `optional`).
    pub arms: Vec<Field>,
}

/// A field of a struct, error or union, or a method parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// IDL name.
    pub name: String,
    /// Positive, unique tag (1..=536_870_911, not 19000..=19999).
    pub tag: u32,
    /// Field type.
    pub ty: FieldType,
    /// The declared default value (`= 1`), already checked against the type.
    pub default: Option<Value>,
    /// The field refers back to its own container (directly or through
    /// other types) through `optional`, or is a union arm (not the first)
    /// that does, so it must be boxed in Rust.
    pub boxed: bool,
    /// Doc comment.
    pub docs: Docs,
    /// `@hash_key` was given (parameters only).
    pub hash_key: bool,
}

/// The type of a field, parameter or result.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// A built-in scalar.
    Scalar(Scalar),
    /// A declared struct, error, enum or union.
    Named(TypeRef),
    /// `list<T>`; `T` is never `Optional`, `List` or `Map`.
    List(Box<FieldType>),
    /// `map<K, V>`; `K` is an integer, `string` or `bool`; `V` is never
    /// `Optional`, `List` or `Map`.
    Map(Scalar, Box<FieldType>),
    /// `optional T`; `T` is never `List` or `Optional`.
    Optional(Box<FieldType>),
}

/// Built-in scalar types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scalar {
    /// `bool`
    Bool,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `string`
    String,
    /// `bytes`
    Bytes,
}

/// A resolved reference to a declared type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeRef {
    /// The package that declares the type (`None`: no package).
    pub package: Option<String>,
    /// The module name of the file that declares it (its file stem).
    pub module_name: String,
    /// The IDL name of the type.
    pub name: String,
    /// What kind of declaration it is.
    pub kind: TypeKind,
}

/// The kind of a declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeKind {
    /// `struct`
    Struct,
    /// `error`
    Error,
    /// `enum`
    Enum,
    /// `union`
    Union,
}

/// An `enum` declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumDef {
    /// IDL name.
    pub name: String,
    /// Doc comment.
    pub docs: Docs,
    /// Variants in declaration order; the first has value 0.
    pub variants: Vec<EnumVariant>,
}

/// One variant of an enum.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumVariant {
    /// IDL name (`PENDING`).
    pub name: String,
    /// Its number (unique in the enum).
    pub value: i32,
    /// Doc comment.
    pub docs: Docs,
}

/// A typed constant (`const u32 MAX = 100;`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConstDef {
    /// IDL name.
    pub name: String,
    /// Scalar type.
    pub ty: Scalar,
    /// Value, checked against the type.
    pub value: Value,
    /// Doc comment.
    pub docs: Docs,
}

/// A literal value (defaults and constants), already checked against its type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `true` / `false`
    Bool(bool),
    /// An integer literal, in range for its type.
    Int(i128),
    /// A float literal.
    Float(f64),
    /// A string literal, escapes resolved.
    String(String),
    /// An enum variant by its IDL name (a default of an enum-typed field).
    EnumVariant(String),
}

/// A `service` declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// IDL name.
    pub name: String,
    /// Doc comment.
    pub docs: Docs,
    /// `package.Service[:version]`.
    pub wire_name: String,
    /// `@version("v")`, if given.
    pub version: Option<String>,
    /// Methods in declaration order.
    pub methods: Vec<Method>,
}

/// A method of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    /// IDL name, which is also its wire name.
    pub name: String,
    /// Doc comment.
    pub docs: Docs,
    /// `oneway`: no reply, `returns` is `None`, `throws` is empty and the
    /// method does not stream.
    pub oneway: bool,
    /// Parameters other than a `stream` parameter; they form the args
    /// message.
    pub params: Vec<Field>,
    /// The type of the response's result (its `value`); `None` for `void`
    /// and for a `stream` result, whose response carries the empty message
    /// (its items are in [`Method::streaming`]).
    pub returns: Option<FieldType>,
    /// Which sides send a stream of items besides the request and the
    /// response.
    pub streaming: Streaming,
    /// Declared errors, in `throws` order (error message tag = position + 1).
    pub throws: Vec<TypeRef>,
    /// `@idempotent`.
    pub idempotent: bool,
    /// `@timeout(ms = N)`.
    pub timeout_ms: Option<u64>,
}

/// A method's streaming shape (IDL.md, "Streaming"): one call, one request
/// id, items of the call's type in item frames between its request and its
/// response (PROTOCOL.md, "Streams").
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Streaming {
    /// One request, one response (one-way methods too: no response).
    #[default]
    Unary,
    /// `stream T name(..)`: the server sends any number of items of type
    /// `item`, then its response ends the call ([`Method::returns`] is
    /// `None`).
    Server {
        /// The type of each item (never `void`).
        item: FieldType,
    },
    /// `T name(.., N: stream U items)`: the client sends any number of
    /// items of the parameter's type after the request, then half-closes;
    /// the server answers with one response.
    Client {
        /// The stream parameter (its type is the items' type; it is not in
        /// [`Method::params`]).
        param: Field,
    },
    /// `stream T name(.., N: stream U items)`: items flow both ways,
    /// independently.
    Bidirectional {
        /// The type of the server's items.
        item: FieldType,
        /// The stream parameter: the client's items.
        param: Field,
    },
}

impl Streaming {
    /// The type of the items the server sends, if it streams.
    pub fn server_item(&self) -> Option<&FieldType> {
        match self {
            Streaming::Server { item } | Streaming::Bidirectional { item, .. } => Some(item),
            Streaming::Unary | Streaming::Client { .. } => None,
        }
    }

    /// The stream parameter (the client's items), if the client streams.
    pub fn client_param(&self) -> Option<&Field> {
        match self {
            Streaming::Client { param } | Streaming::Bidirectional { param, .. } => Some(param),
            Streaming::Unary | Streaming::Server { .. } => None,
        }
    }

    /// Whether no side streams.
    pub fn is_unary(&self) -> bool {
        matches!(self, Streaming::Unary)
    }

    /// The shape in words: `unary`, `server streaming`, `client streaming`
    /// or `bidirectional streaming`.
    pub fn shape(&self) -> &'static str {
        match self {
            Streaming::Unary => "unary",
            Streaming::Server { .. } => "server streaming",
            Streaming::Client { .. } => "client streaming",
            Streaming::Bidirectional { .. } => "bidirectional streaming",
        }
    }
}

/// Where the declarations of one file are, by IDL name: byte spans into the
/// file's text. Filled by `check`; read by tools that report about the
/// model (`idlc compat`). Lookups of names the file does not declare give
/// `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeclSpans {
    pub(crate) types: HashMap<String, SourceSpan>,
    pub(crate) members: HashMap<(String, String), MemberSpans>,
    pub(crate) services: HashMap<String, ServiceSpans>,
    pub(crate) methods: HashMap<(String, String), MethodSpans>,
    pub(crate) params: HashMap<(String, String, String), MemberSpans>,
}

/// Where a field, union arm, parameter or enum variant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberSpans {
    /// Its name.
    pub name: SourceSpan,
    /// Its tag (for enum variants: its value).
    pub tag: SourceSpan,
    /// Its type (enum variants: its name).
    pub ty: SourceSpan,
    /// Its default value, if it has one.
    pub default: Option<SourceSpan>,
}

/// Where a service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpans {
    /// Its name.
    pub name: SourceSpan,
    /// Its `@version` annotation, if any.
    pub version: Option<SourceSpan>,
}

/// Where a method is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodSpans {
    /// Its name.
    pub name: SourceSpan,
    /// The `oneway` keyword, if written.
    pub oneway: Option<SourceSpan>,
    /// The `stream` keyword of a `stream` result, if written.
    pub stream: Option<SourceSpan>,
    /// The return type (or `void`; of a `stream` result: the item type).
    pub returns: SourceSpan,
    /// Each type of its `throws` list, in order.
    pub throws: Vec<SourceSpan>,
}

impl DeclSpans {
    /// The name of a declared struct, error, enum or union.
    pub fn type_name(&self, ty: &str) -> Option<SourceSpan> {
        self.types.get(ty).copied()
    }

    /// A field of a struct or error, an arm of a union, or a variant of an
    /// enum.
    pub fn member(&self, ty: &str, member: &str) -> Option<MemberSpans> {
        self.members
            .get(&(ty.to_owned(), member.to_owned()))
            .copied()
    }

    /// A service.
    pub fn service(&self, service: &str) -> Option<ServiceSpans> {
        self.services.get(service).copied()
    }

    /// A method of a service.
    pub fn method(&self, service: &str, method: &str) -> Option<&MethodSpans> {
        self.methods.get(&(service.to_owned(), method.to_owned()))
    }

    /// A parameter of a method.
    pub fn param(&self, service: &str, method: &str, param: &str) -> Option<MemberSpans> {
        self.params
            .get(&(service.to_owned(), method.to_owned(), param.to_owned()))
            .copied()
    }
}
