//! A small hand-written service and helpers shared by the integration
//! tests: real sockets on 127.0.0.1:0, no mocks.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use courier::client::{CallOptions, Channel, MethodDescriptor};
use courier::protocol::{
    Frame, FrameBuilder, FrameDecoder, FrameHeader, MessageKind, encode_request_prefix,
};
use courier::server::{
    IncomingCall, ItemSender, Server, ServerBuilder, ServerHandle, ServiceHandler,
};
use courier::{CallContext, Metadata, RpcError, Status, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The wire name of the test service.
pub const SERVICE: &str = "test.Echo";

/// How long any single wait in a test may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The args of every test method.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct EchoArgs {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub text: String,
    /// How long `echo` waits before answering.
    #[prost(uint64, tag = "2")]
    #[serde(default)]
    pub delay_ms: u64,
    /// How many bytes `big` answers.
    #[prost(uint64, tag = "3")]
    #[serde(default)]
    pub size: u64,
    /// Bytes carried in (`big` checks their length).
    #[prost(bytes = "bytes", tag = "4")]
    #[serde(default, with = "courier::codegen::json::bytes_field")]
    pub data: Bytes,
}

/// The result message of `echo`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct EchoReply {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub value: String,
}

/// The result message of `big`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct BytesReply {
    #[prost(bytes = "bytes", tag = "1")]
    #[serde(default, with = "courier::codegen::json::bytes_field")]
    pub value: Bytes,
}

/// The result message of `echo_metadata`: keys and values in order.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct MetadataReply {
    #[prost(string, repeated, tag = "1")]
    #[serde(default)]
    pub value: Vec<String>,
}

/// A declared error type.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct NotFound {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub key: String,
}

/// The error message of `fail_declared`: one field per declared error.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct EchoError {
    #[prost(message, optional, tag = "1")]
    #[serde(default)]
    pub not_found: Option<NotFound>,
}

/// The empty message (`void` results).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Empty {}

/// What the service has seen; shared with the test.
#[derive(Default)]
pub struct Observed {
    /// Handlers of `slow` and `gated` that started.
    pub started: AtomicUsize,
    /// Handlers of `slow` and `gated` that were dropped before finishing.
    pub stopped: AtomicUsize,
    /// Handlers of `big` that ran.
    pub big: AtomicUsize,
    /// Texts received by the one-way `notify`.
    pub notes: Mutex<Vec<String>>,
    /// Releases the `gated` handlers once `true`.
    pub gate: watch::Sender<bool>,
    /// Set by `raise_flag`; `block_until_flag` blocks its thread until then.
    pub flag: AtomicBool,
    /// Items the streaming methods sent.
    pub sent_items: AtomicUsize,
    /// The metadata of the last `whoami`.
    pub last_metadata: Mutex<Option<Metadata>>,
    /// What `relay` saw downstream: `whoami`'s answer (whether the
    /// downstream handler had a deadline), then `slow`'s outcome.
    pub relayed: Mutex<Vec<Result<EchoReply, StatusCode>>>,
}

impl Observed {
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    pub fn stopped(&self) -> usize {
        self.stopped.load(Ordering::SeqCst)
    }

    pub fn big(&self) -> usize {
        self.big.load(Ordering::SeqCst)
    }

    /// Lets every `gated` handler, running or future, finish.
    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().expect("not poisoned").clone()
    }

    pub fn relayed(&self) -> Vec<Result<EchoReply, StatusCode>> {
        self.relayed.lock().expect("not poisoned").clone()
    }
}

/// Counts a handler as stopped if dropped before `finish`.
struct StopDetector {
    observed: Arc<Observed>,
    finished: bool,
}

impl StopDetector {
    fn new(observed: &Arc<Observed>) -> StopDetector {
        observed.started.fetch_add(1, Ordering::SeqCst);
        StopDetector {
            observed: Arc::clone(observed),
            finished: false,
        }
    }
}

impl Drop for StopDetector {
    fn drop(&mut self) {
        if !self.finished {
            self.observed.stopped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The hand-written service: what a generated adapter would look like.
#[derive(Clone, Default)]
pub struct EchoService {
    pub observed: Arc<Observed>,
    /// Where `relay` calls `slow` (another server), for deadline cascading.
    pub downstream: Option<Channel>,
}

impl ServiceHandler for EchoService {
    fn wire_name(&self) -> &'static str {
        SERVICE
    }

    fn dispatch(&self, call: IncomingCall) {
        let observed = Arc::clone(&self.observed);
        match call.method() {
            "echo" => call.serve_unary(move |_ctx: CallContext, args: EchoArgs| async move {
                if args.delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(args.delay_ms)).await;
                }
                Ok::<_, RpcError>(EchoReply { value: args.text })
            }),
            "fail_declared" => call.serve_unary(move |_ctx, args: EchoArgs| async move {
                Err::<EchoReply, _>(RpcError::Declared(EchoError {
                    not_found: Some(NotFound { key: args.text }),
                }))
            }),
            "fail_status" => call.serve_unary(move |_ctx, args: EchoArgs| async move {
                Err::<EchoReply, RpcError>(RpcError::Status(Status::new(
                    StatusCode::PermissionDenied,
                    format!("no access to {}", args.text),
                )))
            }),
            "panic" => call.serve_unary(move |_ctx, args: EchoArgs| async move {
                if args.text == "panic" {
                    panic!("the handler panicked on purpose");
                }
                Ok::<_, RpcError>(EchoReply { value: args.text })
            }),
            // Never finishes by itself.
            // Holds its context (metadata included) and args until it is
            // stopped, as a generated handler (an `async fn`) does.
            "slow" => call.serve_unary(move |ctx: CallContext, args: EchoArgs| async move {
                let _held = (ctx, args);
                let _detector = StopDetector::new(&observed);
                std::future::pending::<()>().await;
                Ok::<_, RpcError>(EchoReply::default())
            }),
            // Finishes when the test opens the gate.
            "gated" => call.serve_unary(move |_ctx, args: EchoArgs| async move {
                let mut detector = StopDetector::new(&observed);
                let _ = observed.gate.subscribe().wait_for(|open| *open).await;
                detector.finished = true;
                Ok::<_, RpcError>(EchoReply { value: args.text })
            }),
            // Blocks its thread (no `.await`) until `raise_flag` ran, for
            // at most 5 s; answers whether it saw the flag.
            "block_until_flag" => call.serve_unary(move |_ctx, _args: EchoArgs| async move {
                let give_up = std::time::Instant::now() + Duration::from_secs(5);
                while !observed.flag.load(Ordering::SeqCst) && std::time::Instant::now() < give_up {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let value = if observed.flag.load(Ordering::SeqCst) {
                    "saw the flag"
                } else {
                    "gave up"
                };
                Ok::<_, RpcError>(EchoReply {
                    value: value.to_owned(),
                })
            }),
            "raise_flag" => call.serve_unary(move |_ctx, _args: EchoArgs| async move {
                observed.flag.store(true, Ordering::SeqCst);
                Ok::<_, RpcError>(EchoReply::default())
            }),
            "whoami" => call.serve_unary(move |ctx: CallContext, _args: EchoArgs| async move {
                let value = format!(
                    "deadline={} peer_is_loopback={}",
                    ctx.deadline().is_some(),
                    ctx.peer().ip().is_loopback()
                );
                *observed.last_metadata.lock().expect("not poisoned") =
                    Some(ctx.metadata().clone());
                Ok::<_, RpcError>(EchoReply { value })
            }),
            "notify" => call.serve_oneway(move |_ctx, args: EchoArgs| async move {
                observed.notes.lock().expect("not poisoned").push(args.text);
            }),
            // A one-way method that never finishes by itself.
            "slow_notify" => call.serve_oneway(move |_ctx, _args: EchoArgs| async move {
                let _detector = StopDetector::new(&observed);
                std::future::pending::<()>().await;
            }),
            "peer" => call.serve_unary(move |ctx: CallContext, _args: Empty| async move {
                Ok::<_, RpcError>(EchoReply {
                    value: ctx.peer().to_string(),
                })
            }),
            // Empty in, empty out.
            "empty" => call
                .serve_unary(move |_ctx, _args: Empty| async move { Ok::<_, RpcError>(Empty {}) }),
            // Answers `size` bytes, after checking that as many bytes came
            // in as `text` says.
            "big" => call.serve_unary(move |_ctx, args: EchoArgs| async move {
                observed.big.fetch_add(1, Ordering::SeqCst);
                let size = usize::try_from(args.size).expect("small");
                let value = Bytes::from(vec![b'o'; size]);
                if args.text != args.data.len().to_string() {
                    return Err(RpcError::Status(Status::bad_request(format!(
                        "expected {} bytes in, got {}",
                        args.text,
                        args.data.len()
                    ))));
                }
                Ok::<_, RpcError>(BytesReply { value })
            }),
            "echo_metadata" => call.serve_unary(move |ctx: CallContext, _args: Empty| async move {
                let value = ctx
                    .metadata()
                    .iter()
                    .flat_map(|(k, v)| [k.to_owned(), v.to_owned()])
                    .collect();
                Ok::<_, RpcError>(MetadataReply { value })
            }),
            // Fails with the status code `delay_ms` and the message `text`.
            "status" => call.serve_unary(move |_ctx, args: EchoArgs| async move {
                let code = StatusCode::from_u8(u8::try_from(args.delay_ms).expect("a u8"));
                Err::<EchoReply, RpcError>(RpcError::Status(Status::new(code, args.text)))
            }),
            // Sends back `size` metadata entries (`k0` = `v0`, ...) and
            // answers as `text` says: `ok` (a reply), `declared`, `status`
            // (15, not found), `slow` (never: its deadline answers),
            // `twice` (sets `first` = `1` first, then the entries), `late`
            // (a copy of its context sets them once the gate opens, after
            // the answer: what that gave goes into `notes`). When setting
            // fails, the reply is the error's text.
            "response_metadata" => {
                call.serve_unary(move |ctx: CallContext, args: EchoArgs| async move {
                    let entries = (0..args.size)
                        .map(|i| (format!("k{i}"), format!("v{i}")))
                        .collect::<Metadata>();
                    if args.text == "late" {
                        let gate = observed.gate.subscribe();
                        tokio::spawn(async move {
                            let mut gate = gate;
                            let _ = gate.wait_for(|open| *open).await;
                            let outcome = ctx.set_response_metadata(entries);
                            observed
                                .notes
                                .lock()
                                .expect("not poisoned")
                                .push(format!("{outcome:?}"));
                        });
                        return Ok(EchoReply {
                            value: "late".into(),
                        });
                    }
                    if args.text == "twice" {
                        let first = std::iter::once(("first".to_owned(), "1".to_owned())).collect();
                        ctx.set_response_metadata(first)?;
                    }
                    if let Err(e) = ctx.set_response_metadata(entries) {
                        return Ok(EchoReply {
                            value: e.to_string(),
                        });
                    }
                    match args.text.as_str() {
                        "declared" => Err(RpcError::Declared(EchoError {
                            not_found: Some(NotFound { key: "k".into() }),
                        })),
                        "status" => {
                            Err(RpcError::Status(Status::new(StatusCode::NotFound, "no k")))
                        }
                        "slow" => {
                            let _held = ctx;
                            std::future::pending::<()>().await;
                            Ok(EchoReply::default())
                        }
                        _ => Ok(EchoReply { value: args.text }),
                    }
                })
            }
            // A one-way method that tries to send response metadata: what
            // that gave goes into `notes`.
            "notify_response_metadata" => {
                call.serve_oneway(move |ctx, _args: EchoArgs| async move {
                    let entries = std::iter::once(("k".to_owned(), "v".to_owned())).collect();
                    let outcome = ctx.set_response_metadata(entries);
                    observed
                        .notes
                        .lock()
                        .expect("not poisoned")
                        .push(format!("{outcome:?}"));
                })
            }
            // Fails with the status code `delay_ms` (12-21) and the message
            // `text`, built as a handler would: with `Status`'s constructor.
            "refuse" => call.serve_unary(move |_ctx, args: EchoArgs| async move {
                let constructor: fn(String) -> Status = match args.delay_ms {
                    12 => Status::unauthenticated,
                    13 => Status::permission_denied,
                    14 => Status::invalid_argument,
                    15 => Status::not_found,
                    16 => Status::already_exists,
                    17 => Status::failed_precondition,
                    18 => Status::resource_exhausted,
                    19 => Status::unavailable,
                    20 => Status::unimplemented,
                    21 => Status::aborted,
                    other => panic!("no constructor for status {other}"),
                };
                Err::<EchoReply, RpcError>(constructor(args.text).into())
            }),
            // A server stream: the items 1..=`size` (as `u64`), one every
            // `delay_ms`, then as `text` says: `ok` (the end), `declared`,
            // `status` (15), `slow` (waits for ever after its items),
            // `metadata` (sends `served-by` = `stream` first). Counts its
            // items sent in `observed.sent_items`; a handler dropped before
            // its end counts in `stopped`.
            "count" => call.serve_server_stream(
                move |ctx: CallContext, args: EchoArgs, mut items: ItemSender<u64>| async move {
                    let mut detector = StopDetector::new(&observed);
                    if args.text == "metadata" {
                        let metadata =
                            std::iter::once(("served-by".to_owned(), "stream".to_owned()))
                                .collect();
                        ctx.set_response_metadata(metadata)?;
                    }
                    for n in 1..=args.size {
                        if args.delay_ms > 0 {
                            tokio::time::sleep(Duration::from_millis(args.delay_ms)).await;
                        }
                        items.send(n).await?;
                        observed.sent_items.fetch_add(1, Ordering::SeqCst);
                    }
                    let outcome = match args.text.as_str() {
                        "declared" => Err(RpcError::Declared(EchoError {
                            not_found: Some(NotFound {
                                key: "after".into(),
                            }),
                        })),
                        "status" => Err(RpcError::Status(Status::new(
                            StatusCode::NotFound,
                            "no more",
                        ))),
                        "slow" => {
                            std::future::pending::<()>().await;
                            Ok(())
                        }
                        _ => Ok(()),
                    };
                    detector.finished = true;
                    outcome
                },
            ),
            // A server stream of `size`-byte items, until the client goes.
            "blobs" => call.serve_server_stream(
                move |_ctx: CallContext, args: EchoArgs, mut items: ItemSender<Bytes>| async move {
                    let blob = Bytes::from(vec![b'b'; usize::try_from(args.size).expect("small")]);
                    loop {
                        items.send(blob.clone()).await?;
                        observed.sent_items.fetch_add(1, Ordering::SeqCst);
                        if false {
                            // The method declares no error.
                            return Ok::<(), RpcError>(());
                        }
                    }
                },
            ),
            // Answers `delay_ms` before its deadline.
            "until_deadline" => {
                call.serve_unary(move |ctx: CallContext, args: EchoArgs| async move {
                    let remaining = ctx.remaining().expect("a deadline");
                    let margin = Duration::from_millis(args.delay_ms);
                    tokio::time::sleep(remaining.saturating_sub(margin)).await;
                    Ok::<_, RpcError>(EchoReply { value: args.text })
                })
            }
            // Calls `whoami`, then `slow`, on the downstream server with no
            // timeout of their own: only the inherited deadline (or a cancel)
            // stops them.
            "relay" => {
                let downstream = self.downstream.clone();
                call.serve_unary(move |_ctx: CallContext, _args: EchoArgs| async move {
                    let downstream = downstream.expect("a downstream channel");
                    let record = |result: &Result<EchoReply, RpcError>| {
                        observed
                            .relayed
                            .lock()
                            .expect("not poisoned")
                            .push(result.clone().map_err(|e| e.code()));
                    };
                    let result = downstream
                        .unary(&WHOAMI, &args(""), &CallOptions::default())
                        .await;
                    record(&result);
                    let result = downstream
                        .unary(&SLOW, &args(""), &CallOptions::default())
                        .await;
                    record(&result);
                    result
                })
            }
            _ => call.reject_unknown_method(),
        }
    }
}

/// A method descriptor for the test service.
macro_rules! method {
    ($name:ident, $wire:literal) => {
        pub static $name: MethodDescriptor = MethodDescriptor {
            service: SERVICE,
            method: $wire,
            idempotent: false,
            default_timeout: None,
        };
    };
}

method!(ECHO, "echo");
method!(FAIL_DECLARED, "fail_declared");
method!(FAIL_STATUS, "fail_status");
method!(PANIC, "panic");
method!(SLOW, "slow");
method!(GATED, "gated");
method!(WHOAMI, "whoami");
method!(NOTIFY, "notify");
method!(SLOW_NOTIFY, "slow_notify");
method!(NO_SUCH_METHOD, "no_such_method");
method!(EMPTY, "empty");
method!(BIG, "big");
method!(ECHO_METADATA, "echo_metadata");
method!(STATUS, "status");
method!(REFUSE, "refuse");
method!(UNTIL_DEADLINE, "until_deadline");
method!(RELAY, "relay");
method!(PEER, "peer");
method!(RESPONSE_METADATA, "response_metadata");
method!(NOTIFY_RESPONSE_METADATA, "notify_response_metadata");
method!(COUNT, "count");
method!(BLOBS, "blobs");

/// A method of a service the server does not have.
pub static UNKNOWN_SERVICE: MethodDescriptor = MethodDescriptor {
    service: "test.Nobody",
    method: "echo",
    idempotent: false,
    default_timeout: None,
};

/// A running test server and the service's observations.
pub struct TestServer {
    pub handle: ServerHandle,
    pub observed: Arc<Observed>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|builder| builder).await
    }

    pub async fn start_with(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
        TestServer::start_service(EchoService::default(), configure).await
    }

    pub async fn start_service(
        service: EchoService,
        configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> TestServer {
        let observed = Arc::clone(&service.observed);
        let handle = configure(Server::builder().add_service(service))
            .bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        TestServer { handle, observed }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.handle.local_addr()
    }

    pub async fn channel(&self) -> Channel {
        Channel::connect(self.addr()).await.expect("connect")
    }
}

pub fn args(text: &str) -> EchoArgs {
    EchoArgs {
        text: text.to_owned(),
        ..EchoArgs::default()
    }
}

/// The statuses `refuse` answers with `Status`'s constructors, each with
/// its byte on the wire (PROTOCOL.md's table): what a caller must get back.
pub const HANDLER_STATUSES: [(u8, StatusCode); 10] = [
    (12, StatusCode::Unauthenticated),
    (13, StatusCode::PermissionDenied),
    (14, StatusCode::InvalidArgument),
    (15, StatusCode::NotFound),
    (16, StatusCode::AlreadyExists),
    (17, StatusCode::FailedPrecondition),
    (18, StatusCode::ResourceExhausted),
    (19, StatusCode::Unavailable),
    (20, StatusCode::Unimplemented),
    (21, StatusCode::Aborted),
];

/// `refuse` args for status `byte`, with a message of its own.
pub fn refused(byte: u8) -> EchoArgs {
    EchoArgs {
        text: refusal(byte),
        delay_ms: u64::from(byte),
        ..EchoArgs::default()
    }
}

/// The message of `refused(byte)`'s answer (not ASCII: it must come back
/// byte for byte).
pub fn refusal(byte: u8) -> String {
    format!("refused with {byte} ☺")
}

/// `echo` args that make the handler wait `delay_ms` first.
pub fn delayed(text: &str, delay_ms: u64) -> EchoArgs {
    EchoArgs {
        text: text.to_owned(),
        delay_ms,
        ..EchoArgs::default()
    }
}

pub fn options() -> CallOptions {
    CallOptions::default()
}

pub fn with_timeout(timeout: Duration) -> CallOptions {
    CallOptions {
        timeout: Some(timeout),
        ..CallOptions::default()
    }
}

/// Polls `condition` every few milliseconds until it holds; fails the
/// test after [`PATIENCE`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Bounds a future by [`PATIENCE`].
pub async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The status code of a failed call.
pub fn code<T: std::fmt::Debug, E: std::fmt::Debug>(result: &Result<T, RpcError<E>>) -> StatusCode {
    match result {
        Err(error) => error.code(),
        Ok(value) => panic!("expected an error, got {value:?}"),
    }
}

/// A request frame built by hand, for tests that speak the wire directly.
pub struct RawRequest<'a> {
    pub version: u8,
    pub serializer: u8,
    pub kind: MessageKind,
    pub request_id: u64,
    pub service: &'a str,
    pub method: &'a str,
    pub timeout_ms: u32,
    pub metadata: Metadata,
    pub payload: Vec<u8>,
}

impl RawRequest<'_> {
    /// A protobuf `echo` request.
    pub fn echo(request_id: u64, args: &EchoArgs) -> RawRequest<'static> {
        RawRequest {
            version: 1,
            serializer: 1,
            kind: MessageKind::Request,
            request_id,
            service: SERVICE,
            method: "echo",
            timeout_ms: 0,
            metadata: Metadata::new(),
            payload: prost::Message::encode_to_vec(args),
        }
    }

    pub fn encode(&self) -> Bytes {
        let mut builder = FrameBuilder::new(
            FrameHeader {
                serializer: self.serializer,
                kind: self.kind,
                status: 0,
                request_id: self.request_id,
                body_len: 0,
            },
            64,
        );
        encode_request_prefix(
            builder.body_mut(),
            self.service,
            self.method,
            self.timeout_ms,
            &self.metadata,
        )
        .expect("short strings");
        builder.body_mut().extend_from_slice(&self.payload);
        let mut frame = BytesMut::from(&builder.finish(u32::MAX).expect("fits")[..]);
        frame[2] = self.version;
        frame.freeze()
    }
}

/// A client that speaks raw bytes.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl RawClient {
    pub async fn connect(addr: std::net::SocketAddr) -> RawClient {
        RawClient {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(u32::MAX),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next frame, or `None` once the server closed the connection.
    pub async fn next_frame(&mut self) -> Option<Frame> {
        within("a frame from the server", async {
            loop {
                if let Some(frame) = self
                    .decoder
                    .decode(&mut self.buf)
                    .expect("the server's frames are valid")
                {
                    return Some(frame);
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
    }

    /// Shuts the sending side (the peer is done sending).
    pub async fn shutdown(&mut self) {
        self.stream.shutdown().await.expect("shutdown");
    }

    /// Reads until the server closes the connection; fails if a frame comes.
    pub async fn expect_closed(&mut self) {
        if let Some(frame) = self.next_frame().await {
            panic!("expected the connection to close, got {frame:?}");
        }
    }
}

/// The frames a scripted server answers a request id with.
pub type Script = fn(u64) -> Vec<Bytes>;

/// A server on a real socket that answers each request with
/// `frames(request_id)`, all in one write (so they arrive in one read:
/// nothing the client sends meanwhile comes between them), for tests of
/// what a client does with a server that breaks the rules.
pub async fn scripted_server(frames: Script) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut decoder = FrameDecoder::default();
                let mut buf = BytesMut::new();
                loop {
                    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
                        if frame.header.kind == MessageKind::Request {
                            let all: Vec<u8> = frames(frame.header.request_id).concat();
                            if socket.write_all(&all).await.is_err() {
                                return;
                            }
                        }
                    }
                    match socket.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    addr
}

/// A frame of `kind` for `request_id` with `body`, status 0, protobuf.
pub fn scripted_frame(kind: MessageKind, request_id: u64, body: &[u8]) -> Bytes {
    let mut builder = FrameBuilder::new(
        FrameHeader {
            serializer: 1,
            kind,
            status: 0,
            request_id,
            body_len: 0,
        },
        body.len(),
    );
    builder.body_mut().extend_from_slice(body);
    builder.finish(u32::MAX).expect("small")
}
