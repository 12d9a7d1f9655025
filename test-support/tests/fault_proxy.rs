//! The fault proxy in front of a plain echo server: each fault does what it
//! says to existing and new connections, and nothing is left open.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use courier_test_support::fault_proxy::{Direction, Fault, FaultProxy};

/// How long any wait in these tests may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// An echo server on a thread per connection; runs until the test ends.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn connect(proxy: &FaultProxy) -> TcpStream {
    let stream = TcpStream::connect(proxy.addr()).expect("connect to the proxy");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream
}

/// Sends `bytes` and reads as many back.
fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    stream.write_all(bytes).expect("write");
    let mut back = vec![0; bytes.len()];
    stream.read_exact(&mut back).expect("read the echo");
    back
}

fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads until EOF or an error; what came and how it ended.
fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, Result<(), ErrorKind>) {
    let mut all = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (all, Ok(())),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) => return (all, Err(e.kind())),
        }
    }
}

#[test]
fn passes_bytes_both_ways_and_counts_connections() {
    let proxy = FaultProxy::start(echo_server()).expect("proxy");
    assert_eq!(proxy.upstream().ip().to_string(), "127.0.0.1");
    let mut a = connect(&proxy);
    let mut b = connect(&proxy);
    assert_eq!(round_trip(&mut a, b"hello"), b"hello");
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    assert_eq!(round_trip(&mut b, &big), big);
    assert_eq!(proxy.connections(), 2);
    assert_eq!(proxy.accepted(), 2);
    drop(a);
    drop(b);
    eventually("both connections to close", || proxy.connections() == 0);
}

#[test]
fn delay_holds_every_chunk() {
    let proxy = FaultProxy::start(echo_server()).expect("proxy");
    let mut stream = connect(&proxy);
    let delay = Duration::from_millis(150);
    proxy.set(Fault::Delay(delay));
    let started = Instant::now();
    assert_eq!(round_trip(&mut stream, b"slow"), b"slow");
    // Delayed on the way in and on the way back.
    assert!(started.elapsed() >= delay * 2, "{:?}", started.elapsed());
    proxy.set(Fault::Pass);
    assert_eq!(round_trip(&mut stream, b"fast"), b"fast");
}

#[test]
fn throttle_limits_the_rate() {
    let proxy = FaultProxy::start(echo_server()).expect("proxy");
    let mut stream = connect(&proxy);
    proxy.set_direction(
        Direction::ToUpstream,
        Fault::Throttle {
            bytes_per_sec: 20_000,
        },
    );
    assert_eq!(
        proxy.fault(Direction::ToUpstream),
        Fault::Throttle {
            bytes_per_sec: 20_000
        }
    );
    assert_eq!(proxy.fault(Direction::ToClient), Fault::Pass);
    let bytes = vec![7; 10_000];
    let started = Instant::now();
    assert_eq!(round_trip(&mut stream, &bytes), bytes);
    // 10 kB at 20 kB/s: half a second, less the last chunk's pause.
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn blackhole_stalls_without_losing_bytes() {
    let proxy = FaultProxy::start(echo_server()).expect("proxy");
    let mut stream = connect(&proxy);
    assert_eq!(round_trip(&mut stream, b"before"), b"before");
    proxy.set(Fault::Blackhole);
    stream.write_all(b"held").expect("write");
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0; 4];
    let stalled = stream.read(&mut buf).expect_err("nothing comes back");
    assert!(
        matches!(stalled.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{stalled:?}"
    );
    // New connections are accepted and stall too.
    let mut late = connect(&proxy);
    late.write_all(b"late").expect("write");
    eventually("the new connection", || proxy.connections() == 2);
    proxy.set(Fault::Pass);
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.read_exact(&mut buf).expect("the held bytes arrive");
    assert_eq!(&buf, b"held");
    late.read_exact(&mut buf).expect("the late bytes arrive");
    assert_eq!(&buf, b"late");
}

#[test]
fn reset_resets_existing_and_new_connections() {
    let proxy = FaultProxy::start(echo_server()).expect("proxy");
    let mut stream = connect(&proxy);
    assert_eq!(round_trip(&mut stream, b"hi"), b"hi");
    proxy.set(Fault::Reset);
    let (bytes, end) = read_to_end(&mut stream);
    assert!(bytes.is_empty());
    assert_eq!(end, Err(ErrorKind::ConnectionReset));
    eventually("the connection to go", || proxy.connections() == 0);

    let mut late = connect(&proxy);
    let (_, end) = read_to_end(&mut late);
    assert_eq!(end, Err(ErrorKind::ConnectionReset));
    assert_eq!(proxy.connections(), 0);

    proxy.set(Fault::Pass);
    let mut again = connect(&proxy);
    assert_eq!(round_trip(&mut again, b"back"), b"back");
}

#[test]
fn cut_after_forwards_that_many_bytes_then_closes() {
    let proxy = FaultProxy::start(echo_server()).expect("proxy");
    let mut stream = connect(&proxy);
    assert_eq!(round_trip(&mut stream, b"uncounted"), b"uncounted");
    // Counted from now, on the way back.
    proxy.set_direction(Direction::ToClient, Fault::CutAfter(10));
    stream.write_all(&[1; 64]).expect("write");
    let (bytes, _) = read_to_end(&mut stream);
    assert_eq!(bytes, [1; 10]);
    eventually("the connection to go", || proxy.connections() == 0);

    // A new connection gets its own 10 bytes.
    let mut late = connect(&proxy);
    late.write_all(&[2; 64]).expect("write");
    let (bytes, _) = read_to_end(&mut late);
    assert_eq!(bytes, [2; 10]);
}

#[test]
fn dropping_the_proxy_closes_everything() {
    let proxy = FaultProxy::start(echo_server()).expect("proxy");
    let mut stream = connect(&proxy);
    proxy.set(Fault::Blackhole);
    stream.write_all(b"lost").expect("write");
    let addr = proxy.addr();
    drop(proxy);
    let (bytes, _) = read_to_end(&mut stream);
    assert!(bytes.is_empty());
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens any more"
    );
}
