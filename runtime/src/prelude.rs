//! What code that serves or calls generated services usually needs:
//! `use courier::prelude::*;`.
//!
//! Brings the [`Stub`] trait into scope (the configuration API of every
//! generated client: `GreeterClient::new(channel)`, `.with_timeout(..)`),
//! and the types of handler signatures.

pub use crate::client::{CallOptions, Channel, Stub};
pub use crate::codegen::RpcResult;
pub use crate::context::{CallContext, Metadata};
pub use crate::error::{RpcError, Status, StatusCode};
pub use crate::serializer::Serializer;
pub use crate::server::{ItemSender, Server};
