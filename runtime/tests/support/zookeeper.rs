//! A real ZooKeeper server per test: Debian's `zookeeper` package (installed
//! by `scripts/ensure-zookeeper`), run as
//! `java -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg`
//! on a free loopback port, with its own data directory and a small tick
//! (200 ms) so session timeouts can be short. It can be stopped and started
//! again on the same port and data (outages), and is killed on drop.
//!
//! A server that cannot be started fails the test with a clear message;
//! nothing is skipped.

#![allow(dead_code)]

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's jar; its manifest's `Class-Path` names its dependencies in
/// /usr/share/java. `COURIER_ZOOKEEPER_CLASSPATH` overrides it.
const DEFAULT_CLASSPATH: &str = "/usr/share/java/zookeeper.jar";
/// The server's tick: session timeouts must be between 2 and 100 ticks.
pub const TICK: Duration = Duration::from_millis(200);
/// How long a server may take to answer after it was launched (a JVM on a
/// busy CI machine).
const START_DEADLINE: Duration = Duration::from_secs(30);

/// One ZooKeeper server for one test.
pub struct ZooKeeperServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
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
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("courier-zk-")
            .tempdir()
            .expect("cannot create a temporary directory for ZooKeeper");
        let data = dir.path().join("data");
        fs::create_dir_all(&data).expect("cannot create ZooKeeper's data directory");
        let config = format!(
            "tickTime={tick}\n\
             initLimit=10\n\
             syncLimit=5\n\
             dataDir={data}\n\
             clientPort={port}\n\
             clientPortAddress=127.0.0.1\n\
             minSessionTimeout={min}\n\
             maxSessionTimeout={max}\n\
             maxClientCnxns=0\n\
             preAllocSize=1024\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=ruok,srvr\n",
            tick = TICK.as_millis(),
            data = data.display(),
            min = (TICK * 2).as_millis(),
            max = (TICK * 100).as_millis(),
        );
        fs::write(dir.path().join("zoo.cfg"), config).expect("cannot write zoo.cfg");
        ZooKeeperServer {
            port,
            dir,
            child: None,
            starts: 0,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A directory the test may use (deleted with the server).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server at once (like a crash; its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Launches the server (again, on the same port and data) and waits
    /// until it answers `ruok`. Panics with the server's log if it does not.
    pub async fn restart(&mut self) {
        self.stop();
        self.starts += 1;
        let classpath = classpath();
        let log_path = self.dir.path().join(format!("server-{}.log", self.starts));
        let log = fs::File::create(&log_path).expect("cannot create the ZooKeeper log");
        let err = log.try_clone().expect("cannot share the ZooKeeper log");
        let child = Command::new(java())
            .args([
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "-Dzookeeper.forceSync=no",
                "-Dzookeeper.admin.enableServer=false",
                "-cp",
                &classpath,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(self.dir.path().join("zoo.cfg"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot launch ZooKeeper (java -cp {classpath}): {error}; \
                     run scripts/ensure-zookeeper to install it"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if ruok(self.port).await {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "ZooKeeper exited at start ({status}); its log ({}):\n{}",
                        log_path.display(),
                        fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
            }
            if Instant::now() > deadline {
                self.stop();
                panic!(
                    "ZooKeeper did not answer on port {} within {START_DEADLINE:?}; its log ({}):\n{}",
                    self.port,
                    log_path.display(),
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
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
                panic!("cannot connect to ZooKeeper on port {}: {error}", self.port)
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
                panic!("cannot connect to ZooKeeper on port {}: {error}", self.port)
            })
    }
}

impl Drop for ZooKeeperServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind a loopback port");
    listener.local_addr().expect("bound").port()
}

fn classpath() -> String {
    if let Ok(classpath) = std::env::var("COURIER_ZOOKEEPER_CLASSPATH") {
        return classpath;
    }
    assert!(
        Path::new(DEFAULT_CLASSPATH).exists(),
        "ZooKeeper is not installed ({DEFAULT_CLASSPATH} is missing): run scripts/ensure-zookeeper"
    );
    DEFAULT_CLASSPATH.to_owned()
}

fn java() -> PathBuf {
    std::env::var_os("JAVA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("java"))
}

/// Whether the server on `port` answers the `ruok` four-letter word.
async fn ruok(port: u16) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.ok()?;
        stream.write_all(b"ruok").await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(answer == b"imok")
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
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
