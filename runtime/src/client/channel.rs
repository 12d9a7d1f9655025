//! [`Channel`]: multiplexed connections to one server that any number of
//! calls share.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rand::seq::IndexedRandom;
use tokio::net::{ToSocketAddrs, lookup_host};
use tokio::runtime::Handle;
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

use super::balanced::{BalanceOptions, Balanced, InstanceState, ProbeSender};
use super::command::RawResponse;
use super::config::ChannelConfig;
use super::connection::ConnectionSettings;
#[cfg(feature = "tls")]
use super::dial::DialTls;
use super::dial::Dialer;
use super::interceptor::{ClientInterceptor, OutgoingRequest};
use super::method::{CallOptions, MethodDescriptor};
use super::pool::Pool;
use super::request::{RequestHead, decode_response, encode_request};
use crate::context::{Metadata, cap_timeout};
use crate::error::{RpcError, Status, StatusCode, TransportError};
use crate::protocol::MessageKind;
use crate::registry::{Registry, ServiceInstance};
use crate::serializer::{DeclaredError, Serializer, WireMessage};
use crate::tls::TlsError;

/// Multiplexed connections to one server: cheap to clone, every clone
/// shares the connections, and calls on them run concurrently.
///
/// The channel keeps [`ChannelConfig::connections`] connections and spreads
/// calls over them. One task per connection owns its socket; calls hand it
/// their encoded frame and wait for their response. After a connection
/// loss, the calls in flight on it fail with
/// [`TransportError::ConnectionLost`] and the next call reconnects.
///
/// Calls are made by generated stubs ([`unary`](Channel::unary),
/// [`oneway`](Channel::oneway)); the call modes
/// [`call_blocking`](Channel::call_blocking),
/// [`spawn_call`](Channel::spawn_call) and
/// [`spawn_call_with_callback`](Channel::spawn_call_with_callback) take
/// such a call.
#[derive(Clone)]
pub struct Channel {
    pub(super) target: Target,
    pub(super) default_timeout: Option<Duration>,
    pub(super) interceptors: Arc<[Arc<dyn ClientInterceptor>]>,
}

/// Where a channel's calls go: one endpoint, or every instance of a service.
#[derive(Clone)]
pub(super) enum Target {
    /// One server.
    Endpoint(Arc<ChannelShared>),
    /// A balanced set of endpoints kept current from a registry.
    Balanced(Arc<Balanced>),
}

/// What every clone of a channel shares.
pub(super) struct ChannelShared {
    pub(super) pool: Pool,
    pub(super) next_id: AtomicU64,
    pub(super) max_frame_size: u32,
    target: String,
    /// The runtime the channel was created on: its connection tasks run
    /// there, and blocking calls drive their futures with it.
    pub(super) runtime: Handle,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Channel");
        match &self.target {
            Target::Endpoint(shared) => f
                .field("target", &shared.target)
                .field("connections", &shared.pool.len()),
            Target::Balanced(balanced) => f.field("service", &balanced.service()),
        }
        .field("default_timeout", &self.default_timeout)
        .field("interceptors", &self.interceptors.len())
        .field("pending", &self.pending_len())
        .finish()
    }
}

impl Channel {
    /// Connects to `addr` now; fails fast with [`TransportError::Connect`].
    /// Must be called within a tokio runtime (the channel's tasks run on
    /// it).
    pub async fn connect<A>(addr: A) -> Result<Channel, TransportError>
    where
        A: ToSocketAddrs + fmt::Display,
    {
        Channel::connect_with(addr, ChannelConfig::default()).await
    }

    /// Connects to `addr` now, with `config`.
    pub async fn connect_with<A>(addr: A, config: ChannelConfig) -> Result<Channel, TransportError>
    where
        A: ToSocketAddrs + fmt::Display,
    {
        let shared = ChannelShared::connect(addr, &config).await?;
        Ok(Channel::from_target(
            Target::Endpoint(shared),
            config.default_timeout,
        ))
    }

    /// A channel over every instance of `service` in `registry`, kept
    /// current as instances come and go, that spreads calls with
    /// `options.strategy` and fails over as the balancing chapter of the
    /// book describes. Waits for the registry's first list (it may be
    /// empty: calls then fail with [`TransportError::NoInstance`] until an
    /// instance appears). Must be called within a tokio runtime.
    pub async fn balanced(
        registry: Arc<dyn Registry>,
        service: &str,
        options: BalanceOptions,
    ) -> Result<Channel, TransportError> {
        let default_timeout = options.channel.default_timeout;
        let balanced = Balanced::start(registry, service, options).await?;
        Ok(Channel::from_target(
            Target::Balanced(balanced),
            default_timeout,
        ))
    }

    fn from_target(target: Target, default_timeout: Option<Duration>) -> Channel {
        Channel {
            target,
            default_timeout,
            interceptors: Arc::from(Vec::new()),
        }
    }

    /// The runtime the channel was created on.
    pub(super) fn runtime(&self) -> &Handle {
        match &self.target {
            Target::Endpoint(shared) => &shared.runtime,
            Target::Balanced(balanced) => balanced.runtime(),
        }
    }

    /// The instances a balanced channel spreads calls over, with their
    /// state (empty for a channel to one endpoint).
    pub fn instances(&self) -> Vec<InstanceState> {
        match &self.target {
            Target::Endpoint(_) => Vec::new(),
            Target::Balanced(balanced) => balanced.instances(),
        }
    }

    /// Finds `service` in `registry` and connects to one of its instances,
    /// chosen at random; [`TransportError::NoInstance`] if there is none.
    pub async fn discover(
        registry: &dyn Registry,
        service: &str,
    ) -> Result<Channel, TransportError> {
        let instances = registry
            .list(service)
            .await
            .map_err(|e| TransportError::Discovery {
                service: service.to_owned(),
                reason: e.to_string(),
            })?;
        // The channel has the default config: no TLS.
        let plaintext: Vec<&ServiceInstance> = instances.iter().filter(|i| !i.tls).collect();
        let Some(instance) = plaintext.choose(&mut rand::rng()) else {
            return match instances.first() {
                Some(tls) => Err(TransportError::Tls {
                    addr: HostPort(&tls.address, tls.port).to_string(),
                    source: TlsError::ServerRequiresTls,
                }),
                None => Err(TransportError::NoInstance {
                    service: service.to_owned(),
                }),
            };
        };
        Channel::connect(HostPort(&instance.address, instance.port).to_string()).await
    }

    /// This channel with a client-wide default timeout, used by calls whose
    /// options and method set none.
    pub fn with_default_timeout(mut self, timeout: Duration) -> Channel {
        self.default_timeout = Some(timeout);
        self
    }

    /// This channel with one more interceptor, run after those already
    /// installed on every call made through this value (and its clones
    /// made from now on; other clones keep theirs).
    pub fn with_interceptor(mut self, interceptor: impl ClientInterceptor) -> Channel {
        let mut interceptors = self.interceptors.to_vec();
        interceptors.push(Arc::new(interceptor));
        self.interceptors = Arc::from(interceptors);
        self
    }

    /// Calls a method and waits for its reply.
    ///
    /// The timeout (see [`CallOptions::effective_timeout`]), capped at what
    /// is left of the deadline of the call this task serves (if it is a
    /// server handler), travels to the server and bounds the wait: when it
    /// passes the call ends with status 6 and the server is told to stop.
    /// Dropping the future cancels the call the same way.
    pub async fn unary<Args, Reply, E>(
        &self,
        method: &'static MethodDescriptor,
        args: &Args,
        options: &CallOptions,
    ) -> Result<Reply, RpcError<E>>
    where
        Args: WireMessage,
        Reply: WireMessage,
        E: DeclaredError,
    {
        let timeout = options.effective_timeout(method, self.default_timeout);
        if self.interceptors.is_empty() {
            return self
                .call(method, args, options, &options.metadata, timeout)
                .await;
        }
        let (metadata, timeout) = self
            .intercept(method, options, timeout)
            .await
            .map_err(RpcError::widen)?;
        self.call(method, args, options, &metadata, timeout).await
    }

    /// Sends a one-way request (message type 3); returns once the frame is
    /// written to the socket. No response ever comes. If a timeout applies
    /// and passes before the frame is written, the call ends with status 6
    /// (the frame may still be sent).
    pub async fn oneway<Args: WireMessage>(
        &self,
        method: &'static MethodDescriptor,
        args: &Args,
        options: &CallOptions,
    ) -> Result<(), RpcError> {
        let timeout = options.effective_timeout(method, self.default_timeout);
        if self.interceptors.is_empty() {
            return self
                .send_oneway(method, args, options, &options.metadata, timeout)
                .await;
        }
        let (metadata, timeout) = self.intercept(method, options, timeout).await?;
        self.send_oneway(method, args, options, &metadata, timeout)
            .await
    }

    /// Calls waiting for a response (a test hook: after timeouts and
    /// cancels it must drop back to zero).
    #[doc(hidden)]
    pub fn pending_len(&self) -> usize {
        match &self.target {
            Target::Endpoint(shared) => shared.pool.pending_len(),
            Target::Balanced(balanced) => balanced.pending_len(),
        }
    }

    /// Frames, and their bytes, that the channel's connections hold
    /// unwritten, as each connection counts its own write queue (a test
    /// hook: bounded by [`ChannelConfig::max_queued_calls`] and
    /// [`ChannelConfig::max_queued_bytes`] per connection, plus the
    /// connection's own pings and cancels).
    #[doc(hidden)]
    pub fn unsent(&self) -> (usize, usize) {
        match &self.target {
            Target::Endpoint(shared) => shared.unsent(),
            Target::Balanced(balanced) => balanced.unsent(),
        }
    }

    /// Runs the interceptors over a copy of the call's metadata and
    /// timeout, within the timeout; returns what they made of them, the
    /// timeout reduced by the time they took.
    pub(super) async fn intercept(
        &self,
        method: &'static MethodDescriptor,
        options: &CallOptions,
        timeout: Option<Duration>,
    ) -> Result<(Metadata, Option<Duration>), RpcError> {
        let started = Instant::now();
        let mut request = OutgoingRequest::new(
            method,
            options.serializer,
            options.metadata.clone(),
            cap_timeout(timeout),
        );
        let deadline = request_deadline(started, request.timeout());
        let run = async {
            for interceptor in self.interceptors.iter() {
                interceptor.intercept(&mut request).await?;
            }
            Ok::<_, Status>(())
        };
        let outcome = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, run)
                .await
                .unwrap_or_else(|_| Err(deadline_exceeded(method, "in its interceptors"))),
            None => run.await,
        };
        outcome?;
        let (metadata, timeout) = request.into_parts();
        let timeout = timeout.map(|timeout| timeout.saturating_sub(started.elapsed()));
        Ok((metadata, timeout))
    }

    /// A unary call after its interceptors: to the endpoint, or balanced.
    async fn call<Args, Reply, E>(
        &self,
        method: &'static MethodDescriptor,
        args: &Args,
        options: &CallOptions,
        metadata: &Metadata,
        timeout: Option<Duration>,
    ) -> Result<Reply, RpcError<E>>
    where
        Args: WireMessage,
        Reply: WireMessage,
        E: DeclaredError,
    {
        let serializer = options.serializer;
        match &self.target {
            Target::Endpoint(shared) => {
                shared
                    .call(method, args, serializer, metadata, timeout)
                    .await
            }
            Target::Balanced(balanced) => {
                balanced
                    .call(
                        method,
                        timeout,
                        options.hash_key,
                        ProbeSender {
                            interceptors: &self.interceptors,
                            serializer,
                        },
                        |shared, timeout| async move {
                            shared
                                .call(method, args, serializer, metadata, timeout)
                                .await
                        },
                    )
                    .await
            }
        }
    }

    /// A one-way call after its interceptors: to the endpoint, or balanced.
    async fn send_oneway<Args: WireMessage>(
        &self,
        method: &'static MethodDescriptor,
        args: &Args,
        options: &CallOptions,
        metadata: &Metadata,
        timeout: Option<Duration>,
    ) -> Result<(), RpcError> {
        let serializer = options.serializer;
        match &self.target {
            Target::Endpoint(shared) => {
                shared
                    .send_oneway(method, args, serializer, metadata, timeout)
                    .await
            }
            Target::Balanced(balanced) => {
                balanced
                    .call(
                        method,
                        timeout,
                        options.hash_key,
                        ProbeSender {
                            interceptors: &self.interceptors,
                            serializer,
                        },
                        |shared, timeout| async move {
                            shared
                                .send_oneway(method, args, serializer, metadata, timeout)
                                .await
                        },
                    )
                    .await
            }
        }
    }
}

impl ChannelShared {
    /// Connects to a registered instance at `address`: over TLS if it
    /// speaks TLS. A channel with TLS refuses plaintext instances (no
    /// downgrade through the registry), and one without TLS refuses TLS
    /// instances, each with an error that says so.
    pub(super) async fn connect_instance(
        address: &str,
        tls: bool,
        config: &ChannelConfig,
    ) -> Result<Arc<ChannelShared>, TransportError> {
        #[cfg(feature = "tls")]
        let channel_tls = config.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let channel_tls = false;
        let mismatch = match (tls, channel_tls) {
            (true, false) => TlsError::ServerRequiresTls,
            (false, true) => TlsError::ServerNotTls("is registered without TLS: no `sslPort`"),
            _ => return ChannelShared::connect(address, config).await,
        };
        Err(TransportError::Tls {
            addr: address.to_owned(),
            source: mismatch,
        })
    }

    /// Connects to `addr` now, with `config`.
    pub(super) async fn connect<A>(
        addr: A,
        config: &ChannelConfig,
    ) -> Result<Arc<ChannelShared>, TransportError>
    where
        A: ToSocketAddrs + fmt::Display,
    {
        let target = addr.to_string();
        let addrs: Vec<SocketAddr> = lookup_host(addr)
            .await
            .map_err(|e| TransportError::Connect {
                addr: target.clone(),
                source: Arc::new(e),
            })?
            .collect();
        #[cfg(feature = "tls")]
        let tls = match &config.tls {
            Some(tls) => {
                Some(
                    DialTls::new(tls, &target).map_err(|source| TransportError::Tls {
                        addr: target.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let dialer = Dialer {
            addrs,
            target: target.clone(),
            connect_timeout: config.connect_timeout,
            #[cfg(feature = "tls")]
            tls,
        };
        let settings = ConnectionSettings {
            max_frame_size: config.max_frame_size,
            heartbeat_interval: config.heartbeat_interval,
            max_queued_calls: config.max_queued_calls,
            max_queued_bytes: config.max_queued_bytes,
        };
        let pool = Pool::connect(
            dialer,
            config.connections,
            settings,
            config.reconnect_backoff,
        )
        .await?;
        Ok(Arc::new(ChannelShared {
            pool,
            // 0 is left for heartbeats.
            next_id: AtomicU64::new(1),
            max_frame_size: config.max_frame_size,
            target,
            runtime: Handle::current(),
        }))
    }

    /// Calls waiting for a response on all connections.
    pub(super) fn pending_len(&self) -> usize {
        self.pool.pending_len()
    }

    /// Frames and bytes the connections hold unwritten.
    pub(super) fn unsent(&self) -> (usize, usize) {
        self.pool.unsent()
    }

    /// A unary call after its interceptors: cascades the deadline, traces.
    pub(super) async fn call<Args, Reply, E>(
        &self,
        method: &'static MethodDescriptor,
        args: &Args,
        serializer: Serializer,
        metadata: &Metadata,
        timeout: Option<Duration>,
    ) -> Result<Reply, RpcError<E>>
    where
        Args: WireMessage,
        Reply: WireMessage,
        E: DeclaredError,
    {
        let timeout = cap_timeout(timeout);
        if timeout == Some(Duration::ZERO) {
            return Err(deadline_exceeded(method, "before it was sent").into());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let head = RequestHead {
            kind: MessageKind::Request,
            id,
            method,
            serializer,
            metadata,
            timeout,
        };
        let span = tracing::debug_span!(
            "courier.call",
            service = method.service,
            method = method.method,
            request_id = id,
            peer = %self.target,
            status = Empty,
            latency_us = Empty,
        );
        let started = Instant::now();
        let deadline = request_deadline(started, timeout);
        let frame = match encode_request(&head, args, self.max_frame_size) {
            Ok(frame) => frame,
            Err(error) => {
                let error = RpcError::widen(error);
                span.record("status", error.code().as_u8());
                return Err(error);
            }
        };
        if span.is_disabled() {
            let answer = self.round_trip(id, frame, deadline).await;
            return reply_of(&head, answer);
        }
        let answer = self
            .round_trip(id, frame, deadline)
            .instrument(span.clone())
            .await;
        let result = reply_of(&head, answer);
        let status = match &result {
            Ok(_) => StatusCode::Ok,
            Err(error) => error.code(),
        };
        span.record("status", status.as_u8());
        span.record("latency_us", micros(started.elapsed()));
        result
    }

    /// Sends an encoded request frame and waits for its response until
    /// `deadline`: `None` once the deadline has passed (see
    /// [`Pool::round_trip`]).
    pub(super) async fn round_trip(
        &self,
        id: u64,
        frame: Bytes,
        deadline: Option<Instant>,
    ) -> Result<Option<RawResponse>, TransportError> {
        self.pool
            .round_trip(id, frame, deadline, &self.target)
            .await
    }

    /// A one-way call after its interceptors.
    pub(super) async fn send_oneway<Args: WireMessage>(
        &self,
        method: &'static MethodDescriptor,
        args: &Args,
        serializer: Serializer,
        metadata: &Metadata,
        timeout: Option<Duration>,
    ) -> Result<(), RpcError> {
        let timeout = cap_timeout(timeout);
        if timeout == Some(Duration::ZERO) {
            return Err(deadline_exceeded(method, "before it was sent").into());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let head = RequestHead {
            kind: MessageKind::OnewayRequest,
            id,
            method,
            serializer,
            metadata,
            timeout,
        };
        let frame = encode_request(&head, args, self.max_frame_size)?;
        self.send_oneway_frame(id, frame, timeout, method.service, method.method)
            .await
    }

    /// Sends an encoded one-way frame (request id `id`) on one of the
    /// pool's connections; returns once it is written. Within `timeout`:
    /// the frame waits for room in the connection's send queue
    /// ([`TransportError::SendQueueFull`] if none comes), then to be
    /// written (status 6 if it is not; the frame is then dropped unless its
    /// writing had begun). Dropping the future drops the frame the same way.
    pub(super) async fn send_oneway_frame(
        &self,
        id: u64,
        frame: Bytes,
        timeout: Option<Duration>,
        service: &str,
        method: &str,
    ) -> Result<(), RpcError> {
        let deadline = request_deadline(Instant::now(), timeout);
        match self
            .pool
            .send_oneway(id, frame, deadline, &self.target)
            .await?
        {
            Some(()) => Ok(()),
            None => Err(Status::deadline_exceeded(format!(
                "{service}/{method} was not written within {:?}",
                timeout.unwrap_or_default()
            ))
            .into()),
        }
    }
}

/// The reply (or error) a [`ChannelShared::round_trip`] came to.
fn reply_of<Reply, E>(
    head: &RequestHead<'_>,
    answer: Result<Option<RawResponse>, TransportError>,
) -> Result<Reply, RpcError<E>>
where
    Reply: WireMessage,
    E: DeclaredError,
{
    match answer? {
        Some(response) => decode_response(response, head.serializer),
        None => Err(deadline_exceeded_after(head.method, head.timeout).into()),
    }
}

/// `started + timeout`, if there is a timeout (and it is representable).
fn request_deadline(started: Instant, timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|timeout| started.checked_add(timeout))
}

/// Status 6 for a call that ran out of time `when`.
fn deadline_exceeded(method: &MethodDescriptor, when: &str) -> Status {
    Status::deadline_exceeded(format!(
        "the deadline of {}/{} passed {when}",
        method.service, method.method
    ))
}

/// Status 6 for a call that got no answer within `timeout`.
fn deadline_exceeded_after(method: &MethodDescriptor, timeout: Option<Duration>) -> Status {
    Status::deadline_exceeded(format!(
        "no answer from {}/{} within {:?}",
        method.service,
        method.method,
        timeout.unwrap_or_default()
    ))
}

/// Whole microseconds, saturating.
fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

/// A host and port printed as an address that resolves (`host:port`,
/// `[v6]:port`).
#[derive(Debug, Clone, Copy)]
pub(super) struct HostPort<'a>(pub(super) &'a str, pub(super) u16);

impl fmt::Display for HostPort<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(':') && !self.0.starts_with('[') {
            write!(f, "[{}]:{}", self.0, self.1)
        } else {
            write!(f, "{}:{}", self.0, self.1)
        }
    }
}
