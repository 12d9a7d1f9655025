//! [`ZooKeeperRegistry`]: providers and consumers meet in a ZooKeeper
//! ensemble, in the layout of Apache Curator's service discovery
//! (DISCOVERY.md): an ephemeral node `BASE/SERVICE/INSTANCE_ID` per
//! instance, holding Curator's JSON.
//!
//! One background task owns the session (a new one after expiry, with every
//! registered instance written again); one task per watched service keeps
//! its list current with a persistent recursive watch. Handles and tasks
//! share state through channels and short, never-awaited locks.

mod acl;
mod cache;
mod curator;
mod paths;
mod session;
mod watcher;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use zookeeper_client as zk;

use self::session::{Shared, Slot, WatchEntry};
use self::watcher::ServiceWatcher;
use super::{
    DEFAULT_BASE_PATH, DigestCredentials, InstanceWatch, Registry, RegistryError, RegistryFuture,
    ServiceInstance, ZooKeeperUrl,
};

/// How to reach and use a ZooKeeper ensemble. Built from a `zk://` URL
/// ([`ZooKeeperOptions::from_url`]) or in code ([`ZooKeeperOptions::new`]
/// and the `with_` methods).
///
/// `Debug` never shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooKeeperOptions {
    /// The ensemble as a connect string: `host:port[,host:port...]`.
    pub connect_string: String,
    /// Where the services live: absolute, no trailing slash (`/courier`).
    pub base_path: String,
    /// The session timeout asked of ZooKeeper (the server may bound it):
    /// how long after a provider's last sign of life its instances
    /// disappear. Default 10 s.
    pub session_timeout: Duration,
    /// How long [`ZooKeeperRegistry::connect`] waits for the first session
    /// (and [`Registry::watch`] for a first list) before going on with what
    /// it has. Default 5 s.
    pub connect_timeout: Duration,
    /// Digest credentials: added to every session; nodes are then created
    /// so that only these credentials may change or delete them.
    pub digest: Option<DigestCredentials>,
    /// A file holding the last known instances of the watched services, so
    /// that a consumer started while ZooKeeper is unreachable starts from
    /// them. None by default.
    pub cache_file: Option<PathBuf>,
}

impl ZooKeeperOptions {
    /// The session timeout when none is given.
    pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
    /// The connect timeout when none is given.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Options for the ensemble `connect_string` (`host:port[,...]`) with
    /// the defaults: base path `/courier`, session timeout 10 s, connect
    /// timeout 5 s, no credentials, no cache file.
    pub fn new(connect_string: impl Into<String>) -> ZooKeeperOptions {
        ZooKeeperOptions {
            connect_string: connect_string.into(),
            base_path: DEFAULT_BASE_PATH.to_owned(),
            session_timeout: Self::DEFAULT_SESSION_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            digest: None,
            cache_file: None,
        }
    }

    /// The options a `zk://` URL gives (its ensemble, base path, and the
    /// `session_timeout_ms` and `digest` parameters), defaults otherwise.
    pub fn from_url(url: &ZooKeeperUrl) -> ZooKeeperOptions {
        let mut options = ZooKeeperOptions::new(url.connect_string());
        options.base_path.clone_from(&url.base_path);
        if let Some(timeout) = url.session_timeout {
            options.session_timeout = timeout;
        }
        options.digest.clone_from(&url.digest);
        options
    }

    /// With another base path.
    pub fn with_base_path(mut self, base_path: impl Into<String>) -> ZooKeeperOptions {
        self.base_path = base_path.into();
        self
    }

    /// With another session timeout.
    pub fn with_session_timeout(mut self, timeout: Duration) -> ZooKeeperOptions {
        self.session_timeout = timeout;
        self
    }

    /// With another connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> ZooKeeperOptions {
        self.connect_timeout = timeout;
        self
    }

    /// With digest credentials.
    pub fn with_digest(mut self, credentials: DigestCredentials) -> ZooKeeperOptions {
        self.digest = Some(credentials);
        self
    }

    /// With a cache file.
    pub fn with_cache_file(mut self, path: impl Into<PathBuf>) -> ZooKeeperOptions {
        self.cache_file = Some(path.into());
        self
    }
}

/// A [`Registry`] in a ZooKeeper ensemble, in Curator's service discovery
/// layout. Clones share the session; dropping the last clone ends it (its
/// instances disappear with it), [`Registry::close`] ends it gracefully.
///
/// - `register` writes an ephemeral node `BASE/SERVICE/ID`; while ZooKeeper
///   is unreachable it only records the instance, and the node is written
///   once a session is up. Every registered instance is written again into
///   a new session (after expiry), replacing a stale node of the old one.
/// - `deregister` deletes the node; the instance is not registered again.
/// - `list` reads the service's nodes; while ZooKeeper is unreachable it
///   answers with the last known list (of a watched service, or from the
///   cache file).
/// - `watch` keeps a list current through a persistent recursive watch; the
///   consumers keep the last list while ZooKeeper is unreachable.
#[derive(Clone)]
pub struct ZooKeeperRegistry {
    shared: Arc<Shared>,
    /// Held by handles only (not by the tasks): the last one dropped shuts
    /// the tasks down.
    _owner: Arc<Owner>,
}

/// Shuts the registry's tasks down when the last handle goes.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
    }
}

impl fmt::Debug for ZooKeeperRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZooKeeperRegistry")
            .field("options", &self.shared.options)
            .field("session_id", &self.session_id())
            .finish()
    }
}

impl ZooKeeperRegistry {
    /// Starts a registry and returns at once: the session is established
    /// in the background (and re-established for as long as the registry
    /// lives). Must be called inside a tokio runtime.
    ///
    /// Fails only on options that can never work (a bad base path, no
    /// runtime).
    pub fn start(options: ZooKeeperOptions) -> Result<ZooKeeperRegistry, RegistryError> {
        paths::check_base_path(&options.base_path)?;
        if options.connect_string.trim().is_empty() {
            return Err(RegistryError::InvalidName {
                what: "ZooKeeper connect string",
                name: options.connect_string,
                reason: "it is empty",
            });
        }
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| RegistryError::NoRuntime)?;
        let shared = Arc::new(Shared::new(options));
        runtime.spawn(Arc::clone(&shared).run_sessions());
        Ok(ZooKeeperRegistry {
            _owner: Arc::new(Owner(Arc::clone(&shared))),
            shared,
        })
    }

    /// Starts a registry and waits up to the connect timeout for its first
    /// session.
    ///
    /// An unreachable ZooKeeper is not an error: the registry is returned
    /// and keeps connecting in the background (registrations are written,
    /// and watches filled, once a session is up). A mistake that waiting
    /// cannot fix is: a wrong digest password
    /// ([`RegistryError::WrongPassword`]), a failed authentication, bad
    /// options.
    pub async fn connect(options: ZooKeeperOptions) -> Result<ZooKeeperRegistry, RegistryError> {
        let timeout = options.connect_timeout;
        let registry = ZooKeeperRegistry::start(options)?;
        match registry.wait_connected(timeout).await {
            Ok(()) => Ok(registry),
            Err(RegistryError::Unavailable { ensemble, reason }) => {
                tracing::warn!(%ensemble, %reason, "ZooKeeper is unreachable; the registry keeps trying in the background");
                Ok(registry)
            }
            Err(error) => Err(error),
        }
    }

    /// Waits until a session is up and connected, for at most `timeout`:
    /// [`RegistryError::Unavailable`] if none is by then, the registry's
    /// error if it failed or was closed.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), RegistryError> {
        let mut slots = self.shared.slot.subscribe();
        let wait = async {
            loop {
                match &*slots.borrow_and_update() {
                    Slot::Up(session) if session::is_connected(session.client.state()) => {
                        return Ok(());
                    }
                    Slot::Failed(error) => return Err(error.clone()),
                    Slot::Closed => return Err(RegistryError::Closed),
                    Slot::Up(_) | Slot::Connecting => {}
                }
                // A session's reconnection is not announced on this channel:
                // look again shortly.
                let _ = tokio::time::timeout(Duration::from_millis(50), slots.changed()).await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or_else(|_| {
                Err(self
                    .shared
                    .unavailable(format!("no session within {} ms", timeout.as_millis())))
            })
    }

    /// Whether a session is up and connected right now.
    pub fn is_connected(&self) -> bool {
        self.shared.live_client().is_some()
    }

    /// The id of the current session, if there is one (for logs and
    /// ZooKeeper's own tools).
    pub fn session_id(&self) -> Option<i64> {
        match &*self.shared.slot.borrow() {
            Slot::Up(session) => Some(session.client.session_id().0),
            _ => None,
        }
    }

    /// The options the registry was started with.
    pub fn options(&self) -> &ZooKeeperOptions {
        &self.shared.options
    }

    async fn close_now(&self) -> Result<(), RegistryError> {
        if *self.shared.shutdown.borrow() {
            return Ok(());
        }
        self.shared.deregister_all().await;
        let states = self
            .shared
            .live_client()
            .map(|client| client.state_watcher());
        self.shared.shutdown.send_replace(true);
        self.shared.slot.send_replace(Slot::Closed);
        // The session closes when the last client clone is dropped, the
        // tasks' included: wait for that, boundedly.
        if let Some(mut states) = states {
            let closed = async {
                while !states.state().is_terminated() {
                    states.changed().await;
                }
            };
            let _ = tokio::time::timeout(self.shared.options.session_timeout, closed).await;
        }
        Ok(())
    }

    async fn list_now(&self, service: &str) -> Result<Vec<ServiceInstance>, RegistryError> {
        paths::check_segment("service name", service)?;
        self.shared.check_open()?;
        let reason = match self.shared.live_client() {
            Some(client) => {
                match watcher::read_instances(&client, &self.shared.options.base_path, service)
                    .await
                {
                    Ok(instances) => return Ok(instances.into_values().collect()),
                    Err(error) if session::is_transient(&error) => error.to_string(),
                    Err(zk::Error::NoAuth) => {
                        let path = paths::service_path(&self.shared.options.base_path, service);
                        return Err(self.shared.explain_no_auth(&client, "list", &path).await);
                    }
                    Err(error) => {
                        let path = paths::service_path(&self.shared.options.base_path, service);
                        return Err(self.shared.error("list", &path, error));
                    }
                }
            }
            None => "no connected session".to_owned(),
        };
        // Unreachable: the last known list, if there is one.
        let watched = self
            .shared
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(service)
            .map(|entry| entry.sender.borrow().clone());
        watched
            .or_else(|| {
                self.shared
                    .cache
                    .as_ref()
                    .and_then(|cache| cache.get(service))
            })
            .ok_or_else(|| self.shared.unavailable(reason))
    }

    async fn watch_now(&self, service: &str) -> Result<InstanceWatch, RegistryError> {
        paths::check_segment("service name", service)?;
        self.shared.check_open()?;
        let (receiver, mut ready) = {
            let mut watches = self
                .shared
                .watches
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match watches.get(service) {
                Some(entry) => (entry.sender.subscribe(), entry.ready.clone()),
                None => {
                    let initial = self
                        .shared
                        .cache
                        .as_ref()
                        .and_then(|cache| cache.get(service))
                        .unwrap_or_default();
                    let (sender, receiver) = watch::channel(initial);
                    let sender = Arc::new(sender);
                    let (ready_sender, ready) = watch::channel(false);
                    watches.insert(
                        service.to_owned(),
                        WatchEntry {
                            sender: Arc::clone(&sender),
                            ready: ready.clone(),
                        },
                    );
                    let task = ServiceWatcher::new(
                        Arc::clone(&self.shared),
                        service.to_owned(),
                        sender,
                        ready_sender,
                    );
                    tokio::spawn(task.run());
                    (receiver, ready)
                }
            }
        };
        let first_list = ready.wait_for(|ready| *ready);
        let _ = tokio::time::timeout(self.shared.options.connect_timeout, first_list).await;
        let mut receiver = receiver;
        receiver.mark_unchanged();
        Ok(receiver)
    }
}

impl Registry for ZooKeeperRegistry {
    fn register(&self, instance: ServiceInstance) -> RegistryFuture<'_, ()> {
        Box::pin(async move {
            paths::check_segment("service name", &instance.service)?;
            paths::check_segment("instance id", &instance.id)?;
            self.shared.register(&instance).await
        })
    }

    fn deregister<'a>(&'a self, service: &'a str, id: &'a str) -> RegistryFuture<'a, ()> {
        Box::pin(async move {
            paths::check_segment("service name", service)?;
            paths::check_segment("instance id", id)?;
            let path = paths::instance_path(&self.shared.options.base_path, service, id);
            self.shared.deregister(path).await
        })
    }

    fn list<'a>(&'a self, service: &'a str) -> RegistryFuture<'a, Vec<ServiceInstance>> {
        Box::pin(self.list_now(service))
    }

    fn watch<'a>(&'a self, service: &'a str) -> RegistryFuture<'a, InstanceWatch> {
        Box::pin(self.watch_now(service))
    }

    fn close(&self) -> RegistryFuture<'_, ()> {
        Box::pin(self.close_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_a_url() {
        let url = match "zk://a:1,b:2/x/y?session_timeout_ms=1500&digest=app:pw"
            .parse()
            .expect("valid")
        {
            super::super::RegistryUrl::ZooKeeper(url) => url,
            other => panic!("{other:?}"),
        };
        let options = ZooKeeperOptions::from_url(&url);
        assert_eq!(options.connect_string, "a:1,b:2");
        assert_eq!(options.base_path, "/x/y");
        assert_eq!(options.session_timeout, Duration::from_millis(1500));
        assert_eq!(options.connect_timeout, Duration::from_secs(5));
        assert_eq!(
            options.digest.as_ref().map(DigestCredentials::user),
            Some("app")
        );
        assert!(!format!("{options:?}").contains("pw\""));
        assert!(!format!("{options:?}").contains(":pw"));

        let defaults = ZooKeeperOptions::from_url(&match "zk://h:1".parse().expect("valid") {
            super::super::RegistryUrl::ZooKeeper(url) => url,
            other => panic!("{other:?}"),
        });
        assert_eq!(defaults, ZooKeeperOptions::new("h:1"));
        assert_eq!(defaults.session_timeout, Duration::from_secs(10));
    }

    #[test]
    fn handles_and_futures_can_cross_threads() {
        fn send<T: Send>(_: &T) {}
        fn shared<T: Send + Sync + Clone + 'static>() {}
        shared::<ZooKeeperRegistry>();
        send(&ZooKeeperRegistry::connect(ZooKeeperOptions::new("h:1")));
        let url = super::super::RegistryUrl::Memory;
        send(&super::super::connect_registry(&url));
    }

    #[test]
    fn starting_needs_a_runtime_and_good_options() {
        assert_eq!(
            ZooKeeperRegistry::start(ZooKeeperOptions::new("127.0.0.1:1")).err(),
            Some(RegistryError::NoRuntime)
        );
        let bad = ZooKeeperOptions::new("127.0.0.1:1").with_base_path("courier/");
        assert!(matches!(
            ZooKeeperRegistry::start(bad),
            Err(RegistryError::InvalidName {
                what: "base path",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn bad_names_are_typed_errors() {
        let registry = ZooKeeperRegistry::start(
            ZooKeeperOptions::new("127.0.0.1:1").with_connect_timeout(Duration::from_millis(10)),
        )
        .expect("starts");
        let instance = ServiceInstance::from_host("a/b", "h", 1);
        assert!(matches!(
            registry.register(instance).await,
            Err(RegistryError::InvalidName {
                what: "service name",
                ..
            })
        ));
        assert!(matches!(
            registry.deregister("s", "..").await,
            Err(RegistryError::InvalidName {
                what: "instance id",
                ..
            })
        ));
        assert!(matches!(
            registry.list("").await,
            Err(RegistryError::InvalidName { .. })
        ));
        assert!(matches!(
            registry.list("s").await,
            Err(RegistryError::Unavailable { .. })
        ));
        registry.close().await.expect("closes");
        assert_eq!(
            registry
                .register(ServiceInstance::from_host("s", "h", 1))
                .await,
            Err(RegistryError::Closed)
        );
    }
}
