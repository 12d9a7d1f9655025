//! The server against raw bytes: PROTOCOL.md's rules for bad input.

mod common;

use common::*;
use courier::protocol::{FrameHeader, MessageKind, empty_frame};
use courier::{NoDeclaredError, StatusCode};

/// The server still serves a new, well-behaved client.
async fn assert_still_serving(server: &TestServer) {
    let channel = server.channel().await;
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("still here"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "still here");
}

#[tokio::test]
async fn a_plain_request_gets_its_answer() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    client
        .send(&RawRequest::echo(99, &args("raw")).encode())
        .await;
    let frame = client.next_frame().await.expect("an answer");
    assert_eq!(frame.header.kind, MessageKind::Response);
    assert_eq!(frame.header.status, 0);
    assert_eq!(frame.header.serializer, 1);
    assert_eq!(frame.header.request_id, 99);
    // PROTOCOL.md's example: `0a` + length + the bytes of the value.
    assert_eq!(&frame.body[..], b"\x0a\x03raw");
}

#[tokio::test]
async fn a_handlers_status_goes_out_as_its_byte_with_its_message() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    for (byte, _) in HANDLER_STATUSES {
        let request = RawRequest {
            method: "refuse",
            payload: prost::Message::encode_to_vec(&refused(byte)),
            ..RawRequest::echo(u64::from(byte), &EchoArgs::default())
        };
        client.send(&request.encode()).await;
        let frame = client.next_frame().await.expect("an answer");
        assert_eq!(frame.header.request_id, u64::from(byte));
        assert_eq!(frame.header.status, byte);
        assert_eq!(&frame.body[..], refusal(byte).as_bytes());
    }
}

#[tokio::test]
async fn bad_magic_closes_that_connection_and_the_server_goes_on() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    client.expect_closed().await;
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn version_2_is_answered_11_and_closed() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    let mut request = RawRequest::echo(7, &args("v2"));
    request.version = 2;
    client.send(&request.encode()).await;
    let frame = client.next_frame().await.expect("an answer");
    assert_eq!(frame.header.request_id, 7);
    assert_eq!(frame.header.status, StatusCode::UnsupportedVersion.as_u8());
    client.expect_closed().await;
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_huge_length_is_answered_10_and_closed() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    let mut header = bytes::BytesMut::new();
    FrameHeader {
        serializer: 1,
        kind: MessageKind::Request,
        status: 0,
        request_id: 12,
        body_len: u32::MAX,
    }
    .encode_into(&mut header);
    client.send(&header).await;
    // Some of the claimed body follows; the server must not wait for 4 GiB.
    client.send(&[0u8; 1000]).await;
    let frame = client.next_frame().await.expect("an answer");
    assert_eq!(frame.header.request_id, 12);
    assert_eq!(frame.header.status, StatusCode::FrameTooLarge.as_u8());
    client.expect_closed().await;
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn the_frame_limit_is_configurable() {
    let server = TestServer::start_with(|builder| builder.max_frame_size(64)).await;
    let mut client = RawClient::connect(server.addr()).await;
    client
        .send(&RawRequest::echo(1, &args(&"x".repeat(100))).encode())
        .await;
    let frame = client.next_frame().await.expect("an answer");
    assert_eq!(frame.header.status, StatusCode::FrameTooLarge.as_u8());
    client.expect_closed().await;
}

#[tokio::test]
async fn an_unknown_serializer_is_status_5() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    let mut request = RawRequest::echo(3, &args("x"));
    request.serializer = 9;
    client.send(&request.encode()).await;
    let frame = client.next_frame().await.expect("an answer");
    assert_eq!(frame.header.request_id, 3);
    assert_eq!(
        frame.header.status,
        StatusCode::UnsupportedSerializer.as_u8()
    );
}

#[tokio::test]
async fn a_truncated_request_body_is_status_4() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    let mut header = bytes::BytesMut::new();
    FrameHeader {
        serializer: 1,
        kind: MessageKind::Request,
        status: 0,
        request_id: 4,
        body_len: 3,
    }
    .encode_into(&mut header);
    header.extend_from_slice(&[0x00, 0x09, b's']);
    client.send(&header).await;
    let frame = client.next_frame().await.expect("an answer");
    assert_eq!(frame.header.status, StatusCode::BadRequest.as_u8());
}

#[tokio::test]
async fn ping_gets_pong_and_unknown_frames_are_ignored() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    client
        .send(&empty_frame(MessageKind::Unknown(42), 0, 1))
        .await;
    client
        .send(&empty_frame(MessageKind::Cancel, 0, 12345))
        .await;
    client.send(&empty_frame(MessageKind::Pong, 0, 2)).await;
    client.send(&empty_frame(MessageKind::Ping, 0, 0)).await;
    let frame = client.next_frame().await.expect("a pong");
    assert_eq!(frame.header.kind, MessageKind::Pong);
    assert_eq!(frame.header.request_id, 0);
    assert!(frame.body.is_empty());
    // The connection is still usable.
    client
        .send(&RawRequest::echo(8, &args("after")).encode())
        .await;
    let frame = client.next_frame().await.expect("an answer");
    assert_eq!((frame.header.request_id, frame.header.status), (8, 0));
}

#[tokio::test]
async fn a_oneway_request_is_never_answered() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    let mut oneway = RawRequest::echo(1, &args("quiet"));
    oneway.kind = MessageKind::OnewayRequest;
    oneway.method = "notify";
    client.send(&oneway.encode()).await;
    // Even an unknown method on a one-way request gets no answer.
    oneway.method = "no_such_method";
    oneway.request_id = 2;
    client.send(&oneway.encode()).await;
    client
        .send(&RawRequest::echo(3, &args("marker")).encode())
        .await;
    let frame = client.next_frame().await.expect("an answer");
    assert_eq!(frame.header.request_id, 3, "only the request is answered");
    let observed = &server.observed;
    eventually("the one-way handler", || observed.notes() == ["quiet"]).await;
}

#[tokio::test]
async fn frames_split_into_single_bytes_still_decode() {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    let frame = RawRequest::echo(77, &args("slowly")).encode();
    for byte in frame.iter() {
        client.send(&[*byte]).await;
    }
    let answer = client.next_frame().await.expect("an answer");
    assert_eq!((answer.header.request_id, answer.header.status), (77, 0));
}

/// Answers the socket cannot take at once (the client reads nothing until
/// it has sent every request): the connection's reader writes the small
/// batches of answers itself until the socket is full, and what it could
/// not write goes to the writer, which goes on once the client reads.
/// Every answer arrives whole, in the order the requests came; large ones,
/// which go to the writer from the start, too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_more_than_the_socket_takes_arrive_whole_and_in_order() {
    for (answer, requests) in [(8 * 1024, 2_000), (1024 * 1024, 8)] {
        answers_arrive_whole_and_in_order(answer, requests).await;
    }
}

async fn answers_arrive_whole_and_in_order(answer: usize, requests: u64) {
    let server = TestServer::start().await;
    let mut client = RawClient::connect(server.addr()).await;
    let mut bytes = Vec::new();
    for id in 1..=requests {
        let args = EchoArgs {
            text: "0".to_owned(),
            size: answer as u64,
            ..EchoArgs::default()
        };
        let mut request = RawRequest::echo(id, &args);
        request.method = "big";
        bytes.extend_from_slice(&request.encode());
    }
    client.send(&bytes).await;
    // The server answers while nothing is read: its socket fills up.
    eventually("the first answers are handled", || {
        server.observed.big() >= 1
    })
    .await;
    for id in 1..=requests {
        let frame = client.next_frame().await.expect("an answer");
        assert_eq!(frame.header.request_id, id);
        assert_eq!(frame.header.status, 0, "{frame:?}");
        let reply: BytesReply = prost::Message::decode(frame.body).expect("a reply");
        assert_eq!(reply.value.len(), answer);
        assert!(reply.value.iter().all(|&b| b == b'o'));
    }
    assert_still_serving(&server).await;
}
