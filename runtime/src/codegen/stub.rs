//! The client side of generated code: [`StubCore`], the channel and call
//! options every generated client wraps, with the four call modes of each
//! method as one call each; [`Stub`], the configuration API every generated
//! client shares; and [`Args`], what a method's args message adds.
//!
//! A generated client's own inherent methods are exactly its IDL methods
//! and their `_blocking`, `_future` and `_with_callback` forms. Everything
//! else (`new`, `with_timeout`, `options`, ...) comes from the [`Stub`]
//! trait, so an IDL method called `new` or `with_timeout` cannot collide
//! with it: the inherent method takes precedence, and the trait's stays
//! reachable as `Stub::new(channel)`.

use std::time::Duration;

use crate::client::{
    BlockingItems, CallOptions, Channel, ItemStream, MethodDescriptor, PendingCall,
};
use crate::error::{NoDeclaredError, RpcError};
use crate::serializer::{DeclaredError, Serializer, WireMessage};

use super::field::Field;
use super::reply::Reply;

/// The outcome of a call: the value, or how it failed (`E` is the method's
/// declared-error enum).
pub type RpcResult<T, E = NoDeclaredError> = Result<T, RpcError<E>>;

/// A method's args message (PROTOCOL.md: one field per parameter).
pub trait Args: WireMessage {
    /// The call's hash key for the consistent-hash balancer: the value of
    /// the method's `@hash_key` parameter, if it has one.
    #[inline]
    fn hash_key(&self) -> Option<u64> {
        None
    }
}

/// What every generated client holds: the channel it calls through and the
/// options of its calls.
#[derive(Clone, Debug)]
pub struct StubCore {
    channel: Channel,
    options: CallOptions,
}

impl StubCore {
    /// Calls through `channel` with default options.
    pub fn new(channel: Channel) -> Self {
        StubCore {
            channel,
            options: CallOptions::default(),
        }
    }

    /// The channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The options of every call.
    pub fn options(&self) -> &CallOptions {
        &self.options
    }

    /// The options, to change.
    pub fn options_mut(&mut self) -> &mut CallOptions {
        &mut self.options
    }

    /// The options of a call with `args`, when they differ from the
    /// stub's: routed by the args' `@hash_key`, unless the stub has a hash
    /// key of its own. `None` (no copy) otherwise.
    #[inline]
    fn keyed_options(&self, args: &impl Args) -> Option<CallOptions> {
        match (self.options.hash_key, args.hash_key()) {
            (None, Some(key)) => Some(CallOptions {
                hash_key: Some(key),
                ..self.options.clone()
            }),
            _ => None,
        }
    }

    /// A request-response call: sends `args`, returns the reply's value or
    /// the declared error.
    pub async fn unary<A: Args, T: Field, E: DeclaredError>(
        &self,
        method: &'static MethodDescriptor<'static>,
        args: A,
    ) -> RpcResult<T, E> {
        let keyed = self.keyed_options(&args);
        let options = keyed.as_ref().unwrap_or(&self.options);
        let reply: Reply<T> = self.channel.unary(method, &args, options).await?;
        Ok(reply.value)
    }

    /// A one-way call: returns once the request is written.
    pub async fn oneway<A: Args>(
        &self,
        method: &'static MethodDescriptor<'static>,
        args: A,
    ) -> RpcResult<()> {
        let keyed = self.keyed_options(&args);
        let options = keyed.as_ref().unwrap_or(&self.options);
        self.channel.oneway(method, &args, options).await
    }

    /// [`unary`](Self::unary), blocking the calling thread (sync mode; on
    /// an async runtime's worker it fails at once instead).
    pub fn blocking<A: Args, T: Field, E: DeclaredError>(
        &self,
        method: &'static MethodDescriptor<'static>,
        args: A,
    ) -> RpcResult<T, E> {
        self.channel.call_blocking(self.unary(method, args))
    }

    /// [`unary`](Self::unary) on a task of its own, returning its handle at
    /// once (future mode).
    pub fn future<A: Args, T: Field, E: DeclaredError>(
        &self,
        method: &'static MethodDescriptor<'static>,
        args: A,
    ) -> PendingCall<T, E> {
        let core = self.clone();
        self.channel
            .spawn_call(async move { core.unary(method, args).await })
    }

    /// [`unary`](Self::unary) on a task of its own; `on_result` runs once
    /// with its outcome (callback mode).
    pub fn callback<A: Args, T: Field, E: DeclaredError>(
        &self,
        method: &'static MethodDescriptor<'static>,
        args: A,
        on_result: impl FnOnce(RpcResult<T, E>) + Send + 'static,
    ) {
        let core = self.clone();
        self.channel
            .spawn_call_with_callback(async move { core.unary(method, args).await }, on_result);
    }

    /// A server-streaming call: the stream of its items (it opens on the
    /// first poll; dropping it cancels the call).
    pub fn server_stream<A: Args, T: Field, E: DeclaredError>(
        &self,
        method: &'static MethodDescriptor<'static>,
        args: A,
    ) -> ItemStream<T, E> {
        let options = self
            .keyed_options(&args)
            .unwrap_or_else(|| self.options.clone());
        ItemStream::open(&self.channel, method, args, options)
    }

    /// [`server_stream`](Self::server_stream) as an `Iterator` that blocks
    /// the calling thread for each item (sync mode).
    pub fn server_stream_blocking<A: Args, T: Field, E: DeclaredError>(
        &self,
        method: &'static MethodDescriptor<'static>,
        args: A,
    ) -> BlockingItems<T, E> {
        BlockingItems::new(
            self.server_stream(method, args),
            self.channel.runtime().clone(),
        )
    }

    /// [`oneway`](Self::oneway), blocking the calling thread.
    pub fn oneway_blocking<A: Args>(
        &self,
        method: &'static MethodDescriptor<'static>,
        args: A,
    ) -> RpcResult<()> {
        self.channel.call_blocking(self.oneway(method, args))
    }

    /// [`oneway`](Self::oneway) on a task of its own.
    pub fn oneway_future<A: Args>(
        &self,
        method: &'static MethodDescriptor<'static>,
        args: A,
    ) -> PendingCall<(), NoDeclaredError> {
        let core = self.clone();
        self.channel
            .spawn_call(async move { core.oneway(method, args).await })
    }

    /// [`oneway`](Self::oneway) on a task of its own; `on_result` runs once.
    pub fn oneway_callback<A: Args>(
        &self,
        method: &'static MethodDescriptor<'static>,
        args: A,
        on_result: impl FnOnce(RpcResult<()>) + Send + 'static,
    ) {
        let core = self.clone();
        self.channel
            .spawn_call_with_callback(async move { core.oneway(method, args).await }, on_result);
    }
}

/// The configuration API of every generated client (`GreeterClient`, ...):
/// construct it on a channel and derive clients with other call options.
///
/// Bring it into scope with `use courier::client::Stub;` (or
/// `use courier::prelude::*;`). Each `with_*` returns a new client, so a
/// per-call option is `client.clone().with_timeout(t).say_hello(..)` (a
/// clone is two reference counts and the options).
///
/// An IDL method with the same name as one of these (`new`, `options`,
/// ...) takes precedence on the client; the trait's is then called as
/// `Stub::new(channel)` or `<GreeterClient as Stub>::options(&client)`.
pub trait Stub: Clone + Sized {
    /// The wire name of the service (`hello.Greeter`).
    const WIRE_NAME: &'static str;

    /// A client around `core` (called by the provided methods).
    fn from_core(core: StubCore) -> Self;

    /// The client's channel and options.
    fn core(&self) -> &StubCore;

    /// The client's channel and options, to change.
    fn core_mut(&mut self) -> &mut StubCore;

    /// A client that calls through `channel` with default options.
    fn new(channel: Channel) -> Self {
        Self::from_core(StubCore::new(channel))
    }

    /// The same client with other call options (serializer, timeout,
    /// metadata, hash key).
    fn with_options(mut self, options: CallOptions) -> Self {
        *self.core_mut().options_mut() = options;
        self
    }

    /// The same client with a timeout for every call.
    fn with_timeout(mut self, timeout: Duration) -> Self {
        self.core_mut().options_mut().timeout = Some(timeout);
        self
    }

    /// The same client speaking another serializer.
    fn with_serializer(mut self, serializer: Serializer) -> Self {
        self.core_mut().options_mut().serializer = serializer;
        self
    }

    /// The same client sending one more metadata entry with every call.
    fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.core_mut().options_mut().metadata.insert(key, value);
        self
    }

    /// The same client routing every call by `key` (for the consistent-hash
    /// balancer), instead of by the methods' `@hash_key` parameters.
    fn with_hash_key(mut self, key: u64) -> Self {
        self.core_mut().options_mut().hash_key = Some(key);
        self
    }

    /// The same client putting the response metadata of each of its calls
    /// in `capture` (see [`ResponseMetadataCapture`](crate::client::ResponseMetadataCapture)).
    fn capture_response_metadata(
        mut self,
        capture: &crate::client::ResponseMetadataCapture,
    ) -> Self {
        self.core_mut().options_mut().response_metadata = Some(capture.clone());
        self
    }

    /// The call options every call of this client uses.
    fn options(&self) -> &CallOptions {
        self.core().options()
    }

    /// The channel this client calls through.
    fn channel(&self) -> &Channel {
        self.core().channel()
    }
}
