//! Server streaming (message types 7 and 9): items in order with credit
//! flow control, the typed end, the deadline over the whole stream, cancel
//! on drop, response metadata before the first item, and bounded memory
//! with consumers that stop reading.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use courier::client::{
    CallOptions, Channel, ChannelConfig, ItemStream, RawReply, ResponseMetadataCapture,
};
use courier::protocol::CREDIT_WINDOW;
use courier::protocol::{FrameHeader, MessageKind};
use courier::{RpcError, StatusCode, TransportError};

fn count_args(how: &str, items: u64, interval_ms: u64) -> EchoArgs {
    EchoArgs {
        text: how.to_owned(),
        size: items,
        delay_ms: interval_ms,
        ..EchoArgs::default()
    }
}

fn count(channel: &Channel, args: EchoArgs, options: CallOptions) -> ItemStream<u64, EchoError> {
    ItemStream::open(channel, &COUNT, args, options)
}

/// Every element of a stream, up to its end.
async fn collect(mut stream: ItemStream<u64, EchoError>) -> Vec<Result<u64, RpcError<EchoError>>> {
    let mut all = Vec::new();
    while let Some(element) = within("the next element", stream.next()).await {
        all.push(element);
    }
    all
}

fn oks(all: &[Result<u64, RpcError<EchoError>>]) -> Vec<u64> {
    all.iter()
        .filter_map(|e| e.as_ref().ok().copied())
        .collect()
}

#[tokio::test]
async fn items_arrive_in_order_past_the_credit_window_and_the_stream_ends() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let n = u64::from(CREDIT_WINDOW) * 5 + 3;
    let all = collect(count(&channel, count_args("ok", n, 0), options())).await;
    assert_eq!(oks(&all), (1..=n).collect::<Vec<_>>());
    assert_eq!(all.len() as u64, n, "no error at the end: {:?}", all.last());
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
    eventually("the server to hold no call", || {
        server.handle.in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn a_declared_error_or_a_status_arrives_typed_after_the_items_before_it() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let all = collect(count(&channel, count_args("declared", 20, 0), options())).await;
    assert_eq!(oks(&all), (1..=20).collect::<Vec<_>>());
    assert_eq!(all.len(), 21);
    match all.last() {
        Some(Err(RpcError::Declared(EchoError {
            not_found: Some(NotFound { key }),
        }))) => assert_eq!(key, "after"),
        other => panic!("expected the declared error last, got {other:?}"),
    }

    let all = collect(count(&channel, count_args("status", 3, 0), options())).await;
    assert_eq!(oks(&all), [1, 2, 3]);
    match all.last() {
        Some(Err(RpcError::Status(status))) => {
            assert_eq!(status.code(), StatusCode::NotFound);
            assert_eq!(status.message(), "no more");
        }
        other => panic!("expected status 15 last, got {other:?}"),
    }
}

#[tokio::test]
async fn the_deadline_covers_the_whole_stream() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let all = collect(count(
        &channel,
        count_args("slow", 4, 0),
        with_timeout(Duration::from_millis(300)),
    ))
    .await;
    assert_eq!(oks(&all), [1, 2, 3, 4]);
    match all.last() {
        Some(Err(error)) => assert_eq!(error.code(), StatusCode::DeadlineExceeded),
        other => panic!("expected status 6 last, got {other:?}"),
    }
    eventually("the handler to be stopped", || {
        server.observed.stopped() == 1
    })
    .await;
    eventually("the server to hold no call", || {
        server.handle.in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn dropping_the_stream_cancels_the_call_and_stops_the_handler() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut stream = count(&channel, count_args("slow", 3, 0), options());
    for expected in 1..=3 {
        let item = within("an item", stream.next()).await;
        assert_eq!(item.expect("an item").expect("ok"), expected);
    }
    drop(stream);
    eventually("the handler to be stopped", || {
        server.observed.stopped() == 1
    })
    .await;
    eventually("the server to hold no call", || {
        server.handle.in_flight() == 0
    })
    .await;
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
}

#[tokio::test]
async fn response_metadata_comes_before_the_first_item() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let capture = ResponseMetadataCapture::new();
    let options = CallOptions {
        response_metadata: Some(capture.clone()),
        ..CallOptions::default()
    };
    let all = collect(count(&channel, count_args("metadata", 2, 0), options)).await;
    assert_eq!(oks(&all), [1, 2]);
    let metadata = capture.take().expect("the stream ended with an answer");
    assert_eq!(metadata.get("served-by"), Some("stream"));
}

#[tokio::test]
async fn a_consumer_that_stops_taking_stops_the_server_at_its_credit() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut stream = count(&channel, count_args("ok", 1000, 0), options());
    // Open it, and take one item: the server has had the window.
    assert_eq!(
        within("an item", stream.next())
            .await
            .expect("an item")
            .expect("ok"),
        1
    );
    let window = u64::from(CREDIT_WINDOW);
    eventually("the window to be sent", || {
        server.observed.sent_items.load(Ordering::SeqCst) as u64 >= window
    })
    .await;
    // Without credit the handler waits: a while later it has sent no
    // more than the window (the one item taken gives no credit back yet:
    // credit goes back half a window at a time).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = server.observed.sent_items.load(Ordering::SeqCst) as u64;
    assert_eq!(sent, window, "items sent without credit");
    // Taking the rest lets it finish.
    let mut next = 2;
    while let Some(item) = within("an item", stream.next()).await {
        assert_eq!(item.expect("ok"), next);
        next += 1;
    }
    assert_eq!(next, 1001);
}

/// Held by the tests that measure the process's memory, so that they do
/// not measure each other.
static MEASURING_MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The process's resident memory, in bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|resident| resident.parse().ok())
        .expect("resident pages");
    pages * 4096
}

fn blobs(channel: &Channel, size: u64) -> ItemStream<Bytes, courier::NoDeclaredError> {
    ItemStream::open(
        channel,
        &BLOBS,
        EchoArgs {
            size,
            ..EchoArgs::default()
        },
        options(),
    )
}

/// Polls `stream` once (which opens it), taking nothing.
async fn open_without_taking(stream: &mut ItemStream<Bytes, courier::NoDeclaredError>) {
    let _ = tokio::time::timeout(Duration::ZERO, stream.next()).await;
}

/// Waits until the servers' handlers have sent all they can: the count of
/// items sent stays the same for 300 ms.
async fn until_sending_stops(observed: &Observed) -> usize {
    let mut last = observed.sent_items.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = observed.sent_items.load(Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_streams_of_64_kib_items_whose_consumers_stop_stay_bounded() {
    let _alone = MEASURING_MEMORY.lock().await;
    const ITEM: u64 = 64 * 1024;
    const CLIENT_BOUND: usize = 8 * 1024 * 1024;
    let server = TestServer::start().await;
    let config = ChannelConfig {
        max_buffered_stream_bytes: CLIENT_BOUND,
        ..ChannelConfig::default()
    };
    let channel = Channel::connect_with(server.addr(), config)
        .await
        .expect("connect");
    let before = rss_bytes();
    let mut streams = Vec::new();
    for _ in 0..1000 {
        let mut stream = blobs(&channel, ITEM);
        open_without_taking(&mut stream).await;
        streams.push(stream);
    }
    // No consumer takes anything. Without bounds the server would send
    // 1000 streams x 16 credits x 64 KiB = 1 GiB.
    let sent = within("the sending to stop", until_sending_stops(&server.observed)).await;
    let sent_bytes = sent as u64 * ITEM;
    let held_by_server = server.handle.buffered_bytes();
    let grown = rss_bytes().saturating_sub(before);
    eprintln!(
        "1000 streams of 64 KiB items, no consumer taking: {sent} items sent ({} MiB), {} calls on the server, server holds {} MiB, RSS grew {} MiB",
        sent_bytes / (1024 * 1024),
        server.handle.in_flight(),
        held_by_server / (1024 * 1024),
        grown / (1024 * 1024)
    );
    assert!(
        sent_bytes < 64 * 1024 * 1024,
        "{sent} items of 64 KiB were sent to consumers that take nothing"
    );
    assert!(
        held_by_server <= server.handle.max_connection_bytes() + 4 * 1024 * 1024,
        "the server holds {held_by_server} bytes"
    );
    assert!(grown < 192 * 1024 * 1024, "RSS grew {grown} bytes");
    // Past the bound the connection reads nothing more: the consumers that
    // stopped hold up the rest of it, as HTTP/2's connection window does.
    // Their client going away ends every call.
    drop(streams);
    drop(channel);
    eventually("every handler to stop", || server.handle.in_flight() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_streams_of_64_kib_items_go_on_while_one_consumer_stops() {
    let _alone = MEASURING_MEMORY.lock().await;
    const ITEM: usize = 64 * 1024;
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let before = rss_bytes();
    // One consumer takes its first item and stops.
    let mut stopped = blobs(&channel, ITEM as u64);
    let first = within("a first item", stopped.next()).await;
    assert_eq!(first.expect("an item").expect("ok").len(), ITEM);
    // A thousand others take two items each, side by side.
    let readers: Vec<_> = (0..1000)
        .map(|_| {
            let mut stream = blobs(&channel, ITEM as u64);
            tokio::spawn(async move {
                for _ in 0..2 {
                    let item = stream.next().await.expect("an item").expect("ok");
                    assert_eq!(item.len(), ITEM);
                }
            })
        })
        .collect();
    for reader in readers {
        within("two items", reader).await.expect("no panic");
    }
    let grown = rss_bytes().saturating_sub(before);
    eprintln!(
        "1000 streams of 64 KiB items read while one consumer stopped: RSS grew {} MiB",
        grown / (1024 * 1024)
    );
    assert!(grown < 256 * 1024 * 1024, "RSS grew {grown} bytes");
    // The stopped one holds at most its window; its handler waits.
    drop(stopped);
    eventually("every handler to stop", || server.handle.in_flight() == 0).await;
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
}

#[tokio::test]
async fn a_few_stopped_consumers_do_not_hold_up_the_others() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut stopped = Vec::new();
    for _ in 0..8 {
        let mut stream = blobs(&channel, 64 * 1024);
        open_without_taking(&mut stream).await;
        stopped.push(stream);
    }
    // Each holds at most its window (16 x 64 KiB); another stream and a
    // unary call on the same connection go on.
    let all = collect(count(&channel, count_args("ok", 100, 0), options())).await;
    assert_eq!(oks(&all).len(), 100);
    let reply: EchoReply = channel
        .unary::<_, _, courier::NoDeclaredError>(&ECHO, &args("still"), &options())
        .await
        .expect("a reply");
    assert_eq!(reply.value, "still");
    drop(stopped);
    eventually("every handler to stop", || server.handle.in_flight() == 0).await;
}

/// A client that opens a stream of large items and never reads: the
/// server's senders wait for room without spinning, so on a
/// current-thread runtime the server still answers everyone else.
#[tokio::test]
async fn senders_waiting_for_room_leave_the_runtime_to_others() {
    let server = TestServer::start_with(|builder| {
        builder
            .max_frame_size(256 * 1024)
            .max_buffered_bytes_per_connection(512 * 1024)
    })
    .await;
    let mut raw = RawClient::connect(server.addr()).await;
    let mut request = RawRequest::echo(
        1,
        &EchoArgs {
            size: 64 * 1024,
            ..EchoArgs::default()
        },
    );
    request.method = "blobs";
    raw.send(&request.encode()).await;
    // It never reads and never gives credit: after its window, the handler
    // waits for credit; with a larger window it would wait for room.
    eventually("the window to be sent", || {
        server.observed.sent_items.load(Ordering::SeqCst) >= CREDIT_WINDOW as usize
    })
    .await;
    // Credit for many more items, still without reading: now the handler
    // waits for room in the connection's account.
    let mut credit = BytesMut::new();
    FrameHeader {
        serializer: 1,
        kind: MessageKind::Credit,
        status: 0,
        request_id: 1,
        body_len: 4,
    }
    .encode_into(&mut credit);
    credit.extend_from_slice(&10_000u32.to_be_bytes());
    raw.send(&credit).await;
    let channel = server.channel().await;
    for i in 0..20 {
        let reply: EchoReply = within(
            "an answer while the stream waits for room",
            channel.unary::<_, _, courier::NoDeclaredError>(
                &ECHO,
                &args(&i.to_string()),
                &options(),
            ),
        )
        .await
        .expect("a reply");
        assert_eq!(reply.value, i.to_string());
    }
    let sent = server.observed.sent_items.load(Ordering::SeqCst);
    assert!(
        sent < 10_000,
        "the handler sent {sent} items to a client that reads nothing"
    );
}

#[tokio::test]
async fn a_server_that_sends_past_its_credit_fails_the_stream() {
    // 17 items (field 1 = 7) against a window of 16, then an end.
    let addr = scripted_server(|id| {
        let mut frames: Vec<Bytes> = (0..=CREDIT_WINDOW)
            .map(|_| scripted_frame(MessageKind::StreamItem, id, b"\x08\x07"))
            .collect();
        frames.push(scripted_frame(MessageKind::Response, id, b""));
        frames
    })
    .await;
    let channel = Channel::connect(addr).await.expect("connect");
    let mut stream = count(&channel, count_args("ok", 0, 0), options());
    // The items within the window arrive; the one past it fails the call.
    let mut items = 0;
    let error = loop {
        match within("an element", stream.next()).await {
            Some(Ok(7)) => items += 1,
            Some(Ok(other)) => panic!("unexpected item {other}"),
            Some(Err(error)) => break error,
            None => panic!("the stream ended without the error"),
        }
    };
    assert!(items <= CREDIT_WINDOW, "{items} items");
    match error {
        RpcError::Transport(TransportError::Protocol(message)) => {
            assert!(message.contains("without credit"), "{message}")
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_raw_stream_gives_the_encoded_items_then_the_declared_error() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let options = CallOptions {
        serializer: courier::Serializer::Json,
        ..CallOptions::default()
    };
    let method = courier::client::MethodDescriptor::new(SERVICE, "count");
    let mut stream = channel
        .open_stream_raw(
            &method,
            br#"{"text":"declared","size":3,"delay_ms":0}"#,
            &options,
        )
        .await
        .expect("opened");
    let mut seen = Vec::new();
    while let Some(element) = within("an element", stream.next()).await {
        seen.push(element.expect("no failure"));
    }
    assert_eq!(
        seen,
        [
            RawReply::Ok(Bytes::from_static(br#"{"value":1}"#)),
            RawReply::Ok(Bytes::from_static(br#"{"value":2}"#)),
            RawReply::Ok(Bytes::from_static(br#"{"value":3}"#)),
            RawReply::Declared(Bytes::from_static(br#"{"not_found":{"key":"after"}}"#)),
        ]
    );
}
