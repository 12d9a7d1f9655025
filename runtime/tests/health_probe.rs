//! A balanced channel probes an ejected instance with `courier.Health`
//! before it sends it calls again: `NOT_SERVING` keeps it out, `SERVING`
//! brings it back. Real servers on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use courier::balance::Strategy;
use courier::builtin::health::{HealthClient, ServingStatus};
use courier::client::{BalanceOptions, CallOptions, Channel, MethodDescriptor};
use courier::registry::{MemoryRegistry, Registry, ServiceInstance};
use courier::server::{IncomingCall, Server, ServerHandle, ServerInterceptor, ServiceHandler};
use courier::{BoxFuture, CallContext, NoDeclaredError, RpcError, Status};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

const SERVICE: &str = "test.Node";
const PATIENCE: Duration = Duration::from_secs(10);

static ECHO: MethodDescriptor = MethodDescriptor {
    service: SERVICE,
    method: "echo",
    idempotent: true,
    default_timeout: Some(Duration::from_secs(5)),
};

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
struct Text {
    #[prost(string, tag = "1")]
    #[serde(default)]
    value: String,
}

/// Answers `echo` with its name, or status 8 while `failing`; counts calls.
#[derive(Clone, Default)]
struct Node {
    calls: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl ServiceHandler for Node {
    fn wire_name(&self) -> &'static str {
        SERVICE
    }

    fn dispatch(&self, call: IncomingCall) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let failing = Arc::clone(&self.failing);
        match call.method() {
            "echo" => call.serve_unary(move |_ctx: CallContext, args: Text| async move {
                if failing.load(Ordering::SeqCst) {
                    Err(RpcError::<NoDeclaredError>::Status(Status::internal(
                        "sick",
                    )))
                } else {
                    Ok(args)
                }
            }),
            _ => call.reject_unknown_method(),
        }
    }
}

/// Counts the health checks a server answers.
#[derive(Clone, Default)]
struct CountChecks(Arc<AtomicUsize>);

impl ServerInterceptor for CountChecks {
    fn intercept<'a>(&'a self, call: &'a mut CallContext) -> BoxFuture<'a, Result<(), Status>> {
        if call.service() == HealthClient::WIRE_NAME {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Box::pin(async { Ok(()) })
    }
}

struct Provider {
    node: Node,
    checks: CountChecks,
    server: ServerHandle,
    instance: ServiceInstance,
}

async fn provider(registry: &MemoryRegistry, health: bool) -> Provider {
    let node = Node::default();
    let checks = CountChecks::default();
    let mut builder = Server::builder()
        .add_service(node.clone())
        .add_interceptor(checks.clone());
    if health {
        builder = builder.enable_health();
    }
    let server = builder.bind("127.0.0.1:0").await.expect("bind");
    let instance = ServiceInstance::new(SERVICE, server.local_addr());
    registry.register(instance.clone()).await.expect("register");
    Provider {
        node,
        checks,
        server,
        instance,
    }
}

fn ejected(channel: &Channel, id: &str) -> bool {
    channel.instances().iter().any(|i| i.id == id && i.ejected)
}

async fn echo(channel: &Channel) -> Result<Text, RpcError> {
    channel
        .unary(&ECHO, &Text::default(), &CallOptions::default())
        .await
}

/// Calls until `sick` is ejected.
async fn eject(channel: &Channel, sick: &Provider) {
    sick.node.failing.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + PATIENCE;
    while !ejected(channel, &sick.instance.id) {
        assert!(
            Instant::now() < deadline,
            "the failing instance is never ejected"
        );
        let _ = echo(channel).await;
    }
}

fn options() -> BalanceOptions {
    BalanceOptions {
        eject_after: 2,
        eject_base: Duration::from_millis(50),
        eject_max: Duration::from_millis(200),
        ..BalanceOptions::with_strategy(Strategy::RoundRobin)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_answering_not_serving_stays_out_until_it_serves() {
    let registry = MemoryRegistry::new();
    let healthy = provider(&registry, true).await;
    let sick = provider(&registry, true).await;
    let channel = Channel::balanced(Arc::new(registry.clone()), SERVICE, options())
        .await
        .expect("a balanced channel");

    eject(&channel, &sick).await;
    // It could serve calls again, but its owner says it does not.
    sick.node.failing.store(false, Ordering::SeqCst);
    let reporter = sick.server.health().expect("health is on");
    reporter.set_serving(SERVICE, false).expect("served");
    let calls_when_ejected = sick.node.calls.load(Ordering::SeqCst);
    let checks_before = sick.checks.0.load(Ordering::SeqCst);

    // Several probes come and go (the ejection period is 50-200 ms): each
    // is a health check, never a call, and the instance stays out.
    let deadline = Instant::now() + PATIENCE;
    while sick.checks.0.load(Ordering::SeqCst) < checks_before + 3 {
        assert!(
            Instant::now() < deadline,
            "the ejected instance is never probed"
        );
        echo(&channel).await.expect("the healthy instance answers");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        ejected(&channel, &sick.instance.id),
        "NOT_SERVING readmitted it"
    );
    assert_eq!(
        sick.node.calls.load(Ordering::SeqCst),
        calls_when_ejected,
        "a call reached the instance while it answered NOT_SERVING"
    );

    // Now it serves: the next probe brings it back, and calls reach it.
    reporter.set_serving(SERVICE, true).expect("served");
    let deadline = Instant::now() + PATIENCE;
    while ejected(&channel, &sick.instance.id)
        || sick.node.calls.load(Ordering::SeqCst) == calls_when_ejected
    {
        assert!(Instant::now() < deadline, "SERVING never readmitted it");
        echo(&channel).await.expect("a call succeeds");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(healthy.node.calls.load(Ordering::SeqCst) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_without_health_is_probed_with_a_call() {
    let registry = MemoryRegistry::new();
    let _healthy = provider(&registry, false).await;
    let sick = provider(&registry, false).await;
    let channel = Channel::balanced(Arc::new(registry.clone()), SERVICE, options())
        .await
        .expect("a balanced channel");

    eject(&channel, &sick).await;
    sick.node.failing.store(false, Ordering::SeqCst);
    let calls_when_ejected = sick.node.calls.load(Ordering::SeqCst);
    let deadline = Instant::now() + PATIENCE;
    while ejected(&channel, &sick.instance.id)
        || sick.node.calls.load(Ordering::SeqCst) == calls_when_ejected
    {
        assert!(Instant::now() < deadline, "never probed back");
        echo(&channel).await.expect("a call succeeds");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The health check was tried once (status 2), then calls probed.
    assert!(sick.checks.0.load(Ordering::SeqCst) <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_what_the_owner_and_the_drain_say() {
    let registry = MemoryRegistry::new();
    let node = provider(&registry, true).await;
    let client = HealthClient::new(
        Channel::connect(node.server.local_addr())
            .await
            .expect("connect"),
    );
    assert_eq!(
        client.check("").await.expect("check"),
        ServingStatus::Serving
    );
    assert_eq!(
        client.check(SERVICE).await.expect("check"),
        ServingStatus::Serving
    );
    assert_eq!(
        client.check("courier.Health").await.expect("check"),
        ServingStatus::Serving
    );
    match client.check("nope.Nothing").await {
        Err(RpcError::Declared(courier::builtin::health::CheckError::NoSuchService(e))) => {
            assert_eq!(e.service, "nope.Nothing");
        }
        other => panic!("expected NoSuchService, got {other:?}"),
    }

    let reporter = node.server.health().expect("health is on");
    reporter.set_serving(SERVICE, false).expect("served");
    assert_eq!(
        client.check(SERVICE).await.expect("check"),
        ServingStatus::NotServing
    );
    assert_eq!(
        client.check("").await.expect("check"),
        ServingStatus::Serving
    );
    reporter.set_serving("", false).expect("the server");
    assert_eq!(
        client.check("courier.Health").await.expect("check"),
        ServingStatus::NotServing
    );
    reporter.set_serving("", true).expect("the server");
    reporter.set_serving(SERVICE, true).expect("served");
    assert_eq!(
        client.check(SERVICE).await.expect("check"),
        ServingStatus::Serving
    );

    // A shutdown turns every check NOT_SERVING; once new requests are
    // refused, checks get status 9 like every other call.
    let shutdown = tokio::spawn(node.server.shutdown());
    let deadline = Instant::now() + PATIENCE;
    while reporter.status(SERVICE) != Ok(ServingStatus::NotServing) {
        assert!(Instant::now() < deadline, "the drain never shows");
        tokio::task::yield_now().await;
    }
    match client.check(SERVICE).await {
        Ok(status) => assert_eq!(status, ServingStatus::NotServing),
        Err(error) => assert!(
            error.code() == courier::StatusCode::ShuttingDown
                || matches!(error, RpcError::Transport(_)),
            "a check during a drain answers NOT_SERVING, status 9 or the connection closes: {error:?}"
        ),
    }
    shutdown.await.expect("shut down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_enable_health_there_is_no_health_service() {
    let registry = MemoryRegistry::new();
    let node = provider(&registry, false).await;
    assert!(node.server.health().is_none());
    let client = HealthClient::new(
        Channel::connect(node.server.local_addr())
            .await
            .expect("connect"),
    );
    let error = client.check("").await.expect_err("not served");
    assert_eq!(error.code(), courier::StatusCode::UnknownService);
}
