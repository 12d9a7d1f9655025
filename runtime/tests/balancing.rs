//! Balanced channels over real sockets: providers that die under load,
//! fail-fast for non-idempotent calls, the retry budget, ejection and
//! probing, consistent hashing, and a real ZooKeeper.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use courier::balance::{Strategy, hash_key_of};
use courier::client::{BalanceOptions, CallOptions, Channel, MethodDescriptor};
use courier::registry::{
    MemoryRegistry, Registry, ServiceInstance, ZooKeeperOptions, ZooKeeperRegistry,
};
use courier::server::{IncomingCall, Server, ServiceHandler};
use courier::{CallContext, RpcError, Status, StatusCode, TransportError};
use serde::{Deserialize, Serialize};
use support::zookeeper::{Partition, ZooKeeperServer};
use tokio::time::Instant;

const SERVICE: &str = "test.Node";
const PATIENCE: Duration = Duration::from_secs(10);

/// `echo`, declared `@idempotent`.
static ECHO: MethodDescriptor = MethodDescriptor {
    service: SERVICE,
    method: "echo",
    idempotent: true,
    default_timeout: Some(Duration::from_secs(5)),
};

/// The same method, not idempotent.
static ECHO_ONCE: MethodDescriptor = MethodDescriptor {
    idempotent: false,
    ..ECHO
};

/// Never answers; not idempotent.
static HANG: MethodDescriptor = MethodDescriptor {
    service: SERVICE,
    method: "hang",
    idempotent: false,
    default_timeout: None,
};

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
struct Text {
    #[prost(string, tag = "1")]
    #[serde(default)]
    value: String,
}

/// How a node answers `echo`.
const OK: u8 = 0;
const OVERLOADED: u8 = 7;
const INTERNAL: u8 = 8;
const UNAVAILABLE: u8 = 19;

/// A provider that answers `echo` with its name, or the status its mode
/// says, and counts the calls it gets.
#[derive(Clone)]
struct Node {
    name: String,
    calls: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
}

impl ServiceHandler for Node {
    fn wire_name(&self) -> &'static str {
        SERVICE
    }

    fn dispatch(&self, call: IncomingCall) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let node = self.clone();
        match call.method() {
            "echo" => call.serve_unary(move |_ctx: CallContext, _args: Text| async move {
                match node.mode.load(Ordering::SeqCst) {
                    OK => Ok(Text { value: node.name }),
                    code => Err(RpcError::<courier::NoDeclaredError>::Status(Status::new(
                        StatusCode::from_u8(code),
                        "as told",
                    ))),
                }
            }),
            "hang" => call.serve_unary(move |_ctx: CallContext, _args: Text| async move {
                std::future::pending::<()>().await;
                Ok::<_, RpcError>(Text::default())
            }),
            _ => call.reject_unknown_method(),
        }
    }
}

/// A provider on a runtime of its own, so killing it drops its listener
/// and every connection at once, mid-call, like a crashed process.
struct Provider {
    node: Node,
    instance: ServiceInstance,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Provider {
    async fn start(name: &str) -> Provider {
        let node = Node {
            name: name.to_owned(),
            calls: Arc::default(),
            mode: Arc::default(),
        };
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let (bound, addr) = tokio::sync::oneshot::channel();
        let served = node.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let server = Server::builder()
                    .add_service(served)
                    .bind("127.0.0.1:0")
                    .await
                    .expect("binds");
                let _ = bound.send(server.local_addr());
                let _ = killed.await;
            });
            // Dropping the runtime drops the listener and connections.
            drop(runtime);
        });
        let addr = addr.await.expect("the provider starts");
        Provider {
            node,
            instance: ServiceInstance::new(SERVICE, addr),
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    fn calls(&self) -> usize {
        self.node.calls.load(Ordering::SeqCst)
    }

    fn set_mode(&self, mode: u8) {
        self.node.mode.store(mode, Ordering::SeqCst);
    }

    /// Kills the provider abruptly (it stays registered).
    async fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join().expect("no panic"))
                .await
                .expect("joins");
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

async fn providers(registry: &MemoryRegistry, n: usize) -> Vec<Provider> {
    let mut providers = Vec::new();
    for i in 0..n {
        let provider = Provider::start(&format!("node{i}")).await;
        registry
            .register(provider.instance.clone())
            .await
            .expect("registers");
        providers.push(provider);
    }
    providers
}

async fn balanced(registry: &MemoryRegistry, options: BalanceOptions) -> Channel {
    Channel::balanced(Arc::new(registry.clone()), SERVICE, options)
        .await
        .expect("a balanced channel")
}

async fn echo(
    channel: &Channel,
    method: &'static MethodDescriptor<'static>,
) -> Result<Text, RpcError> {
    channel
        .unary(method, &Text::default(), &CallOptions::default())
        .await
}

/// Whether the instance `id` is ejected, per the channel.
fn ejected(channel: &Channel, id: &str) -> bool {
    channel.instances().iter().any(|i| i.id == id && i.ejected)
}

fn attempts(channel: &Channel, id: &str) -> u64 {
    channel
        .instances()
        .iter()
        .find(|i| i.id == id)
        .map_or(0, |i| i.attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_an_instance_under_load_loses_no_idempotent_call() {
    let registry = MemoryRegistry::new();
    let mut providers = providers(&registry, 3).await;
    let channel = balanced(
        &registry,
        BalanceOptions {
            // No probe comes back during the test.
            eject_base: Duration::from_secs(600),
            ..BalanceOptions::with_strategy(Strategy::RoundRobin)
        },
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (channel, stop, ok) = (channel.clone(), Arc::clone(&stop), Arc::clone(&ok));
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match echo(&channel, &ECHO).await {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(error) => failures.push(error.to_string()),
                }
            }
            failures
        }));
    }

    let until = |n: usize| {
        let ok = Arc::clone(&ok);
        async move {
            let deadline = Instant::now() + PATIENCE;
            while ok.load(Ordering::SeqCst) < n {
                assert!(Instant::now() < deadline, "the load stalled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    until(300).await;
    assert!(
        providers.iter().all(|p| p.calls() > 0),
        "every instance is used"
    );
    let victim = providers[0].instance.id.clone();
    providers[0].kill().await;

    let deadline = Instant::now() + PATIENCE;
    while !ejected(&channel, &victim) {
        assert!(
            Instant::now() < deadline,
            "the killed instance is never ejected"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let attempts_when_ejected = attempts(&channel, &victim);
    let done = ok.load(Ordering::SeqCst);
    until(done + 500).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        let failures = task.await.expect("no panic");
        assert!(failures.is_empty(), "failed calls: {failures:?}");
    }
    assert_eq!(
        attempts(&channel, &victim),
        attempts_when_ejected,
        "the killed instance got calls after its ejection"
    );
    assert!(providers[1].calls() > 0 && providers[2].calls() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_idempotent_call_to_a_killed_instance_fails_fast() {
    let registry = MemoryRegistry::new();
    let mut providers = providers(&registry, 2).await;
    let channel = balanced(&registry, BalanceOptions::default()).await;

    let call = {
        let channel = channel.clone();
        tokio::spawn(async move { echo(&channel, &HANG).await })
    };
    let deadline = Instant::now() + PATIENCE;
    let victim = loop {
        if let Some(index) = providers.iter().position(|p| p.calls() > 0) {
            break index;
        }
        assert!(Instant::now() < deadline, "the call never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    providers[victim].kill().await;

    let outcome = tokio::time::timeout(PATIENCE, call)
        .await
        .expect("fails fast, not at a timeout")
        .expect("no panic");
    match outcome {
        Err(RpcError::Transport(TransportError::ConnectionLost(_))) => {}
        other => panic!("expected a lost connection, got {other:?}"),
    }
    let other = &providers[1 - victim];
    assert_eq!(other.calls(), 0, "a non-idempotent call was retried");

    // The same with an `echo` that is not idempotent: a fresh call to the
    // dead instance fails over only if it was never sent.
    let result = echo(&channel, &ECHO_ONCE).await;
    assert!(
        result.is_ok(),
        "never sent, so safe to send elsewhere: {result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_caps_retries() {
    let registry = MemoryRegistry::new();
    let providers = providers(&registry, 3).await;
    for provider in &providers {
        provider.set_mode(OVERLOADED);
    }
    let min_per_second = 2;
    let channel = balanced(
        &registry,
        BalanceOptions {
            retry_ratio: 0.2,
            min_retries_per_second: min_per_second,
            ..BalanceOptions::default()
        },
    )
    .await;

    let calls = 200;
    let started = Instant::now();
    for _ in 0..calls {
        let error = echo(&channel, &ECHO).await.expect_err("all overloaded");
        assert_eq!(error.code(), StatusCode::Overloaded);
    }
    let seconds = started.elapsed().as_secs() as usize + 1;
    let arrived: usize = providers.iter().map(Provider::calls).sum();
    let retries = arrived - calls;
    let allowed = calls / 5 + min_per_second as usize * seconds;
    assert!(retries > 0, "overloaded calls are retried");
    assert!(
        retries <= allowed,
        "{retries} retries for {calls} calls, allowed {allowed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_instance_fails_over_for_every_method_and_is_ejected() {
    // Status 19 is "transient; safe to retry elsewhere" (PROTOCOL.md), like
    // 7 and 9: even a call that is not idempotent goes to another instance.
    let registry = MemoryRegistry::new();
    let providers = providers(&registry, 3).await;
    let channel = balanced(
        &registry,
        BalanceOptions {
            eject_base: Duration::from_secs(60),
            ..BalanceOptions::with_strategy(Strategy::RoundRobin)
        },
    )
    .await;
    let sick = &providers[0];
    sick.set_mode(UNAVAILABLE);
    for _ in 0..30 {
        let reply = echo(&channel, &ECHO_ONCE).await.expect("served elsewhere");
        assert_ne!(reply.value, sick.node.name);
    }
    assert!(sick.calls() > 0, "the unavailable instance was tried");
    // And it counts as a failure: ejected after five in a row.
    assert!(ejected(&channel, &sick.instance.id), "not ejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_instance_is_ejected_then_probed_back() {
    let registry = MemoryRegistry::new();
    let providers = providers(&registry, 3).await;
    let channel = balanced(
        &registry,
        BalanceOptions {
            eject_base: Duration::from_millis(100),
            eject_max: Duration::from_millis(400),
            ..BalanceOptions::with_strategy(Strategy::RoundRobin)
        },
    )
    .await;
    let sick = &providers[0];
    sick.set_mode(INTERNAL);

    let deadline = Instant::now() + PATIENCE;
    while !ejected(&channel, &sick.instance.id) {
        assert!(Instant::now() < deadline, "never ejected");
        // Status 8 may have run the handler: not retried, so some fail.
        let _ = echo(&channel, &ECHO).await;
    }

    sick.set_mode(OK);
    let calls_when_healed = sick.calls();
    let deadline = Instant::now() + PATIENCE;
    while ejected(&channel, &sick.instance.id) || sick.calls() <= calls_when_healed + 5 {
        assert!(Instant::now() < deadline, "never back in rotation");
        let result = echo(&channel, &ECHO).await;
        assert!(result.is_ok(), "healthy instances answer: {result:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_instance_is_never_ejected() {
    let registry = MemoryRegistry::new();
    let providers = providers(&registry, 1).await;
    providers[0].set_mode(INTERNAL);
    let channel = balanced(&registry, BalanceOptions::default()).await;
    for _ in 0..20 {
        let _ = echo(&channel, &ECHO).await;
    }
    assert!(!ejected(&channel, &providers[0].instance.id));
    assert_eq!(providers[0].calls(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_key_always_lands_on_the_same_instance() {
    let registry = MemoryRegistry::new();
    let _providers = providers(&registry, 3).await;
    let channel = balanced(
        &registry,
        BalanceOptions::with_strategy(Strategy::ConsistentHash),
    )
    .await;
    let mut owners = std::collections::HashSet::new();
    for user in 0..30 {
        let options = CallOptions {
            hash_key: Some(hash_key_of(&format!("user-{user}"))),
            ..CallOptions::default()
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10 {
            let reply: Result<Text, RpcError> =
                channel.unary(&ECHO, &Text::default(), &options).await;
            let reply = reply.expect("answers");
            seen.insert(reply.value);
        }
        assert_eq!(seen.len(), 1, "user-{user} went to {seen:?}");
        owners.extend(seen);
    }
    assert!(owners.len() > 1, "keys spread over instances: {owners:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_instance_is_a_typed_error_until_one_appears() {
    let registry = MemoryRegistry::new();
    let channel = balanced(&registry, BalanceOptions::default()).await;
    match echo(&channel, &ECHO).await {
        Err(RpcError::Transport(TransportError::NoInstance { service })) => {
            assert_eq!(service, SERVICE);
        }
        other => panic!("expected NoInstance, got {other:?}"),
    }
    let _providers = providers(&registry, 1).await;
    let deadline = Instant::now() + PATIENCE;
    while echo(&channel, &ECHO).await.is_err() {
        assert!(Instant::now() < deadline, "the new instance is never used");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const SESSION_TIMEOUT: Duration = Duration::from_secs(2);

fn zk_options(connect_string: String) -> ZooKeeperOptions {
    ZooKeeperOptions::new(connect_string)
        .with_session_timeout(SESSION_TIMEOUT)
        .with_connect_timeout(PATIENCE)
}

/// Calls until `done` holds, failing after `within`.
async fn call_until(channel: &Channel, within: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        let _ = echo(channel, &ECHO).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_providers_come_and_go_for_a_balanced_consumer() {
    let zk = ZooKeeperServer::start().await;
    let consumer: Arc<dyn Registry> = Arc::new(
        ZooKeeperRegistry::connect(zk_options(zk.connect_string()))
            .await
            .expect("connects"),
    );
    let first = Provider::start("first").await;
    let first_registry = ZooKeeperRegistry::connect(zk_options(zk.connect_string()))
        .await
        .expect("connects");
    first_registry
        .register(first.instance.clone())
        .await
        .expect("registers");
    let channel = Channel::balanced(Arc::clone(&consumer), SERVICE, BalanceOptions::default())
        .await
        .expect("a balanced channel");
    call_until(&channel, PATIENCE, "the first provider answers", || {
        first.calls() > 0
    })
    .await;

    // A provider that appears gets calls within 1 s. It reaches ZooKeeper
    // through a proxy, so its session can be lost.
    let partition = Partition::new(&zk).await;
    let mut second = Provider::start("second").await;
    let second_registry = ZooKeeperRegistry::connect(zk_options(partition.connect_string()))
        .await
        .expect("connects");
    second_registry
        .register(second.instance.clone())
        .await
        .expect("registers");
    call_until(
        &channel,
        Duration::from_secs(1),
        "calls reach a new provider",
        || second.calls() > 0,
    )
    .await;

    // A provider whose process dies loses its session: within the session
    // timeout + 1 s it is gone from the channel, and no call failed.
    partition.cut();
    second.kill().await;
    let id = second.instance.id.clone();
    let deadline = Instant::now() + SESSION_TIMEOUT + Duration::from_secs(1);
    while channel.instances().iter().any(|i| i.id == id) {
        assert!(
            Instant::now() < deadline,
            "the dead provider is still listed"
        );
        echo(&channel, &ECHO)
            .await
            .expect("fails over to the first");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = first.calls();
    for _ in 0..20 {
        echo(&channel, &ECHO).await.expect("answers");
    }
    assert_eq!(
        first.calls(),
        before + 20,
        "only the first provider is left"
    );

    // A provider that leaves gracefully (closes its registry) is gone at
    // once.
    first_registry.close().await.expect("closes");
    let deadline = Instant::now() + SESSION_TIMEOUT + Duration::from_secs(1);
    while !channel.instances().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the closed provider is still listed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(second_registry);
    consumer.close().await.expect("closes");
}
