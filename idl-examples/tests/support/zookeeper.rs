//! A real ZooKeeper server per test (blocking twin of
//! `runtime/tests/support/zookeeper.rs`): Debian's `zookeeper` package
//! (installed by `scripts/ensure-zookeeper`), run as
//! `java -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg`
//! on a free loopback port with its own data directory, polled with `ruok`
//! until it answers, and killed on drop.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

/// The server's jar; its manifest's `Class-Path` names its dependencies in
/// /usr/share/java. `COURIER_ZOOKEEPER_CLASSPATH` overrides it.
const DEFAULT_CLASSPATH: &str = "/usr/share/java/zookeeper.jar";
/// The server's tick: session timeouts must be between 2 and 100 ticks.
const TICK: Duration = Duration::from_millis(200);
/// How long a server may take to answer after it was launched (a JVM on a
/// busy CI machine).
const START_DEADLINE: Duration = Duration::from_secs(30);

/// One ZooKeeper server for one test, killed on drop.
pub struct ZooKeeperServer {
    port: u16,
    child: Child,
    // Declared after the child: dropped (deleted) once the server is dead.
    dir: TempDir,
}

impl ZooKeeperServer {
    /// Launches a server and waits until it answers `ruok`; fails the test
    /// with the server's log if it does not.
    pub fn start() -> ZooKeeperServer {
        let classpath = classpath();
        let port = free_port();
        let dir = TempDir::new("courier-interop-zk");
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
        let config_path = dir.path().join("zoo.cfg");
        fs::write(&config_path, config).expect("cannot write zoo.cfg");
        let log_path = dir.path().join("server.log");
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
            .arg(&config_path)
            .current_dir(dir.path())
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
        let mut server = ZooKeeperServer { port, child, dir };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if ruok(port) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "ZooKeeper exited at start ({status}); its log ({}):\n{}",
                    log_path.display(),
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "ZooKeeper did not answer on port {port} within {START_DEADLINE:?}; its log ({}):\n{}",
                    log_path.display(),
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A directory the test may use (deleted with the server).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ZooKeeperServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// `$JAVA` or `java`.
pub fn java() -> PathBuf {
    std::env::var_os("JAVA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("java"))
}

/// Whether the server on `port` answers the `ruok` four-letter word.
fn ruok(port: u16) -> bool {
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
