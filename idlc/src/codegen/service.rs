//! The module of a `service`: its server trait, server adapter and client,
//! and per method its args message, declared-error enum and descriptor.
//!
//! Everything generated for a service lives in `pub mod <service>` (as
//! tonic's `x_client` / `x_server` modules), so two services' `GetError`s
//! or a user type named like a generated one never meet; user types are
//! named from inside as `super::Type`. Names come from the table `check`
//! filled ([`crate::rust_names`]).

use super::docs::{doc_lines, write_docs, write_inner_docs};
use super::layout::{Doc, Tok, Writer, path_tokens};
use super::rust_types::{Scope, string_literal};
use super::types::{message_struct, nests_collections, union_enum};
use crate::model::{Field, FieldType, FileModel, Method, Scalar, Service};
use crate::rust_names::{MethodNames, ServiceNames, field_name, snake, unraw};

/// What the items of one service share.
struct Ctx<'a> {
    service: &'a Service,
    names: &'a ServiceNames,
    /// Inside the service module.
    scope: Scope<'a>,
}

impl Ctx<'_> {
    fn std(&self, name: &str) -> String {
        self.names.std(name)
    }

    /// `__rt::RpcResult<T, E>` (or `<T>` without `throws`).
    fn result<'n>(&self, method: &Method, names: &'n MethodNames) -> Doc<'n> {
        let mut args = vec![self.return_type(method)];
        if let Some(error) = &names.error {
            args.push(Doc::text(error.as_str()));
        }
        Doc::list("__rt::RpcResult", "<", args, ">")
    }

    /// The Rust return type (`()` for `void`).
    fn return_type(&self, method: &Method) -> Doc<'static> {
        match &method.returns {
            Some(ty) => self.scope.ty(ty, false),
            None => Doc::text("()"),
        }
    }

    /// The declared error type for `PendingCall` and friends.
    fn declared<'n>(&self, names: &'n MethodNames) -> &'n str {
        names.error.as_deref().unwrap_or("__rt::NoDeclaredError")
    }
}

/// Clippy's default lints about method names and arity that IDL method
/// names can trip (`fn new(&self)`, `fn from_x(&self)`, `fn clone(..)`,
/// eight parameters): the names are the user's, from the IDL, so generated
/// code allows exactly these where they occur.
fn clippy_allows(ctx: &Ctx<'_>) -> Vec<&'static str> {
    const TRAIT_METHODS: &[&str] = &[
        "add",
        "as_mut",
        "as_ref",
        "bitand",
        "bitor",
        "bitxor",
        "borrow",
        "borrow_mut",
        "clone",
        "cmp",
        "default",
        "deref",
        "deref_mut",
        "div",
        "drop",
        "eq",
        "from_iter",
        "from_str",
        "hash",
        "index",
        "index_mut",
        "into_iter",
        "mul",
        "neg",
        "next",
        "not",
        "rem",
        "shl",
        "shr",
        "sub",
    ];
    let mut lints = Vec::new();
    let names = || ctx.names.methods.iter().map(|m| unraw(&m.func).to_owned());
    let derived = || {
        ctx.names.methods.iter().flat_map(|m| {
            [
                m.func.clone(),
                m.blocking.clone(),
                m.future.clone(),
                m.with_callback.clone(),
            ]
        })
    };
    // `&self`, the call context, the parameters and a stream's sender.
    let arguments =
        |m: &Method| m.params.len() + 2 + usize::from(m.streaming.server_item().is_some());
    if ctx.service.methods.iter().any(|m| arguments(m) > 7) {
        lints.push("clippy::too_many_arguments");
    }
    if ctx.service.methods.iter().any(|m| {
        m.params.iter().any(|p| nests_collections(&p.ty))
            || m.returns.as_ref().is_some_and(nests_collections)
            || m.streaming.server_item().is_some_and(nests_collections)
    }) {
        lints.push("clippy::type_complexity");
    }
    if names().any(|n| n == "new") {
        lints.push("clippy::new_ret_no_self");
    }
    if derived().any(|n| {
        let n = unraw(&n);
        n == "new" || n.starts_with("from_") || n.starts_with("into_") || n.ends_with("_mut")
    }) {
        lints.push("clippy::wrong_self_convention");
    }
    if names().any(|n| TRAIT_METHODS.contains(&n.as_str())) {
        lints.push("clippy::should_implement_trait");
    }
    lints
}

/// [`clippy_allows`] of the client, which also returns the declared errors
/// (`clippy::result_large_err`: their size is the IDL's).
fn client_clippy_allows(ctx: &Ctx<'_>) -> Vec<&'static str> {
    let mut lints = clippy_allows(ctx);
    if ctx.service.methods.iter().any(|m| !m.throws.is_empty()) {
        lints.push("clippy::result_large_err");
    }
    lints
}

/// `#[allow(..)]` of `lints`, if any.
fn write_clippy_allows(w: &mut Writer, lints: &[&str]) {
    if !lints.is_empty() {
        w.attribute_list("allow", lints);
    }
}

/// Every item of a service: `pub mod <service> { .. }`.
pub fn service_module(w: &mut Writer, file: &FileModel, index: usize, scope: Scope<'_>) {
    let (Some(service), Some(names)) = (
        file.services.get(index),
        file.rust_names.services.get(index),
    ) else {
        return;
    };
    let ctx = Ctx {
        service,
        names,
        scope: Scope {
            depth: 1,
            taken: &names.types,
            ..scope
        },
    };
    let docs = doc_lines(&service.docs, || format!("The `{}` service.", service.name));
    w.open(format!("pub mod {}", names.module));
    // Inner docs: rustdoc resolves their links from inside the module.
    write_inner_docs(
        w,
        &[format!(
            "The `{}` service: implement [`{}`], serve it with [`{}`], call it with [`{}`].",
            service.wire_name, names.trait_name, names.server, names.client
        )],
    );
    // Included into a module of the same name (`greeter.rpc`, `service
    // Greeter`), this is `greeter::greeter`.
    w.line("#![allow(clippy::module_inception)]");
    w.line("use super::__rt;");
    w.blank();
    w.line_fmt(format_args!(
        "const {}: &str = {};",
        names.wire_name,
        string_literal(&service.wire_name)
    ));
    w.blank();
    server_trait(w, &ctx, &docs);
    w.blank();
    server_adapter(w, &ctx, file);
    w.blank();
    client(w, &ctx);
    for (method, method_names) in service.methods.iter().zip(&names.methods) {
        w.blank();
        args_message(w, &ctx, method, method_names);
        if let Some(error) = &method_names.error {
            w.blank();
            declared_error(w, &ctx, method, method_names, error);
        }
        w.blank();
        descriptor(w, &ctx, method, method_names);
    }
    w.close("");
}

/// `trait Greeter { fn say_hello(..) -> impl Future<..> + Send; }`.
fn server_trait(w: &mut Writer, ctx: &Ctx<'_>, docs: &[String]) {
    write_docs(w, docs);
    w.line("///");
    w.line_fmt(format_args!(
        "/// Implement it (with `async fn`s) and serve it with [`{}`].",
        ctx.names.server
    ));
    write_clippy_allows(w, &clippy_allows(ctx));
    w.open(format!(
        "pub trait {}: {} + {} + 'static",
        ctx.names.trait_name,
        ctx.std("Send"),
        ctx.std("Sync")
    ));
    for (i, (method, names)) in ctx
        .service
        .methods
        .iter()
        .zip(&ctx.names.methods)
        .enumerate()
    {
        if i > 0 {
            w.blank();
        }
        write_docs(
            w,
            &doc_lines(&method.docs, || format!("Serves `{}`.", method.name)),
        );
        let item = method.streaming.server_item();
        if item.is_some() {
            w.line("///");
            w.line_fmt(format_args!(
                "/// A stream: send each item with `{}.send(item).await?`, which waits for the client's credit (room for one more item); returning ends the stream: `Ok(())`, or an error, which the client receives after the items sent.",
                names.items
            ));
        }
        let mut params = vec![
            Doc::text("&self"),
            Doc::text(format!("{}: __rt::CallContext", names.ctx)),
        ];
        for (param, ident) in method.params.iter().zip(&names.params) {
            params.push(Doc::Cat(vec![
                Doc::text(format!("{ident}: ")),
                ctx.scope.ty(&param.ty, param.boxed),
            ]));
        }
        if let Some(item) = item {
            params.push(Doc::Cat(vec![
                Doc::text(format!("{}: ", names.items)),
                Doc::list(
                    "__rt::ItemSender",
                    "<",
                    vec![ctx.scope.ty(item, false)],
                    ">",
                ),
            ]));
        }
        let output = if method.oneway {
            Doc::text("()")
        } else {
            ctx.result(method, names)
        };
        let signature = Doc::Cat(vec![
            Doc::list(format!("fn {}", names.func), "(", params, ")"),
            Doc::text(" -> impl "),
            Doc::list(
                "__rt::Future",
                "<",
                vec![Doc::Cat(vec![Doc::text("Output = "), output])],
                ">",
            ),
            Doc::text(format!(" + {}", ctx.std("Send"))),
        ]);
        w.doc(&signature, ";");
    }
    w.close("");
}

/// `struct GreeterServer<T>` and its impls (`__rt::server!`: `new`,
/// `from_arc`, `Clone`, and the runtime's `ServiceHandler`, which
/// dispatches each call to the trait's method).
fn server_adapter(w: &mut Writer, ctx: &Ctx<'_>, file: &FileModel) {
    let names = ctx.names;
    let (server, t, service_trait) = (&names.server, &names.implementation, &names.trait_name);
    w.line_fmt(format_args!(
        "/// Serves a [`{service_trait}`] implementation: add it to a `courier::server::Server`."
    ));
    w.open(format!("pub struct {server}<{t}>"));
    w.line_fmt(format_args!("inner: __rt::Arc<{t}>,"));
    w.close("");
    w.blank();
    let mut tokens = vec![
        Tok::Word(server.clone()),
        Tok::Comma,
        Tok::Word(t.clone()),
        Tok::Comma,
        Tok::Word(service_trait.clone()),
        Tok::Comma,
        Tok::Word(names.wire_name.clone()),
        Tok::Semi,
    ];
    for (i, (method, method_names)) in ctx.service.methods.iter().zip(&names.methods).enumerate() {
        if i > 0 {
            tokens.push(Tok::Comma);
        }
        if method.oneway {
            tokens.push(Tok::Word("oneway".into()));
        } else if method.streaming.server_item().is_some() {
            tokens.push(Tok::Word("stream".into()));
        }
        tokens.push(Tok::Word(string_literal(&method.name)));
        tokens.push(Tok::Word(method_names.func.clone()));
        tokens.push(Tok::Word(method_names.args.clone()));
        tokens.push(Tok::Open);
        for (i, param) in method_names.params.iter().enumerate() {
            if i > 0 {
                tokens.push(Tok::Comma);
            }
            tokens.push(Tok::Word(param.clone()));
        }
        tokens.push(Tok::Close);
    }
    if ctx.scope.options.embeds_idl_source() {
        tokens.push(Tok::Semi);
        tokens.push(Tok::Word("idl".into()));
        path_tokens("super::IDL_SOURCE", &mut tokens);
        for module in &file.imports {
            tokens.push(Tok::Comma);
            path_tokens(
                &format!("super::super::{}::IDL_SOURCE", field_name(module)),
                &mut tokens,
            );
        }
    }
    w.macro_call("__rt::server", &tokens);
}

/// The parameters of a client method: strings as `impl Into<String>`.
fn client_params<'n>(ctx: &Ctx<'_>, method: &Method, names: &'n MethodNames) -> Vec<Doc<'n>> {
    method
        .params
        .iter()
        .zip(&names.params)
        .map(|(param, ident)| match &param.ty {
            FieldType::Scalar(Scalar::String) => Doc::text(format!(
                "{ident}: impl {}<{}>",
                ctx.std("Into"),
                ctx.std("String")
            )),
            ty => Doc::Cat(vec![
                Doc::text(format!("{ident}: ")),
                ctx.scope.ty(ty, param.boxed),
            ]),
        })
        .collect()
}

/// The args message built from the client method's parameters: a struct
/// literal when it is short, else the message's `new` (generated with the
/// message, so the four call forms stay one line each).
fn args_expression(method: &Method, names: &MethodNames) -> String {
    if let Some(fields) = short_args_literal(method, names) {
        return fields;
    }
    format!("{}::new({})", names.args, names.params.join(", "))
}

/// The args struct literal, if it is short enough to stay on one line.
fn short_args_literal(method: &Method, names: &MethodNames) -> Option<String> {
    let fields = args_fields(method, names);
    let literal = if fields.is_empty() {
        format!("{} {{}}", names.args)
    } else {
        format!("{} {{ {} }}", names.args, fields.join(", "))
    };
    (literal.len() <= 35).then_some(literal)
}

/// `name: name.into()` for strings, `name` for the rest.
fn args_fields(method: &Method, names: &MethodNames) -> Vec<String> {
    method
        .params
        .iter()
        .zip(&names.params)
        .map(|(param, ident)| match param.ty {
            FieldType::Scalar(Scalar::String) => format!("{ident}: {ident}.into()"),
            _ => ident.clone(),
        })
        .collect()
}

/// `struct GreeterClient`: per IDL method an async call and its
/// `_blocking`, `_future` and `_with_callback` forms, each one call of the
/// runtime's `StubCore`. Construction and options come from `__rt::Stub`.
fn client(w: &mut Writer, ctx: &Ctx<'_>) {
    let names = ctx.names;
    let client = &names.client;
    w.line_fmt(format_args!(
        "/// Calls a remote [`{}`]; make and configure it with `courier::client::Stub`.",
        names.trait_name
    ));
    w.line("#[derive(Clone, Debug)]");
    w.open(format!("pub struct {client}"));
    w.line("core: __rt::StubCore,");
    w.close("");
    w.blank();
    w.macro_call(
        "__rt::stub",
        &[
            Tok::Word(client.clone()),
            Tok::Comma,
            Tok::Word(names.wire_name.clone()),
        ],
    );
    if ctx.service.methods.is_empty() {
        return;
    }
    w.blank();
    write_clippy_allows(w, &client_clippy_allows(ctx));
    w.open(format!("impl {client}"));
    for (i, (method, method_names)) in ctx.service.methods.iter().zip(&names.methods).enumerate() {
        if i > 0 {
            w.blank();
        }
        client_methods(w, ctx, method, method_names);
    }
    w.close("");
}

/// The four call forms of one method (two of a server-streaming one).
fn client_methods<'n>(w: &mut Writer, ctx: &Ctx<'_>, method: &Method, names: &'n MethodNames) {
    if let Some(item) = method.streaming.server_item() {
        server_stream_client_methods(w, ctx, method, names, item);
        return;
    }
    let params = client_params(ctx, method, names);
    let args = args_expression(method, names);
    let descriptor = format!("&{}", names.descriptor);
    let (kind, declared_result, pending) = if method.oneway {
        (
            "oneway",
            Doc::text("__rt::RpcResult<()>"),
            Doc::text("__rt::PendingCall<(), __rt::NoDeclaredError>"),
        )
    } else {
        (
            "unary",
            ctx.result(method, names),
            Doc::list(
                "__rt::PendingCall",
                "<",
                vec![ctx.return_type(method), Doc::text(ctx.declared(names))],
                ">",
            ),
        )
    };
    let name = &method.name;
    let with_self = |extra: Vec<Doc<'n>>| {
        let mut all = vec![Doc::text("&self")];
        all.extend(params.iter().cloned());
        all.extend(extra);
        all
    };
    let signature = |prefix: &str, func: &str, extra: Vec<Doc<'n>>, ret: Option<Doc<'n>>| {
        let mut parts = vec![Doc::list(
            format!("{prefix} {func}"),
            "(",
            with_self(extra),
            ")",
        )];
        if let Some(ret) = ret {
            parts.push(Doc::text(" -> "));
            parts.push(ret);
        }
        Doc::Cat(parts)
    };
    let body = |w: &mut Writer, form: &str, extra: &[&str], awaited: bool| {
        let method = match (kind, form) {
            ("unary", "") => "unary".to_owned(),
            ("unary", form) => form.to_owned(),
            (_, "") => "oneway".to_owned(),
            (_, form) => format!("oneway_{form}"),
        };
        let mut call_args = vec![Doc::text(descriptor.as_str()), Doc::text(args.as_str())];
        call_args.extend(extra.iter().map(|e| Doc::text(*e)));
        w.method_call("self.core", &method, call_args, awaited, "");
    };

    // async
    write_docs(w, &doc_lines(&method.docs, || format!("Calls `{name}`.")));
    if method.oneway {
        w.line("///");
        w.line("/// One-way: returns once the request is written; nothing comes back.");
    }
    w.open_doc(&signature(
        "pub async fn",
        &names.func,
        vec![],
        Some(declared_result.clone()),
    ));
    body(w, "", &[], true);
    w.close("");

    // blocking
    w.line_fmt(format_args!(
        "/// Calls `{name}`, blocking the thread until it ends (sync mode; never on a runtime's worker)."
    ));
    w.open_doc(&signature(
        "pub fn",
        &names.blocking,
        vec![],
        Some(declared_result.clone()),
    ));
    body(w, "blocking", &[], false);
    w.close("");

    // future
    w.line_fmt(format_args!(
        "/// Starts `{name}` (future mode): poll, `.await` or `wait()` the handle; dropping it cancels."
    ));
    w.open_doc(&signature("pub fn", &names.future, vec![], Some(pending)));
    body(w, "future", &[], false);
    w.close("");

    // callback
    w.line_fmt(format_args!(
        "/// Starts `{name}`; `{}` runs once with the outcome (callback mode).",
        names.on_result
    ));
    let callback = Doc::Cat(vec![
        Doc::text(format!("{}: impl ", names.on_result)),
        Doc::list(ctx.std("FnOnce"), "(", vec![declared_result], ")"),
        Doc::text(format!(" + {} + 'static", ctx.std("Send"))),
    ]);
    w.open_doc(&signature(
        "pub fn",
        &names.with_callback,
        vec![callback],
        None,
    ));
    body(w, "callback", &[&names.on_result], false);
    w.close("");
}

/// The call forms of a server-streaming method: a `futures_core::Stream`
/// of its items (not `async`: the call opens when the stream is first
/// polled) and an `Iterator` of them for plain threads.
fn server_stream_client_methods(
    w: &mut Writer,
    ctx: &Ctx<'_>,
    method: &Method,
    names: &MethodNames,
    item: &FieldType,
) {
    let params = client_params(ctx, method, names);
    let args = args_expression(method, names);
    let descriptor = format!("&{}", names.descriptor);
    let name = &method.name;
    let signature = |func: &str, returned: &'static str| {
        let mut all = vec![Doc::text("&self")];
        all.extend(params.iter().cloned());
        Doc::Cat(vec![
            Doc::list(format!("pub fn {func}"), "(", all, ")"),
            Doc::text(" -> "),
            Doc::list(
                returned,
                "<",
                vec![ctx.scope.ty(item, false), Doc::text(ctx.declared(names))],
                ">",
            ),
        ])
    };
    let call_args = || vec![Doc::text(descriptor.as_str()), Doc::text(args.as_str())];

    write_docs(w, &doc_lines(&method.docs, || format!("Calls `{name}`.")));
    w.line("///");
    w.line(
        "/// A stream: a `futures_core::Stream` of the items, in order; a failure or declared error is its last element; dropping it cancels the call. The call opens when the stream is first polled.",
    );
    w.open_doc(&signature(&names.func, "__rt::ItemStream"));
    w.method_call("self.core", "server_stream", call_args(), false, "");
    w.close("");

    w.line_fmt(format_args!(
        "/// Calls `{name}` from a plain thread (sync mode; never on a runtime's worker): an `Iterator` of the items, which blocks for each, ending as the stream does."
    ));
    w.open_doc(&signature(&names.blocking, "__rt::BlockingItems"));
    w.method_call(
        "self.core",
        "server_stream_blocking",
        call_args(),
        false,
        "",
    );
    w.close("");
}

/// The args message of a method (one field per parameter), its `Args`
/// impl (with the `@hash_key` parameter), and its `new` when the client
/// needs one.
fn args_message(w: &mut Writer, ctx: &Ctx<'_>, method: &Method, names: &MethodNames) {
    let docs = [format!("The args message of `{}`.", method.name)];
    let mut marker = vec![Tok::Word("args".into())];
    if let Some(key) = method.params.iter().find(|p| p.hash_key) {
        marker.push(Tok::Word("key".into()));
        marker.push(Tok::Word(field_name(&key.name)));
    }
    message_struct(
        w,
        &names.args,
        &docs,
        &[],
        &method.params,
        &[marker],
        ctx.scope,
    );
    if short_args_literal(method, names).is_some() {
        return;
    }
    w.blank();
    w.open(format!("impl {}", names.args));
    let mut lints = Vec::new();
    if method.params.len() > 7 {
        lints.push("clippy::too_many_arguments");
    }
    if method.params.iter().any(|p| nests_collections(&p.ty)) {
        lints.push("clippy::type_complexity");
    }
    if !lints.is_empty() {
        w.attribute_list("allow", &lints);
    }
    let params = client_params(ctx, method, names);
    w.open_doc(&Doc::Cat(vec![
        Doc::list("fn new", "(", params, ")"),
        Doc::text(" -> Self"),
    ]));
    let fields = args_fields(method, names);
    w.struct_literal("Self", &fields, "");
    w.close("");
    w.close("");
}

/// `enum SayHelloError { EmptyName(super::EmptyName) }` and its impls
/// (`__rt::declared_error!`: conversions, `Display`, `Error`).
fn declared_error(
    w: &mut Writer,
    ctx: &Ctx<'_>,
    method: &Method,
    names: &MethodNames,
    error: &str,
) {
    let arms: Vec<Field> = method
        .throws
        .iter()
        .enumerate()
        .map(|(position, thrown)| Field {
            name: snake(&thrown.name),
            tag: position as u32 + 1,
            ty: FieldType::Named(thrown.clone()),
            default: None,
            boxed: false,
            docs: vec![format!("`{}` was raised.", thrown.name)],
            hash_key: false,
        })
        .collect();
    let docs = [format!(
        "The declared errors of `{}.{}` (its `throws`).",
        ctx.service.name, method.name
    )];
    let paths: Vec<String> = method.throws.iter().map(|t| ctx.scope.path(t)).collect();
    union_enum(
        w,
        error,
        &docs,
        &[],
        &arms,
        &names.error_variants,
        &paths,
        ctx.scope,
    );
}

/// `static SAY_HELLO: MethodDescriptor`: the wire names, `@idempotent` and
/// the `@timeout` default.
fn descriptor(w: &mut Writer, ctx: &Ctx<'_>, method: &Method, names: &MethodNames) {
    let timeout = match method.timeout_ms {
        Some(ms) => format!("a default timeout of {ms} ms"),
        None => "no default timeout".to_owned(),
    };
    let idempotent = if method.idempotent {
        "idempotent"
    } else {
        "not idempotent"
    };
    w.line_fmt(format_args!(
        "/// Describes `{}` to the runtime: {idempotent}, {timeout}.",
        method.name
    ));
    let call = Doc::list(
        "__rt::method",
        "(",
        vec![
            Doc::text(ctx.names.wire_name.as_str()),
            Doc::text(string_literal(&method.name)),
            Doc::text(method.idempotent.to_string()),
            Doc::text(match method.timeout_ms {
                Some(ms) => format!("Some({ms})"),
                None => "None".to_owned(),
            }),
        ],
        ")",
    );
    w.doc(
        &Doc::Cat(vec![
            Doc::text(format!(
                "pub static {}: __rt::MethodDescriptor = ",
                names.descriptor
            )),
            call,
        ]),
        ";",
    );
}
