//! Hostile and stuck peers, played by raw sockets the way an attacker
//! would: peers that pipeline requests and never read, that ask for answers
//! far larger than their requests, that flood requests the server refuses,
//! that hold the server's whole call capacity, or that disconnect with
//! calls in flight. Each test checks the server's own accounting (bytes
//! held, calls in flight, open connections) against the configured bounds,
//! that the peer is closed when it should be, and that a well-behaved
//! client is served throughout. Nothing here asserts how long anything
//! took.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use courier::client::Channel;
use courier::protocol::{Frame, FrameDecoder, MessageKind, empty_frame};
use courier::server::{CALL_SLOT_BYTES, ServerBuilder};
use courier::{NoDeclaredError, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// The memory limits of these tests' servers: small, so that a few peers
/// reach them.
const RESERVED: usize = 64 * KIB;
const PER_CONNECTION: usize = MIB;
const POOL: usize = 4 * MIB;
const MAX_FRAME: u32 = 256 * 1024;
/// What a connection may hold past its limits: one read (64 KiB), with the
/// tasks of the calls started from it (a few KiB each: these tests' calls
/// are large), and the short status frames of the frames handled in it and
/// of its calls in flight.
const PAST_LIMITS: usize = 64 * KIB + 64 * KIB;

/// The most the server may hold with `connections` connections.
fn bound(connections: usize) -> usize {
    POOL + connections * (RESERVED + PAST_LIMITS)
}

/// How long the tests that check a 100 ms heartbeat does *not* close a
/// connection (its deadline: 300 ms without a frame) wait: past two such
/// deadlines, and under a second.
const PAST_TWO_DEADLINES: Duration = Duration::from_millis(700);

/// A server whose connections hold at most 96 KiB ([`SMALL_LIMIT`]), with
/// frames of at most 4 KiB: a few dozen calls fill one.
fn small_connections(builder: ServerBuilder) -> ServerBuilder {
    builder
        .max_frame_size(4 * KIB as u32)
        .reserved_bytes_per_connection(16 * KIB)
        .max_buffered_bytes_per_connection(SMALL_LIMIT)
}

/// The connection limit of [`small_connections`].
const SMALL_LIMIT: usize = 96 * KIB;

fn bounded(builder: ServerBuilder) -> ServerBuilder {
    builder
        .max_frame_size(MAX_FRAME)
        .reserved_bytes_per_connection(RESERVED)
        .max_buffered_bytes_per_connection(PER_CONNECTION)
        .max_buffered_bytes(POOL)
}

/// A request for `method` with `args`.
fn request(id: u64, method: &'static str, args: &EchoArgs) -> Bytes {
    let mut request = RawRequest::echo(id, args);
    request.method = method;
    request.encode()
}

/// A one-way request for `method`.
fn oneway(id: u64, method: &'static str, args: &EchoArgs) -> Bytes {
    let mut request = RawRequest::echo(id, args);
    request.method = method;
    request.kind = MessageKind::OnewayRequest;
    request.encode()
}

/// `big`: an answer of `size` bytes for a tiny request.
fn big_answer(id: u64, size: usize) -> Bytes {
    let args = EchoArgs {
        text: "0".to_owned(),
        size: size as u64,
        ..EchoArgs::default()
    };
    request(id, "big", &args)
}

/// A peer that writes and never reads: its read half is kept open, unread.
struct NonReader {
    _read: OwnedReadHalf,
    writing: JoinHandle<OwnedWriteHalf>,
}

impl NonReader {
    /// Connects and writes the frames `batch(i)` makes for i = 0, 1, ...
    /// until `batches` are written or the server closes the connection.
    async fn start(
        server: &TestServer,
        batches: u64,
        batch: impl Fn(u64) -> BytesMut + Send + 'static,
    ) -> NonReader {
        let stream = TcpStream::connect(server.addr()).await.expect("connect");
        let (read, mut write) = stream.into_split();
        let writing = tokio::spawn(async move {
            for i in 0..batches {
                if write.write_all(&batch(i)).await.is_err() {
                    break;
                }
            }
            write
        });
        NonReader {
            _read: read,
            writing,
        }
    }
}

/// Polls `condition` until it holds (failing after [`PATIENCE`]), and
/// returns the most bytes the server held meanwhile.
async fn watch_bytes_until(
    server: &TestServer,
    what: &str,
    mut condition: impl FnMut() -> bool,
) -> usize {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut most = server.handle.buffered_bytes();
    while !condition() {
        most = most.max(server.handle.buffered_bytes());
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    most.max(server.handle.buffered_bytes())
}

/// Reads `count` frames from `read`, handing each to `each`; fails if the
/// server closes first, or after [`PATIENCE`] for any one frame.
async fn read_frames(read: &mut OwnedReadHalf, count: usize, mut each: impl FnMut(Frame)) {
    let mut decoder = FrameDecoder::new(u32::MAX);
    let mut buf = BytesMut::new();
    let mut seen = 0;
    while seen < count {
        while let Some(frame) = decoder.decode(&mut buf).expect("valid frames") {
            each(frame);
            seen += 1;
        }
        if seen < count
            && within("a frame", read.read_buf(&mut buf))
                .await
                .expect("read")
                == 0
        {
            panic!("closed after {seen} of {count} frames");
        }
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_pipeline_large_requests_and_never_read_stay_within_the_bounds_and_are_closed() {
    const PEERS: usize = 8;
    let server = TestServer::start_with(|builder| {
        bounded(builder).write_stall_timeout(Some(Duration::from_millis(300)))
    })
    .await;
    let good = server.channel().await;
    assert_serves(&good, "before").await;
    // Each peer pipelines echo requests of 200 KiB (answered 200 KiB), as
    // fast as the server takes them, and reads nothing.
    let text = "x".repeat(200 * KIB);
    let mut peers = Vec::new();
    for _ in 0..PEERS {
        let text = text.clone();
        peers.push(
            NonReader::start(&server, 10_000, move |i| {
                BytesMut::from(&request(i + 1, "echo", &args(&text))[..])
            })
            .await,
        );
    }
    // Not "every peer connected": on a loaded machine the first peers can
    // be closed (300 ms without progress) before the last is accepted. A
    // peer's writes fail only once the server has closed its connection.
    let closed = |peers: &[NonReader]| peers.iter().filter(|p| p.writing.is_finished()).count();
    eventually("a peer to fill its connection", || {
        server.handle.max_connection_bytes() >= PER_CONNECTION || closed(&peers) > 0
    })
    .await;
    // The good client is served while the peers fill their connections.
    let mut most = 0;
    for i in 0..20 {
        assert_serves(&good, &format!("during {i}")).await;
        most = most.max(server.handle.buffered_bytes());
    }
    // Each peer is closed (its answers made no progress), and its calls
    // are gone.
    most = most.max(
        watch_bytes_until(&server, "the non-reading peers to be closed", || {
            closed(&peers) == PEERS && server.handle.connection_count() == 1
        })
        .await,
    );
    assert!(
        most <= bound(PEERS + 1),
        "the server held {most} bytes (bound {})",
        bound(PEERS + 1)
    );
    for peer in peers {
        within("the peer's writes to fail", peer.writing)
            .await
            .expect("writer task");
    }
    eventually("the peers' calls to end", || server.handle.in_flight() == 0).await;
    assert_serves(&good, "after").await;
    eventually("every byte to be released", || {
        server.handle.buffered_bytes() < RESERVED && server.handle.pool_bytes() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_far_larger_than_their_requests_are_bounded_in_bytes() {
    // 400 requests of about 40 bytes ask for 512 KiB each: 200 MiB of
    // answers from 16 KB sent. The peer reads nothing until all are in.
    const REQUESTS: u64 = 400;
    let server = TestServer::start_with(|builder| {
        bounded(builder)
            .max_frame_size(MIB as u32)
            .max_buffered_bytes_per_connection(2 * MIB)
            .write_stall_timeout(None)
    })
    .await;
    let stream = TcpStream::connect(server.addr()).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let mut all = BytesMut::new();
    for id in 1..=REQUESTS {
        all.extend_from_slice(&big_answer(id, 512 * KIB));
    }
    write.write_all(&all).await.expect("write");
    // Every call read has ended, and the reader has handled every request,
    // or stopped: it stops once 1 MiB of answers is unwritten (half the
    // connection's limit) and goes on only once at most 512 KiB is, which
    // the unread answers keep it above until the peer reads.
    let mut most = watch_bytes_until(&server, "every call read to end", || {
        server.handle.in_flight() == 0
            && (server.observed.big() == REQUESTS as usize
                || server.handle.max_connection_bytes() > MIB / 2)
    })
    .await;
    // One connection: the pool, its reserved share, and what it may
    // hold past its limits (one read, and the status frames of 400 calls).
    let limit = POOL + RESERVED + PAST_LIMITS;
    assert!(
        most <= limit,
        "the server held {most} bytes (bound {limit})"
    );

    // Every call is answered: its answer if there was room for it, else
    // status 18 in its place.
    let (mut ok, mut exhausted) = (0, 0);
    read_frames(&mut read, REQUESTS as usize, |frame| {
        match frame.header.status {
            0 => {
                assert_eq!(frame.body.len(), 512 * KIB + 4, "a whole answer");
                ok += 1;
            }
            18 => {
                let message = String::from_utf8_lossy(&frame.body).into_owned();
                assert!(message.contains("does not fit"), "{message}");
                exhausted += 1;
            }
            other => panic!("status {other}"),
        }
        // Reading lets the server read the requests it had left.
        most = most.max(server.handle.buffered_bytes());
    })
    .await;
    assert!(
        most <= limit,
        "the server held {most} bytes (bound {limit}) while the peer read"
    );
    assert_eq!(server.observed.big(), REQUESTS as usize, "every call ran");
    // The reader stopped handling requests while 1 MiB of answers was
    // unwritten (half the connection's limit), so none had to be refused.
    assert_eq!((ok, exhausted), (REQUESTS, 0), "every answer, none refused");
    drop(write);
    eventually("the connection to close", || {
        server.handle.connection_count() == 0
    })
    .await;
    eventually("every byte to be released", || {
        server.handle.buffered_bytes() == 0 && server.handle.pool_bytes() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_reads_gets_every_large_answer_of_calls_that_finish_inline() {
    // 64 small requests in one write ask for 1.5 MiB each: 96 MiB of
    // answers, 24 times the connection's limit (which is no multiple of
    // their size: the answer that does not fit leaves room below it). The calls finish inline on the
    // reader as fast as it decodes them (on a current-thread runtime, the
    // writer runs only when the reader waits); the peer reads all the
    // while. The reader must wait for the socket to take the answers
    // rather than refuse those past the limit with status 18.
    const REQUESTS: u64 = 64;
    const ANSWER: usize = 3 * MIB / 2;
    let server = OwnThreadServer::start(
        |builder| {
            bounded(builder)
                .max_frame_size(2 * MIB as u32)
                .max_buffered_bytes_per_connection(4 * MIB)
                .max_buffered_bytes(8 * MIB)
        },
        |_| {},
    );
    let stream = TcpStream::connect(server.addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let mut all = BytesMut::new();
    for id in 1..=REQUESTS {
        all.extend_from_slice(&big_answer(id, ANSWER));
    }
    write.write_all(&all).await.expect("write");
    let mut answered = 0;
    read_frames(&mut read, REQUESTS as usize, |frame| {
        assert_eq!(
            frame.header.status,
            0,
            "answer {answered}: {}",
            String::from_utf8_lossy(&frame.body)
        );
        assert_eq!(frame.body.len(), ANSWER + 4, "a whole answer");
        answered += 1;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_flooded_and_never_read_are_answered_through_the_bounded_outbox() {
    let server = TestServer::start_with(|builder| {
        bounded(builder)
            .max_in_flight_per_connection(4)
            .write_stall_timeout(Some(Duration::from_millis(300)))
    })
    .await;
    let runtime = tokio::runtime::Handle::current();
    let baseline_tasks = runtime.metrics().num_alive_tasks();
    let good = server.channel().await;
    // Unknown methods with long names (long status messages), and slow
    // calls past the connection's limit of 4 (status 7): 100 000 requests
    // whose answers nobody reads.
    let method: &'static str = Box::leak("m".repeat(1000).into_boxed_str());
    let flood = NonReader::start(&server, 1_000, move |i| {
        let mut batch = BytesMut::new();
        for j in 0..100 {
            let id = i * 100 + j + 1;
            let frame = if j % 2 == 0 {
                request(id, method, &args(""))
            } else {
                request(id, "slow", &args(""))
            };
            batch.extend_from_slice(&frame);
        }
        batch
    })
    .await;
    let mut peak_tasks = 0;
    // Its writes fail once the server has closed its connection (the
    // count alone is 1 too before the server has accepted it).
    let most = watch_bytes_until(&server, "the flooding peer to be closed", || {
        peak_tasks = peak_tasks.max(runtime.metrics().num_alive_tasks());
        flood.writing.is_finished() && server.handle.connection_count() == 1
    })
    .await;
    assert!(most <= bound(2), "the server held {most} bytes");
    // The test's tasks, each connection's reader and writer, the 4 slow
    // calls: no task per answer.
    assert!(
        peak_tasks <= baseline_tasks + 16,
        "{peak_tasks} tasks alive (baseline {baseline_tasks})"
    );
    within("the flood", flood.writing)
        .await
        .expect("flood task");
    eventually("the slow calls to be stopped", || {
        server.handle.in_flight() == 0
    })
    .await;
    assert_serves(&good, "still served").await;
    eventually("every byte to be released", || {
        server.handle.pool_bytes() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_deadlines_keep_running_while_the_writer_is_blocked() {
    // No write-stall timeout: only the idle deadline (three heartbeat
    // intervals without a byte) can close this peer, whose answers fill
    // the socket and then the connection's limit, and which then goes
    // silent.
    let server = TestServer::start_with(|builder| {
        bounded(builder)
            .write_stall_timeout(None)
            .heartbeat_interval(Some(Duration::from_millis(100)))
    })
    .await;
    let peer = NonReader::start(&server, 2, |batch| {
        let mut frames = BytesMut::new();
        if batch == 0 {
            // 64 MiB of answers: more than the socket buffers hold.
            for id in 1..=256 {
                frames.extend_from_slice(&big_answer(id, 250 * KIB));
            }
        } else {
            // Then pings, whose pongs pile up behind the answers.
            for _ in 0..20_000 {
                frames.extend_from_slice(&empty_frame(MessageKind::Ping, 0, 0));
            }
        }
        frames
    })
    .await;
    // Seen open first (it stays open for at least the idle deadline): the
    // count is 0 too before the server has accepted the connection.
    let mut seen_open = false;
    let most = watch_bytes_until(&server, "the silent peer to be closed", || {
        seen_open |= server.handle.connection_count() == 1;
        seen_open && server.handle.connection_count() == 0
    })
    .await;
    assert!(most <= bound(1), "the server held {most} bytes");
    drop(peer);
    eventually("every byte to be released", || {
        server.handle.buffered_bytes() == 0 && server.handle.pool_bytes() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_paused_by_its_own_calls_is_not_closed_for_the_silence() {
    // Five slow calls of 250 KiB fill the connection's 1 MiB limit: the
    // server stops reading it, with no answer waiting. The peer is not
    // silent by choice (the server does not read it), so the idle deadline
    // (300 ms) must not close it.
    let server = TestServer::start_with(|builder| {
        bounded(builder).heartbeat_interval(Some(Duration::from_millis(100)))
    })
    .await;
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    let heavy = EchoArgs {
        data: Bytes::from(vec![b'd'; 250 * KIB]),
        ..EchoArgs::default()
    };
    let mut calls = BytesMut::new();
    for id in 1..=5 {
        calls.extend_from_slice(&request(id, "slow", &heavy));
    }
    stream.write_all(&calls).await.expect("write");
    eventually("the connection to fill up", || {
        server.observed.started() >= 4 && server.handle.max_connection_bytes() >= PER_CONNECTION
    })
    .await;
    // Something that must not happen: wait past two idle deadlines.
    tokio::time::sleep(PAST_TWO_DEADLINES).await;
    assert_eq!(server.handle.connection_count(), 1, "closed while paused");
    // The peer leaves: the paused reader notices (TCP tells it) and stops
    // the calls.
    drop(stream);
    eventually("the calls to be stopped", || server.handle.in_flight() == 0).await;
    eventually("the connection to close", || {
        server.handle.connection_count() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_requests_already_read_are_served_when_the_connection_reaches_its_limit() {
    // A connection limit of 96 KiB and slow calls of about 1 KiB: the
    // peer's calls fill the connection until the server stops reading it.
    // The read that takes it past its limit brings several whole requests
    // at once; they were read and charged, and handing them to their calls
    // queues no answer, so they must be served, not left in the read
    // buffer until a call ends (these never do): a peer whose calls wait
    // on one another would deadlock. At most the one frame the reader
    // stopped in the middle of waits.
    let server = TestServer::start_with(small_connections).await;
    let filler = EchoArgs {
        data: Bytes::from(vec![b'd'; 1000]),
        ..EchoArgs::default()
    };
    let frame = request(1, "slow", &filler).len();
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    // What one call is charged: its frame, and its task.
    stream
        .write_all(&request(1, "slow", &filler))
        .await
        .expect("write");
    eventually("the first call to start", || server.observed.started() == 1).await;
    let per_call = server.handle.max_connection_bytes();
    assert!(per_call >= frame, "{per_call} bytes charged for a call");
    let mut calls = BytesMut::new();
    for id in 2..=(2 * SMALL_LIMIT / frame) as u64 {
        calls.extend_from_slice(&request(id, "slow", &filler));
    }
    stream.write_all(&calls).await.expect("write");
    eventually("the connection to reach its limit", || {
        server.handle.max_connection_bytes() >= SMALL_LIMIT
    })
    .await;
    eventually("every whole request read to be served", || {
        let held = server.handle.max_connection_bytes();
        held < server.observed.started() * per_call + frame
    })
    .await;
    assert!(server.observed.started() * frame <= SMALL_LIMIT + 64 * KIB);
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_larger_than_half_the_limit_is_read_on_once_the_other_calls_end() {
    // A 1 MiB connection limit and frames of up to 700 KiB. Two gated
    // calls of 250 KiB hold half the limit; a 680 KiB request sent behind
    // them takes the connection past its limit in the middle of its body,
    // and the reader pauses. When the gated calls end (their answers read),
    // that one request is all the connection holds, and more than half its
    // limit by itself: the reader must read the rest of it (the frame being
    // read does not count against the point where reading goes on), not
    // wait for ever.
    const LARGE: usize = 680 * KIB;
    let server =
        TestServer::start_with(|builder| bounded(builder).max_frame_size(700 * KIB as u32)).await;
    let heavy = EchoArgs {
        text: "gated".to_owned(),
        data: Bytes::from(vec![b'd'; 250 * KIB]),
        ..EchoArgs::default()
    };
    let large = EchoArgs {
        text: LARGE.to_string(),
        data: Bytes::from(vec![b'l'; LARGE]),
        size: 16,
        ..EchoArgs::default()
    };
    let mut calls = BytesMut::new();
    calls.extend_from_slice(&request(1, "gated", &heavy));
    calls.extend_from_slice(&request(2, "gated", &heavy));
    calls.extend_from_slice(&request(3, "big", &large));
    let stream = TcpStream::connect(server.addr()).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let writing = tokio::spawn(async move {
        write.write_all(&calls).await.expect("write");
        write
    });
    eventually(
        "the reader to pause in the middle of the large request",
        || server.observed.started() == 2 && server.handle.max_connection_bytes() >= PER_CONNECTION,
    )
    .await;
    assert_eq!(
        server.observed.big(),
        0,
        "the large request is not read yet"
    );
    server.observed.open_gate();
    let mut answered = Vec::new();
    read_frames(&mut read, 3, |frame| {
        assert_eq!(
            frame.header.status,
            0,
            "answer to {}: {}",
            frame.header.request_id,
            String::from_utf8_lossy(&frame.body)
        );
        answered.push(frame.header.request_id);
    })
    .await;
    answered.sort_unstable();
    assert_eq!(answered, [1, 2, 3]);
    assert_eq!(server.observed.big(), 1);
    drop(writing.await.expect("the writer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_leaves_its_table_of_calls_charged_and_the_connection_serving() {
    // A 96 KiB connection limit and 1,000 gated calls sent in one write:
    // the connection's table of calls grows with the calls in flight and
    // keeps its size once they end, charged to the connection (whole slots
    // of `CALL_SLOT_BYTES`) until it closes. Those bytes count against the
    // pool, not the connection's own limit (a unit test of `memory.rs`
    // shows the rule), so the next call on the same connection is served.
    const CALLS: u64 = 1000;
    let server = TestServer::start_with(small_connections).await;
    let mut raw = RawClient::connect(server.addr()).await;
    let mut calls = BytesMut::new();
    for id in 1..=CALLS {
        calls.extend_from_slice(&request(id, "gated", &args("g")));
    }
    raw.send(&calls).await;
    eventually("the calls to fill the connection", || {
        server.observed.started() >= 50 && server.handle.max_connection_bytes() >= SMALL_LIMIT
    })
    .await;
    server.observed.open_gate();
    // Answers that do not fit while the other calls still hold the
    // connection's bytes are status 18 (see "An answer that does not fit").
    for _ in 0..CALLS {
        let answer = raw.next_frame().await.expect("an answer");
        assert!(
            [0, StatusCode::ResourceExhausted.as_u8()].contains(&answer.header.status),
            "status {}",
            answer.header.status
        );
    }
    eventually("the calls to end, their table left charged", || {
        let held = server.handle.buffered_bytes();
        server.handle.in_flight() == 0
            && held >= 64 * CALL_SLOT_BYTES
            && held % CALL_SLOT_BYTES == 0
    })
    .await;
    raw.send(&request(CALLS + 1, "echo", &args("after"))).await;
    let answer = raw.next_frame().await.expect("the echo's answer");
    assert_eq!(answer.header.request_id, CALLS + 1);
    assert_eq!(answer.header.status, 0);
    drop(raw);
    eventually("the table to be released with the connection", || {
        server.handle.buffered_bytes() == 0 && server.handle.pool_bytes() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_leaves_while_its_connection_is_paused_is_noticed() {
    // The peer sends far more than its connection's limit and leaves. The
    // server stopped reading it, and the peer's kernel still holds bytes
    // the server's receive window does not take, with the FIN behind them:
    // the server never sees the close. Its calls must not run on for ever:
    // the pong a paused connection sends (here every 100 ms) meets a reset.
    let server = TestServer::start_with(|builder| {
        bounded(builder).heartbeat_interval(Some(Duration::from_millis(200)))
    })
    .await;
    let heavy = EchoArgs {
        data: Bytes::from(vec![b'd'; 200 * KIB]),
        ..EchoArgs::default()
    };
    let mut calls = BytesMut::new();
    for id in 1..=40 {
        calls.extend_from_slice(&request(id, "slow", &heavy));
    }
    let stream = TcpStream::connect(server.addr()).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let writing = tokio::spawn(async move {
        let _ = write.write_all(&calls).await;
        write
    });
    eventually("the connection to fill up", || {
        server.handle.max_connection_bytes() >= PER_CONNECTION
    })
    .await;
    // Leaves: the writer is stopped (its write half dropped), and the
    // socket closed.
    writing.abort();
    let _ = writing.await;
    drop(read);
    eventually("the calls to be stopped", || server.handle.in_flight() == 0).await;
    eventually("the connection to close", || {
        server.handle.connection_count() == 0
    })
    .await;
    eventually("every byte to be released", || {
        server.handle.buffered_bytes() == 0 && server.handle.pool_bytes() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_heartbeat_does_not_give_up_on_a_server_that_holds_its_calls() {
    // Five gated calls of 250 KiB fill the connection's 1 MiB: the server
    // stops reading it, and the client's pings wait unread. The client's
    // heartbeat (100 ms: it gives up after 300 ms without a frame) must
    // still hear from the server, whose calls are running, not dead.
    let server = TestServer::start_with(|builder| {
        bounded(builder).heartbeat_interval(Some(Duration::from_millis(100)))
    })
    .await;
    let channel = courier::client::Channel::connect_with(
        server.addr(),
        courier::client::ChannelConfig {
            heartbeat_interval: Some(Duration::from_millis(100)),
            ..courier::client::ChannelConfig::default()
        },
    )
    .await
    .expect("connect");
    let heavy = EchoArgs {
        text: "heavy".to_owned(),
        data: Bytes::from(vec![b'd'; 250 * KIB]),
        ..EchoArgs::default()
    };
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (channel, heavy) = (channel.clone(), heavy.clone());
        calls.spawn(async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&GATED, &heavy, &options())
                .await
        });
    }
    eventually("the connection to fill up", || {
        server.handle.max_connection_bytes() >= PER_CONNECTION
    })
    .await;
    // Something that must not happen: wait past two of the client's
    // heartbeat deadlines.
    tokio::time::sleep(PAST_TWO_DEADLINES).await;
    server.observed.open_gate();
    while let Some(joined) = within("the calls", calls.join_next()).await {
        let reply = joined.expect("a caller").expect("answered");
        assert_eq!(reply.value, "heavy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_stops_its_calls_at_once_and_frees_their_slots() {
    let server = TestServer::start().await;
    for half_close in [false, true] {
        let started = server.observed.started();
        let stopped = server.observed.stopped();
        let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
        let mut calls = BytesMut::new();
        for id in 1..=100 {
            calls.extend_from_slice(&request(id, "slow", &args("")));
        }
        stream.write_all(&calls).await.expect("write");
        eventually("100 calls in flight", || server.handle.in_flight() == 100).await;
        if half_close {
            // A peer that only shuts its sending side is gone too: Courier
            // clients never half-close.
            stream.shutdown().await.expect("shutdown");
        } else {
            drop(stream);
        }
        eventually("the calls to be stopped", || server.handle.in_flight() == 0).await;
        assert_eq!(server.observed.started() - started, 100);
        eventually("every handler to be dropped", || {
            server.observed.stopped() - stopped == 100
        })
        .await;
        eventually("the connection to close", || {
            server.handle.connection_count() == 0
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_calls_of_a_closed_connection_run_until_the_orphan_timeout() {
    let server =
        TestServer::start_with(|builder| builder.orphaned_oneway_timeout(Duration::from_secs(3)))
            .await;
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    let mut frames = BytesMut::new();
    frames.extend_from_slice(&request(1, "slow", &args("")));
    frames.extend_from_slice(&oneway(2, "slow_notify", &args("")));
    frames.extend_from_slice(&oneway(3, "notify", &args("sent, then the client left")));
    stream.write_all(&frames).await.expect("write");
    eventually("both slow calls to start", || {
        server.observed.started() == 2
    })
    .await;
    drop(stream);
    // The connection closes and the unary call stops at once; the one-way
    // call runs on for a while (its connection still counts against the
    // connection limit)...
    eventually("the unary call to stop, the one-way call running", || {
        server.observed.stopped() == 1 && server.handle.in_flight() == 1
    })
    .await;
    assert_eq!(server.observed.notes(), ["sent, then the client left"]);
    assert_eq!(server.handle.connection_count(), 1);
    // ... and is stopped at the orphan timeout.
    eventually("the one-way call to be stopped", || {
        server.handle.in_flight() == 0
    })
    .await;
    assert_eq!(server.observed.stopped(), 2);
    eventually("the connection to stop counting", || {
        server.handle.connection_count() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_connections_with_one_way_calls_running_count_against_the_connection_limit() {
    // Otherwise a peer could open, send a one-way call to a slow handler,
    // close, and do it again, for ever more closed connections, each
    // holding its calls' request bytes and its reserved share of memory
    // outside the pool and outside the connection limit.
    let server = TestServer::start_with(|builder| {
        builder
            .max_connections(2)
            .orphaned_oneway_timeout(Duration::from_secs(600))
    })
    .await;
    let mut parked = RawClient::connect(server.addr()).await;
    parked
        .send(&oneway(1, "slow_notify", &args("parked")))
        .await;
    eventually("the one-way call to start", || {
        server.observed.started() == 1
    })
    .await;
    // The peer leaves (half-closes: the server closes its side, and the
    // peer sees it).
    parked.shutdown().await;
    assert!(
        parked.next_frame().await.is_none(),
        "closed without an answer"
    );
    assert_eq!(server.handle.in_flight(), 1, "the one-way call runs on");

    // One connection is left under the limit of 2, not two.
    let good = server.channel().await;
    assert_serves(&good, "the second connection").await;
    let mut refused = RawClient::connect(server.addr()).await;
    let frame = refused.next_frame().await.expect("a refusal");
    assert_eq!(
        (frame.header.request_id, frame.header.status),
        (0, StatusCode::Overloaded.as_u8())
    );
    let message = String::from_utf8_lossy(&frame.body).into_owned();
    assert!(message.contains("too many connections"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_17th_client_is_served_while_16_connections_hold_1024_long_calls_each() {
    const HOGS: usize = 16;
    const CALLS: u64 = 1024;
    // The default server limit (16384), and no per-connection limit in
    // the way: only fair admission keeps the hogs from taking it all.
    let server = TestServer::start_with(|builder| builder.max_in_flight_per_connection(4096)).await;
    let mut hogs = Vec::new();
    for _ in 0..HOGS {
        let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
        let mut calls = BytesMut::new();
        for id in 1..=CALLS {
            calls.extend_from_slice(&request(id, "slow", &args("")));
        }
        stream.write_all(&calls).await.expect("write");
        hogs.push(stream);
    }
    eventually("the hogs to fill the server", || {
        server.handle.in_flight() == HOGS * CALLS as usize
    })
    .await;
    // A hog's next call is over its fair share: status 7.
    let mut hog = RawClient::connect(server.addr()).await;
    let mut calls = BytesMut::new();
    for id in 1..=CALLS {
        calls.extend_from_slice(&request(id, "slow", &args("")));
    }
    hog.send(&calls).await;
    eventually("a 17th hog to take its share", || {
        server.handle.in_flight() >= HOGS * CALLS as usize + 16384 / 17
    })
    .await;
    let frame = hog.next_frame().await.expect("an answer");
    assert_eq!(frame.header.status, StatusCode::Overloaded.as_u8());
    let message = String::from_utf8_lossy(&frame.body).into_owned();
    assert!(message.contains("fair share"), "{message}");

    // A new client is still served: its share is 16384 / 18 calls.
    let client = server.channel().await;
    assert_serves(&client, "served while the hogs hold their calls").await;

    // The hogs disconnect: their calls are stopped and the capacity is
    // back, for a burst larger than any share.
    drop(hogs);
    drop(hog);
    eventually("the hogs' calls to be stopped", || {
        server.handle.in_flight() == 0
    })
    .await;
    let mut burst = TcpStream::connect(server.addr()).await.expect("connect");
    let mut calls = BytesMut::new();
    for id in 1..=4000 {
        calls.extend_from_slice(&request(id, "slow", &args("")));
    }
    burst.write_all(&calls).await.expect("write");
    eventually("a burst of 4000 calls to be admitted", || {
        server.handle.in_flight() == 4000
    })
    .await;
    drop(burst);
    eventually("the burst to be stopped", || server.handle.in_flight() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_peers_that_do_not_read() {
    // Default drain and write-stall timeouts (30 s each): a shutdown that
    // waited for this peer would outlast the test's patience.
    let server = TestServer::start().await;
    let peer = NonReader::start(&server, 1, |_| {
        let mut frames = BytesMut::new();
        for id in 1..=64 {
            frames.extend_from_slice(&big_answer(id, MIB));
        }
        frames
    })
    .await;
    // The reader stops handling requests once 1 MiB of answers is
    // unwritten: then the writer is stuck behind a full socket.
    eventually("answers to pile up", || {
        server.handle.buffered_bytes() > MIB
    })
    .await;
    within("the shutdown", server.handle.shutdown()).await;
    drop(peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_as_soon_as_nothing_is_left() {
    // A 30 s drain timeout; the last call ends right after the shutdown
    // starts, so the shutdown must not wait for the timeout.
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let call = {
        let channel = channel.clone();
        tokio::spawn(async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&GATED, &args("last"), &options())
                .await
        })
    };
    let observed = std::sync::Arc::clone(&server.observed);
    eventually("the call to start", || observed.started() == 1).await;
    let shutdown = tokio::spawn(server.handle.shutdown());
    observed.open_gate();
    assert_eq!(
        within("the call", call)
            .await
            .expect("task")
            .expect("answered")
            .value,
        "last"
    );
    within("the shutdown", shutdown)
        .await
        .expect("shutdown task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_larger_than_the_connections_limit_goes_out_when_nothing_else_is_queued() {
    // The connection's limit is 1 MiB + 64 KiB (raised to fit a largest
    // frame); a call in flight holds 700 KB of it with its request, so a
    // 900 KB answer is past the limit. Nothing else is queued: it goes out
    // (the pool has room), instead of being refused forever.
    let server = TestServer::start_with(|builder| {
        bounded(builder)
            .max_frame_size(MIB as u32)
            .max_buffered_bytes_per_connection(MIB)
    })
    .await;
    let mut raw = RawClient::connect(server.addr()).await;
    let heavy = EchoArgs {
        data: Bytes::from(vec![b'd'; 700_000]),
        ..EchoArgs::default()
    };
    raw.send(&request(1, "slow", &heavy)).await;
    eventually("the heavy call to start", || server.observed.started() == 1).await;
    assert!(server.handle.buffered_bytes() >= 700_000);
    raw.send(&big_answer(2, 900_000)).await;
    let frame = raw.next_frame().await.expect("an answer");
    assert_eq!(frame.header.request_id, 2);
    assert_eq!(
        frame.header.status,
        0,
        "{:?}",
        String::from_utf8_lossy(&frame.body)
    );
    assert_eq!(frame.body.len(), 900_000 + 4);
}

/// A test server on a current-thread runtime of its own thread (stopped
/// when dropped), so that a server that never returns to its runtime
/// fails a test (a deadline of the client's, on another runtime) instead
/// of hanging it. `setup` runs on the server's runtime once it serves.
struct OwnThreadServer {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OwnThreadServer {
    fn start(
        configure: fn(ServerBuilder) -> ServerBuilder,
        setup: impl FnOnce(&TestServer) + Send + 'static,
    ) -> OwnThreadServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let server = TestServer::start_with(configure).await;
                setup(&server);
                addr_tx.send(server.addr()).expect("the test waits");
                let _ = stopped.await;
                drop(server);
            });
        });
        let addr = addr_rx.recv().expect("the server started");
        OwnThreadServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for OwnThreadServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // A test that failed may have left the server stuck: not waited for.
        if let Some(thread) = self.thread.take().filter(|_| !std::thread::panicking()) {
            thread.join().expect("the server thread");
        }
    }
}

/// Limits far past what a reader reads between two returns to its runtime,
/// so that they are not what makes it return.
fn roomy(builder: ServerBuilder) -> ServerBuilder {
    builder
        .max_buffered_bytes_per_connection(256 * MIB)
        .max_buffered_bytes(512 * MIB)
}

/// `count` pipelined `echo` requests, ids 1 to `count`.
fn echo_flood(count: u64) -> Bytes {
    let mut batch = BytesMut::new();
    for id in 1..=count {
        batch.extend_from_slice(&request(id, "echo", &args("flood")));
    }
    batch.freeze()
}

/// Twenty calls of a client of its own runtime, each within [`PATIENCE`],
/// while `flood_answers` (bytes of answers the flooding peer got) keeps
/// growing: the flood is served meanwhile, not paused for them.
fn calls_beside_a_flood(addr: std::net::SocketAddr, flood_answers: &AtomicU64) {
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    client.block_on(async {
        eventually("the flood to be served", || {
            flood_answers.load(Ordering::Relaxed) > 1_000_000
        })
        .await;
        let channel = within("connecting beside the flood", Channel::connect(addr))
            .await
            .expect("connect");
        for i in 0..20 {
            let before = flood_answers.load(Ordering::Relaxed);
            let text = format!("call {i}");
            let reply: EchoReply = within(
                "a call beside the flood",
                channel.unary::<_, _, NoDeclaredError>(&ECHO, &args(&text), &options()),
            )
            .await
            .expect("served");
            assert_eq!(reply.value, text);
            eventually("the flood to go on", || {
                flood_answers.load(Ordering::Relaxed) > before
            })
            .await;
        }
    });
}

/// A peer that floods requests whose handlers finish at once, polled inline
/// on the reader (no call task, nothing to wait for), does not starve
/// another connection on a current-thread runtime, where both readers
/// share the one thread: the other connection's calls are served while the
/// flood goes on. The flood's reader returns to the runtime when tokio's
/// cooperative budget runs out (each socket read and each frame handled
/// spend one unit of it), or when the socket has nothing to read; its
/// connection's limits, set far past that here, are not what stops it.
#[test]
fn a_flood_of_inline_calls_does_not_starve_another_connection() {
    use std::io::{Read, Write};

    let server = OwnThreadServer::start(roomy, |_| {});
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let stream = std::net::TcpStream::connect(server.addr).expect("connect");
    let mut reading = stream.try_clone().expect("clone");
    reading
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let flood_reader = {
        let (stop, answered) = (Arc::clone(&stop), Arc::clone(&answered));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * KIB];
            while !stop.load(Ordering::Relaxed) {
                match reading.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        answered.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
        })
    };
    // Encoded once and written in a loop (the ids repeat: each call ends
    // before the next frame is read), so the flood outpaces the reader.
    let flood_writer = {
        let stop = Arc::clone(&stop);
        let mut writing = stream;
        std::thread::spawn(move || {
            let batch = echo_flood(16_000);
            let mut batches = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if writing.write_all(&batch).is_err() {
                    break;
                }
                batches += 1;
            }
            batches
        })
    };
    calls_beside_a_flood(server.addr, &answered);
    assert!(
        !flood_writer.is_finished(),
        "the flood was still being taken when the other calls were done"
    );
    stop.store(true, Ordering::Relaxed);
    drop(server);
    let batches = flood_writer.join().expect("flood writer");
    flood_reader.join().expect("flood reader");
    assert!(
        batches > 2,
        "the flood wrote {batches} batches of 16,000 requests"
    );
}

/// A transport that always has requests ready and takes every answer at
/// once, and never spends tokio's budget itself (as a stream from outside
/// tokio may not): the flood of [`a_flood_of_inline_calls_does_not_starve_another_connection`]
/// at its worst. Counts the bytes of answers it took.
struct EndlessRequests {
    batch: Bytes,
    at: usize,
    answered: Arc<AtomicU64>,
}

impl tokio::io::AsyncRead for EndlessRequests {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        while buf.remaining() > 0 {
            let at = self.at;
            let take = buf.remaining().min(self.batch.len() - at);
            buf.put_slice(&self.batch[at..at + take]);
            self.at = (at + take) % self.batch.len();
        }
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for EndlessRequests {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.answered.fetch_add(buf.len() as u64, Ordering::Relaxed);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A flood whose transport never makes the reader wait (it always has
/// bytes, see [`EndlessRequests`]) does not starve a TCP connection either:
/// the reader spends one unit of tokio's budget per frame it handles, so it
/// returns to the runtime every 128 frames whatever its transport does.
#[test]
fn a_flood_that_never_makes_the_reader_wait_does_not_starve_another_connection() {
    let answered = Arc::new(AtomicU64::new(0));
    let stream = EndlessRequests {
        batch: echo_flood(1_000),
        at: 0,
        answered: Arc::clone(&answered),
    };
    let server = OwnThreadServer::start(roomy, move |server| {
        server
            .handle
            .serve_stream(stream, "127.0.0.1:1".parse().expect("address"));
    });
    calls_beside_a_flood(server.addr, &answered);
}
