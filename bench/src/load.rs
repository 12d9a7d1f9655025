//! The client side of one measured run: a closed loop keeping `concurrency`
//! calls in flight for a fixed time, with latencies in an hdrhistogram, and
//! the warm-up / `READY` / `GO` / `RESULT` sequence around it.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::alloc::AllocCounters;
use crate::child;

/// Highest latency the histograms record (longer calls are clamped).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// A new latency histogram: nanoseconds, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // Infallible for these bounds; the fallback keeps it panic-free anyway.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
        .or_else(|_| Histogram::new(3))
        .unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

/// Records one latency, clamped to the histogram's range.
pub fn record(hist: &mut Histogram<u64>, latency: Duration) {
    let ns = u64::try_from(latency.as_nanos())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_LATENCY_NS);
    let _ = hist.record(ns);
}

/// One system's client: makes one echo call. Each in-flight slot owns a
/// clone, so `call` may take `&mut self`.
pub trait Caller: Clone + Send + 'static {
    /// Sends `payload`, returns the length of the echoed reply.
    fn call(&mut self, payload: Bytes) -> impl Future<Output = Result<usize, String>> + Send;
}

/// What one phase (warm-up or measured window) produced.
#[derive(Debug)]
pub struct Phase {
    /// Latencies of the calls that ended inside the window.
    pub hist: Histogram<u64>,
    /// Calls that ended inside the window.
    pub in_window: u64,
    /// Every call of the phase, including those that ended after the
    /// window while the loop drained.
    pub total: u64,
}

impl Phase {
    /// An empty phase.
    pub fn new() -> Phase {
        Phase {
            hist: histogram(),
            in_window: 0,
            total: 0,
        }
    }

    /// Adds another slot's results.
    pub fn merge(&mut self, other: Phase) {
        let _ = self.hist.add(&other.hist);
        self.in_window += other.in_window;
        self.total += other.total;
    }
}

/// Runs `concurrency` slots, each calling in a loop until `duration` has
/// passed, then waits for the calls in flight. The first error stops it.
pub async fn closed_loop<C: Caller>(
    caller: &C,
    payload: &Bytes,
    concurrency: usize,
    duration: Duration,
) -> Result<Phase, String> {
    let end = Instant::now() + duration;
    let mut slots = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let mut caller = caller.clone();
        let payload = payload.clone();
        slots.spawn(async move {
            let mut phase = Phase::new();
            let mut start = Instant::now();
            while start < end {
                let len = caller.call(payload.clone()).await?;
                if len != payload.len() {
                    return Err(format!(
                        "echo returned {len} bytes for a {}-byte payload",
                        payload.len()
                    ));
                }
                let done = Instant::now();
                phase.total += 1;
                if done <= end {
                    phase.in_window += 1;
                    record(&mut phase.hist, done - start);
                }
                start = done;
            }
            Ok::<Phase, String>(phase)
        });
    }
    let mut all = Phase::new();
    while let Some(slot) = slots.join_next().await {
        all.merge(slot.map_err(|e| format!("load task failed: {e}"))??);
    }
    Ok(all)
}

/// The measured window as the client reports it (`RESULT <json>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientReport {
    /// Calls that ended inside the window.
    pub calls_in_window: u64,
    /// Every call of the window, including the drain after it.
    pub total_calls: u64,
    /// The window's length in seconds.
    pub window_s: f64,
    /// Median latency, nanoseconds.
    pub p50_ns: u64,
    /// 99th percentile latency, nanoseconds.
    pub p99_ns: u64,
    /// 99.9th percentile latency, nanoseconds.
    pub p999_ns: u64,
    /// Largest latency, nanoseconds.
    pub max_ns: u64,
    /// What the client allocated during the window (drain included).
    pub alloc: AllocCounters,
}

impl ClientReport {
    /// The report of a measured phase.
    pub fn new(phase: &Phase, window: Duration, alloc: AllocCounters) -> ClientReport {
        ClientReport {
            calls_in_window: phase.in_window,
            total_calls: phase.total,
            window_s: window.as_secs_f64(),
            p50_ns: phase.hist.value_at_quantile(0.50),
            p99_ns: phase.hist.value_at_quantile(0.99),
            p999_ns: phase.hist.value_at_quantile(0.999),
            max_ns: phase.hist.max(),
            alloc,
        }
    }
}

/// How long the client runs each phase.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The warm-up before `READY`.
    pub warmup: Duration,
    /// The measured window after `GO`.
    pub window: Duration,
}

/// Waits for the orchestrator's `GO` (anything else, or the end of stdin,
/// aborts the run).
pub fn wait_for_go() -> Result<(), String> {
    match child::next_command() {
        Some(line) if line == "GO" => Ok(()),
        Some(other) => Err(format!("expected GO, got `{other}`")),
        None => Err("stdin closed before GO".to_owned()),
    }
}

/// Warm-up, `READY`, `GO`, the measured window, `RESULT`, for a system
/// whose client is a [`Caller`].
pub async fn session<C: Caller>(
    caller: C,
    payload: Bytes,
    concurrency: usize,
    timing: Timing,
) -> Result<(), String> {
    // One checked call first: a wrong echo fails fast and clearly.
    let mut first = caller.clone();
    let len = first.call(payload.clone()).await?;
    if len != payload.len() {
        return Err(format!("echo returned {len} bytes for {}", payload.len()));
    }
    closed_loop(&caller, &payload, concurrency, timing.warmup).await?;
    child::say("READY");
    tokio::task::spawn_blocking(wait_for_go)
        .await
        .map_err(|e| e.to_string())??;
    let before = AllocCounters::now();
    let phase = closed_loop(&caller, &payload, concurrency, timing.window).await?;
    let alloc = AllocCounters::now().since(before);
    report(&ClientReport::new(&phase, timing.window, alloc))
}

/// Prints `RESULT <json>`.
pub fn report(report: &ClientReport) -> Result<(), String> {
    let json = serde_json::to_string(report).map_err(|e| e.to_string())?;
    child::say(&format!("RESULT {json}"));
    Ok(())
}
