//! The macros generated code calls for the repetitive impls of its types:
//! the `prost::Message`, field-codec, `Default`, `Display` and conversion
//! impls that follow from a type's fields, listed once in the call
//! (`__rt::message!(LineItem; 1 sku, 2 quantity = 1, 3 unit_price_cents)`).
//! The declarations themselves — structs, enums, traits, clients — stay
//! spelled out in the generated code, where users read them.
//!
//! Everything here expands to static, generic calls of the
//! [field codec](super::Field): no `dyn`, no allocation, the same machine
//! code as a hand-written impl.

/// A generated struct's `prost::Message` and [`Field`](super::Field)
/// impls, from its fields: `tag field` or `tag field = default` (a field
/// with an IDL default is left out of the protobuf encoding when it equals
/// it). After the fields, optionally `; ` and any of:
///
/// - `default`: the struct's `Default`, with the IDL defaults;
/// - `error "words"`: an `error`'s `Display` (`words: field value, ...`)
///   and `std::error::Error`;
/// - `args`, `args key field`: a method's args message (`Args`, routed by
///   `field` when it is the method's `@hash_key` parameter).
///
/// ```text
/// __rt::message!(LineItem; 1 sku, 2 quantity = 1, 3 unit_price_cents; default);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_message {
    ($name:ident; $($tag:literal $field:ident $(= $default:expr)?),* $(,)? $(; $($marker:tt)*)?) => {
        impl $crate::codegen::prost::Message for $name {
            fn encode_raw(&self, buf: &mut impl $crate::codegen::BufMut) {
                let _ = &buf;
                $($crate::__courier_encode!(self.$field, $tag, buf $(, $default)?);)*
            }

            fn merge_field(
                &mut self,
                tag: u32,
                wire_type: $crate::codegen::WireType,
                buf: &mut impl $crate::codegen::Buf,
                ctx: $crate::codegen::DecodeContext,
            ) -> ::core::result::Result<(), $crate::codegen::DecodeError> {
                match tag {
                    $($tag => $crate::codegen::Field::merge_field(&mut self.$field, wire_type, buf, ctx),)*
                    _ => $crate::codegen::skip(wire_type, tag, buf, ctx),
                }
            }

            fn encoded_len(&self) -> usize {
                0 $(+ $crate::__courier_len!(self.$field, $tag $(, $default)?))*
            }

            fn clear(&mut self) {
                *self = ::core::default::Default::default();
            }
        }

        $crate::__courier_field!($name, $crate::codegen::MessageKind);

        $crate::__courier_markers!($name [$($tag $field $(= $default)?),*] $($($marker)*)?);
    };
}

/// The optional parts of [`message!`](crate::__courier_message).
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_markers {
    ($name:ident [$($fields:tt)*]) => {};
    ($name:ident [$($tag:literal $field:ident $(= $default:expr)?),*] default $(, $($rest:tt)*)?) => {
        impl ::core::default::Default for $name {
            fn default() -> Self {
                Self {
                    $($field: $crate::__courier_default!($($default)?),)*
                }
            }
        }

        $crate::__courier_markers!($name [$($tag $field $(= $default)?),*] $($($rest)*)?);
    };
    ($name:ident [$($tag:literal $field:ident $(= $default:expr)?),*] error $words:literal $(, $($rest:tt)*)?) => {
        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                $crate::codegen::display_error(
                    f,
                    $words,
                    &[$((::core::stringify!($field), &self.$field)),*],
                )
            }
        }

        impl ::std::error::Error for $name {}

        $crate::__courier_markers!($name [$($tag $field $(= $default)?),*] $($($rest)*)?);
    };
    ($name:ident [$($fields:tt)*] args key $key:ident $(, $($rest:tt)*)?) => {
        impl $crate::codegen::Args for $name {
            #[inline]
            fn hash_key(&self) -> ::core::option::Option<u64> {
                ::core::option::Option::Some($crate::codegen::hash_key_of(&self.$key))
            }
        }

        $crate::__courier_markers!($name [$($fields)*] $($($rest)*)?);
    };
    ($name:ident [$($fields:tt)*] args $(, $($rest:tt)*)?) => {
        impl $crate::codegen::Args for $name {}

        $crate::__courier_markers!($name [$($fields)*] $($($rest)*)?);
    };
}

/// Appends one struct field (see [`message!`](crate::__courier_message)).
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_encode {
    ($value:expr, $tag:literal, $buf:ident) => {
        $crate::codegen::Field::encode_field(&$value, $tag, $buf)
    };
    ($value:expr, $tag:literal, $buf:ident, $default:expr) => {
        if $crate::codegen::differs(&$value, &$default) {
            $crate::codegen::Field::encode_value(&$value, $tag, $buf);
        }
    };
}

/// The encoded length of one struct field.
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_len {
    ($value:expr, $tag:literal) => {
        $crate::codegen::Field::field_len(&$value, $tag)
    };
    ($value:expr, $tag:literal, $default:expr) => {
        if $crate::codegen::differs(&$value, &$default) {
            $crate::codegen::Field::value_len(&$value, $tag)
        } else {
            0
        }
    };
}

/// A field's default: the IDL default converted to the field's type, or
/// the type's own.
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_default {
    () => {
        ::core::default::Default::default()
    };
    ($default:expr) => {
        $crate::codegen::IdlDefault::into_field($default)
    };
}

/// The [`Field`](super::Field) impl of a generated type, through its
/// [`Kind`](super::Kind).
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_field {
    ($name:ident, $kind:ty) => {
        impl $crate::codegen::Field for $name {
            #[inline]
            fn encode_field(&self, tag: u32, buf: &mut impl $crate::codegen::BufMut) {
                if !<$kind as $crate::codegen::Kind<Self>>::skipped(self) {
                    <$kind as $crate::codegen::Kind<Self>>::encode(self, tag, buf);
                }
            }

            #[inline]
            fn field_len(&self, tag: u32) -> usize {
                if <$kind as $crate::codegen::Kind<Self>>::skipped(self) {
                    0
                } else {
                    <$kind as $crate::codegen::Kind<Self>>::encoded_len(self, tag)
                }
            }

            #[inline]
            fn merge_field(
                &mut self,
                wire_type: $crate::codegen::WireType,
                buf: &mut impl $crate::codegen::Buf,
                ctx: $crate::codegen::DecodeContext,
            ) -> ::core::result::Result<(), $crate::codegen::DecodeError> {
                <$kind as $crate::codegen::Kind<Self>>::merge(self, wire_type, buf, ctx)
            }

            #[inline]
            fn encode_value(&self, tag: u32, buf: &mut impl $crate::codegen::BufMut) {
                <$kind as $crate::codegen::Kind<Self>>::encode(self, tag, buf);
            }

            #[inline]
            fn value_len(&self, tag: u32) -> usize {
                <$kind as $crate::codegen::Kind<Self>>::encoded_len(self, tag)
            }

            #[inline]
            fn merge_value(
                &mut self,
                wire_type: $crate::codegen::WireType,
                buf: &mut impl $crate::codegen::Buf,
                ctx: $crate::codegen::DecodeContext,
            ) -> ::core::result::Result<(), $crate::codegen::DecodeError> {
                <$kind as $crate::codegen::Kind<Self>>::merge(self, wire_type, buf, ctx)
            }

            #[inline]
            fn encode_list(values: &[Self], tag: u32, buf: &mut impl $crate::codegen::BufMut) {
                <$kind as $crate::codegen::Kind<Self>>::encode_list(values, tag, buf);
            }

            #[inline]
            fn list_len(values: &[Self], tag: u32) -> usize {
                <$kind as $crate::codegen::Kind<Self>>::list_len(values, tag)
            }

            #[inline]
            fn merge_list(
                values: &mut ::std::vec::Vec<Self>,
                wire_type: $crate::codegen::WireType,
                buf: &mut impl $crate::codegen::Buf,
                ctx: $crate::codegen::DecodeContext,
            ) -> ::core::result::Result<(), $crate::codegen::DecodeError> {
                <$kind as $crate::codegen::Kind<Self>>::merge_list(values, wire_type, buf, ctx)
            }

            #[inline]
            fn serialize_mapped<S: $crate::codegen::Serializer>(
                &self,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                $crate::codegen::Serialize::serialize(self, serializer)
            }

            #[inline]
            fn deserialize_mapped<'de, D: $crate::codegen::Deserializer<'de>>(
                deserializer: D,
            ) -> ::core::result::Result<Self, D::Error> {
                <Self as $crate::codegen::Deserialize<'de>>::deserialize(deserializer)
            }
        }
    };
}

/// A generated union's (or declared-error enum's) `Default` (its first
/// arm), `prost::Message` and [`Field`](super::Field) impls, from its arms:
/// `tag Variant`. The arm that is set is always written, even when it holds
/// its default.
///
/// ```text
/// __rt::union!(Payment; 1 Voucher, 2 Card);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_union {
    ($name:ident; $first_tag:literal $first:ident $(, $tag:literal $variant:ident)* $(,)?) => {
        impl ::core::default::Default for $name {
            fn default() -> Self {
                Self::$first(::core::default::Default::default())
            }
        }

        impl $crate::codegen::prost::Message for $name {
            fn encode_raw(&self, buf: &mut impl $crate::codegen::BufMut) {
                match self {
                    Self::$first(value) => $crate::codegen::encode_arm($first_tag, value, buf),
                    $(Self::$variant(value) => $crate::codegen::encode_arm($tag, value, buf),)*
                }
            }

            fn merge_field(
                &mut self,
                tag: u32,
                wire_type: $crate::codegen::WireType,
                buf: &mut impl $crate::codegen::Buf,
                ctx: $crate::codegen::DecodeContext,
            ) -> ::core::result::Result<(), $crate::codegen::DecodeError> {
                match tag {
                    $first_tag => match self {
                        Self::$first(value) => $crate::codegen::merge_arm(wire_type, value, buf, ctx),
                        #[allow(unreachable_patterns)]
                        _ => $crate::codegen::replace_arm(self, Self::$first, wire_type, buf, ctx),
                    },
                    $($tag => match self {
                        Self::$variant(value) => $crate::codegen::merge_arm(wire_type, value, buf, ctx),
                        _ => $crate::codegen::replace_arm(self, Self::$variant, wire_type, buf, ctx),
                    },)*
                    _ => $crate::codegen::skip(wire_type, tag, buf, ctx),
                }
            }

            fn encoded_len(&self) -> usize {
                match self {
                    Self::$first(value) => $crate::codegen::arm_len($first_tag, value),
                    $(Self::$variant(value) => $crate::codegen::arm_len($tag, value),)*
                }
            }

            fn clear(&mut self) {
                *self = ::core::default::Default::default();
            }
        }

        $crate::__courier_field!($name, $crate::codegen::MessageKind);
    };
}

/// A method's declared-error enum: the [`union!`](crate::__courier_union)
/// impls, `From` each declared error (into the enum and into `RpcError`,
/// so a handler writes `Err(NotFound { .. }.into())`), `Display` (the
/// error's) and `std::error::Error`. Arms: `tag Variant Type`.
///
/// ```text
/// __rt::declared_error!(GetError; 1 NotFound super::NotFound);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_declared_error {
    ($name:ident; $($tag:literal $variant:ident $error:ty),+ $(,)?) => {
        $crate::__courier_union!($name; $($tag $variant),+);

        $(
            impl ::core::convert::From<$error> for $name {
                fn from(error: $error) -> Self {
                    Self::$variant(error)
                }
            }

            impl ::core::convert::From<$error> for $crate::codegen::RpcError<$name> {
                fn from(error: $error) -> Self {
                    $crate::codegen::RpcError::Declared($name::$variant(error))
                }
            }
        )+

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self {
                    $(Self::$variant(error) => ::core::fmt::Display::fmt(error, f),)+
                }
            }
        }

        impl ::std::error::Error for $name {}
    };
}

/// A generated enum's `IdlEnum`, [`Field`](super::Field) and serde impls,
/// from its variants: `Variant "IDL_NAME" = value`, after the name of the
/// catch-all variant for values this version does not know.
///
/// ```text
/// __rt::idl_enum!(Status, Unrecognized; Pending "PENDING" = 0, Paid "PAID" = 1);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_idl_enum {
    ($name:ident, $unrecognized:ident; $($variant:ident $idl:literal = $value:expr),+ $(,)?) => {
        impl $crate::codegen::IdlEnum for $name {
            const NAMES: &'static [(i32, &'static str)] = &[$(($value, $idl)),+];

            #[inline]
            fn to_i32(self) -> i32 {
                match self {
                    $(Self::$variant => $value,)+
                    Self::$unrecognized(value) => value,
                }
            }

            #[inline]
            fn from_i32(value: i32) -> Self {
                $(if value == $value {
                    return Self::$variant;
                })+
                Self::$unrecognized(value)
            }
        }

        $crate::__courier_field!($name, $crate::codegen::EnumKind);

        impl $crate::codegen::Serialize for $name {
            fn serialize<S: $crate::codegen::Serializer>(
                &self,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                $crate::codegen::json::serialize_enum(self, serializer)
            }
        }

        impl<'de> $crate::codegen::Deserialize<'de> for $name {
            fn deserialize<D: $crate::codegen::Deserializer<'de>>(
                deserializer: D,
            ) -> ::core::result::Result<Self, D::Error> {
                $crate::codegen::json::deserialize_enum(deserializer)
            }
        }
    };
}

/// A service's server adapter: `new`, `from_arc`, `Clone` and the
/// `ServiceHandler` impl of the adapter struct (given with the name of its
/// type parameter, the service trait and the wire name), which decodes each call's
/// args message, calls the implementation's method with its fields and
/// answers with the result ([`Reply`](super::Reply)) or the declared error.
/// Methods: `"wire name" method Args(params)`, `oneway` before one-way
/// methods, `stream` before server-streaming ones (whose implementation
/// gets an [`ItemSender`](crate::server::ItemSender) after the params);
/// after them optionally `; idl file, imports..` (the embedded
/// `.rpc` sources `ServiceHandler::idl` returns).
///
/// ```text
/// __rt::server!(GreeterServer, T, Greeter, SERVICE; "say_hello" say_hello SayHelloArgs(name));
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_server {
    (
        $server:ident, $impl:ident, $service:ident, $wire:expr;
        $($($oneway:ident)? $method:literal $func:ident $args:ident($($param:ident),*)),* $(,)?
        $(; idl $file:path $(, $import:path)*)?
    ) => {
        impl<$impl: $service> $server<$impl> {
            /// Wraps an implementation.
            pub fn new(service: $impl) -> Self {
                Self::from_arc(::std::sync::Arc::new(service))
            }

            /// Wraps an implementation that is shared elsewhere too.
            pub fn from_arc(service: ::std::sync::Arc<$impl>) -> Self {
                Self { inner: service }
            }
        }

        impl<$impl> ::core::clone::Clone for $server<$impl> {
            fn clone(&self) -> Self {
                Self {
                    inner: ::std::sync::Arc::clone(&self.inner),
                }
            }
        }

        impl<$impl: $service> $crate::codegen::ServiceHandler for $server<$impl> {
            fn wire_name(&self) -> &'static str {
                $wire
            }

            fn dispatch(&self, call: $crate::codegen::IncomingCall) {
                let service = ::std::sync::Arc::clone(&self.inner);
                let _ = &service;
                match call.method() {
                    $($method => $crate::__courier_serve!(
                        $($oneway)? call, service, $impl, $service, $func, $args($($param),*)
                    ),)*
                    _ => call.reject_unknown_method(),
                }
            }

            $(
                fn idl(&self) -> ::core::option::Option<&'static $crate::codegen::ServiceIdl> {
                    static IDL: $crate::codegen::ServiceIdl = $crate::codegen::ServiceIdl {
                        file: $file,
                        imports: &[$($import),*],
                    };
                    ::core::option::Option::Some(&IDL)
                }
            )?
        }
    };
}

/// One arm of a [`server!`](crate::__courier_server) adapter's dispatch.
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_serve {
    (stream $call:ident, $service:ident, $impl:ident, $trait:ident, $func:ident, $args:ident($($param:ident),*)) => {
        $call.serve_server_stream(move |ctx, args: $args, items| {
            let _ = &args;
            async move { <$impl as $trait>::$func(&$service, ctx, $(args.$param,)* items).await }
        })
    };
    (oneway $call:ident, $service:ident, $impl:ident, $trait:ident, $func:ident, $args:ident($($param:ident),*)) => {
        $call.serve_oneway(move |ctx, args: $args| {
            let _ = &args;
            async move { <$impl as $trait>::$func(&$service, ctx, $(args.$param),*).await }
        })
    };
    ($call:ident, $service:ident, $impl:ident, $trait:ident, $func:ident, $args:ident($($param:ident),*)) => {
        $call.serve_unary(move |ctx, args: $args| {
            let _ = &args;
            async move {
                <$impl as $trait>::$func(&$service, ctx, $(args.$param),*)
                    .await
                    .map($crate::codegen::Reply::new)
            }
        })
    };
}

/// A client's [`Stub`](super::Stub) impl: its configuration API, on the
/// [`StubCore`](super::StubCore) in its `core` field.
///
/// ```text
/// __rt::stub!(GreeterClient, SERVICE);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_stub {
    ($client:ident, $wire:expr) => {
        impl $crate::codegen::Stub for $client {
            const WIRE_NAME: &'static str = $wire;

            fn from_core(core: $crate::codegen::StubCore) -> Self {
                Self { core }
            }

            fn core(&self) -> &$crate::codegen::StubCore {
                &self.core
            }

            fn core_mut(&mut self) -> &mut $crate::codegen::StubCore {
                &mut self.core
            }
        }
    };
}
