//! The ZooKeeper registry against a real ZooKeeper server: consumers that
//! watch, providers that come and go, and Curator's discovery cases.

mod support;

use std::time::{Duration, Instant};

use courier::registry::{
    InstanceWatch, Registry, ServiceInstance, ZooKeeperOptions, ZooKeeperRegistry,
};
use support::zookeeper::ZooKeeperServer;
use zookeeper_client::{Acls, CreateMode};

const PATIENCE: Duration = Duration::from_secs(10);
const SESSION_TIMEOUT: Duration = Duration::from_secs(2);

fn options(server: &ZooKeeperServer) -> ZooKeeperOptions {
    ZooKeeperOptions::new(server.connect_string())
        .with_session_timeout(SESSION_TIMEOUT)
        .with_connect_timeout(PATIENCE)
}

async fn connect(server: &ZooKeeperServer) -> ZooKeeperRegistry {
    ZooKeeperRegistry::connect(options(server))
        .await
        .expect("connects")
}

fn ids(instances: &[ServiceInstance]) -> Vec<String> {
    let mut ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
    ids.sort();
    ids
}

/// Waits (up to `within`) until the watched list satisfies `check`; returns
/// how long that took.
async fn wait_for(
    watch: &mut InstanceWatch,
    within: Duration,
    what: &str,
    check: impl Fn(&[ServiceInstance]) -> bool,
) -> Duration {
    let started = Instant::now();
    let reached = tokio::time::timeout(within, watch.wait_for(|list| check(list)))
        .await
        .map(|result| result.map(|_| ()));
    match reached {
        Ok(Ok(())) => started.elapsed(),
        Ok(Err(_)) => panic!("the watch closed while waiting for {what}"),
        Err(_) => panic!(
            "{what}: not within {within:?}; the list is {:?}",
            ids(&watch.borrow())
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watching_consumer_sees_providers_come_and_go() {
    let server = ZooKeeperServer::start().await;
    let consumer = connect(&server).await;
    let mut watch = consumer.watch("hello.Greeter").await.expect("watches");
    assert!(watch.borrow().is_empty());

    // A provider appears within 1 s.
    let provider = connect(&server).await;
    let instance = ServiceInstance::from_host("hello.Greeter", "127.0.0.1", 7070);
    provider
        .register(instance.clone())
        .await
        .expect("registers");
    wait_for(
        &mut watch,
        Duration::from_secs(1),
        "the provider to appear",
        |list| list == std::slice::from_ref(&instance),
    )
    .await;

    // A provider that closes its session disappears (at once: it deletes
    // its nodes first), well within session timeout + 1 s.
    provider.close().await.expect("closes");
    wait_for(
        &mut watch,
        SESSION_TIMEOUT + Duration::from_secs(1),
        "the closed provider to disappear",
        |list| list.is_empty(),
    )
    .await;

    // A provider that crashes (its session is never closed) disappears when
    // its session expires: within session timeout + 1 s of its last sign of
    // life.
    let crashed = server.detached_client(SESSION_TIMEOUT).await;
    let json = br#"{"name":"hello.Greeter","id":"crashed","address":"10.0.0.9","port":1,"sslPort":null,"payload":null,"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null}"#;
    crashed
        .create(
            "/courier/hello.Greeter/crashed",
            json,
            &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
        )
        .await
        .expect("create");
    wait_for(
        &mut watch,
        PATIENCE,
        "the crashing provider to appear",
        |list| ids(list) == ["crashed"],
    )
    .await;
    drop(crashed);
    wait_for(
        &mut watch,
        SESSION_TIMEOUT + Duration::from_secs(1),
        "the crashed provider to disappear",
        |list| list.is_empty(),
    )
    .await;
    consumer.close().await.expect("closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_consumer_sees_existing_instances_at_once() {
    let server = ZooKeeperServer::start().await;
    let provider = connect(&server).await;
    let mut registered = Vec::new();
    for port in 1..=3 {
        let instance = ServiceInstance::from_host("shop.Orders", "127.0.0.1", port);
        provider
            .register(instance.clone())
            .await
            .expect("registers");
        registered.push(instance);
    }
    let consumer = connect(&server).await;
    let watch = consumer.watch("shop.Orders").await.expect("watches");
    assert_eq!(
        ids(&watch.borrow()),
        ids(&registered),
        "no waiting for an event"
    );
    assert_eq!(
        ids(&consumer.list("shop.Orders").await.expect("lists")),
        ids(&registered)
    );
    // A second watch of the same service shares the first one's list.
    let again = consumer.watch("shop.Orders").await.expect("watches");
    assert_eq!(ids(&again.borrow()), ids(&registered));
    provider.close().await.expect("closes");
    consumer.close().await.expect("closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_fires_the_watch_of_its_service_only() {
    let server = ZooKeeperServer::start().await;
    let registry = connect(&server).await;
    let mut a = registry.watch("svc.A").await.expect("watches");
    let mut b = registry.watch("svc.B").await.expect("watches");

    let on_a = ServiceInstance::from_host("svc.A", "127.0.0.1", 1);
    registry.register(on_a.clone()).await.expect("registers");
    a.changed().await.expect("A fires");
    assert_eq!(*a.borrow_and_update(), std::slice::from_ref(&on_a));

    // B's first change must be B's own instance: had A's change fired B, B
    // would wake with its unchanged (empty) list.
    let on_b = ServiceInstance::from_host("svc.B", "127.0.0.1", 2);
    registry.register(on_b.clone()).await.expect("registers");
    tokio::time::timeout(PATIENCE, b.changed())
        .await
        .expect("B fires in time")
        .expect("B fires");
    assert_eq!(*b.borrow_and_update(), std::slice::from_ref(&on_b));
    assert!(!a.has_changed().expect("open"), "B's change did not fire A");

    // A data change (same id, new weight) fires A with the new data.
    let mut heavier = on_a.clone();
    heavier.weight = 500;
    registry
        .register(heavier.clone())
        .await
        .expect("re-registers");
    tokio::time::timeout(PATIENCE, a.changed())
        .await
        .expect("A fires in time")
        .expect("A fires");
    assert_eq!(*a.borrow_and_update(), [heavier]);
    assert!(!b.has_changed().expect("open"));
    registry.close().await.expect("closes");
}
