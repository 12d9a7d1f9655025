//! The server's own count of the bytes its connections hold, checked
//! against what the process really allocates: this test binary counts
//! every live heap byte (a global allocator that forwards to the system's
//! and keeps a count). The server bounds memory by its count, so the count
//! must cover what a peer makes it hold: the calls' request frames, the
//! copies of their metadata, their tasks, and no buffer a small call pins
//! after a large frame.
//!
//! The tests run one at a time (the count is the whole process's), each
//! on its own runtime, shut down before the next one starts. A `tracing`
//! subscriber keeps the server's warnings: a connection that still has
//! bytes charged when it goes says so, which is how a charge without its
//! release (or one released twice) shows once the connection is gone.

mod captured_log;
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use captured_log::CapturedLog;
use common::*;
use courier::StatusCode;
use courier::protocol::{MessageKind, empty_frame};
use courier::server::{CALL_SLOT_BYTES, DEFAULT_RESERVED_BYTES_PER_CONNECTION};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Heap bytes live now, as the program asked for them.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting.
struct Counting;

// SAFETY: every call goes to the system allocator unchanged; the count
// beside it is only read by the tests.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as the caller made it.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as the caller made it.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as the caller made it.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as the caller made it.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The warning a connection that goes with bytes still charged logs.
const LEAK: &str = "still had bytes charged";

/// Runs `test` on a runtime of its own, alone (the count is the
/// process's: the runtime, with every task it ran, is gone before the next
/// test starts), then checks that no connection went with bytes charged.
fn serially<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    static SERIAL: Mutex<()> = Mutex::new(());
    static LOG: OnceLock<CapturedLog> = OnceLock::new();
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let log = LOG.get_or_init(|| {
        let log = CapturedLog::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(log.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        log
    });
    let before = log.text().len();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(test());
    let logged = log.text().split_off(before);
    assert!(
        !logged.contains(LEAK),
        "a connection went with bytes charged:\n{logged}"
    );
}

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// A request for `method` with `args` and `metadata`.
fn request(id: u64, method: &'static str, args: &EchoArgs, metadata: &[(String, String)]) -> Bytes {
    let mut request = RawRequest::echo(id, args);
    request.method = method;
    request.metadata = metadata.iter().cloned().collect();
    request.encode()
}

/// Just under the default metadata limits (64 entries, 8 KiB of keys and
/// values): 60 entries of 131 bytes. Parsed, each entry is two strings
/// of its own.
fn large_metadata() -> Vec<(String, String)> {
    (0..60)
        .map(|i| (format!("k{i:02}"), "v".repeat(128)))
        .collect()
}

/// Waits until the server holds no byte: nothing charged to any
/// connection, nothing borrowed from the pool.
async fn all_released(server: &TestServer) {
    eventually("every byte to be released", || {
        server.handle.buffered_bytes() == 0 && server.handle.pool_bytes() == 0
    })
    .await;
}

/// The table of calls of a connection that never had more than 16 calls
/// in flight (its first segment): charged to it until it closes.
const FIRST_TABLE: usize = 16 * CALL_SLOT_BYTES;

/// Waits until the one open connection, whose reserved share is
/// `reserved`, holds nothing but its table of calls.
async fn only_the_table_left(server: &TestServer, reserved: usize) {
    eventually("every byte but the table's to be released", || {
        server.handle.buffered_bytes() == FIRST_TABLE
            && server.handle.pool_bytes() == FIRST_TABLE.saturating_sub(reserved)
    })
    .await;
}

#[test]
fn the_count_covers_what_calls_with_large_metadata_hold() {
    serially(|| async {
        const CALLS: u64 = 1000;
        let server = TestServer::start().await;
        let metadata = large_metadata();
        let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
        let before = live();
        {
            let mut calls = BytesMut::new();
            for id in 1..=CALLS {
                calls.extend_from_slice(&request(id, "slow", &args(""), &metadata));
            }
            stream.write_all(&calls).await.expect("write");
        }
        eventually("every call to start", || {
            server.observed.started() == CALLS as usize
        })
        .await;
        let held = live().saturating_sub(before);
        let counted = server.handle.buffered_bytes();
        // Had the metadata's copies not been counted, the server would
        // count some 8 KiB a call (the frames) for the 21 KiB they hold.
        // What the allocator's own headers add, and what tokio and the
        // server allocate once (its timers, its connection's state) is
        // outside both counts: some slack.
        assert!(
            held <= counted + counted / 4 + 2 * MIB,
            "the calls hold {held} bytes; the server counts {counted}"
        );
        drop(stream);
        eventually("the calls to be stopped", || server.handle.in_flight() == 0).await;
        all_released(&server).await;
    });
}

#[test]
fn the_count_covers_the_tasks_of_small_calls() {
    serially(|| async {
        const CALLS: u64 = 1000;
        let server = TestServer::start().await;
        // The connection and what its first call allocates once are not
        // the calls' to count.
        let mut raw = RawClient::connect(server.addr()).await;
        raw.send(&request(1, "echo", &args("warm up"), &[])).await;
        let answer = raw.next_frame().await.expect("the answer");
        assert_eq!(answer.header.status, 0);
        only_the_table_left(&server, DEFAULT_RESERVED_BYTES_PER_CONNECTION).await;
        let before = live();
        {
            let mut calls = BytesMut::new();
            for id in 2..CALLS + 2 {
                calls.extend_from_slice(&request(id, "slow", &args(""), &[]));
            }
            raw.send(&calls).await;
        }
        eventually("every call to start", || {
            server.observed.started() == CALLS as usize
        })
        .await;
        let held = live().saturating_sub(before);
        let counted = server.handle.buffered_bytes();
        // A small call's frame is some 40 bytes; what it holds is mostly
        // its task (a few KiB): had the tasks not been counted, the server
        // would count 40 KiB for more than 2 MiB.
        assert!(
            held <= counted + counted / 4 + 256 * KIB,
            "{CALLS} small calls hold {held} bytes; the server counts {counted}"
        );
        drop(raw);
        eventually("the calls to be stopped", || server.handle.in_flight() == 0).await;
        all_released(&server).await;
    });
}

#[test]
fn a_small_call_after_a_large_frame_pins_only_itself() {
    serially(|| async {
        const ROUNDS: u64 = 8;
        const LARGE: usize = 4 * MIB;
        let server = TestServer::start().await;
        let mut raw = RawClient::connect(server.addr()).await;
        let large = EchoArgs {
            text: "large".to_owned(),
            data: Bytes::from(vec![b'd'; LARGE]),
            ..EchoArgs::default()
        };
        let before = live();
        for round in 0..ROUNDS {
            // A large request (answered at once with a short reply) and,
            // in the same write, a small call that stays: read from the
            // same buffer as the large frame.
            let mut frames = BytesMut::new();
            frames.extend_from_slice(&request(2 * round + 1, "echo", &large, &[]));
            frames.extend_from_slice(&request(2 * round + 2, "slow", &args("small"), &[]));
            raw.send(&frames).await;
            let answer = raw.next_frame().await.expect("the large call's answer");
            assert_eq!(answer.header.status, 0);
            eventually("the small call to start", || {
                server.observed.started() == round as usize + 1
            })
            .await;
        }
        eventually("the large calls to end", || {
            server.handle.in_flight() == ROUNDS as usize
        })
        .await;
        let held = live().saturating_sub(before);
        let counted = server.handle.buffered_bytes();
        // The small calls hold a few KiB each (their frames, their
        // tasks); had each pinned the buffer its large neighbour came in,
        // they would hold at least 8 x 4 MiB.
        assert!(
            held < LARGE && held <= counted + 2 * MIB,
            "{ROUNDS} small calls hold {held} bytes; the server counts {counted}"
        );
    });
}

#[test]
fn every_way_a_call_ends_releases_exactly_what_it_was_charged() {
    serially(|| async {
        // A small reserved share: the calls' bytes go through the pool
        // too. A short drain and a short life for orphaned one-way calls:
        // the calls below that never end are stopped soon.
        let server = TestServer::start_with(|builder| {
            builder
                .reserved_bytes_per_connection(KIB)
                .drain_timeout(Duration::from_millis(100))
                .orphaned_oneway_timeout(Duration::from_millis(100))
        })
        .await;
        let metadata = large_metadata();
        let mut raw = RawClient::connect(server.addr()).await;
        let mut id = 0;
        let mut next_id = || {
            id += 1;
            id
        };
        // Answered: a reply, a declared error, a panic, a passed deadline,
        // undecodable args, an unknown method.
        let undecodable = {
            let mut request = RawRequest::echo(0, &args(""));
            request.payload = vec![0xff; 16];
            request.metadata = metadata.iter().cloned().collect();
            request
        };
        let answered: [(&'static str, EchoArgs, u32, StatusCode); 4] = [
            ("echo", args("hello"), 0, StatusCode::Ok),
            ("fail_declared", args("key"), 0, StatusCode::DeclaredError),
            ("panic", args("panic"), 0, StatusCode::Internal),
            ("slow", args(""), 50, StatusCode::DeadlineExceeded),
        ];
        for (method, call_args, timeout_ms, status) in answered {
            let mut call = RawRequest::echo(next_id(), &call_args);
            call.method = method;
            call.timeout_ms = timeout_ms;
            call.metadata = metadata.iter().cloned().collect();
            raw.send(&call.encode()).await;
            let answer = raw.next_frame().await.expect("an answer");
            assert_eq!(answer.header.status, status.as_u8(), "{method}");
            only_the_table_left(&server, KIB).await;
        }
        let mut bad = undecodable;
        bad.request_id = next_id();
        raw.send(&bad.encode()).await;
        let answer = raw.next_frame().await.expect("an answer");
        assert_eq!(answer.header.status, StatusCode::BadRequest.as_u8());
        only_the_table_left(&server, KIB).await;
        raw.send(&request(next_id(), "no_such_method", &args(""), &metadata))
            .await;
        let answer = raw.next_frame().await.expect("an answer");
        assert_eq!(answer.header.status, StatusCode::UnknownMethod.as_u8());
        only_the_table_left(&server, KIB).await;
        // One-way: never answered.
        let mut notify = RawRequest::echo(next_id(), &args("note"));
        notify.method = "notify";
        notify.kind = MessageKind::OnewayRequest;
        notify.metadata = metadata.iter().cloned().collect();
        raw.send(&notify.encode()).await;
        eventually("the note", || server.observed.notes().len() == 1).await;
        eventually("the one-way call to end", || server.handle.in_flight() == 0).await;
        only_the_table_left(&server, KIB).await;
        // Cancelled (its task aborted).
        let slow = next_id();
        raw.send(&request(slow, "slow", &args(""), &metadata)).await;
        eventually("the slow call to start", || server.observed.started() == 2).await;
        raw.send(&empty_frame(MessageKind::Cancel, 1, slow)).await;
        eventually("the cancelled call to end", || {
            server.handle.in_flight() == 0
        })
        .await;
        only_the_table_left(&server, KIB).await;
        // The connection dropped with calls in flight.
        for method in ["slow", "slow_notify"] {
            let mut call = RawRequest::echo(next_id(), &args(""));
            call.method = method;
            if method == "slow_notify" {
                call.kind = MessageKind::OnewayRequest;
            }
            call.metadata = metadata.iter().cloned().collect();
            raw.send(&call.encode()).await;
        }
        eventually("both calls to start", || server.observed.started() == 4).await;
        drop(raw);
        eventually("the dropped connection's calls to be stopped", || {
            server.handle.in_flight() == 0 && server.handle.connection_count() == 0
        })
        .await;
        all_released(&server).await;
        // The server shut down with calls in flight (answered status 9 or
        // 6 at the drain timeout).
        let mut raw = RawClient::connect(server.addr()).await;
        raw.send(&request(1, "slow", &args(""), &metadata)).await;
        eventually("the last call to start", || server.observed.started() == 5).await;
        let TestServer { handle, observed } = server;
        handle.shutdown().await;
        assert_eq!(observed.stopped(), 5, "every slow call was stopped");
    });
}
