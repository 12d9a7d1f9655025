//! Many calls at once: random timeouts and drops, mass timeouts, a flood of
//! request + cancel pairs, and a graceful shutdown under load. Afterwards
//! nothing is left pending on either side. Every loop is bounded in count
//! and time.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use common::*;
use courier::client::{Channel, ChannelConfig};
use courier::protocol::{MessageKind, empty_frame};
use courier::{NoDeclaredError, RpcError, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How each of the random calls ended.
#[derive(Default)]
struct Tally {
    replied: AtomicUsize,
    timed_out: AtomicUsize,
    dropped: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_with_random_timeouts_and_drops_leave_nothing_behind() {
    const CALLS: usize = 10_000;
    let server =
        TestServer::start_with(|builder| builder.max_in_flight_per_connection(CALLS)).await;
    let config = ChannelConfig {
        connections: 2,
        ..ChannelConfig::default()
    };
    let channel = Channel::connect_with(server.addr(), config)
        .await
        .expect("connect");
    let tally = Arc::new(Tally::default());
    let limit = Arc::new(Semaphore::new(500));
    let mut rng = StdRng::seed_from_u64(0xC0_FFEE);
    let mut calls = JoinSet::new();
    for i in 0..CALLS {
        let delay_ms = rng.random_range(0..20);
        let timeout = Duration::from_millis(rng.random_range(1..30));
        let drop_after = rng
            .random_bool(0.3)
            .then(|| Duration::from_millis(rng.random_range(0..10)));
        let (channel, tally) = (channel.clone(), Arc::clone(&tally));
        let permit = Arc::clone(&limit).acquire_owned().await.expect("open");
        calls.spawn(async move {
            let request = delayed(&i.to_string(), delay_ms);
            let options = with_timeout(timeout);
            let call = channel.unary::<_, EchoReply, NoDeclaredError>(&ECHO, &request, &options);
            let result = match drop_after {
                // Dropped mid-flight (if it has not finished by then).
                Some(after) => match tokio::time::timeout(after, call).await {
                    Ok(result) => result,
                    Err(_) => {
                        tally.dropped.fetch_add(1, Ordering::Relaxed);
                        drop(permit);
                        return;
                    }
                },
                None => call.await,
            };
            match result {
                Ok(reply) => {
                    assert_eq!(reply.value, i.to_string(), "a reply for another call");
                    tally.replied.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.code() == StatusCode::DeadlineExceeded => {
                    tally.timed_out.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => panic!("call {i} failed: {e}"),
            }
            drop(permit);
        });
    }
    within("every call to resolve", async {
        while let Some(joined) = calls.join_next().await {
            joined.expect("call task");
        }
    })
    .await;
    let ended = tally.replied.load(Ordering::Relaxed)
        + tally.timed_out.load(Ordering::Relaxed)
        + tally.dropped.load(Ordering::Relaxed);
    assert_eq!(ended, CALLS, "every call future resolved or was dropped");
    assert!(tally.replied.load(Ordering::Relaxed) > 0);
    assert!(tally.timed_out.load(Ordering::Relaxed) > 0);
    assert!(tally.dropped.load(Ordering::Relaxed) > 0);
    eventually("the pending maps to empty", || channel.pending_len() == 0).await;
    eventually("the server to be idle", || server.handle.in_flight() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_simultaneous_timeouts() {
    const CALLS: usize = 5_000;
    let server =
        TestServer::start_with(|builder| builder.max_in_flight_per_connection(CALLS)).await;
    let channel = server.channel().await;
    let mut calls = JoinSet::new();
    for _ in 0..CALLS {
        let channel = channel.clone();
        calls.spawn(async move {
            let result: Result<EchoReply, RpcError> = channel
                .unary(&SLOW, &args(""), &with_timeout(Duration::from_millis(200)))
                .await;
            result.map(|_| ()).map_err(|e| e.code())
        });
    }
    let mut timed_out = 0;
    while let Some(joined) = within("5000 timeouts", calls.join_next()).await {
        assert_eq!(
            joined.expect("call task"),
            Err(StatusCode::DeadlineExceeded)
        );
        timed_out += 1;
    }
    assert_eq!(timed_out, CALLS);
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
    eventually("the server to be idle", || server.handle.in_flight() == 0).await;
    let observed = &server.observed;
    assert_eq!(observed.started(), observed.stopped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_on_one_client() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut calls = JoinSet::new();
    for i in 0..1_000u64 {
        let channel = channel.clone();
        calls.spawn(async move {
            let result: Result<EchoReply, RpcError> = channel
                .unary(&ECHO, &delayed(&i.to_string(), i % 13), &options())
                .await;
            (i, result)
        });
    }
    let mut seen = 0;
    while let Some(joined) = within("1000 calls", calls.join_next()).await {
        let (i, result) = joined.expect("call task");
        assert_eq!(result.expect("echo").value, i.to_string());
        seen += 1;
    }
    assert_eq!(seen, 1_000);
    assert_eq!(channel.pending_len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_request_and_cancel_pairs_stays_bounded() {
    const PAIRS: u64 = 20_000;
    const LIMIT: usize = 64;
    let server =
        TestServer::start_with(|builder| builder.max_in_flight_per_connection(LIMIT)).await;
    let runtime = tokio::runtime::Handle::current();
    let baseline_tasks = runtime.metrics().num_alive_tasks();

    let stream = TcpStream::connect(server.addr()).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    // Drain whatever the server answers (status 7 beyond the limit).
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while matches!(reader.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let flood = tokio::spawn(async move {
        let mut batch = BytesMut::new();
        for id in 1..=PAIRS {
            let mut request = RawRequest::echo(id, &args(""));
            request.method = "slow";
            batch.extend_from_slice(&request.encode());
            batch.extend_from_slice(&empty_frame(MessageKind::Cancel, 0, id));
            if id % 200 == 0 {
                writer.write_all(&batch).await.expect("write");
                batch.clear();
            }
        }
        writer
    });
    let mut peak_in_flight = 0;
    let mut peak_tasks = 0;
    while !flood.is_finished() {
        peak_in_flight = peak_in_flight.max(server.handle.in_flight());
        peak_tasks = peak_tasks.max(runtime.metrics().num_alive_tasks());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let writer = within("the flood", flood).await.expect("flood task");
    assert!(
        peak_in_flight <= LIMIT,
        "{peak_in_flight} calls in flight, limit {LIMIT}"
    );
    // The test's own tasks, the connection's reader and writer, and at most
    // LIMIT handler tasks.
    assert!(
        peak_tasks <= baseline_tasks + LIMIT + 8,
        "{peak_tasks} tasks alive (baseline {baseline_tasks})"
    );
    eventually("every handler to end", || server.handle.in_flight() == 0).await;
    let observed = &server.observed;
    assert_eq!(observed.started(), observed.stopped());
    drop(writer);
    within("the drain", drain).await.expect("drain task");
    // The server still serves.
    let channel = server.channel().await;
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("alive"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_with_200_slow_calls_in_flight_loses_none() {
    const CALLS: usize = 200;
    let server = TestServer::start().await;
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(server.channel().await);
    }
    let mut calls = JoinSet::new();
    for i in 0..CALLS {
        let channel = channels[i % channels.len()].clone();
        calls.spawn(async move {
            let result: Result<EchoReply, RpcError> = channel
                .unary(&GATED, &args(&i.to_string()), &options())
                .await;
            (i, result)
        });
    }
    let observed = Arc::clone(&server.observed);
    eventually("200 calls to start", || observed.started() == CALLS).await;
    let shutdown = tokio::spawn(server.handle.shutdown());
    // Let the shutdown begin draining, then let the calls finish.
    tokio::task::yield_now().await;
    observed.open_gate();
    let mut finished = 0;
    while let Some(joined) = within("the calls in flight", calls.join_next()).await {
        let (i, result) = joined.expect("call task");
        assert_eq!(result.expect("finished normally").value, i.to_string());
        finished += 1;
    }
    assert_eq!(finished, CALLS, "none lost");
    within("the shutdown", shutdown)
        .await
        .expect("shutdown task");
    assert_eq!(observed.stopped(), 0, "no call was stopped");
}
