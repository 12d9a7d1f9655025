//! Large frames reuse their buffers: after a few calls, 64 KiB calls
//! allocate no new 64 KiB buffers on either side (the runtime's pool of
//! large buffers), only what the handler itself allocates.
//!
//! Freed to glibc instead, each such buffer trims a worker's heap and
//! comes back as fresh pages, faulted in one by one (see
//! `runtime/src/protocol/buffer_pool.rs`).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::*;
use courier::RpcError;
use tokio::task::JoinSet;

/// Allocations of 32 KiB or more, counted.
static LARGE_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

const LARGE: usize = 32 * 1024;

/// The system allocator, counting large allocations.
struct CountingLarge;

// SAFETY: every call goes to the system allocator unchanged; the count
// beside it is only read by the test.
unsafe impl GlobalAlloc for CountingLarge {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE {
            LARGE_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded as the caller made it.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE {
            LARGE_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded as the caller made it.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as the caller made it.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= LARGE {
            LARGE_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded as the caller made it.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingLarge = CountingLarge;

const PAYLOAD: usize = 64 * 1024;

/// `big` args that send and ask for 64 KiB.
fn big_args(data: &Bytes) -> EchoArgs {
    EchoArgs {
        text: data.len().to_string(),
        size: PAYLOAD as u64,
        data: data.clone(),
        ..EchoArgs::default()
    }
}

/// Makes `rounds` rounds of `in_flight` concurrent 64 KiB calls.
async fn calls(channel: &courier::client::Channel, data: &Bytes, rounds: usize, in_flight: usize) {
    for _ in 0..rounds {
        let mut calls = JoinSet::new();
        for _ in 0..in_flight {
            let channel = channel.clone();
            let args = big_args(data);
            calls.spawn(async move {
                let reply: Result<BytesReply, RpcError> =
                    channel.unary(&BIG, &args, &options()).await;
                reply.expect("big call").value.len()
            });
        }
        while let Some(joined) = within("a round of calls", calls.join_next()).await {
            assert_eq!(joined.expect("call task"), PAYLOAD);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_calls_reuse_their_frame_and_body_buffers() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let data = Bytes::from(vec![b'i'; PAYLOAD]);
    // Warm up: the pool fills with the buffers of the first calls.
    calls(&channel, &data, 4, 4).await;
    let before = LARGE_ALLOCATIONS.load(Ordering::Relaxed);
    let big_before = server.observed.big();
    calls(&channel, &data, 100, 4).await;
    let made = server.observed.big() - big_before;
    let allocated = LARGE_ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(made, 400);
    // Each call's handler allocates its 64 KiB reply itself (and the test
    // harness a little). Without the pool, each call also allocated four:
    // the request frame, the request body, the response frame and the
    // response body.
    assert!(
        allocated < made + made / 4,
        "{allocated} allocations of 32 KiB or more for {made} calls of 64 KiB"
    );
}
