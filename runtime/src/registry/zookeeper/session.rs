//! The state a [`ZooKeeperRegistry`](super::ZooKeeperRegistry) shares with
//! its background tasks, and the session task: it keeps one ZooKeeper
//! session up (a new one after expiry), and writes the registered instances
//! into every session (again after a reconnect, since a write may have been
//! lost with the connection).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use zookeeper_client::{self as zk, Acl, Acls, Client, CreateMode, SessionState};

use super::ZooKeeperOptions;
use super::acl::{self, names_user_with_other_password};
use super::cache::CacheFile;
use super::curator;
use super::paths::instance_path;
use crate::registry::{RegistryError, ServiceInstance};

/// The first pause between failed attempts to reach ZooKeeper.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between attempts to reach ZooKeeper.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How often the session task looks at the session state even when it was
/// told nothing (a safety net; state changes are normally pushed).
const STATE_CHECK: Duration = Duration::from_secs(1);
/// How many times one registration is retried while its node keeps
/// changing under it.
const WRITE_ATTEMPTS: usize = 5;

/// The session the registry works with, as the session task publishes it.
#[derive(Clone)]
pub(super) enum Slot {
    /// No session yet, or between two sessions.
    Connecting,
    /// A session; its connection may be down for a while (see
    /// [`is_connected`]).
    Up(Session),
    /// A mistake that waiting cannot fix (a wrong password): the session
    /// task has stopped.
    Failed(RegistryError),
    /// [`close`](super::ZooKeeperRegistry::close)d or dropped.
    Closed,
}

/// One ZooKeeper session.
#[derive(Clone)]
pub(super) struct Session {
    /// The client; cloning it shares the session.
    pub(super) client: Client,
    /// Counts sessions: a new number is a new session.
    pub(super) generation: u64,
}

/// Whether requests can be sent now.
pub(super) fn is_connected(state: SessionState) -> bool {
    matches!(
        state,
        SessionState::SyncConnected | SessionState::ConnectedReadOnly
    )
}

/// Errors that come from the connection or the session rather than from
/// the request: the request may succeed later, in this or a new session.
pub(super) fn is_transient(error: &zk::Error) -> bool {
    matches!(
        error,
        zk::Error::ConnectionLoss
            | zk::Error::Timeout
            | zk::Error::NoHosts
            | zk::Error::SessionExpired
            | zk::Error::SessionMoved
            | zk::Error::ClientClosed
            | zk::Error::Custom(_)
            // UNKNOWNSESSION: the session ended while the request was in flight.
            | zk::Error::UnexpectedErrorCode(-12)
    )
}

/// An instance this registry keeps registered.
#[derive(Debug, Clone)]
pub(super) struct Registration {
    /// `BASE/SERVICE`.
    service_path: String,
    /// The node data (fixed at registration: `registrationTimeUTC` does not
    /// change when the node is written again into a new session).
    data: Arc<[u8]>,
    /// Which `register` call wrote it: a later one replaces it.
    token: u64,
}

/// What the registry keeps registered, and what it still has to delete.
#[derive(Debug, Default)]
pub(super) struct Registrations {
    /// By node path.
    instances: HashMap<String, Registration>,
    /// Node paths deregistered while ZooKeeper was unreachable.
    deletes: HashSet<String>,
}

/// A watched service: the channel its consumers read, and whether its first
/// list is in.
pub(super) struct WatchEntry {
    /// The current list; every consumer holds a receiver.
    pub(super) sender: Arc<watch::Sender<Vec<ServiceInstance>>>,
    /// True once the watch task has listed the service, or has found
    /// ZooKeeper unreachable.
    pub(super) ready: watch::Receiver<bool>,
}

/// Everything the registry's handles and tasks share.
pub(super) struct Shared {
    pub(super) options: ZooKeeperOptions,
    /// The digest id of the credentials (derived from the password: never
    /// logged).
    digest_id: Option<String>,
    /// The ACL of every node created.
    acls: Vec<Acl>,
    pub(super) slot: watch::Sender<Slot>,
    /// True once closing: every task stops.
    pub(super) shutdown: watch::Sender<bool>,
    registrations: Mutex<Registrations>,
    pub(super) watches: Mutex<HashMap<String, WatchEntry>>,
    pub(super) cache: Option<Arc<CacheFile>>,
    tokens: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(super) fn new(options: ZooKeeperOptions) -> Shared {
        let digest_id = options.digest.as_ref().map(acl::digest_id);
        let acls = acl::node_acls(digest_id.as_deref());
        let cache = options
            .cache_file
            .clone()
            .map(|path| Arc::new(CacheFile::load(path)));
        Shared {
            options,
            digest_id,
            acls,
            slot: watch::channel(Slot::Connecting).0,
            shutdown: watch::channel(false).0,
            registrations: Mutex::new(Registrations::default()),
            watches: Mutex::new(HashMap::new()),
            cache,
            tokens: AtomicU64::new(0),
        }
    }

    /// `digest user NAME` or `no credentials`, for errors.
    pub(super) fn credentials_text(&self) -> String {
        match &self.options.digest {
            Some(digest) => format!("digest user {}", digest.user()),
            None => "no credentials".to_owned(),
        }
    }

    /// The client of the current session, if it is connected right now.
    pub(super) fn live_client(&self) -> Option<Client> {
        match &*self.slot.borrow() {
            Slot::Up(session) if is_connected(session.client.state()) => {
                Some(session.client.clone())
            }
            _ => None,
        }
    }

    /// Fails if the registry can no longer work: closed, or a fatal error.
    pub(super) fn check_open(&self) -> Result<(), RegistryError> {
        if *self.shutdown.borrow() {
            return Err(RegistryError::Closed);
        }
        match &*self.slot.borrow() {
            Slot::Failed(error) => Err(error.clone()),
            Slot::Closed => Err(RegistryError::Closed),
            Slot::Connecting | Slot::Up(_) => Ok(()),
        }
    }

    /// The error for a failed ZooKeeper request.
    pub(super) fn error(
        &self,
        operation: &'static str,
        path: &str,
        error: zk::Error,
    ) -> RegistryError {
        match error {
            zk::Error::NoAuth => RegistryError::NotAuthorized {
                operation,
                path: path.to_owned(),
                credentials: self.credentials_text(),
            },
            zk::Error::AuthFailed => RegistryError::AuthFailed,
            error if is_transient(&error) => self.unavailable(error.to_string()),
            error => RegistryError::ZooKeeper {
                operation,
                path: path.to_owned(),
                reason: error.to_string(),
            },
        }
    }

    pub(super) fn unavailable(&self, reason: impl Into<String>) -> RegistryError {
        RegistryError::Unavailable {
            ensemble: self.options.connect_string.clone(),
            reason: reason.into(),
        }
    }

    /// Explains a `NoAuth` answer: a wrong password if the ACL of `path` or
    /// of its parent (create and delete are checked on the parent) names
    /// our user with another password, otherwise plainly not authorized.
    pub(super) async fn explain_no_auth(
        &self,
        client: &Client,
        operation: &'static str,
        path: &str,
    ) -> RegistryError {
        if let (Some(ours), Some(digest)) = (&self.digest_id, &self.options.digest) {
            let parent = match path.rsplit_once('/') {
                Some(("", _)) | None => "/",
                Some((parent, _)) => parent,
            };
            for node in [parent, path] {
                if let Ok((acls, _)) = client.get_acl(node).await {
                    if names_user_with_other_password(&acls, ours) {
                        return RegistryError::WrongPassword {
                            user: digest.user().to_owned(),
                            path: node.to_owned(),
                        };
                    }
                }
            }
        }
        self.error(operation, path, zk::Error::NoAuth)
    }

    // ---- sessions ----

    async fn new_client(&self) -> Result<Client, zk::Error> {
        let mut connector = Client::connector()
            .with_session_timeout(self.options.session_timeout)
            .with_fail_eagerly();
        if let Some(digest) = &self.options.digest {
            let auth = format!("{}:{}", digest.user(), digest.password());
            connector = connector.with_auth("digest", auth.as_bytes());
        }
        connector.connect(&self.options.connect_string).await
    }

    /// With digest credentials: fails with [`RegistryError::WrongPassword`]
    /// if the base node's ACL names our user with another password.
    async fn check_credentials(&self, client: &Client) -> Result<(), RegistryError> {
        let (Some(ours), Some(digest)) = (&self.digest_id, &self.options.digest) else {
            return Ok(());
        };
        let base = &self.options.base_path;
        match client.get_acl(base).await {
            Ok((acls, _)) if names_user_with_other_password(&acls, ours) => {
                Err(RegistryError::WrongPassword {
                    user: digest.user().to_owned(),
                    path: base.clone(),
                })
            }
            Ok(_) | Err(zk::Error::NoNode) => Ok(()),
            Err(error) => Err(self.error("get_acl", base, error)),
        }
    }

    /// The session task: runs until the registry is closed or fails.
    pub(super) async fn run_sessions(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut generation = 0;
        let mut backoff = MIN_BACKOFF;
        loop {
            if *shutdown.borrow_and_update() {
                break;
            }
            let connected = tokio::select! {
                connected = self.new_client() => connected,
                _ = shutdown.changed() => break,
            };
            let client = match connected {
                Ok(client) => client,
                Err(zk::Error::AuthFailed) => {
                    self.fail(RegistryError::AuthFailed);
                    return;
                }
                Err(error) => {
                    tracing::debug!(ensemble = %self.options.connect_string, %error, "ZooKeeper is unreachable; retrying");
                    if self.pause(&mut shutdown, &mut backoff).await {
                        break;
                    }
                    continue;
                }
            };
            match self.check_credentials(&client).await {
                Ok(()) => {}
                Err(error @ RegistryError::WrongPassword { .. }) => {
                    tracing::error!(%error, "the ZooKeeper registry stops");
                    self.fail(error);
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, "a new ZooKeeper session failed at once; retrying");
                    if self.pause(&mut shutdown, &mut backoff).await {
                        break;
                    }
                    continue;
                }
            }
            backoff = MIN_BACKOFF;
            generation += 1;
            let mut states = client.state_watcher();
            tracing::info!(
                ensemble = %self.options.connect_string,
                session = %client.session_id(),
                "ZooKeeper session established"
            );
            self.slot.send_replace(Slot::Up(Session {
                client: client.clone(),
                generation,
            }));
            self.sync_registrations(&client).await;
            let mut check = tokio::time::interval(STATE_CHECK);
            let ended = loop {
                let (state, changed) = tokio::select! {
                    state = states.changed() => (state, true),
                    _ = check.tick() => (client.state(), false),
                    _ = shutdown.changed() => break true,
                };
                match state {
                    // Reconnected (same session): a write may have been lost
                    // with the connection, so sync again.
                    SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                        if changed {
                            self.sync_registrations(&client).await;
                        }
                    }
                    SessionState::Disconnected => {}
                    SessionState::Expired => {
                        tracing::warn!(session = %client.session_id(), "ZooKeeper session expired; starting a new one");
                        break false;
                    }
                    SessionState::AuthFailed => {
                        self.fail(RegistryError::AuthFailed);
                        return;
                    }
                    SessionState::Closed => break false,
                }
            };
            if ended {
                break;
            }
            self.slot.send_if_modified(|slot| match slot {
                Slot::Up(_) => {
                    *slot = Slot::Connecting;
                    true
                }
                _ => false,
            });
        }
        self.slot.send_replace(Slot::Closed);
    }

    fn fail(&self, error: RegistryError) {
        self.slot.send_replace(Slot::Failed(error));
    }

    /// Sleeps `backoff` (doubling it for next time); true if the registry
    /// was closed meanwhile.
    async fn pause(&self, shutdown: &mut watch::Receiver<bool>, backoff: &mut Duration) -> bool {
        let pause = *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        tokio::select! {
            _ = tokio::time::sleep(pause) => *shutdown.borrow_and_update(),
            _ = shutdown.changed() => true,
        }
    }

    // ---- registrations ----

    /// Records `instance` as registered and writes its node if ZooKeeper is
    /// reachable (otherwise the session task writes it once it is).
    pub(super) async fn register(&self, instance: &ServiceInstance) -> Result<(), RegistryError> {
        self.check_open()?;
        let base = &self.options.base_path;
        let path = instance_path(base, &instance.service, &instance.id);
        let registration = Registration {
            service_path: super::paths::service_path(base, &instance.service),
            data: curator::encode(instance, now_millis()).into(),
            token: self.tokens.fetch_add(1, Ordering::Relaxed),
        };
        {
            let mut registrations = lock(&self.registrations);
            registrations.deletes.remove(&path);
            registrations
                .instances
                .insert(path.clone(), registration.clone());
        }
        let Some(client) = self.live_client() else {
            tracing::debug!(%path, "ZooKeeper unreachable; the instance is registered once a session is up");
            return Ok(());
        };
        match self.write_node(&client, &path, &registration).await {
            Ok(()) => {
                self.confirm(&client, &path, registration.token).await;
                Ok(())
            }
            Err(error) if is_transient(&error) => {
                tracing::debug!(%path, %error, "registration deferred until ZooKeeper is back");
                Ok(())
            }
            Err(error) => {
                self.forget(&path, registration.token);
                Err(match error {
                    zk::Error::NoAuth => self.explain_no_auth(&client, "create", &path).await,
                    error => self.error("create", &path, error),
                })
            }
        }
    }

    /// Forgets registration `token` at `path` (its write failed), unless a
    /// later `register` replaced it.
    fn forget(&self, path: &str, token: u64) {
        let mut registrations = lock(&self.registrations);
        if registrations
            .instances
            .get(path)
            .is_some_and(|known| known.token == token)
        {
            registrations.instances.remove(path);
        }
    }

    /// Forgets the instance at `path` and deletes its node (later, if
    /// ZooKeeper is unreachable now).
    pub(super) async fn deregister(&self, path: String) -> Result<(), RegistryError> {
        if *self.shutdown.borrow() {
            return Err(RegistryError::Closed);
        }
        lock(&self.registrations).instances.remove(&path);
        let Some(client) = self.live_client() else {
            lock(&self.registrations).deletes.insert(path);
            return Ok(());
        };
        match client.delete(&path, None).await {
            Ok(()) | Err(zk::Error::NoNode) => Ok(()),
            Err(error) if is_transient(&error) => {
                lock(&self.registrations).deletes.insert(path);
                Ok(())
            }
            Err(zk::Error::NoAuth) => Err(self.explain_no_auth(&client, "delete", &path).await),
            Err(error) => Err(self.error("delete", &path, error)),
        }
    }

    /// Deletes every registered node and forgets them all (closing).
    pub(super) async fn deregister_all(&self) {
        let paths: Vec<String> = {
            let mut registrations = lock(&self.registrations);
            let mut paths: Vec<String> = registrations
                .instances
                .drain()
                .map(|(path, _)| path)
                .collect();
            paths.extend(registrations.deletes.drain());
            paths
        };
        let Some(client) = self.live_client() else {
            return;
        };
        let deletes: Vec<_> = paths.iter().map(|path| client.delete(path, None)).collect();
        for (path, delete) in paths.iter().zip(deletes) {
            match delete.await {
                Ok(()) | Err(zk::Error::NoNode) => {}
                Err(error) => {
                    tracing::warn!(%path, %error, "could not delete an instance node while closing")
                }
            }
        }
    }

    /// Makes ZooKeeper match the registrations: deletes what was
    /// deregistered while unreachable, and writes every registered node
    /// that is missing, stale (another session's) or different.
    async fn sync_registrations(&self, client: &Client) {
        let deletes: Vec<String> = lock(&self.registrations).deletes.iter().cloned().collect();
        for path in deletes {
            match client.delete(&path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => {}
                Err(error) if is_transient(&error) => return,
                Err(error) => {
                    tracing::warn!(%path, %error, "could not delete a deregistered instance node")
                }
            }
            lock(&self.registrations).deletes.remove(&path);
        }
        let registered: BTreeMap<String, Registration> = lock(&self.registrations)
            .instances
            .iter()
            .map(|(path, registration)| (path.clone(), registration.clone()))
            .collect();
        for (path, registration) in registered {
            match self.write_node(client, &path, &registration).await {
                Ok(()) => self.confirm(client, &path, registration.token).await,
                Err(error) if is_transient(&error) => return,
                Err(error) => {
                    tracing::warn!(%path, %error, "could not register an instance; retrying after the next reconnect")
                }
            }
        }
    }

    /// After writing the node of registration `token` at `path`: if it was
    /// deregistered meanwhile, deletes the node again; if it was registered
    /// again with other data, writes that. So a deregistration racing a
    /// re-registration never brings an instance back.
    async fn confirm(&self, client: &Client, path: &str, mut token: u64) {
        for _ in 0..WRITE_ATTEMPTS {
            let current = lock(&self.registrations).instances.get(path).cloned();
            match current {
                None => {
                    match client.delete(path, None).await {
                        Ok(()) | Err(zk::Error::NoNode) => {}
                        Err(error) => {
                            tracing::debug!(%path, %error, "could not delete a node deregistered while it was written");
                            lock(&self.registrations).deletes.insert(path.to_owned());
                        }
                    }
                    return;
                }
                Some(current) if current.token == token => return,
                Some(current) => {
                    token = current.token;
                    if let Err(error) = self.write_node(client, path, &current).await {
                        tracing::debug!(%path, %error, "could not rewrite a re-registered instance");
                        return;
                    }
                }
            }
        }
    }

    /// Writes one instance node: creates it (and its parents), or, if it
    /// exists, updates it when it is this session's, or replaces it when it
    /// is a stale node of another (for example the previous) session.
    async fn write_node(
        &self,
        client: &Client,
        path: &str,
        registration: &Registration,
    ) -> Result<(), zk::Error> {
        let data: &[u8] = &registration.data;
        let ephemeral = CreateMode::Ephemeral.with_acls(Acls::new(&self.acls));
        for _ in 0..WRITE_ATTEMPTS {
            match client.create(path, data, &ephemeral).await {
                Ok(_) => return Ok(()),
                Err(zk::Error::NoNode) => {
                    self.create_parents(client, &registration.service_path)
                        .await?
                }
                Err(zk::Error::NodeExists) => {
                    let (existing, stat) = match client.get_data(path).await {
                        Ok(found) => found,
                        Err(zk::Error::NoNode) => continue,
                        Err(error) => return Err(error),
                    };
                    if stat.ephemeral_owner == client.session_id().0 {
                        if existing == data {
                            return Ok(());
                        }
                        match client.set_data(path, data, Some(stat.version)).await {
                            Ok(_) => return Ok(()),
                            Err(zk::Error::BadVersion | zk::Error::NoNode) => continue,
                            Err(error) => return Err(error),
                        }
                    }
                    tracing::debug!(%path, owner = stat.ephemeral_owner, "replacing an instance node left by another session");
                    match client.delete(path, Some(stat.version)).await {
                        Ok(()) | Err(zk::Error::NoNode | zk::Error::BadVersion) => continue,
                        Err(error) => return Err(error),
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Err(zk::Error::UnexpectedError(format!(
            "{path} kept changing while it was registered"
        )))
    }

    /// Creates `BASE/SERVICE` and the base path as container nodes
    /// (persistent ones on a server without containers).
    async fn create_parents(&self, client: &Client, service_path: &str) -> Result<(), zk::Error> {
        let acls = Acls::new(&self.acls);
        match client
            .mkdir(service_path, &CreateMode::Container.with_acls(acls))
            .await
        {
            Err(zk::Error::Unimplemented | zk::Error::UnexpectedErrorCode(_)) => {
                client
                    .mkdir(service_path, &CreateMode::Persistent.with_acls(acls))
                    .await
            }
            result => result,
        }
    }
}

/// Now, in milliseconds since the Unix epoch.
fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
