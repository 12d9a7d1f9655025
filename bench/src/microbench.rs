//! Instruction counts under callgrind: encode and decode of a request frame
//! (through the runtime's public frame codec, exactly as the channel and
//! the server connection do it), and whole calls in one process.
//!
//! The `microbench` subcommand runs one operation N times; the `callgrind`
//! subcommand runs it under `valgrind --tool=callgrind` for two values of
//! N and reports (Ir(N2) − Ir(N1)) / (N2 − N1): instructions per operation
//! with start-up and one-time costs cancelled out. Encode and decode are
//! collected only inside their `measured_*` function (`--toggle-collect`),
//! so building their inputs is not counted; calls are counted whole (the
//! client and server tasks of a current-thread runtime, user space only:
//! the kernel's loopback work is not in the count), with one call in
//! flight, and for courier also with 64 (`courier-call-64`: 64 caller
//! tasks on one connection, where reads and writes can carry many frames).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use bytes::{Bytes, BytesMut};
use courier::Serializer;
use courier::protocol::{
    DEFAULT_MAX_FRAME_SIZE, FrameBuilder, FrameDecoder, FrameHeader, MessageKind, RequestBody,
    encode_request_prefix,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::load::Caller;
use crate::systems::courier_sys::echo_idl::echo::{ECHO, EchoArgs};
use crate::systems::{courier_sys, payload, raw, raw_rpc, tarpc_sys, tonic_sys};

/// An operation counted under callgrind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Client side: one request frame (header, request body, protobuf args)
    /// in one buffer.
    Encode,
    /// Server side: split the frame out of the read buffer, parse the
    /// request body, decode the protobuf args.
    Decode,
    /// One whole courier call (protobuf), client and server in one process.
    CourierCall,
    /// The same with 64 calls in flight on the one connection (64 caller
    /// tasks): what a call costs when frames can share reads and writes.
    #[value(name = "courier-call-64")]
    #[serde(rename = "courier-call-64")]
    CourierCall64,
    /// One call of the RPC-shaped ceiling (raw framing, oneshot and pending
    /// map per call), in one process.
    RawRpcCall,
    /// One raw-echo round trip (same framing, no RPC), in one process.
    RawCall,
    /// One tonic call, client and server in one process.
    TonicCall,
    /// One tarpc (JSON) call, client and server in one process.
    TarpcCall,
    /// One tarpc (bincode) call, client and server in one process.
    TarpcBincodeCall,
}

impl Op {
    /// Every operation, in report order.
    pub const ALL: [Op; 9] = [
        Op::Encode,
        Op::Decode,
        Op::CourierCall,
        Op::CourierCall64,
        Op::RawRpcCall,
        Op::RawCall,
        Op::TonicCall,
        Op::TarpcCall,
        Op::TarpcBincodeCall,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::Encode => "encode",
            Op::Decode => "decode",
            Op::CourierCall => "courier-call",
            Op::CourierCall64 => "courier-call-64",
            Op::RawRpcCall => "raw-rpc-call",
            Op::RawCall => "raw-call",
            Op::TonicCall => "tonic-call",
            Op::TarpcCall => "tarpc-call",
            Op::TarpcBincodeCall => "tarpc-bincode-call",
        }
    }

    /// The function callgrind collects in, for the codec operations.
    fn toggle(self) -> Option<&'static str> {
        match self {
            Op::Encode => Some("*measured_encode*"),
            Op::Decode => Some("*measured_decode*"),
            _ => None,
        }
    }

    /// Calls in flight (1 but for the `-64` operation).
    fn in_flight(self) -> u64 {
        match self {
            Op::CourierCall64 => 64,
            _ => 1,
        }
    }

    /// (N1, N2) iterations for a `len`-byte payload (a tenth for large
    /// payloads: tarpc's JSON of 64 KiB costs tens of millions of
    /// instructions per call); multiples of the calls in flight.
    fn iterations(self, len: usize) -> (u64, u64) {
        let (n1, n2) = match self {
            Op::Encode | Op::Decode => (1_000, 11_000),
            Op::CourierCall64 => (640, 3_840),
            _ => (200, 1_200),
        };
        if len > 16 * 1024 {
            (n1 / 10, n2 / 10)
        } else {
            (n1, n2)
        }
    }
}

fn header(id: u64) -> FrameHeader {
    FrameHeader {
        serializer: Serializer::Protobuf.id(),
        kind: MessageKind::Request,
        status: 0,
        request_id: id,
        body_len: 0,
    }
}

/// The request frame of one `echo` call, built as the channel builds it.
#[inline(never)]
fn measured_encode(
    args: &EchoArgs,
    id: u64,
    metadata: &courier::Metadata,
) -> Result<Bytes, String> {
    let prefix = 10 + ECHO.service.len() + ECHO.method.len();
    let mut frame = FrameBuilder::new(header(id), prefix + prost::Message::encoded_len(args));
    encode_request_prefix(frame.body_mut(), ECHO.service, ECHO.method, 0, metadata)
        .map_err(|e| e.to_string())?;
    Serializer::Protobuf
        .encode(args, frame.body_mut())
        .map_err(|e| e.to_string())?;
    frame
        .finish(DEFAULT_MAX_FRAME_SIZE)
        .map_err(|e| e.to_string())
}

/// What the server does with a request frame before dispatch: split it
/// out, parse the body, decode the args.
#[inline(never)]
fn measured_decode(decoder: &mut FrameDecoder, input: &mut BytesMut) -> Result<EchoArgs, String> {
    let frame = decoder
        .decode(input)
        .map_err(|e| e.to_string())?
        .ok_or("incomplete frame")?;
    let body = RequestBody::parse(frame.body).map_err(|e| e.to_string())?;
    Serializer::Protobuf
        .decode::<EchoArgs>(body.payload)
        .map_err(|e| e.to_string())
}

/// The `microbench` subcommand: `op` `iters` times with a `len`-byte payload.
pub fn run(op: Op, iters: u64, len: usize) -> Result<(), String> {
    let args = EchoArgs {
        payload: payload(len),
    };
    let metadata = courier::Metadata::new();
    match op {
        Op::Encode => {
            let mut total = 0;
            for id in 0..iters {
                total += measured_encode(&args, id, &metadata)?.len();
            }
            std::hint::black_box(total);
        }
        Op::Decode => {
            let frame = measured_encode(&args, 1, &metadata)?;
            let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
            for _ in 0..iters {
                let mut input = BytesMut::from(&frame[..]);
                let decoded = measured_decode(&mut decoder, &mut input)?;
                std::hint::black_box(decoded);
            }
        }
        _ => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(calls(op, iters, args.payload))?;
        }
    }
    Ok(())
}

async fn calls(op: Op, iters: u64, payload: Bytes) -> Result<(), String> {
    /// `iters` calls in all, by `in_flight` tasks each calling in a loop.
    async fn repeat<C: Caller>(
        caller: C,
        iters: u64,
        in_flight: u64,
        payload: Bytes,
    ) -> Result<(), String> {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..in_flight {
            let mut caller = caller.clone();
            let payload = payload.clone();
            tasks.spawn(async move {
                for _ in 0..iters / in_flight {
                    caller.call(payload.clone()).await?;
                }
                Ok::<(), String>(())
            });
        }
        while let Some(task) = tasks.join_next().await {
            task.map_err(|e| e.to_string())??;
        }
        Ok(())
    }
    let n = op.in_flight();
    match op {
        Op::CourierCall | Op::CourierCall64 => {
            let addr = courier_sys::serve().await?;
            let caller = courier_sys::connect(addr, Serializer::Protobuf).await?;
            repeat(caller, iters, n, payload).await
        }
        Op::RawRpcCall => {
            let addr = raw::serve().await?;
            repeat(raw_rpc::connect(addr).await?, iters, n, payload).await
        }
        Op::TonicCall => {
            let adaptive = tonic_sys::adaptive_window(payload.len());
            let addr = tonic_sys::serve(adaptive).await?;
            let caller = tonic_sys::connect(addr, adaptive).await?;
            repeat(caller, iters, n, payload).await
        }
        Op::TarpcCall | Op::TarpcBincodeCall => {
            let codec = if op == Op::TarpcCall {
                tarpc_sys::Codec::Json
            } else {
                tarpc_sys::Codec::Bincode
            };
            let addr = tarpc_sys::serve(codec).await?;
            repeat(tarpc_sys::connect(addr, codec).await?, iters, n, payload).await
        }
        Op::RawCall => {
            let addr = raw::serve().await?;
            let mut stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let mut request = BytesMut::new();
            raw::put_frame(&mut request, 1, 1, &payload);
            let mut reply = vec![0; request.len()];
            for _ in 0..iters {
                stream
                    .write_all(&request)
                    .await
                    .map_err(|e| e.to_string())?;
                stream
                    .read_exact(&mut reply)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Op::Encode | Op::Decode => unreachable!("not a call"),
    }
}

/// One operation's count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Count {
    /// The operation.
    pub op: Op,
    /// Payload bytes.
    pub payload: usize,
    /// Instructions per operation.
    pub instructions: Option<f64>,
    /// Why it could not be counted.
    pub error: Option<String>,
}

fn collected(exe: &Path, op: Op, iters: u64, len: usize) -> Result<u64, String> {
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"]);
    if let Some(function) = op.toggle() {
        cmd.arg("--collect-atstart=no")
            .arg(format!("--toggle-collect={function}"));
    }
    cmd.arg(exe).args([
        "microbench",
        "--op",
        op.name(),
        "--iters",
        &iters.to_string(),
        "--payload",
        &len.to_string(),
    ]);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(format!("valgrind failed: {}", tail.join(" | ")));
    }
    stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| "no `Collected` line from callgrind".to_owned())
}

/// The `callgrind` subcommand: counts every operation for each payload and
/// writes callgrind.md and callgrind.json into `out`.
pub fn callgrind(exe: &Path, payloads: &[usize], ops: &[Op], out: &Path) -> Result<(), String> {
    let version = Command::new("valgrind")
        .arg("--version")
        .output()
        .map_err(|e| format!("valgrind is not installed ({e}); apt-get install -y valgrind"))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let mut counts = Vec::new();
    for &len in payloads {
        for &op in ops {
            let (n1, n2) = op.iterations(len);
            let result = collected(exe, op, n1, len)
                .and_then(|a| Ok((a, collected(exe, op, n2, len)?)))
                .map(|(a, b)| b.saturating_sub(a) as f64 / (n2 - n1) as f64);
            match &result {
                Ok(ir) => eprintln!(
                    "{:>6} {:<18} {ir:>12.0} instructions",
                    crate::report::size_label(len),
                    op.name()
                ),
                Err(e) => eprintln!(
                    "{:>6} {:<18} failed: {e}",
                    crate::report::size_label(len),
                    op.name()
                ),
            }
            let (instructions, error) = match result {
                Ok(ir) => (Some(ir), None),
                Err(e) => (None, Some(e)),
            };
            counts.push(Count {
                op,
                payload: len,
                instructions,
                error,
            });
        }
    }
    fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let json = serde_json::json!({ "valgrind": version, "counts": counts });
    fs::write(
        out.join("callgrind.json"),
        serde_json::to_string_pretty(&json).map_err(|e| e.to_string())? + "\n",
    )
    .map_err(|e| e.to_string())?;
    fs::write(
        out.join("callgrind.md"),
        callgrind_markdown(&version, payloads, ops, &counts),
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

fn callgrind_markdown(version: &str, payloads: &[usize], ops: &[Op], counts: &[Count]) -> String {
    let mut md = format!(
        "<!-- Generated by `bench/callgrind.sh`: do not edit. -->\n\nInstructions per operation ({version}, `--tool=callgrind`, (Ir(N2) − Ir(N1)) / (N2 − N1)); user space only.\n\n| operation |"
    );
    for &p in payloads {
        let _ = write!(md, " {} |", crate::report::size_label(p));
    }
    md.push_str("\n|---|");
    for _ in payloads {
        md.push_str("--:|");
    }
    md.push('\n');
    for &op in ops {
        let _ = write!(md, "| {} |", op.name());
        for &p in payloads {
            let cell = counts
                .iter()
                .find(|c| c.op == op && c.payload == p)
                .and_then(|c| c.instructions)
                .map_or("–".to_owned(), |ir| format!("{ir:.0}"));
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_is_written_to_callgrind_json_by_the_name_the_report_reads() {
        for op in Op::ALL {
            let written = serde_json::to_value(op).expect("an op serializes");
            assert_eq!(written, serde_json::Value::String(op.name().to_owned()));
        }
    }
}
