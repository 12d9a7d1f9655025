//! The ZooKeeper registry against a real ZooKeeper server: the node layout
//! and bytes of DISCOVERY.md, plain Curator instances, and digest ACLs.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use courier::Serializer;
use courier::registry::{
    DigestCredentials, Registry, RegistryError, RegistryUrl, ServiceInstance, ZooKeeperOptions,
    ZooKeeperRegistry, connect_registry,
};
use support::zookeeper::{ZooKeeperServer, eventually};
use zookeeper_client::{self as zk, Acls, CreateMode, Permission};

const PATIENCE: Duration = Duration::from_secs(10);

fn options(server: &ZooKeeperServer) -> ZooKeeperOptions {
    ZooKeeperOptions::new(server.connect_string())
        .with_session_timeout(Duration::from_secs(2))
        .with_connect_timeout(PATIENCE)
}

/// id, address, port, weight, serializers, protocol.
type Summary<'a> = (&'a str, &'a str, u16, u32, &'a [Serializer], &'a str);

fn now_millis() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_instance_matches_the_curator_layout() {
    let server = ZooKeeperServer::start().await;
    let url: RegistryUrl = format!("zk://{}?session_timeout_ms=2000", server.connect_string())
        .parse()
        .expect("valid URL");
    let registry = connect_registry(&url).await.expect("connects");

    let mut instance = ServiceInstance::from_host("hello.Greeter", "127.0.0.1", 7070);
    instance.metadata.insert("zone".into(), "eu-1".into());
    let before = now_millis();
    registry
        .register(instance.clone())
        .await
        .expect("registers");
    let after = now_millis();

    let zk = server.client().await;
    let path = format!("/courier/hello.Greeter/{}", instance.id);
    let (data, stat) = zk.get_data(&path).await.expect("the instance node exists");
    let json = String::from_utf8(data).expect("UTF-8");
    let time: u64 = json
        .split("\"registrationTimeUTC\":")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|time| time.parse().ok())
        .expect("registrationTimeUTC is a number");
    assert!(
        (before..=after).contains(&time),
        "{time} not in {before}..={after}"
    );
    let expected = format!(
        concat!(
            r#"{{"name":"hello.Greeter","id":"{id}","address":"127.0.0.1","port":7070,"#,
            r#""sslPort":null,"payload":{{"@class":"java.util.LinkedHashMap","weight":"100","#,
            r#""serializers":"{serializers}","protocol":"courier/1","zone":"eu-1"}},"#,
            r#""registrationTimeUTC":{time},"serviceType":"DYNAMIC","uriSpec":null}}"#
        ),
        id = instance.id,
        time = time,
        serializers = Serializer::ALL.map(Serializer::name).join(","),
    );
    assert_eq!(json, expected);

    // Ephemeral, owned by the registry's session; the parents are
    // containers (ZooKeeper marks them with owner i64::MIN) or persistent.
    assert_ne!(stat.ephemeral_owner, 0, "the instance node is ephemeral");
    for parent in ["/courier", "/courier/hello.Greeter"] {
        let (_, parent_stat) = zk.get_data(parent).await.expect("parent exists");
        assert!(
            matches!(parent_stat.ephemeral_owner, 0 | i64::MIN),
            "{parent} is persistent or a container, not ephemeral"
        );
    }
    let (acls, _) = zk.get_acl(&path).await.expect("acl");
    assert_eq!(
        &acls[..],
        &Acls::anyone_all()[..],
        "no credentials: open ACL"
    );

    assert_eq!(
        registry.list("hello.Greeter").await.expect("lists"),
        std::slice::from_ref(&instance)
    );
    registry
        .deregister("hello.Greeter", &instance.id)
        .await
        .expect("deregisters");
    assert_eq!(zk.get_data(&path).await.err(), Some(zk::Error::NoNode));
    assert!(
        registry
            .list("hello.Greeter")
            .await
            .expect("lists")
            .is_empty()
    );
    registry.close().await.expect("closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_lives_and_dies_with_the_session() {
    let server = ZooKeeperServer::start().await;
    let registry = ZooKeeperRegistry::connect(options(&server))
        .await
        .expect("connects");
    let instance = ServiceInstance::from_host("shop.Orders:2", "10.1.2.3", 9000);
    registry
        .register(instance.clone())
        .await
        .expect("registers");
    let zk = server.client().await;
    let path = format!("/courier/shop.Orders:2/{}", instance.id);
    let (_, stat) = zk.get_data(&path).await.expect("exists");
    assert_eq!(Some(stat.ephemeral_owner), registry.session_id());

    // Dropping every handle ends the session, and with it the node.
    drop(registry);
    eventually("the node to go with its session", PATIENCE, || async {
        zk.get_data(&path).await.err() == Some(zk::Error::NoNode)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_curator_instances_are_listed_with_defaults() {
    let server = ZooKeeperServer::start().await;
    let zk = server.client().await;
    let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
    zk.mkdir("/courier/plain.Service", &open)
        .await
        .expect("mkdir");
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let nodes: [(&str, &str); 5] = [
        (
            "a",
            r#"{"name":"plain.Service","id":"a","address":"10.0.0.1","port":81,"sslPort":null,"payload":{"@class":"java.util.LinkedHashMap"},"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null}"#,
        ),
        (
            "b",
            r#"{"name":"plain.Service","id":"b","address":"10.0.0.2","port":82,"sslPort":null,"payload":null,"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null,"enabled":true}"#,
        ),
        ("garbage", "not json at all"),
        ("empty", ""),
        (
            "no-port",
            r#"{"name":"plain.Service","id":"no-port","address":"h"}"#,
        ),
    ];
    for (id, json) in nodes {
        zk.create(
            &format!("/courier/plain.Service/{id}"),
            json.as_bytes(),
            &ephemeral,
        )
        .await
        .expect("create");
    }

    let registry = ZooKeeperRegistry::connect(options(&server))
        .await
        .expect("connects");
    let listed = registry.list("plain.Service").await.expect("lists");
    let summary: Vec<Summary<'_>> = listed
        .iter()
        .map(|i| {
            (
                i.id.as_str(),
                i.address.as_str(),
                i.port,
                i.weight,
                &i.serializers[..],
                i.protocol.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a", "10.0.0.1", 81, 100, &Serializer::ALL[..], "courier/1"),
            ("b", "10.0.0.2", 82, 100, &Serializer::ALL[..], "courier/1"),
        ],
        "bad nodes are skipped, plain ones get the defaults"
    );
    let watch = registry.watch("plain.Service").await.expect("watches");
    assert_eq!(*watch.borrow(), listed);
    registry.close().await.expect("closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acls_protect_a_providers_nodes() {
    let server = ZooKeeperServer::start().await;
    let secret = "s3cret-Pa55";
    let provider = ZooKeeperRegistry::connect(
        options(&server).with_digest(DigestCredentials::new("app", secret)),
    )
    .await
    .expect("connects");
    let instance = ServiceInstance::from_host("secure.Service", "127.0.0.1", 7000);
    provider
        .register(instance.clone())
        .await
        .expect("registers");
    let path = format!("/courier/secure.Service/{}", instance.id);

    // Anyone may read; only the credentials may change or delete.
    let stranger = server.client().await;
    let (data, _) = stranger.get_data(&path).await.expect("anyone may read");
    assert!(!data.is_empty());
    assert_eq!(
        stranger.delete(&path, None).await.err(),
        Some(zk::Error::NoAuth),
        "an unauthenticated client cannot delete the node"
    );
    assert_eq!(
        stranger.set_data(&path, b"{}", None).await.err(),
        Some(zk::Error::NoAuth)
    );
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    assert_eq!(
        stranger
            .create("/courier/secure.Service/intruder", b"{}", &ephemeral)
            .await
            .err(),
        Some(zk::Error::NoAuth)
    );
    let (acls, _) = stranger.get_acl(&path).await.expect("acl");
    let entries: Vec<(&str, Permission)> = acls
        .iter()
        .map(|acl| (acl.scheme(), acl.permission()))
        .collect();
    assert_eq!(
        entries,
        [("digest", Permission::ALL), ("world", Permission::READ)]
    );
    assert!(acls[0].id().starts_with("app:"));

    // The same user with a wrong password: a clear error, at connect.
    let wrong = "not-the-Pa55word";
    let error = ZooKeeperRegistry::connect(
        options(&server).with_digest(DigestCredentials::new("app", wrong)),
    )
    .await
    .expect_err("wrong password");
    assert!(
        matches!(&error, RegistryError::WrongPassword { user, path } if user == "app" && path == "/courier"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("wrong password"), "{message}");
    assert!(
        !message.contains(wrong) && !message.contains(secret),
        "{message}"
    );

    // A registry without credentials is refused, with a typed error.
    let anonymous = ZooKeeperRegistry::connect(options(&server))
        .await
        .expect("connects");
    let refused = anonymous
        .register(ServiceInstance::from_host(
            "secure.Service",
            "127.0.0.1",
            7001,
        ))
        .await
        .expect_err("not authorized");
    assert!(
        matches!(
            &refused,
            RegistryError::NotAuthorized {
                operation: "create",
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!(
        anonymous
            .deregister("secure.Service", &instance.id)
            .await
            .err()
            .map(|e| matches!(e, RegistryError::NotAuthorized { .. })),
        Some(true)
    );
    assert_eq!(
        anonymous
            .list("secure.Service")
            .await
            .expect("anyone may list"),
        std::slice::from_ref(&instance)
    );

    // The password is never shown.
    assert!(!format!("{provider:?}").contains(secret));
    provider.close().await.expect("closes");
    anonymous.close().await.expect("closes");
}
