//! A TCP proxy that injects faults between a client and a server, switchable
//! at run time: delay, throttle, blackhole (stop reading, keep the socket
//! open), reset, and cut after some bytes.
//!
//! ```no_run
//! use std::time::Duration;
//! use courier_test_support::fault_proxy::{Fault, FaultProxy};
//!
//! # let server_addr: std::net::SocketAddr = "127.0.0.1:7000".parse().unwrap();
//! let proxy = FaultProxy::start(server_addr).expect("a proxy");
//! // Connect the client to `proxy.addr()` instead of the server.
//! proxy.set(Fault::Delay(Duration::from_millis(200)));
//! // ... calls now take 200 ms longer ...
//! proxy.set(Fault::Blackhole);
//! // ... nothing moves, the sockets stay open ...
//! proxy.set(Fault::Pass);
//! ```
//!
//! Std only and blocking: one thread accepts, and each connection has two
//! pump threads, one per direction. A pump reads a chunk from one side and
//! writes it to the other, applying the fault of its direction as it is
//! *now* ([`FaultProxy::set`] affects existing and new connections alike).
//! Sockets have short read and write timeouts so that a pump notices a
//! changed fault, a closed connection or a stopped proxy within
//! [`POLL`]. Dropping the proxy stops it: every connection is closed and
//! every thread joined.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a waiting pump looks at the fault, the connection and the
/// proxy again.
pub const POLL: Duration = Duration::from_millis(10);
/// How long the proxy may take to connect to the upstream server.
pub const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest chunk a pump reads at once.
const CHUNK: usize = 16 * 1024;

/// What the proxy does to the bytes of a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards bytes as they come.
    Pass,
    /// Holds each chunk this long before forwarding it (a chunk that waited
    /// in the socket while the previous one was held is delayed up to twice
    /// as long).
    Delay(Duration),
    /// Forwards at most this many bytes per second (at least 1).
    Throttle {
        /// The rate.
        bytes_per_sec: u64,
    },
    /// Stops reading; the connection stays open and nothing is lost:
    /// bytes pile up in the kernel's buffers (then the sender blocks), and
    /// move on once the fault is lifted. New connections are accepted and
    /// blackholed too.
    Blackhole,
    /// Resets every connection (`SO_LINGER` 0, so the peers get an RST) and
    /// every new one right after it is accepted.
    Reset,
    /// Forwards this many more bytes (counted from when the fault is set,
    /// or from the start of a newer connection), then closes the
    /// connection (FIN both ways), wherever that falls in a frame.
    CutAfter(u64),
}

/// A direction of the bytes through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the upstream server (requests).
    ToUpstream,
    /// From the upstream server to the client (responses).
    ToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::ToUpstream => 0,
            Direction::ToClient => 1,
        }
    }
}

/// The faults of both directions, and a generation per direction that
/// changes whenever its fault is set (so `CutAfter` counts from then).
#[derive(Debug, Clone, Copy)]
struct Faults {
    fault: [Fault; 2],
    generation: [u64; 2],
}

/// What the proxy's threads share.
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    stopped: AtomicBool,
    live: AtomicUsize,
    accepted: AtomicU64,
}

impl Shared {
    fn fault(&self, direction: Direction) -> (Fault, u64) {
        let faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        let i = direction.index();
        (faults.fault[i], faults.generation[i])
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// A running proxy in front of one upstream server.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards every connection to
    /// `upstream`, passing bytes through until told otherwise.
    pub fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(Faults {
                fault: [Fault::Pass; 2],
                generation: [0; 2],
            }),
            stopped: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
        });
        let threads = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (shared, threads) = (Arc::clone(&shared), Arc::clone(&threads));
            std::thread::Builder::new()
                .name(format!("fault-proxy-{}", addr.port()))
                .spawn(move || accept_loop(&listener, &shared, &threads))?
        };
        Ok(FaultProxy {
            addr,
            shared,
            threads,
            acceptor: Some(acceptor),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Applies `fault` to both directions, of existing and new connections.
    pub fn set(&self, fault: Fault) {
        let mut faults = self
            .shared
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for i in 0..2 {
            faults.fault[i] = fault;
            faults.generation[i] += 1;
        }
    }

    /// Applies `fault` to one direction only; the other keeps its fault.
    pub fn set_direction(&self, direction: Direction, fault: Fault) {
        let mut faults = self
            .shared
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let i = direction.index();
        faults.fault[i] = fault;
        faults.generation[i] += 1;
    }

    /// The fault of a direction now.
    pub fn fault(&self, direction: Direction) -> Fault {
        self.shared.fault(direction).0
    }

    /// Connections open through the proxy now (both of their sockets are
    /// closed once this drops).
    pub fn connections(&self) -> usize {
        self.shared.live.load(Ordering::Acquire)
    }

    /// Connections accepted since the proxy started (reset ones included).
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Acquire)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
        // Wakes the acceptor, which sees `stopped` and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, threads: &Mutex<Vec<JoinHandle<()>>>) {
    for client in listener.incoming() {
        if shared.stopped() {
            return;
        }
        let Ok(client) = client else {
            // A connection that died in the backlog; keep accepting.
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::AcqRel);
        let mut threads = threads.lock().unwrap_or_else(PoisonError::into_inner);
        threads.retain(|thread| !thread.is_finished());
        if let Err(error) = open(client, shared, &mut threads) {
            // The client sees its connection closed; nothing else to do.
            eprintln!(
                "fault proxy: cannot forward to {}: {error}",
                shared.upstream
            );
        }
    }
}

/// Connects a new client to the upstream and starts its two pumps (or
/// resets it at once under [`Fault::Reset`]).
fn open(
    client: TcpStream,
    shared: &Arc<Shared>,
    threads: &mut Vec<JoinHandle<()>>,
) -> io::Result<()> {
    let reset = [Direction::ToUpstream, Direction::ToClient]
        .iter()
        .any(|d| shared.fault(*d).0 == Fault::Reset);
    if reset {
        socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO))?;
        return Ok(());
    }
    let upstream = TcpStream::connect_timeout(&shared.upstream, UPSTREAM_CONNECT_TIMEOUT)?;
    for stream in [&client, &upstream] {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(POLL))?;
    }
    let connection = Arc::new(Connection {
        client,
        upstream,
        closed: AtomicBool::new(false),
        shared: Arc::clone(shared),
    });
    shared.live.fetch_add(1, Ordering::AcqRel);
    for direction in [Direction::ToUpstream, Direction::ToClient] {
        let pumped = Arc::clone(&connection);
        let thread = std::thread::Builder::new()
            .name("fault-proxy-pump".to_owned())
            .spawn(move || Pump::new(pumped, direction).run());
        match thread {
            Ok(thread) => threads.push(thread),
            Err(error) => {
                connection.close(Close::Reset);
                return Err(error);
            }
        }
    }
    Ok(())
}

/// How a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// FIN to both peers.
    Fin,
    /// RST to both peers (`SO_LINGER` 0).
    Reset,
}

/// One proxied connection: the client's socket and the upstream's.
#[derive(Debug)]
struct Connection {
    client: TcpStream,
    upstream: TcpStream,
    closed: AtomicBool,
    shared: Arc<Shared>,
}

impl Connection {
    /// Closes both sockets once the pumps let go of them. A reset leaves
    /// them open until then: closing a socket with `SO_LINGER` 0 is what
    /// sends the RST, and a shutdown first would send a FIN.
    fn close(&self, how: Close) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for stream in [&self.client, &self.upstream] {
            match how {
                Close::Reset => {
                    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
                }
                Close::Fin => {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.shared.stopped()
    }

    /// The source and the sink of a direction.
    fn ends(&self, direction: Direction) -> (&TcpStream, &TcpStream) {
        match direction {
            Direction::ToUpstream => (&self.client, &self.upstream),
            Direction::ToClient => (&self.upstream, &self.client),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One direction of one connection.
struct Pump {
    connection: Arc<Connection>,
    direction: Direction,
    /// The fault generation `forwarded` counts under.
    generation: u64,
    /// Bytes forwarded since the fault of `generation` applied.
    forwarded: u64,
}

/// Why a pump stopped.
enum Stop {
    /// The source closed its side: pass the half-close on.
    Eof,
    /// The connection is to be closed this way.
    Close(Close),
    /// The connection or the proxy was closed elsewhere.
    Closed,
}

impl Pump {
    fn new(connection: Arc<Connection>, direction: Direction) -> Pump {
        Pump {
            connection,
            direction,
            generation: u64::MAX,
            forwarded: 0,
        }
    }

    fn run(mut self) {
        let mut buf = vec![0; CHUNK];
        let stop = self.pump(&mut buf);
        let (_, sink) = self.connection.ends(self.direction);
        match stop {
            Stop::Eof => {
                let _ = sink.shutdown(Shutdown::Write);
            }
            Stop::Close(how) => self.connection.close(how),
            Stop::Closed => {
                // A stopped proxy closes its connections.
                if self.connection.shared.stopped() {
                    self.connection.close(Close::Fin);
                }
            }
        }
    }

    fn pump(&mut self, buf: &mut [u8]) -> Stop {
        loop {
            let fault = match self.fault() {
                Ok(fault) => fault,
                Err(stop) => return stop,
            };
            let limit = match fault {
                // About 1/20 s worth of bytes per chunk.
                Fault::Throttle { bytes_per_sec } => {
                    usize::try_from(bytes_per_sec / 20).map_or(CHUNK, |n| n.clamp(1, CHUNK))
                }
                Fault::CutAfter(bytes) => usize::try_from(bytes.saturating_sub(self.forwarded))
                    .map_or(CHUNK, |n| n.min(CHUNK)),
                _ => CHUNK,
            };
            let (mut source, _) = self.connection.ends(self.direction);
            let n = match source.read(&mut buf[..limit]) {
                Ok(0) => return Stop::Eof,
                Ok(n) => n,
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Stop::Close(close_like(&e)),
            };
            let arrived = Instant::now();
            // The fault may have changed during the read: the bytes get
            // the one in force when they arrived.
            let fault = match self.fault() {
                Ok(fault) => fault,
                Err(stop) => return stop,
            };
            let n = match fault {
                Fault::CutAfter(bytes) => usize::try_from(bytes.saturating_sub(self.forwarded))
                    .map_or(n, |left| n.min(left)),
                _ => n,
            };
            if let Fault::Delay(delay) = fault
                && !self.wait_until(arrived + delay)
            {
                return Stop::Closed;
            }
            if let Err(stop) = self.write(&buf[..n]) {
                return stop;
            }
            self.forwarded = self.forwarded.saturating_add(n as u64);
            if let Fault::Throttle { bytes_per_sec } = fault {
                let pause = Duration::from_secs_f64(n as f64 / bytes_per_sec.max(1) as f64);
                if !self.wait_until(arrived + pause) {
                    return Stop::Closed;
                }
            }
        }
    }

    /// The fault of this direction now, once it lets bytes through: waits
    /// out a blackhole; a reset, a reached cut, or a closed connection
    /// stops the pump.
    fn fault(&mut self) -> Result<Fault, Stop> {
        loop {
            if self.connection.is_closed() {
                return Err(Stop::Closed);
            }
            let (fault, generation) = self.connection.shared.fault(self.direction);
            if generation != self.generation {
                self.generation = generation;
                self.forwarded = 0;
            }
            match fault {
                Fault::Reset => return Err(Stop::Close(Close::Reset)),
                Fault::Blackhole => std::thread::sleep(POLL),
                Fault::CutAfter(bytes) if self.forwarded >= bytes => {
                    return Err(Stop::Close(Close::Fin));
                }
                _ => return Ok(fault),
            }
        }
    }

    /// Sleeps until `at`; `false` if the connection closed meanwhile.
    fn wait_until(&self, at: Instant) -> bool {
        loop {
            if self.connection.is_closed() {
                return false;
            }
            let now = Instant::now();
            if now >= at {
                return true;
            }
            std::thread::sleep((at - now).min(POLL));
        }
    }

    /// Writes all of `bytes` to the sink, looking at the connection between
    /// timed-out writes (a sink that does not read blocks us, like a real
    /// network would).
    fn write(&self, mut bytes: &[u8]) -> Result<(), Stop> {
        let (_, mut sink) = self.connection.ends(self.direction);
        while !bytes.is_empty() {
            if self.connection.is_closed() {
                return Err(Stop::Closed);
            }
            match sink.write(bytes) {
                Ok(0) => return Err(Stop::Close(Close::Fin)),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(Stop::Close(close_like(&e))),
            }
        }
        Ok(())
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// A reset from one peer is passed on as a reset; other errors as a close.
fn close_like(error: &io::Error) -> Close {
    match error.kind() {
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => Close::Reset,
        _ => Close::Fin,
    }
}
