//! tonic: unary gRPC over HTTP/2 with prost messages, without protoc or
//! tonic-build. The message is a hand-written prost struct (exactly what
//! prost-build would generate for `message EchoMessage { bytes payload = 1; }`
//! with `bytes = "bytes"`), and the service is the hand-written form of
//! tonic-build's generated server (`tonic::server::Grpc::unary` behind a
//! tower `Service`) and client (`tonic::client::Grpc::unary`). The server is
//! tonic's own `transport::Server` (no router: one service needs none),
//! `TCP_NODELAY` on both sides, default settings except one: for large
//! payloads (≥ [`ADAPTIVE_WINDOW_FROM`]) both sides set
//! `http2_adaptive_window(true)`, as a competent user sending large
//! messages would (HTTP/2 flow control then sizes its windows to the
//! measured bandwidth-delay product instead of the 64 KiB default).

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::task::{Context, Poll};

use bytes::Bytes;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use crate::load::Caller;

/// Payloads from this size on run with `http2_adaptive_window(true)` on
/// both sides.
pub const ADAPTIVE_WINDOW_FROM: usize = 32 * 1024;

/// Whether a run with `payload`-byte calls sets the adaptive window.
pub fn adaptive_window(payload: usize) -> bool {
    payload >= ADAPTIVE_WINDOW_FROM
}

/// The gRPC path of the one method.
const ECHO_PATH: &str = "/bench.Echo/Echo";

/// `message EchoMessage { bytes payload = 1; }`, request and response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoMessage {
    /// The payload echoed.
    #[prost(bytes = "bytes", tag = "1")]
    pub payload: Bytes,
}

/// The unary handler: answers the request's message.
#[derive(Debug, Clone, Copy)]
struct EchoUnary;

impl tonic::server::UnaryService<EchoMessage> for EchoUnary {
    type Response = EchoMessage;
    type Future = Ready<Result<Response<EchoMessage>, Status>>;

    fn call(&mut self, request: Request<EchoMessage>) -> Self::Future {
        ready(Ok(Response::new(request.into_inner())))
    }
}

/// The service as tonic-build would generate it: routes by path, runs the
/// unary handler through `tonic::server::Grpc` with the prost codec.
#[derive(Debug, Clone, Copy)]
pub struct EchoService;

impl tonic::server::NamedService for EchoService {
    const NAME: &'static str = "bench.Echo";
}

impl<B> Service<http::Request<B>> for EchoService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() == ECHO_PATH {
            Box::pin(async move {
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<EchoMessage, EchoMessage>::default());
                Ok(grpc.unary(EchoUnary, request).await)
            })
        } else {
            Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) })
        }
    }
}

/// Starts tonic's server on 127.0.0.1 (an ephemeral port), with HTTP/2's
/// adaptive window if `adaptive_window`.
pub async fn serve(adaptive_window: bool) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("tonic: cannot bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("tonic: {e}"))?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(async move {
        if let Err(e) = Server::builder()
            .http2_adaptive_window(adaptive_window.then_some(true))
            .serve_with_incoming(EchoService, incoming)
            .await
        {
            eprintln!("tonic server stopped: {e}");
        }
    });
    Ok(addr)
}

/// A gRPC client on one HTTP/2 connection; slots clone it.
#[derive(Clone)]
pub struct TonicCaller(tonic::client::Grpc<Channel>);

/// Connects one channel (one HTTP/2 connection) to `addr`, with HTTP/2's
/// adaptive window if `adaptive_window`.
pub async fn connect(addr: SocketAddr, adaptive_window: bool) -> Result<TonicCaller, String> {
    let mut endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("tonic: {e}"))?
        .tcp_nodelay(true);
    if adaptive_window {
        endpoint = endpoint.http2_adaptive_window(true);
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("tonic: cannot connect: {e}"))?;
    Ok(TonicCaller(tonic::client::Grpc::new(channel)))
}

impl Caller for TonicCaller {
    async fn call(&mut self, payload: Bytes) -> Result<usize, String> {
        self.0
            .ready()
            .await
            .map_err(|e| format!("tonic: not ready: {e}"))?;
        let reply = self
            .0
            .unary(
                Request::new(EchoMessage { payload }),
                http::uri::PathAndQuery::from_static(ECHO_PATH),
                ProstCodec::<EchoMessage, EchoMessage>::default(),
            )
            .await
            .map_err(|e| format!("tonic: {e}"))?;
        Ok(reply.into_inner().payload.len())
    }
}
