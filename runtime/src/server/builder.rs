//! Building, running and stopping a server: [`Server`], [`ServerBuilder`],
//! [`ServerHandle`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::call::ServiceHandler;
use super::connection::serve_connection;
use super::interceptor::ServerInterceptor;
use super::shared::{Phase, ServerConfig, ServerParts, ServerShared, stopped_running};
use crate::serializer::Serializer;

/// After the drain, how long connections get to write their last answers
/// before they are dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// After a failed `accept` (e.g. out of file descriptors), how long the
/// accept loop pauses before it tries again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A Courier server over TCP. Start with [`Server::builder`].
#[derive(Debug)]
pub struct Server {
    _private: (),
}

impl Server {
    /// A builder with no services and the default limits.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }
}

/// Configures a server: its services, interceptors, serializers and limits.
#[derive(Default)]
pub struct ServerBuilder {
    parts: ServerParts,
    config: ServerConfig,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("services", &self.parts.services.keys().collect::<Vec<_>>())
            .field("interceptors", &self.parts.interceptors.len())
            .field(
                "serializers",
                &self.parts.serializers.values().collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish()
    }
}

impl ServerBuilder {
    /// Serves `handler` under its wire name; a later service with the same
    /// wire name replaces an earlier one.
    pub fn add_service<H: ServiceHandler>(mut self, handler: H) -> Self {
        let name = handler.wire_name();
        if self
            .parts
            .services
            .insert(name, Arc::new(handler))
            .is_some()
        {
            tracing::warn!(
                service = name,
                "service added twice; the last one is served"
            );
        }
        self
    }

    /// The largest request body accepted (default 16 MiB); a larger one is
    /// answered status 10 and its connection closed. Replies over it are
    /// answered status 8.
    pub fn max_frame_size(mut self, bytes: u32) -> Self {
        self.config.max_frame_size = bytes;
        self
    }

    /// How many calls may be in flight on one connection (default 1024);
    /// beyond it requests are answered status 7. A cancelled call counts
    /// until its handler has actually stopped, so a flood of requests and
    /// cancels can't pile up handler tasks.
    pub fn max_in_flight_per_connection(mut self, calls: usize) -> Self {
        self.config.max_in_flight_per_connection = calls;
        self
    }

    /// How many calls may be in flight on the whole server (default
    /// 16384); beyond it requests are answered status 7.
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.config.max_in_flight = calls;
        self
    }

    /// The heartbeat interval (default 30 s): a connection that sends no
    /// frame (not even a ping) for three intervals is closed. `None` keeps
    /// idle connections open forever.
    pub fn heartbeat_interval(mut self, interval: Option<Duration>) -> Self {
        self.config.heartbeat_interval = interval;
        self
    }

    /// Adds an interceptor, run on every call after those added before it.
    pub fn add_interceptor(mut self, interceptor: impl ServerInterceptor) -> Self {
        self.parts.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Accepts requests in a custom serializer (see
    /// [`Serializer::custom`]); a later one with the same id replaces an
    /// earlier one. The built-in serializers are always accepted; adding
    /// one changes nothing.
    pub fn add_serializer(mut self, serializer: Serializer) -> Self {
        let id = serializer.id();
        if let Serializer::Custom(_) = serializer {
            if id <= Serializer::LAST_BUILTIN_ID {
                tracing::warn!(id, "a custom serializer with a reserved id is ignored");
            } else if self.parts.serializers.insert(id, serializer).is_some() {
                tracing::warn!(id, "serializer added twice; the last one is used");
            }
        }
        self
    }

    /// How long a graceful shutdown waits for calls in flight (default
    /// 30 s) before it stops them.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.drain_timeout = timeout;
        self
    }

    /// Binds a listener and starts serving on it.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<ServerHandle> {
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener)
    }

    /// Starts serving on a bound listener. Must be called within a tokio
    /// runtime.
    pub fn serve(self, listener: TcpListener) -> io::Result<ServerHandle> {
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(ServerShared::new(self.parts, self.config));
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        tracing::debug!(%local_addr, "server listening");
        Ok(ServerHandle {
            local_addr,
            shared,
            accept,
        })
    }
}

/// A running server.
///
/// Dropping the handle does not stop the server (it runs until its runtime
/// shuts down); call [`shutdown`](ServerHandle::shutdown) or
/// [`run_until`](ServerHandle::run_until) to stop it gracefully.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    shared: Arc<ServerShared>,
    accept: JoinHandle<JoinSet<()>>,
}

impl std::fmt::Debug for ServerShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerShared")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on (with the port chosen for `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Calls in flight on all connections (a test and metrics hook).
    #[doc(hidden)]
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Shuts down gracefully: stops accepting connections, answers new
    /// requests status 9, waits for the calls in flight (up to the drain
    /// timeout, then stops them), lets connections write their last
    /// answers, and closes them. Resolves when the server is stopped.
    pub async fn shutdown(self) {
        let ServerHandle { shared, accept, .. } = self;
        tracing::debug!("server draining");
        shared.stop_accepting();
        // The accept loop returns the connections it started; once it has,
        // the listener is closed and new connections are refused.
        let mut connections = accept.await.unwrap_or_default();
        shared.start_draining();
        if tokio::time::timeout(shared.config.drain_timeout, shared.wait_idle())
            .await
            .is_err()
        {
            tracing::debug!(
                in_flight = shared.in_flight(),
                "drain timeout passed; stopping calls"
            );
        }
        shared.close();
        let closed = tokio::time::timeout(CLOSE_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if closed.is_err() {
            connections.shutdown().await;
        }
        tracing::debug!("server stopped");
    }
}

/// Accepts connections until the server leaves `Running`; returns the
/// connection tasks still running.
async fn accept_loop(listener: TcpListener, shared: Arc<ServerShared>) -> JoinSet<()> {
    let mut phase: watch::Receiver<Phase> = shared.subscribe();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped_running(&mut phase) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, Arc::clone(&shared)));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    tracing::debug!("stopped accepting connections");
    connections
}
