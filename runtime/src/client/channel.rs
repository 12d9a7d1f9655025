//! [`Channel`]: a multiplexed connection to one server that any number of
//! calls share.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rand::seq::IndexedRandom;
use tokio::net::{ToSocketAddrs, lookup_host};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::command::{Command, RawResponse};
use super::dial::Dialer;
use super::method::{CallOptions, MethodDescriptor};
use super::task::run_channel;
use crate::error::{RpcError, Status, StatusCode, TransportError};
use crate::protocol::{
    DEFAULT_MAX_FRAME_SIZE, FrameBuilder, FrameHeader, MessageKind, encode_request_prefix,
    status_message, timeout_to_ms,
};
use crate::registry::Registry;
use crate::serializer::{DeclaredError, Serializer, WireMessage};

/// The default time one connection attempt may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a channel connects and what it accepts.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// The largest response body accepted (default 16 MiB) and the largest
    /// request body sent.
    pub max_frame_size: u32,
    /// The timeout of calls whose options and method set none.
    pub default_timeout: Option<Duration>,
    /// How long one connection attempt may take (default 5 s).
    pub connect_timeout: Duration,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            default_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// A multiplexed connection to one server: cheap to clone, every clone
/// shares the connection, and calls on it run concurrently.
///
/// One task owns the socket; calls hand it their encoded frame and wait
/// for their response. After a connection loss, the calls in flight fail
/// with [`TransportError::ConnectionLost`] and the next call reconnects.
#[derive(Clone)]
pub struct Channel {
    shared: Arc<ChannelShared>,
    default_timeout: Option<Duration>,
}

struct ChannelShared {
    commands: mpsc::UnboundedSender<Command>,
    next_id: AtomicU64,
    pending_len: Arc<AtomicUsize>,
    max_frame_size: u32,
    target: String,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("target", &self.shared.target)
            .field("default_timeout", &self.default_timeout)
            .field("pending", &self.pending_len())
            .finish()
    }
}

impl Channel {
    /// Connects to `addr` now; fails fast with [`TransportError::Connect`].
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
        let target = addr.to_string();
        let addrs: Vec<SocketAddr> = lookup_host(addr)
            .await
            .map_err(|e| TransportError::Connect {
                addr: target.clone(),
                source: Arc::new(e),
            })?
            .collect();
        let dialer = Dialer {
            addrs,
            target,
            connect_timeout: config.connect_timeout,
        };
        let stream = dialer.dial().await?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let pending_len = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(ChannelShared {
            commands,
            // 0 is left for heartbeats.
            next_id: AtomicU64::new(1),
            pending_len: Arc::clone(&pending_len),
            max_frame_size: config.max_frame_size,
            target: dialer.target.clone(),
        });
        tokio::spawn(run_channel(
            receiver,
            stream,
            dialer,
            config.max_frame_size,
            pending_len,
        ));
        Ok(Channel {
            shared,
            default_timeout: config.default_timeout,
        })
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
        let Some(instance) = instances.choose(&mut rand::rng()) else {
            return Err(TransportError::NoInstance {
                service: service.to_owned(),
            });
        };
        Channel::connect(HostPort(&instance.address, instance.port).to_string()).await
    }

    /// This channel with a client-wide default timeout, used by calls whose
    /// options and method set none.
    pub fn with_default_timeout(mut self, timeout: Duration) -> Channel {
        self.default_timeout = Some(timeout);
        self
    }

    /// Calls a method and waits for its reply.
    ///
    /// The timeout (see [`CallOptions::effective_timeout`]) travels to the
    /// server and bounds the wait: when it passes the call ends with status
    /// 6 and the server is told to stop. Dropping the future cancels the
    /// call the same way.
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
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self
            .encode_request(MessageKind::Request, id, method, args, options, timeout)
            .map_err(RpcError::widen)?;
        let (reply, response) = oneshot::channel();
        self.shared.send(Command::Call { id, frame, reply })?;
        let mut cancel = CancelOnDrop {
            shared: &self.shared,
            id,
            armed: true,
        };
        let response = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, response).await {
                Ok(response) => response,
                // `cancel` is dropped armed: the call is forgotten and the
                // server told.
                Err(_) => {
                    return Err(RpcError::Status(Status::deadline_exceeded(format!(
                        "no answer from {}/{} within {:?}",
                        method.service,
                        method.method,
                        timeout.unwrap_or_default()
                    ))));
                }
            },
            None => response.await,
        };
        cancel.armed = false;
        let response = response.map_err(|_| task_gone())??;
        decode_response(response, options.serializer)
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
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode_request(
            MessageKind::OnewayRequest,
            id,
            method,
            args,
            options,
            timeout,
        )?;
        let (written, written_rx) = oneshot::channel();
        self.shared.send(Command::Oneway { frame, written })?;
        let written = match timeout {
            Some(timeout) => tokio::time::timeout(timeout, written_rx)
                .await
                .map_err(|_| {
                    Status::deadline_exceeded(format!(
                        "{}/{} was not written within {timeout:?}",
                        method.service, method.method
                    ))
                })?,
            None => written_rx.await,
        };
        written.map_err(|_| task_gone())??;
        Ok(())
    }

    /// Calls waiting for a response (a test hook: after timeouts and
    /// cancels it must drop back to zero).
    #[doc(hidden)]
    pub fn pending_len(&self) -> usize {
        self.shared.pending_len.load(Ordering::Acquire)
    }

    /// Encodes a whole request frame in one buffer.
    fn encode_request<Args: WireMessage>(
        &self,
        kind: MessageKind,
        id: u64,
        method: &MethodDescriptor,
        args: &Args,
        options: &CallOptions,
        timeout: Option<Duration>,
    ) -> Result<Bytes, RpcError> {
        let serializer = options.serializer;
        let payload_hint = match serializer {
            Serializer::Protobuf => args.encoded_len(),
            Serializer::Json => 64,
        };
        let prefix_len = 10 + method.service.len() + method.method.len();
        let mut builder = FrameBuilder::new(
            FrameHeader {
                serializer: serializer.id(),
                kind,
                status: 0,
                request_id: id,
                body_len: 0,
            },
            prefix_len + payload_hint,
        );
        encode_request_prefix(
            builder.body_mut(),
            method.service,
            method.method,
            timeout_to_ms(timeout),
            &options.metadata,
        )
        .map_err(|e| TransportError::Encode {
            what: "request body",
            reason: e.to_string(),
        })?;
        serializer.encode(args, builder.body_mut())?;
        builder
            .finish(self.shared.max_frame_size)
            .map_err(|e| RpcError::Status(Status::new(StatusCode::FrameTooLarge, e.to_string())))
    }
}

impl ChannelShared {
    fn send(&self, command: Command) -> Result<(), TransportError> {
        self.commands.send(command).map_err(|_| task_gone())
    }
}

/// Tells the connection task to forget a call whose future was dropped
/// (or timed out) before its response came.
struct CancelOnDrop<'a> {
    shared: &'a ChannelShared,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            // If the task is gone, so is the pending entry.
            let _ = self.shared.commands.send(Command::Cancel { id: self.id });
        }
    }
}

fn task_gone() -> TransportError {
    TransportError::ConnectionLost("the channel's connection task stopped".to_owned())
}

/// Turns a response into the call's result.
fn decode_response<Reply: WireMessage, E: DeclaredError>(
    response: RawResponse,
    serializer: Serializer,
) -> Result<Reply, RpcError<E>> {
    match StatusCode::from_u8(response.status) {
        StatusCode::Ok => Ok(serializer.decode(response.body)?),
        StatusCode::DeclaredError => match E::decode_declared(serializer, response.body) {
            Ok(declared) => Err(RpcError::Declared(declared)),
            Err(e) => Err(RpcError::Transport(e)),
        },
        code => Err(RpcError::Status(Status::new(
            code,
            status_message(&response.body),
        ))),
    }
}

/// A host and port printed as an address that resolves (`host:port`,
/// `[v6]:port`).
#[derive(Debug, Clone, Copy)]
struct HostPort<'a>(&'a str, u16);

impl fmt::Display for HostPort<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(':') && !self.0.starts_with('[') {
            write!(f, "[{}]:{}", self.0, self.1)
        } else {
            write!(f, "{}:{}", self.0, self.1)
        }
    }
}
