//! A generated service with every method shape (`services.rpc`), served and
//! called over real sockets in every serializer and every call mode.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use courier::client::Channel;
use courier::client::Stub;
use courier::server::{Server, ServerHandle};
use courier::{CallContext, RpcError, Serializer};
use courier_tests::fixtures::services::store::{
    DeleteError, GetError, PutError, Store, StoreClient, StoreServer,
};
use courier_tests::fixtures::services::{NotFound, ReadOnly};
use tokio::sync::watch;

/// A key-value store; keys starting with `ro/` are read-only.
struct MemoryStore {
    values: Mutex<BTreeMap<String, Bytes>>,
    touched: watch::Sender<Vec<String>>,
}

impl MemoryStore {
    fn values(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.values.lock().expect("store lock")
    }
}

impl Store for MemoryStore {
    async fn get(&self, _ctx: CallContext, key: String) -> Result<Bytes, RpcError<GetError>> {
        self.values()
            .get(&key)
            .cloned()
            .ok_or_else(|| NotFound { key }.into())
    }

    async fn put(
        &self,
        _ctx: CallContext,
        key: String,
        value: Bytes,
    ) -> Result<Option<Bytes>, RpcError<PutError>> {
        if key.starts_with("ro/") {
            return Err(ReadOnly {}.into());
        }
        Ok(self.values().insert(key, value))
    }

    async fn delete(&self, _ctx: CallContext, key: String) -> Result<(), RpcError<DeleteError>> {
        if key.starts_with("ro/") {
            return Err(ReadOnly {}.into());
        }
        match self.values().remove(&key) {
            Some(_) => Ok(()),
            None => Err(NotFound { key }.into()),
        }
    }

    async fn count(&self, _ctx: CallContext) -> Result<u64, RpcError> {
        Ok(self.values().len() as u64)
    }

    async fn keys(
        &self,
        _ctx: CallContext,
        prefix: String,
        limit: u32,
    ) -> Result<Vec<String>, RpcError> {
        Ok(self
            .values()
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn touch(&self, _ctx: CallContext, key: String) {
        self.touched.send_modify(|keys| keys.push(key));
    }
}

async fn start() -> (ServerHandle, watch::Receiver<Vec<String>>) {
    let touched = watch::Sender::new(Vec::new());
    let receiver = touched.subscribe();
    let store = MemoryStore {
        values: Mutex::new(BTreeMap::new()),
        touched,
    };
    let server = Server::builder()
        .add_service(StoreServer::new(store))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    (server, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_shape_in_every_serializer() {
    let (server, mut touched) = start().await;
    let channel = Channel::connect(server.local_addr())
        .await
        .expect("connect");
    for serializer in Serializer::ALL {
        let store = StoreClient::new(channel.clone()).with_serializer(serializer);
        let key = format!("{serializer}/k");
        assert_eq!(
            store
                .put(key.clone(), Bytes::from_static(b"v1"))
                .await
                .expect("put"),
            None
        );
        assert_eq!(
            store
                .put(key.clone(), Bytes::from_static(b"v2"))
                .await
                .expect("put"),
            Some(Bytes::from_static(b"v1"))
        );
        assert_eq!(
            store.get(key.clone()).await.expect("get"),
            Bytes::from_static(b"v2")
        );
        assert_eq!(
            store
                .keys(format!("{serializer}/"), 10)
                .await
                .expect("keys"),
            vec![key.clone()]
        );
        assert!(store.count().await.expect("count") >= 1);
        store.delete(key.clone()).await.expect("delete");

        match store.get(key.clone()).await {
            Err(RpcError::Declared(GetError::NotFound(e))) => assert_eq!(e.key, key),
            other => panic!("{serializer}: expected NotFound, got {other:?}"),
        }
        match store.delete("ro/x").await {
            Err(RpcError::Declared(DeleteError::ReadOnly(ReadOnly {}))) => {}
            other => panic!("{serializer}: expected ReadOnly, got {other:?}"),
        }
        match store.delete(key.clone()).await {
            Err(RpcError::Declared(DeleteError::NotFound(e))) => assert_eq!(e.key, key),
            other => panic!("{serializer}: expected NotFound, got {other:?}"),
        }

        store.touch(key.clone()).await.expect("oneway");
        let seen = tokio::time::timeout(
            Duration::from_secs(10),
            touched.wait_for(|keys| keys.contains(&key)),
        )
        .await
        .expect("the one-way call arrives");
        drop(seen);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_and_callback_modes() {
    let (server, _) = start().await;
    let store = StoreClient::new(
        Channel::connect(server.local_addr())
            .await
            .expect("connect"),
    );
    store.put("a", Bytes::from_static(b"1")).await.expect("put");

    let pending = store.get_future("a");
    assert_eq!(
        pending.await.expect("future mode"),
        Bytes::from_static(b"1")
    );

    let pending = store.get_future("missing");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !pending.is_done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call should finish"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(matches!(
        pending.await,
        Err(RpcError::Declared(GetError::NotFound(_)))
    ));

    let (sender, receiver) = tokio::sync::oneshot::channel();
    store.count_with_callback(move |result| {
        let _ = sender.send(result);
    });
    let counted = tokio::time::timeout(Duration::from_secs(10), receiver)
        .await
        .expect("the callback runs")
        .expect("the callback runs once");
    assert_eq!(counted.expect("count"), 1);
    server.shutdown().await;
}

#[test]
fn blocking_mode_from_a_plain_thread() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, _) = runtime.block_on(start());
    let channel = runtime
        .block_on(Channel::connect(server.local_addr()))
        .expect("connect");
    let store = StoreClient::new(channel);
    let worker = std::thread::spawn(move || {
        store
            .put_blocking("b", Bytes::from_static(b"2"))
            .expect("put");
        let value = store.get_blocking("b").expect("get");
        let missing = store.get_blocking("nope");
        let pending = store.count_future();
        (value, missing, pending.wait())
    });
    let (value, missing, count) = worker.join().expect("plain thread");
    assert_eq!(value, Bytes::from_static(b"2"));
    assert!(matches!(
        missing,
        Err(RpcError::Declared(GetError::NotFound(_)))
    ));
    assert_eq!(count.expect("count"), 1);
    runtime.block_on(server.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_mode_on_a_runtime_worker_is_an_error_not_a_deadlock() {
    let (server, _) = start().await;
    let store = StoreClient::new(
        Channel::connect(server.local_addr())
            .await
            .expect("connect"),
    );
    let error = store
        .count_blocking()
        .expect_err("blocking inside async code must fail");
    assert!(matches!(error, RpcError::Transport(_)), "{error:?}");
    server.shutdown().await;
}
