//! Server limits against real sockets: each test drives a peer into one
//! limit and then shows the server still serving a well-behaved client.
//! The flood of request + cancel pairs is in `stress.rs`
//! (`a_flood_of_request_and_cancel_pairs_stays_bounded`).

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes};
use common::*;
use courier::client::{CallOptions, Channel};
use courier::protocol::{FrameBuilder, FrameHeader, MessageKind, empty_frame};
use courier::{Metadata, NoDeclaredError, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short deadlines so that tests run fast; the tests never assert how long
/// anything took.
const SHORT: Duration = Duration::from_millis(200);

/// An `echo` on `channel` answers.
async fn assert_serves(channel: &Channel, text: &str) {
    let reply: EchoReply = within(
        "an echo",
        channel.unary::<_, _, NoDeclaredError>(&ECHO, &args(text), &options()),
    )
    .await
    .expect("echo");
    assert_eq!(reply.value, text);
}

/// Reads until the server closes `stream`; fails if it stays open past
/// the test's patience. Whatever the server sent first is returned.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    within("the server to close the connection", async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return seen,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
}

/// A request frame whose body is not a request body (a protocol error).
fn garbage_request(request_id: u64) -> Bytes {
    let mut builder = FrameBuilder::new(
        FrameHeader {
            serializer: 1,
            kind: MessageKind::Request,
            status: 0,
            request_id,
            body_len: 0,
        },
        4,
    );
    builder.body_mut().put_slice(&[0xFF, 0xFF, 0x00]);
    builder.finish(u32::MAX).expect("fits")
}

#[tokio::test]
async fn over_max_connections_the_client_gets_status_7_and_others_are_served() {
    let server = TestServer::start_with(|builder| builder.max_connections(2)).await;
    let first = server.channel().await;
    assert_serves(&first, "one").await;
    let mut second = TcpStream::connect(server.addr()).await.expect("connect");
    second
        .write_all(&RawRequest::echo(1, &args("two")).encode())
        .await
        .expect("write");
    eventually("two connections open", || {
        server.handle.connection_count() == 2
    })
    .await;

    // A raw peer over the limit reads one status 7 frame for request id 0,
    // then the close.
    let mut raw = RawClient::connect(server.addr()).await;
    let frame = raw.next_frame().await.expect("a refusal frame");
    assert_eq!(frame.header.kind, MessageKind::Response);
    assert_eq!(frame.header.request_id, 0);
    assert_eq!(frame.header.status, StatusCode::Overloaded.as_u8());
    let message = String::from_utf8_lossy(&frame.body).into_owned();
    assert!(message.contains("too many connections"), "{message}");
    raw.expect_closed().await;

    // A channel over the limit: its call fails at once with that status,
    // not a hang.
    let third = Channel::connect(server.addr()).await.expect("connect");
    let result = within(
        "the refused call",
        third.unary::<_, EchoReply, NoDeclaredError>(&ECHO, &args("three"), &options()),
    )
    .await;
    // Status 7 if the call was waiting when the refusal came, else the
    // connection loss, which quotes it.
    let text = result.expect_err("refused").to_string();
    assert!(text.contains("too many connections"), "{text}");

    // The connections inside the limit are still served; closing one
    // makes room for a new client.
    assert_serves(&first, "still").await;
    drop(third);
    drop(second);
    eventually("the second connection to be gone", || {
        server.handle.connection_count() == 1
    })
    .await;
    let fourth = server.channel().await;
    assert_serves(&fourth, "room again").await;
    assert_eq!(server.handle.connection_count(), 2);
}

/// A refused connection is a failed attempt: the channel waits out its
/// backoff before dialing again, instead of one new connection per call
/// against a server that is already full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_channel_backs_off_instead_of_redialing_per_call() {
    let server = TestServer::start_with(|builder| builder.max_connections(1)).await;
    let first = server.channel().await;
    assert_serves(&first, "one").await;
    // The proxy counts the connections the refused channel opens.
    let proxy = courier_test_support::fault_proxy::FaultProxy::start(server.addr()).expect("proxy");
    let config = courier::client::ChannelConfig {
        reconnect_backoff: courier::client::Backoff {
            initial: Duration::from_millis(300),
            max: Duration::from_secs(600),
            multiplier: 2000.0,
            jitter: 0.0,
        },
        ..courier::client::ChannelConfig::default()
    };
    let refused = Channel::connect_with(proxy.addr(), config)
        .await
        .expect("connect");
    let quick = CallOptions {
        timeout: Some(Duration::from_millis(100)),
        ..CallOptions::default()
    };
    for _ in 0..10 {
        let result = refused
            .unary::<_, EchoReply, NoDeclaredError>(&ECHO, &args("again"), &quick)
            .await;
        assert!(result.is_err(), "{result:?}");
    }
    // The first connection, and at most one attempt after the 300 ms
    // backoff (the next waits 600 s): not one per call.
    let opened = proxy.accepted();
    assert!(
        (1..=2).contains(&opened),
        "{opened} connections for 10 calls"
    );
    assert_serves(&first, "still").await;
}

#[tokio::test]
async fn a_peer_that_connects_and_sends_nothing_is_closed_at_the_first_frame_deadline() {
    let server = TestServer::start_with(|builder| {
        builder
            .first_frame_timeout(Some(SHORT))
            .heartbeat_interval(None)
    })
    .await;
    let mut silent = TcpStream::connect(server.addr()).await.expect("connect");
    let channel = server.channel().await;
    assert_serves(&channel, "before").await;
    assert!(read_until_closed(&mut silent).await.is_empty());
    eventually("the silent connection to be dropped", || {
        server.handle.connection_count() == 1
    })
    .await;
    assert_serves(&channel, "after").await;
}

#[tokio::test]
async fn a_channel_that_connects_long_before_its_first_call_is_not_closed() {
    let server = TestServer::start_with(|builder| {
        builder
            .first_frame_timeout(Some(SHORT))
            .heartbeat_interval(None)
    })
    .await;
    // The channel pings as soon as it connects, so a wait longer than the
    // first-frame deadline leaves its connection open.
    let channel = server.channel().await;
    eventually("the connection to be admitted", || {
        server.handle.connection_count() == 1
    })
    .await;
    tokio::time::sleep(SHORT * 3).await;
    assert_eq!(server.handle.connection_count(), 1, "still open");
    assert_serves(&channel, "first call").await;
    assert_eq!(server.handle.connection_count(), 1, "not reconnected");
}

#[tokio::test]
async fn a_first_frame_trickled_byte_by_byte_is_closed_at_the_first_frame_deadline() {
    let server = TestServer::start_with(|builder| {
        builder
            .first_frame_timeout(Some(SHORT))
            .frame_timeout(None)
            .heartbeat_interval(None)
    })
    .await;
    let stream = TcpStream::connect(server.addr()).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    // A whole frame sent one byte every 20 ms would take seconds; the
    // server must not wait for it.
    let frame = RawRequest::echo(1, &args(&"x".repeat(200))).encode();
    let trickle = tokio::spawn(async move {
        for byte in frame.iter() {
            if writer.write_all(&[*byte]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    });
    let mut answer = Vec::new();
    within("the close", reader.read_to_end(&mut answer))
        .await
        .ok();
    assert!(answer.is_empty(), "no answer to an unfinished frame");
    assert!(
        !within("the trickle", trickle).await.expect("task"),
        "cut short"
    );
    assert_serves(&server.channel().await, "others served").await;
}

#[tokio::test]
async fn a_frame_stalled_or_trickled_midway_is_closed_at_the_frame_deadline() {
    let server = TestServer::start_with(|builder| {
        builder
            .first_frame_timeout(None)
            .frame_timeout(Some(SHORT))
            .heartbeat_interval(None)
    })
    .await;
    // A peer that was served, then stops halfway through a frame.
    let mut raw = RawClient::connect(server.addr()).await;
    raw.send(&RawRequest::echo(1, &args("fine")).encode()).await;
    let frame = raw.next_frame().await.expect("an answer");
    assert_eq!(frame.header.status, 0);
    let request = RawRequest::echo(2, &args("stalls")).encode();
    raw.send(&request[..request.len() / 2]).await;
    raw.expect_closed().await;

    // A peer that keeps sending, one byte at a time, never finishing.
    let mut trickler = TcpStream::connect(server.addr()).await.expect("connect");
    trickler
        .write_all(&RawRequest::echo(1, &args("ok")).encode())
        .await
        .expect("write");
    let request = RawRequest::echo(2, &args(&"y".repeat(500))).encode();
    let mut closed = false;
    for byte in request.iter() {
        if trickler.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        // Waiting for an answer paces the trickle (20 ms per byte).
        let read = tokio::time::timeout(Duration::from_millis(20), trickler.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "the trickled frame was never finished: closed first"
    );
    assert_serves(&server.channel().await, "others served").await;
}

#[tokio::test]
async fn metadata_over_the_limits_is_answered_status_4_and_the_connection_goes_on() {
    let server = TestServer::start_with(|builder| builder.max_metadata(4, 64)).await;
    let channel = server.channel().await;
    let call = |metadata: Metadata| {
        let channel = channel.clone();
        async move {
            let options = CallOptions {
                metadata,
                ..CallOptions::default()
            };
            channel
                .unary::<_, MetadataReply, NoDeclaredError>(&ECHO_METADATA, &Empty {}, &options)
                .await
        }
    };
    let entries = |n: usize, value_len: usize| {
        (0..n)
            .map(|i| (format!("k{i}"), "v".repeat(value_len)))
            .collect::<Metadata>()
    };
    let within_limits = call(entries(4, 10)).await.expect("4 entries, 48 bytes");
    assert_eq!(within_limits.value.len(), 8);

    let too_many = call(entries(5, 1)).await;
    assert_eq!(code(&too_many), StatusCode::BadRequest);
    let message = too_many.expect_err("refused").to_string();
    assert!(message.contains("5 entries"), "{message}");

    let too_big = call(entries(2, 40)).await;
    assert_eq!(code(&too_big), StatusCode::BadRequest);
    let message = too_big.expect_err("refused").to_string();
    assert!(message.contains("64 bytes"), "{message}");

    // Not protocol errors: far more of them than the default budget leave
    // the connection open.
    for _ in 0..40 {
        assert_eq!(code(&call(entries(5, 1)).await), StatusCode::BadRequest);
    }
    assert_serves(&channel, "same connection").await;
}

#[tokio::test]
async fn protocol_errors_past_the_budget_close_the_connection() {
    const BUDGET: u32 = 3;
    let server = TestServer::start_with(|builder| builder.max_protocol_errors(BUDGET)).await;
    let channel = server.channel().await;

    // Errors a correct client can meet do not count: unknown services.
    let mut raw = RawClient::connect(server.addr()).await;
    for id in 1..=20 {
        let mut request = RawRequest::echo(id, &args(""));
        request.service = "test.Nobody";
        raw.send(&request.encode()).await;
        let frame = raw.next_frame().await.expect("an answer");
        assert_eq!(frame.header.status, StatusCode::UnknownService.as_u8());
    }
    // Each protocol error is answered; the one past the budget closes.
    for id in 1..=u64::from(BUDGET) + 1 {
        raw.send(&garbage_request(id)).await;
        let frame = raw.next_frame().await.expect("an answer");
        assert_eq!(frame.header.request_id, id);
        assert_eq!(frame.header.status, StatusCode::BadRequest.as_u8());
    }
    raw.expect_closed().await;

    // Frames a server never takes count too, and are never answered (an
    // answer would be a response for a request id the client may be using
    // for a call of its own): responses, pongs, response metadata, types
    // no version defines.
    for kind in [
        MessageKind::Response,
        MessageKind::Pong,
        MessageKind::ResponseMetadata,
        MessageKind::Unknown(42),
    ] {
        let mut raw = RawClient::connect(server.addr()).await;
        for id in 1..=u64::from(BUDGET) + 1 {
            raw.send(&empty_frame(kind, 1, id)).await;
        }
        raw.expect_closed().await;
    }
    assert_serves(&channel, "others served").await;
}

/// Stream items, stream ends and credits (types 7, 8, 9) for a request id
/// that is not an open streaming call are ignored, as PROTOCOL.md says
/// (they may race with the end of their call): not answered, not counted.
#[tokio::test]
async fn stream_frames_for_calls_that_are_not_open_streams_are_ignored() {
    let server = TestServer::start_with(|builder| builder.max_protocol_errors(3)).await;
    let mut raw = RawClient::connect(server.addr()).await;
    for id in 1..=100 {
        for kind in [7, 8, 9] {
            raw.send(&empty_frame(MessageKind::Unknown(kind), 1, id))
                .await;
        }
    }
    // The connection is still open, and the first frame it gets is the
    // answer to this request.
    raw.send(&RawRequest::echo(500, &args("still open")).encode())
        .await;
    let frame = raw.next_frame().await.expect("an answer");
    assert_eq!(frame.header.request_id, 500);
    assert_eq!(frame.header.status, 0);
}

#[tokio::test]
async fn a_frame_begun_after_a_quiet_spell_still_gets_the_frame_deadline() {
    // After many whole frames (the timer fired and was pushed out), a
    // frame that begins must still get the short frame deadline.
    let server = TestServer::start_with(|builder| {
        builder
            .frame_timeout(Some(SHORT))
            .heartbeat_interval(Some(Duration::from_secs(60)))
    })
    .await;
    let mut raw = RawClient::connect(server.addr()).await;
    for id in 1..=50 {
        raw.send(&RawRequest::echo(id, &args("x")).encode()).await;
        assert_eq!(raw.next_frame().await.expect("answer").header.status, 0);
    }
    tokio::time::sleep(SHORT * 2).await;
    let request = RawRequest::echo(99, &args("half")).encode();
    raw.send(&request[..10]).await;
    raw.expect_closed().await;
    assert_serves(&server.channel().await, "others served").await;
}
