//! A real ZooKeeper server per test: Debian's `zookeeper` package (installed
//! by `scripts/ensure-zookeeper`), run as
//! `java -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg`
//! on a free loopback port, with its own data directory and a small tick
//! (200 ms) so session timeouts can be short. It can be stopped and started
//! again on the same port and data (outages), and is killed on drop.
//!
//! A server that cannot be started fails the test with a clear message and
//! its log; nothing is skipped. Blocking tests call [`ZooKeeperServer::start`];
//! async tests [`launch`](ZooKeeperServer::launch) it and poll
//! [`has_started`](ZooKeeperServer::has_started) between their own sleeps.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

/// The server's jar; its manifest's `Class-Path` names its dependencies in
/// /usr/share/java. `COURIER_ZOOKEEPER_CLASSPATH` overrides it.
const DEFAULT_CLASSPATH: &str = "/usr/share/java/zookeeper.jar";
/// The server's tick: session timeouts must be between 2 and 100 ticks.
pub const TICK: Duration = Duration::from_millis(200);
/// How long a server may take to answer after it was launched (a JVM on a
/// busy CI machine).
pub const START_DEADLINE: Duration = Duration::from_secs(30);
/// How often to ask a starting server whether it answers.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One ZooKeeper server for one test.
#[derive(Debug)]
pub struct ZooKeeperServer {
    port: u16,
    child: Option<Child>,
    starts: u32,
    /// Until when the current launch may take to answer.
    deadline: Option<Instant>,
    // Declared after the child: deleted once the server is dead.
    dir: TempDir,
}

impl ZooKeeperServer {
    /// Launches a server and waits (blocking) until it answers.
    pub fn start() -> ZooKeeperServer {
        let mut server = ZooKeeperServer::reserve();
        server.restart();
        server
    }

    /// Prepares a server (port, data directory, zoo.cfg) without launching
    /// it. For tests where ZooKeeper is down at first.
    pub fn reserve() -> ZooKeeperServer {
        let port = free_port();
        let dir = TempDir::new("courier-zk");
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
            child: None,
            starts: 0,
            deadline: None,
            dir,
        }
    }

    /// Launches the server (again, on the same port and data) and waits
    /// (blocking) until it answers `ruok`.
    pub fn restart(&mut self) {
        self.launch();
        while !self.has_started() {
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Launches the server process (again, on the same port and data)
    /// without waiting for it; poll [`has_started`](Self::has_started).
    pub fn launch(&mut self) {
        self.stop();
        self.starts += 1;
        let classpath = classpath();
        let log_path = self.log_path();
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
        self.deadline = Some(Instant::now() + START_DEADLINE);
    }

    /// Whether the launched server answers `ruok` yet. Fails the test, with
    /// the server's log, if it exited or did not answer within
    /// [`START_DEADLINE`]. Never blocks for long: a port nobody listens on
    /// is refused at once.
    pub fn has_started(&mut self) -> bool {
        if ruok(self.port) {
            self.deadline = None;
            return true;
        }
        let log_path = self.log_path();
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
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() > deadline)
        {
            self.stop();
            panic!(
                "ZooKeeper did not answer on port {} within {START_DEADLINE:?}; its log ({}):\n{}",
                self.port,
                log_path.display(),
                fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        false
    }

    /// Kills the server at once (like a crash; its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
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

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("server-{}.log", self.starts))
    }
}

impl Drop for ZooKeeperServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
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

/// `$JAVA` or `java`.
pub fn java() -> PathBuf {
    std::env::var_os("JAVA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("java"))
}

/// Whether the server on `port` answers the `ruok` four-letter word.
pub fn ruok(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.set_write_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"ruok")?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        Ok(answer == b"imok")
    };
    attempt().unwrap_or(false)
}
