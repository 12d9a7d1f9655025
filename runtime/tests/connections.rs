//! Connections that die: killed mid-call, a server that stops answering
//! (heartbeats), idle connections closed by the server, the connection
//! pool.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use courier::client::{Channel, ChannelConfig};
use courier::protocol::{MessageKind, empty_frame};
use courier::{NoDeclaredError, RpcError, TransportError};
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
    let server = TestServer::start_with(|builder| {
        builder.heartbeat_interval(Some(Duration::from_millis(50)))
    })
    .await;
    let mut client = RawClient::connect(server.addr()).await;
    // Ten pings 20 ms apart: 200 ms, past the 150 ms of silence that
    // closes a connection.
    for id in 1..=10 {
        client.send(&empty_frame(MessageKind::Ping, 0, id)).await;
        let pong = client.next_frame().await.expect("a pong");
        assert_eq!(
            (pong.header.kind, pong.header.request_id),
            (MessageKind::Pong, id)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client
        .send(&RawRequest::echo(99, &args("still open")).encode())
        .await;
    let answer = client.next_frame().await.expect("an answer");
    assert_eq!((answer.header.request_id, answer.header.status), (99, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_pings_so_a_long_call_survives_the_servers_idle_close() {
    let server = TestServer::start_with(|builder| {
        builder.heartbeat_interval(Some(Duration::from_millis(60)))
    })
    .await;
    let config = ChannelConfig {
        heartbeat_interval: Some(Duration::from_millis(10)),
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
    // Far longer than the server's 180 ms idle limit, with nothing but
    // heartbeats on the connection.
    tokio::time::sleep(Duration::from_millis(400)).await;
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
