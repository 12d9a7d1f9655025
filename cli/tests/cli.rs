//! The `courier` binary against a real server (the demo's `hello.Greeter`
//! and `shop.OrderBook`, with reflection, on 127.0.0.1:0) and a real
//! ZooKeeper: every serializer, declared errors, timeouts, bad input
//! (nothing sent), unknown methods, statuses and their exit codes,
//! discovery through `zk://`, `list` with Courier and Curator instances,
//! `describe`, `--repeat`, completions.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use courier::registry::{Registry, ServiceInstance, ZooKeeperOptions, ZooKeeperRegistry};
use courier::server::{Server, ServerHandle, ServerInterceptor};
use courier::{BoxFuture, CallContext, RpcError, Status};
use courier_test_support::zookeeper::ZooKeeperServer;
use idl_examples::greeter::HelloGreeter;
use idl_examples::hello::greeter::{CountError, Greeter, GreeterServer, SayHelloError};
use idl_examples::order_book::MemoryOrderBook;
use idl_examples::shop::order_book::OrderBookServer;
use serde_json::{Value, json};

const COURIER: &str = env!("CARGO_BIN_EXE_courier");
const HELLO_IDL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../idl-examples/idl/hello.rpc");
const SHOP_IDL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../idl-examples/idl/shop.rpc");
/// The longest one run of the binary may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// Counts the calls the server sees.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl ServerInterceptor for Counter {
    fn intercept<'a>(&'a self, _call: &'a mut CallContext) -> BoxFuture<'a, Result<(), Status>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

/// The demo's services on a runtime of their own.
struct Demo {
    runtime: tokio::runtime::Runtime,
    server: Option<ServerHandle>,
    calls: Counter,
    addr: String,
}

impl Demo {
    fn start() -> Demo {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let calls = Counter::default();
        let server = runtime
            .block_on(
                Server::builder()
                    .add_service(GreeterServer::new(HelloGreeter::default()))
                    .add_service(OrderBookServer::new(MemoryOrderBook::default()))
                    .enable_reflection()
                    .add_interceptor(calls.clone())
                    .bind("127.0.0.1:0"),
            )
            .expect("the server binds");
        let addr = server.local_addr().to_string();
        Demo {
            runtime,
            server: Some(server),
            calls,
            addr,
        }
    }

    fn calls(&self) -> usize {
        self.calls.0.load(Ordering::SeqCst)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Runs `courier ARGS` to its end, within [`PATIENCE`].
/// The demo's Greeter alone: no reflection, no health.
fn greeter_without_reflection(runtime: &tokio::runtime::Runtime) -> ServerHandle {
    runtime
        .block_on(
            Server::builder()
                .add_service(GreeterServer::new(HelloGreeter::default()))
                .bind("127.0.0.1:0"),
        )
        .expect("bind")
}

fn courier(args: &[&str]) -> Run {
    courier_with_stdin(args, None)
}

fn courier_with_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(COURIER)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("courier starts");
    if let Some(text) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).expect("stdin written");
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("courier {args:?} did not finish within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("output");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn calls_in_every_serializer() {
    let demo = Demo::start();
    let addr = demo.addr.as_str();
    let json = courier(&["call", addr, "hello.Greeter/say_hello", r#"{"name":"Bob"}"#]);
    assert_eq!(
        (json.code, json.stdout.as_str()),
        (0, "\"Hello, Bob!\"\n"),
        "{json:?}"
    );
    // The greeter's response metadata, on stderr (stdout keeps the result).
    assert_eq!(json.stderr, "< greetings: 1\n", "{json:?}");
    for serializer in ["json", "protobuf", "postcard", "msgpack"] {
        // With the schema from --idl, and from the server's reflection.
        for idl in [Some(HELLO_IDL), None] {
            let mut args = vec![
                "call",
                "--serializer",
                serializer,
                addr,
                "hello.Greeter/say_hello",
                r#"{"name":"Bob"}"#,
            ];
            if let Some(idl) = idl {
                args.extend(["--idl", idl]);
            }
            let run = courier(&args);
            assert_eq!(
                (run.code, run.json()),
                (0, json!("Hello, Bob!")),
                "{serializer} {idl:?}: {run:?}"
            );
        }
        // Structs, lists, maps, optional, enums and bytes both ways.
        let placed = courier(&[
            "call",
            "-s",
            serializer,
            "--idl",
            SHOP_IDL,
            addr,
            "shop.OrderBook/place",
            r#"{"items":[{"sku":"BOOK","quantity":2,"unit_price_cents":1999}],"note":"gift","labels":{"via":"cli"}}"#,
        ]);
        assert_eq!(placed.code, 0, "{placed:?}");
        let id = placed.json();
        let got = courier(&[
            "call",
            "-s",
            serializer,
            "--idl",
            SHOP_IDL,
            addr,
            "shop.OrderBook/get",
            &json!({"id": id}).to_string(),
        ]);
        assert_eq!(got.code, 0, "{got:?}");
        assert_eq!(
            got.json(),
            json!({
                "id": id, "items": [{"sku": "BOOK", "quantity": 2, "unit_price_cents": 1999}],
                "note": "gift", "labels": {"via": "cli"}, "status": "PENDING", "receipt": "", "parent": null
            }),
            "{serializer}"
        );
    }
    // Arguments from stdin.
    let piped = courier_with_stdin(
        &["call", addr, "hello.Greeter/say_hello"],
        Some(r#"{"name":"Ann"}"#),
    );
    assert_eq!(
        (piped.code, piped.json()),
        (0, json!("Hello, Ann!")),
        "{piped:?}"
    );
    // A void method prints nothing.
    let void = courier(&[
        "call",
        "-s",
        "protobuf",
        addr,
        "shop.OrderBook/set_status",
        r#"{"id":1,"status":"PAID"}"#,
    ]);
    assert_eq!((void.code, void.stdout.as_str()), (0, ""), "{void:?}");
}

#[test]
fn a_server_stream_prints_its_items_as_json_lines_then_its_end() {
    let demo = Demo::start();
    for serializer in ["json", "protobuf", "postcard", "msgpack"] {
        // With the schema from the server's reflection, and from --idl.
        for idl in [None, Some(HELLO_IDL)] {
            let mut args = vec!["call", "-s", serializer];
            if let Some(idl) = idl {
                args.extend(["--idl", idl]);
            }
            args.extend([
                demo.addr.as_str(),
                "hello.Greeter/count",
                r#"{"n":3,"interval_ms":1}"#,
            ]);
            let run = courier(&args);
            assert_eq!(
                (run.code, run.stdout.as_str()),
                (0, "1\n2\n3\n"),
                "{serializer} {idl:?}: {run:?}"
            );
        }
    }
    // Past 100 it sends 100 items, then ends with its declared error.
    let run = courier(&[
        "call",
        &demo.addr,
        "hello.Greeter/count",
        r#"{"n":101,"interval_ms":0}"#,
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 101, "{run:?}");
    let expected: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    assert_eq!(lines[..100], expected);
    assert_eq!(lines[100], r#"{"TooMany":{"max":100}}"#);
    assert!(
        run.stderr
            .contains("raised the declared error TooMany after 100 items"),
        "{run:?}"
    );
    // --repeat measures unary calls only.
    let run = courier(&[
        "call",
        "--repeat",
        "3",
        &demo.addr,
        "hello.Greeter/count",
        r#"{"n":1}"#,
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("server-streaming method"), "{run:?}");
}

#[test]
fn a_declared_error_prints_its_type_and_exits_1() {
    let demo = Demo::start();
    for serializer in ["json", "protobuf", "postcard", "msgpack"] {
        let run = courier(&[
            "call",
            "-s",
            serializer,
            &demo.addr,
            "hello.Greeter/say_hello",
            r#"{"name":""}"#,
        ]);
        assert_eq!(run.code, 1, "{serializer}: {run:?}");
        assert_eq!(
            run.json(),
            json!({"EmptyName": {"hint": "pass a non-empty name, e.g. \"Bob\""}}),
            "{serializer}"
        );
        assert!(
            run.stderr.contains("raised the declared error EmptyName"),
            "{run:?}"
        );
    }
}

#[test]
fn a_timeout_exits_4() {
    let demo = Demo::start();
    let started = Instant::now();
    let run = courier(&[
        "call",
        "--timeout",
        "100ms",
        &demo.addr,
        "hello.Greeter/sleep",
        r#"{"ms":30000}"#,
    ]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains("status 6 (deadline exceeded)"),
        "{run:?}"
    );
    assert!(started.elapsed() < PATIENCE);
}

#[test]
fn oneway_without_idl_learns_it_from_reflection() {
    let demo = Demo::start();
    let before = demo.calls();
    let run = courier(&[
        "call",
        &demo.addr,
        "hello.Greeter/notify",
        r#"{"event":"started"}"#,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("one-way"), "{run:?}");
    // The reflection call, then the oneway call (which may land a moment
    // after the client is done).
    let deadline = Instant::now() + PATIENCE;
    while demo.calls() < before + 2 {
        assert!(Instant::now() < deadline, "the notify call never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn oneway_without_idl_or_reflection_hints_at_oneway() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = greeter_without_reflection(&runtime);
    let addr = server.local_addr().to_string();
    // Without a schema the call expects an answer; this server gives one
    // (status 0, empty) once the oneway handler is done.
    let run = courier(&[
        "call",
        &addr,
        "hello.Greeter/notify",
        r#"{"event":"started"}"#,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    // A deadline without a schema may be a oneway method that never
    // answers (older servers): the hint says so.
    let late = courier(&[
        "call",
        "--timeout",
        "100ms",
        &addr,
        "hello.Greeter/sleep",
        r#"{"ms":30000}"#,
    ]);
    assert_eq!(late.code, 4, "{late:?}");
    assert!(late.stderr.contains("deadline exceeded"), "{late:?}");
    assert!(late.stderr.contains("oneway"), "{late:?}");
    assert!(late.stderr.contains("--idl"), "{late:?}");
    // With the schema it is sent as oneway.
    let with_idl = courier(&[
        "call",
        "--idl",
        HELLO_IDL,
        &addr,
        "hello.Greeter/notify",
        r#"{"event":"started"}"#,
    ]);
    assert_eq!(with_idl.code, 0, "{with_idl:?}");
    runtime.block_on(server.shutdown());
}

#[test]
fn an_answer_the_schema_cannot_read_exits_5() {
    let demo = Demo::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = dir.path().join("hello.rpc");
    std::fs::write(
        &wrong,
        "package hello;\nservice Greeter {\n  u64 say_hello(1: string name);\n}\n",
    )
    .expect("write");
    let wrong = wrong.display().to_string();
    for serializer in ["protobuf", "msgpack"] {
        let run = courier(&[
            "call",
            "-s",
            serializer,
            "--idl",
            &wrong,
            &demo.addr,
            "hello.Greeter/say_hello",
            r#"{"name":"Bob"}"#,
        ]);
        assert_eq!(run.code, 5, "{serializer}: {run:?}");
        assert!(run.stderr.contains("cannot be read"), "{run:?}");
        assert!(run.stderr.contains("does not match"), "{run:?}");
    }
}

#[test]
fn bad_json_is_refused_and_nothing_is_sent() {
    let demo = Demo::start();
    let before = demo.calls();
    let syntax = courier(&["call", &demo.addr, "hello.Greeter/say_hello", r#"{"name":"#]);
    assert_eq!(syntax.code, 2, "{syntax:?}");
    assert!(
        syntax.stderr.contains("not valid JSON (line 1, column 8)"),
        "{syntax:?}"
    );
    let not_object = courier(&["call", &demo.addr, "hello.Greeter/say_hello", "[1]"]);
    assert_eq!(not_object.code, 2, "{not_object:?}");
    let typo = courier(&[
        "call",
        "--idl",
        HELLO_IDL,
        "-s",
        "protobuf",
        &demo.addr,
        "hello.Greeter/say_hello",
        r#"{"nmae":"Bob"}"#,
    ]);
    assert_eq!(typo.code, 2, "{typo:?}");
    assert!(
        typo.stderr
            .contains("$.nmae: no such field; the fields are: name"),
        "{typo:?}"
    );
    assert!(
        typo.stderr.contains(r#"{"name":""}"#),
        "a template: {typo:?}"
    );
    let wrong_type = courier(&[
        "call",
        "--idl",
        SHOP_IDL,
        &demo.addr,
        "shop.OrderBook/place",
        r#"{"items":[{"quantity":-1}]}"#,
    ]);
    assert_eq!(wrong_type.code, 2, "{wrong_type:?}");
    assert!(
        wrong_type
            .stderr
            .contains("$.items[0].quantity: -1 is out of the range of u32"),
        "{wrong_type:?}"
    );
    // The template shows IDL defaults (`u32 quantity = 1`), not zeros.
    assert!(
        wrong_type
            .stderr
            .contains(r#"{"items":[{"quantity":1,"sku":"","unit_price_cents":0}]"#),
        "{wrong_type:?}"
    );
    let unknown = courier(&[
        "call",
        "--idl",
        HELLO_IDL,
        &demo.addr,
        "hello.Greeter/say_hi",
        "{}",
    ]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown.stderr.contains("it has: say_hello, sleep, notify"),
        "{unknown:?}"
    );
    // One good call after them (with --idl: no reflection call either):
    // the server saw exactly that one.
    let good = courier(&[
        "call",
        "--idl",
        HELLO_IDL,
        &demo.addr,
        "hello.Greeter/say_hello",
        r#"{"name":"Bob"}"#,
    ]);
    assert_eq!(good.code, 0, "{good:?}");
    assert_eq!(
        demo.calls(),
        before + 1,
        "the refused calls were never sent"
    );
}

#[test]
fn an_unknown_method_shows_status_3() {
    let demo = Demo::start();
    let run = courier(&["call", &demo.addr, "hello.Greeter/say_goodbye", "{}"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("status 3 (unknown method)"), "{run:?}");
    let service = courier(&["call", &demo.addr, "hello.Nobody/x", "{}"]);
    assert_eq!(service.code, 3, "{service:?}");
    assert!(
        service.stderr.contains("status 2 (unknown service)"),
        "{service:?}"
    );
}

/// A Greeter whose `say_hello` refuses as its name asks: `unavailable`
/// with status 19, `alternate` with 19 and 15 in turn, any other with 15.
#[derive(Default)]
struct Refusing {
    calls: AtomicUsize,
}

impl Greeter for Refusing {
    async fn say_hello(
        &self,
        _ctx: CallContext,
        name: String,
    ) -> Result<String, RpcError<SayHelloError>> {
        let turn = self.calls.fetch_add(1, Ordering::SeqCst);
        let status = match name.as_str() {
            "unavailable" => Status::unavailable("the greeting store is reconnecting"),
            "alternate" if turn % 2 == 0 => Status::unavailable("not now"),
            _ => Status::not_found(format!("no greeting for {name}")),
        };
        Err(status.into())
    }

    async fn sleep(&self, _ctx: CallContext, ms: u32) -> Result<u32, RpcError> {
        Ok(ms)
    }

    async fn notify(&self, _ctx: CallContext, _event: String) {}

    async fn count(
        &self,
        _ctx: CallContext,
        _n: u32,
        _interval_ms: u32,
        _items: courier::server::ItemSender<u32>,
    ) -> Result<(), RpcError<CountError>> {
        Err(Status::unimplemented("this greeter does not count").into())
    }
}

#[test]
fn a_call_the_server_did_not_run_exits_6_and_another_status_exits_3() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = runtime
        .block_on(
            Server::builder()
                .add_service(GreeterServer::new(Refusing::default()))
                .bind("127.0.0.1:0"),
        )
        .expect("bind");
    let addr = server.local_addr().to_string();
    let say_hello = |name: &str| {
        courier(&[
            "call",
            "--idl",
            HELLO_IDL,
            &addr,
            "hello.Greeter/say_hello",
            &json!({ "name": name }).to_string(),
        ])
    };
    let unavailable = say_hello("unavailable");
    assert_eq!(unavailable.code, 6, "{unavailable:?}");
    assert!(
        unavailable.stderr.contains(
            "error: hello.Greeter/say_hello: status 19 (unavailable): the greeting store is reconnecting\nhint: "
        ),
        "{unavailable:?}"
    );
    assert!(
        unavailable.stderr.contains("retry later"),
        "{unavailable:?}"
    );
    let missing = say_hello("Bob");
    assert_eq!(missing.code, 3, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("error: hello.Greeter/say_hello: status 15 (not found): no greeting for Bob\nhint: check the arguments"),
        "{missing:?}"
    );
    // --repeat: every call unavailable is exit 6; a definite status among
    // them is worse (exit 3).
    let repeat = |name: &str| {
        courier(&[
            "call",
            "--repeat",
            "4",
            &addr,
            "hello.Greeter/say_hello",
            &json!({ "name": name }).to_string(),
        ])
    };
    let all_unavailable = repeat("unavailable");
    assert_eq!(all_unavailable.code, 6, "{all_unavailable:?}");
    assert!(
        all_unavailable
            .stdout
            .contains("ok 0, declared error 0, unavailable 4, other status 0, transport/timeout 0"),
        "{all_unavailable:?}"
    );
    let mixed = repeat("alternate");
    assert_eq!(mixed.code, 3, "{mixed:?}");
    assert!(
        mixed
            .stdout
            .contains("ok 0, declared error 0, unavailable 2, other status 2, transport/timeout 0"),
        "{mixed:?}"
    );
    runtime.block_on(server.shutdown());
}

#[test]
fn transport_failures_and_usage_errors() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let refused = courier(&["call", &addr, "hello.Greeter/say_hello", "{}"]);
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(refused.stderr.contains("hint:"), "{refused:?}");
    for args in [
        vec!["call", "nohost", "hello.Greeter/say_hello"],
        vec!["call", "127.0.0.1:1", "say_hello"],
        vec!["call", "memory", "hello.Greeter/say_hello"],
        vec!["call", "-H", "novalue", "127.0.0.1:1", "a.B/c", "{}"],
        vec!["call", "--timeout", "soon", "127.0.0.1:1", "a.B/c", "{}"],
        vec!["call", "--serializer", "cbor", "127.0.0.1:1", "a.B/c", "{}"],
    ] {
        let run = courier(&args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
    }
}

/// A ZooKeeper registry on `zookeeper`, connected.
fn registry(runtime: &tokio::runtime::Runtime, zookeeper: &ZooKeeperServer) -> ZooKeeperRegistry {
    runtime
        .block_on(ZooKeeperRegistry::connect(ZooKeeperOptions::new(
            zookeeper.connect_string(),
        )))
        .expect("the registry connects")
}

#[test]
fn calls_through_zk_discovery() {
    let demo = Demo::start();
    let zookeeper = ZooKeeperServer::start();
    let registry = registry(&demo.runtime, &zookeeper);
    let addr = demo.addr.parse().expect("addr");
    for service in ["hello.Greeter", "shop.OrderBook"] {
        demo.runtime
            .block_on(registry.register(ServiceInstance::new(service, addr)))
            .expect("registered");
    }
    let url = format!("zk://{}/courier", zookeeper.connect_string());
    let json = courier(&["call", &url, "hello.Greeter/say_hello", r#"{"name":"Zoo"}"#]);
    assert_eq!(
        (json.code, json.json()),
        (0, json!("Hello, Zoo!")),
        "{json:?}"
    );
    let reflected = courier(&[
        "call",
        "-s",
        "postcard",
        &url,
        "hello.Greeter/say_hello",
        r#"{"name":"Zoo"}"#,
    ]);
    assert_eq!(
        (reflected.code, reflected.json()),
        (0, json!("Hello, Zoo!")),
        "{reflected:?}"
    );
    let missing = courier(&["call", &url, "hello.Nobody/x", "{}"]);
    assert_eq!(missing.code, 4, "{missing:?}");
    assert!(
        missing.stderr.contains("no instance of hello.Nobody"),
        "{missing:?}"
    );
    let described = courier(&["describe", &url, "shop.OrderBook"]);
    assert_eq!(described.code, 0, "{described:?}");
    assert!(
        described.stdout.contains("service OrderBook {"),
        "{described:?}"
    );
    demo.runtime.block_on(registry.close()).expect("closed");
}

/// The node data Curator 5.4.0's `JsonInstanceSerializer` writes for a
/// `ServiceInstance<Map<String,String>>` registered by a plain Curator
/// client (DISCOVERY.md): no Courier keys in the payload.
fn curator_node(service: &str, id: &str, port: u16, registered_ms: u64) -> String {
    format!(
        r#"{{"name":"{service}","id":"{id}","address":"127.0.0.1","port":{port},"sslPort":null,"payload":{{"@class":"java.util.LinkedHashMap","registeredBy":"curator"}},"registrationTimeUTC":{registered_ms},"serviceType":"DYNAMIC","uriSpec":{{"parts":[{{"value":"http://","variable":false}}]}}}}"#
    )
}

#[test]
fn list_shows_courier_and_curator_instances() {
    let demo = Demo::start();
    let zookeeper = ZooKeeperServer::start();
    let registry = registry(&demo.runtime, &zookeeper);
    let mut courier_instance =
        ServiceInstance::new("hello.Greeter", demo.addr.parse().expect("addr"));
    courier_instance.weight = 250;
    demo.runtime
        .block_on(registry.register(courier_instance.clone()))
        .expect("registered");
    // A Curator-registered instance, written as Curator writes it.
    let curator_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let registered_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
        - 90_000;
    // The session that owns the ephemeral node lives until the test ends.
    let _curator_session = demo.runtime.block_on(async {
        let client = zookeeper_client::Client::connect(&zookeeper.connect_string())
            .await
            .expect("a ZooKeeper client");
        let data = curator_node("hello.Greeter", curator_id, 9, registered_ms);
        let options =
            zookeeper_client::CreateMode::Ephemeral.with_acls(zookeeper_client::Acls::anyone_all());
        client
            .create(
                &format!("/courier/hello.Greeter/{curator_id}"),
                data.as_bytes(),
                &options,
            )
            .await
            .expect("the Curator node is written");
        client
    });
    let url = format!("zk://{}/courier", zookeeper.connect_string());
    let table = courier(&["list", &url]);
    assert_eq!(table.code, 0, "{table:?}");
    assert!(
        table.stdout.contains("hello.Greeter (2 instances)"),
        "{table:?}"
    );
    assert!(!table.stdout.contains("shop.OrderBook"), "{table:?}");
    assert!(table.stdout.contains(&courier_instance.id), "{table:?}");
    assert!(table.stdout.contains(curator_id), "{table:?}");
    assert!(
        table.stdout.contains("1m30s") || table.stdout.contains("1m31s"),
        "the Curator instance's age: {table:?}"
    );
    let listed = courier(&["list", "--json", &url, "hello.Greeter"]);
    assert_eq!(listed.code, 0, "{listed:?}");
    let services = listed.json();
    let instances = services[0]["instances"].as_array().expect("instances");
    let by_id = |id: &str| {
        instances
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .expect("listed")
    };
    let ours = by_id(&courier_instance.id);
    assert_eq!(ours["address"], json!("127.0.0.1"));
    assert_eq!(ours["port"], json!(courier_instance.port));
    assert_eq!(ours["weight"], json!("250"));
    assert_eq!(ours["tls"], json!(false));
    assert_eq!(ours["serializers"], json!("protobuf,json,postcard,msgpack"));
    assert_eq!(ours["protocol"], json!("courier/1"));
    assert!(ours["registrationTimeUTC"].as_u64().is_some(), "{ours}");
    let theirs = by_id(curator_id);
    assert_eq!(theirs["port"], json!(9));
    assert_eq!(theirs["weight"], json!("100"), "the default weight");
    assert_eq!(theirs["registrationTimeUTC"], json!(registered_ms));
    assert_eq!(theirs["unusable"], Value::Null);
    let empty = courier(&[
        "list",
        &format!("zk://{}/nothing-here", zookeeper.connect_string()),
    ]);
    assert_eq!(empty.code, 0, "{empty:?}");
    assert!(empty.stdout.contains("no services"), "{empty:?}");
    demo.runtime.block_on(registry.close()).expect("closed");
}

#[test]
fn describe_prints_the_sources_through_reflection() {
    let demo = Demo::start();
    let all = courier(&["describe", &demo.addr]);
    assert_eq!(all.code, 0, "{all:?}");
    for expected in [
        "// hello.rpc: hello.Greeter",
        "service Greeter {",
        "// shop.rpc: shop.OrderBook",
        "service Reflection {",
    ] {
        assert!(all.stdout.contains(expected), "{expected}: {all:?}");
    }
    let one = courier(&["describe", &demo.addr, "hello.Greeter"]);
    assert_eq!(one.code, 0, "{one:?}");
    assert!(
        one.stdout
            .starts_with("// hello.rpc: hello.Greeter\npackage hello;"),
        "{one:?}"
    );
    assert!(!one.stdout.contains("OrderBook"), "{one:?}");
    let unknown = courier(&["describe", &demo.addr, "hello.Nobody"]);
    assert_eq!(unknown.code, 3, "{unknown:?}");
}

#[test]
fn describe_without_reflection_says_how_to_fix_it() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = greeter_without_reflection(&runtime);
    let addr = server.local_addr().to_string();
    let run = courier(&["describe", &addr]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("does not offer reflection"), "{run:?}");
    assert!(run.stderr.contains("enable_reflection"), "{run:?}");
    let binary = courier(&[
        "call",
        "-s",
        "protobuf",
        &addr,
        "hello.Greeter/say_hello",
        "{}",
    ]);
    assert_eq!(binary.code, 3, "{binary:?}");
    assert!(binary.stderr.contains("pass --idl FILE"), "{binary:?}");
    runtime.block_on(server.shutdown());
}

#[test]
fn repeat_prints_a_latency_summary() {
    let demo = Demo::start();
    let before = demo.calls();
    let run = courier(&[
        "call",
        "--repeat",
        "200",
        "--concurrency",
        "8",
        "-s",
        "msgpack",
        "--idl",
        HELLO_IDL,
        &demo.addr,
        "hello.Greeter/say_hello",
        r#"{"name":"x"}"#,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("200 calls in "), "{run:?}");
    assert!(run.stdout.contains("ok 200, declared error 0"), "{run:?}");
    assert!(run.stdout.contains("latency p50 "), "{run:?}");
    assert!(run.stdout.contains(", p99 "), "{run:?}");
    assert_eq!(demo.calls(), before + 200);
    let declared = courier(&[
        "call",
        "--repeat",
        "5",
        &demo.addr,
        "hello.Greeter/say_hello",
        r#"{"name":""}"#,
    ]);
    assert_eq!(declared.code, 1, "{declared:?}");
    assert!(declared.stdout.contains("declared error 5"), "{declared:?}");
}

#[test]
fn help_and_completions() {
    let help = courier(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit codes:"), "{help:?}");
    assert!(help.stdout.contains("\n  6  unavailable: "), "{help:?}");
    assert!(
        help.stdout
            .contains("courier call 127.0.0.1:7070 hello.Greeter/say_hello"),
        "{help:?}"
    );
    let call_help = courier(&["call", "--help"]);
    assert!(call_help.stdout.contains("--concurrency"), "{call_help:?}");
    assert!(call_help.stdout.contains("--tls-ca"), "{call_help:?}");
    let bash = courier(&["completions", "bash"]);
    assert_eq!(bash.code, 0);
    assert!(bash.stdout.contains("_courier()"), "{bash:?}");
    let zsh = courier(&["completions", "zsh"]);
    assert!(zsh.stdout.contains("#compdef courier"), "{zsh:?}");
}

/// The jars the Curator interop program of `idl-examples/tests/java`
/// compiles and runs against (Debian's libcurator-discovery-java, installed
/// by `scripts/ensure-curator`).
const CURATOR_JARS: [&str; 10] = [
    "/usr/share/java/curator-x-discovery.jar",
    "/usr/share/java/curator-framework.jar",
    "/usr/share/java/curator-client.jar",
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/jackson-databind.jar",
    "/usr/share/java/jackson-core.jar",
    "/usr/share/java/jackson-annotations.jar",
    "/usr/share/java/guava.jar",
    "/usr/share/java/slf4j-api.jar",
];
const CURATOR_SOURCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../idl-examples/tests/java/CuratorInterop.java"
);

/// A Java process that registered an instance with Apache Curator's
/// `ServiceDiscovery`; killed on drop.
struct CuratorProvider {
    child: std::process::Child,
    id: String,
}

impl Drop for CuratorProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Compiles `CuratorInterop.java` and registers `service` at
/// 127.0.0.1:`port` with it.
fn curator_register(connect: &str, service: &str, port: u16) -> CuratorProvider {
    use std::io::BufRead;
    let missing: Vec<&str> = CURATOR_JARS
        .iter()
        .copied()
        .filter(|jar| !std::path::Path::new(jar).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "Apache Curator is not installed ({missing:?} missing): run scripts/ensure-curator"
    );
    let jars = CURATOR_JARS.join(":");
    let classes = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("courier-cli-curator-{}", std::process::id()));
    std::fs::create_dir_all(&classes).expect("a classes directory");
    let javac = Command::new("javac")
        .args(["-nowarn", "-encoding", "UTF-8", "-d"])
        .arg(&classes)
        .args(["-cp", &jars, CURATOR_SOURCE])
        .stdin(Stdio::null())
        .output()
        .expect("javac runs (a JDK is needed: scripts/ensure-curator)");
    assert!(
        javac.status.success(),
        "javac failed: {}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let classpath = format!("{}:{jars}", classes.display());
    let mut child = Command::new(courier_test_support::zookeeper::java())
        .args([
            "-Xmx64m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            &classpath,
        ])
        .args([
            "CuratorInterop",
            "register",
            connect,
            "/courier",
            service,
            "127.0.0.1",
            &port.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("java starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let mut provider = CuratorProvider {
        child,
        id: String::new(),
    };
    while provider.id.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => {
                if let Some(id) = line.strip_prefix("registered ") {
                    provider.id = id.to_owned();
                }
            }
            Err(_) => panic!("Curator did not register within {PATIENCE:?}"),
        }
    }
    provider
}

#[test]
fn list_shows_an_instance_a_real_curator_client_registered() {
    let zookeeper = ZooKeeperServer::start();
    let provider = curator_register(&zookeeper.connect_string(), "hello.Greeter", 7071);
    let url = format!("zk://{}/courier", zookeeper.connect_string());
    let listed = courier(&["list", "--json", &url]);
    assert_eq!(listed.code, 0, "{listed:?}");
    let services = listed.json();
    assert_eq!(services[0]["service"], json!("hello.Greeter"), "{listed:?}");
    let instance = &services[0]["instances"][0];
    assert_eq!(instance["id"], json!(provider.id));
    assert_eq!(instance["address"], json!("127.0.0.1"));
    assert_eq!(instance["port"], json!(7071));
    assert_eq!(instance["weight"], json!("100"), "the default weight");
    assert_eq!(instance["tls"], json!(false));
    assert_eq!(instance["unusable"], Value::Null);
    assert!(
        instance["registrationTimeUTC"].as_u64().is_some(),
        "{instance}"
    );
    let table = courier(&["list", &url]);
    assert!(
        table.stdout.contains("hello.Greeter (1 instance)"),
        "{table:?}"
    );
    assert!(
        table.stdout.contains("courier/1 (default: not in payload)"),
        "{table:?}"
    );
}
