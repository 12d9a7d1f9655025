//! Binding the listening socket with a chosen accept backlog.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, ToSocketAddrs};

/// The default length of the accept queue: bursts of connects wait in it
/// while the accept loop catches up. (`tokio::net::TcpListener::bind`
/// listens with 128, the standard library's value: a burst of a few
/// hundred connects overflows it, and the connects that find it full wait
/// for a SYN retransmit, 1 s.) The kernel caps it at `net.core.somaxconn`.
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;

/// Binds the first address `addr` resolves to that can be bound, with
/// `SO_REUSEADDR` (as tokio's `bind` does), listening with `backlog`.
pub(crate) async fn bind(addr: impl ToSocketAddrs, backlog: u32) -> io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(addr).await? {
        match bind_one(addr, backlog) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

fn bind_one(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Connects `n` clients to a listener nobody accepts from: each
    /// connect completes only if the kernel had room in the accept queue
    /// (beyond it, SYNs are dropped and the connect hangs).
    async fn queued_connects(listener: &TcpListener, n: usize) -> usize {
        let addr = listener.local_addr().expect("bound");
        let mut connects = tokio::task::JoinSet::new();
        for _ in 0..n {
            connects.spawn(tokio::time::timeout(
                Duration::from_secs(3),
                tokio::net::TcpStream::connect(addr),
            ));
        }
        let mut streams = Vec::new();
        while let Some(connected) = connects.join_next().await {
            if let Ok(Ok(Ok(stream))) = connected {
                // Kept open until every connect is done.
                streams.push(stream);
            }
        }
        streams.len()
    }

    #[tokio::test]
    async fn the_backlog_holds_a_burst_of_connects_larger_than_128() {
        let listener = bind("127.0.0.1:0", DEFAULT_LISTEN_BACKLOG)
            .await
            .expect("bind");
        assert_eq!(queued_connects(&listener, 300).await, 300);
    }

    #[tokio::test]
    async fn a_small_backlog_is_honoured() {
        let listener = bind("127.0.0.1:0", 4).await.expect("bind");
        // Linux queues backlog + 1 connections.
        let queued = queued_connects(&listener, 20).await;
        assert!(queued < 20, "all {queued} connects were queued");
    }
}
