//! The systems under test, each with a server (run by the `server`
//! subcommand) and a client (run by the `client` subcommand).

pub mod courier_sys;
pub mod floor;
pub mod raw;
pub mod tarpc_sys;
pub mod tonic_sys;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::alloc::AllocCounters;
use crate::child;
use crate::load::{self, Timing};

/// One system under test.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// Courier with the protobuf serializer (the default).
    CourierProtobuf,
    /// Courier with the postcard serializer, if the runtime has it.
    CourierPostcard,
    /// tonic unary gRPC over HTTP/2 (prost messages).
    Tonic,
    /// tarpc over TCP with its JSON serde transport.
    TarpcJson,
    /// A raw tokio TCP echo with Courier's 18-byte framing: no serializer,
    /// no dispatch, no per-call bookkeeping. The practical ceiling.
    RawTokio,
    /// A blocking ping-pong in plain std over loopback, one call at a
    /// time: the absolute floor of latency.
    FloorStd,
}

impl System {
    /// Every system, in the order they are interleaved and reported.
    pub const ALL: [System; 6] = [
        System::CourierProtobuf,
        System::CourierPostcard,
        System::Tonic,
        System::TarpcJson,
        System::RawTokio,
        System::FloorStd,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            System::CourierProtobuf => "courier-protobuf",
            System::CourierPostcard => "courier-postcard",
            System::Tonic => "tonic",
            System::TarpcJson => "tarpc-json",
            System::RawTokio => "raw-tokio",
            System::FloorStd => "floor-std",
        }
    }

    /// Whether this system runs a cell of `concurrency` calls in flight
    /// (the blocking floor only does one at a time).
    pub fn supports(self, concurrency: usize) -> bool {
        self != System::FloorStd || concurrency == 1
    }

    /// `Err(reason)` if this build cannot run the system.
    pub fn available(self) -> Result<(), String> {
        match self {
            System::CourierPostcard => courier_sys::postcard().map(|_| ()).ok_or_else(|| {
                "courier::Serializer has no Postcard variant in this build".to_owned()
            }),
            _ => Ok(()),
        }
    }
}

/// The arguments of the `client` subcommand.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// The system to call.
    pub system: System,
    /// The server's address.
    pub addr: SocketAddr,
    /// Payload bytes per call.
    pub payload: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Warm-up and window.
    pub timing: Timing,
    /// Tokio worker threads.
    pub workers: usize,
}

/// A multi-thread tokio runtime with exactly `workers` worker threads.
fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))
}

/// The payload every call sends: `len` bytes of a fixed pattern.
pub fn payload(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

/// Answers `MARK` with the allocation counters until stdin closes.
fn control_loop() {
    while let Some(command) = child::next_command() {
        if command == "MARK" {
            let now = AllocCounters::now();
            child::say(&format!("ALLOC {} {}", now.bytes, now.blocks));
        }
    }
}

/// The `server` subcommand: serves `system` on 127.0.0.1 with `workers`
/// tokio workers, prints `LISTEN <addr>`, and runs until stdin closes.
pub fn serve(system: System, workers: usize) -> Result<(), String> {
    system.available()?;
    if system == System::FloorStd {
        let addr = floor::serve()?;
        child::say(&format!("LISTEN {addr}"));
        control_loop();
        return Ok(());
    }
    let rt = runtime(workers)?;
    let addr = rt.block_on(async {
        match system {
            System::CourierProtobuf | System::CourierPostcard => courier_sys::serve().await,
            System::Tonic => tonic_sys::serve().await,
            System::TarpcJson => tarpc_sys::serve().await,
            System::RawTokio => raw::serve().await,
            System::FloorStd => unreachable!("handled above"),
        }
    })?;
    child::say(&format!("LISTEN {addr}"));
    control_loop();
    // Exit without waiting for connection tasks to notice.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

/// The `client` subcommand: connects, warms up, says `READY`, measures
/// after `GO`, says `RESULT`, then waits for stdin to close.
pub fn run_client(spec: &ClientSpec) -> Result<(), String> {
    spec.system.available()?;
    let payload = payload(spec.payload);
    if spec.system == System::FloorStd {
        floor::client(spec, payload)?;
    } else {
        let rt = runtime(spec.workers)?;
        rt.block_on(async_client(spec, payload))?;
        // Stay alive (idle) until the orchestrator has read our CPU time.
        while child::next_command().is_some() {}
        rt.shutdown_timeout(Duration::from_millis(100));
        return Ok(());
    }
    while child::next_command().is_some() {}
    Ok(())
}

async fn async_client(spec: &ClientSpec, payload: Bytes) -> Result<(), String> {
    let (addr, c, timing) = (spec.addr, spec.concurrency, spec.timing);
    match spec.system {
        System::CourierProtobuf => {
            let caller = courier_sys::connect(addr, courier::Serializer::Protobuf).await?;
            load::session(caller, payload, c, timing).await
        }
        System::CourierPostcard => {
            let serializer = courier_sys::postcard().ok_or("no postcard")?;
            let caller = courier_sys::connect(addr, serializer).await?;
            load::session(caller, payload, c, timing).await
        }
        System::Tonic => load::session(tonic_sys::connect(addr).await?, payload, c, timing).await,
        System::TarpcJson => {
            load::session(tarpc_sys::connect(addr).await?, payload, c, timing).await
        }
        System::RawTokio => raw::session(addr, payload, c, timing).await,
        System::FloorStd => unreachable!("handled by the caller"),
    }
}
