//! A balanced channel probes an ejected instance with `courier.Health`
//! before it sends it calls again: `NOT_SERVING` keeps it out, `SERVING`
//! brings it back. The probe is sent as the channel sends its calls
//! (through its interceptors, in its serializer) and asks about the
//! service's full wire name; a server that refuses the check (auth,
//! serializer) gets a real call as its probe instead. Real servers on
//! 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use courier::auth::{BearerToken, BearerTokenAuth};
use courier::balance::Strategy;
use courier::builtin::health::{HealthClient, ServingStatus};
use courier::client::{
    BalanceOptions, CallOptions, Channel, ClientInterceptor, MethodDescriptor, OutgoingRequest,
    Stub,
};
use courier::registry::{MemoryRegistry, Registry, ServiceInstance};
use courier::server::{
    IncomingCall, Server, ServerBuilder, ServerHandle, ServerInterceptor, ServiceHandler,
};
use courier::{BoxFuture, CallContext, NoDeclaredError, RpcError, Serializer, Status};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

const SERVICE: &str = "test.Node";
/// The wire name of a service declared with `@version("2")`.
const VERSIONED_SERVICE: &str = "test.Node:2";
const PATIENCE: Duration = Duration::from_secs(10);
const ALICE_TOKEN: &str = "alice-token-5d2e";

static ECHO: MethodDescriptor = MethodDescriptor {
    service: SERVICE,
    method: "echo",
    idempotent: true,
    default_timeout: Some(Duration::from_secs(5)),
};

static VERSIONED_ECHO: MethodDescriptor = MethodDescriptor {
    service: VERSIONED_SERVICE,
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

/// Serves `echo` under its wire name: answers with its args, or status 8
/// while `failing`; counts calls.
#[derive(Clone)]
struct Node {
    wire_name: &'static str,
    calls: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl Node {
    fn new(wire_name: &'static str) -> Node {
        Node {
            wire_name,
            calls: Arc::default(),
            failing: Arc::default(),
        }
    }
}

impl ServiceHandler for Node {
    fn wire_name(&self) -> &'static str {
        self.wire_name
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

/// Counts the health checks that reach a server (before its other
/// interceptors, so refused ones too).
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

impl Provider {
    fn checks(&self) -> usize {
        self.checks.0.load(Ordering::SeqCst)
    }

    fn calls(&self) -> usize {
        self.node.calls.load(Ordering::SeqCst)
    }
}

/// A server for `test.Node`, with health if `health`.
async fn provider(registry: &MemoryRegistry, health: bool) -> Provider {
    provider_with(registry, SERVICE, |builder| {
        if health {
            builder.enable_health()
        } else {
            builder
        }
    })
    .await
}

/// A server for `wire_name` whose builder `configure` finishes (after the
/// service and the check counter are added), registered in `registry`.
async fn provider_with(
    registry: &MemoryRegistry,
    wire_name: &'static str,
    configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
) -> Provider {
    let node = Node::new(wire_name);
    let checks = CountChecks::default();
    let builder = Server::builder()
        .add_service(node.clone())
        .add_interceptor(checks.clone());
    let server = configure(builder).bind("127.0.0.1:0").await.expect("bind");
    let instance = ServiceInstance::new(wire_name, server.local_addr());
    registry.register(instance.clone()).await.expect("register");
    Provider {
        node,
        checks,
        server,
        instance,
    }
}

/// A balanced channel and how its calls are made.
struct Caller {
    channel: Channel,
    method: &'static MethodDescriptor<'static>,
    options: CallOptions,
}

impl Caller {
    async fn new(registry: &MemoryRegistry, method: &'static MethodDescriptor<'static>) -> Caller {
        let channel = Channel::balanced(Arc::new(registry.clone()), method.service, options())
            .await
            .expect("a balanced channel");
        Caller {
            channel,
            method,
            options: CallOptions::default(),
        }
    }

    async fn echo(&self) -> Result<Text, RpcError> {
        self.channel
            .unary(self.method, &Text::default(), &self.options)
            .await
    }

    fn ejected(&self, provider: &Provider) -> bool {
        self.channel
            .instances()
            .iter()
            .any(|i| i.id == provider.instance.id && i.ejected)
    }

    /// Calls until `sick` is ejected.
    async fn eject(&self, sick: &Provider) {
        sick.node.failing.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + PATIENCE;
        while !self.ejected(sick) {
            assert!(
                Instant::now() < deadline,
                "the failing instance is never ejected"
            );
            let _ = self.echo().await;
        }
    }

    /// Calls (which the healthy instances answer) until `done`.
    async fn call_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            self.echo().await.expect("a call succeeds");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
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

/// Ejects `sick`, then has its owner mark it `NOT_SERVING` though it could
/// answer: several health probes come and go (the ejection period is
/// 50-200 ms), each a health check that keeps it out, never a call. Then
/// it is marked `SERVING`: the next probe brings it back and calls reach
/// it.
async fn health_keeps_it_out_until_it_serves(caller: &Caller, sick: &Provider) {
    caller.eject(sick).await;
    sick.node.failing.store(false, Ordering::SeqCst);
    let reporter = sick.server.health().expect("health is on");
    let service = sick.node.wire_name;
    reporter.set_serving(service, false).expect("served");
    let calls_when_ejected = sick.calls();
    let checks_before = sick.checks();

    caller
        .call_until("the ejected instance is never probed", || {
            sick.checks() >= checks_before + 3
        })
        .await;
    assert!(caller.ejected(sick), "NOT_SERVING readmitted it");
    assert_eq!(
        sick.calls(),
        calls_when_ejected,
        "a call reached the instance while it answered NOT_SERVING"
    );

    reporter.set_serving(service, true).expect("served");
    caller
        .call_until("SERVING never readmitted it", || {
            !caller.ejected(sick) && sick.calls() > calls_when_ejected
        })
        .await;
}

/// Ejects `sick`, makes it healthy, and waits until a real call (its
/// probe) brings it back.
async fn a_call_brings_it_back(caller: &Caller, sick: &Provider) {
    caller.eject(sick).await;
    sick.node.failing.store(false, Ordering::SeqCst);
    let calls_when_ejected = sick.calls();
    caller
        .call_until("never probed back", || {
            !caller.ejected(sick) && sick.calls() > calls_when_ejected
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_answering_not_serving_stays_out_until_it_serves() {
    let registry = MemoryRegistry::new();
    let healthy = provider(&registry, true).await;
    let sick = provider(&registry, true).await;
    let caller = Caller::new(&registry, &ECHO).await;
    health_keeps_it_out_until_it_serves(&caller, &sick).await;
    assert!(healthy.calls() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_service_is_checked_by_its_full_wire_name() {
    let registry = MemoryRegistry::new();
    let _healthy = provider_with(&registry, VERSIONED_SERVICE, ServerBuilder::enable_health).await;
    let sick = provider_with(&registry, VERSIONED_SERVICE, ServerBuilder::enable_health).await;
    let caller = Caller::new(&registry, &VERSIONED_ECHO).await;
    health_keeps_it_out_until_it_serves(&caller, &sick).await;
}

/// A server that takes calls only with alice's token, checks included
/// unless `anonymous_health`.
fn bearer_auth(anonymous_health: bool) -> impl Fn(ServerBuilder) -> ServerBuilder {
    move |builder| {
        let mut auth = BearerTokenAuth::new()
            .with_token("alice", ALICE_TOKEN)
            .expect("a valid token");
        if anonymous_health {
            auth = auth.allow_anonymous(HealthClient::WIRE_NAME, "check");
        }
        builder.enable_health().add_interceptor(auth)
    }
}

async fn caller_with_alices_token(registry: &MemoryRegistry) -> Caller {
    let mut caller = Caller::new(registry, &ECHO).await;
    caller.channel = caller
        .channel
        .with_interceptor(BearerToken::new(ALICE_TOKEN).expect("a valid token"));
    caller
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_bearer_auth_the_probe_carries_the_channels_token() {
    let registry = MemoryRegistry::new();
    let _healthy = provider_with(&registry, SERVICE, bearer_auth(false)).await;
    let sick = provider_with(&registry, SERVICE, bearer_auth(false)).await;
    let caller = caller_with_alices_token(&registry).await;
    health_keeps_it_out_until_it_serves(&caller, &sick).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_bearer_auth_with_anonymous_checks_the_probe_works() {
    let registry = MemoryRegistry::new();
    let _healthy = provider_with(&registry, SERVICE, bearer_auth(true)).await;
    let sick = provider_with(&registry, SERVICE, bearer_auth(true)).await;
    let caller = caller_with_alices_token(&registry).await;
    health_keeps_it_out_until_it_serves(&caller, &sick).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_the_principal_may_not_make_falls_back_to_a_call_probe() {
    let registry = MemoryRegistry::new();
    // alice may call test.Node but not courier.Health: checks get status 13.
    let only_ops_checks = |builder: ServerBuilder| {
        let auth = BearerTokenAuth::new()
            .with_token("alice", ALICE_TOKEN)
            .expect("a valid token")
            .restrict_service(HealthClient::WIRE_NAME, ["ops"]);
        builder.enable_health().add_interceptor(auth)
    };
    let _healthy = provider_with(&registry, SERVICE, only_ops_checks).await;
    let sick = provider_with(&registry, SERVICE, only_ops_checks).await;
    let caller = caller_with_alices_token(&registry).await;
    a_call_brings_it_back(&caller, &sick).await;
    // The check was refused once, then calls probed.
    assert!(sick.checks() <= 1, "{} checks", sick.checks());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_allowing_only_json_is_probed_in_json() {
    let registry = MemoryRegistry::new();
    let json_only = |builder: ServerBuilder| {
        builder
            .enable_health()
            .allow_only_serializers([Serializer::Json])
    };
    let _healthy = provider_with(&registry, SERVICE, json_only).await;
    let sick = provider_with(&registry, SERVICE, json_only).await;
    let mut caller = Caller::new(&registry, &ECHO).await;
    caller.options.serializer = Serializer::Json;
    health_keeps_it_out_until_it_serves(&caller, &sick).await;
}

/// Refuses every health check on the client side.
struct NoChecks;

impl ClientInterceptor for NoChecks {
    fn intercept<'a>(
        &'a self,
        request: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), Status>> {
        let refused = request.method().service == HealthClient::WIRE_NAME;
        Box::pin(async move {
            if refused {
                Err(Status::new(
                    courier::StatusCode::PermissionDenied,
                    "no checks from here",
                ))
            } else {
                Ok(())
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_the_channel_refuses_falls_back_to_a_call_probe() {
    let registry = MemoryRegistry::new();
    let _healthy = provider(&registry, true).await;
    let sick = provider(&registry, true).await;
    let mut caller = Caller::new(&registry, &ECHO).await;
    caller.channel = caller.channel.with_interceptor(NoChecks);
    a_call_brings_it_back(&caller, &sick).await;
    assert_eq!(sick.checks(), 0, "a refused check was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_without_health_is_probed_with_a_call() {
    let registry = MemoryRegistry::new();
    let _healthy = provider(&registry, false).await;
    let sick = provider(&registry, false).await;
    let caller = Caller::new(&registry, &ECHO).await;
    a_call_brings_it_back(&caller, &sick).await;
    // The health check was tried once (status 2), then calls probed.
    assert!(sick.checks() <= 1);
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
