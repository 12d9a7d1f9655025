//! A method's `@hash_key` parameter routes its calls through the
//! consistent-hash balancer: the same key always reaches the same instance.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use courier::balance::Strategy;
use courier::client::Stub;
use courier::client::{BalanceOptions, Channel};
use courier::registry::{MemoryRegistry, Registry, ServiceInstance};
use courier::server::{Server, ServerHandle};
use courier::{CallContext, RpcError};
use courier_tests::fixtures::annotations::accounts::{Accounts, AccountsClient, AccountsServer};

/// Answers every balance with the number of the instance that served it.
struct Instance(u64);

impl Accounts for Instance {
    async fn balance(&self, _ctx: CallContext, _account: String) -> Result<u64, RpcError> {
        Ok(self.0)
    }

    async fn transfer(
        &self,
        _ctx: CallContext,
        _from: String,
        _to: String,
        _cents: u64,
    ) -> Result<(), RpcError> {
        Ok(())
    }
}

async fn start_instances(registry: &MemoryRegistry, count: u64) -> Vec<ServerHandle> {
    let mut servers = Vec::new();
    for number in 0..count {
        let server = Server::builder()
            .add_service(AccountsServer::new(Instance(number)))
            .bind("127.0.0.1:0")
            .await
            .expect("bind");
        registry
            .register(ServiceInstance::new(
                AccountsClient::WIRE_NAME,
                server.local_addr(),
            ))
            .await
            .expect("register");
        servers.push(server);
    }
    servers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_account_always_reaches_the_same_instance() {
    let registry = MemoryRegistry::new();
    let servers = start_instances(&registry, 4).await;
    let channel = Channel::balanced(
        Arc::new(registry.clone()),
        AccountsClient::WIRE_NAME,
        BalanceOptions::with_strategy(Strategy::ConsistentHash),
    )
    .await
    .expect("balanced channel");
    let accounts = AccountsClient::new(channel);

    let mut owner: HashMap<String, u64> = HashMap::new();
    for round in 0..5 {
        for n in 0..40 {
            let account = format!("acct-{n}");
            let instance = accounts.balance(account.clone()).await.expect("balance");
            let first = *owner.entry(account.clone()).or_insert(instance);
            assert_eq!(
                instance, first,
                "round {round}: {account} moved from {first} to {instance}"
            );
        }
    }
    let used: HashSet<u64> = owner.values().copied().collect();
    assert!(
        used.len() > 1,
        "40 accounts should spread over several instances: {used:?}"
    );

    // A stub-wide key overrides the parameter: every account goes to one place.
    let pinned = accounts.clone().with_hash_key(7);
    let places: HashSet<u64> = instances_reached(&pinned).await;
    assert_eq!(places.len(), 1, "{places:?}");

    for server in servers {
        server.shutdown().await;
    }
}

async fn instances_reached(client: &AccountsClient) -> HashSet<u64> {
    let mut places = HashSet::new();
    for n in 0..20 {
        places.insert(client.balance(format!("acct-{n}")).await.expect("balance"));
    }
    places
}
