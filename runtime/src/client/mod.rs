//! The multiplexing client: a [`Channel`] carries any number of concurrent
//! calls over one connection; generated stubs call [`Channel::unary`] and
//! [`Channel::oneway`] with a static [`MethodDescriptor`] per method.

mod channel;
mod command;
mod connection;
mod dial;
mod method;
mod task;

pub use channel::{Channel, ChannelConfig, DEFAULT_CONNECT_TIMEOUT};
pub use method::{CallOptions, MethodDescriptor};
