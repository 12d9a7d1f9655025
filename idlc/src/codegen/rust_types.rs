//! IDL types and literal values as Rust tokens.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::names;
use super::options::{CodegenOptions, MapType};
use crate::model::{FieldType, Scalar, TypeRef, Value};

/// Where generated code stands (for paths to other generated types), and
/// the options it is generated with.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The options of this run.
    pub options: &'a CodegenOptions,
    /// The package of the file being generated.
    pub package: Option<&'a str>,
    /// The module of the file being generated.
    pub module_name: &'a str,
    /// How many modules below the file's module the code is (0 at the top).
    pub depth: usize,
}

impl Scope<'_> {
    /// The extra attributes the options give the declared type `name`.
    pub fn type_attributes(self, name: &str) -> proc_macro2::TokenStream {
        self.options.attributes_for(self.package, name)
    }

    /// The same file, one module deeper.
    pub fn nested(self) -> Self {
        Scope {
            depth: self.depth + 1,
            ..self
        }
    }
}

/// The Rust type of a scalar.
pub fn scalar_type(scalar: Scalar) -> TokenStream {
    match scalar {
        Scalar::Bool => quote!(bool),
        Scalar::I32 => quote!(i32),
        Scalar::I64 => quote!(i64),
        Scalar::U32 => quote!(u32),
        Scalar::U64 => quote!(u64),
        Scalar::F32 => quote!(f32),
        Scalar::F64 => quote!(f64),
        Scalar::String => quote!(::std::string::String),
        Scalar::Bytes => quote!(__rt::bytes::Bytes),
    }
}

/// The path to a declared type from `scope`. Types of other files live in
/// sibling modules named after their file.
pub fn type_path(ty: &TypeRef, scope: Scope<'_>) -> TokenStream {
    let ident = names::type_ident(&ty.name);
    let supers = (0..scope.depth).map(|_| quote!(super::));
    if ty.module_name == scope.module_name {
        quote!(#(#supers)* #ident)
    } else {
        let module = names::module_ident(&ty.module_name);
        quote!(#(#supers)* super::#module::#ident)
    }
}

/// The Rust type of a field; `boxed` boxes the inside of an `optional`.
pub fn field_type(ty: &FieldType, boxed: bool, scope: Scope<'_>) -> TokenStream {
    match ty {
        FieldType::Scalar(s) => scalar_type(*s),
        FieldType::Named(r) => type_path(r, scope),
        FieldType::List(inner) => {
            let inner = field_type(inner, false, scope);
            quote!(::std::vec::Vec<#inner>)
        }
        FieldType::Map(key, value) => {
            let key = scalar_type(*key);
            let value = field_type(value, false, scope);
            match scope.options.map_type {
                MapType::HashMap => quote!(::std::collections::HashMap<#key, #value>),
                MapType::BTreeMap => quote!(::std::collections::BTreeMap<#key, #value>),
            }
        }
        FieldType::Optional(inner) => {
            let inner = field_type(inner, false, scope);
            if boxed {
                quote!(::core::option::Option<::std::boxed::Box<#inner>>)
            } else {
                quote!(::core::option::Option<#inner>)
            }
        }
    }
}

/// A literal of a value, for a field default or a constant of type `ty`.
pub fn value_expr(value: &Value, ty: &FieldType, scope: Scope<'_>) -> TokenStream {
    match value {
        Value::Bool(b) => quote!(#b),
        Value::Int(i) => int_literal(*i),
        Value::Float(f) => float_literal(*f, matches!(ty, FieldType::Scalar(Scalar::F32))),
        Value::String(s) => match ty {
            FieldType::Scalar(Scalar::Bytes) => {
                let lit = Literal::byte_string(s.as_bytes());
                quote!(__rt::bytes::Bytes::from_static(#lit))
            }
            _ => quote!(::std::string::String::from(#s)),
        },
        Value::EnumVariant(name) => {
            let variant = names::type_ident(name);
            match ty {
                FieldType::Named(r) => {
                    let path = type_path(r, scope);
                    quote!(#path::#variant)
                }
                _ => quote!(::core::default::Default::default()),
            }
        }
    }
}

/// An unsuffixed integer literal (the type comes from the context).
pub fn int_literal(value: i128) -> TokenStream {
    let lit = Literal::u128_unsuffixed(value.unsigned_abs());
    if value < 0 {
        quote!(-#lit)
    } else {
        quote!(#lit)
    }
}

/// An unsuffixed float literal; infinities and NaN by name (of `f32` when
/// `is_f32`, else of `f64`).
pub fn float_literal(value: f64, is_f32: bool) -> TokenStream {
    let float = if is_f32 { quote!(f32) } else { quote!(f64) };
    if value.is_nan() {
        quote!(#float::NAN)
    } else if value.is_infinite() {
        if value > 0.0 {
            quote!(#float::INFINITY)
        } else {
            quote!(#float::NEG_INFINITY)
        }
    } else {
        let lit = Literal::f64_unsuffixed(value.abs());
        if value.is_sign_negative() {
            quote!(-#lit)
        } else {
            quote!(#lit)
        }
    }
}
