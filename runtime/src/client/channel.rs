//! [`Channel`]: the public face of the client. It holds a [`Transport`]
//! (one endpoint, or a balanced set), the interceptors and the default
//! timeout; its calls take the one path of [`Caller`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::seq::IndexedRandom;
use tokio::net::ToSocketAddrs;
use tokio::runtime::Handle;

use super::balanced::{BalanceOptions, Balanced, InstanceState};
use super::call::Caller;
use super::config::ChannelConfig;
use super::endpoint::{Endpoint, HostPort};
use super::interceptor::ClientInterceptor;
use super::method::{CallOptions, MethodDescriptor};
use super::request::{Typed, decode_response};
use super::route::{Interceptors, RequestIds};
use super::transport::Transport;
use crate::error::{RpcError, TransportError};
use crate::registry::{Registry, ServiceInstance};
use crate::serializer::{DeclaredError, WireMessage};
use crate::tls::TlsError;

/// Multiplexed connections to one server, or to every instance of a
/// service: cheap to clone, every clone shares the connections, and calls
/// on them run concurrently.
///
/// The channel keeps [`ChannelConfig::connections`] connections to each
/// server and spreads calls over them. One task per connection owns its
/// socket; calls hand it their encoded frame and wait for their response.
/// After a connection loss, the calls in flight on it fail with
/// [`TransportError::ConnectionLost`] and the next call reconnects.
///
/// Calls are made by generated stubs ([`unary`](Channel::unary),
/// [`oneway`](Channel::oneway)) or, for methods named at run time, with
/// [`call_raw`](Channel::call_raw) and [`oneway_raw`](Channel::oneway_raw);
/// the call modes [`call_blocking`](Channel::call_blocking),
/// [`spawn_call`](Channel::spawn_call) and
/// [`spawn_call_with_callback`](Channel::spawn_call_with_callback) take
/// such a call.
#[derive(Clone)]
pub struct Channel {
    transport: Transport,
    default_timeout: Option<Duration>,
    interceptors: Interceptors,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Channel");
        match &self.transport {
            Transport::Endpoint(endpoint) => f
                .field("target", &endpoint.target())
                .field("connections", &endpoint.connections()),
            Transport::Balanced(balanced) => f.field("service", &balanced.service()),
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
        let endpoint = Endpoint::connect(addr, &config, RequestIds::new()).await?;
        Ok(Channel::over(
            Transport::Endpoint(Arc::new(endpoint)),
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
        Ok(Channel::over(
            Transport::Balanced(balanced),
            default_timeout,
        ))
    }

    fn over(transport: Transport, default_timeout: Option<Duration>) -> Channel {
        Channel {
            transport,
            default_timeout,
            interceptors: Arc::from(Vec::new()),
        }
    }

    /// The runtime the channel was created on.
    pub(crate) fn runtime(&self) -> &Handle {
        self.transport.runtime()
    }

    /// The instances a balanced channel spreads calls over, with their
    /// state (empty for a channel to one endpoint).
    pub fn instances(&self) -> Vec<InstanceState> {
        self.transport.instances()
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

    /// The one path of every call made through this channel.
    pub(super) fn caller(&self) -> Caller<'_, Transport> {
        Caller {
            route: &self.transport,
            interceptors: &self.interceptors,
            default_timeout: self.default_timeout,
            peer: self.transport.peer(),
        }
    }

    /// Calls a method and waits for its reply.
    ///
    /// The timeout (see [`CallOptions::effective_timeout`]), capped at what
    /// is left of the deadline of the call this task serves (if it is a
    /// server handler), travels to the server and bounds the wait: when it
    /// passes the call ends with status 6 and the server is told to stop.
    /// Dropping the future cancels the call the same way. The args are
    /// encoded once: a balanced channel that fails the call over resends
    /// the same frame (same request id, same bytes).
    pub async fn unary<Args, Reply, E>(
        &self,
        method: &MethodDescriptor<'_>,
        args: &Args,
        options: &CallOptions,
    ) -> Result<Reply, RpcError<E>>
    where
        Args: WireMessage,
        Reply: WireMessage,
        E: DeclaredError,
    {
        let response = self
            .caller()
            .unary(method, &Typed(args), options)
            .await
            .map_err(RpcError::widen)?;
        decode_response(response, options.serializer)
    }

    /// Sends a one-way request (message type 3); returns once the frame is
    /// written to the socket. No response ever comes. If a timeout applies
    /// and passes before the frame is written, the call ends with status 6
    /// (the frame may still be sent).
    pub async fn oneway<Args: WireMessage>(
        &self,
        method: &MethodDescriptor<'_>,
        args: &Args,
        options: &CallOptions,
    ) -> Result<(), RpcError> {
        self.caller().oneway(method, &Typed(args), options).await
    }

    /// Calls waiting for a response (a test hook: after timeouts and
    /// cancels it must drop back to zero).
    #[doc(hidden)]
    pub fn pending_len(&self) -> usize {
        self.transport.pending_len()
    }

    /// Frames, and their bytes, that the channel's connections hold
    /// unwritten, as each connection counts its own write queue (a test
    /// hook: bounded by [`ChannelConfig::max_queued_calls`] and
    /// [`ChannelConfig::max_queued_bytes`] per connection, plus the
    /// connection's own pings and cancels).
    #[doc(hidden)]
    pub fn unsent(&self) -> (usize, usize) {
        self.transport.unsent()
    }
}
