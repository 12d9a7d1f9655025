//! Opening a connection: resolve once, connect with a timeout, set the
//! socket options.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

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
}

impl Dialer {
    /// Connects to the first address that accepts.
    pub async fn dial(&self) -> Result<TcpStream, TransportError> {
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
