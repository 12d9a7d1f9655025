//! A real Courier server, with real generated services, serving one
//! in-memory connection per input (in the style of h2's `fuzz_e2e`).
//!
//! The server is built once per process and serves each input's
//! `tokio::io::duplex` end through `ServerHandle::serve_stream`, exactly as
//! it serves an accepted socket. The input is a little program of steps
//! (see [`Step`]): raw bytes, well-formed request frames whose service,
//! method, metadata and payload come from the input, pings, cancels,
//! frames with arbitrary header fields, pauses that let the server work.
//!
//! Checked on every input, besides "nothing panics, in any task":
//! - everything the server writes decodes as frames of PROTOCOL.md, and
//!   they are responses or pongs with a status of its table;
//! - after the client closes its end, the server closes the connection
//!   within [`CLOSE_BOUND`], and then no connection and no call is left:
//!   nothing leaks from one input to the next.
#![no_main]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::BytesMut;
use courier::protocol::{FrameDecoder, FrameHeader, MessageKind, encode_request_prefix};
use courier::server::{Server, ServerHandle};
use courier::{CallContext, Metadata, RpcError};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;

#[allow(dead_code, reason = "only the server side of the services is used")]
mod hello {
    courier::include_idl!("hello");
}
#[allow(dead_code, reason = "only the server side of the services is used")]
mod shop {
    courier::include_idl!("shop");
}

/// How long the server may take to close a connection the client closed,
/// and to forget it. Far above what it needs (microseconds): hitting it
/// means a hang, not a slow machine.
const CLOSE_BOUND: Duration = Duration::from_secs(10);

/// The duplex buffer: larger than anything an input makes the client write
/// (inputs are at most a few KiB), so the client's writes never wait.
const DUPLEX_BUFFER: usize = 256 * 1024;

/// The highest status code of PROTOCOL.md's table.
const MAX_STATUS: u8 = 21;

fuzz_target!(|data: &[u8]| {
    let (runtime, server) = server();
    let steps = parse_steps(data);
    if trace() {
        eprintln!("-> {steps:?}");
    }
    runtime.block_on(run_connection(server, &steps));
});

/// The process's runtime and server, started on first use.
fn server() -> &'static (Runtime, ServerHandle) {
    static SERVER: OnceLock<(Runtime, ServerHandle)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let handle = runtime.block_on(async {
            Server::builder()
                .add_service(hello::greeter::GreeterServer::new(FuzzGreeter))
                .add_service(shop::order_book::OrderBookServer::new(FuzzOrderBook))
                .enable_health()
                .enable_reflection()
                .bind("127.0.0.1:0")
                .await
                .expect("bind a server on 127.0.0.1:0")
        });
        (runtime, handle)
    })
}

async fn run_connection(server: &ServerHandle, steps: &[Step]) {
    let (client, server_end) = tokio::io::duplex(DUPLEX_BUFFER);
    let peer: SocketAddr = "127.0.0.1:1".parse().expect("an address");
    server.serve_stream(server_end, peer);
    let (mut reader, mut writer) = tokio::io::split(client);
    let write = async move {
        for step in steps {
            match step {
                Step::Write(bytes) => {
                    // The server may have closed the connection (bad
                    // magic, limits): then there is nothing more to write.
                    if writer.write_all(bytes).await.is_err() {
                        break;
                    }
                }
                Step::Pause => {
                    for _ in 0..4 {
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
        let _ = writer.shutdown().await;
        writer
    };
    let read = async {
        tokio::time::timeout(CLOSE_BOUND, read_answers(&mut reader))
            .await
            .expect("the server did not close the connection after the client closed it")
    };
    let (writer, ()) = tokio::join!(write, read);
    drop(reader.unsplit(writer));
    tokio::time::timeout(CLOSE_BOUND, async {
        while server.connection_count() != 0 || server.in_flight() != 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the connection or its calls outlived the closed stream");
}

/// Reads until the server closes; checks that it wrote only well-formed
/// responses, pongs, stream items (`count`) and response metadata.
async fn read_answers(reader: &mut tokio::io::ReadHalf<DuplexStream>) {
    let mut decoder = FrameDecoder::default();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        while let Some(frame) = decoder
            .decode(&mut buf)
            .expect("the server wrote a malformed frame")
        {
            assert!(
                matches!(
                    frame.header.kind,
                    MessageKind::Response
                        | MessageKind::Pong
                        | MessageKind::StreamItem
                        | MessageKind::ResponseMetadata
                ),
                "the server sent {:?}",
                frame.header
            );
            assert!(frame.header.status <= MAX_STATUS, "{:?}", frame.header);
            if trace() {
                eprintln!(
                    "<- {:?} {:?}",
                    frame.header,
                    String::from_utf8_lossy(&frame.body)
                );
            }
        }
    }
    assert!(buf.is_empty(), "the server closed mid-frame: {buf:?}");
}

/// Whether to print the server's answers (`COURIER_FUZZ_TRACE=1`, to see
/// what an input or a seed does).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("COURIER_FUZZ_TRACE").is_some_and(|v| v == "1"))
}

/// What the client does, in order.
#[derive(Debug)]
enum Step {
    Write(Vec<u8>),
    Pause,
}

/// Reads the input front to back, one byte at a time; the end of the input
/// ends the program (a step cut short is dropped).
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(*first)
    }

    fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.data.split_at_checked(len)?;
        self.data = rest;
        Some(taken)
    }

    /// A byte length, then that many bytes.
    fn short_bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.byte()?;
        self.bytes(usize::from(len))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Services and methods a request step can name (the last of each is
/// unknown to the server).
const SERVICES: &[(&str, &[&str])] = &[
    (
        "hello.Greeter",
        &["say_hello", "sleep", "notify", "missing"],
    ),
    (
        "shop.OrderBook",
        &["place", "get", "set_status", "by_status", "missing"],
    ),
    ("courier.Health", &["check", "missing"]),
    (
        "courier.Reflection",
        &["list_services", "file_containing", "missing"],
    ),
    ("no.Such", &["method"]),
];

/// The input's steps. Each step starts with an opcode byte:
///
/// | op % 8 | step | then |
/// |---|---|---|
/// | 0 | raw bytes | length byte, bytes |
/// | 1 | request frame | serializer, flags (bit 0: one-way), request id, service, method, timeout (x 8 ms), metadata count (% 4) and per entry key and value (length byte, bytes), payload (two length bytes, bytes) |
/// | 2 | ping | request id |
/// | 3 | cancel | request id |
/// | 4 | pause | — |
/// | 5 | the rest of the input, raw | — |
/// | 6 | frame with any header fields | serializer, type, status, request id, body (length byte, bytes) |
/// | 7 | header claiming a body that never comes | serializer, request id, 4 length bytes |
fn parse_steps(data: &[u8]) -> Vec<Step> {
    let mut cursor = Cursor { data };
    let mut steps = Vec::new();
    while let Some(op) = cursor.byte() {
        let step = match op % 8 {
            0 => cursor.short_bytes().map(|b| Step::Write(b.to_vec())),
            1 => request_frame(&mut cursor).map(Step::Write),
            2 => cursor
                .byte()
                .map(|id| Step::Write(frame(0, MessageKind::Ping, 0, id, &[]))),
            3 => cursor
                .byte()
                .map(|id| Step::Write(frame(0, MessageKind::Cancel, 0, id, &[]))),
            4 => Some(Step::Pause),
            5 => Some(Step::Write(cursor.rest().to_vec())),
            6 => any_frame(&mut cursor).map(Step::Write),
            _ => unfinished_frame(&mut cursor).map(Step::Write),
        };
        match step {
            Some(step) => steps.push(step),
            None => break,
        }
    }
    steps
}

fn request_frame(cursor: &mut Cursor<'_>) -> Option<Vec<u8>> {
    let serializer = cursor.byte()? % 6; // 0 and 5: unsupported
    let oneway = cursor.byte()? & 1 == 1;
    let request_id = cursor.byte()?;
    let (service, methods) = SERVICES[usize::from(cursor.byte()?) % SERVICES.len()];
    let method = methods[usize::from(cursor.byte()?) % methods.len()];
    let timeout_ms = u32::from(cursor.byte()?) * 8;
    let mut metadata = Metadata::new();
    for _ in 0..cursor.byte()? % 4 {
        let key = String::from_utf8_lossy(cursor.short_bytes()?).into_owned();
        let value = String::from_utf8_lossy(cursor.short_bytes()?).into_owned();
        metadata.insert(key, value);
    }
    let payload_len = u16::from_be_bytes([cursor.byte()?, cursor.byte()?]);
    let payload = cursor.bytes(usize::from(payload_len))?;
    let mut body = BytesMut::new();
    encode_request_prefix(&mut body, service, method, timeout_ms, &metadata)
        .expect("short fields fit their length prefixes");
    body.extend_from_slice(payload);
    let kind = if oneway {
        MessageKind::OnewayRequest
    } else {
        MessageKind::Request
    };
    Some(frame(serializer, kind, 0, request_id, &body))
}

fn any_frame(cursor: &mut Cursor<'_>) -> Option<Vec<u8>> {
    let serializer = cursor.byte()?;
    let kind = MessageKind::from_u8(cursor.byte()?);
    let status = cursor.byte()?;
    let request_id = cursor.byte()?;
    let body = cursor.short_bytes()?;
    Some(frame(serializer, kind, status, request_id, body))
}

fn unfinished_frame(cursor: &mut Cursor<'_>) -> Option<Vec<u8>> {
    let serializer = cursor.byte()?;
    let request_id = cursor.byte()?;
    let len = cursor.bytes(4)?;
    let mut header = BytesMut::new();
    FrameHeader {
        serializer,
        kind: MessageKind::Request,
        status: 0,
        request_id: u64::from(request_id),
        body_len: u32::from_be_bytes(len.try_into().ok()?),
    }
    .encode_into(&mut header);
    Some(header.to_vec())
}

fn frame(serializer: u8, kind: MessageKind, status: u8, request_id: u8, body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::with_capacity(courier::protocol::HEADER_LEN + body.len());
    FrameHeader {
        serializer,
        kind,
        status,
        request_id: u64::from(request_id),
        body_len: u32::try_from(body.len()).expect("bodies here are small"),
    }
    .encode_into(&mut buf);
    buf.extend_from_slice(body);
    buf.to_vec()
}

/// `hello.Greeter`, without state: nothing carries over between inputs.
struct FuzzGreeter;

impl hello::greeter::Greeter for FuzzGreeter {
    async fn say_hello(
        &self,
        _ctx: CallContext,
        name: String,
    ) -> Result<String, RpcError<hello::greeter::SayHelloError>> {
        if name.is_empty() {
            return Err(hello::EmptyName {
                hint: "pass a name".into(),
            }
            .into());
        }
        Ok(format!("Hello, {name}!"))
    }

    async fn sleep(&self, _ctx: CallContext, ms: u32) -> Result<u32, RpcError> {
        // Long enough to be in flight when the next frames arrive, short
        // enough to keep inputs fast.
        tokio::time::sleep(Duration::from_millis(u64::from(ms % 4))).await;
        Ok(ms)
    }

    async fn notify(&self, _ctx: CallContext, _event: String) {}

    async fn count(
        &self,
        _ctx: CallContext,
        n: u32,
        _interval_ms: u32,
        mut items: courier::server::ItemSender<u32>,
    ) -> Result<(), RpcError<hello::greeter::CountError>> {
        // A few items at most: inputs stay fast.
        for i in 1..=n.min(4) {
            items.send(i).await?;
        }
        Ok(())
    }
}

/// `shop.OrderBook`, without state: answers are computed from the args.
struct FuzzOrderBook;

impl shop::order_book::OrderBook for FuzzOrderBook {
    async fn place(
        &self,
        _ctx: CallContext,
        items: Vec<shop::LineItem>,
        note: Option<String>,
        labels: HashMap<String, String>,
    ) -> Result<u64, RpcError> {
        let count = items.len() + labels.len() + note.map_or(0, |n| n.len());
        Ok(u64::try_from(count).unwrap_or(u64::MAX))
    }

    async fn get(
        &self,
        _ctx: CallContext,
        id: u64,
    ) -> Result<shop::Order, RpcError<shop::order_book::GetError>> {
        if id % 2 == 1 {
            return Err(shop::OrderNotFound { id }.into());
        }
        Ok(shop::Order {
            id,
            items: vec![shop::LineItem {
                sku: "sku".into(),
                quantity: 2,
                unit_price_cents: id,
            }],
            note: Some("note".into()),
            receipt: bytes::Bytes::from_static(&[1, 2, 3]),
            ..shop::Order::default()
        })
    }

    async fn set_status(
        &self,
        _ctx: CallContext,
        id: u64,
        _status: shop::OrderStatus,
    ) -> Result<(), RpcError<shop::order_book::SetStatusError>> {
        if id == 0 {
            return Err(shop::OrderNotFound { id }.into());
        }
        Ok(())
    }

    async fn by_status(
        &self,
        _ctx: CallContext,
        status: shop::OrderStatus,
    ) -> Result<Vec<shop::Order>, RpcError> {
        Ok(vec![shop::Order {
            status,
            ..shop::Order::default()
        }])
    }
}
