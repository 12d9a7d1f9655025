//! The ZooKeeper registry against a real ZooKeeper server, when things go
//! wrong: ZooKeeper stopped and restarted, sessions expired by the server
//! (behind a network partition), ZooKeeper down at start, and the cache
//! file.

mod support;

use std::time::Duration;

use courier::registry::{
    InstanceWatch, Registry, ServiceInstance, ZooKeeperOptions, ZooKeeperRegistry,
};
use support::zookeeper::{Partition, ZooKeeperServer, eventually};
use zookeeper_client as zk;

const PATIENCE: Duration = Duration::from_secs(10);
const SESSION_TIMEOUT: Duration = Duration::from_secs(2);

fn options(connect_string: String) -> ZooKeeperOptions {
    ZooKeeperOptions::new(connect_string)
        .with_session_timeout(SESSION_TIMEOUT)
        .with_connect_timeout(PATIENCE)
}

async fn connect(connect_string: String) -> ZooKeeperRegistry {
    ZooKeeperRegistry::connect(options(connect_string))
        .await
        .expect("connects")
}

fn ids(instances: &[ServiceInstance]) -> Vec<String> {
    let mut ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
    ids.sort();
    ids
}

/// Waits (up to `within`) until the watched list satisfies `check`.
async fn wait_for(
    watch: &mut InstanceWatch,
    within: Duration,
    what: &str,
    check: impl Fn(&[ServiceInstance]) -> bool,
) {
    let reached = tokio::time::timeout(within, watch.wait_for(|list| check(list)))
        .await
        .map(|result| result.map(|_| ()));
    match reached {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("the watch closed while waiting for {what}"),
        Err(_) => panic!(
            "{what}: not within {within:?}; the list is {:?}",
            ids(&watch.borrow())
        ),
    }
}

/// The session that owns the node at `path`, if it exists.
async fn owner(zk: &zk::Client, path: &str) -> Option<i64> {
    zk.get_data(path)
        .await
        .ok()
        .map(|(_, stat)| stat.ephemeral_owner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_stopped_and_restarted() {
    let mut server = ZooKeeperServer::start().await;
    let provider = connect(server.connect_string()).await;
    let consumer = connect(server.connect_string()).await;
    let before = ServiceInstance::from_host("outage.Service", "127.0.0.1", 1);
    provider.register(before.clone()).await.expect("registers");
    let mut watch = consumer.watch("outage.Service").await.expect("watches");
    wait_for(&mut watch, PATIENCE, "the instance", |list| {
        list == std::slice::from_ref(&before)
    })
    .await;
    let old_session = provider.session_id().expect("a session");

    server.stop();
    // A provider may register during the outage: it is recorded.
    let during = ServiceInstance::from_host("outage.Service", "127.0.0.1", 2);
    provider.register(during.clone()).await.expect("recorded");
    // Outlast the session timeout: both clients give their sessions up.
    eventually("the provider to give its session up", PATIENCE, || async {
        provider.session_id().is_none()
    })
    .await;
    eventually("the consumer to give its session up", PATIENCE, || async {
        consumer.session_id().is_none()
    })
    .await;
    // The consumer kept its last list all along.
    assert!(
        !watch.has_changed().expect("open"),
        "no change during the outage"
    );
    assert_eq!(*watch.borrow(), std::slice::from_ref(&before));
    assert_eq!(
        consumer
            .list("outage.Service")
            .await
            .expect("the last known list"),
        std::slice::from_ref(&before)
    );

    server.restart().await;
    // Both instances are registered in the provider's new session (the old
    // session's node, restored by the restarted server, is replaced).
    wait_for(
        &mut watch,
        PATIENCE,
        "both instances after the restart",
        |list| ids(list) == ids(&[before.clone(), during.clone()]),
    )
    .await;
    let zk = server.client().await;
    let path = format!("/courier/outage.Service/{}", before.id);
    eventually(
        "the node to belong to the new session",
        PATIENCE,
        || async {
            let new_session = provider.session_id();
            new_session.is_some_and(|id| id != old_session)
                && owner(&zk, &path).await == new_session
        },
    )
    .await;
    provider.close().await.expect("closes");
    consumer.close().await.expect("closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_forces_re_registration() {
    let server = ZooKeeperServer::start().await;
    let partition = Partition::new(&server).await;
    let provider = connect(partition.connect_string()).await;
    let consumer = connect(server.connect_string()).await;
    let instance = ServiceInstance::from_host("expiry.Service", "127.0.0.1", 3);
    provider
        .register(instance.clone())
        .await
        .expect("registers");
    let mut watch = consumer.watch("expiry.Service").await.expect("watches");
    wait_for(&mut watch, PATIENCE, "the instance", |list| {
        list == std::slice::from_ref(&instance)
    })
    .await;
    let old_session = provider.session_id().expect("a session");

    // Cut the provider off until ZooKeeper expires its session (and deletes
    // its node), then let it back: it is told its session expired, starts
    // a new one and registers the instance again.
    partition.cut();
    wait_for(
        &mut watch,
        SESSION_TIMEOUT + PATIENCE,
        "the server to expire the provider's session",
        |list| list.is_empty(),
    )
    .await;
    partition.heal();
    wait_for(
        &mut watch,
        PATIENCE,
        "the instance registered again",
        |list| list == std::slice::from_ref(&instance),
    )
    .await;
    let zk = server.client().await;
    let path = format!("/courier/expiry.Service/{}", instance.id);
    let new_session = provider.session_id().expect("a new session");
    assert_ne!(new_session, old_session);
    assert_eq!(owner(&zk, &path).await, Some(new_session));
    provider.close().await.expect("closes");
    consumer.close().await.expect("closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregister_racing_a_re_registration_does_not_bring_the_instance_back() {
    let server = ZooKeeperServer::start().await;
    let partition = Partition::new(&server).await;
    let provider = connect(partition.connect_string()).await;
    let consumer = connect(server.connect_string()).await;
    let zk = server.client().await;
    let mut watch = consumer.watch("race.Service").await.expect("watches");

    // Each round the provider's session expires and the provider comes back
    // to write its registrations into a new session; the deregistration
    // happens during the partition, together with the return, or just
    // after the new session is up.
    for round in 0..3u16 {
        let instance = ServiceInstance::from_host("race.Service", "127.0.0.1", 5000 + round);
        provider
            .register(instance.clone())
            .await
            .expect("registers");
        wait_for(&mut watch, PATIENCE, "the instance", |list| {
            list == std::slice::from_ref(&instance)
        })
        .await;
        let old_session = provider.session_id();

        partition.cut();
        if round == 0 {
            provider
                .deregister("race.Service", &instance.id)
                .await
                .expect("recorded while cut off");
        }
        wait_for(
            &mut watch,
            SESSION_TIMEOUT + PATIENCE,
            "the server to expire the session",
            |list| list.is_empty(),
        )
        .await;
        match round {
            0 => partition.heal(),
            1 => {
                let (_, deregistered) = tokio::join!(
                    async { partition.heal() },
                    provider.deregister("race.Service", &instance.id)
                );
                deregistered.expect("deregisters");
            }
            _ => {
                partition.heal();
                eventually("a new provider session", PATIENCE, || async {
                    provider.is_connected() && provider.session_id() != old_session
                })
                .await;
                provider
                    .deregister("race.Service", &instance.id)
                    .await
                    .expect("deregisters");
            }
        }
        eventually("a new provider session", PATIENCE, || async {
            provider.is_connected() && provider.session_id() != old_session
        })
        .await;
        // A marker registered now is seen after anything the provider sent
        // before it.
        let marker = ServiceInstance::from_host("race.Service", "127.0.0.1", 6000 + round);
        provider.register(marker.clone()).await.expect("registers");
        wait_for(&mut watch, PATIENCE, "only the marker", |list| {
            list == std::slice::from_ref(&marker)
        })
        .await;
        let path = format!("/courier/race.Service/{}", instance.id);
        assert_eq!(
            owner(&zk, &path).await,
            None,
            "round {round}: the node stays deleted"
        );
        provider
            .deregister("race.Service", &marker.id)
            .await
            .expect("deregisters");
        wait_for(&mut watch, PATIENCE, "an empty list", |list| {
            list.is_empty()
        })
        .await;
    }
    provider.close().await.expect("closes");
    consumer.close().await.expect("closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_started_while_zookeeper_is_down_registers_once_it_is_up() {
    let mut server = ZooKeeperServer::reserve();
    let provider = ZooKeeperRegistry::connect(
        options(server.connect_string()).with_connect_timeout(Duration::from_millis(200)),
    )
    .await
    .expect("an unreachable ZooKeeper is not an error");
    assert!(!provider.is_connected());
    let instance = ServiceInstance::from_host("late.Service", "127.0.0.1", 4000);
    provider
        .register(instance.clone())
        .await
        .expect("recorded while ZooKeeper is down");

    server.restart().await;
    let consumer = connect(server.connect_string()).await;
    let mut watch = consumer.watch("late.Service").await.expect("watches");
    wait_for(
        &mut watch,
        PATIENCE,
        "the early provider to register",
        |list| list == std::slice::from_ref(&instance),
    )
    .await;
    provider.close().await.expect("closes");
    consumer.close().await.expect("closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_file_lets_a_consumer_start_while_zookeeper_is_down() {
    let mut server = ZooKeeperServer::start().await;
    let cache = server.dir().join("registry-cache.json");
    let provider = connect(server.connect_string()).await;
    let instance = ServiceInstance::from_host("cached.Service", "127.0.0.1", 8080);
    provider
        .register(instance.clone())
        .await
        .expect("registers");

    let first =
        ZooKeeperRegistry::connect(options(server.connect_string()).with_cache_file(&cache))
            .await
            .expect("connects");
    let watch = first.watch("cached.Service").await.expect("watches");
    assert_eq!(*watch.borrow(), std::slice::from_ref(&instance));
    eventually("the cache file to hold the instance", PATIENCE, || async {
        std::fs::read_to_string(&cache).is_ok_and(|text| text.contains(&instance.id))
    })
    .await;
    drop(watch);
    first.close().await.expect("closes");

    server.stop();
    let started = ZooKeeperRegistry::connect(
        options(server.connect_string())
            .with_cache_file(&cache)
            .with_connect_timeout(Duration::from_millis(300)),
    )
    .await
    .expect("starts while ZooKeeper is down");
    assert!(!started.is_connected());
    let watch = started.watch("cached.Service").await.expect("watches");
    assert_eq!(
        *watch.borrow(),
        std::slice::from_ref(&instance),
        "from the cache file"
    );
    assert_eq!(
        started
            .list("cached.Service")
            .await
            .expect("lists from the cache"),
        std::slice::from_ref(&instance)
    );

    // Once ZooKeeper is back, the watch follows it again (the provider's
    // session may have expired meanwhile, and it registers again).
    server.restart().await;
    let mut watch = watch;
    let later = ServiceInstance::from_host("cached.Service", "127.0.0.1", 8081);
    provider.register(later.clone()).await.expect("registers");
    wait_for(&mut watch, PATIENCE, "both instances", |list| {
        ids(list) == ids(&[instance.clone(), later.clone()])
    })
    .await;
    provider.close().await.expect("closes");
    started.close().await.expect("closes");
}
