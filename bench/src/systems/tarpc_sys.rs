//! tarpc over TCP: `#[tarpc::service]`, its serde transport
//! (`tarpc::serde_transport`: length-delimited frames) with one of its two
//! built-in codecs, `TCP_NODELAY` on both sides, default client and server
//! configuration.
//!
//! - JSON (`serde-transport-json`) writes a `bytes` payload as an array of
//!   numbers, about 3.6 characters per byte.
//! - bincode (`serde-transport-bincode`: `tokio_serde::formats::Bincode`,
//!   bincode 1) writes it as a length and the raw bytes. The bincode crate
//!   is unmaintained: Courier does not use it; the benchmark does only
//!   because tarpc's users do, so it is the fair binary comparison (with
//!   `courier-postcard`, serde on both sides).

use std::net::SocketAddr;

use bytes::Bytes;
use futures::StreamExt;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::{Bincode, Json};
use tarpc::{ClientMessage, Response, Transport, client, context, serde_transport};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::load::Caller;

/// The largest frame either side accepts (JSON of 64 KiB is ~240 KB).
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// tarpc's serde codec on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `tokio_serde::formats::Json`.
    Json,
    /// `tokio_serde::formats::Bincode` (bincode 1, default options).
    Bincode,
}

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

fn framed(stream: TcpStream) -> Framed<TcpStream, LengthDelimitedCodec> {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec();
    Framed::new(stream, codec)
}

/// Serves one connection: each request runs as its own task.
fn serve_connection<T>(transport: T)
where
    T: Transport<Response<EchoResponse>, ClientMessage<EchoRequest>> + Send + 'static,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    let channel = BaseChannel::with_defaults(transport);
    tokio::spawn(channel.execute(EchoImpl.serve()).for_each(|call| async {
        tokio::spawn(call);
    }));
}

/// Starts a tarpc server on 127.0.0.1 (an ephemeral port) speaking `codec`.
pub async fn serve(codec: Codec) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("tarpc: cannot bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("tarpc: {e}"))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            match codec {
                Codec::Json => {
                    serve_connection(serde_transport::new(framed(stream), Json::default()))
                }
                Codec::Bincode => {
                    serve_connection(serde_transport::new(framed(stream), Bincode::default()))
                }
            }
        }
    });
    Ok(addr)
}

/// A tarpc client on one connection; slots clone it.
#[derive(Clone)]
pub struct TarpcCaller(EchoClient);

/// Connects one client to `addr`, speaking `codec`.
pub async fn connect(addr: SocketAddr, codec: Codec) -> Result<TarpcCaller, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("tarpc: cannot connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("tarpc: {e}"))?;
    let config = client::Config::default();
    let client = match codec {
        Codec::Json => EchoClient::new(
            config,
            serde_transport::new(framed(stream), Json::default()),
        )
        .spawn(),
        Codec::Bincode => EchoClient::new(
            config,
            serde_transport::new(framed(stream), Bincode::default()),
        )
        .spawn(),
    };
    Ok(TarpcCaller(client))
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
