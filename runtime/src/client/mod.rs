//! The multiplexing client: a [`Channel`] carries any number of concurrent
//! calls over a small pool of connections; generated stubs call
//! [`Channel::unary`] and [`Channel::oneway`] with a static
//! [`MethodDescriptor`] per method, and the call modes
//! ([`Channel::call_blocking`], [`Channel::spawn_call`],
//! [`Channel::spawn_call_with_callback`]) take the futures they return.

mod backoff;
mod call_modes;
mod channel;
mod command;
mod config;
mod connection;
mod dial;
mod heartbeat;
mod interceptor;
mod method;
mod pending_call;
mod pool;
mod request;
mod task;

pub use backoff::Backoff;
pub use channel::Channel;
pub use config::{
    ChannelConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_CONNECTIONS, DEFAULT_HEARTBEAT_INTERVAL,
};
pub use interceptor::{ClientInterceptor, OutgoingRequest};
pub use method::{CallOptions, MethodDescriptor};
pub use pending_call::PendingCall;
