//! Calls that work, and calls that fail in the ways PROTOCOL.md names.

mod common;

use std::time::Duration;

use common::*;
use courier::client::{CallOptions, Channel};
use courier::registry::{MemoryRegistry, Registry, ServiceInstance};
use courier::{Metadata, NoDeclaredError, RpcError, Serializer, StatusCode, TransportError};
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_calls_on_one_channel_each_get_their_own_reply() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut calls = JoinSet::new();
    for i in 0..100u64 {
        let channel = channel.clone();
        calls.spawn(async move {
            // Later calls answer sooner, so responses come out of order.
            let args = delayed(&format!("call {i}"), (100 - i) % 7);
            let reply: Result<EchoReply, RpcError> = channel.unary(&ECHO, &args, &options()).await;
            (i, reply)
        });
    }
    let mut seen = 0;
    while let Some(joined) = within("100 calls", calls.join_next()).await {
        let (i, reply) = joined.expect("call task");
        assert_eq!(reply.expect("echo succeeds").value, format!("call {i}"));
        seen += 1;
    }
    assert_eq!(seen, 100);
    assert_eq!(channel.pending_len(), 0);
}

#[tokio::test]
async fn json_calls_work_too() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let options = CallOptions {
        serializer: Serializer::Json,
        ..CallOptions::default()
    };
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("json"), &options)
        .await
        .expect("echo");
    assert_eq!(reply.value, "json");
    let declared: Result<EchoReply, RpcError<EchoError>> =
        channel.unary(&FAIL_DECLARED, &args("k"), &options).await;
    assert_eq!(
        declared
            .unwrap_err()
            .declared()
            .and_then(|e| e.not_found.clone())
            .map(|n| n.key),
        Some("k".into())
    );
}

#[tokio::test]
async fn a_declared_error_arrives_typed() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let result: Result<EchoReply, RpcError<EchoError>> = channel
        .unary(&FAIL_DECLARED, &args("key-7"), &options())
        .await;
    match result {
        Err(RpcError::Declared(EchoError {
            not_found: Some(NotFound { key }),
        })) => assert_eq!(key, "key-7"),
        other => panic!("expected the declared error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_status_error_arrives_with_code_and_message() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let result: Result<EchoReply, RpcError> = channel
        .unary(&FAIL_STATUS, &args("the vault"), &options())
        .await;
    let status = result
        .expect_err("fails")
        .status()
        .cloned()
        .expect("a status");
    assert_eq!(status.code(), StatusCode::PermissionDenied);
    assert_eq!(status.message(), "no access to the vault");
}

#[tokio::test]
async fn unknown_service_is_status_2_and_unknown_method_status_3() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let result: Result<EchoReply, RpcError> = channel
        .unary(&UNKNOWN_SERVICE, &args("x"), &options())
        .await;
    assert_eq!(code(&result), StatusCode::UnknownService);
    assert!(result.unwrap_err().to_string().contains("test.Nobody"));
    let result: Result<EchoReply, RpcError> =
        channel.unary(&NO_SUCH_METHOD, &args("x"), &options()).await;
    assert_eq!(code(&result), StatusCode::UnknownMethod);
    assert!(result.unwrap_err().to_string().contains("no_such_method"));
    // The connection is still good.
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("ok"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "ok");
}

#[tokio::test]
async fn metadata_and_deadline_reach_the_handler() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut metadata = Metadata::new();
    metadata.insert("trace-id", "t-1");
    let options = CallOptions {
        timeout: Some(Duration::from_secs(30)),
        metadata: metadata.clone(),
        ..CallOptions::default()
    };
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&WHOAMI, &args(""), &options)
        .await
        .expect("whoami");
    assert_eq!(reply.value, "deadline=true peer_is_loopback=true");
    assert_eq!(
        server.observed.last_metadata.lock().unwrap().clone(),
        Some(metadata)
    );
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&WHOAMI, &args(""), &CallOptions::default())
        .await
        .expect("whoami");
    assert_eq!(reply.value, "deadline=false peer_is_loopback=true");
}

#[tokio::test]
async fn a_oneway_call_reaches_the_handler() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    channel
        .oneway(&NOTIFY, &args("fire and forget"), &options())
        .await
        .expect("written");
    let observed = &server.observed;
    eventually("the one-way handler to run", || {
        observed.notes() == ["fire and forget"]
    })
    .await;
    assert_eq!(channel.pending_len(), 0, "one-way calls wait for nothing");
}

#[tokio::test]
async fn beyond_the_in_flight_limit_requests_are_overloaded() {
    let server = TestServer::start_with(|builder| builder.max_in_flight_per_connection(1)).await;
    let channel = server.channel().await;
    let blocked = {
        let channel = channel.clone();
        tokio::spawn(async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&GATED, &args("first"), &options())
                .await
        })
    };
    let observed = &server.observed;
    eventually("the first call to start", || observed.started() == 1).await;
    let result: Result<EchoReply, RpcError> =
        channel.unary(&ECHO, &args("second"), &options()).await;
    assert_eq!(code(&result), StatusCode::Overloaded);
    server.observed.open_gate();
    let first = within("the first call", blocked)
        .await
        .expect("task")
        .expect("echo");
    assert_eq!(first.value, "first");
    // The slot is free again.
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("third"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "third");
}

#[tokio::test]
async fn discovery_connects_to_a_registered_instance() {
    let server = TestServer::start().await;
    let registry = MemoryRegistry::new();
    registry
        .register(ServiceInstance::new(SERVICE, server.addr()))
        .await
        .expect("register");
    let channel = Channel::discover(&registry, SERVICE)
        .await
        .expect("discover");
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("found"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "found");

    match Channel::discover(&registry, "test.Missing").await {
        Err(TransportError::NoInstance { service }) => assert_eq!(service, "test.Missing"),
        other => panic!("expected NoInstance, got {other:?}"),
    }
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_fast() {
    // Bind and drop a listener to find a port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    match within("connect", Channel::connect(addr)).await {
        Err(TransportError::Connect { addr: shown, .. }) => assert_eq!(shown, addr.to_string()),
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_requests_and_replies_in_both_directions_do_not_deadlock() {
    // 64 calls of 512 KiB each way: far more than the socket buffers hold,
    // so the client must read replies while it is still writing requests.
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut calls = JoinSet::new();
    for i in 0..64u8 {
        let channel = channel.clone();
        calls.spawn(async move {
            let text = char::from(b'a' + i % 26).to_string().repeat(512 * 1024);
            let reply: Result<EchoReply, RpcError> =
                channel.unary(&ECHO, &args(&text), &options()).await;
            (text, reply)
        });
    }
    while let Some(joined) = within("64 large calls", calls.join_next()).await {
        let (text, reply) = joined.expect("call task");
        assert!(
            reply.expect("echo succeeds").value == text,
            "a reply matched another call"
        );
    }
    assert_eq!(channel.pending_len(), 0);
}

#[tokio::test]
async fn a_request_over_the_client_limit_fails_locally() {
    let server = TestServer::start().await;
    let config = courier::client::ChannelConfig {
        max_frame_size: 100,
        ..Default::default()
    };
    let channel = Channel::connect_with(server.addr(), config)
        .await
        .expect("connect");
    let result: Result<EchoReply, RpcError> = channel
        .unary(&ECHO, &args(&"x".repeat(200)), &options())
        .await;
    assert_eq!(code(&result), StatusCode::FrameTooLarge);
    assert_eq!(channel.pending_len(), 0);
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("small"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "small");
}

#[tokio::test]
async fn beyond_the_server_wide_limit_requests_are_overloaded() {
    let server = TestServer::start_with(|builder| builder.max_in_flight(1)).await;
    let first = server.channel().await;
    let blocked = tokio::spawn(async move {
        first
            .unary::<_, EchoReply, NoDeclaredError>(&GATED, &args("first"), &options())
            .await
    });
    let observed = &server.observed;
    eventually("the first call to start", || observed.started() == 1).await;
    // Another connection: its own limit is far away, the server's is not.
    let second = server.channel().await;
    let result: Result<EchoReply, RpcError> =
        second.unary(&ECHO, &args("second"), &options()).await;
    assert_eq!(code(&result), StatusCode::Overloaded);
    assert!(result.unwrap_err().to_string().contains("server"));
    observed.open_gate();
    within("the first call", blocked)
        .await
        .expect("task")
        .expect("echo");
    let reply: EchoReply = second
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("third"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "third");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_inline_handlers_off_a_handler_that_blocks_does_not_hold_up_its_connection() {
    // `block_until_flag` blocks its thread until `raise_flag` has run (for
    // 5 s at most); both requests come in one write on one connection.
    // Polled on the connection's reader (the default), the first would hold
    // up the reading of the second until it gives up; spawned, the second
    // is read and run while the first blocks a worker of its own.
    let server = TestServer::start_with(|builder| builder.inline_handlers(false)).await;
    let mut client = RawClient::connect(server.addr()).await;
    let mut blocking = RawRequest::echo(1, &args(""));
    blocking.method = "block_until_flag";
    let mut raising = RawRequest::echo(2, &args(""));
    raising.method = "raise_flag";
    let mut both = blocking.encode().to_vec();
    both.extend_from_slice(&raising.encode());
    client.send(&both).await;
    let mut seen = None;
    for _ in 0..2 {
        let frame = client.next_frame().await.expect("an answer");
        assert_eq!(frame.header.status, 0);
        if frame.header.request_id == 1 {
            let reply: EchoReply = prost::Message::decode(frame.body).expect("reply");
            seen = Some(reply.value);
        }
    }
    assert_eq!(seen.as_deref(), Some("saw the flag"));
}
