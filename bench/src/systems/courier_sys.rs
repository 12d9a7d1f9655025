//! Courier: the `Echo` service of `bench/idl/echo.rpc`, compiled by idlc in
//! build.rs, served by `courier::server::Server` and called through the
//! generated `EchoClient` over one multiplexed `Channel`.

use std::net::SocketAddr;

use bytes::Bytes;
use courier::client::{CallOptions, Channel, Stub};
use courier::server::Server;
use courier::{CallContext, RpcError, Serializer};

use crate::load::Caller;

/// The code idlc generated from `echo.rpc`.
#[allow(missing_docs, dead_code, clippy::all)]
pub mod echo_idl {
    courier::include_idl!("echo");
}

use echo_idl::echo::{Echo, EchoClient, EchoServer};

/// The postcard serializer, if this build of the runtime has one (found by
/// its header id, 3 in PROTOCOL.md, so the harness builds either way).
pub fn postcard() -> Option<Serializer> {
    Serializer::from_id(3).filter(|s| s.name() == "postcard")
}

/// The service: answers the payload it was sent.
#[derive(Debug, Clone, Copy)]
pub struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, _ctx: CallContext, payload: Bytes) -> Result<Bytes, RpcError> {
        Ok(payload)
    }
}

/// Starts a server on 127.0.0.1 (an ephemeral port); it runs until the
/// runtime stops.
pub async fn serve() -> Result<SocketAddr, String> {
    let handle = Server::builder()
        .add_service(EchoServer::new(EchoImpl))
        .bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("courier: cannot bind: {e}"))?;
    Ok(handle.local_addr())
}

/// A client stub on one channel; every slot clones it (clones share the
/// connection).
#[derive(Clone)]
pub struct CourierCaller(EchoClient);

/// Connects one channel to `addr`, calling with `serializer`.
pub async fn connect(addr: SocketAddr, serializer: Serializer) -> Result<CourierCaller, String> {
    let channel = Channel::connect(addr)
        .await
        .map_err(|e| format!("courier: cannot connect: {e}"))?;
    let options = CallOptions {
        serializer,
        ..CallOptions::default()
    };
    Ok(CourierCaller(
        EchoClient::new(channel).with_options(options),
    ))
}

impl Caller for CourierCaller {
    async fn call(&mut self, payload: Bytes) -> Result<usize, String> {
        self.0
            .echo(payload)
            .await
            .map(|reply| reply.len())
            .map_err(|e| format!("courier: {e}"))
    }
}
