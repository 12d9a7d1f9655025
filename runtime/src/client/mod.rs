//! The multiplexing client. A [`Channel`] carries any number of concurrent
//! calls over a small pool of connections, to one server or (made with
//! [`Channel::balanced`]) to every instance of a service. Generated stubs
//! call [`Channel::unary`] and [`Channel::oneway`] with a static
//! [`MethodDescriptor`] per method; tools call [`Channel::call_raw`] and
//! [`Channel::oneway_raw`] with one that borrows its names. The call modes
//! ([`Channel::call_blocking`], [`Channel::spawn_call`],
//! [`Channel::spawn_call_with_callback`]) take the futures they return.
//!
//! One path for every call, from the top: `channel` (the public API) →
//! `call` (interceptors, timeout, one request id, one encoding, span) →
//! `transport` (one endpoint, or `balanced`: pick, fail over with the same
//! frame, eject, probe) → `endpoint` → `pool` (the connection engine below
//! the seam).

mod answers;
mod backoff;
mod balanced;
mod call;
mod call_modes;
mod channel;
mod command;
mod command_queue;
mod config;
mod connection;
mod dial;
mod endpoint;
mod heartbeat;
mod interceptor;
mod item_stream;
mod method;
mod outbox;
mod pending_call;
mod pool;
mod raw;
mod request;
mod response_metadata;
mod route;
mod send_room;
mod stream;
mod stream_items;
mod task;
mod transport;

/// The configuration API of generated clients (`new`, `with_timeout`, ...).
pub use crate::codegen::Stub;
pub use backoff::Backoff;
pub use balanced::{
    BalanceOptions, DEFAULT_EJECT_AFTER, DEFAULT_EJECT_BASE, DEFAULT_EJECT_MAX,
    DEFAULT_MAX_ATTEMPTS, DEFAULT_MIN_RETRIES_PER_SECOND, DEFAULT_RETRY_RATIO,
    HEALTH_PROBE_TIMEOUT, HealthProbe, InstanceState, ProbeOutcome, ProbeTarget,
};
pub use channel::Channel;
pub use config::{
    ChannelConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_CONNECTIONS, DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_BUFFERED_STREAM_BYTES, DEFAULT_MAX_QUEUED_BYTES, DEFAULT_MAX_QUEUED_CALLS,
};
pub use interceptor::{ClientInterceptor, OutgoingRequest};
pub use item_stream::{BlockingItems, ItemStream, RawItemStream};
pub use method::{CallOptions, MethodDescriptor};
pub use pending_call::PendingCall;
pub use raw::RawReply;
pub use response_metadata::ResponseMetadataCapture;
