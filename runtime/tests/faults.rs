//! Faults injected on real sockets by the fault proxy of
//! `courier-test-support` between channels and servers: calls end with a
//! clear error within their deadline, channels reconnect, heartbeats find a
//! blackholed peer within three intervals, balanced channels move traffic
//! off slow and dead instances, and nothing leaks (pending maps empty,
//! server and proxy connections back to zero).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use courier::balance::Strategy;
use courier::client::{BalanceOptions, Channel, ChannelConfig, MethodDescriptor};
use courier::registry::{MemoryRegistry, Registry, ServiceInstance};
use courier::{NoDeclaredError, RpcError, StatusCode, TransportError};
use courier_test_support::fault_proxy::{Direction, Fault, FaultProxy};
use tokio::time::Instant;

/// The heartbeat interval of the tests that need heartbeats.
const HEARTBEAT: Duration = Duration::from_millis(200);
/// Slack on top of an expected bound, for a loaded machine.
const SLACK: Duration = Duration::from_secs(2);

/// `echo`, declared idempotent (balanced channels fail it over after a
/// connection loss), with a timeout of its own.
static ECHO_IDEMPOTENT: MethodDescriptor = MethodDescriptor {
    service: SERVICE,
    method: "echo",
    idempotent: true,
    default_timeout: Some(Duration::from_secs(5)),
};

/// A test server with a fault proxy in front.
async fn proxied() -> (TestServer, FaultProxy) {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(server.addr()).expect("a proxy");
    (server, proxy)
}

async fn connect(proxy: &FaultProxy, config: ChannelConfig) -> Channel {
    Channel::connect_with(proxy.addr(), config)
        .await
        .expect("connect through the proxy")
}

async fn echo(channel: &Channel, text: &str) -> Result<EchoReply, RpcError> {
    channel.unary(&ECHO, &args(text), &options()).await
}

/// `big` asking for `size` bytes back.
async fn big(channel: &Channel, size: u64, timeout: Duration) -> Result<BytesReply, RpcError> {
    let args = EchoArgs {
        text: "0".to_owned(),
        size,
        ..EchoArgs::default()
    };
    channel.unary(&BIG, &args, &with_timeout(timeout)).await
}

fn is_connection_lost<T: std::fmt::Debug>(result: &Result<T, RpcError>) -> bool {
    matches!(
        result,
        Err(RpcError::Transport(TransportError::ConnectionLost(_)))
    )
}

/// The channel's pending maps empty (a timed-out call's entry is removed
/// by its connection task, a moment after the call returned).
async fn no_pending(channel: &Channel) {
    eventually("the pending maps to empty", || channel.pending_len() == 0).await;
}

/// The channel has no call waiting; once it is dropped, the server and the
/// proxy have no connection left.
async fn assert_no_leaks(channel: Channel, servers: &[&TestServer], proxies: &[&FaultProxy]) {
    no_pending(&channel).await;
    drop(channel);
    for proxy in proxies {
        // A blackholed pump would not notice the close.
        proxy.set(Fault::Pass);
    }
    for server in servers {
        eventually("the server's connections to close", || {
            server.handle.connection_count() == 0
        })
        .await;
    }
    for proxy in proxies {
        eventually("the proxy's connections to close", || {
            proxy.connections() == 0
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_link_fails_calls_at_their_deadline_then_recovers() {
    let (server, proxy) = proxied().await;
    let channel = connect(&proxy, ChannelConfig::default()).await;
    assert_eq!(echo(&channel, "warm").await.expect("echo").value, "warm");

    proxy.set(Fault::Delay(Duration::from_millis(300)));
    let timeout = Duration::from_millis(100);
    let started = Instant::now();
    let result = channel
        .unary::<_, EchoReply, NoDeclaredError>(&ECHO, &args("late"), &with_timeout(timeout))
        .await;
    assert_eq!(code(&result), StatusCode::DeadlineExceeded);
    assert!(
        started.elapsed() < timeout + SLACK,
        "{:?}",
        started.elapsed()
    );
    no_pending(&channel).await;

    // A timeout that covers the delay both ways succeeds on the same link.
    let started = Instant::now();
    let reply = channel
        .unary::<_, EchoReply, NoDeclaredError>(
            &ECHO,
            &args("patient"),
            &with_timeout(Duration::from_secs(5)),
        )
        .await
        .expect("a patient call");
    assert_eq!(reply.value, "patient");
    assert!(started.elapsed() >= Duration::from_millis(600));

    proxy.set(Fault::Pass);
    assert_eq!(echo(&channel, "fast").await.expect("echo").value, "fast");
    assert_no_leaks(channel, &[&server], &[&proxy]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_link_times_out_big_replies_and_stays_in_sync() {
    let (server, proxy) = proxied().await;
    let channel = connect(&proxy, ChannelConfig::default()).await;
    proxy.set_direction(
        Direction::ToClient,
        Fault::Throttle {
            bytes_per_sec: 32 * 1024,
        },
    );
    // 64 KiB at 32 KiB/s takes two seconds.
    let result = big(&channel, 64 * 1024, Duration::from_millis(300)).await;
    assert_eq!(code(&result), StatusCode::DeadlineExceeded);
    no_pending(&channel).await;
    // Small replies still get through, behind the rest of the big one.
    let reply = big(&channel, 16, Duration::from_secs(8))
        .await
        .expect("a small reply through the throttle");
    assert_eq!(reply.value.len(), 16);

    proxy.set(Fault::Pass);
    let reply = big(&channel, 1024 * 1024, PATIENCE)
        .await
        .expect("a big reply");
    assert_eq!(reply.value, Bytes::from(vec![b'o'; 1024 * 1024]));
    assert_no_leaks(channel, &[&server], &[&proxy]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_fails_calls_in_flight_and_the_channel_reconnects() {
    let (server, proxy) = proxied().await;
    let channel = connect(&proxy, ChannelConfig::default()).await;
    let in_flight = {
        let channel = channel.clone();
        tokio::spawn(async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&GATED, &args("held"), &options())
                .await
        })
    };
    eventually("the handler to start", || server.observed.started() == 1).await;

    proxy.set(Fault::Reset);
    let result = within("the call to fail", in_flight)
        .await
        .expect("no panic");
    assert!(is_connection_lost(&result), "{result:?}");
    no_pending(&channel).await;
    // The server saw the reset too and stopped the handler.
    eventually("the handler to stop", || server.observed.stopped() == 1).await;
    eventually("the server to drop the connection", || {
        server.handle.connection_count() == 0
    })
    .await;

    // While the proxy resets every new connection, calls fail fast: the
    // reset comes while connecting or right after.
    let result = echo(&channel, "refused").await;
    assert!(
        is_connection_lost(&result)
            || matches!(
                result,
                Err(RpcError::Transport(TransportError::Connect { .. }))
            ),
        "{result:?}"
    );

    proxy.set(Fault::Pass);
    let accepted = proxy.accepted();
    // The next call dials again (after the backoff, if the call above
    // failed while dialing) and succeeds: a failed attempt fails only the
    // calls that were waiting for it.
    let reply = echo(&channel, "again").await;
    assert_eq!(reply.expect("echo").value, "again");
    assert!(proxy.accepted() > accepted, "the channel reconnected");
    assert_no_leaks(channel, &[&server], &[&proxy]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_frame_fails_the_call_and_the_channel_reconnects() {
    let (server, proxy) = proxied().await;
    let channel = connect(&proxy, ChannelConfig::default()).await;
    assert_eq!(echo(&channel, "warm").await.expect("echo").value, "warm");

    // The reply's header and a little of its body, then the close.
    proxy.set_direction(Direction::ToClient, Fault::CutAfter(100));
    let started = Instant::now();
    let result = big(&channel, 64 * 1024, PATIENCE).await;
    assert!(is_connection_lost(&result), "{result:?}");
    assert!(started.elapsed() < SLACK, "{:?}", started.elapsed());
    no_pending(&channel).await;

    proxy.set(Fault::Pass);
    let reply = big(&channel, 64 * 1024, PATIENCE).await.expect("big");
    assert_eq!(reply.value.len(), 64 * 1024);
    assert_no_leaks(channel, &[&server], &[&proxy]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_drop_a_blackholed_server_within_three_intervals() {
    let (server, proxy) = proxied().await;
    let config = ChannelConfig {
        heartbeat_interval: Some(HEARTBEAT),
        ..ChannelConfig::default()
    };
    let channel = connect(&proxy, config).await;
    assert_eq!(echo(&channel, "warm").await.expect("echo").value, "warm");

    proxy.set(Fault::Blackhole);
    let blackholed = Instant::now();
    // No timeout: only the heartbeat can end this call.
    let result = within(
        "the heartbeat to give the connection up",
        channel.unary::<_, EchoReply, NoDeclaredError>(&ECHO, &args("unheard"), &options()),
    )
    .await;
    let detected = blackholed.elapsed();
    assert!(
        matches!(
            result,
            Err(RpcError::Transport(TransportError::HeartbeatTimeout { .. }))
        ),
        "{result:?}"
    );
    assert!(detected >= HEARTBEAT * 2, "{detected:?}");
    assert!(detected < HEARTBEAT * 3 + SLACK, "{detected:?}");
    no_pending(&channel).await;

    proxy.set(Fault::Pass);
    assert_eq!(echo(&channel, "back").await.expect("echo").value, "back");
    assert_no_leaks(channel, &[&server], &[&proxy]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_drops_a_client_it_no_longer_hears_within_three_intervals() {
    let server = TestServer::start_with(|b| b.heartbeat_interval(Some(HEARTBEAT))).await;
    let proxy = FaultProxy::start(server.addr()).expect("a proxy");
    // The client pings often (but not so often that a loaded machine's
    // late pong makes it give up first), and its pings never arrive.
    let config = ChannelConfig {
        heartbeat_interval: Some(HEARTBEAT / 2),
        ..ChannelConfig::default()
    };
    let channel = connect(&proxy, config).await;
    assert_eq!(echo(&channel, "warm").await.expect("echo").value, "warm");
    assert_eq!(server.handle.connection_count(), 1);

    proxy.set_direction(Direction::ToUpstream, Fault::Blackhole);
    let blackholed = Instant::now();
    eventually("the server to drop the silent client", || {
        server.handle.connection_count() == 0
    })
    .await;
    let detected = blackholed.elapsed();
    assert!(detected < HEARTBEAT * 3 + SLACK, "{detected:?}");

    proxy.set(Fault::Pass);
    assert_eq!(echo(&channel, "back").await.expect("echo").value, "back");
    assert_no_leaks(channel, &[&server], &[&proxy]).await;
}

/// Three instances behind proxies, registered in a memory registry.
struct Cluster {
    servers: Vec<TestServer>,
    proxies: Vec<FaultProxy>,
    instances: Vec<ServiceInstance>,
    registry: MemoryRegistry,
}

impl Cluster {
    async fn start(n: usize) -> Cluster {
        let registry = MemoryRegistry::new();
        let mut cluster = Cluster {
            servers: Vec::new(),
            proxies: Vec::new(),
            instances: Vec::new(),
            registry: registry.clone(),
        };
        for _ in 0..n {
            let (server, proxy) = proxied().await;
            let instance = ServiceInstance::new(SERVICE, proxy.addr());
            registry
                .register(instance.clone())
                .await
                .expect("registers");
            cluster.servers.push(server);
            cluster.proxies.push(proxy);
            cluster.instances.push(instance);
        }
        cluster
    }

    async fn channel(&self, options: BalanceOptions) -> Channel {
        Channel::balanced(Arc::new(self.registry.clone()), SERVICE, options)
            .await
            .expect("a balanced channel")
    }

    async fn assert_no_leaks(&self, channel: Channel) {
        let servers: Vec<&TestServer> = self.servers.iter().collect();
        let proxies: Vec<&FaultProxy> = self.proxies.iter().collect();
        assert_no_leaks(channel, &servers, &proxies).await;
    }
}

/// `workers` tasks calling idempotent `echo` until `total` calls ended;
/// every call must succeed.
async fn load(channel: &Channel, workers: usize, total: usize) {
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (channel, done) = (channel.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            while done.fetch_add(1, Ordering::SeqCst) < total {
                let result: Result<EchoReply, RpcError> = channel
                    .unary(&ECHO_IDEMPOTENT, &args("x"), &options())
                    .await;
                if let Err(error) = result {
                    return Err(error.to_string());
                }
            }
            Ok(())
        }));
    }
    for task in tasks {
        let outcome = within("the load", task).await.expect("no panic");
        assert_eq!(outcome, Ok(()), "every call succeeds");
    }
}

fn attempts(channel: &Channel, instance: &ServiceInstance) -> u64 {
    channel
        .instances()
        .iter()
        .find(|i| i.id == instance.id)
        .map_or(0, |i| i.attempts)
}

fn ejected(channel: &Channel, instance: &ServiceInstance) -> bool {
    channel
        .instances()
        .iter()
        .any(|i| i.id == instance.id && i.ejected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_in_flight_moves_traffic_off_a_slow_instance() {
    let cluster = Cluster::start(3).await;
    let channel = cluster
        .channel(BalanceOptions::with_strategy(Strategy::LeastInFlight))
        .await;
    cluster.proxies[0].set(Fault::Delay(Duration::from_millis(100)));
    load(&channel, 8, 600).await;

    let slow = attempts(&channel, &cluster.instances[0]);
    let total: u64 = cluster
        .instances
        .iter()
        .map(|i| attempts(&channel, i))
        .sum();
    assert!(total >= 600, "{total}");
    // A fair share would be a third; calls that take 200 ms more pile up
    // in flight and the balancer picks the others.
    assert!(slow * 10 < total, "the slow instance got {slow} of {total}");
    assert!(
        !ejected(&channel, &cluster.instances[0]),
        "slow is not dead"
    );
    cluster.assert_no_leaks(channel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_instance_is_ejected_and_calls_succeed_on_the_others() {
    let cluster = Cluster::start(3).await;
    let channel = cluster
        .channel(BalanceOptions {
            // No probe comes back during the test.
            eject_base: Duration::from_secs(600),
            ..BalanceOptions::with_strategy(Strategy::RoundRobin)
        })
        .await;
    load(&channel, 4, 30).await;
    cluster.proxies[0].set(Fault::Reset);
    load(&channel, 4, 300).await;

    assert!(ejected(&channel, &cluster.instances[0]));
    assert!(!ejected(&channel, &cluster.instances[1]));
    assert!(!ejected(&channel, &cluster.instances[2]));
    // Once ejected it gets nothing more.
    let dead = attempts(&channel, &cluster.instances[0]);
    load(&channel, 4, 100).await;
    assert_eq!(attempts(&channel, &cluster.instances[0]), dead);
    cluster.assert_no_leaks(channel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_instance_is_found_by_heartbeats_and_ejected() {
    let cluster = Cluster::start(3).await;
    let channel = cluster
        .channel(BalanceOptions {
            eject_base: Duration::from_secs(600),
            channel: ChannelConfig {
                heartbeat_interval: Some(HEARTBEAT),
                ..ChannelConfig::default()
            },
            ..BalanceOptions::with_strategy(Strategy::RoundRobin)
        })
        .await;
    load(&channel, 4, 30).await;
    cluster.proxies[0].set(Fault::Blackhole);
    // Calls stuck on the blackholed instance fail over when its heartbeat
    // gives up, before their 5 s timeout (a timeout would not be retried:
    // `load` would fail). Each heartbeat failure counts toward ejection.
    let deadline = Instant::now() + PATIENCE;
    while !ejected(&channel, &cluster.instances[0]) {
        assert!(Instant::now() < deadline, "never ejected");
        load(&channel, 4, 100).await;
    }
    assert!(!ejected(&channel, &cluster.instances[1]));
    cluster.assert_no_leaks(channel).await;
}
