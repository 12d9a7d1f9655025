//! Connections that die: killed mid-call, a server that stops answering
//! (heartbeats), idle connections closed by the server, the connection
//! pool.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use courier::client::{Backoff, Channel, ChannelConfig};
use courier::protocol::{MessageKind, empty_frame};
use courier::server::Server;
use courier::{NoDeclaredError, RpcError, StatusCode, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy in front of a server whose connections can be killed with
/// a reset.
struct Proxy {
    addr: SocketAddr,
    kill: watch::Sender<u64>,
    accepted: Arc<Mutex<usize>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (kill, _) = watch::channel(0u64);
        let accepted = Arc::new(Mutex::new(0));
        let (killer, count) = (kill.clone(), Arc::clone(&accepted));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                *count.lock().expect("not poisoned") += 1;
                let mut killed = killer.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = killed.changed() => {
                            // A reset, not a clean close: the connection died.
                            for stream in [&client, &server] {
                                let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
                            }
                        }
                    }
                });
            }
        });
        Proxy {
            addr,
            kill,
            accepted,
        }
    }

    /// Resets every connection open now.
    fn kill_connections(&self) {
        self.kill.send_modify(|generation| *generation += 1);
    }

    fn accepted(&self) -> usize {
        *self.accepted.lock().expect("not poisoned")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_call_fails_the_call_and_the_next_call_reconnects() {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.addr()).await;
    let channel = Channel::connect(proxy.addr).await.expect("connect");
    let call = {
        let channel = channel.clone();
        // No timeout: only the connection's death can end this call.
        tokio::spawn(async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&SLOW, &args(""), &options())
                .await
        })
    };
    let observed = &server.observed;
    eventually("the call to start", || observed.started() == 1).await;
    proxy.kill_connections();
    match within("the call to fail", call).await.expect("task") {
        Err(RpcError::Transport(TransportError::ConnectionLost(reason))) => {
            assert!(!reason.is_empty())
        }
        other => panic!("expected ConnectionLost, got {other:?}"),
    }
    assert_eq!(channel.pending_len(), 0);
    // The server saw the reset and stopped the handler.
    eventually("the server to stop the handler", || observed.stopped() == 1).await;
    // The next call reconnects.
    let reply: EchoReply = within(
        "a call after the kill",
        channel.unary::<_, _, NoDeclaredError>(&ECHO, &args("back"), &options()),
    )
    .await
    .expect("reconnected");
    assert_eq!(reply.value, "back");
    assert_eq!(proxy.accepted(), 2);
}

/// A "server" that accepts connections and never reads or writes.
async fn blackhole() -> (SocketAddr, Arc<Mutex<Vec<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            keep.lock().expect("not poisoned").push(stream);
        }
    });
    (addr, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_server_is_detected_by_heartbeats_and_the_channel_reconnects() {
    let (addr, held) = blackhole().await;
    let config = ChannelConfig {
        heartbeat_interval: Some(Duration::from_millis(50)),
        ..ChannelConfig::default()
    };
    let channel = Channel::connect_with(addr, config).await.expect("connect");
    // No timeout: only the heartbeat can end these calls.
    for attempt in 1..=2 {
        let result: Result<EchoReply, RpcError> = within(
            "the heartbeat",
            channel.unary(&ECHO, &args("?"), &options()),
        )
        .await;
        match result {
            Err(RpcError::Transport(TransportError::HeartbeatTimeout { silent_for })) => {
                assert!(silent_for >= Duration::from_millis(150), "{silent_for:?}");
            }
            other => panic!("attempt {attempt}: expected HeartbeatTimeout, got {other:?}"),
        }
        assert_eq!(channel.pending_len(), 0);
    }
    // The second call went over a new connection.
    eventually("a second connection", || {
        held.lock().expect("not poisoned").len() == 2
    })
    .await;
}

#[tokio::test]
async fn the_server_closes_a_connection_that_sends_nothing() {
    let server = TestServer::start_with(|builder| {
        builder.heartbeat_interval(Some(Duration::from_millis(30)))
    })
    .await;
    let mut silent = RawClient::connect(server.addr()).await;
    silent.expect_closed().await;
}

#[tokio::test]
async fn pings_keep_a_quiet_connection_open() {
    let server =
        TestServer::start_with(|builder| builder.heartbeat_interval(Some(SERVER_HEARTBEAT))).await;
    let mut client = RawClient::connect(server.addr()).await;
    // Pings 100 ms apart for over a second, well past the 750 ms of
    // silence that closes a connection.
    for id in 1..=12 {
        client.send(&empty_frame(MessageKind::Ping, 0, id)).await;
        let pong = client.next_frame().await.expect("a pong");
        assert_eq!(
            (pong.header.kind, pong.header.request_id),
            (MessageKind::Pong, id)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .send(&RawRequest::echo(99, &args("still open")).encode())
        .await;
    let answer = client.next_frame().await.expect("an answer");
    assert_eq!((answer.header.request_id, answer.header.status), (99, 0));
}

/// The server's heartbeat interval in the tests of its idle close.
const SERVER_HEARTBEAT: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_pings_so_a_long_call_survives_the_servers_idle_close() {
    // The server closes a connection it has not heard from for three of
    // its intervals (750 ms); the channel pings after 150 ms of quiet, and
    // itself gives up after 450 ms without a pong. Both limits leave
    // hundreds of milliseconds for a loaded machine.
    let server =
        TestServer::start_with(|builder| builder.heartbeat_interval(Some(SERVER_HEARTBEAT))).await;
    let config = ChannelConfig {
        heartbeat_interval: Some(Duration::from_millis(150)),
        ..ChannelConfig::default()
    };
    let channel = Channel::connect_with(server.addr(), config)
        .await
        .expect("connect");
    let call = {
        let channel = channel.clone();
        tokio::spawn(async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&GATED, &args("survived"), &options())
                .await
        })
    };
    let observed = &server.observed;
    eventually("the call to start", || observed.started() == 1).await;
    // Several of the server's idle windows, with nothing but heartbeats on
    // the connection.
    tokio::time::sleep(SERVER_HEARTBEAT * 8).await;
    observed.open_gate();
    let reply = within("the call", call)
        .await
        .expect("task")
        .expect("the connection stayed open");
    assert_eq!(reply.value, "survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_spread_over_the_pool_and_each_connection_reconnects() {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.addr()).await;
    let config = ChannelConfig {
        connections: 3,
        ..ChannelConfig::default()
    };
    let channel = Channel::connect_with(proxy.addr, config)
        .await
        .expect("connect");
    eventually("the proxy to see 3 connections", || proxy.accepted() == 3).await;
    let peers = || async {
        let mut peers = std::collections::BTreeSet::new();
        for _ in 0..9 {
            let reply: EchoReply = channel
                .unary::<_, _, NoDeclaredError>(&PEER, &Empty {}, &options())
                .await
                .expect("peer");
            peers.insert(reply.value);
        }
        peers
    };
    assert_eq!(peers().await.len(), 3, "calls use every connection");
    proxy.kill_connections();
    // Calls may meet a dead connection until each has noticed and
    // reconnected; afterwards they are spread again, over new connections.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let result: Result<EchoReply, RpcError> = channel.unary(&PEER, &Empty {}, &options()).await;
        if result.is_ok() && proxy.accepted() == 6 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool did not reconnect"
        );
    }
    assert_eq!(peers().await.len(), 3);
    assert_eq!(proxy.accepted(), 6);
    assert_eq!(channel.pending_len(), 0);
}

/// Backoff without jitter: every wait after a failed attempt is `wait`.
fn fixed_backoff(wait: Duration) -> Backoff {
    Backoff {
        initial: wait,
        max: wait,
        multiplier: 1.0,
        jitter: 0.0,
    }
}

fn is_connect_error<T: std::fmt::Debug>(result: &Result<T, RpcError>) -> bool {
    matches!(
        result,
        Err(RpcError::Transport(TransportError::Connect { .. }))
    )
}

/// Calls until one is refused (the first ones may meet the lost
/// connection): the channel has made a failed attempt and is in backoff.
async fn call_until_refused(channel: &Channel) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let result: Result<EchoReply, RpcError> =
            channel.unary(&ECHO, &args("down"), &options()).await;
        if is_connect_error(&result) {
            return;
        }
        assert!(
            matches!(
                result,
                Err(RpcError::Transport(TransportError::ConnectionLost(_)))
            ),
            "{result:?}"
        );
        assert!(tokio::time::Instant::now() < deadline, "never refused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_made_after_a_failed_attempt_gets_an_attempt_of_its_own() {
    // A listener that takes the channel's connection, answers its first
    // ping (so it was a connection that worked, and the backoff starts
    // afresh), then goes away: the connection is lost and every new
    // attempt is refused.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = ChannelConfig {
        // 100 ms after the first refused attempt, then far beyond the test.
        reconnect_backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(600),
            multiplier: 6000.0,
            jitter: 0.0,
        },
        ..ChannelConfig::default()
    };
    let channel = Channel::connect_with(addr, config).await.expect("connect");
    let (mut accepted, _) = listener.accept().await.expect("accept");
    let mut ping = [0u8; 18];
    accepted
        .read_exact(&mut ping)
        .await
        .expect("the first ping");
    accepted
        .write_all(&empty_frame(MessageKind::Pong, 0, 0))
        .await
        .expect("pong");
    drop(listener);
    drop(accepted);
    call_until_refused(&channel).await;

    // Many callers queue calls during the backoff; the second attempt
    // fails them all, and each caller calls again at once. A failed attempt
    // fails the calls queued while it ran, not the ones made after its
    // error came back: those wait for the next attempt (here, until their
    // timeout). So no caller sees two connect errors.
    let callers: Vec<_> = (0..256)
        .map(|_| {
            let channel = channel.clone();
            tokio::spawn(async move {
                let mut connect_errors = 0;
                loop {
                    let result: Result<EchoReply, RpcError> = channel
                        .unary(&ECHO, &args("?"), &with_timeout(Duration::from_millis(600)))
                        .await;
                    match result {
                        ref failed if is_connect_error(failed) => connect_errors += 1,
                        Err(e) if e.code() == StatusCode::DeadlineExceeded => {
                            return connect_errors;
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for caller in callers {
        let connect_errors = within("the caller", caller).await.expect("no panic");
        assert!(
            connect_errors <= 1,
            "a caller saw {connect_errors} connect errors from one attempt"
        );
        total += connect_errors;
    }
    // The first call after the backoff was the second attempt's.
    assert!(
        total >= 1,
        "the second attempt failed the calls queued for it"
    );
    eventually("no call left pending", || channel.pending_len() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_the_server_is_back_the_next_call_reconnects() {
    async fn echo(channel: &Channel, text: &str) -> Result<EchoReply, RpcError> {
        channel.unary(&ECHO, &args(text), &options()).await
    }
    let server = TestServer::start().await;
    let addr = server.addr();
    let config = ChannelConfig {
        reconnect_backoff: fixed_backoff(Duration::from_millis(50)),
        ..ChannelConfig::default()
    };
    let channel = Channel::connect_with(addr, config).await.expect("connect");
    assert_eq!(echo(&channel, "up").await.expect("echo").value, "up");

    // Down: calls fail until one is refused, which starts the backoff.
    server.handle.shutdown().await;
    call_until_refused(&channel).await;

    // Back up on the same address: the very next call (which waits out
    // the rest of the backoff, if any) dials and succeeds.
    let back = Server::builder()
        .add_service(EchoService::default())
        .bind(addr)
        .await
        .expect("rebind the same address");
    let reply = within("the call after the restart", echo(&channel, "back"))
        .await
        .expect("a new attempt, not the old error");
    assert_eq!(reply.value, "back");
    assert_eq!(back.connection_count(), 1);
    assert_eq!(channel.pending_len(), 0);
}
