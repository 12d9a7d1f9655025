//! Items for a `service`: its wire messages and method descriptors, the
//! declared-error enums, the server trait, the server adapter and the client
//! stub. One small function per generated shape.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::docs::doc_attrs;
use super::names;
use super::rust_types::{Scope, field_type, type_path};
use super::types::{message_struct, union_enum};
use crate::model::{Field, FieldType, Method, Scalar, Service};

/// Names generated for one method.
struct MethodNames {
    /// The trait and client method: `say_hello`.
    func: Ident,
    /// The args message: `SayHelloArgs`.
    args: Ident,
    /// The result message: `SayHelloReply`.
    reply: Ident,
    /// The declared-error enum: `SayHelloError`.
    error: Ident,
    /// The method descriptor static: `SAY_HELLO`.
    descriptor: Ident,
}

impl MethodNames {
    fn of(method: &Method) -> MethodNames {
        let camel = names::type_name(&method.name);
        MethodNames {
            func: names::field_ident(&method.name),
            args: format_ident!("{camel}Args"),
            reply: format_ident!("{camel}Reply"),
            error: format_ident!("{camel}Error"),
            descriptor: names::const_ident(&method.name),
        }
    }
}

/// Every item of a service.
/// `idl_method` is the adapter's `ServiceHandler::idl` when the source is
/// embedded.
pub fn service_items(
    service: &Service,
    scope: Scope<'_>,
    idl_method: Option<&TokenStream>,
) -> TokenStream {
    let messages = messages_module(service, scope);
    let errors = service
        .methods
        .iter()
        .filter(|m| !m.throws.is_empty())
        .map(|m| declared_error_enum(service, m, scope));
    let server_trait = server_trait(service, scope);
    let adapter = server_adapter(service, idl_method);
    let client = client_stub(service, scope);
    quote! {
        #messages
        #(#errors)*
        #server_trait
        #adapter
        #client
    }
}

fn messages_module_ident(service: &Service) -> Ident {
    names::module_ident(&service.name)
}

/// `RpcError<SayHelloError>` for a throwing method, else `RpcError`.
fn rpc_error_type(method: &Method) -> TokenStream {
    if method.throws.is_empty() {
        quote!(__rt::RpcError)
    } else {
        let error = MethodNames::of(method).error;
        quote!(__rt::RpcError<#error>)
    }
}

/// The Rust return type of a method (`()` for `void`).
fn return_type(method: &Method, scope: Scope<'_>) -> TokenStream {
    match &method.returns {
        Some(ty) => field_type(ty, false, scope),
        None => quote!(()),
    }
}

/// `mod greeter { SayHelloArgs, SayHelloReply, SAY_HELLO, .. }`.
fn messages_module(service: &Service, scope: Scope<'_>) -> TokenStream {
    let module = messages_module_ident(service);
    let inner = scope.nested();
    let service_ident = names::type_ident(&service.name);
    let module_doc = format!(
        " The wire messages and method descriptors of [`{service_ident}`](super::{service_ident})."
    );
    let wire_name = &service.wire_name;
    let items = service.methods.iter().map(|method| {
        let names = MethodNames::of(method);
        let args_doc = doc_attrs(&[], || format!("The args message of `{}`.", method.name));
        let args = message_struct(&names.args, args_doc, &method.params, inner);
        let reply = (!method.oneway).then(|| {
            let reply_doc = doc_attrs(&[], || format!("The result message of `{}`.", method.name));
            let fields: Vec<Field> = method
                .returns
                .iter()
                .map(|ty| Field {
                    name: "value".into(),
                    tag: 1,
                    ty: ty.clone(),
                    default: None,
                    boxed: false,
                    docs: vec!["The return value.".into()],
                    hash_key: false,
                })
                .collect();
            message_struct(&names.reply, reply_doc, &fields, inner)
        });
        let descriptor = &names.descriptor;
        let method_name = &method.name;
        let idempotent = method.idempotent;
        let timeout = match method.timeout_ms {
            Some(ms) => {
                let ms = proc_macro2::Literal::u64_unsuffixed(ms);
                quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#ms)))
            }
            None => quote!(::core::option::Option::None),
        };
        let descriptor_doc = format!(" Describes `{}` to the runtime.", method.name);
        quote! {
            #args
            #reply
            #[doc = #descriptor_doc]
            pub static #descriptor: __rt::MethodDescriptor = __rt::MethodDescriptor {
                service: #wire_name,
                method: #method_name,
                idempotent: #idempotent,
                default_timeout: #timeout,
            };
        }
    });
    // An inner doc: rustdoc resolves its `super::` link from inside the
    // module (an outer one resolves from the parent).
    quote! {
        pub mod #module {
            #![doc = #module_doc]
            use super::__rt;

            #(#items)*
        }
    }
}

/// `enum SayHelloError { EmptyName(EmptyName) }` with its conversions.
fn declared_error_enum(service: &Service, method: &Method, scope: Scope<'_>) -> TokenStream {
    let names = MethodNames::of(method);
    let ident = &names.error;
    let arms: Vec<Field> = method
        .throws
        .iter()
        .enumerate()
        .map(|(position, error)| Field {
            name: heck::ToSnakeCase::to_snake_case(error.name.as_str()),
            tag: position as u32 + 1,
            ty: FieldType::Named(error.clone()),
            default: None,
            boxed: false,
            docs: vec![format!("`{}` was raised.", error.name)],
            hash_key: false,
        })
        .collect();
    let docs = doc_attrs(&[], || {
        format!(
            "The declared errors of `{}.{}` (its `throws`).",
            service.name, method.name
        )
    });
    let item = union_enum(ident, docs, &arms, scope);
    let conversions = method.throws.iter().map(|error| {
        let path = type_path(error, scope);
        let variant = names::type_ident(&heck::ToSnakeCase::to_snake_case(error.name.as_str()));
        quote! {
            impl ::core::convert::From<#path> for #ident {
                fn from(error: #path) -> Self {
                    Self::#variant(error)
                }
            }

            impl ::core::convert::From<#path> for __rt::RpcError<#ident> {
                fn from(error: #path) -> Self {
                    __rt::RpcError::Declared(#ident::#variant(error))
                }
            }
        }
    });
    let display_arms = method.throws.iter().map(|error| {
        let variant = names::type_ident(&heck::ToSnakeCase::to_snake_case(error.name.as_str()));
        quote!(Self::#variant(error) => ::core::fmt::Display::fmt(error, f),)
    });
    quote! {
        #item
        #(#conversions)*

        impl ::core::fmt::Display for #ident {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self {
                    #(#display_arms)*
                }
            }
        }

        impl ::std::error::Error for #ident {}
    }
}

/// The name of the call-context parameter: `ctx`, unless a parameter is
/// already called that.
fn context_ident(method: &Method) -> Ident {
    let taken = method
        .params
        .iter()
        .any(|p| names::field_ident(&p.name) == "ctx");
    if taken {
        format_ident!("call_ctx")
    } else {
        format_ident!("ctx")
    }
}

/// `trait Greeter { fn say_hello(..) -> impl Future<..> + Send; }`.
fn server_trait(service: &Service, scope: Scope<'_>) -> TokenStream {
    let ident = names::type_ident(&service.name);
    let docs = doc_attrs(&service.docs, || format!("The `{}` service.", service.name));
    let wire_name = &service.wire_name;
    let methods = service.methods.iter().map(|method| {
        let names = MethodNames::of(method);
        let func = &names.func;
        let docs = doc_attrs(&method.docs, || format!("Serves `{}`.", method.name));
        let ctx = context_ident(method);
        let params = method.params.iter().map(|p| {
            let name = names::field_ident(&p.name);
            let ty = field_type(&p.ty, p.boxed, scope);
            quote!(#name: #ty)
        });
        let output = if method.oneway {
            quote!(())
        } else {
            let ret = return_type(method, scope);
            let error = rpc_error_type(method);
            quote!(::core::result::Result<#ret, #error>)
        };
        quote! {
            #docs
            fn #func(&self, #ctx: __rt::CallContext, #(#params),*) -> impl ::core::future::Future<Output = #output> + Send;
        }
    });
    let wire_doc = format!(" The wire name of the service: `{wire_name}`.");
    quote! {
        #docs
        pub trait #ident: Send + Sync + 'static {
            #[doc = #wire_doc]
            const WIRE_NAME: &'static str = #wire_name;

            #(#methods)*
        }
    }
}

/// `struct GreeterServer<T>` implementing the runtime's `ServiceHandler`.
fn server_adapter(service: &Service, idl_method: Option<&TokenStream>) -> TokenStream {
    let trait_ident = names::type_ident(&service.name);
    let ident = format_ident!("{}Server", names::type_name(&service.name));
    let module = messages_module_ident(service);
    let wire_name = &service.wire_name;
    let doc = format!(
        " Serves a [`{trait_ident}`] implementation: add it to a `courier::server::Server`."
    );
    let arms = service.methods.iter().map(|method| {
        let names = MethodNames::of(method);
        let func = &names.func;
        let args = &names.args;
        let method_name = &method.name;
        let params = method.params.iter().map(|p| {
            let name = names::field_ident(&p.name);
            quote!(args.#name)
        });
        let args_binding = if method.params.is_empty() { quote!(_args) } else { quote!(args) };
        if method.oneway {
            quote! {
                #method_name => call.serve_oneway(move |ctx, #args_binding: #module::#args| async move {
                    service.#func(ctx, #(#params),*).await;
                }),
            }
        } else {
            let reply = &names.reply;
            let wrap = if method.returns.is_some() {
                quote!(|value| #module::#reply { value })
            } else {
                quote!(|()| #module::#reply {})
            };
            quote! {
                #method_name => call.serve_unary(move |ctx, #args_binding: #module::#args| async move {
                    service.#func(ctx, #(#params),*).await.map(#wrap)
                }),
            }
        }
    });
    let take_service = (!service.methods.is_empty())
        .then(|| quote!(let service = ::std::sync::Arc::clone(&self.inner);));
    quote! {
        #[doc = #doc]
        pub struct #ident<T> {
            inner: ::std::sync::Arc<T>,
        }

        impl<T: #trait_ident> #ident<T> {
            /// Wraps an implementation.
            pub fn new(service: T) -> Self {
                Self::from_arc(::std::sync::Arc::new(service))
            }

            /// Wraps an implementation that is shared elsewhere too.
            pub fn from_arc(service: ::std::sync::Arc<T>) -> Self {
                Self { inner: service }
            }
        }

        impl<T> ::core::clone::Clone for #ident<T> {
            fn clone(&self) -> Self {
                Self { inner: ::std::sync::Arc::clone(&self.inner) }
            }
        }

        impl<T: #trait_ident> __rt::ServiceHandler for #ident<T> {
            fn wire_name(&self) -> &'static str {
                #wire_name
            }

            fn dispatch(&self, call: __rt::IncomingCall) {
                #take_service
                match call.method() {
                    #(#arms)*
                    _ => call.reject_unknown_method(),
                }
            }

            #idl_method
        }
    }
}

/// The parameter type a client method takes: strings as `impl Into<String>`.
fn client_param(param: &Field, scope: Scope<'_>) -> (TokenStream, TokenStream) {
    let name = names::field_ident(&param.name);
    match &param.ty {
        FieldType::Scalar(Scalar::String) => (
            quote!(#name: impl ::core::convert::Into<::std::string::String>),
            quote!(#name: #name.into()),
        ),
        ty => {
            let ty = field_type(ty, param.boxed, scope);
            (quote!(#name: #ty), quote!(#name))
        }
    }
}

/// A local name for generated client code that no parameter uses.
fn free_local(method: &Method, wanted: &str) -> Ident {
    let taken = |candidate: &str| {
        method
            .params
            .iter()
            .any(|p| names::field_ident(&p.name) == candidate)
    };
    let mut name = wanted.to_owned();
    while taken(&name) {
        name.push('_');
    }
    format_ident!("{name}")
}

/// The async client method: the one the other call modes wrap.
fn client_async_method(method: &Method, scope: Scope<'_>, module: &Ident) -> TokenStream {
    let names = MethodNames::of(method);
    let func = &names.func;
    let args = &names.args;
    let descriptor = &names.descriptor;
    let docs = doc_attrs(&method.docs, || format!("Calls `{}`.", method.name));
    let (params, inits): (Vec<_>, Vec<_>) =
        method.params.iter().map(|p| client_param(p, scope)).unzip();
    // With a `@hash_key` parameter, its value routes the call unless the
    // stub has a hash key of its own.
    let (options_binding, options) = match method.params.iter().find(|p| p.hash_key) {
        Some(key) => {
            let key = names::field_ident(&key.name);
            let binding = quote! {
                let keyed;
                let options = match self.options.hash_key {
                    ::core::option::Option::Some(_) => &self.options,
                    ::core::option::Option::None => {
                        keyed = __rt::CallOptions {
                            hash_key: ::core::option::Option::Some(__rt::hash_key_of(&args.#key)),
                            ..self.options.clone()
                        };
                        &keyed
                    }
                };
            };
            (binding, quote!(options))
        }
        None => (quote!(), quote!(&self.options)),
    };
    if method.oneway {
        return quote! {
            #docs
            ///
            /// One-way: returns once the request is written; nothing comes back.
            pub async fn #func(&self, #(#params),*) -> ::core::result::Result<(), __rt::RpcError> {
                let args = #module::#args { #(#inits),* };
                #options_binding
                self.channel.oneway(&#module::#descriptor, &args, #options).await
            }
        };
    }
    let reply = &names.reply;
    let ret = return_type(method, scope);
    let error = rpc_error_type(method);
    let call = quote!(self.channel.unary(&#module::#descriptor, &args, #options).await?);
    let body = if method.returns.is_some() {
        quote! {
            let reply: #module::#reply = #call;
            ::core::result::Result::Ok(reply.value)
        }
    } else {
        quote! {
            let _: #module::#reply = #call;
            ::core::result::Result::Ok(())
        }
    };
    quote! {
        #docs
        pub async fn #func(&self, #(#params),*) -> ::core::result::Result<#ret, #error> {
            let args = #module::#args { #(#inits),* };
            #options_binding
            #body
        }
    }
}

/// The sync, future and callback forms of a client method, each a thin
/// wrapper around the async one.
fn client_mode_methods(method: &Method, scope: Scope<'_>) -> TokenStream {
    let names = MethodNames::of(method);
    let func = &names.func;
    let blocking = format_ident!("{}_blocking", func.to_string().trim_start_matches("r#"));
    let future = format_ident!("{}_future", func.to_string().trim_start_matches("r#"));
    let with_callback = format_ident!(
        "{}_with_callback",
        func.to_string().trim_start_matches("r#")
    );
    let (params, _): (Vec<_>, Vec<_>) =
        method.params.iter().map(|p| client_param(p, scope)).unzip();
    let arg_names: Vec<Ident> = method
        .params
        .iter()
        .map(|p| names::field_ident(&p.name))
        .collect();
    // Owned values to move into a spawned call (`impl Into<String>` converted first).
    let owned: Vec<TokenStream> = method
        .params
        .iter()
        .zip(&arg_names)
        .filter(|(p, _)| matches!(p.ty, FieldType::Scalar(Scalar::String)))
        .map(|(_, name)| quote!(let #name = #name.into();))
        .collect();
    let (ret, declared) = if method.oneway {
        (quote!(()), quote!(__rt::NoDeclaredError))
    } else if method.throws.is_empty() {
        (return_type(method, scope), quote!(__rt::NoDeclaredError))
    } else {
        let error = &names.error;
        (return_type(method, scope), quote!(#error))
    };
    let result = quote!(::core::result::Result<#ret, __rt::RpcError<#declared>>);
    let stub = free_local(method, "stub");
    let on_result = free_local(method, "on_result");
    let name = &method.name;
    let blocking_doc = format!(
        " Calls `{name}` and blocks the calling thread until it ends (sync mode).\n\n \
         For plain threads: on an async runtime's worker it returns an error instead of blocking."
    );
    let future_doc = format!(
        " Starts `{name}` and returns at once with a handle (future mode): poll \
         `is_done()`, `.await` it, or `wait()` for it. Dropping the handle cancels the call."
    );
    let callback_doc = format!(
        " Starts `{name}` and returns at once; `{on_result}` runs once with the result or the \
         failure (callback mode)."
    );
    quote! {
        #[doc = #blocking_doc]
        pub fn #blocking(&self, #(#params),*) -> #result {
            #(#owned)*
            self.channel.call_blocking(self.#func(#(#arg_names),*))
        }

        #[doc = #future_doc]
        pub fn #future(&self, #(#params),*) -> __rt::PendingCall<#ret, #declared> {
            #(#owned)*
            let #stub = self.clone();
            self.channel.spawn_call(async move { #stub.#func(#(#arg_names),*).await })
        }

        #[doc = #callback_doc]
        pub fn #with_callback(
            &self,
            #(#params,)*
            #on_result: impl ::core::ops::FnOnce(#result) + Send + 'static,
        ) {
            #(#owned)*
            let #stub = self.clone();
            self.channel
                .spawn_call_with_callback(async move { #stub.#func(#(#arg_names),*).await }, #on_result);
        }
    }
}

/// `struct GreeterClient`: per IDL method an async call, and its
/// `_blocking`, `_future` and `_with_callback` forms.
fn client_stub(service: &Service, scope: Scope<'_>) -> TokenStream {
    let trait_ident = names::type_ident(&service.name);
    let ident = format_ident!("{}Client", names::type_name(&service.name));
    let module = messages_module_ident(service);
    let doc = format!(" Calls a remote [`{trait_ident}`] through a `courier` channel.");
    let wire_name = &service.wire_name;
    let wire_doc = format!(" The wire name of the service: `{wire_name}`.");
    let methods = service.methods.iter().map(|method| {
        let call = client_async_method(method, scope, &module);
        let modes = client_mode_methods(method, scope);
        quote!(#call #modes)
    });
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        pub struct #ident {
            channel: __rt::Channel,
            options: __rt::CallOptions,
        }

        impl #ident {
            #[doc = #wire_doc]
            pub const WIRE_NAME: &'static str = #wire_name;

            /// A client that calls through `channel` with default options.
            pub fn new(channel: __rt::Channel) -> Self {
                Self { channel, options: ::core::default::Default::default() }
            }

            /// The same client with other call options (serializer, timeout, metadata).
            pub fn with_options(mut self, options: __rt::CallOptions) -> Self {
                self.options = options;
                self
            }

            /// The same client with a timeout for every call.
            pub fn with_timeout(mut self, timeout: ::core::time::Duration) -> Self {
                self.options.timeout = ::core::option::Option::Some(timeout);
                self
            }

            /// The same client speaking another serializer.
            pub fn with_serializer(mut self, serializer: __rt::Serializer) -> Self {
                self.options.serializer = serializer;
                self
            }

            /// The same client sending one more metadata entry with every call.
            pub fn with_metadata(
                mut self,
                key: impl ::core::convert::Into<::std::string::String>,
                value: impl ::core::convert::Into<::std::string::String>,
            ) -> Self {
                self.options.metadata.insert(key, value);
                self
            }

            /// The same client routing every call by `key` (for the consistent-hash
            /// balancer), instead of by the methods' `@hash_key` parameters.
            pub fn with_hash_key(mut self, key: u64) -> Self {
                self.options.hash_key = ::core::option::Option::Some(key);
                self
            }

            /// The call options every call of this client uses.
            pub fn options(&self) -> &__rt::CallOptions {
                &self.options
            }

            #(#methods)*
        }
    }
}
