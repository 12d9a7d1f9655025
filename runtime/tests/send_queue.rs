//! The client's send queue against servers that stop reading: callers wait
//! for room (bounded in frames and bytes per connection) within their
//! deadline and then fail with `SendQueueFull`; a cancelled call's frame
//! leaves the queue unless part of it is written; one-way calls wait for
//! room too; the heartbeat still finds a stalled server; and a server that
//! reads again gets every call. The bounds are checked against the
//! connection's own count of what it holds unwritten (`Channel::unsent`).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use courier::client::{
    CallOptions, Channel, ChannelConfig, DEFAULT_MAX_QUEUED_BYTES, DEFAULT_MAX_QUEUED_CALLS,
};
use courier::{NoDeclaredError, RpcError, StatusCode, TransportError};
use courier_test_support::fault_proxy::{Direction, Fault, FaultProxy};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The bytes of a ping or cancel frame (a header, no body).
const CONTROL_FRAME: usize = 18;

/// A "server" that accepts connections, never reads and never writes.
async fn never_reads() -> (SocketAddr, Arc<Mutex<Vec<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            keep.lock().expect("not poisoned").push(stream);
        }
    });
    (addr, held)
}

fn config(max_queued_calls: usize, max_queued_bytes: usize) -> ChannelConfig {
    ChannelConfig {
        max_queued_calls,
        max_queued_bytes,
        heartbeat_interval: None,
        ..ChannelConfig::default()
    }
}

/// Echo args carrying `size` bytes.
fn carrying(size: usize) -> EchoArgs {
    EchoArgs {
        data: Bytes::from(vec![b'x'; size]),
        ..args("")
    }
}

async fn echo(
    channel: &Channel,
    args: &EchoArgs,
    options: &CallOptions,
) -> Result<EchoReply, RpcError> {
    channel
        .unary::<_, _, NoDeclaredError>(&ECHO, args, options)
        .await
}

/// The most frames and bytes `channel` held unwritten, sampled every
/// millisecond until `stop`.
fn watch_unsent(
    channel: &Channel,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    let channel = channel.clone();
    let stop = Arc::clone(stop);
    tokio::spawn(async move {
        let (mut frames, mut bytes) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            let (f, b) = channel.unsent();
            frames = frames.max(f);
            bytes = bytes.max(b);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        (frames, bytes)
    })
}

/// How `callers` callers each calling for `run` ended.
#[derive(Debug, Default)]
struct Tally {
    calls: AtomicUsize,
    queue_full: AtomicUsize,
    timed_out: AtomicUsize,
    /// The first `SendQueueFull` error, as the caller saw it.
    first_queue_full: Mutex<Option<TransportError>>,
    /// Anything else.
    other: Mutex<Vec<String>>,
}

/// `callers` callers call until `calls` calls have ended (however long
/// that takes on a loaded machine, within the test's patience).
async fn hammer(
    channel: &Channel,
    callers: usize,
    calls: usize,
    args: EchoArgs,
    timeout: Duration,
) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let args = Arc::new(args);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (channel, tally, args) = (channel.clone(), Arc::clone(&tally), Arc::clone(&args));
        tasks.spawn(async move {
            while tally.calls.load(Ordering::Relaxed) < calls {
                let result = echo(&channel, &args, &with_timeout(timeout)).await;
                tally.calls.fetch_add(1, Ordering::Relaxed);
                match result {
                    Err(RpcError::Transport(error @ TransportError::SendQueueFull { .. })) => {
                        tally.queue_full.fetch_add(1, Ordering::Relaxed);
                        tally
                            .first_queue_full
                            .lock()
                            .expect("not poisoned")
                            .get_or_insert(error);
                    }
                    Err(RpcError::Status(status))
                        if status.code() == StatusCode::DeadlineExceeded =>
                    {
                        tally.timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                    other => tally
                        .other
                        .lock()
                        .expect("not poisoned")
                        .push(format!("{other:?}")),
                }
            }
        });
    }
    within("the callers", async {
        while let Some(joined) = tasks.join_next().await {
            joined.expect("a caller");
        }
    })
    .await;
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_wait_for_room_then_fail_clearly_and_the_queue_stays_bounded() {
    const CALLS: usize = 16;
    const BYTES: usize = 256 * 1024;
    const FRAME: usize = 32 * 1024;
    let (addr, _held) = never_reads().await;
    let channel = Channel::connect_with(addr, config(CALLS, BYTES))
        .await
        .expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let peak = watch_unsent(&channel, &stop);
    // Twenty times what the queue holds goes through it.
    let tally = hammer(
        &channel,
        64,
        20 * BYTES / FRAME + 1,
        carrying(FRAME),
        Duration::from_millis(100),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let (peak_frames, peak_bytes) = peak.await.expect("the watcher");

    assert!(
        tally.other.lock().expect("not poisoned").is_empty(),
        "{:?}",
        tally.other
    );
    let calls = tally.calls.load(Ordering::Relaxed);
    assert!(tally.queue_full.load(Ordering::Relaxed) > 0, "{tally:?}");
    match tally.first_queue_full.lock().expect("not poisoned").take() {
        Some(
            error @ TransportError::SendQueueFull {
                waited,
                queued_calls,
                ..
            },
        ) => {
            // It waited (how long is the scheduler's business: the call's
            // timeout bounds it, from before it began to wait).
            assert!(
                waited > Duration::ZERO && waited <= Duration::from_millis(100) + PATIENCE,
                "{error}"
            );
            assert!(queued_calls >= 1, "{error}");
            let message = error.to_string();
            assert!(
                message.starts_with("the deadline passed after ")
                    && message.contains(&format!("waiting for room in the send queue to {addr} ("))
                    && message.ends_with("nothing was sent"),
                "{message}"
            );
            // A deadline that passed, as the caller's status code.
            assert_eq!(
                RpcError::<NoDeclaredError>::from(error).code(),
                StatusCode::DeadlineExceeded
            );
        }
        other => panic!("expected SendQueueFull, got {other:?}"),
    }
    // The calls' frames: {calls} × 32 KiB went through the queue, yet it
    // never held more than its bounds (plus its own cancel frames, at most
    // one per bound, and the first ping).
    assert!(calls * FRAME > 20 * BYTES, "{calls} calls");
    assert!(
        peak_bytes <= BYTES + (CALLS + 1) * CONTROL_FRAME,
        "{peak_bytes} bytes"
    );
    assert!(peak_frames <= 2 * CALLS + 1, "{peak_frames} frames");
    // The queue did fill: the bound, not luck, kept it small.
    assert!(peak_bytes >= BYTES - FRAME, "{peak_bytes} bytes");
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_calls_frame_leaves_the_queue_unless_part_of_it_is_written() {
    let (addr, _held) = never_reads().await;
    // Room for everything: this test is about what leaves the queue.
    let channel = Channel::connect_with(addr, config(64, 64 << 20))
        .await
        .expect("connect");
    // A 12 MiB request fills the sockets (4 MiB send buffer, a receive
    // window that a server that never reads never grows) and stays at the
    // front of the queue, partly written.
    let big = carrying(12 << 20);
    let stuck = tokio::spawn({
        let channel = channel.clone();
        async move { echo(&channel, &big, &options()).await }
    });
    eventually("the big frame to be queued, partly written", || {
        channel.unsent().1 > 8 << 20
    })
    .await;
    let (frames, bytes) = channel.unsent();
    assert_eq!(frames, 1, "the big request alone");

    // A call behind it times out: its frame, not begun, is dropped, and no
    // cancel is queued (the server never heard of it).
    let behind = echo(
        &channel,
        &carrying(1000),
        &with_timeout(Duration::from_millis(50)),
    )
    .await;
    assert_eq!(code(&behind), StatusCode::DeadlineExceeded, "{behind:?}");
    eventually("the timed-out frame to leave the queue", || {
        channel.unsent() == (frames, bytes)
    })
    .await;

    // The big call is given up: part of it is on the wire, so it stays (the
    // framing must hold) and a cancel frame is queued after it.
    stuck.abort();
    eventually("a cancel to follow the big frame", || {
        channel.unsent() == (frames + 1, bytes + CONTROL_FRAME)
    })
    .await;
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_calls_wait_for_room_and_an_unwritten_one_is_dropped() {
    let (addr, _held) = never_reads().await;
    let channel = Channel::connect_with(addr, config(2, 64 << 20))
        .await
        .expect("connect");
    let stuck = tokio::spawn({
        let channel = channel.clone();
        async move { echo(&channel, &carrying(12 << 20), &options()).await }
    });
    eventually("the big frame to be queued", || {
        channel.unsent().1 > 8 << 20
    })
    .await;
    let (frames, bytes) = channel.unsent();
    let notify = |timeout| {
        let channel = channel.clone();
        async move {
            channel
                .oneway(&NOTIFY, &carrying(1000), &with_timeout(timeout))
                .await
        }
    };

    // Room for one more frame: the one-way call is queued, is not written
    // within its timeout, and its frame is dropped unsent.
    let late = notify(Duration::from_millis(50)).await;
    match &late {
        Err(RpcError::Status(status)) => {
            assert_eq!(status.code(), StatusCode::DeadlineExceeded);
            assert_eq!(
                status.message(),
                "test.Echo/notify was not written within 50ms"
            );
        }
        other => panic!("expected status 6, got {other:?}"),
    }
    eventually("the one-way frame to leave the queue", || {
        channel.unsent() == (frames, bytes)
    })
    .await;

    // The queue full (two frames): a one-way call waits for room, and
    // fails clearly when none comes.
    let filler = tokio::spawn(notify(Duration::from_secs(60)));
    eventually("the second frame to be queued", || {
        channel.unsent().0 == frames + 1
    })
    .await;
    let started = Instant::now();
    match notify(Duration::from_millis(80)).await {
        Err(RpcError::Transport(TransportError::SendQueueFull {
            queued_calls,
            waited,
            ..
        })) => {
            assert_eq!(queued_calls, 2);
            assert!(waited > Duration::ZERO, "{waited:?}");
        }
        other => panic!("expected SendQueueFull, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(80));
    filler.abort();
    stuck.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_still_find_a_server_that_stopped_reading() {
    let (addr, held) = never_reads().await;
    let config = ChannelConfig {
        heartbeat_interval: Some(Duration::from_millis(100)),
        ..config(2, 64 << 20)
    };
    let channel = Channel::connect_with(addr, config).await.expect("connect");
    // No timeouts: only the heartbeat can end these calls. A big one is
    // stuck at the front of the queue, one small one fills the queue
    // behind it, and three wait for room.
    let mut calls = tokio::task::JoinSet::new();
    let call = |size| {
        let channel = channel.clone();
        async move { echo(&channel, &carrying(size), &options()).await }
    };
    calls.spawn(call(12 << 20));
    eventually("the big frame to be queued", || {
        channel.unsent().1 > 8 << 20
    })
    .await;
    for _ in 0..4 {
        calls.spawn(call(1000));
    }
    let mut ended = 0;
    while let Some(joined) = within("the heartbeat", calls.join_next()).await {
        match joined.expect("a caller") {
            Err(RpcError::Transport(TransportError::HeartbeatTimeout { .. })) => ended += 1,
            other => panic!("expected HeartbeatTimeout, got {other:?}"),
        }
    }
    assert_eq!(ended, 5);
    // The waiting callers went out on new connections.
    assert!(held.lock().expect("not poisoned").len() >= 2);
    assert_eq!(channel.pending_len(), 0);
    assert_eq!(channel.unsent(), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_reads_again_gets_every_call() {
    const CALLS: usize = 8;
    const BYTES: usize = 1 << 20;
    const FRAME: usize = 128 * 1024;
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(server.addr()).expect("proxy");
    let channel = Channel::connect_with(proxy.addr(), config(CALLS, BYTES))
        .await
        .expect("connect");
    proxy.set_direction(Direction::ToUpstream, Fault::Blackhole);

    let stop = Arc::new(AtomicBool::new(false));
    let peak = watch_unsent(&channel, &stop);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..200 {
        let channel = channel.clone();
        calls.spawn(async move {
            let args = EchoArgs {
                text: i.to_string(),
                ..carrying(FRAME)
            };
            (i, echo(&channel, &args, &options()).await)
        });
    }
    // 25 MiB of requests: the sockets fill, then the queue.
    eventually("the queue to fill", || channel.unsent().1 >= BYTES - FRAME).await;
    proxy.set(Fault::Pass);
    let mut answered = 0;
    while let Some(joined) = within("the calls", calls.join_next()).await {
        let (i, result) = joined.expect("a caller");
        assert_eq!(result.expect("answered").value, i.to_string());
        answered += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (peak_frames, peak_bytes) = peak.await.expect("the watcher");
    assert_eq!(answered, 200);
    assert!(peak_frames <= CALLS + 1, "{peak_frames} frames");
    assert!(peak_bytes <= BYTES + CONTROL_FRAME, "{peak_bytes} bytes");
    assert_eq!(channel.pending_len(), 0);
}

/// The scenario, in the client's own accounting (the resident-size
/// figure is in the book's limits chapter): 256 callers with 50 ms
/// timeouts against a server that accepts and never reads, default bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_while_256_callers_hammer_a_server_that_never_reads() {
    const FRAME: usize = 16 * 1024;
    let (addr, _held) = never_reads().await;
    let channel = Channel::connect_with(addr, ChannelConfig::default())
        .await
        .expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let peak = watch_unsent(&channel, &stop);
    // Twenty times what the queue holds goes through it.
    let tally = hammer(
        &channel,
        256,
        20 * DEFAULT_MAX_QUEUED_BYTES / FRAME,
        carrying(FRAME),
        Duration::from_millis(50),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let (peak_frames, peak_bytes) = peak.await.expect("the watcher");
    assert!(
        tally.other.lock().expect("not poisoned").is_empty(),
        "{:?}",
        tally.other
    );
    let calls = tally.calls.load(Ordering::Relaxed);
    // Without the bound the queue would have grown by every call's frame.
    assert!(
        calls * FRAME > 10 * DEFAULT_MAX_QUEUED_BYTES,
        "{calls} calls"
    );
    assert!(
        peak_bytes <= DEFAULT_MAX_QUEUED_BYTES + (DEFAULT_MAX_QUEUED_CALLS + 1) * CONTROL_FRAME,
        "{peak_bytes} bytes"
    );
    assert!(
        peak_frames <= 2 * DEFAULT_MAX_QUEUED_CALLS + 1,
        "{peak_frames} frames"
    );
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
}
