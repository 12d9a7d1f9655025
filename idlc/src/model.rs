//! The checked model: what the `check` stage produces and `codegen` reads.
//!
//! Every name here is still the IDL name as written; mapping to Rust names is
//! codegen's job. Every reference is resolved and every rule of IDL.md has
//! been checked, so codegen never has to report an error.

use std::path::PathBuf;

/// One checked `.rpc` file: it becomes one generated Rust module.
#[derive(Debug, Clone, PartialEq)]
pub struct FileModel {
    /// The file this model was checked from.
    pub source: PathBuf,
    /// The name of the generated module (and output file): the file stem.
    pub module_name: String,
    /// The dotted `package` declaration, if any.
    pub package: Option<String>,
    /// Constants, in declaration order.
    pub constants: Vec<ConstDef>,
    /// Structs, errors, enums and unions, in declaration order.
    pub types: Vec<TypeDef>,
    /// Services, in declaration order.
    pub services: Vec<Service>,
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
    /// `oneway`: no reply, `returns` is `None` and `throws` is empty.
    pub oneway: bool,
    /// Parameters; they form the args message.
    pub params: Vec<Field>,
    /// The return type; `None` for `void`.
    pub returns: Option<FieldType>,
    /// Declared errors, in `throws` order (error message tag = position + 1).
    pub throws: Vec<TypeRef>,
    /// `@idempotent`.
    pub idempotent: bool,
    /// `@timeout(ms = N)`.
    pub timeout_ms: Option<u64>,
}
