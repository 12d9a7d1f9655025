//! Building, running and stopping a server: [`Server`], [`ServerBuilder`],
//! [`ServerHandle`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::call::ServiceHandler;
use super::config::ServerConfig;
use super::connection::{serve_connection, serve_stream};
use super::interceptor::ServerInterceptor;
use super::shared::{Phase, SerializerSet, ServerParts, ServerShared, stopped_running};
use crate::BoxFuture;
use crate::builtin::{Builtins, HealthReporter};
use crate::protocol::MetadataLimits;
use crate::serializer::Serializer;

/// After the drain, how long connections get to write their last answers
/// before they are dropped (each connection gives its writer 1 s; peers
/// that do not read are not waited for longer).
const CLOSE_GRACE: Duration = Duration::from_millis(1500);
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
    builtins: Builtins,
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
            .field("builtins", &self.builtins)
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
    /// 16384). At the limit, admission is fair across connections: a
    /// request is still admitted if its connection holds fewer calls than
    /// its fair share (this limit divided by the connections with calls in
    /// flight), and answered status 7 otherwise. So a few connections that
    /// fill the server can't lock other clients out; the server then holds
    /// at most twice this many calls.
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.config.max_in_flight = calls;
        self
    }

    /// The server-wide pool of bytes connections share once they hold more
    /// than their reserved share (default 128 MiB). A connection holds its
    /// read buffer (the part of a frame that has arrived), the request
    /// frames of its calls in flight, and its answers until they are
    /// written. When the pool is spent, connections past their share stop
    /// being read, and answers that need the pool are replaced by status
    /// 18; connections within their share go on as before. The server
    /// holds at most this pool plus, per connection, its reserved share and
    /// one read (64 KiB) and short status frames.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.config.max_buffered_bytes = bytes;
        self
    }

    /// The most bytes one connection may hold (default 32 MiB; raised if
    /// needed to the largest frame plus 64 KiB, so that a largest request
    /// can always be read). A connection that holds it is no longer read
    /// until it is down to half; an answer that would take it past the
    /// limit is replaced by status 18, unless nothing else is queued (a
    /// single answer larger than the limit still goes out, pool
    /// permitting).
    pub fn max_buffered_bytes_per_connection(mut self, bytes: usize) -> Self {
        self.config.max_buffered_bytes_per_connection = bytes;
        self
    }

    /// The bytes each connection can always hold, whatever the others hold
    /// (default 64 KiB): enough for many small calls, so a connection's
    /// small calls are served even when other connections have spent the
    /// pool.
    pub fn reserved_bytes_per_connection(mut self, bytes: usize) -> Self {
        self.config.reserved_bytes_per_connection = bytes;
        self
    }

    /// How long a connection's answers may wait for its peer (default
    /// 30 s): a connection whose writes make no progress for this long
    /// (the peer stopped reading and the socket's buffers are full), or
    /// that stays paused at its byte limit with answers unwritten for this
    /// long (it must drain half its limit meanwhile), is closed and its
    /// calls stopped. `None` never closes a connection for it (its bytes
    /// stay bounded by the limits above).
    pub fn write_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.write_stall_timeout = timeout;
        self
    }

    /// How long one-way calls go on once their connection has closed
    /// (default 30 s). A closed connection's calls that wait for an answer
    /// are stopped at once (nobody is left to answer); one-way calls have
    /// no answer to deliver and their client may have sent them and left,
    /// so they run on, for at most this long, then are stopped. Their slots
    /// and request bytes count until then, and so does their connection,
    /// against [`max_connections`](Self::max_connections).
    pub fn orphaned_oneway_timeout(mut self, timeout: Duration) -> Self {
        self.config.orphaned_oneway_timeout = timeout;
        self
    }

    /// The accept queue of the listener [`bind`](Self::bind) creates
    /// (default 1024; the kernel caps it at `net.core.somaxconn`). Bursts
    /// of connects wait in it while the accept loop catches up; a connect
    /// that finds it full waits for a SYN retransmit (1 s). A listener
    /// given to [`serve`](Self::serve) keeps its own.
    pub fn listen_backlog(mut self, connections: u32) -> Self {
        self.config.listen_backlog = connections;
        self
    }

    /// Whether handlers start on their connection's reader (default
    /// `true`). A handler is then polled once where its request was read,
    /// and gets a task of its own only if it has to wait: a handler that
    /// answers at once costs no task and no wake-up, and its answer leaves
    /// with the others of the same read. The price: until its first
    /// `.await` that waits, the handler holds up the reading of its
    /// connection. Turn it off (`false`: every call is spawned as a task)
    /// for handlers that compute for long before they first wait, or move
    /// that work to `tokio::task::spawn_blocking`.
    pub fn inline_handlers(mut self, inline: bool) -> Self {
        self.config.inline_handlers = inline;
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

    /// Accepts requests only in these serializers; a request in any other
    /// is answered status 5 (unsupported serializer), never served in
    /// another one. By default every built-in serializer and every custom
    /// one added with [`add_serializer`](Self::add_serializer) is
    /// accepted, as PROTOCOL.md says; this is an opt-in restriction. The
    /// list is the whole set: a custom serializer must be in it to be
    /// accepted (being in it also registers it). Calling this again
    /// replaces the list.
    pub fn allow_only_serializers(
        mut self,
        serializers: impl IntoIterator<Item = Serializer>,
    ) -> Self {
        let mut allowed = SerializerSet::EMPTY;
        for serializer in serializers {
            allowed.insert(serializer.id());
            if let Serializer::Custom(_) = serializer {
                self = self.add_serializer(serializer);
            }
        }
        self.parts.allowed_serializers = Some(allowed);
        self
    }

    /// How many connections may be open at once (default 10 000). A
    /// connection over the limit is accepted, answered one status 7 frame
    /// with request id 0 ("too many connections"), and closed; the client
    /// sees its calls fail with that message instead of hanging.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.config.max_connections = connections;
        self
    }

    /// How long a new connection has to deliver its first whole frame
    /// (default 10 s); a peer that connects and stays silent, or trickles
    /// its first frame, is closed. `None` disables the deadline.
    pub fn first_frame_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.first_frame_timeout = timeout;
        self
    }

    /// How long a frame has to arrive whole once its first byte has come
    /// (default 30 s); a peer that stalls or trickles in the middle of a
    /// frame is closed. `None` disables the deadline.
    pub fn frame_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.frame_timeout = timeout;
        self
    }

    /// The most metadata one request may carry (default 64 entries and
    /// 8 KiB of keys and values); a request over either is answered
    /// status 4 without its metadata being copied, and the connection goes
    /// on.
    pub fn max_metadata(mut self, entries: usize, bytes: usize) -> Self {
        self.config.metadata_limits = MetadataLimits {
            max_entries: entries,
            max_bytes: bytes,
        };
        self
    }

    /// How many protocol errors a connection may make (default 16): frames
    /// a correct client never sends, such as an unparsable request body, a
    /// request id already in flight, or a frame type a server does not
    /// take. Each is answered when it can be; the next one past the budget
    /// closes the connection.
    pub fn max_protocol_errors(mut self, errors: u32) -> Self {
        self.config.max_protocol_errors = errors;
        self
    }

    /// Also serves `courier.Reflection` (off by default): it lists every
    /// service of the server, the built-ins included, and returns the
    /// `.rpc` sources idlc embedded in each one's generated code.
    pub fn enable_reflection(mut self) -> Self {
        self.builtins.reflection = true;
        self
    }

    /// Also serves `courier.Health` (off by default): `check(service)`
    /// answers `SERVING` or `NOT_SERVING`, as set through
    /// [`ServerHandle::health`]; every check answers `NOT_SERVING` once a
    /// shutdown starts.
    pub fn enable_health(mut self) -> Self {
        self.builtins.health = true;
        self
    }

    /// How long a graceful shutdown waits for calls in flight (default
    /// 30 s) before it stops them; the stopped calls are answered status 6.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.drain_timeout = timeout;
        self
    }

    /// Serves every accepted connection over TLS (see [`crate::tls`]): the
    /// handshake runs in the connection's task, bounded by the config's
    /// handshake timeout; with a client CA set, clients must present a
    /// certificate signed by it (mutual TLS). Register such a server's
    /// instances with [`ServiceInstance::with_tls`](crate::registry::ServiceInstance::with_tls).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::tls::ServerTlsConfig) -> Self {
        self.parts.tls = Some(config);
        self
    }

    /// Binds a listener (with `SO_REUSEADDR` and the
    /// [listen backlog](Self::listen_backlog)) and starts serving on it.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<ServerHandle> {
        let listener = super::listener::bind(addr, self.config.listen_backlog).await?;
        self.serve(listener)
    }

    /// Starts serving on a bound listener. Must be called within a tokio
    /// runtime.
    pub fn serve(self, listener: TcpListener) -> io::Result<ServerHandle> {
        let local_addr = listener.local_addr()?;
        let mut parts = self.parts;
        let health = self.builtins.install(&mut parts.services);
        let shared = Arc::new(ServerShared::new(parts, self.config));
        let (streams, stream_rx) = mpsc::unbounded_channel();
        let accept = tokio::spawn(accept_loop(listener, stream_rx, Arc::clone(&shared)));
        tracing::debug!(%local_addr, "server listening");
        Ok(ServerHandle {
            local_addr,
            shared,
            accept,
            streams,
            health,
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
    /// Connections given to [`serve_stream`](Self::serve_stream), for the
    /// accept loop to run with the connections it accepted.
    streams: mpsc::UnboundedSender<BoxFuture<'static, ()>>,
    /// Set when `courier.Health` is served.
    health: Option<HealthReporter>,
}

impl std::fmt::Debug for ServerShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerShared")
            .field("services", &self.router.names().collect::<Vec<_>>())
            .field("config", self.config())
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on (with the port chosen for `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Sets what `courier.Health` answers (the whole server or one service
    /// serving or not); `None` unless
    /// [`enable_health`](ServerBuilder::enable_health) was called.
    pub fn health(&self) -> Option<HealthReporter> {
        self.health.clone()
    }

    /// Calls in flight on all connections (a test and metrics hook).
    #[doc(hidden)]
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// Connections open now, and closed ones whose one-way calls still
    /// run (see [`orphaned_oneway_timeout`](ServerBuilder::orphaned_oneway_timeout)),
    /// over the limit ones being refused not counted (a test and metrics
    /// hook).
    #[doc(hidden)]
    pub fn connection_count(&self) -> usize {
        self.shared.connection_count()
    }

    /// Bytes all connections hold now: read buffers, calls in flight (their
    /// request frames, tasks and metadata), answers not yet written, and
    /// their tables of calls ([`CALL_SLOT_BYTES`](super::CALL_SLOT_BYTES)
    /// a slot) (a test and metrics hook).
    #[doc(hidden)]
    pub fn buffered_bytes(&self) -> usize {
        self.shared.env.buffered_bytes()
    }

    /// The most bytes one connection holds now (a test and metrics hook).
    #[doc(hidden)]
    pub fn max_connection_bytes(&self) -> usize {
        self.shared.env.max_connection_bytes()
    }

    /// Bytes borrowed from the server-wide pool now (a test and metrics
    /// hook).
    #[doc(hidden)]
    pub fn pool_bytes(&self) -> usize {
        self.shared.env.memory.used()
    }

    /// Whether accepted connections speak TLS ([`ServerBuilder::tls`]):
    /// what to register in discovery
    /// ([`ServiceInstance::with_tls`](crate::registry::ServiceInstance::with_tls)).
    pub fn speaks_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.shared.tls.is_some();
        #[cfg(not(feature = "tls"))]
        return false;
    }

    /// Serves one already-connected stream of any type, as it is (no TLS
    /// is applied, even on a TLS server), like an accepted connection: same
    /// services, limits and connection count, closed by
    /// [`shutdown`](Self::shutdown). `peer` is what handlers see as
    /// [`CallContext::peer`](crate::CallContext::peer).
    ///
    /// For in-memory transports, tests and fuzzing:
    ///
    /// ```no_run
    /// # async fn demo(server: &courier::server::ServerHandle) {
    /// let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    /// server.serve_stream(server_end, "127.0.0.1:1".parse().unwrap());
    /// // write Courier frames to `client_end`, read the answers from it
    /// # drop(client_end); }
    /// ```
    pub fn serve_stream<S>(&self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let connection = Box::pin(serve_stream(stream, peer, Arc::clone(&self.shared)));
        if self.streams.send(connection).is_err() {
            tracing::debug!(%peer, "the server stopped accepting; stream dropped");
        }
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Shuts down gracefully: stops accepting connections, answers new
    /// requests status 9, waits for the calls in flight (up to the drain
    /// timeout, then stops them and answers them status 6), lets
    /// connections write their last answers (peers that do not read them
    /// are not waited for), and closes them. Resolves as soon as nothing is
    /// left; every handler it stopped has ended by then, unless one blocks
    /// its thread for longer than the close grace (1.5 s).
    pub async fn shutdown(self) {
        let ServerHandle {
            shared,
            accept,
            health,
            ..
        } = self;
        tracing::debug!("server draining");
        if let Some(health) = &health {
            health.start_draining();
        }
        shared.stop_accepting();
        // The accept loop returns the connections it started; once it has,
        // the listener is closed and new connections are refused.
        let mut connections = accept.await.unwrap_or_default();
        shared.start_draining();
        if tokio::time::timeout(shared.config().drain_timeout, shared.wait_idle())
            .await
            .is_err()
        {
            tracing::debug!(
                in_flight = shared.in_flight(),
                "drain timeout passed; stopping calls (answered status 6)"
            );
        }
        shared.close();
        let closed = tokio::time::timeout(CLOSE_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if closed.is_err() {
            // Aborted, each connection task stops its calls as it goes
            // (`CallsOfTheTask`); they end at their next turn, unless a
            // handler blocks its thread.
            connections.shutdown().await;
            let _ = tokio::time::timeout(CLOSE_GRACE, shared.wait_idle()).await;
        }
        tracing::debug!("server stopped");
    }
}

/// Accepts connections until the server leaves `Running`; returns the
/// connection tasks still running.
async fn accept_loop(
    listener: TcpListener,
    mut streams: mpsc::UnboundedReceiver<BoxFuture<'static, ()>>,
    shared: Arc<ServerShared>,
) -> JoinSet<()> {
    let mut phase: watch::Receiver<Phase> = shared.subscribe();
    let mut connections = JoinSet::new();
    let mut streams_open = true;
    loop {
        tokio::select! {
            biased;
            () = stopped_running(&mut phase) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            given = streams.recv(), if streams_open => match given {
                Some(connection) => {
                    connections.spawn(connection);
                }
                None => streams_open = false,
            },
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
