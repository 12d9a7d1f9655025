//! The systems under test, each with a server (run by the `server`
//! subcommand) and a client (run by the `client` subcommand).

pub mod courier_sys;
pub mod floor;
pub mod raw;
pub mod raw_rpc;
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
    /// tarpc over TCP with its bincode serde transport.
    TarpcBincode,
    /// The RPC-shaped ceiling: the raw echo's framing and server, called by
    /// the same closed-loop callers as the RPC systems, with a request id,
    /// a pending map and a oneshot per call.
    RawRpc,
    /// A raw tokio TCP echo with Courier's 18-byte framing: no serializer,
    /// no dispatch, no per-call bookkeeping. The ceiling of the wire.
    RawTokio,
    /// A blocking ping-pong in plain std over loopback, one call at a
    /// time: the absolute floor of latency.
    FloorStd,
    /// `courier-protobuf` run by a second build of the harness (an older
    /// commit, `run --baseline-bin`): the A side of an A/B in one run.
    #[serde(rename = "courier-protobuf@baseline")]
    #[value(name = "courier-protobuf@baseline")]
    CourierProtobufBaseline,
    /// `courier-postcard` run by the baseline build.
    #[serde(rename = "courier-postcard@baseline")]
    #[value(name = "courier-postcard@baseline")]
    CourierPostcardBaseline,
}

impl System {
    /// Every system of this build, in the order they are interleaved and
    /// reported (the baseline's systems are added by `run --baseline-bin`).
    pub const ALL: [System; 8] = [
        System::CourierProtobuf,
        System::CourierPostcard,
        System::Tonic,
        System::TarpcJson,
        System::TarpcBincode,
        System::RawRpc,
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
            System::TarpcBincode => "tarpc-bincode",
            System::RawRpc => "raw-rpc",
            System::RawTokio => "raw-tokio",
            System::FloorStd => "floor-std",
            System::CourierProtobufBaseline => "courier-protobuf@baseline",
            System::CourierPostcardBaseline => "courier-postcard@baseline",
        }
    }

    /// The system of the baseline build this one runs as, if it is one.
    pub fn of_baseline(self) -> Option<System> {
        match self {
            System::CourierProtobufBaseline => Some(System::CourierProtobuf),
            System::CourierPostcardBaseline => Some(System::CourierPostcard),
            _ => None,
        }
    }

    /// This system's baseline twin, if it has one.
    pub fn baseline(self) -> Option<System> {
        match self {
            System::CourierProtobuf => Some(System::CourierProtobufBaseline),
            System::CourierPostcard => Some(System::CourierPostcardBaseline),
            _ => None,
        }
    }

    /// Whether this is one of courier's systems (of either build).
    pub fn is_courier(self) -> bool {
        matches!(
            self,
            System::CourierProtobuf
                | System::CourierPostcard
                | System::CourierProtobufBaseline
                | System::CourierPostcardBaseline
        )
    }

    /// Whether this system runs a cell of `concurrency` calls in flight
    /// (the blocking floor only does one at a time).
    pub fn supports(self, concurrency: usize) -> bool {
        self != System::FloorStd || concurrency == 1
    }

    /// Whether this system runs with a tokio runtime (all but the floor).
    pub fn uses_tokio(self) -> bool {
        self != System::FloorStd
    }

    /// `Err(reason)` if this build cannot run the system.
    pub fn available(self) -> Result<(), String> {
        match self {
            System::CourierPostcard => courier_sys::postcard().map(|_| ()).ok_or_else(|| {
                "courier::Serializer has no Postcard variant in this build".to_owned()
            }),
            s if s.of_baseline().is_some() => Err(format!(
                "{} is run by the baseline build (run --baseline-bin), not by this one",
                s.name()
            )),
            _ => Ok(()),
        }
    }
}

/// The tokio runtime of a server or client process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// `new_multi_thread` with this many workers.
    MultiThread(usize),
    /// `new_current_thread`: everything on the thread that calls
    /// `block_on`.
    CurrentThread,
}

impl Runtime {
    /// A short label: `1 worker`, `2 workers`, `current-thread`.
    pub fn label(self) -> String {
        match self {
            Runtime::MultiThread(1) => "multi-thread, 1 worker".to_owned(),
            Runtime::MultiThread(n) => format!("multi-thread, {n} workers"),
            Runtime::CurrentThread => "current-thread".to_owned(),
        }
    }

    /// The child's command-line arguments that select this runtime (the
    /// baseline build understands `--workers` but not `--current-thread`).
    pub fn args(self) -> Vec<String> {
        match self {
            Runtime::MultiThread(n) => vec!["--workers".into(), n.to_string()],
            Runtime::CurrentThread => vec!["--current-thread".into()],
        }
    }

    /// Builds it.
    fn build(self) -> Result<tokio::runtime::Runtime, String> {
        match self {
            Runtime::MultiThread(workers) => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers.max(1))
                .enable_all()
                .build(),
            Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        }
        .map_err(|e| format!("cannot start tokio: {e}"))
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
    /// The tokio runtime.
    pub runtime: Runtime,
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

/// The `server` subcommand: serves `system` on 127.0.0.1 on `runtime`
/// (configured for `payload`-byte calls where a system's competent user
/// would tune for it), prints `LISTEN <addr>`, and runs until stdin closes.
pub fn serve(system: System, runtime: Runtime, payload: usize) -> Result<(), String> {
    system.available()?;
    if system == System::FloorStd {
        let addr = floor::serve()?;
        child::say(&format!("LISTEN {addr}"));
        control_loop();
        return Ok(());
    }
    let rt = runtime.build()?;
    let addr = rt.block_on(async {
        match system {
            System::CourierProtobuf | System::CourierPostcard => courier_sys::serve().await,
            System::Tonic => tonic_sys::serve(tonic_sys::adaptive_window(payload)).await,
            System::TarpcJson => tarpc_sys::serve(tarpc_sys::Codec::Json).await,
            System::TarpcBincode => tarpc_sys::serve(tarpc_sys::Codec::Bincode).await,
            System::RawTokio | System::RawRpc => raw::serve().await,
            other => Err(format!("{} cannot be served here", other.name())),
        }
    })?;
    child::say(&format!("LISTEN {addr}"));
    // A current-thread runtime runs its tasks only inside `block_on`: the
    // control loop (blocking reads of stdin) runs on a thread of its own.
    rt.block_on(async {
        tokio::task::spawn_blocking(control_loop)
            .await
            .map_err(|e| format!("control loop failed: {e}"))
    })?;
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
        let rt = spec.runtime.build()?;
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
        System::Tonic => {
            let adaptive = tonic_sys::adaptive_window(payload.len());
            let caller = tonic_sys::connect(addr, adaptive).await?;
            load::session(caller, payload, c, timing).await
        }
        System::TarpcJson => {
            let caller = tarpc_sys::connect(addr, tarpc_sys::Codec::Json).await?;
            load::session(caller, payload, c, timing).await
        }
        System::TarpcBincode => {
            let caller = tarpc_sys::connect(addr, tarpc_sys::Codec::Bincode).await?;
            load::session(caller, payload, c, timing).await
        }
        System::RawRpc => load::session(raw_rpc::connect(addr).await?, payload, c, timing).await,
        System::RawTokio => raw::session(addr, payload, c, timing).await,
        other => Err(format!("{} cannot be run here", other.name())),
    }
}
