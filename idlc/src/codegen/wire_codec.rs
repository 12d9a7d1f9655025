//! The protobuf side of generated types: hand-written-style
//! `prost::Message` impls built from prost's own encoding functions.
//!
//! Generating the impl (instead of `#[derive(prost::Message)]`) lets fields
//! be real Rust enums, unions be Rust enums, and IDL defaults decide
//! presence: a singular field is left out when it equals its default (the
//! IDL default, else the zero value), and a missing field decodes as it.

use proc_macro2::TokenStream;
use quote::quote;

use super::options::MapType;
use super::rust_types::{Scope, value_expr};
use crate::model::{Field, FieldType, Scalar, TypeKind};

/// The statements and expressions that carry one field.
pub struct FieldWireCode {
    /// Statement: append the field to `buf`.
    pub encode: TokenStream,
    /// Expression: merge the field from `buf` (a `Result<(), DecodeError>`).
    pub merge: TokenStream,
    /// Statement: add the field's encoded length to `len`.
    pub add_len: TokenStream,
    /// Expression: the field's encoded length, when it is written at all.
    pub len: TokenStream,
}

/// How one value (not a container) travels.
enum ValueCodec {
    Scalar(Scalar),
    Enum,
    Message,
}

fn value_codec(ty: &FieldType) -> Option<ValueCodec> {
    match ty {
        FieldType::Scalar(s) => Some(ValueCodec::Scalar(*s)),
        FieldType::Named(r) if r.kind == TypeKind::Enum => Some(ValueCodec::Enum),
        FieldType::Named(_) => Some(ValueCodec::Message),
        _ => None,
    }
}

fn scalar_module(scalar: Scalar) -> TokenStream {
    match scalar {
        Scalar::Bool => quote!(__rt::prost::encoding::bool),
        Scalar::I32 => quote!(__rt::prost::encoding::int32),
        Scalar::I64 => quote!(__rt::prost::encoding::int64),
        Scalar::U32 => quote!(__rt::prost::encoding::uint32),
        Scalar::U64 => quote!(__rt::prost::encoding::uint64),
        Scalar::F32 => quote!(__rt::prost::encoding::float),
        Scalar::F64 => quote!(__rt::prost::encoding::double),
        Scalar::String => quote!(__rt::prost::encoding::string),
        Scalar::Bytes => quote!(__rt::prost::encoding::bytes),
    }
}

/// `(encode, merge, encoded_len)` paths for one value.
fn singular_fns(codec: &ValueCodec) -> (TokenStream, TokenStream, TokenStream) {
    let module = match codec {
        ValueCodec::Scalar(s) => scalar_module(*s),
        ValueCodec::Enum => quote!(__rt::proto),
        ValueCodec::Message => quote!(__rt::prost::encoding::message),
    };
    (
        quote!(#module::encode),
        quote!(#module::merge),
        quote!(#module::encoded_len),
    )
}

/// `(encode, merge, encoded_len)` paths for a list of values.
fn repeated_fns(codec: &ValueCodec) -> (TokenStream, TokenStream, TokenStream) {
    match codec {
        ValueCodec::Scalar(s @ (Scalar::String | Scalar::Bytes)) => {
            let m = scalar_module(*s);
            (
                quote!(#m::encode_repeated),
                quote!(#m::merge_repeated),
                quote!(#m::encoded_len_repeated),
            )
        }
        ValueCodec::Scalar(s) => {
            let m = scalar_module(*s);
            (
                quote!(#m::encode_packed),
                quote!(#m::merge_repeated),
                quote!(#m::encoded_len_packed),
            )
        }
        ValueCodec::Enum => (
            quote!(__rt::proto::encode_packed),
            quote!(__rt::proto::merge_repeated),
            quote!(__rt::proto::encoded_len_packed),
        ),
        ValueCodec::Message => (
            quote!(__rt::prost::encoding::message::encode_repeated),
            quote!(__rt::prost::encoding::message::merge_repeated),
            quote!(__rt::prost::encoding::message::encoded_len_repeated),
        ),
    }
}

/// The condition under which a singular struct field is written: it differs
/// from its default. `None`: always written (nested messages).
fn differs_from_default(
    field: &Field,
    access: &TokenStream,
    scope: Scope<'_>,
) -> Option<TokenStream> {
    let (FieldType::Scalar(_) | FieldType::Named(_)) = &field.ty else {
        return None;
    };
    if let Some(default) = &field.default {
        if let FieldType::Scalar(Scalar::Bool) = field.ty {
            return Some(match default {
                crate::model::Value::Bool(true) => quote!(!#access),
                _ => quote!(#access),
            });
        }
        let default = match (default, &field.ty) {
            // Compare with the literal itself: no owned value per check.
            (crate::model::Value::String(text), FieldType::Scalar(Scalar::String)) => quote!(#text),
            (crate::model::Value::String(text), FieldType::Scalar(Scalar::Bytes)) => {
                let lit = proc_macro2::Literal::byte_string(text.as_bytes());
                quote!(&#lit[..])
            }
            (value, ty) => value_expr(value, ty, scope),
        };
        return Some(quote!(#access != #default));
    }
    match &field.ty {
        FieldType::Scalar(Scalar::Bool) => Some(quote!(#access)),
        FieldType::Scalar(Scalar::String | Scalar::Bytes) => Some(quote!(!#access.is_empty())),
        FieldType::Scalar(Scalar::F32 | Scalar::F64) => Some(quote!(#access != 0.0)),
        FieldType::Scalar(_) => Some(quote!(#access != 0)),
        FieldType::Named(r) if r.kind == TypeKind::Enum => {
            Some(quote!(#access != ::core::default::Default::default()))
        }
        _ => None,
    }
}

/// How generated code reaches a field's value.
pub enum Access {
    /// A place expression such as `self.name`.
    Place(TokenStream),
    /// A variable `value` that is already a reference (`&T` or `&mut T`).
    Ref,
}

/// The code for one field. `always` writes the value even when it equals its
/// default (union arms); otherwise the field must be an [`Access::Place`].
pub fn field_wire_code(
    field: &Field,
    access: &Access,
    always: bool,
    scope: Scope<'_>,
) -> FieldWireCode {
    let tag = proc_macro2::Literal::u32_unsuffixed(field.tag);
    let (place, by_ref, by_mut) = match access {
        Access::Place(place) => (place.clone(), quote!(&#place), quote!(&mut #place)),
        Access::Ref => (quote!((*value)), quote!(value), quote!(value)),
    };
    let unsupported = |what: &str| {
        let message = format!(
            "idlc: field `{}` has a type protobuf cannot carry ({what}); wrap the inner container in a struct",
            field.name
        );
        FieldWireCode {
            encode: quote!(::core::compile_error!(#message);),
            merge: quote!(::core::result::Result::Ok(())),
            add_len: quote!(),
            len: quote!(0),
        }
    };
    match &field.ty {
        FieldType::Scalar(_) | FieldType::Named(_) => {
            let Some(codec) = value_codec(&field.ty) else {
                return unsupported("not a value");
            };
            let (encode, merge, len) = singular_fns(&codec);
            let condition = match access {
                Access::Place(place) if !always => differs_from_default(field, place, scope),
                _ => None,
            };
            match condition {
                Some(condition) => FieldWireCode {
                    encode: quote!(if #condition { #encode(#tag, #by_ref, buf); }),
                    merge: quote!(#merge(wire_type, #by_mut, buf, ctx)),
                    add_len: quote!(if #condition { len += #len(#tag, #by_ref); }),
                    len: quote!(#len(#tag, #by_ref)),
                },
                None => FieldWireCode {
                    encode: quote!(#encode(#tag, #by_ref, buf);),
                    merge: quote!(#merge(wire_type, #by_mut, buf, ctx)),
                    add_len: quote!(len += #len(#tag, #by_ref);),
                    len: quote!(#len(#tag, #by_ref)),
                },
            }
        }
        FieldType::Optional(inner) => {
            let Some(codec) = value_codec(inner) else {
                return unsupported("optional container");
            };
            let (encode, merge, len) = singular_fns(&codec);
            FieldWireCode {
                encode: quote!(if let ::core::option::Option::Some(value) = #by_ref { #encode(#tag, value, buf); }),
                merge: quote!(#merge(wire_type, #place.get_or_insert_with(::core::default::Default::default), buf, ctx)),
                add_len: quote!(if let ::core::option::Option::Some(value) = #by_ref { len += #len(#tag, value); }),
                len: quote!(#place.as_ref().map_or(0, |value| #len(#tag, value))),
            }
        }
        FieldType::List(inner) => {
            let Some(codec) = value_codec(inner) else {
                return unsupported("nested container");
            };
            let (encode, merge, len) = repeated_fns(&codec);
            FieldWireCode {
                encode: quote!(#encode(#tag, #by_ref, buf);),
                merge: quote!(#merge(wire_type, #by_mut, buf, ctx)),
                add_len: quote!(len += #len(#tag, #by_ref);),
                len: quote!(#len(#tag, #by_ref)),
            }
        }
        FieldType::Map(key, value) => {
            let Some(value_codec) = value_codec(value) else {
                return unsupported("nested container");
            };
            let (key_encode, key_merge, key_len) = singular_fns(&ValueCodec::Scalar(*key));
            let (value_encode, value_merge, value_len) = singular_fns(&value_codec);
            let map = match scope.options.map_type {
                MapType::HashMap => quote!(__rt::prost::encoding::hash_map),
                MapType::BTreeMap => quote!(__rt::prost::encoding::btree_map),
            };
            FieldWireCode {
                encode: quote!(#map::encode(
                    #key_encode, #key_len, #value_encode, #value_len, #tag, #by_ref, buf,
                );),
                merge: quote!(#map::merge(
                    #key_merge, #value_merge, #by_mut, buf, ctx,
                )),
                add_len: quote!(len += #map::encoded_len(
                    #key_len, #value_len, #tag, #by_ref,
                );),
                len: quote!(#map::encoded_len(
                    #key_len, #value_len, #tag, #by_ref,
                )),
            }
        }
    }
}

/// `impl prost::Message` for a struct whose fields are `(field, ident)`.
pub fn struct_message_impl(
    type_ident: &TokenStream,
    fields: &[(&Field, proc_macro2::Ident)],
    scope: Scope<'_>,
) -> TokenStream {
    let codes: Vec<(proc_macro2::Literal, FieldWireCode)> = fields
        .iter()
        .map(|(field, ident)| {
            let code = field_wire_code(field, &Access::Place(quote!(self.#ident)), false, scope);
            (proc_macro2::Literal::u32_unsuffixed(field.tag), code)
        })
        .collect();
    let encodes = codes.iter().map(|(_, c)| &c.encode);
    let merges = codes.iter().map(|(tag, c)| {
        let merge = &c.merge;
        quote!(#tag => #merge,)
    });
    let skip = quote!(__rt::prost::encoding::skip_field(wire_type, tag, buf, ctx));
    let merge_body = if codes.is_empty() {
        skip
    } else {
        quote! {
            match tag {
                #(#merges)*
                _ => #skip,
            }
        }
    };
    let add_lens = codes.iter().map(|(_, c)| &c.add_len);
    let buf = if codes.is_empty() {
        quote!(_buf)
    } else {
        quote!(buf)
    };
    let encoded_len = if codes.is_empty() {
        quote!(0)
    } else {
        quote! {
            let mut len = 0;
            #(#add_lens)*
            len
        }
    };
    quote! {
        impl __rt::prost::Message for #type_ident {
            fn encode_raw(&self, #buf: &mut impl __rt::bytes::BufMut) {
                #(#encodes)*
            }

            fn merge_field(
                &mut self,
                tag: u32,
                wire_type: __rt::prost::encoding::WireType,
                buf: &mut impl __rt::bytes::Buf,
                ctx: __rt::prost::encoding::DecodeContext,
            ) -> ::core::result::Result<(), __rt::prost::DecodeError> {
                #merge_body
            }

            fn encoded_len(&self) -> usize {
                #encoded_len
            }

            fn clear(&mut self) {
                *self = ::core::default::Default::default();
            }
        }
    }
}

/// `impl prost::Message` for a union-shaped enum: arms are `(field, variant)`;
/// the active arm is always written, even when it holds its default.
pub fn union_message_impl(
    type_ident: &TokenStream,
    arms: &[(&Field, proc_macro2::Ident)],
    scope: Scope<'_>,
) -> TokenStream {
    let encodes = arms.iter().map(|(field, variant)| {
        let code = field_wire_code(field, &Access::Ref, true, scope);
        let encode = code.encode;
        quote!(Self::#variant(value) => { #encode })
    });
    let lens = arms.iter().map(|(field, variant)| {
        let code = field_wire_code(field, &Access::Ref, true, scope);
        let len = code.len;
        quote!(Self::#variant(value) => #len,)
    });
    let single_arm = arms.len() == 1;
    let merges = arms.iter().map(|(field, variant)| {
        let tag = proc_macro2::Literal::u32_unsuffixed(field.tag);
        let code = field_wire_code(field, &Access::Ref, true, scope);
        let merge_current = code.merge;
        if single_arm {
            return quote! {
                #tag => {
                    let Self::#variant(value) = self;
                    #merge_current
                }
            };
        }
        let fresh = field_wire_code(field, &Access::Place(quote!(fresh)), true, scope);
        let merge_fresh = fresh.merge;
        quote! {
            #tag => {
                if let Self::#variant(value) = self {
                    #merge_current
                } else {
                    let mut fresh = ::core::default::Default::default();
                    #merge_fresh?;
                    *self = Self::#variant(fresh);
                    ::core::result::Result::Ok(())
                }
            }
        }
    });
    quote! {
        impl __rt::prost::Message for #type_ident {
            fn encode_raw(&self, buf: &mut impl __rt::bytes::BufMut) {
                match self {
                    #(#encodes)*
                }
            }

            fn merge_field(
                &mut self,
                tag: u32,
                wire_type: __rt::prost::encoding::WireType,
                buf: &mut impl __rt::bytes::Buf,
                ctx: __rt::prost::encoding::DecodeContext,
            ) -> ::core::result::Result<(), __rt::prost::DecodeError> {
                match tag {
                    #(#merges)*
                    _ => __rt::prost::encoding::skip_field(wire_type, tag, buf, ctx),
                }
            }

            fn encoded_len(&self) -> usize {
                match self {
                    #(#lens)*
                }
            }

            fn clear(&mut self) {
                *self = ::core::default::Default::default();
            }
        }
    }
}
