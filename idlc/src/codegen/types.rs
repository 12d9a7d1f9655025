//! Items for declared types: structs and errors, enums, unions, constants.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::docs::doc_attrs;
use super::names;
use super::rust_types::{Scope, field_type, int_literal, scalar_type, value_expr};
use super::wire_codec::{struct_message_impl, union_message_impl};
use crate::model::{ConstDef, EnumDef, Field, FieldType, Scalar, StructDef, UnionDef};

/// The `#[serde(with = ..)]` helper a field needs for PROTOCOL.md's mapping
/// of `bytes` (base64 in JSON), if any.
fn serde_with(ty: &FieldType) -> Option<&'static str> {
    let bytes = |t: &FieldType| matches!(t, FieldType::Scalar(Scalar::Bytes));
    match ty {
        t if bytes(t) => Some("__rt::json::bytes_field"),
        FieldType::Optional(inner) if bytes(inner) => Some("__rt::json::optional_bytes_field"),
        FieldType::List(inner) if bytes(inner) => Some("__rt::json::list_bytes_field"),
        FieldType::Map(_, value) if bytes(value) => Some("__rt::json::map_bytes_field"),
        _ => None,
    }
}

/// serde attributes of a field or arm: its IDL name on the wire, and the
/// `bytes` helper.
fn serde_field_attrs(idl_name: &str, ident: &Ident, ty: &FieldType) -> TokenStream {
    let rename = names::serde_rename(idl_name, ident).map(|name| quote!(#[serde(rename = #name)]));
    let with = serde_with(ty).map(|path| quote!(#[serde(with = #path)]));
    quote!(#rename #with)
}

/// A message struct: a user `struct`/`error`, or a generated args/reply
/// message. `docs` are its doc attributes.
pub fn message_struct(
    ident: &Ident,
    docs: TokenStream,
    fields: &[Field],
    scope: Scope<'_>,
) -> TokenStream {
    let named: Vec<(&Field, Ident)> = fields
        .iter()
        .map(|f| (f, names::field_ident(&f.name)))
        .collect();
    let declarations = named.iter().map(|(field, field_ident)| {
        let docs = doc_attrs(&field.docs, || {
            format!("Field {} (`{}`).", field.tag, field.name)
        });
        let serde = serde_field_attrs(&field.name, field_ident, &field.ty);
        let ty = field_type(&field.ty, field.boxed, scope);
        quote! {
            #docs
            #serde
            pub #field_ident: #ty,
        }
    });
    let has_idl_defaults = fields.iter().any(|f| f.default.is_some());
    let default_derive = (!has_idl_defaults).then(|| quote!(Default,));
    let default_impl = has_idl_defaults.then(|| {
        let inits = named
            .iter()
            .map(|(field, field_ident)| match &field.default {
                Some(value) => {
                    let value = value_expr(value, &field.ty, scope);
                    quote!(#field_ident: #value,)
                }
                None => quote!(#field_ident: ::core::default::Default::default(),),
            });
        quote! {
            impl ::core::default::Default for #ident {
                fn default() -> Self {
                    Self { #(#inits)* }
                }
            }
        }
    });
    let message_impl = struct_message_impl(&quote!(#ident), &named, scope);
    quote! {
        #docs
        #[derive(Clone, Debug, PartialEq, #default_derive __rt::serde::Serialize, __rt::serde::Deserialize)]
        #[serde(crate = "__rt::serde", default)]
        pub struct #ident {
            #(#declarations)*
        }

        #default_impl

        #message_impl
    }
}

/// A user `struct` or `error`. Errors also implement `Display` and `Error`.
pub fn struct_item(def: &StructDef, scope: Scope<'_>) -> TokenStream {
    let ident = names::type_ident(&def.name);
    let kind = if def.is_error { "error" } else { "struct" };
    let docs = doc_attrs(&def.docs, || format!("The `{}` {kind}.", def.name));
    let extra = scope.type_attributes(&def.name);
    let docs = quote!(#docs #extra);
    let item = message_struct(&ident, docs, &def.fields, scope);
    let error_impls = def.is_error.then(|| {
        quote! {
            impl ::core::fmt::Display for #ident {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    ::core::fmt::Debug::fmt(self, f)
                }
            }

            impl ::std::error::Error for #ident {}
        }
    });
    quote!(#item #error_impls)
}

/// The name of an enum's catch-all variant: `Unrecognized`, unless the IDL
/// already uses that name.
fn unrecognized_variant(def: &EnumDef) -> Ident {
    let taken = def
        .variants
        .iter()
        .any(|v| names::type_name(&v.name) == "Unrecognized");
    names::ident(if taken {
        "UnrecognizedValue"
    } else {
        "Unrecognized"
    })
}

/// A user `enum`: a Rust enum with a catch-all for values from newer peers.
pub fn enum_item(def: &EnumDef, scope: Scope<'_>) -> TokenStream {
    let ident = names::type_ident(&def.name);
    let docs = doc_attrs(&def.docs, || format!("The `{}` enum.", def.name));
    let extra = scope.type_attributes(&def.name);
    let unrecognized = unrecognized_variant(def);
    let variants: Vec<(Ident, &crate::model::EnumVariant)> = def
        .variants
        .iter()
        .map(|v| (names::type_ident(&v.name), v))
        .collect();
    let declarations = variants.iter().map(|(variant, v)| {
        let docs = doc_attrs(&v.docs, || format!("`{}` ({}).", v.name, v.value));
        let default = (v.value == 0).then(|| quote!(#[default]));
        quote!(#docs #default #variant,)
    });
    let to_i32 = variants.iter().map(|(variant, v)| {
        let value = int_literal(v.value.into());
        quote!(Self::#variant => #value,)
    });
    let from_i32 = variants.iter().map(|(variant, v)| {
        let value = int_literal(v.value.into());
        quote!(#value => Self::#variant,)
    });
    let idl_name = variants.iter().map(|(variant, v)| {
        let name = &v.name;
        quote!(Self::#variant => ::core::option::Option::Some(#name),)
    });
    let from_idl_name = variants.iter().map(|(variant, v)| {
        let name = &v.name;
        quote!(#name => ::core::option::Option::Some(Self::#variant),)
    });
    quote! {
        #docs
        #extra
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
        pub enum #ident {
            #(#declarations)*
            /// A value this version does not know (sent by a newer peer); kept as sent.
            #unrecognized(i32),
        }

        impl __rt::IdlEnum for #ident {
            fn to_i32(self) -> i32 {
                match self {
                    #(#to_i32)*
                    Self::#unrecognized(value) => value,
                }
            }

            fn from_i32(value: i32) -> Self {
                match value {
                    #(#from_i32)*
                    other => Self::#unrecognized(other),
                }
            }

            fn idl_name(self) -> ::core::option::Option<&'static str> {
                match self {
                    #(#idl_name)*
                    Self::#unrecognized(_) => ::core::option::Option::None,
                }
            }

            fn from_idl_name(name: &str) -> ::core::option::Option<Self> {
                match name {
                    #(#from_idl_name)*
                    _ => ::core::option::Option::None,
                }
            }
        }

        impl __rt::serde::Serialize for #ident {
            fn serialize<S: __rt::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                __rt::json::serialize_enum(self, serializer)
            }
        }

        impl<'de> __rt::serde::Deserialize<'de> for #ident {
            fn deserialize<D: __rt::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                __rt::json::deserialize_enum(deserializer)
            }
        }
    }
}

/// A union-shaped Rust enum: one tuple variant per arm. Used for IDL
/// `union`s and for the declared-error enum of a throwing method.
pub fn union_enum(
    ident: &Ident,
    docs: TokenStream,
    arms: &[Field],
    scope: Scope<'_>,
) -> TokenStream {
    let named: Vec<(&Field, Ident)> = arms
        .iter()
        .map(|f| (f, names::type_ident(&f.name)))
        .collect();
    let declarations = named.iter().map(|(arm, variant)| {
        let docs = doc_attrs(&arm.docs, || format!("Arm {} (`{}`).", arm.tag, arm.name));
        let name = &arm.name;
        let with = serde_with(&arm.ty).map(|path| quote!(#[serde(with = #path)]));
        let ty = field_type(&arm.ty, arm.boxed, scope);
        let ty = if arm.boxed {
            quote!(::std::boxed::Box<#ty>)
        } else {
            ty
        };
        quote! {
            #docs
            #[serde(rename = #name)]
            #with
            #variant(#ty),
        }
    });
    let default = named.first().map(|(_, first)| {
        quote! {
            impl ::core::default::Default for #ident {
                fn default() -> Self {
                    Self::#first(::core::default::Default::default())
                }
            }
        }
    });
    let message_impl = union_message_impl(&quote!(#ident), &named, scope);
    quote! {
        #docs
        #[derive(Clone, Debug, PartialEq, __rt::serde::Serialize, __rt::serde::Deserialize)]
        #[serde(crate = "__rt::serde")]
        pub enum #ident {
            #(#declarations)*
        }

        #default

        #message_impl
    }
}

/// A user `union`.
pub fn union_item(def: &UnionDef, scope: Scope<'_>) -> TokenStream {
    let ident = names::type_ident(&def.name);
    let docs = doc_attrs(&def.docs, || {
        format!("The `{}` union: exactly one arm is set.", def.name)
    });
    let extra = scope.type_attributes(&def.name);
    union_enum(&ident, quote!(#docs #extra), &def.arms, scope)
}

/// A `const`.
pub fn const_item(def: &ConstDef, scope: Scope<'_>) -> TokenStream {
    let ident = names::const_ident(&def.name);
    let docs = doc_attrs(&def.docs, || format!("The constant `{}`.", def.name));
    let ty = match def.ty {
        Scalar::String => quote!(&str),
        Scalar::Bytes => quote!(&[u8]),
        other => scalar_type(other),
    };
    let value = match (&def.value, def.ty) {
        (crate::model::Value::String(s), Scalar::String) => quote!(#s),
        (crate::model::Value::String(s), Scalar::Bytes) => {
            let lit = proc_macro2::Literal::byte_string(s.as_bytes());
            quote!(#lit)
        }
        (value, ty) => value_expr(value, &FieldType::Scalar(ty), scope),
    };
    quote! {
        #docs
        pub const #ident: #ty = #value;
    }
}
