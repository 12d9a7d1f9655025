//! The TCP server: [`Server::builder`] takes services ([`ServiceHandler`],
//! implemented by generated code), interceptors and custom serializers,
//! binds, and returns a [`ServerHandle`].
//!
//! Per connection, one reader task decodes frames and routes requests to
//! their service (`router.rs`), which polls each call's handler once inline
//! and spawns a task only for one that is not done ([`IncomingCall`]); one
//! writer task writes every queued response with one vectored write. Every byte a connection holds is charged to it
//! (`memory.rs`), and calls are admitted fairly across connections
//! (`admission.rs`).

mod admission;
mod builder;
mod call;
mod config;
mod connection;
mod connection_shared;
mod environment;
mod interceptor;
mod item_sender;
mod limits;
mod listener;
mod memory;
mod respond;
mod response_metadata;
mod router;
mod shared;
mod slots;
mod writer;

pub use crate::protocol::CREDIT_WINDOW;
pub use builder::{Server, ServerBuilder, ServerHandle};
pub use call::{IncomingCall, ServiceHandler};
pub use config::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_FIRST_FRAME_TIMEOUT, DEFAULT_FRAME_TIMEOUT,
    DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_BUFFERED_BYTES_PER_CONNECTION, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION, DEFAULT_MAX_METADATA_BYTES,
    DEFAULT_MAX_METADATA_ENTRIES, DEFAULT_MAX_PROTOCOL_ERRORS, DEFAULT_ORPHANED_ONEWAY_TIMEOUT,
    DEFAULT_RESERVED_BYTES_PER_CONNECTION, DEFAULT_SERVER_HEARTBEAT_INTERVAL,
    DEFAULT_WRITE_STALL_TIMEOUT,
};
pub use interceptor::ServerInterceptor;
pub use item_sender::{ItemSendError, ItemSender};
pub use listener::DEFAULT_LISTEN_BACKLOG;
pub(crate) use response_metadata::ResponseMetadataSlot;
pub use slots::CALL_SLOT_BYTES;
