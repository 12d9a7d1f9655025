//! A real ZooKeeper server per test, for async tests: the shared server of
//! `courier-test-support` (Debian's `zookeeper` on a free loopback port, its
//! own data directory, a 200 ms tick, restartable, killed on drop; a server
//! that cannot start fails the test), plus clients, polling with a deadline,
//! and a cuttable proxy for network partitions.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use courier_test_support::zookeeper::{POLL_INTERVAL, ZooKeeperServer as ServerProcess};

/// One ZooKeeper server for one test: the shared test-support server, with
/// async waiting (the test's runtime keeps running while the JVM starts)
/// and clients.
pub struct ZooKeeperServer {
    process: ServerProcess,
}

impl ZooKeeperServer {
    /// Launches a server and waits until it answers.
    pub async fn start() -> ZooKeeperServer {
        let mut server = ZooKeeperServer::reserve();
        server.restart().await;
        server
    }

    /// Prepares a server (port, data directory, zoo.cfg) without launching
    /// it: [`restart`](Self::restart) launches it. For tests where ZooKeeper
    /// is down at first.
    pub fn reserve() -> ZooKeeperServer {
        ZooKeeperServer {
            process: ServerProcess::reserve(),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> String {
        self.process.connect_string()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// A directory the test may use (deleted with the server).
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// Kills the server at once (like a crash; its data stays).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Launches the server (again, on the same port and data) and waits
    /// until it answers `ruok`. Panics with the server's log if it does not.
    pub async fn restart(&mut self) {
        self.process.launch();
        while !self.process.has_started() {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// A plain client of the server (no credentials), as another program
    /// (a Java service, an operator) would be.
    pub async fn client(&self) -> zookeeper_client::Client {
        zookeeper_client::Client::connector()
            .with_session_timeout(Duration::from_secs(4))
            .connect(&self.connect_string())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "cannot connect to ZooKeeper on port {}: {error}",
                    self.port()
                )
            })
    }

    /// A client whose session outlives it: dropping it does not close the
    /// session, which then expires after `session_timeout` (a crashed
    /// provider).
    pub async fn detached_client(&self, session_timeout: Duration) -> zookeeper_client::Client {
        zookeeper_client::Client::connector()
            .with_session_timeout(session_timeout)
            .with_detached()
            .connect(&self.connect_string())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "cannot connect to ZooKeeper on port {}: {error}",
                    self.port()
                )
            })
    }
}

/// Polls `condition` until it holds, failing the test with `what` after
/// `patience`.
pub async fn eventually<F, Fut>(what: &str, patience: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + patience;
    loop {
        if condition().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {patience:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy in front of a server, to cut the network between a client
/// and ZooKeeper while ZooKeeper itself stays up (so the server, not the
/// client, decides that a session expired).
pub struct Partition {
    port: u16,
    open: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Partition {
    /// A proxy to `server`, passing traffic.
    pub async fn new(server: &ZooKeeperServer) -> Partition {
        let upstream = server.port();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("cannot bind the proxy");
        let port = listener.local_addr().expect("bound").port();
        let open = std::sync::Arc::new(tokio::sync::watch::channel(true).0);
        let accepting = std::sync::Arc::clone(&open);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*accepting.borrow() {
                    continue; // dropped: the connection is refused
                }
                let mut cut = accepting.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Partition { port, open, task }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.task.abort();
        self.open.send_replace(false);
    }
}
