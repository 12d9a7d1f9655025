//! Deadlines, cancellation and panics: nothing leaks and the server keeps
//! serving.

mod common;

use std::time::Duration;

use common::*;
use courier::client::MethodDescriptor;
use courier::protocol::MessageKind;
use courier::{NoDeclaredError, RpcError, StatusCode};

#[tokio::test]
async fn a_server_side_timeout_answers_6_and_stops_the_handler() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    let mut request = RawRequest::echo(41, &args(""));
    request.method = "slow";
    request.timeout_ms = 100;
    let sent = tokio::time::Instant::now();
    client.send(&request.encode()).await;
    let frame = client.next_frame().await.expect("an answer");
    assert_eq!(frame.header.kind, MessageKind::Response);
    assert_eq!(frame.header.request_id, 41);
    assert_eq!(frame.header.status, StatusCode::DeadlineExceeded.as_u8());
    assert!(
        sent.elapsed() >= Duration::from_millis(100),
        "not before the deadline"
    );
    let observed = &server.observed;
    eventually("the handler to be stopped", || observed.stopped() == 1).await;
    eventually("the slot to be freed", || server.handle.in_flight() == 0).await;
}

#[tokio::test]
async fn a_client_side_timeout_is_status_6_and_leaves_nothing_pending() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let result: Result<EchoReply, RpcError> = channel
        .unary(&SLOW, &args(""), &with_timeout(Duration::from_millis(50)))
        .await;
    assert_eq!(code(&result), StatusCode::DeadlineExceeded);
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
    let observed = &server.observed;
    eventually("the handler to be stopped", || observed.stopped() == 1).await;
    eventually("the server slot to be freed", || {
        server.handle.in_flight() == 0
    })
    .await;
    // The channel still works.
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("after"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "after");
}

#[tokio::test]
async fn the_method_default_timeout_applies_and_the_channel_default_too() {
    static SLOW_WITH_DEFAULT: MethodDescriptor = MethodDescriptor {
        service: SERVICE,
        method: "slow",
        idempotent: false,
        default_timeout: Some(Duration::from_millis(30)),
    };
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let result: Result<EchoReply, RpcError> = channel
        .unary(&SLOW_WITH_DEFAULT, &args(""), &options())
        .await;
    assert_eq!(code(&result), StatusCode::DeadlineExceeded);
    let channel = channel.with_default_timeout(Duration::from_millis(30));
    let result: Result<EchoReply, RpcError> = channel.unary(&SLOW, &args(""), &options()).await;
    assert_eq!(code(&result), StatusCode::DeadlineExceeded);
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
    eventually("the server slots to be freed", || {
        server.handle.in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn dropping_a_call_future_cancels_it_and_frees_the_slots() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let call = {
        let channel = channel.clone();
        tokio::spawn(async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&SLOW, &args(""), &options())
                .await
        })
    };
    let observed = &server.observed;
    eventually("the handler to start", || observed.started() == 1).await;
    assert_eq!(channel.pending_len(), 1);
    assert_eq!(server.handle.in_flight(), 1);
    call.abort();
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
    // No timeout was set: only the cancel frame can stop the handler.
    eventually("the handler to be stopped by the cancel", || {
        observed.stopped() == 1
    })
    .await;
    eventually("the server slot to be freed", || {
        server.handle.in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn many_dropped_calls_leave_nothing_behind() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    for _ in 0..50 {
        let (args, options) = (args(""), options());
        let call = channel.unary::<_, EchoReply, NoDeclaredError>(&SLOW, &args, &options);
        // Poll the call a little, then drop it.
        let _ = tokio::time::timeout(Duration::from_millis(1), call).await;
    }
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
    eventually("the server slots to be freed", || {
        server.handle.in_flight() == 0
    })
    .await;
    let observed = &server.observed;
    assert_eq!(
        observed.started(),
        observed.stopped(),
        "every started handler was stopped"
    );
}

#[tokio::test]
async fn a_panicking_handler_is_status_8_and_the_next_call_works() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let result: Result<EchoReply, RpcError> =
        channel.unary(&PANIC, &args("panic"), &options()).await;
    assert_eq!(code(&result), StatusCode::Internal);
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&PANIC, &args("fine"), &options())
        .await
        .expect("works");
    assert_eq!(reply.value, "fine");
    assert_eq!(server.handle.in_flight(), 0);
}

#[tokio::test]
async fn undecodable_args_are_status_4() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    let mut request = RawRequest::echo(5, &args(""));
    // A length-delimited field that claims more bytes than follow.
    request.payload = vec![0x0A, 0x7F, b'x'];
    client.send(&request.encode()).await;
    let frame = client.next_frame().await.expect("an answer");
    assert_eq!(frame.header.request_id, 5);
    assert_eq!(frame.header.status, StatusCode::BadRequest.as_u8());
    // The message names the method and serializer, never the server's
    // Rust type paths.
    let message = std::str::from_utf8(&frame.body).expect("a UTF-8 message");
    assert!(
        message.starts_with("cannot decode the arguments of ") && message.contains("(protobuf)"),
        "{message}"
    );
    assert!(!message.contains("::"), "{message}");
}
