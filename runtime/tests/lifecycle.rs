//! Graceful shutdown, connection loss and reconnecting.

mod common;

use std::time::Duration;

use common::*;
use courier::client::Channel;
use courier::server::Server;
use courier::{NoDeclaredError, RpcError, StatusCode, TransportError};

#[tokio::test]
async fn graceful_shutdown_finishes_calls_in_flight_and_refuses_new_ones() {
    let server = TestServer::start().await;
    let addr = server.addr();
    let channel = server.channel().await;
    let in_flight = {
        let channel = channel.clone();
        tokio::spawn(async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&GATED, &args("finished"), &options())
                .await
        })
    };
    let observed = std::sync::Arc::clone(&server.observed);
    eventually("the call to start", || observed.started() == 1).await;

    let shutdown = tokio::spawn(server.handle.shutdown());
    // New requests on the open connection are answered status 9.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let result: Result<EchoReply, RpcError> =
            channel.unary(&ECHO, &args("new"), &options()).await;
        match result {
            Ok(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the server never started draining"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(error) => {
                assert_eq!(error.code(), StatusCode::ShuttingDown);
                break;
            }
        }
    }
    // New connections are refused.
    assert!(matches!(
        Channel::connect(addr).await,
        Err(TransportError::Connect { .. })
    ));
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the call in flight"
    );

    observed.open_gate();
    let reply = within("the call in flight", in_flight)
        .await
        .expect("task")
        .expect("finished normally");
    assert_eq!(reply.value, "finished");
    within("the shutdown", shutdown)
        .await
        .expect("shutdown task");
    assert_eq!(observed.stopped(), 0, "the call in flight was not stopped");
}

/// A call still running when the drain timeout passes is stopped and
/// answered status 6 (not left to see its connection vanish), and its
/// handler is dropped before the shutdown returns (on a multi-thread
/// runtime an aborted task is dropped at its next turn, maybe on another
/// worker: the shutdown waits for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_calls_that_outlive_the_drain_timeout() {
    let server =
        TestServer::start_with(|builder| builder.drain_timeout(Duration::from_millis(50))).await;
    let channel = server.channel().await;
    let call = {
        let channel = channel.clone();
        tokio::spawn(async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&SLOW, &args(""), &options())
                .await
        })
    };
    let observed = std::sync::Arc::clone(&server.observed);
    eventually("the call to start", || observed.started() == 1).await;
    within("the shutdown", server.handle.shutdown()).await;
    assert_eq!(observed.stopped(), 1);
    let result = within("the call", call).await.expect("task");
    assert_eq!(code(&result), StatusCode::DeadlineExceeded, "{result:?}");
    let message = result.expect_err("stopped").to_string();
    assert!(message.contains("shut down"), "{message}");
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
}

#[tokio::test]
async fn a_lost_connection_fails_pending_calls_and_the_next_call_reconnects() {
    let server =
        TestServer::start_with(|builder| builder.drain_timeout(Duration::from_millis(10))).await;
    let addr = server.addr();
    let channel = server.channel().await;
    let call = {
        let channel = channel.clone();
        tokio::spawn(async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&SLOW, &args(""), &options())
                .await
        })
    };
    let observed = std::sync::Arc::clone(&server.observed);
    eventually("the call to start", || observed.started() == 1).await;
    within("the shutdown", server.handle.shutdown()).await;
    // Stopped by the shutdown's drain timeout (status 6), then the
    // connection is gone.
    let stopped = within("the call", call).await.expect("task");
    assert_eq!(code(&stopped), StatusCode::DeadlineExceeded, "{stopped:?}");

    // While nothing listens, calls fail with a connect error.
    let result: Result<EchoReply, RpcError> = channel.unary(&ECHO, &args("x"), &options()).await;
    assert!(
        matches!(
            result,
            Err(RpcError::Transport(TransportError::Connect { .. }))
        ),
        "{result:?}"
    );

    // A new server on the same address: the channel reconnects.
    let restarted = Server::builder()
        .add_service(EchoService::default())
        .bind(addr)
        .await
        .expect("rebind the same port");
    let reply: EchoReply = within(
        "a call after the restart",
        channel.unary::<_, _, NoDeclaredError>(&ECHO, &args("back"), &options()),
    )
    .await
    .expect("reconnected");
    assert_eq!(reply.value, "back");
    within("the second shutdown", restarted.shutdown()).await;
}

#[tokio::test]
async fn run_until_serves_until_the_signal() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.handle.run_until(async move {
        let _ = stopped.await;
    }));
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("up"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "up");
    stop.send(()).expect("server waiting");
    within("the server to stop", running).await.expect("task");
}
