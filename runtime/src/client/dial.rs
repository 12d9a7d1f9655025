//! Opening a connection: resolve once, connect with a timeout, set the
//! socket options, and (with TLS) shake hands.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::stream::ClientStream;
use crate::error::TransportError;

/// Where and how a channel connects; kept for reconnects.
#[derive(Debug, Clone)]
pub(crate) struct Dialer {
    /// The resolved addresses, tried in order.
    pub addrs: Vec<SocketAddr>,
    /// How the target was given (for errors and logs).
    pub target: String,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// `Some`: connections speak TLS.
    #[cfg(feature = "tls")]
    pub tls: Option<DialTls>,
}

/// How a dialer's connections speak TLS.
#[cfg(feature = "tls")]
#[derive(Debug, Clone)]
pub(crate) struct DialTls {
    /// Roots, client identity, handshake timeout.
    pub config: crate::tls::ClientTlsConfig,
    /// The name the server's certificate is checked against.
    pub name: rustls_pki_types::ServerName<'static>,
}

#[cfg(feature = "tls")]
impl DialTls {
    /// TLS to `target` (`host:port`): the configured server name, else the
    /// host.
    pub fn new(
        config: &crate::tls::ClientTlsConfig,
        target: &str,
    ) -> Result<DialTls, crate::tls::TlsError> {
        let name = match config.server_name_override() {
            Some(name) => name.clone(),
            None => {
                let host = target.rsplit_once(':').map_or(target, |(host, _)| host);
                crate::tls::server_name(host)?
            }
        };
        Ok(DialTls {
            config: config.clone(),
            name,
        })
    }
}

impl Dialer {
    /// Connects to the first address that accepts, then (with TLS) shakes
    /// hands.
    pub async fn dial(&self) -> Result<ClientStream, TransportError> {
        let stream = self.dial_tcp().await?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return crate::tls::handshake::connect(&tls.config, tls.name.clone(), stream)
                .await
                .map(|stream| ClientStream::Tls(Box::new(stream)))
                .map_err(|source| TransportError::Tls {
                    addr: self.target.clone(),
                    source,
                });
        }
        Ok(ClientStream::Tcp(stream))
    }

    /// Connects to the first address that accepts.
    async fn dial_tcp(&self) -> Result<TcpStream, TransportError> {
        let mut last_error =
            io::Error::new(io::ErrorKind::NotFound, "the address resolved to nothing");
        let mut last_addr = self.target.clone();
        for addr in &self.addrs {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    configure(&stream);
                    tracing::debug!(%addr, "connected");
                    return Ok(stream);
                }
                Ok(Err(e)) => last_error = e,
                Err(_) => last_error = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
            }
            last_addr = addr.to_string();
        }
        Err(TransportError::Connect {
            addr: last_addr,
            source: Arc::new(last_error),
        })
    }
}

/// TCP_NODELAY (requests go out at once) and SO_KEEPALIVE.
fn configure(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    if let Err(e) = socket2::SockRef::from(stream).set_keepalive(true) {
        tracing::debug!(error = %e, "cannot set SO_KEEPALIVE");
    }
}
