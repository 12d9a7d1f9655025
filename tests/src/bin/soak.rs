//! `soak`: mixed load on a balanced channel for a chosen time while faults
//! are injected, then a report; exits non-zero if a call was lost or
//! anything leaked.
//!
//! ```text
//! cargo run -p courier-tests --bin soak -- --duration 30s [--seed N]
//! ```
//!
//! Servers of the generated `fixtures.services.Store` (real sockets on
//! 127.0.0.1), each behind a fault proxy, registered in a memory registry;
//! one balanced channel over them. Load in every call mode (async,
//! blocking from threads, `PendingCall` futures, callbacks, one-way) with
//! mixed payload sizes, some short timeouts and some declared errors. A
//! fault schedule puts one instance at a time under delay, throttle,
//! blackhole, reset or cut, in turn.
//!
//! Each instance also serves the demo's `hello.Greeter`, whose server
//! stream `count(n)` a stream worker calls through a second balanced
//! channel: every item is checked (1, 2, ... in order, none missing or
//! repeated, `TooMany` after exactly 100 for n > 100, all n for a stream
//! that ends well).
//!
//! Every call is counted when it starts and when it ends (reply, declared
//! error, status, or transport error). A call is LOST if it never ends, or
//! ends later than its timeout plus [`LOST_MARGIN`] (a watchdog checks).
//! After the load: the channel's pending maps must be empty and, once the
//! channel is dropped, every server and proxy must be back to zero
//! connections.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier::balance::Strategy;
use courier::client::Stub;
use courier::client::{BalanceOptions, Channel, ChannelConfig};
use courier::registry::{MemoryRegistry, Registry, ServiceInstance};
use courier::server::{Server, ServerHandle};
use courier::{CallContext, RpcError, StatusCode, TransportError};
use courier_test_support::fault_proxy::{Fault, FaultProxy};
use courier_tests::fixtures::services::store::{
    DeleteError, GetError, PutError, Store, StoreClient, StoreServer,
};
use courier_tests::fixtures::services::{NotFound, ReadOnly};
use idl_examples::greeter::HelloGreeter;
use idl_examples::hello::greeter::{CountError, GreeterClient, GreeterServer};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A call that ends this long after its timeout counts as lost.
const LOST_MARGIN: Duration = Duration::from_secs(5);
/// How long the end-of-run checks wait for connections to close.
const SETTLE: Duration = Duration::from_secs(10);
/// Keys the load writes (so the stores stay bounded).
const KEYS: u32 = 32;
/// Payload sizes `put` picks from (weighted toward small).
const SIZES: [usize; 8] = [0, 16, 100, 1024, 4096, 16 * 1024, 64 * 1024, 256 * 1024];

const USAGE: &str = "usage: soak [--duration 30s] [--seed N] [--instances 3] \
[--workers 8] [--strategy round_robin] [--fault-period 2s]
  durations: 500ms, 30s, 10m, 1h (a bare number is seconds)";

/// The command line.
#[derive(Debug, Clone)]
struct Options {
    duration: Duration,
    seed: u64,
    instances: usize,
    workers: usize,
    strategy: Strategy,
    fault_period: Duration,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        duration: Duration::from_secs(30),
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        instances: 3,
        workers: 8,
        strategy: Strategy::RoundRobin,
        fault_period: Duration::from_secs(2),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |what: &str| {
            value
                .parse::<u64>()
                .map_err(|e| format!("{what} {value:?}: {e}"))
        };
        match flag.as_str() {
            "--duration" => options.duration = parse_duration(&value)?,
            "--fault-period" => options.fault_period = parse_duration(&value)?,
            "--seed" => options.seed = number("seed")?,
            "--instances" => {
                options.instances = usize::try_from(number("instances")?)
                    .map_err(|e| e.to_string())?
                    .clamp(2, 16);
            }
            "--workers" => {
                options.workers = usize::try_from(number("workers")?)
                    .map_err(|e| e.to_string())?
                    .clamp(1, 256);
            }
            "--strategy" => {
                options.strategy = value
                    .parse()
                    .map_err(|e| format!("strategy {value:?}: {e}"))?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if options.fault_period.is_zero() {
        return Err("--fault-period must be more than 0".to_owned());
    }
    Ok(options)
}

/// `500ms`, `30s`, `10m`, `1h`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("bad duration {text:?} (try 30s or 10m)"))?;
    let seconds = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("duration {text:?} is too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        _ => Err(format!("bad duration unit in {text:?} (ms, s, m or h)")),
    }
}

// ---------------------------------------------------------------- service

/// The store each server serves: bounded (the load uses [`KEYS`] keys);
/// `get("sleep/N")` sleeps N ms; keys under `ro/` are read-only.
#[derive(Default)]
struct SoakStore {
    values: Mutex<HashMap<String, Bytes>>,
    touched: AtomicU64,
}

impl SoakStore {
    fn values(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for SoakStore {
    async fn get(&self, _ctx: CallContext, key: String) -> Result<Bytes, RpcError<GetError>> {
        if let Some(ms) = key.strip_prefix("sleep/") {
            let ms = ms.parse::<u64>().unwrap_or(0).min(10_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return Ok(Bytes::new());
        }
        let found = self.values().get(&key).cloned();
        found.ok_or_else(|| NotFound { key }.into())
    }

    async fn put(
        &self,
        _ctx: CallContext,
        key: String,
        value: Bytes,
    ) -> Result<Option<Bytes>, RpcError<PutError>> {
        if key.starts_with("ro/") {
            return Err(ReadOnly {}.into());
        }
        Ok(self.values().insert(key, value))
    }

    async fn delete(&self, _ctx: CallContext, key: String) -> Result<(), RpcError<DeleteError>> {
        if key.starts_with("ro/") {
            return Err(ReadOnly {}.into());
        }
        match self.values().remove(&key) {
            Some(_) => Ok(()),
            None => Err(NotFound { key }.into()),
        }
    }

    async fn count(&self, _ctx: CallContext) -> Result<u64, RpcError> {
        Ok(self.values().len() as u64)
    }

    async fn keys(
        &self,
        _ctx: CallContext,
        prefix: String,
        limit: u32,
    ) -> Result<Vec<String>, RpcError> {
        let values = self.values();
        let mut keys: Vec<String> = values
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        keys.sort();
        keys.truncate(limit as usize);
        Ok(keys)
    }

    async fn touch(&self, _ctx: CallContext, _key: String) {
        self.touched.fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------- ledger

/// How a call was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    Async,
    Blocking,
    Future,
    Callback,
    Oneway,
    Stream,
}

const MODES: [Mode; 6] = [
    Mode::Async,
    Mode::Blocking,
    Mode::Future,
    Mode::Callback,
    Mode::Oneway,
    Mode::Stream,
];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Async => "async",
            Mode::Blocking => "blocking",
            Mode::Future => "future",
            Mode::Callback => "callback",
            Mode::Oneway => "oneway",
            Mode::Stream => "stream",
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Declared,
    Status(u8),
    Transport(&'static str),
}

impl Outcome {
    fn of<T, E>(result: &Result<T, RpcError<E>>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(RpcError::Declared(_)) => Outcome::Declared,
            Err(RpcError::Status(status)) => Outcome::Status(status.code().as_u8()),
            Err(RpcError::Transport(error)) => Outcome::Transport(transport_kind(error)),
        }
    }
}

fn transport_kind(error: &TransportError) -> &'static str {
    match error {
        TransportError::Connect { .. } => "connect",
        TransportError::ConnectionLost(_) => "connection lost",
        TransportError::HeartbeatTimeout { .. } => "heartbeat timeout",
        TransportError::Protocol(_) => "protocol violation",
        TransportError::Encode { .. } => "encode",
        TransportError::Decode { .. } => "decode",
        TransportError::NoInstance { .. } => "no instance",
        TransportError::CallPanicked(_) => "call panicked",
        TransportError::CallAborted => "call aborted",
        _ => "other transport error",
    }
}

/// A started call, until it ends.
struct InFlight {
    mode: Mode,
    what: &'static str,
    /// After this, the call is lost.
    lost_at: Instant,
    /// The watchdog already counted it lost.
    flagged: bool,
}

/// Every call of the run: started, ended (by outcome and mode), lost.
#[derive(Default)]
struct Ledger {
    next_id: AtomicU64,
    started: AtomicU64,
    ended: AtomicU64,
    lost: AtomicU64,
    in_flight: Mutex<HashMap<u64, InFlight>>,
    outcomes: Mutex<HashMap<Outcome, u64>>,
    by_mode: Mutex<HashMap<Mode, u64>>,
    /// What the lost calls were, for the report.
    lost_calls: Mutex<Vec<String>>,
}

/// A started call; hand it back with the outcome.
#[must_use]
struct Ticket(u64);

impl Ledger {
    fn start(&self, mode: Mode, what: &'static str, timeout: Duration) -> Ticket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        let call = InFlight {
            mode,
            what,
            lost_at: Instant::now() + timeout + LOST_MARGIN,
            flagged: false,
        };
        lock(&self.in_flight).insert(id, call);
        Ticket(id)
    }

    fn end<T, E>(&self, ticket: Ticket, result: &Result<T, RpcError<E>>) {
        let call = lock(&self.in_flight).remove(&ticket.0);
        self.ended.fetch_add(1, Ordering::Relaxed);
        *lock(&self.outcomes).entry(Outcome::of(result)).or_default() += 1;
        if let Some(call) = call {
            *lock(&self.by_mode).entry(call.mode).or_default() += 1;
        }
    }

    /// Counts calls past their limit as lost (once each).
    fn watch(&self, now: Instant) {
        let mut in_flight = lock(&self.in_flight);
        for call in in_flight.values_mut() {
            if !call.flagged && now >= call.lost_at {
                call.flagged = true;
                self.lost.fetch_add(1, Ordering::Relaxed);
                lock(&self.lost_calls).push(format!("{} {}", call.mode.name(), call.what));
            }
        }
    }

    fn in_flight(&self) -> usize {
        lock(&self.in_flight).len()
    }

    /// The latest moment a call still in flight may end.
    fn last_limit(&self) -> Option<Instant> {
        lock(&self.in_flight).values().map(|c| c.lost_at).max()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------- load

/// The clients of the load: one per timeout the load uses.
#[derive(Clone)]
struct Clients {
    /// 2 s: every ordinary call.
    normal: StoreClient,
    /// 100 ms: calls meant to time out now and then.
    short: StoreClient,
}

const NORMAL_TIMEOUT: Duration = Duration::from_secs(2);
const SHORT_TIMEOUT: Duration = Duration::from_millis(100);

impl Clients {
    fn new(channel: &Channel) -> Clients {
        Clients {
            normal: StoreClient::new(channel.clone()).with_timeout(NORMAL_TIMEOUT),
            short: StoreClient::new(channel.clone()).with_timeout(SHORT_TIMEOUT),
        }
    }
}

fn key(rng: &mut SmallRng) -> String {
    format!("k{}", rng.random_range(0..KEYS))
}

fn payload(rng: &mut SmallRng) -> Bytes {
    // Small sizes most of the time.
    let index = rng
        .random_range(0..SIZES.len() * 2)
        .min(SIZES.len() * 2 - 1);
    let size = SIZES[index % SIZES.len()];
    let size = if index >= SIZES.len() {
        size.min(1024)
    } else {
        size
    };
    Bytes::from(vec![b'v'; size])
}

/// One async call of a random kind.
async fn async_call(clients: &Clients, ledger: &Ledger, rng: &mut SmallRng) {
    let c = &clients.normal;
    match rng.random_range(0..100) {
        0..30 => {
            let t = ledger.start(Mode::Async, "get", NORMAL_TIMEOUT);
            let r = c.get(key(rng)).await;
            ledger.end(t, &r);
        }
        30..55 => {
            let t = ledger.start(Mode::Async, "put", NORMAL_TIMEOUT);
            let r = c.put(key(rng), payload(rng)).await;
            ledger.end(t, &r);
        }
        55..62 => {
            // A declared error: read-only.
            let t = ledger.start(Mode::Async, "delete ro/", NORMAL_TIMEOUT);
            let r = c.delete("ro/x").await;
            ledger.end(t, &r);
        }
        62..67 => {
            // A declared error most of the time: not found.
            let t = ledger.start(Mode::Async, "get missing", NORMAL_TIMEOUT);
            let r = c.get("missing").await;
            ledger.end(t, &r);
        }
        67..72 => {
            // Times out (status 6): the handler sleeps past the deadline.
            let t = ledger.start(Mode::Async, "get sleep (short timeout)", SHORT_TIMEOUT);
            let r = clients.short.get("sleep/300").await;
            ledger.end(t, &r);
        }
        72..77 => {
            let t = ledger.start(Mode::Async, "get sleep", NORMAL_TIMEOUT);
            let r = c.get(format!("sleep/{}", rng.random_range(1..50))).await;
            ledger.end(t, &r);
        }
        77..85 => {
            let t = ledger.start(Mode::Async, "keys", NORMAL_TIMEOUT);
            let r = c.keys("k1", 8).await;
            ledger.end(t, &r);
        }
        85..90 => {
            let t = ledger.start(Mode::Async, "count", NORMAL_TIMEOUT);
            let r = c.count().await;
            ledger.end(t, &r);
        }
        _ => {
            let t = ledger.start(Mode::Oneway, "touch", NORMAL_TIMEOUT);
            let r = c.touch(key(rng)).await;
            ledger.end(t, &r);
        }
    }
}

/// The items of every server stream of the run.
#[derive(Default)]
struct ItemLedger {
    received: AtomicU64,
    /// Items missing, repeated or out of order, and streams that ended
    /// wrong (all of them failures of the run).
    violations: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl ItemLedger {
    fn violation(&self, what: String) {
        self.violations.fetch_add(1, Ordering::Relaxed);
        let mut samples = lock(&self.samples);
        if samples.len() < 20 {
            samples.push(what);
        }
    }
}

/// A stream worker: `count(n)` streams one after another, every item
/// checked.
async fn stream_worker(
    greeter: GreeterClient,
    ledger: Arc<Ledger>,
    items: Arc<ItemLedger>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    while !stop.load(Ordering::Relaxed) {
        let n: u32 = rng.random_range(0..=130);
        let t = ledger.start(Mode::Stream, "count", NORMAL_TIMEOUT);
        let mut stream = greeter.count(n, 0);
        let mut next = 1u32;
        let end: Result<(), RpcError<CountError>> = loop {
            match stream.next().await {
                Some(Ok(item)) => {
                    items.received.fetch_add(1, Ordering::Relaxed);
                    if item != next {
                        items.violation(format!("count({n}): item {item} where {next} was due"));
                    }
                    next = item.saturating_add(1);
                }
                Some(Err(error)) => break Err(error),
                None => break Ok(()),
            }
        };
        let got = next - 1;
        match &end {
            Ok(()) if n > 100 => {
                items.violation(format!("count({n}) ended well after {got} items"));
            }
            Ok(()) if got != n => {
                items.violation(format!("count({n}) ended well after {got} items"));
            }
            Err(RpcError::Declared(CountError::TooMany(_))) if n <= 100 || got != 100 => {
                items.violation(format!("count({n}) ended with TooMany after {got} items"));
            }
            _ => {}
        }
        ledger.end(t, &end);
    }
}

/// Async workers: one call after another.
async fn async_worker(clients: Clients, ledger: Arc<Ledger>, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    while !stop.load(Ordering::Relaxed) {
        async_call(&clients, &ledger, &mut rng).await;
    }
}

/// A plain thread making blocking calls (and waiting for futures).
fn blocking_worker(clients: &Clients, ledger: &Ledger, stop: &AtomicBool, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let c = &clients.normal;
    while !stop.load(Ordering::Relaxed) {
        match rng.random_range(0..10) {
            0..4 => {
                let t = ledger.start(Mode::Blocking, "get", NORMAL_TIMEOUT);
                let r = c.get_blocking(key(&mut rng));
                ledger.end(t, &r);
            }
            4..7 => {
                let t = ledger.start(Mode::Blocking, "put", NORMAL_TIMEOUT);
                let r = c.put_blocking(key(&mut rng), payload(&mut rng));
                ledger.end(t, &r);
            }
            7 => {
                let t = ledger.start(Mode::Blocking, "get sleep (short timeout)", SHORT_TIMEOUT);
                let r = clients.short.get_blocking("sleep/300");
                ledger.end(t, &r);
            }
            _ => {
                // The future mode, waited for from a plain thread.
                let t = ledger.start(Mode::Future, "put (wait)", NORMAL_TIMEOUT);
                let r = c.put_future(key(&mut rng), payload(&mut rng)).wait();
                ledger.end(t, &r);
            }
        }
    }
}

/// Starts batches of `PendingCall`s and awaits them.
async fn future_worker(clients: Clients, ledger: Arc<Ledger>, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut batch = Vec::with_capacity(4);
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..4 {
            let t = ledger.start(Mode::Future, "get", NORMAL_TIMEOUT);
            batch.push((t, clients.normal.get_future(key(&mut rng))));
        }
        for (t, pending) in batch.drain(..) {
            let r = pending.await;
            ledger.end(t, &r);
        }
    }
}

/// Keeps up to 8 callback calls going.
async fn callback_worker(clients: Clients, ledger: Arc<Ledger>, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let permits = Arc::new(tokio::sync::Semaphore::new(8));
    while !stop.load(Ordering::Relaxed) {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let ledger = Arc::clone(&ledger);
        if rng.random_bool(0.5) {
            let t = ledger.start(Mode::Callback, "count", NORMAL_TIMEOUT);
            clients.normal.count_with_callback(move |r| {
                ledger.end(t, &r);
                drop(permit);
            });
        } else {
            let t = ledger.start(Mode::Callback, "get", NORMAL_TIMEOUT);
            clients.normal.get_with_callback(key(&mut rng), move |r| {
                ledger.end(t, &r);
                drop(permit);
            });
        }
    }
    // Wait for the last callbacks.
    let _ = permits.acquire_many(8).await;
}

// ---------------------------------------------------------------- faults

/// The faults applied in turn, one instance at a time.
fn fault_number(step: u64, rng: &mut SmallRng) -> (&'static str, Fault) {
    match step % 5 {
        0 => (
            "delay",
            Fault::Delay(Duration::from_millis(rng.random_range(20..400))),
        ),
        1 => (
            "throttle",
            Fault::Throttle {
                bytes_per_sec: rng.random_range(16 * 1024..512 * 1024),
            },
        ),
        2 => ("blackhole", Fault::Blackhole),
        3 => ("reset", Fault::Reset),
        _ => ("cut", Fault::CutAfter(rng.random_range(1..64 * 1024))),
    }
}

/// Puts one instance at a time under the next fault, for a period each,
/// until `stop`; counts what it applied.
async fn fault_schedule(
    proxies: Arc<Vec<FaultProxy>>,
    period: Duration,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> HashMap<&'static str, u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut applied = HashMap::new();
    let mut step = 0u64;
    let mut previous: Option<usize> = None;
    while !stop.load(Ordering::Relaxed) {
        if let Some(previous) = previous {
            proxies[previous].set(Fault::Pass);
        }
        let target = rng.random_range(0..proxies.len());
        let (name, fault) = fault_number(step, &mut rng);
        proxies[target].set(fault);
        *applied.entry(name).or_default() += 1;
        previous = Some(target);
        step += 1;
        let until = tokio::time::Instant::now() + period;
        while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for proxy in proxies.iter() {
        proxy.set(Fault::Pass);
    }
    applied
}

// ---------------------------------------------------------------- run

/// `VmRSS` and `VmHWM` of this process in KiB (Linux), if known.
fn memory_kib() -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

/// Everything the run started.
struct Cluster {
    servers: Vec<ServerHandle>,
    stores: Vec<Arc<SoakStore>>,
    proxies: Arc<Vec<FaultProxy>>,
}

async fn start_cluster(instances: usize, registry: &MemoryRegistry) -> Result<Cluster, String> {
    let mut servers = Vec::new();
    let mut stores = Vec::new();
    let mut proxies = Vec::new();
    for _ in 0..instances {
        let store = Arc::new(SoakStore::default());
        let server = Server::builder()
            .add_service(StoreServer::from_arc(Arc::clone(&store)))
            .add_service(GreeterServer::new(HelloGreeter::default()))
            .bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot bind a server: {e}"))?;
        let proxy = FaultProxy::start(server.local_addr())
            .map_err(|e| format!("cannot start a fault proxy: {e}"))?;
        for service in [StoreClient::WIRE_NAME, GreeterClient::WIRE_NAME] {
            registry
                .register(ServiceInstance::new(service, proxy.addr()))
                .await
                .map_err(|e| format!("cannot register: {e}"))?;
        }
        servers.push(server);
        stores.push(store);
        proxies.push(proxy);
    }
    Ok(Cluster {
        servers,
        stores,
        proxies: Arc::new(proxies),
    })
}

/// Polls `condition` until it holds or `patience` passes.
async fn settles(patience: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(options: Options) -> Result<bool, String> {
    let registry = MemoryRegistry::new();
    let cluster = start_cluster(options.instances, &registry).await?;
    let balance = || BalanceOptions {
        channel: ChannelConfig {
            heartbeat_interval: Some(Duration::from_millis(500)),
            connect_timeout: Duration::from_secs(1),
            ..ChannelConfig::default()
        },
        eject_base: Duration::from_millis(500),
        eject_max: Duration::from_secs(5),
        ..BalanceOptions::with_strategy(options.strategy)
    };
    let channel = Channel::balanced(
        Arc::new(registry.clone()),
        StoreClient::WIRE_NAME,
        balance(),
    )
    .await
    .map_err(|e| format!("cannot start the balanced channel: {e}"))?;
    let greeter_channel = Channel::balanced(
        Arc::new(registry.clone()),
        GreeterClient::WIRE_NAME,
        balance(),
    )
    .await
    .map_err(|e| format!("cannot start the greeter's balanced channel: {e}"))?;
    let greeter = GreeterClient::new(greeter_channel.clone()).with_timeout(NORMAL_TIMEOUT);
    let items = Arc::new(ItemLedger::default());
    let clients = Clients::new(&channel);
    // Warm up: every instance connected and the allocator in steady use.
    for _ in 0..(options.instances * 4) {
        clients
            .normal
            .count()
            .await
            .map_err(|e| format!("the warm-up call failed: {e}"))?;
    }
    let (rss_start, _) = memory_kib();
    println!(
        "soak: {:?}, seed {}, {} instances, strategy {:?}, {} async workers, faults every {:?}",
        options.duration,
        options.seed,
        options.instances,
        options.strategy,
        options.workers,
        options.fault_period
    );

    let ledger = Arc::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..options.workers {
        tasks.push(tokio::spawn(async_worker(
            clients.clone(),
            Arc::clone(&ledger),
            Arc::clone(&stop),
            options.seed.wrapping_add(i as u64),
        )));
    }
    tasks.push(tokio::spawn(future_worker(
        clients.clone(),
        Arc::clone(&ledger),
        Arc::clone(&stop),
        options.seed.wrapping_add(1000),
    )));
    tasks.push(tokio::spawn(callback_worker(
        clients.clone(),
        Arc::clone(&ledger),
        Arc::clone(&stop),
        options.seed.wrapping_add(2000),
    )));
    tasks.push(tokio::spawn(stream_worker(
        greeter.clone(),
        Arc::clone(&ledger),
        Arc::clone(&items),
        Arc::clone(&stop),
        options.seed.wrapping_add(5000),
    )));
    let mut threads = Vec::new();
    for i in 0..2 {
        let (clients, ledger, stop) = (clients.clone(), Arc::clone(&ledger), Arc::clone(&stop));
        let seed = options.seed.wrapping_add(3000 + i);
        threads.push(
            std::thread::Builder::new()
                .name(format!("soak-blocking-{i}"))
                .spawn(move || blocking_worker(&clients, &ledger, &stop, seed))
                .map_err(|e| format!("cannot start a thread: {e}"))?,
        );
    }
    let schedule = tokio::spawn(fault_schedule(
        Arc::clone(&cluster.proxies),
        options.fault_period,
        Arc::clone(&stop),
        options.seed.wrapping_add(4000),
    ));

    // Watch until the end, with a progress line now and then.
    let progress_every = (options.duration / 10).max(Duration::from_secs(10));
    let mut next_progress = started + progress_every;
    // The stores fill up during the first stretch: RSS after it is the
    // baseline for growth.
    let mut rss_settled = None;
    while started.elapsed() < options.duration {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = Instant::now();
        ledger.watch(now);
        if now >= next_progress {
            next_progress += progress_every;
            if rss_settled.is_none() {
                rss_settled = memory_kib().0;
            }
            println!(
                "  {:>5}s  calls {:>9}  in flight {:>3}  lost {}  rss {}",
                started.elapsed().as_secs(),
                ledger.started.load(Ordering::Relaxed),
                ledger.in_flight(),
                ledger.lost.load(Ordering::Relaxed),
                mib(memory_kib().0)
            );
        }
    }

    // Stop the load; every call started must end.
    stop.store(true, Ordering::Relaxed);
    let load_time = started.elapsed();
    let applied = schedule
        .await
        .map_err(|e| format!("the fault schedule failed: {e}"))?;
    let drain_until = ledger
        .last_limit()
        .unwrap_or_else(Instant::now)
        .max(Instant::now());
    for task in tasks {
        let _ = tokio::time::timeout_at(drain_until.into(), task).await;
    }
    while ledger.in_flight() > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ledger.watch(Instant::now().max(drain_until));
    // A blocking worker stuck in a lost call would never finish: wait for
    // them only as long as their calls may take.
    let _ = settles(
        drain_until.saturating_duration_since(Instant::now()) + SETTLE,
        || threads.iter().all(|thread| thread.is_finished()),
    )
    .await;
    let joined = threads
        .into_iter()
        .all(|thread| thread.is_finished() && thread.join().is_ok());
    let (rss_end, rss_peak) = memory_kib();

    // Leaks: pending maps, then connections once the channel is gone.
    let pending_emptied = settles(SETTLE, || {
        channel.pending_len() == 0 && greeter_channel.pending_len() == 0
    })
    .await;
    let pending = channel.pending_len() + greeter_channel.pending_len();
    drop(clients);
    drop(channel);
    drop(greeter);
    drop(greeter_channel);
    let servers_closed = settles(SETTLE, || {
        cluster.servers.iter().all(|s| s.connection_count() == 0)
    })
    .await;
    let proxies_closed = settles(SETTLE, || {
        cluster.proxies.iter().all(|p| p.connections() == 0)
    })
    .await;

    // The report.
    let started_calls = ledger.started.load(Ordering::Relaxed);
    let ended = ledger.ended.load(Ordering::Relaxed);
    let never_ended = started_calls.saturating_sub(ended);
    let lost = ledger.lost.load(Ordering::Relaxed);
    let outcomes = lock(&ledger.outcomes).clone();
    let count = |o: Outcome| outcomes.get(&o).copied().unwrap_or(0);
    let failed: u64 = outcomes
        .iter()
        .filter(|(o, _)| !matches!(o, Outcome::Ok | Outcome::Declared))
        .map(|(_, n)| n)
        .sum();
    let mut report = String::new();
    let _ = writeln!(report, "calls made       {started_calls}");
    let _ = writeln!(report, "  ok             {}", count(Outcome::Ok));
    let _ = writeln!(report, "  declared error {}", count(Outcome::Declared));
    let _ = writeln!(report, "  failed         {failed}");
    let mut failures: Vec<_> = outcomes
        .iter()
        .filter(|(o, _)| !matches!(o, Outcome::Ok | Outcome::Declared))
        .collect();
    failures.sort();
    for (outcome, n) in failures {
        let name = match outcome {
            Outcome::Status(code) => format!("status: {}", StatusCode::from_u8(*code)),
            Outcome::Transport(kind) => format!("transport: {kind}"),
            Outcome::Ok | Outcome::Declared => continue,
        };
        let _ = writeln!(report, "    {name:<36} {n}");
    }
    let _ = writeln!(
        report,
        "  lost           {lost} (never ended: {never_ended})"
    );
    let by_mode = lock(&ledger.by_mode).clone();
    let modes: Vec<String> = MODES
        .iter()
        .map(|m| format!("{} {}", m.name(), by_mode.get(m).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(report, "by mode          {}", modes.join(", "));
    let violations = items.violations.load(Ordering::Relaxed);
    let _ = writeln!(
        report,
        "stream items     {} received, {violations} missing, repeated or out of order (or a stream that ended wrong)",
        items.received.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        report,
        "calls/s          {:.0}",
        started_calls as f64 / load_time.as_secs_f64()
    );
    let mut applied: Vec<_> = applied.into_iter().collect();
    applied.sort();
    let applied: Vec<String> = applied.iter().map(|(f, n)| format!("{f} {n}")).collect();
    let _ = writeln!(report, "faults applied   {}", applied.join(", "));
    let touched: u64 = cluster
        .stores
        .iter()
        .map(|s| s.touched.load(Ordering::Relaxed))
        .sum();
    let _ = writeln!(
        report,
        "one-way          {} sent, {touched} received (a one-way call ends when written; a fault may drop it after)",
        by_mode.get(&Mode::Oneway).copied().unwrap_or(0)
    );
    let _ = writeln!(
        report,
        "memory           rss at start {}, after the first stretch {}, at end {}, peak {}",
        mib(rss_start),
        mib(rss_settled),
        mib(rss_end),
        mib(rss_peak)
    );
    let connections: Vec<String> = cluster
        .servers
        .iter()
        .map(|s| s.connection_count().to_string())
        .collect();
    let proxied: Vec<String> = cluster
        .proxies
        .iter()
        .map(|p| p.connections().to_string())
        .collect();
    let _ = writeln!(
        report,
        "at the end       pending {pending}, server connections [{}], proxy connections [{}]",
        connections.join(", "),
        proxied.join(", ")
    );
    print!("{report}");
    for call in lock(&ledger.lost_calls).iter().take(20) {
        println!("  lost: {call}");
    }
    for violation in lock(&items.samples).iter() {
        println!("  stream: {violation}");
    }

    let mut problems = Vec::new();
    if lost > 0 || never_ended > 0 {
        problems.push(format!("{lost} calls lost"));
    }
    if violations > 0 {
        problems.push(format!("{violations} stream items or ends wrong"));
    }
    if !pending_emptied {
        problems.push(format!("{pending} calls left in the pending maps"));
    }
    if !servers_closed {
        problems.push("server connections left open".to_owned());
    }
    if !proxies_closed {
        problems.push("proxy connections left open".to_owned());
    }
    if !joined {
        problems.push("a blocking worker panicked or is stuck".to_owned());
    }
    if count(Outcome::Ok) == 0 {
        problems.push("no call succeeded".to_owned());
    }
    for server in cluster.servers {
        server.shutdown().await;
    }
    if problems.is_empty() {
        println!("result           PASS");
        Ok(true)
    } else {
        println!("result           FAIL: {}", problems.join("; "));
        Ok(false)
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("soak: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("soak: cannot start a runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(options)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("soak: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "s", "10x", "-1s", "1.5s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn outcomes_are_sorted_by_kind() {
        let ok: Result<(), RpcError> = Ok(());
        assert_eq!(Outcome::of(&ok), Outcome::Ok);
        let lost: Result<(), RpcError> = Err(TransportError::ConnectionLost("x".into()).into());
        assert_eq!(Outcome::of(&lost), Outcome::Transport("connection lost"));
        let late: Result<(), RpcError> = Err(courier::Status::deadline_exceeded("late").into());
        assert_eq!(Outcome::of(&late), Outcome::Status(6));
    }

    #[test]
    fn the_watchdog_counts_a_call_past_its_limit_once() {
        let ledger = Ledger::default();
        let ticket = ledger.start(Mode::Async, "get", Duration::ZERO);
        let later = Instant::now() + LOST_MARGIN + Duration::from_millis(1);
        ledger.watch(later);
        ledger.watch(later);
        assert_eq!(ledger.lost.load(Ordering::Relaxed), 1);
        let ok: Result<(), RpcError> = Ok(());
        ledger.end(ticket, &ok);
        assert_eq!(ledger.in_flight(), 0);
        assert_eq!(ledger.ended.load(Ordering::Relaxed), 1);
    }
}
