//! tarpc over TCP: `#[tarpc::service]`, its serde transport with the JSON
//! codec (`serde-transport-json`; tarpc's other built-in codec is bincode,
//! which is unmaintained), length-delimited frames, `TCP_NODELAY` on both
//! sides, default client and server configuration. JSON writes a `bytes`
//! payload as an array of numbers, about 3.6 characters per byte.

use std::net::SocketAddr;

use bytes::Bytes;
use futures::StreamExt;
use tarpc::serde_transport;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Json;
use tarpc::{client, context};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::load::Caller;

/// The largest frame either side accepts (JSON of 64 KiB is ~240 KB).
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// The service, as tarpc defines services: in Rust.
#[tarpc::service]
pub trait Echo {
    /// Returns `payload` unchanged.
    async fn echo(payload: Bytes) -> Bytes;
}

/// The service: answers the payload it was sent.
#[derive(Debug, Clone, Copy)]
struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(self, _: context::Context, payload: Bytes) -> Bytes {
        payload
    }
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// Starts a tarpc server on 127.0.0.1 (an ephemeral port); each request
/// runs as its own task.
pub async fn serve() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("tarpc: cannot bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("tarpc: {e}"))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let transport = serde_transport::new(Framed::new(stream, codec()), Json::default());
            let channel = BaseChannel::with_defaults(transport);
            tokio::spawn(channel.execute(EchoImpl.serve()).for_each(|call| async {
                tokio::spawn(call);
            }));
        }
    });
    Ok(addr)
}

/// A tarpc client on one connection; slots clone it.
#[derive(Clone)]
pub struct TarpcCaller(EchoClient);

/// Connects one client to `addr`.
pub async fn connect(addr: SocketAddr) -> Result<TarpcCaller, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("tarpc: cannot connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("tarpc: {e}"))?;
    let transport = serde_transport::new(Framed::new(stream, codec()), Json::default());
    Ok(TarpcCaller(
        EchoClient::new(client::Config::default(), transport).spawn(),
    ))
}

impl Caller for TarpcCaller {
    async fn call(&mut self, payload: Bytes) -> Result<usize, String> {
        self.0
            .echo(context::current(), payload)
            .await
            .map(|reply| reply.len())
            .map_err(|e| format!("tarpc: {e}"))
    }
}
