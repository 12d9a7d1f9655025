//! Deadlines and cancellation cascade: a handler that calls another
//! service passes on its own remaining time, and is cancelled with its
//! caller, without threading either by hand.

mod common;

use std::time::Duration;

use common::*;
use courier::{NoDeclaredError, RpcError, StatusCode};

/// Server A, whose `relay` calls server B.
async fn two_servers() -> (TestServer, TestServer) {
    let b = TestServer::start().await;
    let downstream = b.channel().await;
    let a = TestServer::start_service(
        EchoService {
            downstream: Some(downstream),
            ..EchoService::default()
        },
        |builder| builder,
    )
    .await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_passes_its_remaining_deadline_downstream() {
    let (a, b) = two_servers().await;
    let channel = a.channel().await;
    let result: Result<EchoReply, RpcError> = channel
        .unary(&RELAY, &args(""), &with_timeout(Duration::from_millis(500)))
        .await;
    assert_eq!(code(&result), StatusCode::DeadlineExceeded);
    // B's handler knew of a deadline though A's calls set no timeout...
    let relayed = a.observed.relayed();
    assert_eq!(
        relayed.first().cloned(),
        Some(Ok(EchoReply {
            value: "deadline=true peer_is_loopback=true".into()
        }))
    );
    // ...and B's slow handler was stopped (by its deadline, or by the
    // cancel sent when A's handler was stopped at the same deadline).
    let observed = &b.observed;
    eventually("B's handler to be stopped", || observed.stopped() == 1).await;
    eventually("B to be idle", || b.handle.in_flight() == 0).await;
    eventually("A to be idle", || a.handle.in_flight() == 0).await;
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_deadline_nothing_is_invented() {
    let (a, b) = two_servers().await;
    let channel = a.channel().await;
    let call = {
        let channel = channel.clone();
        tokio::spawn(async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&RELAY, &args(""), &options())
                .await
        })
    };
    let observed = &b.observed;
    eventually("B's slow handler to start", || observed.started() == 1).await;
    assert_eq!(
        a.observed.relayed().first().cloned(),
        Some(Ok(EchoReply {
            value: "deadline=false peer_is_loopback=true".into()
        }))
    );
    call.abort();
    eventually("B's handler to be stopped", || observed.stopped() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_cancels_the_calls_its_handler_made() {
    let (a, b) = two_servers().await;
    let channel = a.channel().await;
    // No timeout anywhere: only the cancel can stop B's handler.
    let pending = channel.spawn_call({
        let channel = channel.clone();
        async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&RELAY, &args(""), &options())
                .await
        }
    });
    let observed = &b.observed;
    eventually("B's slow handler to start", || observed.started() == 1).await;
    pending.cancel();
    eventually("B's handler to be stopped by the cascade", || {
        observed.stopped() == 1
    })
    .await;
    eventually("B to be idle", || b.handle.in_flight() == 0).await;
    eventually("A to be idle", || a.handle.in_flight() == 0).await;
}
