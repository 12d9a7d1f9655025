//! [`Endpoint`]: the connections to one server address, and the route of
//! a call to it.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::{ToSocketAddrs, lookup_host};
use tokio::runtime::Handle;

use super::command::RawResponse;
use super::config::ChannelConfig;
use super::connection::ConnectionSettings;
#[cfg(feature = "tls")]
use super::dial::DialTls;
use super::dial::Dialer;
use super::pool::{Pool, StreamHandle};
use super::route::{CallHead, RequestIds, Route};
use crate::error::TransportError;
use crate::tls::TlsError;

/// The connections to one server ([`ChannelConfig::connections`] of them,
/// multiplexed), with the request ids of the channel they serve.
pub(crate) struct Endpoint {
    pool: Pool,
    /// The channel's request ids (a balanced channel's endpoints share
    /// them).
    ids: Arc<RequestIds>,
    max_frame_size: u32,
    /// The address as given (`host:port`): names the server in errors and
    /// spans.
    target: String,
    /// The runtime the endpoint was created on: its connection tasks run
    /// there, and blocking calls drive their futures with it.
    runtime: Handle,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("target", &self.target)
            .field("connections", &self.pool.len())
            .finish()
    }
}

impl Endpoint {
    /// Connects to a registered instance at `address`: over TLS if it
    /// speaks TLS. A channel with TLS refuses plaintext instances (no
    /// downgrade through the registry), and one without TLS refuses TLS
    /// instances, each with an error that says so.
    pub(super) async fn connect_instance(
        address: &str,
        tls: bool,
        config: &ChannelConfig,
        ids: Arc<RequestIds>,
    ) -> Result<Endpoint, TransportError> {
        #[cfg(feature = "tls")]
        let channel_tls = config.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let channel_tls = false;
        let mismatch = match (tls, channel_tls) {
            (true, false) => TlsError::ServerRequiresTls,
            (false, true) => TlsError::ServerNotTls("is registered without TLS: no `sslPort`"),
            _ => return Endpoint::connect(address, config, ids).await,
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
        ids: Arc<RequestIds>,
    ) -> Result<Endpoint, TransportError>
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
            max_response_metadata: config.max_response_metadata,
            max_buffered_stream_bytes: config.max_buffered_stream_bytes,
        };
        let pool = Pool::connect(
            dialer,
            config.connections,
            settings,
            config.reconnect_backoff,
        )
        .await?;
        Ok(Endpoint {
            pool,
            ids,
            max_frame_size: config.max_frame_size,
            target,
            runtime: Handle::current(),
        })
    }

    /// The address as given.
    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// The runtime the endpoint was created on.
    pub(super) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// The number of connections.
    pub(super) fn connections(&self) -> usize {
        self.pool.len()
    }

    /// Calls waiting for a response on all connections.
    pub(super) fn pending_len(&self) -> usize {
        self.pool.pending_len()
    }

    /// Frames and bytes the connections hold unwritten.
    pub(super) fn unsent(&self) -> (usize, usize) {
        self.pool.unsent()
    }
}

impl Route for Endpoint {
    #[inline]
    fn next_id(&self) -> u64 {
        self.ids.next()
    }

    fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    #[inline]
    fn round_trip(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> impl Future<Output = Result<Option<RawResponse>, TransportError>> + Send {
        self.pool.round_trip(id, frame, call.deadline, &self.target)
    }

    #[inline]
    fn send_oneway(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> impl Future<Output = Result<Option<()>, TransportError>> + Send {
        self.pool
            .send_oneway(id, frame, call.deadline, &self.target)
    }

    fn open_stream(
        &self,
        call: &CallHead<'_>,
        id: u64,
        frame: Bytes,
    ) -> impl Future<Output = Result<Option<StreamHandle>, TransportError>> + Send {
        self.pool
            .open_stream(id, frame, call.deadline, &self.target)
    }
}

/// A host and port printed as an address that resolves (`host:port`,
/// `[v6]:port`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostPort<'a>(pub(crate) &'a str, pub(crate) u16);

impl fmt::Display for HostPort<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(':') && !self.0.starts_with('[') {
            write!(f, "[{}]:{}", self.0, self.1)
        } else {
            write!(f, "{}:{}", self.0, self.1)
        }
    }
}
