//! Response metadata (message type 10): a handler sets it on its context,
//! the server sends it in one frame just before the answer, and the client
//! reads it through a `ResponseMetadataCapture` in every call mode. Limits
//! hold on both sides, and a server that breaks the rules fails only the
//! call concerned.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use courier::client::{CallOptions, Channel, ChannelConfig, ResponseMetadataCapture};
use courier::protocol::{MessageKind, MetadataLimits, encode_response_metadata};
use courier::{Metadata, RpcError, StatusCode, TransportError};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// `response_metadata` args: `entries` entries, answered as `how` says.
fn metadata_args(how: &str, entries: u64) -> EchoArgs {
    EchoArgs {
        text: how.to_owned(),
        size: entries,
        ..EchoArgs::default()
    }
}

/// `k0` = `v0`, ... as the handler builds them.
fn entries(n: u64) -> Metadata {
    (0..n).map(|i| (format!("k{i}"), format!("v{i}"))).collect()
}

fn capturing(capture: &ResponseMetadataCapture) -> CallOptions {
    CallOptions {
        response_metadata: Some(capture.clone()),
        ..CallOptions::default()
    }
}

/// A call as a generated stub makes it: a future that owns what it needs.
fn call(
    channel: &Channel,
    args: EchoArgs,
    options: CallOptions,
) -> impl Future<Output = Result<EchoReply, RpcError<EchoError>>> + Send + 'static {
    let channel = channel.clone();
    async move { channel.unary(&RESPONSE_METADATA, &args, &options).await }
}

/// Whether a call's outcome is the one expected.
type IsExpected = fn(&Result<EchoReply, RpcError<EchoError>>) -> bool;

/// Every kind of answer a handler gives, and whether the outcome is it.
fn answers() -> Vec<(&'static str, IsExpected)> {
    vec![
        ("ok", |r| matches!(r, Ok(reply) if reply.value == "ok")),
        ("declared", |r| matches!(r, Err(RpcError::Declared(_)))),
        (
            "status",
            |r| matches!(r, Err(RpcError::Status(s)) if s.code() == StatusCode::NotFound),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_mode_reads_the_metadata_sent_with_every_kind_of_answer() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    for (how, expected) in answers() {
        // Await.
        let capture = ResponseMetadataCapture::new();
        let result = call(&channel, metadata_args(how, 3), capturing(&capture)).await;
        assert!(expected(&result), "await, {how}: {result:?}");
        assert_eq!(capture.take(), Some(entries(3)), "await, {how}");

        // Future.
        let capture = ResponseMetadataCapture::new();
        let pending =
            channel.spawn_call(call(&channel, metadata_args(how, 2), capturing(&capture)));
        let result = within("the future call", pending).await;
        assert!(expected(&result), "future, {how}: {result:?}");
        assert_eq!(capture.take(), Some(entries(2)), "future, {how}");

        // Callback.
        let capture = ResponseMetadataCapture::new();
        let (done, outcome) = tokio::sync::oneshot::channel();
        channel.spawn_call_with_callback(
            call(&channel, metadata_args(how, 1), capturing(&capture)),
            move |result| {
                let _ = done.send(result);
            },
        );
        let result = within("the callback", outcome).await.expect("called back");
        assert!(expected(&result), "callback, {how}: {result:?}");
        assert_eq!(capture.take(), Some(entries(1)), "callback, {how}");

        // Blocking, from a thread that may block.
        let capture = ResponseMetadataCapture::new();
        let blocking = tokio::task::spawn_blocking({
            let (channel, capture) = (channel.clone(), capture.clone());
            move || {
                channel.call_blocking(call(&channel, metadata_args(how, 4), capturing(&capture)))
            }
        });
        let result = within("the blocking call", blocking)
            .await
            .expect("no panic");
        assert!(expected(&result), "blocking, {how}: {result:?}");
        assert_eq!(capture.take(), Some(entries(4)), "blocking, {how}");
    }
}

#[tokio::test]
async fn the_last_setting_is_sent_and_no_setting_is_an_empty_capture() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let capture = ResponseMetadataCapture::new();
    call(&channel, metadata_args("twice", 2), capturing(&capture))
        .await
        .expect("a reply");
    assert_eq!(
        capture.take(),
        Some(entries(2)),
        "the second setting replaced the first"
    );

    let reply: EchoReply = channel
        .unary::<_, _, courier::NoDeclaredError>(&ECHO, &args("plain"), &capturing(&capture))
        .await
        .expect("a reply");
    assert_eq!(reply.value, "plain");
    assert_eq!(
        capture.take(),
        Some(Metadata::new()),
        "answered, with no metadata"
    );
}

#[tokio::test]
async fn a_call_without_an_answer_leaves_none() {
    let server = TestServer::start().await;
    let capture = ResponseMetadataCapture::new();
    call(
        &server.channel().await,
        metadata_args("ok", 1),
        capturing(&capture),
    )
    .await
    .expect("a reply");
    assert!(capture.get().is_some());

    // A server that takes the connection and closes it at the first request.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 64];
            // The ping the client opens with, then the request: close.
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    let channel = Channel::connect(addr).await.expect("connect");
    let result = call(&channel, metadata_args("ok", 1), capturing(&capture)).await;
    assert!(matches!(result, Err(RpcError::Transport(_))), "{result:?}");
    assert_eq!(
        capture.take(),
        None,
        "no answer: nothing captured, the old value gone"
    );
}

#[tokio::test]
async fn the_server_refuses_metadata_over_its_limits_and_after_the_answer() {
    let server = TestServer::start_with(|builder| builder.max_metadata(2, 64)).await;
    let channel = server.channel().await;
    let capture = ResponseMetadataCapture::new();
    let reply = call(&channel, metadata_args("ok", 3), capturing(&capture))
        .await
        .expect("a reply");
    assert_eq!(
        reply.value,
        "response metadata has 3 entries; at most 2 can be sent"
    );
    assert_eq!(capture.take(), Some(Metadata::new()), "nothing was sent");

    // Set by a copy of the context once the answer has gone: refused.
    let reply = call(&channel, metadata_args("late", 1), capturing(&capture))
        .await
        .expect("a reply");
    assert_eq!(reply.value, "late");
    assert_eq!(capture.take(), Some(Metadata::new()));
    server.observed.open_gate();
    // One-way calls send no answer to put metadata before.
    channel
        .oneway(&NOTIFY_RESPONSE_METADATA, &args(""), &options())
        .await
        .expect("written");
    eventually("both refusals", || server.observed.notes().len() == 2).await;
    let mut notes = server.observed.notes();
    notes.sort();
    assert_eq!(notes, ["Err(AlreadyAnswered)", "Err(NoAnswer)"]);
    eventually("the server to hold no call", || {
        server.handle.in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn metadata_that_would_not_fit_a_frame_is_refused_when_set() {
    let server = TestServer::start_with(|builder| builder.max_frame_size(64)).await;
    let channel = server.channel().await;
    let reply = call(&channel, metadata_args("ok", 10), options())
        .await
        .expect("a reply");
    assert_eq!(
        reply.value,
        "response metadata takes 82 bytes; at most 64 can be sent"
    );
}

#[tokio::test]
async fn a_call_dropped_before_its_answer_leaves_none() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let capture = ResponseMetadataCapture::new();
    call(&channel, metadata_args("ok", 1), capturing(&capture))
        .await
        .expect("a reply");
    assert_eq!(capture.get(), Some(entries(1)));
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        call(&channel, metadata_args("slow", 1), capturing(&capture)),
    )
    .await;
    assert!(gave_up.is_err(), "the slow call never answers");
    assert_eq!(capture.take(), None);
}

#[tokio::test]
async fn the_wire_carries_one_type_10_frame_just_before_the_answer() {
    let server = TestServer::start().await;
    let mut raw = RawClient::connect(server.addr()).await;
    let request = |request_id, how: &str, timeout_ms| {
        let mut request = RawRequest::echo(request_id, &metadata_args(how, 2));
        request.method = "response_metadata";
        request.timeout_ms = timeout_ms;
        request.encode()
    };
    raw.send(&request(7, "ok", 0)).await;
    let first = raw.next_frame().await.expect("a frame");
    assert_eq!(first.header.kind, MessageKind::ResponseMetadata);
    assert_eq!(first.header.request_id, 7);
    assert_eq!(first.header.status, 0);
    assert_eq!(
        &first.body[..],
        b"\x00\x02\x00\x02k0\x00\x02v0\x00\x02k1\x00\x02v1",
        "u16 count, then u16 length + key, u16 length + value"
    );
    let answer = raw.next_frame().await.expect("a frame");
    assert_eq!(answer.header.kind, MessageKind::Response);
    assert_eq!(answer.header.request_id, 7);
    assert_eq!(answer.header.status, 0);

    // A handler stopped by its deadline: the metadata it set, then status 6.
    raw.send(&request(8, "slow", 100)).await;
    let first = raw.next_frame().await.expect("a frame");
    assert_eq!(
        (first.header.kind, first.header.request_id),
        (MessageKind::ResponseMetadata, 8)
    );
    let answer = raw.next_frame().await.expect("a frame");
    assert_eq!(
        (
            answer.header.kind,
            answer.header.request_id,
            answer.header.status
        ),
        (
            MessageKind::Response,
            8,
            StatusCode::DeadlineExceeded.as_u8()
        )
    );
}

#[tokio::test]
async fn response_metadata_is_charged_until_sent_and_released_when_the_call_ends() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    call(&channel, metadata_args("ok", 1), options())
        .await
        .expect("a reply");
    let idle = server.handle.buffered_bytes();
    for _ in 0..20 {
        call(&channel, metadata_args("ok", 60), options())
            .await
            .expect("a reply");
        // Stopped by its deadline after setting metadata (answered 6).
        let _ = call(
            &channel,
            metadata_args("slow", 60),
            with_timeout(Duration::from_millis(20)),
        )
        .await;
    }
    // Cancelled after setting metadata: never sent.
    let cancelled = tokio::spawn(call(&channel, metadata_args("slow", 60), options()));
    eventually("the slow call to start", || server.handle.in_flight() == 1).await;
    cancelled.abort();
    eventually("the cancelled call to end", || {
        server.handle.in_flight() == 0
    })
    .await;
    eventually("the connection's bytes back where they were", || {
        server.handle.buffered_bytes() == idle
    })
    .await;
}

#[tokio::test]
async fn the_client_refuses_metadata_over_its_limits_and_goes_on() {
    let server = TestServer::start().await;
    let config = ChannelConfig {
        max_response_metadata: MetadataLimits {
            max_entries: 2,
            max_bytes: 1024,
        },
        ..ChannelConfig::default()
    };
    let channel = Channel::connect_with(server.addr(), config)
        .await
        .expect("connect");
    let result = call(&channel, metadata_args("ok", 3), options()).await;
    match result {
        Err(RpcError::Transport(TransportError::Protocol(message))) => assert!(
            message.contains("3 response metadata entries") && message.contains("at most 2"),
            "{message}"
        ),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    // The connection goes on; the dropped call's answer is ignored.
    let reply = call(&channel, metadata_args("ok", 2), options())
        .await
        .expect("a reply");
    assert_eq!(reply.value, "ok");
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
}

/// `k` = `v`, as the scripted servers send it.
fn k_is_v() -> Metadata {
    std::iter::once(("k".to_owned(), "v".to_owned())).collect()
}

fn one_entry() -> Vec<u8> {
    encode_response_metadata(&k_is_v())
        .expect("encodes")
        .to_vec()
}

#[tokio::test]
async fn a_server_that_breaks_the_rules_fails_that_call_with_a_clear_error() {
    let cases: [(Script, &str); 3] = [
        (
            |id| {
                vec![
                    scripted_frame(MessageKind::ResponseMetadata, id, &one_entry()),
                    scripted_frame(MessageKind::ResponseMetadata, id, &one_entry()),
                    scripted_frame(MessageKind::Response, id, b""),
                ]
            },
            "sent response metadata twice",
        ),
        (
            |id| {
                vec![
                    scripted_frame(MessageKind::ResponseMetadata, id, b"\x00\x01\x00\x05k"),
                    scripted_frame(MessageKind::Response, id, b""),
                ]
            },
            "malformed response metadata",
        ),
        (
            |id| {
                vec![
                    scripted_frame(MessageKind::ResponseMetadata, id, b"\x00\x00\x00"),
                    scripted_frame(MessageKind::Response, id, b""),
                ]
            },
            "1 bytes follow the last metadata entry",
        ),
    ];
    for (frames, expected) in cases {
        let channel = Channel::connect(scripted_server(frames).await)
            .await
            .expect("connect");
        let result = call(&channel, metadata_args("ok", 0), options()).await;
        match result {
            Err(RpcError::Transport(TransportError::Protocol(message))) => {
                assert!(message.contains(expected), "{message}")
            }
            other => panic!("expected a protocol error ({expected}), got {other:?}"),
        }
    }
    // Metadata for a call no one waits for is dropped; the answer to a
    // call that waits still comes, with the metadata sent for it.
    let channel = Channel::connect(
        scripted_server(|id| {
            vec![
                scripted_frame(MessageKind::ResponseMetadata, id + 1000, &one_entry()),
                scripted_frame(MessageKind::ResponseMetadata, id, &one_entry()),
                scripted_frame(MessageKind::Response, id, b"\x0a\x02ok"),
            ]
        })
        .await,
    )
    .await
    .expect("connect");
    let capture = ResponseMetadataCapture::new();
    let reply = call(&channel, metadata_args("ok", 0), capturing(&capture))
        .await
        .expect("a reply");
    assert_eq!(reply.value, "ok");
    assert_eq!(capture.take(), Some(k_is_v()));
}

#[test]
fn blocking_mode_from_a_plain_thread_reads_the_metadata() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (server, channel) = runtime.block_on(async {
        let server = TestServer::start().await;
        let channel = server.channel().await;
        (server, channel)
    });
    let (sent, got) = mpsc::channel();
    std::thread::spawn(move || {
        let capture = ResponseMetadataCapture::new();
        let result =
            channel.call_blocking(call(&channel, metadata_args("ok", 2), capturing(&capture)));
        let _ = sent.send((result.map(|reply| reply.value), capture.take()));
    });
    let (result, captured) = got.recv_timeout(PATIENCE).expect("the plain thread's call");
    assert_eq!(result.expect("a reply"), "ok");
    assert_eq!(captured, Some(entries(2)));
    drop(server);
}
