//! ZooKeeper digest credentials never leak: with every log level on, a
//! provider that registers with a password, a consumer with the wrong
//! one, and a URL that carries it show the password nowhere: not in logs,
//! `Debug` or `Display` output, nor error messages. (That the ACLs keep
//! strangers from deleting a provider's node, and that a wrong password
//! fails with a clear error, is in `zookeeper_layout.rs`,
//! `digest_acls_protect_a_providers_nodes`.)

mod captured_log;
mod support;

use std::time::Duration;

use captured_log::CapturedLog;
use courier::registry::{
    DigestCredentials, Registry, RegistryError, RegistryUrl, ServiceInstance, ZooKeeperOptions,
    ZooKeeperRegistry, connect_registry,
};
use support::zookeeper::ZooKeeperServer;

const PATIENCE: Duration = Duration::from_secs(10);
const SECRET: &str = "Zk-s3cret-8c1f0d";
const WRONG: &str = "Zk-wrong-5a77e2";

fn options(server: &ZooKeeperServer, password: &str) -> ZooKeeperOptions {
    ZooKeeperOptions::new(server.connect_string())
        .with_session_timeout(Duration::from_secs(2))
        .with_connect_timeout(PATIENCE)
        .with_digest(DigestCredentials::new("app", password))
}

#[test]
fn digest_passwords_never_show_in_logs_debug_output_or_errors() {
    let captured = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    // A current-thread runtime: every task (the ZooKeeper client's
    // included) runs under this subscriber.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut shown = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let server = ZooKeeperServer::start().await;
            let provider_options = options(&server, SECRET);
            shown.push(format!("{provider_options:?}"));
            let provider = ZooKeeperRegistry::connect(provider_options)
                .await
                .expect("connects");
            shown.push(format!("{provider:?}"));
            let instance = ServiceInstance::from_host("acl.Service", "127.0.0.1", 7100);
            provider
                .register(instance.clone())
                .await
                .expect("registers");

            // The wrong password, given in a registry URL.
            let url: RegistryUrl = format!(
                "zk://{}/courier?session_timeout_ms=2000&digest=app:{WRONG}",
                server.connect_string()
            )
            .parse()
            .expect("a registry URL");
            shown.push(format!("{url:?}"));
            shown.push(url.to_string());
            let error = match connect_registry(&url).await {
                Ok(_) => panic!("the wrong password connected"),
                Err(error) => error,
            };
            assert!(
                matches!(&error, RegistryError::WrongPassword { user, .. } if user == "app"),
                "{error:?}"
            );
            shown.push(error.to_string());
            shown.push(format!("{error:?}"));

            provider
                .deregister("acl.Service", &instance.id)
                .await
                .expect("the owner may deregister");
            provider.close().await.expect("closes");
        });
    });
    let logs = captured.text();
    assert!(!logs.is_empty(), "the registry logged something");
    shown.push(logs);
    for text in &shown {
        assert!(!text.contains(SECRET), "the password shows in: {text}");
        assert!(!text.contains(WRONG), "the wrong password shows in: {text}");
    }
    assert!(shown[0].contains("app"), "the user is shown: {}", shown[0]);
}
