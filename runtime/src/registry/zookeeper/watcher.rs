//! The watch task of one watched service: a persistent recursive ZooKeeper
//! watch on `BASE/SERVICE` keeps a local cache of its instances current,
//! and every change is sent to the service's consumers. After a reconnect
//! or in a new session it lists the service again, since watch events can
//! be lost across reconnects. While ZooKeeper is unreachable the consumers
//! keep the last list.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;
use zookeeper_client::{self as zk, AddWatchMode, Client, EventType, SessionState};

use super::curator;
use super::paths::{direct_child, instance_path, service_path};
use super::session::{Session, Shared, Slot, is_connected};
use crate::registry::ServiceInstance;

/// How often a watch task waiting for a connection looks at the session's
/// state.
const RECHECK: Duration = Duration::from_millis(100);
/// The pause after a failed attempt to follow the service.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Reads every instance of a service: its children, each child's data
/// (requests pipelined), parsed. A child that fails to parse is skipped
/// with a debug log; one that vanished meanwhile is simply not there.
pub(super) async fn read_instances(
    client: &Client,
    base: &str,
    service: &str,
) -> Result<BTreeMap<String, ServiceInstance>, zk::Error> {
    let parent = service_path(base, service);
    let children = match client.list_children(&parent).await {
        Ok(children) => children,
        Err(zk::Error::NoNode) => return Ok(BTreeMap::new()),
        Err(error) => return Err(error),
    };
    // Each request is sent when its future is made: all are in flight at once.
    let reads: Vec<_> = children
        .iter()
        .map(|child| client.get_data(&instance_path(base, service, child)))
        .collect();
    let mut instances = BTreeMap::new();
    for (child, read) in children.into_iter().zip(reads) {
        match read.await {
            Ok((data, _)) => {
                if let Some(instance) = parse(service, &child, &data) {
                    instances.insert(child, instance);
                }
            }
            Err(zk::Error::NoNode) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(instances)
}

/// Parses one node, logging (at debug) and skipping one that is unusable.
fn parse(service: &str, id: &str, data: &[u8]) -> Option<ServiceInstance> {
    match curator::decode(service, id, data) {
        Ok(instance) => Some(instance),
        Err(error) => {
            tracing::debug!(service, id, %error, "skipping an unusable instance node");
            None
        }
    }
}

/// How following the service ended.
enum Followed {
    /// The registry is closing, or nobody watches any more.
    Stop,
    /// The session or its connection went away: wait for one and start
    /// again.
    Again,
    /// A request failed: pause, then start again.
    Failed(zk::Error),
}

/// One watched service's task.
pub(super) struct ServiceWatcher {
    shared: Arc<Shared>,
    service: String,
    path: String,
    sender: Arc<watch::Sender<Vec<ServiceInstance>>>,
    ready: watch::Sender<bool>,
    slots: watch::Receiver<Slot>,
    shutdown: watch::Receiver<bool>,
    /// Whether the cache file has this service's list from this process.
    stored: bool,
}

impl ServiceWatcher {
    pub(super) fn new(
        shared: Arc<Shared>,
        service: String,
        sender: Arc<watch::Sender<Vec<ServiceInstance>>>,
        ready: watch::Sender<bool>,
    ) -> ServiceWatcher {
        let path = service_path(&shared.options.base_path, &service);
        let slots = shared.slot.subscribe();
        let shutdown = shared.shutdown.subscribe();
        ServiceWatcher {
            shared,
            service,
            path,
            sender,
            ready,
            slots,
            shutdown,
            stored: false,
        }
    }

    /// Runs until the registry closes or nobody watches the service.
    pub(super) async fn run(mut self) {
        let mut warned = false;
        loop {
            let Some(session) = self.live_session().await else {
                break;
            };
            match self.follow(&session).await {
                Followed::Stop => break,
                Followed::Again => {}
                Followed::Failed(error) => {
                    if !warned && !super::session::is_transient(&error) {
                        warned = true;
                        tracing::warn!(
                            service = %self.service,
                            %error,
                            "cannot watch the service (persistent watches need ZooKeeper 3.6+); retrying"
                        );
                    }
                    tracing::debug!(service = %self.service, %error, "watching the service failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_PAUSE) => {}
                        _ = self.shutdown.changed() => break,
                    }
                }
            }
        }
        self.ready.send_replace(true);
        self.forget();
    }

    /// Removes this service from the watched ones, unless someone
    /// subscribed meanwhile.
    fn forget(&self) {
        let mut watches = self
            .shared
            .watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ours = watches
            .get(&self.service)
            .is_some_and(|entry| Arc::ptr_eq(&entry.sender, &self.sender));
        if ours {
            watches.remove(&self.service);
        }
    }

    /// True if nobody watches the service any more (and it is forgotten).
    fn unwatched(&self) -> bool {
        let watches = self
            .shared
            .watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.sender.receiver_count() == 0
            && watches
                .get(&self.service)
                .is_none_or(|entry| Arc::ptr_eq(&entry.sender, &self.sender))
    }

    /// Waits for a connected session; `None` when the task should stop.
    async fn live_session(&mut self) -> Option<Session> {
        loop {
            if *self.shutdown.borrow_and_update() {
                return None;
            }
            let slot = self.slots.borrow_and_update().clone();
            match slot {
                Slot::Up(session) if is_connected(session.client.state()) => return Some(session),
                Slot::Failed(_) | Slot::Closed => return None,
                Slot::Up(_) | Slot::Connecting => {}
            }
            // Unreachable: consumers start from (and keep) what is known.
            self.ready.send_replace(true);
            tokio::select! {
                changed = self.slots.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = tokio::time::sleep(RECHECK) => {}
                _ = self.sender.closed() => {
                    if self.unwatched() {
                        return None;
                    }
                }
                _ = self.shutdown.changed() => return None,
            }
        }
    }

    /// Watches and lists the service in `session` and follows its changes
    /// until something ends that.
    async fn follow(&mut self, session: &Session) -> Followed {
        let client = &session.client;
        let mut watcher = match client
            .watch(&self.path, AddWatchMode::PersistentRecursive)
            .await
        {
            Ok(watcher) => watcher,
            Err(error) => return Followed::Failed(error),
        };
        let base = self.shared.options.base_path.clone();
        let mut known = match read_instances(client, &base, &self.service).await {
            Ok(known) => known,
            Err(error) => return Followed::Failed(error),
        };
        self.publish(&known).await;
        self.ready.send_replace(true);
        loop {
            let event = tokio::select! {
                event = CatchUnwind(Box::pin(watcher.changed())) => match event {
                    Ok(event) => event,
                    // The watch channel closed under us (the client's task
                    // ended): treat it as a lost session.
                    Err(()) => return Followed::Again,
                },
                changed = self.slots.changed() => {
                    if changed.is_err() {
                        return Followed::Stop;
                    }
                    let same = matches!(&*self.slots.borrow_and_update(),
                        Slot::Up(now) if now.generation == session.generation);
                    if same {
                        continue;
                    }
                    return Followed::Again;
                }
                _ = self.sender.closed() => {
                    if self.unwatched() {
                        return Followed::Stop;
                    }
                    continue;
                }
                _ = self.shutdown.changed() => return Followed::Stop,
            };
            let refreshed = match event.event_type {
                EventType::Session => match event.session_state {
                    // Events may have been lost while disconnected.
                    SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                        read_instances(client, &base, &self.service)
                            .await
                            .map(|all| known = all)
                    }
                    SessionState::Disconnected => continue,
                    // Terminal: this watcher gets no more events.
                    SessionState::Expired | SessionState::Closed | SessionState::AuthFailed => {
                        return Followed::Again;
                    }
                },
                _ if event.path == self.path
                    || event.event_type == EventType::NodeChildrenChanged =>
                {
                    read_instances(client, &base, &self.service)
                        .await
                        .map(|all| known = all)
                }
                event_type => match direct_child(&self.path, &event.path) {
                    None => continue,
                    Some(child) if event_type == EventType::NodeDeleted => {
                        known.remove(child);
                        Ok(())
                    }
                    Some(child) => self.refresh(client, &mut known, child.to_owned()).await,
                },
            };
            if let Err(error) = refreshed {
                return Followed::Failed(error);
            }
            self.publish(&known).await;
        }
    }

    /// Reads one instance node again after it was created or changed.
    async fn refresh(
        &self,
        client: &Client,
        known: &mut BTreeMap<String, ServiceInstance>,
        child: String,
    ) -> Result<(), zk::Error> {
        let path = instance_path(&self.shared.options.base_path, &self.service, &child);
        match client.get_data(&path).await {
            Ok((data, _)) => match parse(&self.service, &child, &data) {
                Some(instance) => {
                    known.insert(child, instance);
                }
                None => {
                    known.remove(&child);
                }
            },
            Err(zk::Error::NoNode) => {
                known.remove(&child);
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// Sends the list to the consumers if it changed, and to the cache
    /// file.
    async fn publish(&mut self, known: &BTreeMap<String, ServiceInstance>) {
        let list: Vec<ServiceInstance> = known.values().cloned().collect();
        let changed = self.sender.send_if_modified(|current| {
            if *current == list {
                return false;
            }
            current.clone_from(&list);
            true
        });
        if let Some(cache) = &self.shared.cache {
            if changed || !self.stored {
                cache.store(&self.service, list).await;
                self.stored = true;
            }
        }
    }
}

/// Polls a future inside `catch_unwind`: the ZooKeeper client's watcher
/// panics if polled after its channel closed, and a consumer's watch must
/// survive that.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(_) => Poll::Ready(Err(())),
        }
    }
}
