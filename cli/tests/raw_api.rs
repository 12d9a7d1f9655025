//! The runtime's untyped call API (`Channel::call_raw`, `oneway_raw`), as
//! tools use it: to one endpoint with interceptors, and balanced over a
//! registry; ok, declared error, status, timeout, one-way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::client::{
    BalanceOptions, CallOptions, Channel, ClientInterceptor, MethodDescriptor, OutgoingRequest,
    RawReply,
};
use courier::registry::{MemoryRegistry, Registry, ServiceInstance};
use courier::server::{Server, ServerHandle, ServerInterceptor};
use courier::{BoxFuture, CallContext, RpcError, Serializer, Status, StatusCode};
use idl_examples::greeter::HelloGreeter;
use idl_examples::hello::greeter::GreeterServer;

/// Adds `x-tool: courier` to every call.
struct Tag;

impl ClientInterceptor for Tag {
    fn intercept<'a>(
        &'a self,
        request: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            assert_eq!(request.method().service, "hello.Greeter");
            request.metadata_mut().insert("x-tool", "courier");
            Ok(())
        })
    }
}

/// Records the `x-tool` metadata of every call.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Option<String>>>>);

impl ServerInterceptor for Seen {
    fn intercept<'a>(&'a self, call: &'a mut CallContext) -> BoxFuture<'a, Result<(), Status>> {
        let tag = call.metadata().get("x-tool").map(str::to_owned);
        self.0.lock().expect("lock").push(tag);
        Box::pin(async { Ok(()) })
    }
}

async fn server(greeter: HelloGreeter, seen: Seen) -> ServerHandle {
    Server::builder()
        .add_service(GreeterServer::new(greeter))
        .add_interceptor(seen)
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
}

fn json() -> CallOptions {
    CallOptions {
        serializer: Serializer::Json,
        ..CallOptions::default()
    }
}

#[tokio::test]
async fn raw_calls_to_an_endpoint_run_the_interceptors() {
    let greeter = HelloGreeter::default();
    let mut events = greeter.events();
    let seen = Seen::default();
    let server = server(greeter, seen.clone()).await;
    let channel = Channel::connect(server.local_addr())
        .await
        .expect("connect")
        .with_interceptor(Tag);
    let say_hello = MethodDescriptor::new("hello.Greeter", "say_hello");
    let ok = channel
        .call_raw(&say_hello, br#"{"name":"Bob"}"#, &json())
        .await
        .expect("ok");
    assert_eq!(
        ok,
        RawReply::Ok(br#"{"value":"Hello, Bob!"}"#.as_slice().into())
    );
    let declared = channel
        .call_raw(&say_hello, br#"{"name":""}"#, &json())
        .await
        .expect("answered");
    let RawReply::Declared(payload) = declared else {
        panic!("a declared error, got {declared:?}");
    };
    assert!(
        payload.starts_with(br#"{"empty_name":{"hint":"#),
        "{payload:?}"
    );
    let unknown = channel
        .call_raw(
            &MethodDescriptor::new("hello.Greeter", "nope"),
            b"{}",
            &json(),
        )
        .await
        .expect_err("unknown method");
    assert_eq!(unknown.code(), StatusCode::UnknownMethod);
    let sleep = MethodDescriptor {
        default_timeout: Some(Duration::from_millis(50)),
        ..MethodDescriptor::new("hello.Greeter", "sleep")
    };
    let late = channel
        .call_raw(&sleep, br#"{"ms":10000}"#, &json())
        .await
        .expect_err("too slow");
    assert!(
        matches!(&late, RpcError::Status(s) if s.code() == StatusCode::DeadlineExceeded),
        "{late:?}"
    );
    // The connection task forgets it (and tells the server) on its next turn.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while channel.pending_len() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the timed-out call is never forgotten"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    channel
        .oneway_raw(
            &MethodDescriptor::new("hello.Greeter", "notify"),
            br#"{"event":"raw"}"#,
            &json(),
        )
        .await
        .expect("sent");
    tokio::time::timeout(
        Duration::from_secs(10),
        events.wait_for(|events| events.contains(&"raw".to_owned())),
    )
    .await
    .expect("the event arrives in time")
    .expect("the greeter is alive");
    let tags = seen.0.lock().expect("lock").clone();
    // Every call but the unknown method, which the server rejects before
    // its interceptors run.
    assert_eq!(tags.len(), 4, "{tags:?}");
    assert!(
        tags.iter().all(|t| t.as_deref() == Some("courier")),
        "{tags:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn raw_calls_through_a_balanced_channel() {
    let registry = MemoryRegistry::new();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let server = server(HelloGreeter::default(), Seen::default()).await;
        registry
            .register(ServiceInstance::new("hello.Greeter", server.local_addr()))
            .await
            .expect("registered");
        servers.push(server);
    }
    let shared: Arc<dyn Registry> = Arc::new(registry.clone());
    let channel = Channel::balanced(shared, "hello.Greeter", BalanceOptions::default())
        .await
        .expect("balanced");
    let method = MethodDescriptor {
        idempotent: true,
        ..MethodDescriptor::new("hello.Greeter", "say_hello")
    };
    // PROTOCOL.md's example, byte for byte.
    let options = CallOptions::default();
    for _ in 0..4 {
        let reply = channel
            .call_raw(&method, &[0x0a, 0x03, b'B', b'o', b'b'], &options)
            .await
            .expect("ok");
        let mut expected = vec![0x0a, 0x0b];
        expected.extend_from_slice(b"Hello, Bob!");
        assert_eq!(reply, RawReply::Ok(expected.into()));
    }
    let attempts: u64 = channel.instances().iter().map(|i| i.attempts).sum();
    assert_eq!(attempts, 4);
    let nobody = Channel::balanced(
        Arc::new(registry.clone()),
        "hello.Nobody",
        BalanceOptions::default(),
    )
    .await
    .expect("balanced");
    let none = nobody
        .call_raw(&MethodDescriptor::new("hello.Nobody", "x"), b"", &options)
        .await
        .expect_err("no instance");
    assert!(
        matches!(
            none,
            RpcError::Transport(courier::TransportError::NoInstance { .. })
        ),
        "{none:?}"
    );
    for server in servers {
        server.shutdown().await;
    }
}

/// Raw calls keep nothing of their method: past the 1,024 distinct methods
/// the runtime once interned (leaked) for balanced channels and
/// interceptors, every call still goes out and gets the server's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_distinct_raw_methods_keep_nothing() {
    let registry = MemoryRegistry::new();
    let server = server(HelloGreeter::default(), Seen::default()).await;
    registry
        .register(ServiceInstance::new("hello.Greeter", server.local_addr()))
        .await
        .expect("registered");
    let shared: Arc<dyn Registry> = Arc::new(registry);
    let channel = Channel::balanced(shared, "hello.Greeter", BalanceOptions::default())
        .await
        .expect("balanced")
        .with_interceptor(Tag);
    let options = CallOptions {
        timeout: Some(Duration::from_secs(10)),
        ..json()
    };
    for i in 0..1_100 {
        // A name that lives only for this call.
        let name = format!("no_such_method_{i}");
        let method = MethodDescriptor::new("hello.Greeter", &name);
        let unknown = channel
            .call_raw(&method, b"{}", &options)
            .await
            .expect_err("no such method");
        match unknown {
            RpcError::Status(status) => {
                assert_eq!(status.code(), StatusCode::UnknownMethod, "call {i}")
            }
            other => panic!("call {i}: {other:?}"),
        }
        drop(name);
    }
    assert_eq!(channel.pending_len(), 0);
    server.shutdown().await;
}
