//! Cases in the style of gRPC's interop suite: empty and large messages,
//! metadata, status messages, unknown names, cancellation and deadlines.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use courier::client::CallOptions;
use courier::{Metadata, NoDeclaredError, RpcError, Serializer, StatusCode};

#[tokio::test]
async fn empty_unary() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    for serializer in Serializer::ALL {
        let options = CallOptions {
            serializer,
            ..CallOptions::default()
        };
        let reply: Empty = channel
            .unary::<_, _, NoDeclaredError>(&EMPTY, &Empty {}, &options)
            .await
            .unwrap_or_else(|e| panic!("empty over {serializer}: {e}"));
        assert_eq!(reply, Empty {});
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_unary_271828_bytes_in_314159_out() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    for serializer in Serializer::ALL {
        let options = CallOptions {
            serializer,
            ..CallOptions::default()
        };
        let request = EchoArgs {
            text: "271828".into(),
            size: 314_159,
            data: Bytes::from(vec![0u8; 271_828]),
            ..EchoArgs::default()
        };
        let reply: BytesReply = channel
            .unary::<_, _, NoDeclaredError>(&BIG, &request, &options)
            .await
            .unwrap_or_else(|e| panic!("large over {serializer}: {e}"));
        assert_eq!(reply.value.len(), 314_159, "over {serializer}");
        assert!(reply.value.iter().all(|b| *b == b'o'));
    }
}

#[tokio::test]
async fn custom_metadata_arrives_unchanged() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut metadata = Metadata::new();
    metadata.insert("x-grpc-test-echo-initial", "test_initial_metadata_value");
    metadata.insert(
        "x-grpc-test-echo-trailing-bin",
        "\u{0a}\u{0b}\u{0a}\u{0b}\u{0a}\u{0b}",
    );
    metadata.insert("repeated", "1");
    metadata.insert("repeated", "2");
    metadata.insert("empty", "");
    metadata.insert("unicode", "héllo ☺ 😈");
    let options = CallOptions {
        metadata: metadata.clone(),
        ..CallOptions::default()
    };
    let reply: MetadataReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO_METADATA, &Empty {}, &options)
        .await
        .expect("echo_metadata");
    let expected: Vec<String> = metadata
        .iter()
        .flat_map(|(k, v)| [k.to_owned(), v.to_owned()])
        .collect();
    assert_eq!(reply.value, expected);
}

#[tokio::test]
async fn a_status_message_with_whitespace_and_non_bmp_unicode_comes_back_byte_for_byte() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
    let request = EchoArgs {
        text: message.into(),
        delay_ms: u64::from(StatusCode::Internal.as_u8()),
        ..EchoArgs::default()
    };
    let result: Result<EchoReply, RpcError> = channel.unary(&STATUS, &request, &options()).await;
    let status = result
        .expect_err("fails")
        .status()
        .cloned()
        .expect("a status");
    assert_eq!(status.code(), StatusCode::Internal);
    assert_eq!(status.message().as_bytes(), message.as_bytes());
}

#[tokio::test]
async fn unimplemented_service_and_method() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let result: Result<Empty, RpcError> =
        channel.unary(&UNKNOWN_SERVICE, &Empty {}, &options()).await;
    assert_eq!(code(&result), StatusCode::UnknownService);
    let result: Result<Empty, RpcError> =
        channel.unary(&NO_SUCH_METHOD, &Empty {}, &options()).await;
    assert_eq!(code(&result), StatusCode::UnknownMethod);
}

#[tokio::test]
async fn cancel_before_start_sends_nothing() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    // A call future dropped before it is ever polled.
    let (slow_args, slow_options) = (args(""), options());
    let call = channel.unary::<_, EchoReply, NoDeclaredError>(&SLOW, &slow_args, &slow_options);
    drop(call);
    // A spawned call cancelled before its task ran.
    let pending = channel.spawn_call({
        let channel = channel.clone();
        async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&SLOW, &args(""), &options())
                .await
        }
    });
    pending.cancel();
    // The connection still works, and nothing reached the handler.
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("after"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "after");
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
    assert_eq!(server.observed.started(), 0);
    assert_eq!(server.handle.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_after_begin_stops_the_handler() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let pending = channel.spawn_call({
        let channel = channel.clone();
        async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&SLOW, &args(""), &options())
                .await
        }
    });
    let observed = &server.observed;
    eventually("the handler to begin", || observed.started() == 1).await;
    pending.cancel();
    eventually("the handler to stop", || observed.stopped() == 1).await;
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
    eventually("the server slot to be freed", || {
        server.handle.in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn a_1ms_timeout_on_a_sleeping_server() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let result: Result<EchoReply, RpcError> = channel
        .unary(&SLOW, &args(""), &with_timeout(Duration::from_millis(1)))
        .await;
    assert_eq!(code(&result), StatusCode::DeadlineExceeded);
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
    // The handler may not even have started; whatever started is stopped.
    let observed = &server.observed;
    eventually("the server to be idle", || server.handle.in_flight() == 0).await;
    assert_eq!(observed.started(), observed.stopped());
}

#[tokio::test]
async fn a_call_that_completes_just_before_its_deadline_succeeds() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    // The handler sleeps until 500 ms before the deadline.
    let result: Result<EchoReply, RpcError> = channel
        .unary(
            &UNTIL_DEADLINE,
            &delayed("in time", 500),
            &with_timeout(Duration::from_millis(2000)),
        )
        .await;
    assert_eq!(result.expect("in time").value, "in time");
}
