//! `hostile_load`: measures a server under hostile peers, with the server
//! in a process of its own (its resident memory is read from `/proc`).
//! The figures of the book's limits and reliability chapters come from it.
//!
//! ```text
//! cargo build --release -p courier-tests --bin hostile_load
//! target/release/hostile_load pipeline [--peers 100] [--kib 1024] [--seconds 45] [--stall 30s]
//! target/release/hostile_load hogs
//! target/release/hostile_load pinning [--rounds 250]
//! target/release/hostile_load flood [--seconds 30]
//! ```
//!
//! - `pipeline`: `--peers` connections pipeline `put` requests of `--kib`
//!   KiB (answered with as many bytes) and never read, while a good client
//!   on its own connection calls `get` in a loop. Reports the server's peak
//!   RSS, the good client's latency percentiles, and for each peer how
//!   long after its last accepted write the server closed it.
//! - `hogs`: 16 connections each hold 1,024 calls that sleep 60 s (the
//!   server's whole default in-flight limit); a 17th client calls; then the
//!   hogs disconnect, and probes measure when the whole capacity is back.
//! - `pinning`: rounds of one 16 MiB request followed by a small call that
//!   stays in flight; reports the server's RSS (a small call that pinned
//!   its read buffer would hold 16 MiB each).
//! - `flood`: one connection floods requests for an unknown method and
//!   never reads; reports the server's RSS over time.
//!
//! The server (`hostile_load serve`) serves `fixtures.services.Store` with
//! the default limits: `put` answers the value it was given, `get("sleep/N")`
//! sleeps N ms, any other `get` answers 16 bytes.

use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use courier::client::Channel;
use courier::client::Stub;
use courier::protocol::{FrameBuilder, FrameDecoder, FrameHeader, MessageKind};
use courier::server::Server;
use courier::{CallContext, RpcError};
use courier_tests::fixtures::services::store::{
    DeleteError, GetError, PutError, Store, StoreClient, StoreServer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const USAGE: &str = "usage: hostile_load (pipeline [--peers N] [--kib N] [--seconds N] [--stall 30s] | hogs | pinning [--rounds N] | flood [--seconds N] | serve [--stall 30s])";

const SERVICE: &str = "fixtures.services.Store";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first().cloned() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let options = match Options::parse(&args[1..]) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async move {
        match command.as_str() {
            "serve" => serve(&options).await,
            "pipeline" => pipeline(&options).await,
            "hogs" => hogs().await,
            "pinning" => pinning(&options).await,
            "flood" => flood(&options).await,
            other => Err(format!("unknown command {other}")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The command line.
#[derive(Debug, Clone)]
struct Options {
    peers: usize,
    kib: usize,
    seconds: u64,
    rounds: usize,
    stall: Option<Duration>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            peers: 100,
            kib: 1024,
            seconds: 45,
            rounds: 250,
            stall: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag}: not a number: {value}"))
            };
            match flag.as_str() {
                "--peers" => options.peers = number()? as usize,
                "--kib" => options.kib = number()? as usize,
                "--seconds" => options.seconds = number()?,
                "--rounds" => options.rounds = number()? as usize,
                "--stall" => {
                    let seconds = value
                        .trim_end_matches('s')
                        .parse::<f64>()
                        .map_err(|_| format!("--stall: not a duration: {value}"))?;
                    options.stall = Some(Duration::from_secs_f64(seconds));
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(options)
    }
}

// ---------------------------------------------------------------- server

/// The store the server serves.
struct LoadStore;

impl Store for LoadStore {
    async fn get(&self, _ctx: CallContext, key: String) -> Result<Bytes, RpcError<GetError>> {
        if let Some(ms) = key.strip_prefix("sleep/") {
            let ms = ms.parse::<u64>().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(Bytes::from_static(b"0123456789abcdef"))
    }

    async fn put(
        &self,
        _ctx: CallContext,
        _key: String,
        value: Bytes,
    ) -> Result<Option<Bytes>, RpcError<PutError>> {
        Ok(Some(value))
    }

    async fn delete(&self, _ctx: CallContext, _key: String) -> Result<(), RpcError<DeleteError>> {
        Ok(())
    }

    async fn count(&self, _ctx: CallContext) -> Result<u64, RpcError> {
        Ok(0)
    }

    async fn keys(
        &self,
        _ctx: CallContext,
        _prefix: String,
        _limit: u32,
    ) -> Result<Vec<String>, RpcError> {
        Ok(Vec::new())
    }

    async fn touch(&self, _ctx: CallContext, _key: String) {}
}

/// `serve`: prints `listening on ADDR`, serves until stdin closes.
async fn serve(options: &Options) -> Result<(), String> {
    let mut builder = Server::builder().add_service(StoreServer::new(LoadStore));
    if let Some(stall) = options.stall {
        builder = builder.write_stall_timeout(Some(stall));
    }
    let server = builder
        .bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    println!("listening on {}", server.local_addr());
    // Serves until stdin closes (the measuring process ended); a `stats`
    // line on stdin is answered with the server's own accounting on
    // stdout.
    let (lines, mut commands) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::stdin().lock()) {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    // With HOSTILE_LOAD_TRACE set, the accounting every second too.
    let trace = std::env::var_os("HOSTILE_LOAD_TRACE").is_some();
    let stats = |server: &courier::server::ServerHandle| {
        format!(
            "in_flight {} connections {} held {} pool {}",
            server.in_flight(),
            server.connection_count(),
            server.buffered_bytes(),
            server.pool_bytes()
        )
    };
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) if command.trim() == "stats" => println!("{}", stats(&server)),
                Some(_) => {}
                None => break,
            },
            () = tokio::time::sleep(Duration::from_secs(1)), if trace => {
                eprintln!("  [server] {}", stats(&server));
            }
        }
    }
    server.shutdown().await;
    Ok(())
}

/// A server in a child process.
struct ServerProcess {
    child: Child,
    addr: std::net::SocketAddr,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl ServerProcess {
    fn start(options: &Options) -> Result<ServerProcess, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = Command::new(exe);
        command.arg("serve");
        if let Some(stall) = options.stall {
            command.args(["--stall", &format!("{}s", stall.as_secs_f64())]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut stdout = std::io::BufReader::new(stdout);
        // The first line comes at once; reading it blocks this thread only.
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).map_err(|e| e.to_string())?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line {line:?}"))?
            .parse()
            .map_err(|e| format!("{e}"))?;
        Ok(ServerProcess {
            child,
            addr,
            stdout,
        })
    }

    /// The server's calls in flight, by its own count.
    fn in_flight(&mut self) -> usize {
        use std::io::Write as _;
        let Some(stdin) = self.child.stdin.as_mut() else {
            return 0;
        };
        if writeln!(stdin, "stats")
            .and_then(|()| stdin.flush())
            .is_err()
        {
            return 0;
        }
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut self.stdout, &mut line).is_err() {
            return 0;
        }
        line.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Resident and peak resident memory in MiB.
    fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .map_or(0.0, |kib| kib / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing stdin stops the server; kill it if it lingers.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- frames

/// A protobuf request frame for `method` with `payload` (the args message).
fn request_frame(request_id: u64, method: &str, payload: &[u8]) -> BytesMut {
    let mut builder = FrameBuilder::new(
        FrameHeader {
            serializer: 1,
            kind: MessageKind::Request,
            status: 0,
            request_id,
            body_len: 0,
        },
        payload.len() + 64,
    );
    courier::protocol::encode_request_prefix(
        builder.body_mut(),
        SERVICE,
        method,
        0,
        &courier::Metadata::new(),
    )
    .expect("short names");
    builder.body_mut().put_slice(payload);
    BytesMut::from(&builder.finish(u32::MAX).expect("fits")[..])
}

/// A protobuf length-delimited field.
fn field(buf: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    buf.push(tag << 3 | 2);
    let mut len = bytes.len() as u64;
    while len >= 0x80 {
        buf.push((len as u8) | 0x80);
        len >>= 7;
    }
    buf.push(len as u8);
    buf.extend_from_slice(bytes);
}

/// `put(key, value)` args.
fn put_args(value_len: usize) -> Vec<u8> {
    let mut args = Vec::with_capacity(value_len + 16);
    field(&mut args, 1, b"k");
    field(&mut args, 2, &vec![b'v'; value_len]);
    args
}

/// `get(key)` args.
fn get_args(key: &str) -> Vec<u8> {
    let mut args = Vec::new();
    field(&mut args, 1, key.as_bytes());
    args
}

/// Sets the request id of an encoded frame.
fn set_request_id(frame: &mut BytesMut, request_id: u64) {
    frame[6..14].copy_from_slice(&request_id.to_be_bytes());
}

// ---------------------------------------------------------------- measures

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A good client calling `get` in a loop until `stop`; returns each call's
/// latency and the number of failed calls.
async fn good_client(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> (Vec<Duration>, usize) {
    let channel = Channel::connect(addr).await.expect("connect");
    let store = StoreClient::new(channel);
    let mut latencies = Vec::new();
    let mut failed = 0;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match store.get("k").await {
            Ok(_) => latencies.push(started.elapsed()),
            Err(e) => {
                failed += 1;
                eprintln!("good client: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies.sort();
    (latencies, failed)
}

// ---------------------------------------------------------------- pipeline

/// What happened to one non-reading peer.
#[derive(Debug, Clone, Copy)]
struct PeerEnd {
    requests: u64,
    /// From its last accepted write to the close.
    after_last_write: Option<Duration>,
}

async fn pipeline(options: &Options) -> Result<(), String> {
    let server = ServerProcess::start(options)?;
    let (rss0, _) = server.memory_mib();
    println!(
        "pipeline: {} peers pipelining {} KiB puts, never reading; server RSS at start {rss0:.1} MiB",
        options.peers, options.kib
    );
    let stop = Arc::new(AtomicBool::new(false));
    let good = tokio::spawn(good_client(server.addr, Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let template = request_frame(0, "put", &put_args(options.kib * 1024));
    let mut peers = Vec::new();
    for _ in 0..options.peers {
        let addr = server.addr;
        let mut frame = template.clone();
        peers.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (_read, mut write) = stream.into_split();
            let mut requests = 0u64;
            let mut last_write = None;
            loop {
                set_request_id(&mut frame, requests + 1);
                match write.write_all(&frame).await {
                    Ok(()) => {
                        requests += 1;
                        last_write = Some(Instant::now());
                    }
                    Err(_) => {
                        return PeerEnd {
                            requests,
                            after_last_write: last_write.map(|at| at.elapsed()),
                        };
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    let mut peak = 0.0f64;
    let mut last_report = Instant::now();
    while started.elapsed() < Duration::from_secs(options.seconds)
        && !peers.iter().all(|peer| peer.is_finished())
    {
        let (rss, _) = server.memory_mib();
        peak = peak.max(rss);
        if last_report.elapsed() >= Duration::from_secs(5) {
            let closed = peers.iter().filter(|peer| peer.is_finished()).count();
            println!(
                "  t={:>4.1}s RSS {rss:>7.1} MiB, peers closed {closed}/{}",
                started.elapsed().as_secs_f64(),
                options.peers
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, hwm) = server.memory_mib();
    stop.store(true, Ordering::Relaxed);
    let (latencies, failed) = good.await.map_err(|e| e.to_string())?;
    let mut ends = Vec::new();
    let mut open = 0;
    for peer in peers {
        if peer.is_finished() {
            ends.push(peer.await.map_err(|e| e.to_string())?);
        } else {
            peer.abort();
            open += 1;
        }
    }
    let worst_close = ends.iter().filter_map(|end| end.after_last_write).max();
    let requests: u64 = ends.iter().map(|end| end.requests).sum();
    println!("server RSS: peak sampled {peak:.1} MiB, VmHWM {hwm:.1} MiB (at start {rss0:.1} MiB)");
    println!(
        "good client: {} calls, {failed} failed; p50 {} p99 {} max {}",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!(
        "peers: {} closed by the server, {open} still open; {requests} requests accepted in all; worst close {} after the peer's last accepted write",
        ends.len(),
        worst_close.map_or_else(|| "n/a".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
    );
    Ok(())
}

// ---------------------------------------------------------------- hogs

/// Sends `calls` requests for `get("sleep/60000")` on a new connection.
async fn hog(addr: std::net::SocketAddr, calls: u64) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut frames = BytesMut::new();
    let template = request_frame(0, "get", &get_args("sleep/60000"));
    for id in 1..=calls {
        let mut frame = template.clone();
        set_request_id(&mut frame, id);
        frames.extend_from_slice(&frame);
    }
    stream.write_all(&frames).await.expect("write");
    stream
}

/// Sends `calls` long calls and counts the status 7 answers that come
/// within `wait`; closes the connection (its calls stop).
async fn probe(addr: std::net::SocketAddr, calls: u64, wait: Duration) -> usize {
    let mut stream = hog(addr, calls).await;
    let mut decoder = FrameDecoder::new(u32::MAX);
    let mut buf = BytesMut::new();
    let mut refused = 0;
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
        if n == 0 {
            break;
        }
        while let Ok(Some(frame)) = decoder.decode(&mut buf) {
            if frame.header.status == 7 {
                refused += 1;
            }
        }
    }
    refused
}

async fn hogs() -> Result<(), String> {
    let mut server = ServerProcess::start(&Options::parse(&[])?)?;
    let mut hogs = Vec::new();
    for _ in 0..16 {
        hogs.push(hog(server.addr, 1024).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.in_flight() < 16 * 1024 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "hogs: 16 connections hold {} calls of 60 s each",
        server.in_flight()
    );
    let refused = probe(server.addr, 1000, Duration::from_millis(500)).await;
    println!(
        "  a 17th connection sending 1,000 long calls: {refused} answered status 7 (its fair share is 16384/17 = 963)"
    );
    let channel = Channel::connect(server.addr).await.expect("connect");
    let store = StoreClient::new(channel);
    let started = Instant::now();
    let answer = store.get("k").await;
    println!(
        "  an 18th client's call: {} in {}",
        if answer.is_ok() { "served" } else { "FAILED" },
        ms(started.elapsed())
    );
    drop(hogs);
    let disconnected = Instant::now();
    while server.in_flight() > 0 && disconnected.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "  after the hogs disconnected: {} calls in flight {} later",
        server.in_flight(),
        ms(disconnected.elapsed())
    );
    Ok(())
}

// ---------------------------------------------------------------- pinning

async fn pinning(options: &Options) -> Result<(), String> {
    let server = ServerProcess::start(options)?;
    let (rss0, _) = server.memory_mib();
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let big = request_frame(0, "put", &put_args(16 * 1024 * 1024 - 64));
    let small = request_frame(0, "get", &get_args("sleep/600000"));
    let mut decoder = FrameDecoder::new(u32::MAX);
    let mut buf = BytesMut::new();
    let mut id = 0u64;
    for _ in 0..options.rounds {
        id += 1;
        let mut frame = big.clone();
        set_request_id(&mut frame, id);
        stream.write_all(&frame).await.map_err(|e| e.to_string())?;
        // Its answer (16 MiB back), then a small call that stays.
        loop {
            if let Some(frame) = decoder.decode(&mut buf).map_err(|e| e.to_string())? {
                if frame.header.request_id == id {
                    break;
                }
                continue;
            }
            if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
                return Err("the server closed the connection".to_owned());
            }
        }
        id += 1;
        let mut frame = small.clone();
        set_request_id(&mut frame, id);
        stream.write_all(&frame).await.map_err(|e| e.to_string())?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss, hwm) = server.memory_mib();
    println!(
        "pinning: {} rounds of a 16 MiB request then a small call kept in flight: server RSS {rss:.1} MiB (peak {hwm:.1} MiB, at start {rss0:.1} MiB)",
        options.rounds
    );
    Ok(())
}

// ---------------------------------------------------------------- flood

async fn flood(options: &Options) -> Result<(), String> {
    let server = ServerProcess::start(options)?;
    let (rss0, _) = server.memory_mib();
    let addr = server.addr;
    let flooding = tokio::spawn(async move {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (_read, mut write) = stream.into_split();
        let template = request_frame(0, &"m".repeat(200), &get_args("k"));
        let mut id = 0u64;
        let mut batch = BytesMut::new();
        loop {
            batch.clear();
            for _ in 0..1000 {
                id += 1;
                let mut frame = template.clone();
                set_request_id(&mut frame, id);
                batch.extend_from_slice(&frame);
            }
            if write.write_all(&batch).await.is_err() {
                return id;
            }
        }
    });
    let started = Instant::now();
    let mut peak = 0.0f64;
    while started.elapsed() < Duration::from_secs(options.seconds) && !flooding.is_finished() {
        peak = peak.max(server.memory_mib().0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let closed_after = started.elapsed();
    let sent = if flooding.is_finished() {
        Some(flooding.await.map_err(|e| e.to_string())?)
    } else {
        flooding.abort();
        None
    };
    println!(
        "flood: unknown-method requests never read: server RSS peak {peak:.1} MiB (at start {rss0:.1} MiB); {}",
        match sent {
            Some(sent) => format!(
                "the server closed the peer after {:.1} s ({sent} requests sent)",
                closed_after.as_secs_f64()
            ),
            None => "the peer was still open".to_owned(),
        }
    );
    Ok(())
}
